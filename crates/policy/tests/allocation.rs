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
