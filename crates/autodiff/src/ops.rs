//! Every operation of the engine, forward and backward side by side, family by family.
//!
//! Each op is a variant of the closed enum [`Op`]. A forward method on [`Tape`] computes the value
//! into a pooled buffer and records the op; `backward_node` is one exhaustive `match` that, given
//! the adjoint `g` of a node, adds the vector–Jacobian product into the adjoints of its inputs.
//!
//! Conventions at kinks and ties (those the reference's gradients show, spec §5, so gradients match
//! its fixtures):
//! * `relu(x)` and `clamp(x, lo, hi)` pass the gradient only strictly inside: d/dx = 0 at `x == 0`
//!   for relu and at `x == lo` or `x == hi` for clamp (the reference's `clip(x, min = 0)` gives 0 at
//!   0, spec §5; PyTorch's two-sided `clamp` would pass 1 at its bounds — the only difference).
//! * `minimum(a, b)` / `maximum(a, b)` split the gradient 0.5 / 0.5 when `a == b`.
//! * `abs(x)` has derivative `sign(x)`, 0 at 0.
//! * `softplus(x)` returns `x` (derivative 1) for `x > 20`, PyTorch's threshold.
//!
//! Broadcasting (binary ops): either operand may be `(r, c)`, `(1, c)` (a row broadcast down the
//! rows), `(r, 1)` (a column broadcast across the columns) or `(1, 1)`; the backward pass sums the
//! adjoint over the broadcast axes.

use crate::custom::CustomOp;
use crate::gemm;
use crate::kernels;
use crate::params::{Grads, ParamId};
use crate::tape::{GradSink, Node, Tape, Var};
use ndarray::{Array2, Axis, s};
use std::sync::Arc;

/// A recorded operation. Inputs are [`Var`] handles to earlier nodes.
// Each variant's doc says what its fields are; one line per variant keeps the closed set of ops
// readable at a glance, so the fields carry no doc comments of their own.
#[allow(missing_docs)]
#[derive(Clone)]
pub enum Op {
    /// An input without gradient (also every result in no-grad mode).
    Constant,
    /// An input that receives a gradient (readable with [`Tape::grad`]).
    Variable,
    /// A parameter copied from a [`crate::ParamStore`]; its adjoint goes to [`Grads`].
    Param(ParamId),
    /// Elementwise `a ∘ b` with broadcasting.
    Binary { kind: BinaryKind, a: Var, b: Var },
    /// `scale · x + shift`.
    Affine { x: Var, scale: f32, shift: f32 },
    /// Elementwise `f(x + shift)` (`shift` is 0 for a plain `f(x)`: a shift folded in saves an
    /// [`Op::Affine`] node, its buffer and its backward pass).
    Unary { kind: Unary, x: Var, shift: f32 },
    /// `min(max(x, lo), hi)`.
    Clamp { x: Var, lo: f32, hi: f32 },
    /// Matrix product `a · b`.
    MatMul { a: Var, b: Var },
    /// Fused linear layer `x · w + b` with `w: (in, out)` and `b: (1, out)`.
    Linear { x: Var, w: Var, b: Var },
    /// Fused layer `act(x · w + b)`: [`Op::Linear`] and an activation whose derivative is a
    /// function of its output ([`Unary::df_from_output`]), so the pre-activation is never stored.
    LinearAct { x: Var, w: Var, b: Var, act: Unary },
    /// A sum or mean over all elements, each row or each column.
    Reduce { kind: Reduce, x: Var },
    /// Column-wise concatenation of `len` inputs stored from `start` in the tape's input lists,
    /// each viewed as the output's rows ([`Tape::pack_cols`]; [`Tape::concat_cols`] when the row
    /// counts are equal).
    Concat { start: u32, len: u32 },
    /// Columns `start .. start + width` of `x` (the width is the output's).
    SliceCols { x: Var, start: usize },
    /// Same data, new `(rows, cols)` (row-major order is kept).
    Reshape { x: Var },
    /// Output row `i` = row `index[i]` of `x`.
    GatherRows { x: Var, index: Arc<[u32]> },
    /// Output row `j` = Σ weight·row over the sources of `j` in a destination-sorted CSR.
    SegmentSum { x: Var, csr: Arc<Csr> },
    /// Softmax of each row.
    SoftmaxRows { x: Var },
    /// Pipeline advance: column `j` ← column `j + 1`, last column ← 0.
    ShiftLeft { x: Var },
    /// `x` with `v[i]` added at column `cols[i]` of row `i` (an order landing in its lead-time slot).
    AddAtColumn { x: Var, v: Var, cols: Arc<[u32]> },
    /// A fused op from another crate, with a hand-written vector–Jacobian product.
    Custom {
        op: Arc<dyn CustomOp>,
        start: u32,
        len: u32,
    },
}

impl Op {
    /// Short name for reports and Graphviz output.
    pub fn name(&self) -> String {
        match self {
            Op::Constant => "constant".into(),
            Op::Variable => "variable".into(),
            Op::Param(id) => format!("param #{}", id.0),
            Op::Binary { kind, .. } => format!("{kind:?}").to_lowercase(),
            Op::Affine { scale, shift, .. } => format!("affine({scale}·x+{shift})"),
            Op::Unary { kind, shift, .. } if *shift != 0.0 => {
                format!("{kind:?}(x{shift:+})").to_lowercase()
            }
            Op::Unary { kind, .. } => format!("{kind:?}").to_lowercase(),
            Op::Clamp { lo, hi, .. } => format!("clamp[{lo}, {hi}]"),
            Op::MatMul { .. } => "matmul".into(),
            Op::Linear { .. } => "linear".into(),
            Op::LinearAct { act, .. } => format!("linear+{act:?}").to_lowercase(),
            Op::Reduce { kind, .. } => format!("{kind:?}").to_lowercase(),
            Op::Concat { .. } => "concat_cols".into(),
            Op::SliceCols { start, .. } => format!("slice_cols@{start}"),
            Op::Reshape { .. } => "reshape".into(),
            Op::GatherRows { .. } => "gather_rows".into(),
            Op::SegmentSum { .. } => "segment_sum".into(),
            Op::SoftmaxRows { .. } => "softmax_rows".into(),
            Op::ShiftLeft { .. } => "shift_left".into(),
            Op::AddAtColumn { .. } => "add_at_column".into(),
            Op::Custom { op, .. } => op.name().to_string(),
        }
    }

    /// The inputs of this op (resolving input lists through the tape).
    pub(crate) fn inputs(&self, lists: &[Var]) -> Vec<Var> {
        let mut inputs = Vec::new();
        self.for_each_input(lists, |v| inputs.push(v));
        inputs
    }

    /// Calls `f` on each input of this op, in order (no allocation: [`Tape`] counts consumers
    /// with it on every push).
    pub(crate) fn for_each_input(&self, lists: &[Var], mut f: impl FnMut(Var)) {
        match self {
            Op::Constant | Op::Variable | Op::Param(_) => {}
            Op::Binary { a, b, .. } | Op::MatMul { a, b } => {
                f(*a);
                f(*b);
            }
            Op::Linear { x, w, b } | Op::LinearAct { x, w, b, .. } => {
                f(*x);
                f(*w);
                f(*b);
            }
            Op::AddAtColumn { x, v, .. } => {
                f(*x);
                f(*v);
            }
            Op::Affine { x, .. }
            | Op::Unary { x, .. }
            | Op::Clamp { x, .. }
            | Op::Reduce { x, .. }
            | Op::SliceCols { x, .. }
            | Op::Reshape { x }
            | Op::GatherRows { x, .. }
            | Op::SegmentSum { x, .. }
            | Op::SoftmaxRows { x }
            | Op::ShiftLeft { x } => f(*x),
            Op::Concat { start, len } | Op::Custom { start, len, .. } => lists
                [*start as usize..(*start + *len) as usize]
                .iter()
                .for_each(|&v| f(v)),
        }
    }
}

// =================================================================================================
// Elementwise unary functions: each declared once as f(x) and its derivative df(x, y = f(x)).
// =================================================================================================

/// An elementwise function, declared once as `f(x)` and `df(x, y)` with `y = f(x)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unary {
    /// `max(x, 0)`; derivative 0 at 0.
    Relu,
    /// `x` if `x > 0` else `exp(x) − 1` (α = 1).
    Elu,
    /// `ln(1 + eˣ)`, and `x` for `x > 20` (PyTorch's threshold).
    Softplus,
    /// `1 / (1 + e⁻ˣ)`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `eˣ`.
    Exp,
    /// Natural logarithm.
    Log,
    /// `|x|`; derivative `sign(x)`, 0 at 0.
    Abs,
    /// `x²`.
    Square,
    /// `√x`.
    Sqrt,
}

/// PyTorch's softplus threshold: above it softplus is the identity.
pub const SOFTPLUS_THRESHOLD: f32 = 20.0;

impl Unary {
    /// The function.
    #[inline(always)]
    pub fn f(self, x: f32) -> f32 {
        match self {
            Unary::Relu => {
                if x > 0.0 {
                    x
                } else {
                    0.0
                }
            }
            Unary::Elu => kernels::elu(x),
            Unary::Softplus => {
                if x > SOFTPLUS_THRESHOLD {
                    x
                } else {
                    kernels::log1p(kernels::exp(x))
                }
            }
            Unary::Sigmoid => sigmoid(x),
            Unary::Tanh => x.tanh(),
            Unary::Exp => kernels::exp(x),
            Unary::Log => x.ln(),
            Unary::Abs => x.abs(),
            Unary::Square => x * x,
            Unary::Sqrt => x.sqrt(),
        }
    }

    /// Its derivative at `x`, given `y = f(x)` (several are cheaper from the output).
    #[inline(always)]
    pub fn df(self, x: f32, y: f32) -> f32 {
        match self {
            // from the output alone (relu and ELU: x > 0 ⇔ y > 0)
            Unary::Relu | Unary::Elu | Unary::Sigmoid | Unary::Tanh => self.df_from_output(y),
            Unary::Softplus => {
                if x > SOFTPLUS_THRESHOLD {
                    1.0
                } else {
                    sigmoid(x)
                }
            }
            Unary::Exp => y,
            Unary::Log => 1.0 / x,
            Unary::Abs => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            Unary::Square => 2.0 * x,
            Unary::Sqrt => 0.5 / y,
        }
    }
}

impl Unary {
    /// True when the derivative can be computed from the output alone (and equals
    /// [`Unary::df`]): the activations [`Tape::linear_act`] fuses.
    pub fn has_df_from_output(self) -> bool {
        matches!(
            self,
            Unary::Relu | Unary::Elu | Unary::Sigmoid | Unary::Tanh
        )
    }

    /// The derivative from the output `y = f(x)` alone, for the functions of
    /// [`Unary::has_df_from_output`] (`x > 0 ⇔ y > 0` for relu and ELU, so the kink conventions
    /// are those of [`Unary::df`]).
    #[inline(always)]
    pub fn df_from_output(self, y: f32) -> f32 {
        match self {
            Unary::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Unary::Elu => kernels::elu_derivative(y),
            Unary::Sigmoid => y * (1.0 - y),
            Unary::Tanh => 1.0 - y * y,
            _ => panic!("{self:?} has no derivative from its output"),
        }
    }
}

/// Logistic function `1 / (1 + e⁻ˣ)`, branch-free (the fast exponential saturates instead of
/// overflowing, so large |x| give 0 or 1 without NaN).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + kernels::exp(-x))
}

// =================================================================================================
// Elementwise binary functions with broadcasting.
// =================================================================================================

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

// =================================================================================================
// Reductions.
// =================================================================================================

/// Which reduction an [`Op::Reduce`] performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// Sum of all elements → `(1, 1)`.
    SumAll,
    /// Mean of all elements → `(1, 1)`.
    MeanAll,
    /// Sum of each row → `(r, 1)`.
    RowSums,
    /// Mean of each row → `(r, 1)`.
    RowMeans,
    /// Sum of each column → `(1, c)`.
    ColSums,
    /// Mean of each column → `(1, c)`.
    ColMeans,
}

/// A destination-sorted compressed sparse row index for [`Tape::segment_sum`]: output row `j`
/// sums input rows `sources[offsets[j] .. offsets[j + 1]]`, each times its weight (1 if none).
/// Summation order is fixed, so message passing is deterministic.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    /// `n_out + 1` offsets into `sources`.
    pub offsets: Vec<u32>,
    /// Input row of each entry.
    pub sources: Vec<u32>,
    /// Optional weight of each entry (e.g. degree normalisation).
    pub weights: Option<Vec<f32>>,
}

impl Csr {
    /// Builds the index from `(destination, source, weight)` triples (any order; stable within a
    /// destination).
    pub fn from_triples(n_out: usize, triples: &[(u32, u32, f32)]) -> Csr {
        let mut sorted: Vec<(u32, u32, f32)> = triples.to_vec();
        sorted.sort_by_key(|t| t.0);
        let mut offsets = vec![0u32; n_out + 1];
        for t in &sorted {
            offsets[t.0 as usize + 1] += 1;
        }
        for j in 0..n_out {
            offsets[j + 1] += offsets[j];
        }
        Csr {
            offsets,
            sources: sorted.iter().map(|t| t.1).collect(),
            weights: Some(sorted.iter().map(|t| t.2).collect()),
        }
    }

    /// Number of output rows.
    pub fn n_out(&self) -> usize {
        self.offsets.len() - 1
    }

    #[inline(always)]
    fn weight(&self, k: usize) -> f32 {
        self.weights.as_ref().map_or(1.0, |w| w[k])
    }
}

// =================================================================================================
// Forward methods.
// =================================================================================================

impl Tape {
    fn rg(&self, v: Var) -> bool {
        self.requires_grad(v)
    }

    // ---- binary elementwise (broadcasting) ------------------------------------------------------

    /// Elementwise `a ∘ b` with broadcasting (see the module doc).
    pub fn binary(&mut self, kind: BinaryKind, a: Var, b: Var) -> Var {
        let (sa, sb) = (self.shape(a), self.shape(b));
        let (r, c) = broadcast_shape(sa, sb)
            .unwrap_or_else(|| panic!("{kind:?}: shapes {sa:?} and {sb:?} do not broadcast"));
        let mut out = self.pool.take(r, c);
        let (va, vb) = (&self.nodes[a].value, &self.nodes[b].value);
        match kind {
            BinaryKind::Add => zip_broadcast(&mut out, va, vb, |x, y| x + y),
            BinaryKind::Sub => zip_broadcast(&mut out, va, vb, |x, y| x - y),
            BinaryKind::Mul => zip_broadcast(&mut out, va, vb, |x, y| x * y),
            BinaryKind::Div => zip_broadcast(&mut out, va, vb, |x, y| x / y),
            BinaryKind::Min => zip_broadcast(&mut out, va, vb, |x, y| BinaryKind::Min.f(x, y)),
            BinaryKind::Max => zip_broadcast(&mut out, va, vb, |x, y| BinaryKind::Max.f(x, y)),
        }
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

    // ---- scalar affine --------------------------------------------------------------------------

    /// `scale · x + shift`.
    pub fn affine(&mut self, x: Var, scale: f32, shift: f32) -> Var {
        let mut out = self.pool.take_like(&self.nodes[x].value);
        let xs = self.nodes[x].value.as_slice().expect("standard layout");
        out.as_slice_mut()
            .expect("standard layout")
            .iter_mut()
            .zip(xs)
            .for_each(|(o, &v)| *o = scale * v + shift);
        let rg = self.rg(x);
        self.push(Op::Affine { x, scale, shift }, out, rg)
    }
    /// `scale · x`.
    pub fn scale(&mut self, x: Var, scale: f32) -> Var {
        self.affine(x, scale, 0.0)
    }
    /// `x + shift`.
    pub fn add_scalar(&mut self, x: Var, shift: f32) -> Var {
        self.affine(x, 1.0, shift)
    }
    /// `−x`.
    pub fn neg(&mut self, x: Var) -> Var {
        self.affine(x, -1.0, 0.0)
    }

    // ---- unary elementwise ----------------------------------------------------------------------

    /// Elementwise `f(x)`.
    pub fn unary(&mut self, kind: Unary, x: Var) -> Var {
        self.unary_shifted(kind, x, 0.0)
    }
    /// Elementwise `f(x + shift)`: the same values and gradients, to the bit, as
    /// `unary(kind, add_scalar(x, shift))`, in one node (one buffer and one pass fewer each way).
    pub fn unary_shifted(&mut self, kind: Unary, x: Var, shift: f32) -> Var {
        let mut out = self.pool.take_like(&self.nodes[x].value);
        let xs = self.nodes[x].value.as_slice().expect("standard layout");
        let o = out.as_slice_mut().expect("standard layout");
        // one monomorphised, vectorised loop per function (and per shifted or not: `x + 0` would
        // turn −0 into +0)
        macro_rules! each {
            ($($k:ident),*) => { match (kind, shift == 0.0) { $(
                (Unary::$k, true) => kernels::map1(o, xs, |v| Unary::$k.f(v)),
                (Unary::$k, false) => kernels::map1(o, xs, |v| Unary::$k.f(v + shift)),
            )* } };
        }
        each!(
            Relu, Elu, Softplus, Sigmoid, Tanh, Exp, Log, Abs, Square, Sqrt
        );
        let rg = self.rg(x);
        self.push(Op::Unary { kind, x, shift }, out, rg)
    }
    /// `max(x, 0)`.
    pub fn relu(&mut self, x: Var) -> Var {
        self.unary(Unary::Relu, x)
    }
    /// ELU with α = 1.
    pub fn elu(&mut self, x: Var) -> Var {
        self.unary(Unary::Elu, x)
    }
    /// Softplus with PyTorch's threshold 20.
    pub fn softplus(&mut self, x: Var) -> Var {
        self.unary(Unary::Softplus, x)
    }
    /// Logistic sigmoid.
    pub fn sigmoid(&mut self, x: Var) -> Var {
        self.unary(Unary::Sigmoid, x)
    }
    /// Hyperbolic tangent.
    pub fn tanh(&mut self, x: Var) -> Var {
        self.unary(Unary::Tanh, x)
    }
    /// `eˣ`.
    pub fn exp(&mut self, x: Var) -> Var {
        self.unary(Unary::Exp, x)
    }
    /// Natural logarithm.
    pub fn log(&mut self, x: Var) -> Var {
        self.unary(Unary::Log, x)
    }
    /// `|x|`.
    pub fn abs(&mut self, x: Var) -> Var {
        self.unary(Unary::Abs, x)
    }
    /// `x²`.
    pub fn square(&mut self, x: Var) -> Var {
        self.unary(Unary::Square, x)
    }
    /// `√x`.
    pub fn sqrt(&mut self, x: Var) -> Var {
        self.unary(Unary::Sqrt, x)
    }

    /// `min(max(x, lo), hi)`; gradient 1 strictly inside, 0 at and beyond the bounds.
    pub fn clamp(&mut self, x: Var, lo: f32, hi: f32) -> Var {
        assert!(lo <= hi, "clamp: lo {lo} > hi {hi}");
        let mut out = self.pool.take_like(&self.nodes[x].value);
        let xs = self.nodes[x].value.as_slice().expect("standard layout");
        out.as_slice_mut()
            .expect("standard layout")
            .iter_mut()
            .zip(xs)
            .for_each(|(o, &v)| *o = v.max(lo).min(hi));
        let rg = self.rg(x);
        self.push(Op::Clamp { x, lo, hi }, out, rg)
    }
    /// `max(x, lo)`.
    pub fn clamp_min(&mut self, x: Var, lo: f32) -> Var {
        self.clamp(x, lo, f32::INFINITY)
    }
    /// `min(x, hi)`.
    pub fn clamp_max(&mut self, x: Var, hi: f32) -> Var {
        self.clamp(x, f32::NEG_INFINITY, hi)
    }

    // ---- matrix products ------------------------------------------------------------------------

    /// `a · b` with `a: (r, k)`, `b: (k, c)`.
    pub fn matmul(&mut self, a: Var, b: Var) -> Var {
        let ((r, k), (k2, c)) = (self.shape(a), self.shape(b));
        assert_eq!(k, k2, "matmul: inner dimensions {k} and {k2} differ");
        let mut out = self.pool.take(r, c);
        gemm::matmul(
            out.as_slice_mut().expect("standard layout"),
            false,
            self.nodes[a].value.as_slice().expect("standard layout"),
            self.nodes[b].value.as_slice().expect("standard layout"),
            r,
            k,
            c,
        );
        let rg = self.rg(a) || self.rg(b);
        self.push(Op::MatMul { a, b }, out, rg)
    }

    /// Fused linear layer `x · w + b`, `x: (r, in)`, `w: (in, out)`, `b: (1, out)`.
    pub fn linear(&mut self, x: Var, w: Var, b: Var) -> Var {
        let ((r, k), (k2, c), sb) = (self.shape(x), self.shape(w), self.shape(b));
        assert_eq!(k, k2, "linear: input width {k} but weight has {k2} rows");
        assert_eq!(sb, (1, c), "linear: bias must be (1, {c}), got {sb:?}");
        let mut out = self.pool.take(r, c);
        let o = out.as_slice_mut().expect("standard layout");
        let bias = self.nodes[b].value.as_slice().expect("standard layout");
        gemm::matmul_bias(
            o,
            bias,
            self.nodes[x].value.as_slice().expect("standard layout"),
            self.nodes[w].value.as_slice().expect("standard layout"),
            r,
            k,
            c,
        );
        let rg = self.rg(x) || self.rg(w) || self.rg(b);
        self.push(Op::Linear { x, w, b }, out, rg)
    }

    /// Fused layer `act(x · w + b)` for an activation with [`Unary::has_df_from_output`] (relu,
    /// ELU, sigmoid, tanh). Same values and gradients, to the bit, as [`Tape::linear`] followed by
    /// [`Tape::unary`], but computed a block of rows at a time — bias, product and activation
    /// while the block is in L1 — and without storing the pre-activation.
    ///
    /// # Panics
    /// If `act` has no derivative from its output, or on shape mismatches (as `linear`).
    pub fn linear_act(&mut self, x: Var, w: Var, b: Var, act: Unary) -> Var {
        assert!(
            act.has_df_from_output(),
            "linear_act: {act:?} cannot be fused (allowed: Relu, Elu, Sigmoid, Tanh)"
        );
        let ((r, k), (k2, c), sb) = (self.shape(x), self.shape(w), self.shape(b));
        assert_eq!(k, k2, "linear: input width {k} but weight has {k2} rows");
        assert_eq!(sb, (1, c), "linear: bias must be (1, {c}), got {sb:?}");
        let mut out = self.pool.take(r, c);
        let o = out.as_slice_mut().expect("standard layout");
        let value = |v: Var| self.nodes[v].value.as_slice().expect("standard layout");
        let (xs, ws, bias) = (value(x), value(w), value(b));
        // the activation is applied to each output as the product finishes it (in registers on
        // the register kernels): same bits as the product followed by `act` on every element
        macro_rules! each {
            ($($k:ident),*) => { match act {
                Unary::Elu => gemm::matmul_bias_map(o, bias, (xs, ws), (r, k, c), gemm::Elu),
                $(Unary::$k => gemm::matmul_bias_map(o, bias, (xs, ws), (r, k, c), |v| Unary::$k.f(v)),)*
                _ => unreachable!("checked above"),
            } };
        }
        each!(Relu, Sigmoid, Tanh);
        let rg = self.rg(x) || self.rg(w) || self.rg(b);
        self.push(Op::LinearAct { x, w, b, act }, out, rg)
    }

    // ---- reductions -----------------------------------------------------------------------------

    /// A sum or mean over all elements, rows or columns.
    pub fn reduce(&mut self, kind: Reduce, x: Var) -> Var {
        let v = &self.nodes[x].value;
        let (r, c) = v.dim();
        let out = match kind {
            Reduce::SumAll | Reduce::MeanAll => {
                let total: f64 = v.iter().map(|&e| e as f64).sum();
                let total = if kind == Reduce::MeanAll {
                    total / (r * c) as f64
                } else {
                    total
                };
                let mut o = self.pool.take(1, 1);
                o[[0, 0]] = total as f32;
                o
            }
            Reduce::RowSums | Reduce::RowMeans => {
                let div = if kind == Reduce::RowMeans {
                    c as f32
                } else {
                    1.0
                };
                let mut o = self.pool.take(r, 1);
                for (o, row) in o.iter_mut().zip(v.rows()) {
                    *o = row.sum() / div;
                }
                o
            }
            Reduce::ColSums | Reduce::ColMeans => {
                let div = if kind == Reduce::ColMeans {
                    r as f32
                } else {
                    1.0
                };
                let mut o = self.pool.take(1, c);
                o.fill(0.0);
                for row in v.rows() {
                    o.row_mut(0).zip_mut_with(&row, |a, &b| *a += b);
                }
                o.mapv_inplace(|e| e / div);
                o
            }
        };
        let rg = self.rg(x);
        self.push(Op::Reduce { kind, x }, out, rg)
    }
    /// Sum of all elements → `(1, 1)`.
    pub fn sum_all(&mut self, x: Var) -> Var {
        self.reduce(Reduce::SumAll, x)
    }
    /// Mean of all elements → `(1, 1)`.
    pub fn mean_all(&mut self, x: Var) -> Var {
        self.reduce(Reduce::MeanAll, x)
    }
    /// Sum of each row → `(r, 1)`.
    pub fn row_sums(&mut self, x: Var) -> Var {
        self.reduce(Reduce::RowSums, x)
    }
    /// Mean of each row → `(r, 1)`.
    pub fn row_means(&mut self, x: Var) -> Var {
        self.reduce(Reduce::RowMeans, x)
    }
    /// Sum of each column → `(1, c)`.
    pub fn col_sums(&mut self, x: Var) -> Var {
        self.reduce(Reduce::ColSums, x)
    }
    /// Mean of each column → `(1, c)`.
    pub fn col_means(&mut self, x: Var) -> Var {
        self.reduce(Reduce::ColMeans, x)
    }

    // ---- layout ---------------------------------------------------------------------------------

    /// Concatenates inputs with equal row counts side by side.
    pub fn concat_cols(&mut self, parts: &[Var]) -> Var {
        assert!(!parts.is_empty(), "concat_cols: no inputs");
        let r = self.shape(parts[0]).0;
        for &p in parts {
            assert_eq!(self.shape(p).0, r, "concat_cols: row counts differ");
        }
        self.pack_cols(parts, r)
    }

    /// Concatenates the parts side by side after viewing each one's row-major data as `rows`
    /// rows: a part of `n` elements contributes `n / rows` columns. One node for what would be a
    /// [`Tape::reshape`] of each part and a [`Tape::concat_cols`] — e.g. the `(B·E, L)` pipelines
    /// of `E` echelons become `E·L` columns of their sample's row. Same values and gradients.
    ///
    /// # Panics
    /// If there are no parts or a part's element count is not a multiple of `rows`.
    pub fn pack_cols(&mut self, parts: &[Var], rows: usize) -> Var {
        assert!(
            !parts.is_empty() && rows > 0,
            "pack_cols: no inputs or no rows"
        );
        let width = |v: &Array2<f32>| {
            assert!(
                v.len().is_multiple_of(rows),
                "pack_cols: a part of {} elements is not {rows} rows",
                v.len()
            );
            v.len() / rows
        };
        let c: usize = parts.iter().map(|&p| width(&self.nodes[p].value)).sum();
        let mut out = self.pool.take(rows, c);
        let o = out.as_slice_mut().expect("standard layout");
        let mut col = 0;
        for &p in parts {
            let v = &self.nodes[p].value;
            let w = width(v);
            let vs = v.as_slice().expect("standard layout");
            kernels::copy_columns((o, c, col), (vs, w, 0), w, false);
            col += w;
        }
        let rg = parts.iter().any(|&p| self.rg(p));
        let (start, len) = self.push_inputs(parts);
        self.push(Op::Concat { start, len }, out, rg)
    }

    /// Columns `start .. start + width` of `x`.
    pub fn slice_cols(&mut self, x: Var, start: usize, width: usize) -> Var {
        let (r, c) = self.shape(x);
        assert!(
            start + width <= c,
            "slice_cols: {start}+{width} > {c} columns"
        );
        let mut out = self.pool.take(r, width);
        let xs = self.nodes[x].value.as_slice().expect("standard layout");
        let o = out.as_slice_mut().expect("standard layout");
        kernels::copy_columns((o, width, 0), (xs, c, start), width, false);
        let rg = self.rg(x);
        self.push(Op::SliceCols { x, start }, out, rg)
    }

    /// Column `j` of `x` as an `(r, 1)` tensor.
    pub fn column(&mut self, x: Var, j: usize) -> Var {
        self.slice_cols(x, j, 1)
    }

    /// Reinterprets the row-major data of `x` with a new shape (same element count). To the
    /// same shape it is `x` itself (no copy, no node).
    pub fn reshape(&mut self, x: Var, rows: usize, cols: usize) -> Var {
        let (r, c) = self.shape(x);
        assert_eq!(r * c, rows * cols, "reshape: {r}x{c} into {rows}x{cols}");
        if (r, c) == (rows, cols) {
            return x;
        }
        let mut out = self.pool.take(rows, cols);
        out.as_slice_mut()
            .expect("standard layout")
            .copy_from_slice(self.nodes[x].value.as_slice().expect("standard layout"));
        let rg = self.rg(x);
        self.push(Op::Reshape { x }, out, rg)
    }

    // ---- gather / scatter (message passing) -----------------------------------------------------

    /// Output row `i` = row `index[i]` of `x`.
    pub fn gather_rows(&mut self, x: Var, index: Arc<[u32]>) -> Var {
        let (r, c) = self.shape(x);
        let mut out = self.pool.take(index.len(), c);
        let v = &self.nodes[x].value;
        for (i, &src) in index.iter().enumerate() {
            assert!(
                (src as usize) < r,
                "gather_rows: index {src} out of {r} rows"
            );
            out.row_mut(i).assign(&v.row(src as usize));
        }
        let rg = self.rg(x);
        self.push(Op::GatherRows { x, index }, out, rg)
    }

    /// Output row `j` = Σ over the CSR entries of `j` of `weight · x[source]` (segment sum).
    pub fn segment_sum(&mut self, x: Var, csr: Arc<Csr>) -> Var {
        let (r, c) = self.shape(x);
        let mut out = self.pool.take(csr.n_out(), c);
        out.fill(0.0);
        let v = &self.nodes[x].value;
        for j in 0..csr.n_out() {
            let mut dst = out.row_mut(j);
            for k in csr.offsets[j] as usize..csr.offsets[j + 1] as usize {
                let src = csr.sources[k] as usize;
                assert!(src < r, "segment_sum: source {src} out of {r} rows");
                let w = csr.weight(k);
                dst.zip_mut_with(&v.row(src), |d, &e| *d += w * e);
            }
        }
        let rg = self.rg(x);
        self.push(Op::SegmentSum { x, csr }, out, rg)
    }

    /// Softmax over each row (max-subtracted, stable).
    pub fn softmax_rows(&mut self, x: Var) -> Var {
        let mut out = self.pool.take_like(&self.nodes[x].value);
        out.assign(&self.nodes[x].value);
        for mut row in out.rows_mut() {
            let m = row.fold(f32::NEG_INFINITY, |m, &e| m.max(e));
            row.mapv_inplace(|e| (e - m).exp());
            let total = row.sum();
            row.mapv_inplace(|e| e / total);
        }
        let rg = self.rg(x);
        self.push(Op::SoftmaxRows { x }, out, rg)
    }

    // ---- pipeline ops ---------------------------------------------------------------------------

    /// Advances pipelines one period: column `j` ← column `j + 1`, the last column ← 0.
    pub fn shift_left(&mut self, x: Var) -> Var {
        let (r, c) = self.shape(x);
        let mut out = self.pool.take(r, c);
        out.slice_mut(s![.., ..c - 1])
            .assign(&self.nodes[x].value.slice(s![.., 1..]));
        out.column_mut(c - 1).fill(0.0);
        let rg = self.rg(x);
        self.push(Op::ShiftLeft { x }, out, rg)
    }

    /// `x` with `v[i]` (`v: (r, 1)`) added at column `cols[i]` of row `i`: an order arriving in the
    /// pipeline slot of its lead time (slot `lead_time − 1`).
    pub fn add_at_column(&mut self, x: Var, v: Var, cols: Arc<[u32]>) -> Var {
        let (r, c) = self.shape(x);
        assert_eq!(self.shape(v), (r, 1), "add_at_column: v must be ({r}, 1)");
        assert_eq!(cols.len(), r, "add_at_column: one column index per row");
        let mut out = self.pool.take(r, c);
        out.assign(&self.nodes[x].value);
        let vv = &self.nodes[v].value;
        for (i, &col) in cols.iter().enumerate() {
            assert!((col as usize) < c, "add_at_column: column {col} out of {c}");
            out[[i, col as usize]] += vv[[i, 0]];
        }
        let rg = self.rg(x) || self.rg(v);
        self.push(Op::AddAtColumn { x, v, cols }, out, rg)
    }

    // ---- custom ---------------------------------------------------------------------------------

    /// Applies a fused op from another crate (see [`CustomOp`]).
    pub fn custom(&mut self, op: Arc<dyn CustomOp>, inputs: &[Var]) -> Var {
        let shapes: Vec<(usize, usize)> = inputs.iter().map(|&v| self.shape(v)).collect();
        let (r, c) = op.output_shape(&shapes);
        let mut out = self.pool.take(r, c);
        {
            let vals: Vec<&Array2<f32>> = inputs.iter().map(|&v| &self.nodes[v].value).collect();
            op.forward(&vals, &mut out);
        }
        let rg = inputs.iter().any(|&v| self.rg(v));
        let (start, len) = self.push_inputs(inputs);
        self.push(Op::Custom { op, start, len }, out, rg)
    }
}

impl crate::tape::BufferPool {
    /// A buffer of the same shape as `a` (contents unspecified).
    pub fn take_like(&mut self, a: &Array2<f32>) -> Array2<f32> {
        self.take(a.nrows(), a.ncols())
    }
}

// =================================================================================================
// Backward: one exhaustive match.
// =================================================================================================

/// Pushes the adjoint `g` of node `i` (whose op is `op`) to its inputs.
pub(crate) fn backward_node(
    op: &Op,
    i: usize,
    nodes: &[Node],
    lists: &[Var],
    g: &Array2<f32>,
    sink: &mut GradSink,
    param_grads: &mut Grads,
) {
    let val = |v: Var| &nodes[v.index()].value;
    let out = &nodes[i].value;
    match op {
        Op::Constant | Op::Variable => {}
        Op::Param(id) => *param_grads.get_mut(*id) += g,

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

        Op::Affine { x, scale, .. } => {
            if sink.wants(*x) {
                let (dst, fresh) = sink.slot(*x);
                map_into(dst, fresh, g, |gi| scale * gi);
            }
        }

        Op::Unary { kind, x, shift } => {
            if sink.wants(*x) {
                let shift = *shift;
                let (xs, ys) = (val(*x), out);
                let (dst, fresh) = sink.slot(*x);
                let d = dst.as_slice_mut().expect("standard layout");
                let (gs, xs, ys) = (
                    g.as_slice().expect("layout"),
                    xs.as_slice().expect("layout"),
                    ys.as_slice().expect("layout"),
                );
                macro_rules! each {
                    ($($k:ident),*) => { match (kind, shift == 0.0) { $(
                        (Unary::$k, true) => kernels::map3(d, !fresh, gs, xs, ys, |gi, xi, yi| gi * Unary::$k.df(xi, yi)),
                        (Unary::$k, false) => kernels::map3(d, !fresh, gs, xs, ys, |gi, xi, yi| gi * Unary::$k.df(xi + shift, yi)),
                    )* } };
                }
                each!(
                    Relu, Elu, Softplus, Sigmoid, Tanh, Exp, Log, Abs, Square, Sqrt
                );
            }
        }

        Op::Clamp { x, lo, hi } => {
            if sink.wants(*x) {
                let (lo, hi) = (*lo, *hi);
                let xs = val(*x);
                let (dst, fresh) = sink.slot(*x);
                map3_into(dst, fresh, g, xs, xs, |gi, xi, _| {
                    if xi > lo && xi < hi { gi } else { 0.0 }
                });
            }
        }

        Op::MatMul { a, b } => {
            // d(a·b)/da = g · bᵀ ; d(a·b)/db = aᵀ · g
            if sink.wants(*a) {
                grad_times_transpose(sink, *a, g, val(*b));
            }
            if sink.wants(*b) {
                let va = val(*a);
                let (dst, fresh) = sink.slot(*b);
                transpose_times_grad(dst, fresh, va, g);
            }
        }

        Op::Linear { x, w, b } => linear_backward(sink, val(*x), val(*w), (*x, *w, *b), g),

        Op::LinearAct { x, w, b, .. } if sink.is_folded(i) => {
            // the layer reading y delivered dp = g ⊙ act'(y) already (`fold_activation`)
            linear_backward(sink, val(*x), val(*w), (*x, *w, *b), g);
        }

        Op::LinearAct { x, w, b, act } => {
            // y = act(p), p = x·w + b:  dp = g ⊙ act'(y), then as Linear with dp
            let mut dp = sink.scratch(g.nrows(), g.ncols());
            let gs = g.as_slice().expect("standard layout");
            let ys = out.as_slice().expect("standard layout");
            let d = dp.as_slice_mut().expect("standard layout");
            macro_rules! each {
                ($($k:ident),*) => { match act {
                    $(Unary::$k => kernels::map3(d, false, gs, ys, ys, |gi, yi, _| gi * Unary::$k.df_from_output(yi)),)*
                    _ => unreachable!("linear_act only records fusable activations"),
                } };
            }
            each!(Relu, Elu, Sigmoid, Tanh);
            linear_backward(sink, val(*x), val(*w), (*x, *w, *b), &dp);
            sink.give(dp);
        }

        Op::Reduce { kind, x } => {
            if sink.wants(*x) {
                let (r, c) = val(*x).dim();
                let (dst, fresh) = sink.slot(*x);
                match kind {
                    Reduce::SumAll | Reduce::MeanAll => {
                        let scale = if *kind == Reduce::MeanAll {
                            1.0 / (r * c) as f32
                        } else {
                            1.0
                        };
                        let v = g[[0, 0]] * scale;
                        if fresh {
                            dst.fill(v);
                        } else {
                            dst.mapv_inplace(|d| d + v);
                        }
                    }
                    Reduce::RowSums | Reduce::RowMeans => {
                        let scale = if *kind == Reduce::RowMeans {
                            1.0 / c as f32
                        } else {
                            1.0
                        };
                        for (mut row, &gi) in dst.rows_mut().into_iter().zip(g.iter()) {
                            let v = gi * scale;
                            if fresh {
                                row.fill(v);
                            } else {
                                row.mapv_inplace(|d| d + v);
                            }
                        }
                    }
                    Reduce::ColSums | Reduce::ColMeans => {
                        let scale = if *kind == Reduce::ColMeans {
                            1.0 / r as f32
                        } else {
                            1.0
                        };
                        let grow = g.row(0);
                        for mut row in dst.rows_mut() {
                            if fresh {
                                row.zip_mut_with(&grow, |d, &e| *d = e * scale);
                            } else {
                                row.zip_mut_with(&grow, |d, &e| *d += e * scale);
                            }
                        }
                    }
                }
            }
        }

        Op::Concat { start, len } => {
            let (gs, c) = (g.as_slice().expect("standard layout"), g.ncols());
            let mut col = 0;
            for &p in &lists[*start as usize..(*start + *len) as usize] {
                // each part as g's rows (see `pack_cols`)
                let w = val(p).len() / g.nrows();
                if sink.wants(p) {
                    // the part's columns of g, written or added into its adjoint
                    let (dst, fresh) = sink.slot(p);
                    let d = dst.as_slice_mut().expect("standard layout");
                    kernels::copy_columns((d, w, 0), (gs, c, col), w, !fresh);
                }
                col += w;
            }
        }

        Op::SliceCols { x, start } => {
            if sink.wants(*x) {
                let w = g.ncols();
                let (dst, fresh) = sink.slot(*x);
                if fresh {
                    dst.fill(0.0);
                }
                let c = dst.ncols();
                let d = dst.as_slice_mut().expect("standard layout");
                let gs = g.as_slice().expect("standard layout");
                kernels::copy_columns((d, c, *start), (gs, w, 0), w, true);
            }
        }

        Op::Reshape { x } => {
            if sink.wants(*x) {
                let (dst, fresh) = sink.slot(*x);
                let gs = g.as_slice().expect("standard layout");
                let d = dst.as_slice_mut().expect("standard layout");
                if fresh {
                    d.copy_from_slice(gs);
                } else {
                    d.iter_mut().zip(gs).for_each(|(d, &e)| *d += e);
                }
            }
        }

        Op::GatherRows { x, index } => {
            if sink.wants(*x) {
                let (dst, fresh) = sink.slot(*x);
                if fresh {
                    dst.fill(0.0);
                }
                for (i, &src) in index.iter().enumerate() {
                    dst.row_mut(src as usize)
                        .zip_mut_with(&g.row(i), |d, &e| *d += e);
                }
            }
        }

        Op::SegmentSum { x, csr } => {
            if sink.wants(*x) {
                let (dst, fresh) = sink.slot(*x);
                if fresh {
                    dst.fill(0.0);
                }
                for j in 0..csr.n_out() {
                    let grow = g.row(j);
                    for k in csr.offsets[j] as usize..csr.offsets[j + 1] as usize {
                        let w = csr.weight(k);
                        dst.row_mut(csr.sources[k] as usize)
                            .zip_mut_with(&grow, |d, &e| *d += w * e);
                    }
                }
            }
        }

        Op::SoftmaxRows { x } => {
            // dx = y ⊙ (g − Σ_j g_j y_j), row by row
            if sink.wants(*x) {
                let (dst, fresh) = sink.slot(*x);
                for ((mut drow, grow), yrow) in
                    dst.rows_mut().into_iter().zip(g.rows()).zip(out.rows())
                {
                    let dot: f32 = grow.iter().zip(yrow.iter()).map(|(a, b)| a * b).sum();
                    for ((d, &gi), &yi) in drow.iter_mut().zip(grow.iter()).zip(yrow.iter()) {
                        let v = yi * (gi - dot);
                        if fresh {
                            *d = v;
                        } else {
                            *d += v;
                        }
                    }
                }
            }
        }

        Op::ShiftLeft { x } => {
            // out[:, j] = x[:, j+1]  ⇒  dx[:, j+1] += g[:, j], dx[:, 0] gets nothing
            if sink.wants(*x) {
                let c = g.ncols();
                let (dst, fresh) = sink.slot(*x);
                if fresh {
                    dst.column_mut(0).fill(0.0);
                    dst.slice_mut(s![.., 1..]).assign(&g.slice(s![.., ..c - 1]));
                } else {
                    let mut tail = dst.slice_mut(s![.., 1..]);
                    tail += &g.slice(s![.., ..c - 1]);
                }
            }
        }

        Op::AddAtColumn { x, v, cols } => {
            if sink.wants(*x) {
                sink.accumulate(*x, g);
            }
            if sink.wants(*v) {
                let (dst, fresh) = sink.slot(*v);
                for (i, &col) in cols.iter().enumerate() {
                    let e = g[[i, col as usize]];
                    if fresh {
                        dst[[i, 0]] = e;
                    } else {
                        dst[[i, 0]] += e;
                    }
                }
            }
        }

        Op::Custom { op, start, len } => {
            let inputs = &lists[*start as usize..(*start + *len) as usize];
            let vals: Vec<&Array2<f32>> = inputs.iter().map(|&v| val(v)).collect();
            // An input that already has an adjoint lends it (the op adds into it); one that has
            // none gets a pooled buffer with unspecified contents (the op overwrites it). Either
            // way the buffer then goes (back) into the input's slot; a repeated input's second
            // buffer is added there.
            let mut fresh = vec![false; inputs.len()];
            let mut grad_inputs: Vec<Option<Array2<f32>>> = inputs
                .iter()
                .zip(fresh.iter_mut())
                .map(|(&v, is_fresh)| {
                    sink.wants(v).then(|| {
                        sink.take_existing(v).unwrap_or_else(|| {
                            *is_fresh = true;
                            let (r, c) = val(v).dim();
                            sink.scratch(r, c)
                        })
                    })
                })
                .collect();
            op.backward_into(&vals, out, g, &mut grad_inputs, &fresh);
            for (&v, gi) in inputs.iter().zip(grad_inputs) {
                if let Some(gi) = gi {
                    sink.accumulate_owned(v, gi);
                }
            }
        }
    }
}

/// `dst = f(g)` or `dst += f(g)`.
fn map_into(dst: &mut Array2<f32>, fresh: bool, g: &Array2<f32>, f: impl Fn(f32) -> f32) {
    let d = dst.as_slice_mut().expect("standard layout");
    let gs = g.as_slice().expect("standard layout");
    if fresh {
        d.iter_mut().zip(gs).for_each(|(d, &gi)| *d = f(gi));
    } else {
        d.iter_mut().zip(gs).for_each(|(d, &gi)| *d += f(gi));
    }
}

/// `dst = f(g, x, y)` or `dst += f(g, x, y)`, elementwise over equal shapes.
fn map3_into(
    dst: &mut Array2<f32>,
    fresh: bool,
    g: &Array2<f32>,
    x: &Array2<f32>,
    y: &Array2<f32>,
    f: impl Fn(f32, f32, f32) -> f32,
) {
    let d = dst.as_slice_mut().expect("standard layout");
    let (gs, xs, ys) = (
        g.as_slice().expect("standard layout"),
        x.as_slice().expect("standard layout"),
        y.as_slice().expect("standard layout"),
    );
    if fresh {
        for (((d, &gi), &xi), &yi) in d.iter_mut().zip(gs).zip(xs).zip(ys) {
            *d = f(gi, xi, yi);
        }
    } else {
        for (((d, &gi), &xi), &yi) in d.iter_mut().zip(gs).zip(xs).zip(ys) {
            *d += f(gi, xi, yi);
        }
    }
}

/// Backward of `y = x·w + b` for the adjoint `g` of `y`: `dx = g·wᵀ`, `dw = xᵀ·g`,
/// `db` = column sums of `g` (each only if wanted).
fn linear_backward(
    sink: &mut GradSink,
    vx: &Array2<f32>,
    vw: &Array2<f32>,
    (x, w, b): (Var, Var, Var),
    g: &Array2<f32>,
) {
    if sink.wants(x) {
        match sink.fold_activation(x) {
            Some(act) => grad_times_transpose_folded(sink, x, g, (w, vw), act),
            None => grad_times_transpose(sink, x, g, vw),
        }
    }
    if sink.wants(w) && sink.wants(b) && w != b {
        // both in one pass over `g`: the bias gradient is a row of ones in xᵀ
        let ((dw, fresh_w), (db, fresh_b)) = sink.slot_pair(w, b);
        let (r, k) = vx.dim();
        gemm::matmul_at_b_and_column_sums(
            dw.as_slice_mut().expect("standard layout"),
            !fresh_w,
            db.as_slice_mut().expect("standard layout"),
            !fresh_b,
            vx.as_slice().expect("standard layout"),
            g.as_slice().expect("standard layout"),
            (r, k, g.ncols()),
        );
        return;
    }
    if sink.wants(w) {
        let (dst, fresh) = sink.slot(w);
        transpose_times_grad(dst, fresh, vx, g);
    }
    if sink.wants(b) {
        let (dst, fresh) = sink.slot(b);
        kernels::column_sums_into(
            dst.as_slice_mut().expect("standard layout"),
            fresh,
            g.as_slice().expect("standard layout"),
        );
    }
}

/// Adds (or writes) `g · mᵀ` into the adjoint of `target` (`g: r×c`, `m: k×c`): the input
/// gradient of a product with a weight ([`gemm::matmul_a_bt`] picks the kernel by shape).
fn grad_times_transpose(sink: &mut GradSink, target: Var, g: &Array2<f32>, m: &Array2<f32>) {
    let (r, c) = g.dim();
    let k = m.nrows();
    let (dst, fresh) = sink.slot(target);
    gemm::matmul_a_bt(
        dst.as_slice_mut().expect("standard layout"),
        !fresh,
        g.as_slice().expect("standard layout"),
        m.as_slice().expect("standard layout"),
        r,
        c,
        k,
    );
}

/// Writes `(g · mᵀ) ⊙ act'(y)` as the adjoint of `target`, whose value `y` is the output of a
/// fused layer with activation `act` ([`GradSink::fold_activation`] said the fold is allowed), and
/// marks it folded: that layer's backward rule then uses it as its `dp` directly. The same bits as
/// writing `g · mᵀ` and letting the layer multiply by `act'(y)`.
fn grad_times_transpose_folded(
    sink: &mut GradSink,
    target: Var,
    g: &Array2<f32>,
    (m_var, m): (Var, &Array2<f32>),
    act: Unary,
) {
    let (r, c) = g.dim();
    let k = m.nrows();
    // on the register kernels, `mᵀ` is made once per backward pass, not once per period
    let transposed =
        (act == Unary::Elu && gemm::register_kernels(c, k)).then(|| sink.transpose(m_var));
    let nodes = sink.nodes;
    let y = nodes[target.index()]
        .value
        .as_slice()
        .expect("standard layout");
    let (dst, fresh) = sink.slot(target);
    assert!(fresh, "a folded adjoint is the first one");
    let (dst, g, m) = (
        dst.as_slice_mut().expect("standard layout"),
        g.as_slice().expect("standard layout"),
        m.as_slice().expect("standard layout"),
    );
    match act {
        Unary::Elu => match &transposed {
            Some(mt) => {
                gemm::matmul_times_derivative(dst, g, mt, y, (r, c, k), gemm::EluDerivative)
            }
            None => {
                gemm::matmul_a_bt_times_derivative(dst, g, m, y, (r, c, k), gemm::EluDerivative)
            }
        },
        _ => gemm::matmul_a_bt_times_derivative(dst, g, m, y, (r, c, k), move |y| {
            act.df_from_output(y)
        }),
    }
    sink.mark_folded(target);
    if let Some(mt) = transposed {
        sink.keep_transpose(m_var, mt);
    }
}

/// `dst (=|+=) aᵀ · g` with `a: r×k`, `g: r×c`: the weight gradient of a product.
fn transpose_times_grad(dst: &mut Array2<f32>, fresh: bool, a: &Array2<f32>, g: &Array2<f32>) {
    let (r, k) = a.dim();
    gemm::matmul_at_b(
        dst.as_slice_mut().expect("standard layout"),
        !fresh,
        a.as_slice().expect("standard layout"),
        g.as_slice().expect("standard layout"),
        r,
        k,
        g.ncols(),
    );
}
