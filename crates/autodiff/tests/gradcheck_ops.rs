//! Every op of the engine, checked against central finite differences with `gradcheck`.
//! Inputs are drawn away from kinks (relu at 0, clamp bounds, min/max ties) by more than the step.
#![allow(clippy::cloned_ref_to_slice_refs)] // `&[x.clone()]` reads better than `from_ref` in these checks

use hdpo_autodiff::gradcheck::{GradcheckOptions, check, check_directional};
use hdpo_autodiff::{Csr, CustomOp, InputGrad, Tape, Unary, Var};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::sync::Arc;

/// Random matrix with entries in ±[0.2, 1.5] (bounded away from 0, the kink of relu/abs/clamp).
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

fn assert_ok(name: &str, inputs: &[Array2<f32>], f: impl Fn(&mut Tape, &[Var]) -> Var) {
    let report = check(inputs, f, &GradcheckOptions::default());
    assert!(report.passed, "{name}: {report}");
    assert!(report.checked > 0, "{name}: nothing checked");
}

#[test]
fn binary_ops_same_shape() {
    let a = away_from_zero(3, 4, 1);
    let b = away_from_zero(3, 4, 2);
    assert_ok("add", &[a.clone(), b.clone()], |t, v| t.add(v[0], v[1]));
    assert_ok("sub", &[a.clone(), b.clone()], |t, v| t.sub(v[0], v[1]));
    assert_ok("mul", &[a.clone(), b.clone()], |t, v| t.mul(v[0], v[1]));
    assert_ok("div", &[a.clone(), b.clone()], |t, v| t.div(v[0], v[1]));
    // min/max: make sure no tie within the step
    let c = &b + 0.1 * &a.mapv(f32::signum);
    assert_ok("minimum", &[a.clone(), c.clone()], |t, v| {
        t.minimum(v[0], v[1])
    });
    assert_ok("maximum", &[a, c], |t, v| t.maximum(v[0], v[1]));
}

#[test]
fn binary_ops_broadcast_rows_columns_scalars() {
    let a = away_from_zero(4, 3, 3);
    for (shape, seed) in [((1, 3), 4), ((4, 1), 5), ((1, 1), 6)] {
        let b = away_from_zero(shape.0, shape.1, seed);
        assert_ok("add bcast", &[a.clone(), b.clone()], |t, v| {
            t.add(v[0], v[1])
        });
        assert_ok("sub bcast", &[a.clone(), b.clone()], |t, v| {
            t.sub(v[0], v[1])
        });
        assert_ok("mul bcast", &[a.clone(), b.clone()], |t, v| {
            t.mul(v[0], v[1])
        });
        assert_ok("div bcast", &[a.clone(), b.clone()], |t, v| {
            t.div(v[0], v[1])
        });
        // broadcast on the left operand too
        assert_ok("sub bcast left", &[b.clone(), a.clone()], |t, v| {
            t.sub(v[0], v[1])
        });
        assert_ok("div bcast left", &[b.clone(), a.clone()], |t, v| {
            t.div(v[0], v[1])
        });
        let shifted = &b + 3.0; // no ties with a (|a| < 1.5)
        assert_ok("min bcast", &[a.clone(), shifted.clone()], |t, v| {
            t.minimum(v[0], v[1])
        });
        assert_ok("max bcast", &[a.clone(), shifted], |t, v| {
            t.maximum(v[0], v[1])
        });
    }
}

#[test]
fn affine_and_unary_ops() {
    let x = away_from_zero(3, 5, 7);
    assert_ok("affine", &[x.clone()], |t, v| t.affine(v[0], -1.7, 0.3));
    assert_ok("relu", &[x.clone()], |t, v| t.relu(v[0]));
    assert_ok("elu", &[x.clone()], |t, v| t.elu(v[0]));
    assert_ok("softplus", &[x.clone()], |t, v| t.softplus(v[0]));
    assert_ok("sigmoid", &[x.clone()], |t, v| t.sigmoid(v[0]));
    assert_ok("tanh", &[x.clone()], |t, v| t.tanh(v[0]));
    assert_ok("exp", &[x.clone()], |t, v| t.exp(v[0]));
    assert_ok("abs", &[x.clone()], |t, v| t.abs(v[0]));
    assert_ok("square", &[x.clone()], |t, v| t.square(v[0]));
    let p = positive(3, 5, 8);
    assert_ok("log", &[p.clone()], |t, v| t.log(v[0]));
    assert_ok("sqrt", &[p], |t, v| t.sqrt(v[0]));
    // softplus in its linear region (PyTorch threshold 20) and far negative
    let big = Array2::from_shape_vec((1, 3), vec![25.0, 40.0, -30.0]).unwrap();
    assert_ok("softplus large", &[big], |t, v| t.softplus(v[0]));
    // shifted: f(x + 0.1), which keeps x + 0.1 at least 0.1 away from 0 (relu and abs kinks)
    for kind in [
        Unary::Relu,
        Unary::Elu,
        Unary::Softplus,
        Unary::Tanh,
        Unary::Log,
    ] {
        let x = if kind == Unary::Log {
            positive(3, 5, 8)
        } else {
            x.clone()
        };
        assert_ok(&format!("{kind:?}(x + 0.1)"), &[x], |t, v| {
            t.unary_shifted(kind, v[0], 0.1)
        });
    }
}

/// `unary_shifted(f, x, s)` has the values and the gradient of `f(add_scalar(x, s))` to the bit,
/// for every function, a shift of 0 included (and −0 entries, which `x + 0` would turn into +0).
#[test]
fn shifted_unary_equals_add_scalar_then_unary_bit_for_bit() {
    let mut x = away_from_zero(4, 9, 31);
    x[[0, 0]] = -0.0;
    x[[1, 1]] = 0.0;
    x[[2, 2]] = -1.0; // x + 1 = 0: the kink of relu and abs
    x[[3, 3]] = 22.0; // past softplus's threshold
    let kinds = [
        Unary::Relu,
        Unary::Elu,
        Unary::Softplus,
        Unary::Sigmoid,
        Unary::Tanh,
        Unary::Exp,
        Unary::Log,
        Unary::Abs,
        Unary::Square,
        Unary::Sqrt,
    ];
    for kind in kinds {
        for shift in [0.0, 1.0, -0.25] {
            let input = if matches!(kind, Unary::Log | Unary::Sqrt) {
                x.mapv(|v| v.abs() + 0.5)
            } else {
                x.clone()
            };
            let run = |fused: bool| {
                let mut t = Tape::new();
                let xv = t.variable(input.clone());
                let y = if fused {
                    t.unary_shifted(kind, xv, shift)
                } else if shift == 0.0 {
                    t.unary(kind, xv)
                } else {
                    let shifted = t.add_scalar(xv, shift);
                    t.unary(kind, shifted)
                };
                let sq = t.square(y);
                let loss = t.sum_all(sq);
                let mut grads = hdpo_autodiff::ParamStore::new().zero_grads();
                t.backward(loss, &mut grads);
                let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                (bits(t.value(y)), bits(t.grad(xv).unwrap()))
            };
            assert_eq!(run(true), run(false), "{kind:?}, shift {shift}");
        }
    }
}

#[test]
fn clamp_inside_and_outside() {
    // values at least 0.2 away from the bounds -0.5 and 0.5
    let x =
        Array2::from_shape_vec((2, 4), vec![-1.2, -0.8, -0.2, 0.0, 0.25, 0.8, 1.3, -0.1]).unwrap();
    assert_ok("clamp", &[x.clone()], |t, v| t.clamp(v[0], -0.5, 0.5));
    assert_ok("clamp_min", &[x.clone()], |t, v| t.clamp_min(v[0], -0.5));
    assert_ok("clamp_max", &[x], |t, v| t.clamp_max(v[0], 0.5));
}

#[test]
fn matmul_and_linear() {
    let a = away_from_zero(4, 3, 9);
    let b = away_from_zero(3, 5, 10);
    assert_ok("matmul", &[a.clone(), b.clone()], |t, v| {
        t.matmul(v[0], v[1])
    });
    let bias = away_from_zero(1, 5, 11);
    assert_ok("linear", &[a.clone(), b.clone(), bias.clone()], |t, v| {
        t.linear(v[0], v[1], v[2])
    });
    for act in [Unary::Elu, Unary::Sigmoid, Unary::Tanh] {
        assert_ok(
            &format!("linear_act {act:?}"),
            &[a.clone(), b.clone(), bias.clone()],
            |t, v| t.linear_act(v[0], v[1], v[2], act),
        );
    }
    // a width of 16 (the weight and bias gradients in one pass), with the bias variable made
    // before the weight as well as after it
    let (w16, bias16) = (away_from_zero(3, 16, 12), away_from_zero(1, 16, 13));
    assert_ok(
        "linear, width 16",
        &[a.clone(), w16.clone(), bias16.clone()],
        |t, v| t.linear_act(v[0], v[1], v[2], Unary::Tanh),
    );
    assert_ok(
        "linear, bias made first",
        &[bias16, a.clone(), w16],
        |t, v| t.linear_act(v[1], v[2], v[0], Unary::Tanh),
    );
    // relu: unit-vector rows and a zero bias make the pre-activations the entries of `b`, which
    // are at least 0.2 away from the kink
    let unit = Array2::from_shape_fn((3, 3), |(i, j)| if i == j { 1.0 } else { 0.0 });
    let zero_bias = Array2::zeros((1, 5));
    assert_ok("linear_act Relu", &[unit, b, zero_bias], |t, v| {
        t.linear_act(v[0], v[1], v[2], Unary::Relu)
    });
}

/// The input gradient `g·wᵀ` takes a different product path by shape: the register kernels
/// (width a multiple of 8), the same kernels on a zero-padded `wᵀ` (an input width of 15), and the
/// general GEMM reading `wᵀ` through a view (wide layers). Each is checked with the input used
/// twice, so both the first write and the accumulation into its adjoint are covered.
#[test]
fn matmul_input_gradient_on_every_product_path() {
    for (rows, inputs, outputs) in [(5, 16, 8), (6, 15, 16), (3, 70, 130)] {
        let x = away_from_zero(rows, inputs, 20);
        let w1 = away_from_zero(inputs, outputs, 21) * 0.1;
        let w2 = away_from_zero(inputs, outputs, 22) * 0.1;
        assert_ok(
            &format!("x·w1 + x·w2 with x {rows}×{inputs}, w {inputs}×{outputs}"),
            &[x, w1, w2],
            |t, v| {
                let a = t.matmul(v[0], v[1]);
                let b = t.matmul(v[0], v[2]);
                t.add(a, b)
            },
        );
    }
}

/// The fused layer equals `linear` followed by the activation, values and every gradient to the
/// bit, on a shape that exercises the 64-row blocks (a partial last block) and the register
/// kernels (width 32), a small-width output (3) and a wide one (72).
#[test]
fn linear_act_equals_linear_then_activation_bit_for_bit() {
    // rows above and below the backward's row block (64), inner widths below 8 (narrow input
    // gradient), not a multiple of 8 (padded) and wide
    for (rows, width, out) in [
        (137, 32, 32),
        (70, 16, 3),
        (65, 40, 72),
        (203, 4, 32),
        (130, 15, 32),
        (300, 32, 8),
        (64, 32, 32),
    ] {
        for act in [Unary::Relu, Unary::Elu, Unary::Sigmoid, Unary::Tanh] {
            let x = away_from_zero(rows, width, 21);
            let w = away_from_zero(width, out, 22);
            let b = away_from_zero(1, out, 23);
            let run = |fused: bool, extra: bool| {
                let mut t = Tape::new();
                let (xv, wv, bv) = (
                    t.variable(x.clone()),
                    t.variable(w.clone()),
                    t.variable(b.clone()),
                );
                let y = if fused {
                    t.linear_act(xv, wv, bv, act)
                } else {
                    let p = t.linear(xv, wv, bv);
                    t.unary(act, p)
                };
                // a non-uniform adjoint: Σ y²; with `extra`, plus Σ x² + Σ w² + Σ b² recorded
                // after the layer, so that x, w and b already have adjoints when the layer's
                // backward runs (it adds into them instead of writing fresh buffers)
                let mut loss = t.square(y);
                loss = t.sum_all(loss);
                for v in [xv, wv, bv].into_iter().filter(|_| extra) {
                    let sq = t.square(v);
                    let s = t.sum_all(sq);
                    loss = t.add(loss, s);
                }
                let mut grads = hdpo_autodiff::ParamStore::new().zero_grads();
                t.backward(loss, &mut grads);
                let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                (
                    bits(t.value(y)),
                    bits(t.grad(xv).unwrap()),
                    bits(t.grad(wv).unwrap()),
                    bits(t.grad(bv).unwrap()),
                )
            };
            for extra in [false, true] {
                assert!(
                    run(true, extra) == run(false, extra),
                    "{act:?} {rows}x{width}x{out}, existing adjoints: {extra}"
                );
            }
        }
    }
}

/// Two layers in a row: the second one's input gradient is delivered to the first already
/// multiplied by the first's activation derivative (the fold), when the hidden layer has no
/// other reader. Values and every gradient equal those of `linear`, the activation and `linear`
/// recorded as separate ops, bit for bit, on every product path of the fold (hidden width 32:
/// register kernels; 15: padded; 72: general GEMM; 3: narrow) and for each activation; the tape
/// reports one folded adjoint, and none when the hidden layer is read twice.
#[test]
fn folded_activation_derivatives_change_no_bit() {
    for (rows, hidden, out) in [
        (137, 32, 32),
        (70, 15, 8),
        (65, 72, 40),
        (50, 3, 1),
        (9, 32, 1),
    ] {
        for act in [Unary::Relu, Unary::Elu, Unary::Sigmoid, Unary::Tanh] {
            let x = away_from_zero(rows, 6, 41);
            let w1 = away_from_zero(6, hidden, 42);
            let b1 = away_from_zero(1, hidden, 43);
            let w2 = away_from_zero(hidden, out, 44) * 0.3;
            let b2 = away_from_zero(1, out, 45);
            // `fused`: linear_act then linear_act (ELU) or linear; `second_reader`: the hidden
            // layer is also summed into the loss, so it has two readers and no fold is allowed
            let run = |fused: bool, second_act: bool, second_reader: bool| {
                let mut t = Tape::new();
                let vars: Vec<_> = [&x, &w1, &b1, &w2, &b2]
                    .into_iter()
                    .map(|a| t.variable(a.clone()))
                    .collect();
                let h = if fused {
                    t.linear_act(vars[0], vars[1], vars[2], act)
                } else {
                    let p = t.linear(vars[0], vars[1], vars[2]);
                    t.unary(act, p)
                };
                let y = match (fused, second_act) {
                    (true, true) => t.linear_act(h, vars[3], vars[4], Unary::Elu),
                    (false, true) => {
                        let p = t.linear(h, vars[3], vars[4]);
                        t.unary(Unary::Elu, p)
                    }
                    (_, false) => t.linear(h, vars[3], vars[4]),
                };
                let sq = t.square(y);
                let mut loss = t.sum_all(sq);
                if second_reader {
                    let s = t.sum_all(h);
                    loss = t.add(loss, s);
                }
                let mut grads = hdpo_autodiff::ParamStore::new().zero_grads();
                t.backward(loss, &mut grads);
                let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                let mut all = vec![bits(t.value(y))];
                all.extend(vars.iter().map(|&v| bits(t.grad(v).unwrap())));
                (all, t.folded_adjoints())
            };
            for second_act in [false, true] {
                for second_reader in [false, true] {
                    let (fused, folded) = run(true, second_act, second_reader);
                    let (plain, _) = run(false, second_act, second_reader);
                    let case = format!(
                        "{act:?} {rows}x{hidden}x{out}, second layer act {second_act}, \
                         second reader {second_reader}"
                    );
                    assert!(fused == plain, "{case}: bits differ");
                    assert_eq!(folded, usize::from(!second_reader), "{case}: folds");
                }
            }
        }
    }
}

/// One weight read by a folded layer in every period (a recurrence `h ← elu(h·w + b)`, as a
/// policy's layers are over a rollout): the backward pass transposes `w` once and reuses it; values
/// and gradients equal the unfused ops to the bit, on the register kernels (32, 16) and off them
/// (15, 40 … not a multiple of 8).
#[test]
fn a_weight_read_every_period_changes_no_bit() {
    for (rows, hidden) in [(70, 32), (9, 16), (33, 15), (20, 72)] {
        let x = away_from_zero(rows, hidden, 51) * 0.5;
        let w = away_from_zero(hidden, hidden, 52) * 0.2;
        let b = away_from_zero(1, hidden, 53);
        let run = |fused: bool| {
            let mut t = Tape::new();
            let (xv, wv, bv) = (
                t.variable(x.clone()),
                t.variable(w.clone()),
                t.variable(b.clone()),
            );
            let mut h = xv;
            for _ in 0..4 {
                h = if fused {
                    t.linear_act(h, wv, bv, Unary::Elu)
                } else {
                    let p = t.linear(h, wv, bv);
                    t.unary(Unary::Elu, p)
                };
            }
            let sq = t.square(h);
            let loss = t.sum_all(sq);
            let mut grads = hdpo_autodiff::ParamStore::new().zero_grads();
            t.backward(loss, &mut grads);
            let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let all: Vec<_> = [xv, wv, bv]
                .iter()
                .map(|&v| bits(t.grad(v).unwrap()))
                .chain([bits(t.value(h))])
                .collect();
            (all, t.folded_adjoints())
        };
        let (fused, folded) = run(true);
        let (plain, _) = run(false);
        assert!(fused == plain, "{rows}x{hidden}: bits differ");
        assert_eq!(folded, 3, "{rows}x{hidden}: the three inner layers fold");
    }
}

#[test]
fn pack_cols_equals_reshapes_then_concat_bit_for_bit() {
    // pipelines of 2 echelons (2B, 4), a warehouse (B, 3) and a store (B, 4), B = 5
    let (ech, wh, store) = (
        away_from_zero(10, 4, 31),
        away_from_zero(5, 3, 32),
        away_from_zero(5, 4, 33),
    );
    let run = |packed: bool| {
        let mut t = Tape::new();
        let (e, w, s) = (
            t.variable(ech.clone()),
            t.variable(wh.clone()),
            t.variable(store.clone()),
        );
        let x = if packed {
            t.pack_cols(&[s, w, e, s], 5)
        } else {
            let e2 = t.reshape(e, 5, 8);
            t.concat_cols(&[s, w, e2, s])
        };
        let sq = t.square(x);
        let loss = t.sum_all(sq);
        let mut grads = hdpo_autodiff::ParamStore::new().zero_grads();
        t.backward(loss, &mut grads);
        let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        (
            t.shape(x),
            bits(t.value(x)),
            bits(t.grad(e).unwrap()),
            bits(t.grad(w).unwrap()),
            bits(t.grad(s).unwrap()),
        )
    };
    let (packed, composed) = (run(true), run(false));
    assert_eq!(packed.0, (5, 19));
    assert!(packed == composed);
}

#[test]
#[should_panic(expected = "pack_cols: a part of 6 elements is not 4 rows")]
fn pack_cols_rejects_a_part_that_is_not_whole_rows() {
    let mut t = Tape::new();
    let a = t.constant(Array2::zeros((4, 2)));
    let b = t.constant(Array2::zeros((3, 2)));
    t.pack_cols(&[a, b], 4);
}

#[test]
fn reductions() {
    let x = away_from_zero(4, 3, 12);
    assert_ok("sum_all", &[x.clone()], |t, v| t.sum_all(v[0]));
    assert_ok("mean_all", &[x.clone()], |t, v| t.mean_all(v[0]));
    assert_ok("row_sums", &[x.clone()], |t, v| t.row_sums(v[0]));
    assert_ok("row_means", &[x.clone()], |t, v| t.row_means(v[0]));
    assert_ok("col_sums", &[x.clone()], |t, v| t.col_sums(v[0]));
    assert_ok("col_means", &[x], |t, v| t.col_means(v[0]));
}

#[test]
fn layout_ops() {
    let a = away_from_zero(3, 2, 13);
    let b = away_from_zero(3, 4, 14);
    assert_ok("concat", &[a.clone(), b.clone()], |t, v| {
        t.concat_cols(&[v[0], v[1], v[0]])
    });
    // (6, 2) viewed as 3 rows of 4, (3, 4) as is, (3, 1): 9 columns
    let c = away_from_zero(6, 2, 16);
    let d = away_from_zero(3, 1, 17);
    assert_ok("pack_cols", &[c, b.clone(), d], |t, v| {
        t.pack_cols(&[v[0], v[1], v[2], v[0]], 3)
    });
    assert_ok("slice", &[b.clone()], |t, v| t.slice_cols(v[0], 1, 2));
    assert_ok("column", &[b.clone()], |t, v| t.column(v[0], 3));
    assert_ok("reshape", &[b.clone()], |t, v| t.reshape(v[0], 6, 2));
    // to its own shape: the same value, no new node
    let mut t = Tape::new();
    let x = t.variable(b);
    let nodes = t.len();
    assert_eq!(t.reshape(x, 3, 4), x);
    assert_eq!(t.len(), nodes);
}

#[test]
fn gather_and_segment_sum() {
    let x = away_from_zero(4, 3, 15);
    let index: Arc<[u32]> = Arc::from(vec![2u32, 0, 2, 3, 1]);
    assert_ok("gather_rows", &[x.clone()], move |t, v| {
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
    assert_ok("segment_sum", &[x], move |t, v| {
        t.segment_sum(v[0], csr.clone())
    });
}

#[test]
fn softmax_rows() {
    let x = away_from_zero(3, 4, 16);
    assert_ok("softmax_rows", &[x], |t, v| t.softmax_rows(v[0]));
}

#[test]
fn pipeline_ops() {
    let pipe = away_from_zero(4, 3, 17);
    let order = away_from_zero(4, 1, 18);
    assert_ok("shift_left", &[pipe.clone()], |t, v| t.shift_left(v[0]));
    let cols: Arc<[u32]> = Arc::from(vec![0u32, 2, 1, 2]);
    assert_ok("add_at_column", &[pipe, order], move |t, v| {
        t.add_at_column(v[0], v[1], cols.clone())
    });
}

/// A fused op defined outside the engine: `y = a · b + softplus(c)`, with a hand-written VJP.
struct MulAddSoftplus;

impl CustomOp for MulAddSoftplus {
    fn name(&self) -> &str {
        "mul_add_softplus"
    }
    fn output_shape(&self, inputs: &[(usize, usize)]) -> (usize, usize) {
        assert!(inputs.iter().all(|&s| s == inputs[0]));
        inputs[0]
    }
    fn forward(&self, inputs: &[&Array2<f32>], output: &mut Array2<f32>) {
        ndarray::Zip::from(output)
            .and(inputs[0])
            .and(inputs[1])
            .and(inputs[2])
            .for_each(|y, &a, &b, &c| *y = a * b + hdpo_autodiff::Unary::Softplus.f(c));
    }
    fn backward(
        &self,
        inputs: &[&Array2<f32>],
        _output: &Array2<f32>,
        g: &Array2<f32>,
        grad_inputs: &mut [Option<InputGrad>],
    ) {
        if let Some(ga) = grad_inputs[0].as_mut() {
            *ga.zeroed_for_adding() += &(g * inputs[1]);
        }
        if let Some(gb) = grad_inputs[1].as_mut() {
            *gb.zeroed_for_adding() += &(g * inputs[0]);
        }
        if let Some(gc) = grad_inputs[2].as_mut() {
            *gc.zeroed_for_adding() += &(g * &inputs[2].mapv(hdpo_autodiff::ops::sigmoid));
        }
    }
}

#[test]
fn custom_op() {
    let op: Arc<dyn CustomOp> = Arc::new(MulAddSoftplus);
    let ins = [
        away_from_zero(3, 3, 19),
        away_from_zero(3, 3, 20),
        away_from_zero(3, 3, 21),
    ];
    assert_ok("custom", &ins, move |t, v| t.custom(op.clone(), v));
}

#[test]
fn reused_inputs_accumulate() {
    // x used three times: the adjoint must be the sum of the three paths
    let x = away_from_zero(3, 3, 22);
    assert_ok("x*x + elu(x)", &[x], |t, v| {
        let sq = t.mul(v[0], v[0]);
        let e = t.elu(v[0]);
        t.add(sq, e)
    });
}

#[test]
fn directional_check_on_a_large_mlp() {
    let x = away_from_zero(256, 8, 23);
    let w1 = away_from_zero(8, 32, 24).mapv(|v| v * 0.3);
    let b1 = away_from_zero(1, 32, 25);
    let w2 = away_from_zero(32, 1, 26).mapv(|v| v * 0.3);
    let b2 = away_from_zero(1, 1, 27);
    let report = check_directional(
        &[x, w1, b1, w2, b2],
        |t, v| {
            let h = t.linear(v[0], v[1], v[2]);
            let h = t.elu(h);
            let o = t.linear(h, v[3], v[4]);
            t.softplus(o)
        },
        8,
        &GradcheckOptions::default(),
    );
    assert!(report.passed, "{report}");
    assert_eq!(report.checked, 8);
}

#[test]
fn gradcheck_detects_a_wrong_gradient() {
    // A deliberately wrong VJP must fail: the check can fail.
    struct Wrong;
    impl CustomOp for Wrong {
        fn name(&self) -> &str {
            "wrong"
        }
        fn output_shape(&self, i: &[(usize, usize)]) -> (usize, usize) {
            i[0]
        }
        fn forward(&self, inputs: &[&Array2<f32>], out: &mut Array2<f32>) {
            out.assign(&inputs[0].mapv(|x| x * x));
        }
        fn backward(
            &self,
            inputs: &[&Array2<f32>],
            _: &Array2<f32>,
            g: &Array2<f32>,
            gi: &mut [Option<InputGrad>],
        ) {
            if let Some(d) = gi[0].as_mut() {
                *d.zeroed_for_adding() += &(g * inputs[0]); // should be 2x
            }
        }
    }
    let op: Arc<dyn CustomOp> = Arc::new(Wrong);
    let report = check(
        &[away_from_zero(2, 2, 28)],
        move |t, v| t.custom(op.clone(), v),
        &GradcheckOptions::default(),
    );
    assert!(!report.passed, "{report}");
    assert!(report.worst.is_some());
}
