//! Matrix products: [`Tape::matmul`], the fused linear layer [`Tape::linear`] and the fused layer
//! with an activation [`Tape::linear_act`], forward and backward (on the kernels of
//! [`crate::gemm`]), including the fold of a layer's activation derivative into the adjoint
//! written by the layer above.

use super::{Backward, Op, Unary};
use crate::gemm;
use crate::kernels;
use crate::tape::{GradSink, Tape, Var};
use ndarray::Array2;

impl Tape {
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
}

/// The backward rules of the matrix products: push the adjoint `g` of the node to its inputs.
pub(super) fn backward(op: &Op, at: &Backward, sink: &mut GradSink) {
    let Backward { i, g, out, .. } = *at;
    let val = |v: Var| at.val(v);
    match op {
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

        _ => unreachable!("{} is not one of the matrix products", op.name()),
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
