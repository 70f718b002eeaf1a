//! Elementwise functions of one input: the [`Unary`] functions (each declared once as `f(x)` and
//! its derivative), the scalar [`Tape::affine`] map and [`Tape::clamp`], forward and backward.

use super::{Backward, Op};
use crate::kernels;
use crate::tape::{GradSink, Tape, Var};
use ndarray::Array2;

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

impl Tape {
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
}

/// The backward rules of the elementwise functions of one input: push the adjoint `g` of the node to its inputs.
pub(super) fn backward(op: &Op, at: &Backward, sink: &mut GradSink) {
    let Backward { g, out, .. } = *at;
    let val = |v: Var| at.val(v);
    match op {
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

        _ => unreachable!(
            "{} is not one of the elementwise functions of one input",
            op.name()
        ),
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
