//! The allocation rules, gradient-checked against finite differences and checked for feasibility.

use hdpo_autodiff::Tape;
use hdpo_autodiff::gradcheck::{GradcheckOptions, check};
use hdpo_policy::allocation::{proportional, softmax_keep};
use ndarray::array;

#[test]
fn proportional_allocation_gradients() {
    // sample 0: stock binds (asks 6 of 4); sample 1: plenty of stock (asks 3 of 10)
    let desired = array![[1.0f32, 2.0, 3.0], [0.5, 1.5, 1.0]];
    let available = array![[4.0f32], [10.0]];
    for transshipment in [false, true] {
        let report = check(
            &[desired.clone(), available.clone()],
            |t, v| proportional(t, v[0], v[1], transshipment),
            &GradcheckOptions::default(),
        );
        assert!(report.passed, "transshipment {transshipment}: {report}");
    }
}

#[test]
fn softmax_allocation_gradients() {
    let logits = array![[0.3f32, -1.0, 2.0], [1.5, 0.2, -0.4]];
    let available = array![[4.0f32], [10.0]];
    for transshipment in [false, true] {
        let report = check(
            &[logits.clone(), available.clone()],
            |t, v| softmax_keep(t, v[0], v[1], transshipment),
            &GradcheckOptions::default(),
        );
        assert!(report.passed, "transshipment {transshipment}: {report}");
    }
}

#[test]
fn allocations_are_feasible() {
    let mut t = Tape::new();
    let desired = t.constant(array![[1.0f32, 2.0, 3.0], [0.5, 1.5, 1.0]]);
    let available = t.constant(array![[4.0f32], [10.0]]);
    let p = proportional(&mut t, desired, available, false);
    let v = t.value(p).clone();
    assert!(
        (v.row(0).sum() - 4.0).abs() < 1e-5,
        "scaled down to the stock"
    );
    assert!(
        (v.row(1).sum() - 3.0).abs() < 1e-5,
        "asked for less than the stock: shipped as asked"
    );
    let p = proportional(&mut t, desired, available, true);
    assert!(
        (t.value(p).row(1).sum() - 10.0).abs() < 1e-4,
        "transshipment ships all stock"
    );
    let s = softmax_keep(&mut t, desired, available, false);
    let v = t.value(s).clone();
    assert!(
        v.row(0).sum() < 4.0 && v.iter().all(|&x| x >= 0.0),
        "a keep share stays at the warehouse"
    );
    let s = softmax_keep(&mut t, desired, available, true);
    assert!((t.value(s).row(0).sum() - 4.0).abs() < 1e-5);
}

/// The proportional rule as it was before the stock was clamped (the reference's formula).
fn proportional_unclamped(
    tape: &mut Tape,
    desired: hdpo_autodiff::Var,
    available: hdpo_autodiff::Var,
) -> hdpo_autodiff::Var {
    let total = tape.row_sums(desired);
    let total = tape.add_scalar(total, hdpo_policy::allocation::PROPORTIONAL_EPS);
    let k = tape.div(available, total);
    let k = tape.clamp_max(k, 1.0);
    tape.mul(desired, k)
}

/// Regression: the data-driven net on a Favorita-like network failed with "store action
/// −6.8e-9": a warehouse that shipped everything was left, on the tape, with a stock a few ulps
/// below 0, and the proportional rule scaled the desired shipments by that negative stock. The
/// allocation now reads the stock as `max(stock, 0)`: nothing is shipped from it.
#[test]
fn a_stock_rounded_below_zero_allocates_nothing() {
    let mut t = Tape::new();
    let desired = t.constant(array![[1.0f32, 0.0, 3.0], [0.5, 1.5, 1.0]]);
    let available = t.constant(array![[-6.8e-9f32], [-1e-3]]);
    for transshipment in [false, true] {
        let p = proportional(&mut t, desired, available, transshipment);
        assert!(
            t.value(p).iter().all(|&x| x == 0.0),
            "proportional: {:?}",
            t.value(p)
        );
        let s = softmax_keep(&mut t, desired, available, transshipment);
        assert!(
            t.value(s).iter().all(|&x| x == 0.0),
            "softmax: {:?}",
            t.value(s)
        );
    }
}

/// The clamp changes no bit where the stock is ≥ 0 — values and gradients, including an empty
/// warehouse (stock exactly 0, where `max(stock, 0)` would have halved the gradient): the results
/// of every existing setting are unchanged.
#[test]
fn the_clamp_changes_nothing_for_a_stock_of_zero_or_more() {
    let desired = array![[1.0f32, 2.0, 3.0], [0.5, 1.5, 1.0], [0.0, 0.25, 2.0]];
    let available = array![[4.0f32], [0.0], [10.0]];
    let run = |clamped: bool| {
        let mut t = Tape::new();
        let d = t.variable(desired.clone());
        let a = t.variable(available.clone());
        let y = if clamped {
            proportional(&mut t, d, a, false)
        } else {
            proportional_unclamped(&mut t, d, a)
        };
        // a loss with distinct weights per entry, so every partial shows
        let w = t.constant(array![
            [1.0f32, -2.0, 0.5],
            [3.0, 1.0, -1.0],
            [0.25, 2.0, 1.5]
        ]);
        let yw = t.mul(y, w);
        let loss = t.sum_all(yw);
        let mut grads = hdpo_autodiff::ParamStore::new().zero_grads();
        t.backward(loss, &mut grads);
        let bits = |x: &ndarray::Array2<f32>| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        (
            bits(t.value(y)),
            bits(t.grad(d).unwrap()),
            bits(t.grad(a).unwrap()),
        )
    };
    let (clamped, reference) = (run(true), run(false));
    assert_eq!(clamped, reference);
    // the empty warehouse still passes a gradient to its stock
    let grad_a = reference.2;
    assert_ne!(f32::from_bits(grad_a[1]), 0.0);
}
