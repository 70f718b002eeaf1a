//! Hand-derived values of a few ops, forward and backward (in the spirit of candle's tests).

use approx::assert_abs_diff_eq;
use hdpo_autodiff::{Adam, ParamStore, Sgd, Tape, clip_grad_norm};
use ndarray::{Array2, array};
use std::sync::Arc;

fn no_params() -> hdpo_autodiff::Grads {
    ParamStore::new().zero_grads()
}

#[test]
fn mul_sum_by_hand() {
    // L = Σ a·b  ⇒ dL/da = b, dL/db = a
    let mut t = Tape::new();
    let a = t.variable(array![[1.0, 2.0], [3.0, 4.0]]);
    let b = t.variable(array![[5.0, 6.0], [7.0, 8.0]]);
    let p = t.mul(a, b);
    let l = t.sum_all(p);
    assert_eq!(t.scalar(l), 70.0);
    t.backward(l, &mut no_params());
    assert_eq!(t.grad(a).unwrap(), &array![[5.0, 6.0], [7.0, 8.0]]);
    assert_eq!(t.grad(b).unwrap(), &array![[1.0, 2.0], [3.0, 4.0]]);
}

#[test]
fn matmul_by_hand() {
    // L = Σ (a·b);  dL/da = 1·bᵀ (row sums of b), dL/db = aᵀ·1 (column sums of a)
    let mut t = Tape::new();
    let a = t.variable(array![[1.0, 2.0], [3.0, 4.0]]);
    let b = t.variable(array![[1.0, 0.0, 2.0], [0.5, 1.0, -1.0]]);
    let m = t.matmul(a, b);
    assert_eq!(t.value(m), &array![[2.0, 2.0, 0.0], [5.0, 4.0, 2.0]]);
    let l = t.sum_all(m);
    t.backward(l, &mut no_params());
    assert_eq!(t.grad(a).unwrap(), &array![[3.0, 0.5], [3.0, 0.5]]);
    assert_eq!(
        t.grad(b).unwrap(),
        &array![[4.0, 4.0, 4.0], [6.0, 6.0, 6.0]]
    );
}

#[test]
fn relu_clamp_and_min_conventions_at_ties() {
    let mut t = Tape::new();
    let x = t.variable(array![[-1.0, 0.0, 2.0]]);
    let r = t.relu(x);
    let l = t.sum_all(r);
    t.backward(l, &mut no_params());
    assert_eq!(t.grad(x).unwrap(), &array![[0.0, 0.0, 1.0]], "relu'(0) = 0");

    let mut t = Tape::new();
    let x = t.variable(array![[-1.0, 0.0, 0.5, 1.0, 2.0]]);
    let c = t.clamp(x, 0.0, 1.0);
    let l = t.sum_all(c);
    t.backward(l, &mut no_params());
    assert_eq!(
        t.grad(x).unwrap(),
        &array![[0.0, 0.0, 1.0, 0.0, 0.0]],
        "clamp passes only strictly inside"
    );

    let mut t = Tape::new();
    let a = t.variable(array![[1.0, 2.0, 3.0]]);
    let b = t.variable(array![[2.0, 2.0, 1.0]]);
    let m = t.minimum(a, b);
    let l = t.sum_all(m);
    t.backward(l, &mut no_params());
    assert_eq!(t.grad(a).unwrap(), &array![[1.0, 0.5, 0.0]]);
    assert_eq!(t.grad(b).unwrap(), &array![[0.0, 0.5, 1.0]]);
}

#[test]
fn softplus_threshold_and_elu_values() {
    let mut t = Tape::new();
    let x = t.variable(array![[0.0, 25.0, -1.0]]);
    let s = t.softplus(x);
    assert_abs_diff_eq!(t.value(s)[[0, 0]], std::f32::consts::LN_2, epsilon = 1e-7);
    assert_eq!(t.value(s)[[0, 1]], 25.0);
    let l = t.sum_all(s);
    t.backward(l, &mut no_params());
    let g = t.grad(x).unwrap();
    assert_abs_diff_eq!(g[[0, 0]], 0.5, epsilon = 1e-7);
    assert_eq!(g[[0, 1]], 1.0);
    assert_abs_diff_eq!(g[[0, 2]], 1.0 / (1.0 + 1f32.exp()), epsilon = 1e-7);

    let mut t = Tape::new();
    let x = t.variable(array![[-1.0, 2.0]]);
    let e = t.elu(x);
    assert_abs_diff_eq!(t.value(e)[[0, 0]], (-1f32).exp() - 1.0, epsilon = 1e-7);
    let l = t.sum_all(e);
    t.backward(l, &mut no_params());
    assert_abs_diff_eq!(t.grad(x).unwrap()[[0, 0]], (-1f32).exp(), epsilon = 1e-7);
}

#[test]
fn pipeline_shift_and_arrival_by_hand() {
    // pipeline [3, 4, 0, 2] with an order of 7 and lead time 1 (slot 0) → [4+7, 0, 2, 0]
    let mut t = Tape::new();
    let pipe = t.variable(array![[3.0, 4.0, 0.0, 2.0], [10.0, 0.0, 5.0, 0.0]]);
    let order = t.variable(array![[7.0], [2.0]]);
    let shifted = t.shift_left(pipe);
    let arrived = t.add_at_column(shifted, order, Arc::from(vec![0u32, 3]));
    assert_eq!(
        t.value(arrived),
        &array![[11.0, 0.0, 2.0, 0.0], [0.0, 5.0, 0.0, 2.0]]
    );
    // weight the slots differently so the gradient tells which slot each input reached
    let w = t.constant(array![
        [1.0, 10.0, 100.0, 1000.0],
        [1.0, 10.0, 100.0, 1000.0]
    ]);
    let p = t.mul(arrived, w);
    let l = t.sum_all(p);
    t.backward(l, &mut no_params());
    assert_eq!(
        t.grad(pipe).unwrap(),
        &array![[0.0, 1.0, 10.0, 100.0], [0.0, 1.0, 10.0, 100.0]]
    );
    assert_eq!(t.grad(order).unwrap(), &array![[1.0], [1000.0]]);
}

#[test]
fn zero_order_keeps_its_gradient() {
    let mut t = Tape::new();
    let pipe = t.constant(array![[1.0, 1.0]]);
    let order = t.variable(array![[0.0]]);
    let a = t.add_at_column(pipe, order, Arc::from(vec![1u32]));
    let l = t.sum_all(a);
    t.backward(l, &mut no_params());
    assert_eq!(t.grad(order).unwrap(), &array![[1.0]]);
}

#[test]
fn params_are_copied_once_and_accumulate() {
    let mut store = ParamStore::new();
    let w = store.add("w", array![[2.0]]);
    let mut t = Tape::new();
    let a = t.param(&store, w);
    let b = t.param(&store, w);
    assert_eq!(a, b, "one node per parameter per tape");
    let x = t.constant(array![[3.0]]);
    let y = t.mul(a, x);
    let z = t.mul(y, b); // 3 w²
    let mut grads = store.zero_grads();
    t.backward(z, &mut grads);
    assert_eq!(grads.get(w)[[0, 0]], 12.0);
    // backward adds into existing grads
    t.backward(z, &mut grads);
    assert_eq!(grads.get(w)[[0, 0]], 24.0);
}

#[test]
fn no_grad_mode_records_nothing_and_reset_recycles() {
    let mut t = Tape::no_grad();
    let x = t.variable(array![[1.0, 2.0]]);
    assert!(!t.requires_grad(x));
    let y = t.exp(x);
    assert!(!t.requires_grad(y));
    assert_abs_diff_eq!(t.value(y)[[0, 1]], 2f32.exp(), epsilon = 1e-6);
    let mut t = Tape::new();
    for _ in 0..3 {
        t.reset();
        let x = t.full(64, 8, 1.0);
        let y = t.tanh(x);
        let _ = t.sum_all(y);
    }
    // steady state: after reset every buffer of the last step waits in the pool
    t.reset();
    assert_eq!(t.take_buffer(64, 8).dim(), (64, 8));
}

#[test]
fn to_dot_names_ops_and_shapes() {
    let mut store = ParamStore::new();
    let w = store.add("w", Array2::zeros((4, 2)));
    let b = store.add("b", Array2::zeros((1, 2)));
    let mut t = Tape::new();
    let x = t.constant(Array2::zeros((8, 4)));
    let (wv, bv) = (t.param(&store, w), t.param(&store, b));
    let h = t.linear(x, wv, bv);
    let h = t.elu(h);
    let _ = t.mean_all(h);
    let dot = t.to_dot();
    assert!(dot.starts_with("digraph"));
    assert!(dot.contains("linear\\n8×2"), "{dot}");
    assert!(dot.contains("elu"));
    assert!(dot.contains("n3 -> n4"));
}

#[test]
fn adam_matches_hand_computed_steps() {
    // one scalar parameter p0 = 1, constant gradient g = 0.5, lr = 0.1
    // step 1: m = 0.05, v = 0.00025; m̂ = 0.5, v̂ = 0.25 ⇒ p = 1 − 0.1·0.5/(0.5+1e-8) ≈ 0.9
    // step 2 (g = −1): m = 0.045 − 0.1 = −0.055; v = 0.00024975 + 0.001 = 0.00124975
    //   m̂ = −0.055/0.19 = −0.289474; v̂ = 0.00124975/0.001999 = 0.625188 ⇒ p += 0.1·0.289474/0.790688
    let mut store = ParamStore::new();
    let p = store.add("p", array![[1.0]]);
    let mut adam = Adam::new(&store, 0.1);
    let mut g = store.zero_grads();
    g.get_mut(p)[[0, 0]] = 0.5;
    adam.step(&mut store, &g);
    assert_abs_diff_eq!(store.value(p)[[0, 0]], 0.9, epsilon = 1e-6);
    g.get_mut(p)[[0, 0]] = -1.0;
    adam.step(&mut store, &g);
    let expected =
        0.9 + 0.1 * (0.055 / 0.19) / ((0.00124975f64 / (1.0 - 0.999f64.powi(2))).sqrt() + 1e-8);
    assert_abs_diff_eq!(store.value(p)[[0, 0]] as f64, expected, epsilon = 1e-6);
    assert_eq!(adam.step_count, 2);
}

#[test]
fn sgd_and_clipping() {
    let mut store = ParamStore::new();
    let a = store.add("a", array![[1.0, 1.0]]);
    let mut g = store.zero_grads();
    g.get_mut(a).assign(&array![[3.0, 4.0]]);
    let norm = clip_grad_norm(&mut g, 1.0);
    assert_abs_diff_eq!(norm, 5.0, epsilon = 1e-9);
    assert_abs_diff_eq!(g.global_norm(), 1.0, epsilon = 1e-5);
    Sgd { lr: 1.0 }.step(&mut store, &g);
    assert_abs_diff_eq!(store.value(a)[[0, 0]], 1.0 - 0.6, epsilon = 1e-5);
    assert_abs_diff_eq!(store.value(a)[[0, 1]], 1.0 - 0.8, epsilon = 1e-5);
    // below the threshold nothing changes
    let before = g.clone();
    clip_grad_norm(&mut g, 10.0);
    assert_eq!(g, before);
}

#[test]
fn linear_init_bounds() {
    use rand::SeedableRng;
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
    let (w, b) = hdpo_autodiff::optim::init::linear(16, 8, &mut rng);
    assert_eq!(w.dim(), (16, 8));
    assert_eq!(b.dim(), (1, 8));
    assert!(w.iter().chain(b.iter()).all(|&v| v.abs() <= 0.25));
    assert!(
        w.iter().any(|&v| v.abs() > 0.2),
        "spread over the whole range"
    );
}

#[test]
fn the_pool_does_not_grow_when_fresh_arrays_are_handed_in_every_step() {
    let mut t = Tape::new();
    let mut sizes = Vec::new();
    for step in 0..300 {
        t.reset();
        let x = t.constant(Array2::from_elem((64, 8), step as f32 * 1e-3));
        let y = t.tanh(x);
        let _ = t.sum_all(y);
        sizes.push(t.pooled_buffers());
    }
    let last = *sizes.last().unwrap();
    assert!(
        last <= 4,
        "pool holds {last} buffers after 300 steps: {:?}",
        &sizes[..10]
    );
    assert_eq!(sizes[299], sizes[100], "steady state");
}

/// A handle used after its tape was reset would silently address whatever node now sits at its
/// position; the tape rejects it instead.
#[test]
#[should_panic(expected = "before this tape's last reset()")]
fn a_handle_from_before_a_reset_is_rejected() {
    let mut tape = Tape::new();
    let x = tape.constant(array![[1.0f32, 2.0]]);
    tape.reset();
    let _y = tape.constant(array![[3.0f32, 4.0]]); // same position as `x`
    let _ = tape.value(x);
}

#[test]
#[should_panic(expected = "made by another tape")]
fn a_handle_from_another_tape_is_rejected() {
    let mut first = Tape::new();
    let mut second = Tape::new();
    let x = first.constant(array![[1.0f32]]);
    let y = second.constant(array![[2.0f32]]);
    let _ = second.add(x, y);
}

#[test]
fn handles_stay_valid_until_the_reset() {
    let mut tape = Tape::new();
    let x = tape.constant(array![[1.0f32, 2.0]]);
    let y = tape.scale(x, 3.0);
    assert_eq!(tape.value(y), &array![[3.0f32, 6.0]]);
    tape.reset();
    let z = tape.constant(array![[5.0f32]]);
    assert_eq!(tape.scalar(z), 5.0);
    assert_eq!(z.index(), x.index()); // same position, different recording
    assert_ne!(z, x);
}

/// The backward sweep hands every adjoint except a variable's back to the pool as soon as its node
/// is done, so a long chain needs a few adjoint buffers, not one per node (and the next adjoint is
/// written into a buffer that is still in cache).
#[test]
fn backward_recycles_interior_adjoints_and_keeps_the_variables() {
    let mut t = Tape::new();
    let mut g = no_params();
    let chain = 50;
    let mut kept = Vec::new();
    for _ in 0..2 {
        t.reset();
        let x = t.variable(Array2::from_elem((64, 8), 0.1f32));
        let mut y = x;
        let mut interior = Vec::new();
        for _ in 0..chain {
            y = t.tanh(y);
            interior.push(y);
        }
        let loss = t.sum_all(y);
        t.backward(loss, &mut g);
        // d/dx of tanh∘…∘tanh(x): the product of the 50 derivatives, the same for every element
        let mut expected = 1.0f32;
        let mut v = 0.1f32;
        for _ in 0..chain {
            v = v.tanh();
            expected *= 1.0 - v * v;
        }
        let gx = t.grad(x).expect("a variable keeps its adjoint");
        assert!(
            gx.iter()
                .all(|&d| (d - expected).abs() <= 1e-5 * expected.abs())
        );
        assert!(interior.iter().all(|&v| t.grad(v).is_none()));
        t.reset();
        kept.push(t.pooled_buffers());
    }
    // 52 values (x, 50 tanh, the loss) plus a handful of adjoints; keeping every adjoint would
    // make it about 100
    assert!(kept[1] <= 52 + 4, "pool holds {kept:?} buffers");
}
