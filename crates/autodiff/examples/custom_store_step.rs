//! Step 3 of `docs/autodiff.md`: a fused op with a hand-written vector–Jacobian product.
//!
//! One period at a store, for every row (row = scenario × store) at once:
//!
//! ```text
//! available = on_hand + arrival
//! sales     = min(available, demand)
//! next      = available − sales        on hand carried to the next period
//! lost      = demand − sales           lost sales
//! ```
//!
//! With primitive ops this is five nodes (add, minimum, sub, sub, concat) and five buffers; as a
//! [`CustomOp`] it is one node and one pass over memory. The example checks the op three ways:
//! `gradcheck` against finite differences, equality with the primitive composition (also at a tie,
//! where both must split the gradient 0.5 / 0.5), and a small cost whose gradient we know by hand.
//!
//! Run: `cargo run --release -p hdpo-autodiff --example custom_store_step`

use hdpo_autodiff::gradcheck::{GradcheckOptions, check};
use hdpo_autodiff::{BinaryKind, CustomOp, InputGrad, ParamStore, Tape, Var};
use ndarray::{Array2, array};
use std::sync::Arc;

/// Inputs `on_hand`, `arrival`, `demand`, each `(r, 1)`. Output `(r, 2)`: `[next, lost]`.
struct StoreStep;

impl CustomOp for StoreStep {
    fn name(&self) -> &str {
        "store_step"
    }

    fn output_shape(&self, inputs: &[(usize, usize)]) -> (usize, usize) {
        assert_eq!(inputs.len(), 3, "store_step: on_hand, arrival, demand");
        let r = inputs[0].0;
        assert!(
            inputs.iter().all(|&s| s == (r, 1)),
            "store_step: every input must be ({r}, 1), got {inputs:?}"
        );
        (r, 2)
    }

    fn forward(&self, inputs: &[&Array2<f32>], output: &mut Array2<f32>) {
        let (on_hand, arrival, demand) = (inputs[0], inputs[1], inputs[2]);
        for i in 0..on_hand.nrows() {
            let available = on_hand[[i, 0]] + arrival[[i, 0]];
            let sales = BinaryKind::Min.f(available, demand[[i, 0]]);
            output[[i, 0]] = available - sales;
            output[[i, 1]] = demand[[i, 0]] - sales;
        }
    }

    fn backward(
        &self,
        inputs: &[&Array2<f32>],
        _output: &Array2<f32>,
        g: &Array2<f32>,
        grad_inputs: &mut [Option<InputGrad>],
    ) {
        // This op only adds: a buffer the tape hands over to be written is zeroed first.
        let mut grads: Vec<Option<&mut Array2<f32>>> = grad_inputs
            .iter_mut()
            .map(|gi| gi.as_mut().map(InputGrad::zeroed_for_adding))
            .collect();
        let (on_hand, arrival, demand) = (inputs[0], inputs[1], inputs[2]);
        for i in 0..on_hand.nrows() {
            let (a, d) = (on_hand[[i, 0]] + arrival[[i, 0]], demand[[i, 0]]);
            // ∂sales/∂a and ∂sales/∂d with the engine's convention: 1 / 0, and 0.5 / 0.5 at a tie.
            let (sa, sd) = (BinaryKind::Min.da(a, d), BinaryKind::Min.db(a, d));
            let (g_next, g_lost) = (g[[i, 0]], g[[i, 1]]);
            // next = a − sales, lost = d − sales
            let g_avail = g_next * (1.0 - sa) - g_lost * sa;
            let g_demand = -g_next * sd + g_lost * (1.0 - sd);
            // available = on_hand + arrival: both receive g_avail. `None` = no gradient wanted.
            for (k, v) in [(0, g_avail), (1, g_avail), (2, g_demand)] {
                if let Some(dst) = grads[k].as_mut() {
                    dst[[i, 0]] += v;
                }
            }
        }
    }
}

/// The same step from primitive ops, for comparison.
fn store_step_primitive(t: &mut Tape, on_hand: Var, arrival: Var, demand: Var) -> Var {
    let available = t.add(on_hand, arrival);
    let sales = t.minimum(available, demand);
    let next = t.sub(available, sales);
    let lost = t.sub(demand, sales);
    t.concat_cols(&[next, lost])
}

/// Value and input gradients of `Σ w ⊙ step(on_hand, arrival, demand)` for fixed weights `w`.
fn value_and_grads(
    inputs: &[Array2<f32>; 3],
    step: impl Fn(&mut Tape, &[Var]) -> Var,
) -> (Array2<f32>, Vec<Array2<f32>>) {
    let mut t = Tape::new();
    let vars: Vec<Var> = inputs.iter().map(|x| t.variable(x.clone())).collect();
    let out = step(&mut t, &vars);
    let w = t.constant(Array2::from_shape_fn(t.shape(out), |(i, j)| {
        1.0 + i as f32 + 10.0 * j as f32
    }));
    let weighted = t.mul(out, w);
    let loss = t.sum_all(weighted);
    t.backward(loss, &mut ParamStore::new().zero_grads());
    let grads = vars.iter().map(|&v| t.grad(v).unwrap().clone()).collect();
    (t.value(out).clone(), grads)
}

fn main() {
    let op: Arc<dyn CustomOp> = Arc::new(StoreStep);

    // 1. Finite differences, away from the kink available == demand.
    let inputs = [
        array![[3.0f32], [0.5], [2.0], [7.0]], // on hand
        array![[1.0f32], [0.0], [1.5], [0.0]], // arrival
        array![[2.0f32], [4.0], [5.0], [1.0]], // demand
    ];
    let fused = |t: &mut Tape, v: &[Var]| t.custom(op.clone(), v);
    let report = check(&inputs, fused, &GradcheckOptions::default());
    println!("{report}");
    assert!(report.passed);

    // 2. Same values and gradients as the primitive composition, including a tie (row 1: 2 + 1 = 3).
    let with_tie = [
        array![[3.0f32], [2.0], [0.0]],
        array![[1.0f32], [1.0], [0.5]],
        array![[2.0f32], [3.0], [4.0]],
    ];
    let (y_fused, g_fused) = value_and_grads(&with_tie, fused);
    let (y_prim, g_prim) =
        value_and_grads(&with_tie, |t, v| store_step_primitive(t, v[0], v[1], v[2]));
    assert_eq!(y_fused, y_prim);
    for (a, b) in g_fused.iter().zip(&g_prim) {
        assert!(
            a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6),
            "{a} vs {b}"
        );
    }
    println!(
        "[next, lost] =\n{y_fused}\nd/d(on hand) = {}",
        g_fused[0].t()
    );
    println!("fused op and primitive composition agree, tie split 0.5 / 0.5 included");

    // 3. A one-period cost: holding 1 per unit left, penalty 9 per unit lost.
    //    d cost / d arrival = 1 where stock is left over, −9 where sales are lost.
    let mut t = Tape::new();
    let on_hand = t.constant(array![[3.0f32], [0.5]]);
    let arrival = t.variable(array![[1.0f32], [0.0]]);
    let demand = t.constant(array![[2.0f32], [4.0]]);
    let out = t.custom(op.clone(), &[on_hand, arrival, demand]);
    let costs = t.constant(array![[1.0f32, 9.0]]); // broadcast down the rows
    let weighted = t.mul(out, costs);
    let cost = t.sum_all(weighted);
    t.backward(cost, &mut ParamStore::new().zero_grads());
    let g = t.grad(arrival).unwrap();
    println!("cost {}, d cost/d arrival = {}", t.scalar(cost), g.t());
    assert_eq!(g, &array![[1.0], [-9.0]]);
}
