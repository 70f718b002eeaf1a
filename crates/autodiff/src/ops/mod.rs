//! Every operation of the engine, forward and backward side by side, one file per family.
//!
//! Each op is a variant of the closed enum [`Op`]. A forward method on [`Tape`] computes the value
//! into a pooled buffer and records the op; each family's `backward` function, in the same file,
//! adds the vector–Jacobian product of the adjoint `g` of a node into the adjoints of its inputs,
//! and `backward_node` dispatches a node to it:
//!
//! | file | ops |
//! | --- | --- |
//! | `unary.rs` | [`Unary`] functions, [`Tape::affine`], [`Tape::clamp`] |
//! | `binary.rs` | [`BinaryKind`] functions with broadcasting |
//! | `linear.rs` | [`Tape::matmul`], [`Tape::linear`], [`Tape::linear_act`] |
//! | `reduce.rs` | [`Reduce`] sums and means, [`Tape::softmax_rows`] |
//! | `shape.rs` | concatenation, slices, reshape, [`Tape::shift_left`], [`Tape::add_at_column`] |
//! | `gather.rs` | [`Tape::gather_rows`], [`Tape::segment_sum`] over a [`Csr`] |
//! | `custom.rs` | [`Tape::custom`]: a [`CustomOp`] from another crate |
//!
//! Conventions at kinks and ties (those the reference's gradients show, spec §5, so gradients match
//! its fixtures):
//! * `relu(x)` and `clamp(x, lo, hi)` pass the gradient only strictly inside: d/dx = 0 at `x == 0`
//!   for relu and at `x == lo` or `x == hi` for clamp (the reference's `clip(x, min = 0)` gives 0 at
//!   0, spec §5; PyTorch's two-sided `clamp` would pass 1 at its bounds — the only difference).
//! * `minimum(a, b)` / `maximum(a, b)` split the gradient 0.5 / 0.5 when `a == b`.
//! * `abs(x)` has derivative `sign(x)`, 0 at 0.
//! * `softplus(x)` returns `x` (derivative 1) for `x > 20`, PyTorch's threshold.

mod binary;
mod custom;
mod gather;
mod linear;
mod reduce;
mod shape;
mod unary;

pub use binary::BinaryKind;
pub use gather::Csr;
pub use reduce::Reduce;
pub use unary::{SOFTPLUS_THRESHOLD, Unary, sigmoid};

use crate::custom::CustomOp;
use crate::params::{Grads, ParamId};
use crate::tape::{GradSink, Node, Tape, Var};
use ndarray::Array2;
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

impl Tape {
    fn rg(&self, v: Var) -> bool {
        self.requires_grad(v)
    }
}

impl crate::tape::BufferPool {
    /// A buffer of the same shape as `a` (contents unspecified).
    pub fn take_like(&mut self, a: &Array2<f32>) -> Array2<f32> {
        self.take(a.nrows(), a.ncols())
    }
}

/// What a backward rule reads besides the sink: the tape's nodes and input lists, the index `i`
/// of the node being differentiated, its value `out` and its adjoint `g`.
#[derive(Clone, Copy)]
pub(crate) struct Backward<'a> {
    nodes: &'a [Node],
    lists: &'a [Var],
    i: usize,
    out: &'a Array2<f32>,
    g: &'a Array2<f32>,
}

impl<'a> Backward<'a> {
    /// The value of node `v`.
    fn val(&self, v: Var) -> &'a Array2<f32> {
        &self.nodes[v.index()].value
    }
}

/// Pushes the adjoint `g` of node `i` (whose op is `op`) to its inputs: the rule of the op's family.
pub(crate) fn backward_node(
    op: &Op,
    i: usize,
    nodes: &[Node],
    lists: &[Var],
    g: &Array2<f32>,
    sink: &mut GradSink,
    param_grads: &mut Grads,
) {
    let at = Backward {
        nodes,
        lists,
        i,
        out: &nodes[i].value,
        g,
    };
    match op {
        Op::Constant | Op::Variable => {}
        Op::Param(id) => *param_grads.get_mut(*id) += g,
        Op::Binary { .. } => binary::backward(op, &at, sink),
        Op::Affine { .. } | Op::Unary { .. } | Op::Clamp { .. } => unary::backward(op, &at, sink),
        Op::MatMul { .. } | Op::Linear { .. } | Op::LinearAct { .. } => {
            linear::backward(op, &at, sink)
        }
        Op::Reduce { .. } | Op::SoftmaxRows { .. } => reduce::backward(op, &at, sink),
        Op::Concat { .. }
        | Op::SliceCols { .. }
        | Op::Reshape { .. }
        | Op::ShiftLeft { .. }
        | Op::AddAtColumn { .. } => shape::backward(op, &at, sink),
        Op::GatherRows { .. } | Op::SegmentSum { .. } => gather::backward(op, &at, sink),
        Op::Custom { .. } => custom::backward(op, &at, sink),
    }
}
