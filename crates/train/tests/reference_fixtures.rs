//! The reference's trained one-store network and its 12-period rollout gradient
//! (`data/reference_fixtures/policy_fixtures.json`): checks policy, simulator and autodiff together.

use hdpo_autodiff::{ParamStore, Tape};
use hdpo_policy::{Activation, NetworkShape, Policy, PolicySpec, TapeObservation};
use hdpo_sim::config::{Objective, UnmetDemand};
use hdpo_sim::fused::TapeState;
use hdpo_sim::scenario::Scenario;
use hdpo_sim::state::{State, Statics};
use hdpo_train::{RolloutPeriods, rollout_on_tape};
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use serde_json::Value;

fn fixtures() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/reference_fixtures/policy_fixtures.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn matrix(v: &Value) -> Array2<f32> {
    let rows: Vec<Vec<f32>> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    Array2::from_shape_fn((rows.len(), rows[0].len()), |(i, j)| rows[i][j])
}

fn one_store_shape() -> NetworkShape {
    NetworkShape {
        n_stores: 1,
        n_warehouses: 0,
        n_echelons: 0,
        store_pipeline: 4,
        warehouse_pipeline: 0,
        echelon_pipeline: 0,
        adjacency: vec![],
        upper_bound: 20.0,
        past_demands: 0,
        calendar_features: 0,
        static_features: vec![],
        unmet_demand: UnmetDemand::Lost,
        objective: Objective::Cost,
    }
}

/// The reference network with the fixture's weights (PyTorch `[out, in]` transposed to `(in, out)`).
fn reference_network(weights: &Value) -> (Policy, ParamStore) {
    let mut params = ParamStore::new();
    let spec = PolicySpec::VanillaOneStore {
        hidden: vec![32, 32, 32],
        activation: Activation::Elu,
        input_scale: 1.0,
        output: hdpo_policy::OneStoreOutput::Order,
        initial_level: 0.0,
    };
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
    let policy = Policy::build(spec, &one_store_shape(), &mut params, &mut rng).unwrap();
    for (k, layer) in [0, 2, 4, 6].iter().enumerate() {
        let w = matrix(&weights[format!("net.master.{layer}.weight")]).reversed_axes();
        let b: Vec<f32> = weights[format!("net.master.{layer}.bias")]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let wid = params
            .find(&format!("vanilla_one_store.{k}.weight"))
            .unwrap();
        let bid = params.find(&format!("vanilla_one_store.{k}.bias")).unwrap();
        assert_eq!(params.value(wid).dim(), w.dim());
        params.value_mut(wid).assign(&w);
        params
            .value_mut(bid)
            .assign(&Array2::from_shape_vec((1, b.len()), b).unwrap());
    }
    (policy, params)
}

fn statics(n: usize, lead_time: u32) -> Statics {
    Statics {
        n_samples: n,
        n_stores: 1,
        n_warehouses: 0,
        n_echelons: 0,
        unmet_demand: UnmetDemand::Lost,
        objective: Objective::Cost,
        holding_cost: Array1::from_elem(n, 1.0),
        underage_cost: Array1::from_elem(n, 9.0),
        lead_time: Array2::from_elem((n, 1), lead_time),
        mean: Array1::from_elem(n, 5.0),
        std: Array1::from_elem(n, 5f32.sqrt()),
        warehouse_holding_cost: vec![],
        warehouse_lead_time: vec![],
        warehouse_edge_cost: vec![],
        echelon_holding_cost: vec![],
        echelon_lead_time: vec![],
        adjacency: Array2::from_elem((0, 1), false),
        calendar: Default::default(),
    }
}

#[test]
fn trained_one_store_network_forward_matches_the_reference() {
    let fx = fixtures();
    let saved = &fx["vanilla_one_store_saved"];
    let (policy, params) = reference_network(&saved["weights"]);
    let inputs = saved["inputs_store_inventories"].as_array().unwrap();
    let expected = saved["expected_store_orders"].as_array().unwrap();
    let pipelines = Array2::from_shape_fn((inputs.len(), 4), |(i, j)| {
        inputs[i][0][j].as_f64().unwrap() as f32
    });
    let st = statics(inputs.len(), 4);
    let mut tape = Tape::no_grad();
    let state = State {
        store: pipelines,
        warehouse: Array2::zeros((0, 2)),
        echelon: Array2::zeros((0, 2)),
    };
    let tape_state = TapeState::from_state(&mut tape, &state);
    let obs = TapeObservation {
        statics: &st,
        state: tape_state,
        period: 0,
        past_demands: None,
        future_demand: None,
    };
    let actions = policy.act(&mut tape, &params, &obs);
    let orders = tape.value(actions.store);
    for (i, e) in expected.iter().enumerate() {
        let want = e[0][0].as_f64().unwrap() as f32;
        assert!(
            (orders[[i, 0]] - want).abs() < 1e-4 * want.max(1.0),
            "input {i}: {} vs {want}",
            orders[[i, 0]]
        );
    }
}

fn gradient_scenario(fx: &Value) -> Scenario {
    let inputs = &fx["vanilla_one_store_gradient"]["inputs"];
    let demands = inputs["demands"].as_array().unwrap();
    let init = inputs["initial_inventories"].as_array().unwrap();
    let n = demands.len();
    let periods = demands[0][0].as_array().unwrap().len();
    let demand = Array2::from_shape_fn((n, periods), |(i, t)| {
        demands[i][0][t].as_f64().unwrap() as f32
    });
    let store = Array2::from_shape_fn((n, 4), |(i, j)| init[i][0][j].as_f64().unwrap() as f32);
    Scenario {
        split: hdpo_sim::config::Split::Train,
        statics: statics(n, 4),
        initial: State {
            store,
            warehouse: Array2::zeros((0, 2)),
            echelon: Array2::zeros((0, 2)),
        },
        demand,
        ignore_periods: 4,
        history: Array2::zeros((n, 0)),
    }
}

#[test]
fn rollout_loss_and_gradient_of_every_weight_match_the_reference() {
    let fx = fixtures();
    let g = &fx["vanilla_one_store_gradient"];
    let (policy, params) = reference_network(&fx["vanilla_one_store_saved"]["weights"]);
    let sc = gradient_scenario(&fx);
    let (n, periods) = (sc.n_samples(), 12);
    let mut tape = Tape::new();
    let out = rollout_on_tape(
        &mut tape,
        &policy,
        &params,
        &sc,
        RolloutPeriods {
            periods,
            ignore: 4,
            loss_from: 0,
        },
        (n * periods) as f32,
    )
    .unwrap();
    let want_total = g["expected_total_cost"].as_f64().unwrap();
    let want_reported = g["expected_reported_cost_sum"].as_f64().unwrap();
    let want_loss = g["expected_mean_loss"].as_f64().unwrap();
    assert!(
        (out.total_cost - want_total).abs() < 1e-4 * want_total,
        "total {} vs {want_total}",
        out.total_cost
    );
    assert!(
        (out.reported_cost - want_reported).abs() < 1e-4 * want_reported,
        "reported {} vs {want_reported}",
        out.reported_cost
    );
    assert!((tape.scalar(out.loss) as f64 - want_loss).abs() < 1e-4 * want_loss);
    let mut grads = params.zero_grads();
    tape.backward(out.loss, &mut grads);
    let expected = &g["expected_grads"];
    let mut worst = 0.0f32;
    for (k, layer) in [0, 2, 4, 6].iter().enumerate() {
        let ew = matrix(&expected[format!("net.master.{layer}.weight")]).reversed_axes();
        let eb: Vec<f32> = expected[format!("net.master.{layer}.bias")]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let gw = grads.get(
            params
                .find(&format!("vanilla_one_store.{k}.weight"))
                .unwrap(),
        );
        let gb = grads.get(params.find(&format!("vanilla_one_store.{k}.bias")).unwrap());
        let scale = ew.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-3);
        for (a, e) in gw.iter().zip(ew.iter()) {
            worst = worst.max((a - e).abs() / scale);
        }
        for (a, e) in gb.iter().zip(&eb) {
            worst = worst.max((a - e).abs() / scale);
        }
    }
    assert!(
        worst < 1e-3,
        "largest gradient error relative to the layer's scale: {worst}"
    );
    // the spec quotes one value explicitly
    let last_bias = grads.get(params.find("vanilla_one_store.3.bias").unwrap())[[0, 0]];
    assert!(
        (last_bias - 0.025114).abs() < 2e-5,
        "∂loss/∂(last bias) = {last_bias}"
    );
}

#[test]
fn base_stock_fixture_cost_and_gradient() {
    let fx = fixtures();
    let g = &fx["base_stock_gradient"];
    let sc = gradient_scenario(&fx);
    let mut params = ParamStore::new();
    let spec = PolicySpec::BaseStock {
        initial_level: 20.0,
    };
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
    let policy = Policy::build(spec, &one_store_shape(), &mut params, &mut rng).unwrap();
    // the reference's raw bias is 20 (S = softplus(20))
    params
        .value_mut(params.find("base_stock.level").unwrap())
        .fill(20.0);
    let mut tape = Tape::new();
    let out = rollout_on_tape(
        &mut tape,
        &policy,
        &params,
        &sc,
        RolloutPeriods {
            periods: 12,
            ignore: 4,
            loss_from: 0,
        },
        48.0,
    )
    .unwrap();
    let want_loss = g["expected_mean_loss"].as_f64().unwrap();
    assert!(
        (tape.scalar(out.loss) as f64 - want_loss).abs() < 1e-4 * want_loss,
        "loss {} vs {want_loss}",
        tape.scalar(out.loss)
    );
    let mut grads = params.zero_grads();
    tape.backward(out.loss, &mut grads);
    let want = g["expected_grad_bias"].as_f64().unwrap() as f32;
    let got = grads.get(params.find("base_stock.level").unwrap())[[0, 0]];
    assert!((got - want).abs() < 1e-4, "∂loss/∂bias {got} vs {want}");
}
