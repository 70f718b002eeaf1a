//! Elementwise functions of two inputs with broadcasting ([`BinaryKind`]: each declared once as
//! `f(a, b)` and its two partial derivatives), forward and backward.
//!
//! Either operand may be `(r, c)`, `(1, c)` (a row broadcast down the rows), `(r, 1)` (a column
//! broadcast across the columns) or `(1, 1)`; the backward pass sums the adjoint over the
//! broadcast axes.

use super::{Backward, Op};
use crate::tape::{GradSink, Tape, Var};
use ndarray::{Array2, Axis};

/// An elementwise binary function, declared once as `f(a, b)` and its partials `∂f/∂a`, `∂f/∂b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryKind {
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b`.
    Div,
    /// `min(a, b)`; a tie splits the gradient 0.5 / 0.5.
    Min,
    /// `max(a, b)`; a tie splits the gradient 0.5 / 0.5.
    Max,
}

impl BinaryKind {
    /// The function.
    #[inline(always)]
    pub fn f(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryKind::Add => a + b,
            BinaryKind::Sub => a - b,
            BinaryKind::Mul => a * b,
            BinaryKind::Div => a / b,
            BinaryKind::Min => {
                if a < b {
                    a
                } else {
                    b
                }
            }
            BinaryKind::Max => {
                if a > b {
                    a
                } else {
                    b
                }
            }
        }
    }

    /// `∂f/∂a`.
    #[inline(always)]
    pub fn da(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryKind::Add | BinaryKind::Sub => 1.0,
            BinaryKind::Mul => b,
            BinaryKind::Div => 1.0 / b,
            BinaryKind::Min => tie_split(a < b, a == b),
            BinaryKind::Max => tie_split(a > b, a == b),
        }
    }

    /// `∂f/∂b`.
    #[inline(always)]
    pub fn db(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryKind::Add => 1.0,
            BinaryKind::Sub => -1.0,
            BinaryKind::Mul => a,
            BinaryKind::Div => -a / (b * b),
            BinaryKind::Min => tie_split(b < a, a == b),
            BinaryKind::Max => tie_split(b > a, a == b),
        }
    }
}

#[inline(always)]
fn tie_split(wins: bool, tie: bool) -> f32 {
    if wins {
        1.0
    } else if tie {
        0.5
    } else {
        0.0
    }
}

/// The shape two operands broadcast to, or `None` if they are incompatible.
fn broadcast_shape(a: (usize, usize), b: (usize, usize)) -> Option<(usize, usize)> {
    fn dim(x: usize, y: usize) -> Option<usize> {
        if x == y || y == 1 {
            Some(x)
        } else if x == 1 {
            Some(y)
        } else {
            None
        }
    }
    Some((dim(a.0, b.0)?, dim(a.1, b.1)?))
}

/// Row `i` of `x` broadcast to `rows` rows: the slice of that row (length `x.ncols()`).
#[inline(always)]
fn bcast_row(x: &Array2<f32>, i: usize) -> &[f32] {
    let (r, c) = x.dim();
    let i = if r == 1 { 0 } else { i };
    &x.as_slice().expect("standard layout")[i * c..(i + 1) * c]
}

/// `out[i, j] = f(a[i, j], b[i, j])` with broadcasting of `a` and `b` to `out`'s shape.
fn zip_broadcast(
    out: &mut Array2<f32>,
    a: &Array2<f32>,
    b: &Array2<f32>,
    f: impl Fn(f32, f32) -> f32,
) {
    let (rows, cols) = out.dim();
    let out = out.as_slice_mut().expect("standard layout");
    if a.dim() == (rows, cols) && b.dim() == (rows, cols) {
        // no broadcast: one flat pass (a row at a time costs more than the work for narrow rows)
        let (a, b) = (a.as_slice().expect("layout"), b.as_slice().expect("layout"));
        out.iter_mut()
            .zip(a)
            .zip(b)
            .for_each(|((o, &x), &y)| *o = f(x, y));
        return;
    }
    for i in 0..rows {
        let (ar, br) = (bcast_row(a, i), bcast_row(b, i));
        let o = &mut out[i * cols..(i + 1) * cols];
        match (ar.len() == cols, br.len() == cols) {
            (true, true) => o
                .iter_mut()
                .zip(ar)
                .zip(br)
                .for_each(|((o, &x), &y)| *o = f(x, y)),
            (true, false) => {
                let y = br[0];
                o.iter_mut().zip(ar).for_each(|(o, &x)| *o = f(x, y));
            }
            (false, true) => {
                let x = ar[0];
                o.iter_mut().zip(br).for_each(|(o, &y)| *o = f(x, y));
            }
            (false, false) => {
                let v = f(ar[0], br[0]);
                o.iter_mut().for_each(|o| *o = v);
            }
        }
    }
}

/// `dst = g · ∂f/∂(a or b)` (or `+=` when not fresh), all at `g`'s shape.
///
/// The loops are split by broadcast pattern (both operands full, one a column, …) so each inner loop
/// is a plain elementwise pass the compiler vectorises; `partial` must be a closure of one fixed
/// kind (see [`binary_partial_of`]), not one that matches on the kind per element.
#[inline(always)]
fn binary_partial(
    dst: &mut Array2<f32>,
    fresh: bool,
    g: &Array2<f32>,
    a: &Array2<f32>,
    b: &Array2<f32>,
    partial: impl Fn(f32, f32) -> f32,
) {
    let (rows, cols) = g.dim();
    let gs = g.as_slice().expect("standard layout");
    let d = dst.as_slice_mut().expect("standard layout");
    if a.dim() == (rows, cols) && b.dim() == (rows, cols) {
        // no broadcast: one flat pass (the same operations per element)
        let n = gs.len();
        let (a, b) = (
            &a.as_slice().expect("layout")[..n],
            &b.as_slice().expect("layout")[..n],
        );
        elementwise_partial(&mut d[..n], fresh, gs, |j| partial(a[j], b[j]));
        return;
    }
    for i in 0..rows {
        let (ar, br) = (bcast_row(a, i), bcast_row(b, i));
        let gr = &gs[i * cols..(i + 1) * cols];
        let dr = &mut d[i * cols..(i + 1) * cols];
        match (ar.len() == cols, br.len() == cols) {
            (true, true) => elementwise_partial(dr, fresh, gr, |j| partial(ar[j], br[j])),
            (true, false) => {
                let y = br[0];
                elementwise_partial(dr, fresh, gr, |j| partial(ar[j], y))
            }
            (false, true) => {
                let x = ar[0];
                elementwise_partial(dr, fresh, gr, |j| partial(x, br[j]))
            }
            (false, false) => {
                let p = partial(ar[0], br[0]);
                elementwise_partial(dr, fresh, gr, |_| p)
            }
        }
    }
}

/// `dr[j] = gr[j] · p(j)` (or `+=`), one row.
#[inline(always)]
fn elementwise_partial(dr: &mut [f32], fresh: bool, gr: &[f32], p: impl Fn(usize) -> f32) {
    let dr = &mut dr[..gr.len()];
    if fresh {
        for (j, (o, &gj)) in dr.iter_mut().zip(gr).enumerate() {
            *o = gj * p(j);
        }
    } else {
        for (j, (o, &gj)) in dr.iter_mut().zip(gr).enumerate() {
            *o += gj * p(j);
        }
    }
}

/// [`binary_partial`] with the partial derivative of `kind` with respect to `a` (`is_a`) or `b`,
/// one monomorphised copy per (kind, operand) so no kind is matched inside the loops.
fn binary_partial_of(
    kind: BinaryKind,
    is_a: bool,
    dst: &mut Array2<f32>,
    fresh: bool,
    g: &Array2<f32>,
    a: &Array2<f32>,
    b: &Array2<f32>,
) {
    macro_rules! with {
        ($k:expr) => {
            if is_a {
                binary_partial(dst, fresh, g, a, b, |x, y| $k.da(x, y))
            } else {
                binary_partial(dst, fresh, g, a, b, |x, y| $k.db(x, y))
            }
        };
    }
    match kind {
        BinaryKind::Add => with!(BinaryKind::Add),
        BinaryKind::Sub => with!(BinaryKind::Sub),
        BinaryKind::Mul => with!(BinaryKind::Mul),
        BinaryKind::Div => with!(BinaryKind::Div),
        BinaryKind::Min => with!(BinaryKind::Min),
        BinaryKind::Max => with!(BinaryKind::Max),
    }
}

/// Sums a full-shape adjoint over the axes along which `target` shape was broadcast.
fn reduce_to(full: &Array2<f32>, target: (usize, usize), out: &mut Array2<f32>, fresh: bool) {
    let (r, c) = full.dim();
    let mut acc = |reduced: Array2<f32>| {
        if fresh {
            out.assign(&reduced);
        } else {
            *out += &reduced;
        }
    };
    match (target.0 == r, target.1 == c) {
        (true, true) => acc(full.clone()),
        (true, false) => acc(full.sum_axis(Axis(1)).insert_axis(Axis(1))),
        (false, true) => acc(full.sum_axis(Axis(0)).insert_axis(Axis(0))),
        (false, false) => acc(Array2::from_elem((1, 1), full.sum())),
    }
}

impl Tape {
    // ---- binary elementwise (broadcasting) ------------------------------------------------------

    /// Elementwise `a ∘ b` with broadcasting (see the module doc).
    pub fn binary(&mut self, kind: BinaryKind, a: Var, b: Var) -> Var {
        let (sa, sb) = (self.shape(a), self.shape(b));
        let (r, c) = broadcast_shape(sa, sb)
            .unwrap_or_else(|| panic!("{kind:?}: shapes {sa:?} and {sb:?} do not broadcast"));
        let mut out = self.pool.take(r, c);
        let (va, vb) = (&self.nodes[a].value, &self.nodes[b].value);
        // one monomorphised, vectorised loop per function (the kind is a constant in each)
        macro_rules! each {
            ($($k:ident),*) => { match kind { $(
                BinaryKind::$k => zip_broadcast(&mut out, va, vb, |x, y| BinaryKind::$k.f(x, y)),
            )* } };
        }
        each!(Add, Sub, Mul, Div, Min, Max);
        let rg = self.rg(a) || self.rg(b);
        self.push(Op::Binary { kind, a, b }, out, rg)
    }

    /// `a + b` (broadcasting).
    pub fn add(&mut self, a: Var, b: Var) -> Var {
        self.binary(BinaryKind::Add, a, b)
    }
    /// `a − b` (broadcasting).
    pub fn sub(&mut self, a: Var, b: Var) -> Var {
        self.binary(BinaryKind::Sub, a, b)
    }
    /// `a · b` elementwise (broadcasting).
    pub fn mul(&mut self, a: Var, b: Var) -> Var {
        self.binary(BinaryKind::Mul, a, b)
    }
    /// `a / b` elementwise (broadcasting).
    pub fn div(&mut self, a: Var, b: Var) -> Var {
        self.binary(BinaryKind::Div, a, b)
    }
    /// Elementwise minimum (broadcasting); ties split the gradient.
    pub fn minimum(&mut self, a: Var, b: Var) -> Var {
        self.binary(BinaryKind::Min, a, b)
    }
    /// Elementwise maximum (broadcasting); ties split the gradient.
    pub fn maximum(&mut self, a: Var, b: Var) -> Var {
        self.binary(BinaryKind::Max, a, b)
    }
}

/// The backward rules of the elementwise functions of two inputs: push the adjoint `g` of the node to its inputs.
pub(super) fn backward(op: &Op, at: &Backward, sink: &mut GradSink) {
    let Backward { g, .. } = *at;
    let val = |v: Var| at.val(v);
    match op {
        Op::Binary { kind, a, b } => {
            let (va, vb) = (val(*a), val(*b));
            let kind = *kind;
            for (input, is_a) in [(*a, true), (*b, false)] {
                if !sink.wants(input) {
                    continue;
                }
                let target = val(input).dim();
                if target == g.dim() {
                    let (dst, fresh) = sink.slot(input);
                    binary_partial_of(kind, is_a, dst, fresh, g, va, vb);
                } else {
                    let mut full = sink.scratch(g.nrows(), g.ncols());
                    binary_partial_of(kind, is_a, &mut full, true, g, va, vb);
                    let (dst, fresh) = sink.slot(input);
                    reduce_to(&full, target, dst, fresh);
                    sink.give(full);
                }
            }
        }

        _ => unreachable!(
            "{} is not one of the elementwise functions of two inputs",
            op.name()
        ),
    }
}
