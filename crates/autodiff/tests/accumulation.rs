//! Deterministic checks that every backward rule *adds* into an adjoint that already holds a
//! contribution (instead of overwriting it), that parameters (`Op::Param`) get finite-difference
//! correct gradients that accumulate in `Grads`, and that broadcasting of both operands at once is
//! differentiated correctly.
//!
//! Each op `f` is recorded twice on the same inputs, and every input is then read once more by a
//! later node. The backward sweep visits nodes from last to first, so that later reader writes each
//! input's adjoint first (fresh), and both copies of `f` must then add into it: a rule that
//! overwrites loses the other paths' contributions and fails the finite-difference check by O(1).
//! The first-write (fresh) branch of every rule is covered by `gradcheck_ops.rs`.
#![allow(clippy::cloned_ref_to_slice_refs)]

use hdpo_autodiff::gradcheck::{GradcheckOptions, check};
use hdpo_autodiff::{Csr, CustomOp, InputGrad, ParamStore, Tape, Unary, Var};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::sync::Arc;

/// Random matrix with entries in ±[0.2, 1.5] (away from the kinks at 0).
fn away_from_zero(r: usize, c: usize, seed: u64) -> Array2<f32> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    Array2::from_shape_simple_fn((r, c), || {
        let m: f32 = rng.random_range(0.2..1.5);
        if rng.random::<bool>() { m } else { -m }
    })
}

fn positive(r: usize, c: usize, seed: u64) -> Array2<f32> {
    away_from_zero(r, c, seed).mapv(f32::abs)
}

/// A fixed weight array of `v`'s shape, different for each `salt`.
fn weights(t: &mut Tape, v: Var, salt: u64) -> Var {
    let (r, c) = t.shape(v);
    t.constant(away_from_zero(r, c, 1000 + salt))
}

/// `Σ w ⊙ v` with fixed weights.
fn weighted_sum(t: &mut Tape, v: Var, salt: u64) -> Var {
    let w = weights(t, v, salt);
    let p = t.mul(v, w);
    t.sum_all(p)
}

/// Checks `f` recorded twice and each input read again afterwards (see the module doc).
fn assert_accumulates(name: &str, inputs: &[Array2<f32>], f: impl Fn(&mut Tape, &[Var]) -> Var) {
    let report = check(
        inputs,
        |t, v| {
            let y1 = f(t, v);
            let y2 = f(t, v);
            let mut total = weighted_sum(t, y1, 1);
            let second = weighted_sum(t, y2, 2);
            total = t.add(total, second);
            // later readers: their rules run first and write every input's adjoint fresh
            for (k, &x) in v.iter().enumerate() {
                let s = weighted_sum(t, x, 10 + k as u64);
                total = t.add(total, s);
            }
            total
        },
        &GradcheckOptions::default(),
    );
    assert!(report.passed, "{name}: {report}");
    assert!(report.checked > 0, "{name}: nothing checked");
}

#[test]
fn binary_ops_accumulate_at_every_broadcast_pattern() {
    let a = away_from_zero(4, 3, 1);
    // same shape, b a row, b a column, b a scalar, and both broadcast: (4, 1) with (1, 3)
    let patterns = [
        (a.clone(), away_from_zero(4, 3, 2)),
        (a.clone(), away_from_zero(1, 3, 3)),
        (a.clone(), away_from_zero(4, 1, 4)),
        (a.clone(), away_from_zero(1, 1, 5)),
        (away_from_zero(1, 3, 6), a.clone()),
        (away_from_zero(4, 1, 7), away_from_zero(1, 3, 8)),
        (away_from_zero(1, 3, 9), away_from_zero(4, 1, 10)),
    ];
    for (x, y) in patterns {
        let shapes = format!("{:?} ∘ {:?}", x.dim(), y.dim());
        let ins = [x.clone(), y.clone()];
        assert_accumulates(&format!("add {shapes}"), &ins, |t, v| t.add(v[0], v[1]));
        assert_accumulates(&format!("sub {shapes}"), &ins, |t, v| t.sub(v[0], v[1]));
        assert_accumulates(&format!("mul {shapes}"), &ins, |t, v| t.mul(v[0], v[1]));
        assert_accumulates(&format!("div {shapes}"), &ins, |t, v| t.div(v[0], v[1]));
        // min/max without ties: one operand shifted by 3 (|entries| < 1.5)
        let shifted = [x.clone(), &y + 3.0];
        assert_accumulates(&format!("minimum {shapes}"), &shifted, |t, v| {
            t.minimum(v[0], v[1])
        });
        let shifted = [x + 3.0, y];
        assert_accumulates(&format!("maximum {shapes}"), &shifted, |t, v| {
            t.maximum(v[0], v[1])
        });
    }
}

/// Both operands broadcast at once, `(B, 1) ∘ (1, C) → (B, C)`, against finite differences without
/// reuse (the fresh branch), for every binary function.
#[test]
fn two_sided_broadcasting_matches_finite_differences() {
    let col = away_from_zero(5, 1, 21);
    let row = away_from_zero(1, 4, 22);
    for (x, y) in [(col.clone(), row.clone()), (row, col)] {
        let ins = [x.clone(), y.clone()];
        for (name, f) in [
            (
                "add",
                (|t: &mut Tape, v: &[Var]| t.add(v[0], v[1])) as fn(&mut Tape, &[Var]) -> Var,
            ),
            ("sub", |t, v| t.sub(v[0], v[1])),
            ("mul", |t, v| t.mul(v[0], v[1])),
            ("div", |t, v| t.div(v[0], v[1])),
        ] {
            let report = check(&ins, f, &GradcheckOptions::default());
            assert!(
                report.passed,
                "{name} {:?} ∘ {:?}: {report}",
                x.dim(),
                y.dim()
            );
            // every element of both operands compared
            assert_eq!(report.checked, 9);
        }
        let shifted = [x.clone(), &y + 3.0];
        let report = check(
            &shifted,
            |t, v| t.minimum(v[0], v[1]),
            &GradcheckOptions::default(),
        );
        assert!(report.passed, "minimum two-sided: {report}");
        let report = check(
            &shifted,
            |t, v| t.maximum(v[0], v[1]),
            &GradcheckOptions::default(),
        );
        assert!(report.passed, "maximum two-sided: {report}");
    }
}

#[test]
fn unary_ops_accumulate() {
    let x = away_from_zero(3, 4, 31);
    let p = positive(3, 4, 32);
    let one = |name: &str, x: &Array2<f32>, f: fn(&mut Tape, Var) -> Var| {
        assert_accumulates(name, &[x.clone()], |t, v| f(t, v[0]));
    };
    one("affine", &x, |t, x| t.affine(x, -1.3, 0.4));
    one("scale", &x, |t, x| t.scale(x, 2.5));
    one("add_scalar", &x, |t, x| t.add_scalar(x, 0.7));
    one("neg", &x, |t, x| t.neg(x));
    one("relu", &x, |t, x| t.relu(x));
    one("elu", &x, |t, x| t.elu(x));
    one("softplus", &x, |t, x| t.softplus(x));
    one("sigmoid", &x, |t, x| t.sigmoid(x));
    one("tanh", &x, |t, x| t.tanh(x));
    one("exp", &x, |t, x| t.exp(x));
    one("abs", &x, |t, x| t.abs(x));
    one("square", &x, |t, x| t.square(x));
    one("log", &p, |t, x| t.log(x));
    one("sqrt", &p, |t, x| t.sqrt(x));
    // bounds at ±0.1 fall between the entries (|x| ≥ 0.2): some inside, some clamped
    one("clamp", &x, |t, x| t.clamp(x, -0.1, 0.1));
    one("clamp wide", &x, |t, x| t.clamp(x, -1.0, 1.0));
    one("clamp_min", &x, |t, x| t.clamp_min(x, 0.1));
    one("clamp_max", &x, |t, x| t.clamp_max(x, -0.1));
    for kind in [
        Unary::Relu,
        Unary::Elu,
        Unary::Softplus,
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::Exp,
        Unary::Abs,
        Unary::Square,
    ] {
        assert_accumulates(&format!("{kind:?}(x + 0.1)"), &[x.clone()], move |t, v| {
            t.unary_shifted(kind, v[0], 0.1)
        });
    }
    for kind in [Unary::Log, Unary::Sqrt] {
        assert_accumulates(&format!("{kind:?}(x + 0.1)"), &[p.clone()], move |t, v| {
            t.unary_shifted(kind, v[0], 0.1)
        });
    }
}

#[test]
fn linear_ops_accumulate() {
    let x = away_from_zero(5, 3, 41);
    let w = away_from_zero(3, 4, 42);
    let b = away_from_zero(1, 4, 43);
    assert_accumulates("matmul", &[x.clone(), w.clone()], |t, v| {
        t.matmul(v[0], v[1])
    });
    let ins = [x, w, b];
    assert_accumulates("linear", &ins, |t, v| t.linear(v[0], v[1], v[2]));
    for act in [Unary::Relu, Unary::Elu, Unary::Sigmoid, Unary::Tanh] {
        assert_accumulates(&format!("linear_act {act:?}"), &ins, move |t, v| {
            t.linear_act(v[0], v[1], v[2], act)
        });
    }
    // a stack of fused layers whose hidden output is read by one layer only (the folded-activation
    // path), recorded twice on the same weights
    let h = away_from_zero(4, 4, 44);
    let c = away_from_zero(1, 4, 45);
    let ins = [ins[0].clone(), ins[1].clone(), ins[2].clone(), h, c];
    assert_accumulates("linear_act stack", &ins, |t, v| {
        let hidden = t.linear_act(v[0], v[1], v[2], Unary::Elu);
        t.linear_act(hidden, v[3], v[4], Unary::Tanh)
    });
}

#[test]
fn reductions_accumulate() {
    let x = away_from_zero(4, 3, 51);
    let one = |name: &str, f: fn(&mut Tape, Var) -> Var| {
        assert_accumulates(name, &[x.clone()], |t, v| f(t, v[0]));
    };
    one("sum_all", |t, x| t.sum_all(x));
    one("mean_all", |t, x| t.mean_all(x));
    one("row_sums", |t, x| t.row_sums(x));
    one("row_means", |t, x| t.row_means(x));
    one("col_sums", |t, x| t.col_sums(x));
    one("col_means", |t, x| t.col_means(x));
    one("softmax_rows", |t, x| t.softmax_rows(x));
}

#[test]
fn layout_ops_accumulate() {
    let a = away_from_zero(3, 2, 61);
    let b = away_from_zero(3, 4, 62);
    assert_accumulates("concat_cols", &[a.clone(), b.clone()], |t, v| {
        t.concat_cols(&[v[0], v[1], v[0]])
    });
    let c = away_from_zero(6, 2, 63);
    let d = away_from_zero(3, 1, 64);
    assert_accumulates("pack_cols", &[c, b.clone(), d], |t, v| {
        t.pack_cols(&[v[0], v[1], v[2], v[0]], 3)
    });
    let one = |name: &str, f: fn(&mut Tape, Var) -> Var| {
        assert_accumulates(name, &[b.clone()], |t, v| f(t, v[0]));
    };
    one("slice_cols", |t, x| t.slice_cols(x, 1, 2));
    one("column", |t, x| t.column(x, 3));
    one("reshape", |t, x| t.reshape(x, 6, 2));
    one("shift_left", |t, x| t.shift_left(x));
    let order = away_from_zero(3, 1, 65);
    let cols: Arc<[u32]> = Arc::from(vec![0u32, 3, 3]);
    assert_accumulates("add_at_column", &[b.clone(), order], move |t, v| {
        t.add_at_column(v[0], v[1], cols.clone())
    });
    let x = away_from_zero(4, 3, 66);
    let index: Arc<[u32]> = Arc::from(vec![2u32, 0, 2, 3, 1]);
    assert_accumulates("gather_rows", &[x.clone()], move |t, v| {
        t.gather_rows(v[0], index.clone())
    });
    let csr = Arc::new(Csr::from_triples(
        3,
        &[
            (0, 1, 0.5),
            (0, 3, 1.0),
            (2, 0, 0.7),
            (2, 1, 0.2),
            (2, 2, 1.0),
        ],
    ));
    assert_accumulates("segment_sum", &[x], move |t, v| {
        t.segment_sum(v[0], csr.clone())
    });
}

/// `y = a · b + c`, whose VJP writes or adds as its `InputGrad` says (the path the simulator's
/// fused ops take), not through `zeroed_for_adding`.
struct MulAdd;

impl CustomOp for MulAdd {
    fn name(&self) -> &str {
        "mul_add"
    }
    fn output_shape(&self, inputs: &[(usize, usize)]) -> (usize, usize) {
        inputs[0]
    }
    fn forward(&self, inputs: &[&Array2<f32>], output: &mut Array2<f32>) {
        ndarray::Zip::from(output)
            .and(inputs[0])
            .and(inputs[1])
            .and(inputs[2])
            .for_each(|y, &a, &b, &c| *y = a * b + c);
    }
    fn backward(
        &self,
        inputs: &[&Array2<f32>],
        _output: &Array2<f32>,
        g: &Array2<f32>,
        grad_inputs: &mut [Option<InputGrad>],
    ) {
        let partials = [g * inputs[1], g * inputs[0], g.clone()];
        for (slot, partial) in grad_inputs.iter_mut().zip(partials) {
            if let Some(slot) = slot.as_mut() {
                let (dst, mode) = slot.parts();
                for (d, &v) in dst.iter_mut().zip(partial.iter()) {
                    mode.put(d, v);
                }
            }
        }
    }
}

#[test]
fn custom_ops_accumulate() {
    let op: Arc<dyn CustomOp> = Arc::new(MulAdd);
    let ins = [
        away_from_zero(3, 3, 71),
        away_from_zero(3, 3, 72),
        away_from_zero(3, 3, 73),
    ];
    assert_accumulates("custom", &ins, move |t, v| t.custom(op.clone(), v));
    // the same input in two slots of one custom op
    let op: Arc<dyn CustomOp> = Arc::new(MulAdd);
    assert_accumulates("custom, input twice", &ins[..2], move |t, v| {
        t.custom(op.clone(), &[v[0], v[0], v[1]])
    });
}

/// A small network on parameters: `tanh(x·W + b)` read twice (`W` by two products, `b` twice), so
/// the `Param` node's adjoint sums several paths; the whole loss summed over a second tape into the
/// same `Grads` doubles it.
fn param_loss(
    tape: &mut Tape,
    store: &ParamStore,
    ids: &[hdpo_autodiff::ParamId],
    x: &Array2<f32>,
) -> Var {
    let xv = tape.constant(x.clone());
    let (w, b, u) = (
        tape.param(store, ids[0]),
        tape.param(store, ids[1]),
        tape.param(store, ids[2]),
    );
    // the second `param` call returns the same node
    assert_eq!(tape.param(store, ids[0]), w);
    let h = t_linear_tanh(tape, xv, w, b);
    let h2 = tape.matmul(h, u);
    let w_again = tape.param(store, ids[0]);
    let sq = tape.square(w_again);
    let reg = tape.sum_all(sq);
    let b_sp = tape.softplus(b);
    let bias_term = tape.sum_all(b_sp);
    let out = tape.mean_all(h2);
    let l = tape.add(out, reg);
    tape.add(l, bias_term)
}

fn t_linear_tanh(tape: &mut Tape, x: Var, w: Var, b: Var) -> Var {
    let z = tape.linear(x, w, b);
    tape.tanh(z)
}

#[test]
fn param_gradients_match_finite_differences_and_accumulate_in_grads() {
    let mut store = ParamStore::new();
    let ids = [
        store.add("w", away_from_zero(3, 4, 81)),
        store.add("b", away_from_zero(1, 4, 82)),
        store.add("u", away_from_zero(4, 2, 83)),
    ];
    let x = away_from_zero(5, 3, 84);
    let loss_at = |store: &ParamStore| -> f64 {
        let mut tape = Tape::no_grad();
        let l = param_loss(&mut tape, store, &ids, &x);
        tape.scalar(l) as f64
    };
    let mut grads = store.zero_grads();
    let mut tape = Tape::new();
    let l = param_loss(&mut tape, &store, &ids, &x);
    tape.backward(l, &mut grads);
    // every coordinate of every parameter, central differences (h = 1e-2: truncation ~1e-5
    // relative for these smooth functions; f32 rounding of a loss of order 1 over 2h ~ 1e-5)
    let h = 1e-2f32;
    let mut checked = 0;
    for &id in &ids {
        let shape = store.value(id).dim();
        for r in 0..shape.0 {
            for c in 0..shape.1 {
                let orig = store.value(id)[[r, c]];
                store.value_mut(id)[[r, c]] = orig + h;
                let up = loss_at(&store);
                store.value_mut(id)[[r, c]] = orig - h;
                let down = loss_at(&store);
                store.value_mut(id)[[r, c]] = orig;
                let numeric = (up - down) / (2.0 * h as f64);
                let analytic = grads.get(id)[[r, c]] as f64;
                assert!(
                    (numeric - analytic).abs() <= 2e-3 + 5e-3 * numeric.abs(),
                    "param {id:?} [{r}, {c}]: analytic {analytic}, numeric {numeric}"
                );
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 12 + 4 + 8);
    // a second backward pass (another tape) adds into the same Grads
    let first = grads.clone();
    let mut tape = Tape::new();
    let l = param_loss(&mut tape, &store, &ids, &x);
    tape.backward(l, &mut grads);
    for &id in &ids {
        let doubled = first.get(id) * 2.0;
        let diff = (grads.get(id) - &doubled)
            .mapv(f32::abs)
            .fold(0.0f32, |m, &v| m.max(v));
        assert!(
            diff <= 1e-5,
            "Grads must accumulate over backward passes: {diff}"
        );
    }
}
