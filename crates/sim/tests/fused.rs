//! The differentiable path: every fused op against finite differences, the fused step against the
//! same step composed from primitive tape ops, and tape rollouts against the tape-free step on every
//! embedded setting.

use hdpo_autodiff::gradcheck::{GradcheckOptions, check};
use hdpo_autodiff::{Tape, Var};
use hdpo_sim::config::Split;
use hdpo_sim::dynamics;
use hdpo_sim::fused::{TapeActions, TapeDynamics, TapeState};
use hdpo_sim::scenario::{Scenario, ScenarioGenerator};
use hdpo_sim::settings::{list_settings, setting};
use hdpo_sim::state::{Actions, State, Statics};
use ndarray::{Array2, s};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::sync::Arc;

fn scenario(name: &str, samples: usize, periods: usize) -> Scenario {
    let setting = setting(name).unwrap();
    ScenarioGenerator::new(&setting, Split::Train)
        .unwrap()
        .generate(0..samples, periods)
}

/// A simple state-dependent policy on plain arrays: stores order up to a level split over their
/// edges; warehouses and echelons order a fixed fraction of demand. Deliberately asks more than a
/// warehouse holds at times so rationing binds.
fn heuristic_actions(state: &State, statics: &Statics, scale: f32) -> Actions {
    let mut a = Actions::zeros(statics.n_samples, statics);
    let m = statics.n_sources();
    for r in 0..state.store.nrows() {
        let ip: f32 = state.store.row(r).sum();
        let level = scale * (statics.mean[r] * 5.0 + 2.0);
        let want = (level - ip).max(0.0);
        let edges: Vec<usize> = (0..m).filter(|&w| statics.lead_time[[r, w]] > 0).collect();
        for &w in &edges {
            a.store[[r, w]] = want / edges.len() as f32;
        }
    }
    let stores_mean: f32 = statics.mean.iter().take(statics.n_stores).sum();
    a.warehouse
        .fill(scale * stores_mean * 1.1 / statics.n_warehouses.max(1) as f32);
    a.echelon.fill(scale * stores_mean);
    a
}

fn actions_on_tape(tape: &mut Tape, a: &Actions, statics: &Statics) -> TapeActions {
    TapeActions {
        store: tape.constant_from(a.store.view()),
        warehouse: (statics.n_warehouses > 0).then(|| tape.constant_from(a.warehouse.view())),
        echelon: (statics.n_echelons > 0).then(|| tape.constant_from(a.echelon.view())),
    }
}

#[test]
fn tape_rollout_matches_the_tape_free_step_on_every_setting() {
    for info in list_settings() {
        eprintln!("setting {}", info.name);
        let sc = scenario(info.name, 6, 12);
        let statics = &sc.statics;
        let dynamics_on_tape = TapeDynamics::new(statics);
        let mut tape = Tape::new();
        let mut tape_state = TapeState::from_state(&mut tape, &sc.initial);
        let mut state = sc.initial.clone();
        let mut costs = vec![0.0f32; statics.n_samples];
        for t in 0..sc.periods() {
            let actions = heuristic_actions(&state, statics, 1.0 + 0.3 * (t % 3) as f32);
            let demand: Vec<f32> = sc.demand.column(t).to_vec();
            dynamics::step(&mut state, &actions, &demand, statics, &mut costs).unwrap();
            let ta = actions_on_tape(&mut tape, &actions, statics);
            let d = tape.constant_from(sc.demand.slice(s![.., t..t + 1]));
            let (next, cost) = dynamics_on_tape
                .step(&mut tape, &tape_state, &ta, d)
                .unwrap();
            tape_state = next;
            let total_var = cost.total(&mut tape);
            let total_tape = tape.scalar(total_var);
            let total_free: f32 = costs.iter().sum();
            assert!(
                (total_tape - total_free).abs() <= 1e-4 * total_free.abs().max(1.0),
                "{} period {t}: tape {total_tape} vs tape-free {total_free}",
                info.name
            );
            let on_tape = tape_state.to_state(&tape);
            let diff = (&on_tape.store - &state.store)
                .mapv(f32::abs)
                .fold(0.0f32, |m, &v| m.max(v));
            assert!(
                diff < 1e-3,
                "{} period {t}: store pipelines differ by {diff}",
                info.name
            );
            if statics.n_warehouses > 0 {
                let diff = (&on_tape.warehouse - &state.warehouse)
                    .mapv(f32::abs)
                    .fold(0.0f32, |m, &v| m.max(v));
                assert!(
                    diff < 1e-3,
                    "{} period {t}: warehouse pipelines differ by {diff}",
                    info.name
                );
            }
            if statics.n_echelons > 0 {
                let diff = (&on_tape.echelon - &state.echelon)
                    .mapv(f32::abs)
                    .fold(0.0f32, |m, &v| m.max(v));
                assert!(
                    diff < 1e-3,
                    "{} period {t}: echelon pipelines differ by {diff}",
                    info.name
                );
            }
        }
    }
}

/// Loss of one differentiable step with weights on every output, as a function of the state and
/// the actions (the inputs of the gradient check).
fn one_step_loss(
    tape: &mut Tape,
    dynamics: &TapeDynamics,
    statics: &Statics,
    inputs: &[Var],
    demand: &Array2<f32>,
) -> Var {
    let has_w = statics.n_warehouses > 0;
    let has_e = statics.n_echelons > 0;
    let mut k = 0;
    let mut next = || {
        k += 1;
        inputs[k - 1]
    };
    let store = next();
    let warehouse = has_w.then(&mut next);
    let echelon = has_e.then(&mut next);
    let store_action = next();
    let warehouse_action = has_w.then(&mut next);
    let echelon_action = has_e.then(&mut next);
    let state = TapeState {
        store,
        warehouse,
        echelon,
    };
    let actions = TapeActions {
        store: store_action,
        warehouse: warehouse_action,
        echelon: echelon_action,
    };
    let d = tape.constant_from(demand.view());
    // non-edge entries must stay exactly 0 while the check perturbs them
    let mask = tape.constant(statics.lead_time.mapv(|lt| if lt > 0 { 1.0 } else { 0.0 }));
    let store_action = tape.mul(actions.store, mask);
    let actions = TapeActions {
        store: store_action,
        ..actions
    };
    let (next_state, cost) = dynamics.step(tape, &state, &actions, d).unwrap();
    // weight the next pipelines by slot so every slot's gradient is visible
    let mut parts = vec![cost.total(tape)];
    for v in [
        Some(next_state.store),
        next_state.warehouse,
        next_state.echelon,
    ]
    .into_iter()
    .flatten()
    {
        let (r, c) = tape.shape(v);
        let w = tape.constant(Array2::from_shape_fn((r, c), |(i, j)| {
            0.3 + 0.1 * j as f32 + 0.01 * i as f32
        }));
        let p = tape.mul(v, w);
        parts.push(tape.sum_all(p));
    }
    let mut total = parts[0];
    for &p in &parts[1..] {
        total = tape.add(total, p);
    }
    let (r, c) = tape.shape(total);
    assert_eq!((r, c), (1, 1));
    total
}

/// Random state/actions away from kinks: on-hand never equals demand, rationing either clearly binds
/// or clearly does not.
fn gradcheck_setting(name: &str, seed: u64) {
    let sc = scenario(name, 3, 2);
    let statics = sc.statics.clone();
    let dynamics = TapeDynamics::new(&statics);
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let demand = sc
        .demand
        .slice(s![.., 0..1])
        .to_owned()
        .mapv(|d| d.round() + 0.5);
    let mut uniform = |shape: (usize, usize), lo: f32, hi: f32| {
        Array2::from_shape_simple_fn(shape, || rng.random_range(lo..hi).round() + 0.25)
    };
    let mut inputs = vec![uniform(sc.initial.store.dim(), 0.0, 12.0)];
    if statics.n_warehouses > 0 {
        inputs.push(uniform(sc.initial.warehouse.dim(), 2.0, 20.0));
    }
    if statics.n_echelons > 0 {
        inputs.push(uniform(sc.initial.echelon.dim(), 2.0, 20.0));
    }
    let mut store_action = uniform((sc.initial.store.nrows(), statics.n_sources()), 0.0, 9.0);
    for ((r, w), v) in store_action.indexed_iter_mut() {
        if statics.lead_time[[r, w]] == 0 {
            *v = 0.0;
        }
    }
    inputs.push(store_action);
    if statics.n_warehouses > 0 {
        inputs.push(uniform(
            (statics.n_samples * statics.n_warehouses, 1),
            1.0,
            30.0,
        ));
    }
    if statics.n_echelons > 0 {
        inputs.push(uniform(
            (statics.n_samples * statics.n_echelons, 1),
            1.0,
            30.0,
        ));
    }
    let opts = GradcheckOptions {
        eps: 1e-3,
        ..GradcheckOptions::default()
    };
    let report = check(
        &inputs,
        |t, v| one_step_loss(t, &dynamics, &statics, v, &demand),
        &opts,
    );
    assert!(report.passed, "{name}: {report}");
}

#[test]
fn fused_step_gradients_match_finite_differences_on_every_setting() {
    for (k, info) in list_settings().into_iter().enumerate() {
        gradcheck_setting(info.name, 11 + k as u64);
    }
}

/// The one-warehouse step composed from primitive tape ops (the reference formulation).
fn primitive_step(
    tape: &mut Tape,
    statics: &Statics,
    state: &TapeState,
    actions: &TapeActions,
    demand: Var,
) -> (TapeState, Var) {
    let (b, n_s) = (statics.n_samples, statics.n_stores);
    let wh = state.warehouse.unwrap();
    // rationing: k = min(1, A / Σ requests) per sample
    let requests = tape.reshape(actions.store, b, n_s);
    let total = tape.row_sums(requests);
    let on_hand_w = tape.column(wh, 0);
    let ratio = tape.div(on_hand_w, total);
    let k = tape.clamp_max(ratio, 1.0);
    let shipped = tape.mul(requests, k); // (B, S)
    let received = tape.reshape(shipped, b * n_s, 1);
    // stores
    let on = tape.column(state.store, 0);
    let post = tape.sub(on, demand);
    let p = tape.constant(statics.underage_cost.clone().insert_axis(ndarray::Axis(1)));
    let h = tape.constant(statics.holding_cost.clone().insert_axis(ndarray::Axis(1)));
    let short = tape.neg(post);
    let short = tape.relu(short);
    let over = tape.relu(post);
    let c1 = tape.mul(p, short);
    let c2 = tape.mul(h, over);
    let store_cost = tape.add(c1, c2);
    let leftover = tape.relu(post); // lost sales
    let shifted = tape.shift_left(state.store);
    let zero_col: Arc<[u32]> = Arc::from(vec![0u32; b * n_s]);
    let next = tape.add_at_column(shifted, leftover, zero_col);
    let slots: Arc<[u32]> = Arc::from(
        (0..b * n_s)
            .map(|r| statics.lead_time[[r, 0]] - 1)
            .collect::<Vec<_>>(),
    );
    let store = tape.add_at_column(next, received, slots);
    // warehouse
    let out = tape.row_sums(shipped);
    let post_w = tape.sub(on_hand_w, out);
    let held = tape.relu(post_w);
    let wh_cost = tape.scale(held, statics.warehouse_holding_cost[0]);
    let shifted_w = tape.shift_left(wh);
    let next_w = tape.add_at_column(shifted_w, post_w, Arc::from(vec![0u32; b]));
    let slot_w: Arc<[u32]> = Arc::from(vec![statics.warehouse_lead_time[0] - 1; b]);
    let warehouse = tape.add_at_column(next_w, actions.warehouse.unwrap(), slot_w);
    let a = tape.sum_all(store_cost);
    let c = tape.sum_all(wh_cost);
    let total = tape.add(a, c);
    (
        TapeState {
            store,
            warehouse: Some(warehouse),
            echelon: None,
        },
        total,
    )
}

#[test]
fn fused_step_matches_the_primitive_composition() {
    let sc = scenario("one_warehouse_lost", 4, 3);
    let statics = &sc.statics;
    let dynamics = TapeDynamics::new(statics);
    let mut rng = Pcg64Mcg::seed_from_u64(5);
    // two cases: rationing binds (large requests) and does not
    for request_scale in [40.0f32, 1.0] {
        let store0 = sc.initial.store.mapv(|v| v + 0.3);
        let wh0 = Array2::from_shape_simple_fn(sc.initial.warehouse.dim(), || {
            rng.random_range(5.0..15.0f32)
        });
        let store_action = Array2::from_shape_simple_fn((store0.nrows(), 1), || {
            rng.random_range(0.5..1.5f32) * request_scale
        });
        let wh_action =
            Array2::from_shape_simple_fn((statics.n_samples, 1), || rng.random_range(1.0..20.0f32));
        let demand = sc.demand.slice(s![.., 0..1]).to_owned().mapv(|d| d + 0.37);
        let mut values = Vec::new();
        let mut grads = Vec::new();
        for fused in [true, false] {
            let mut tape = Tape::new();
            let vs: Vec<Var> = [&store0, &wh0, &store_action, &wh_action]
                .iter()
                .map(|a| tape.variable((*a).clone()))
                .collect();
            let state = TapeState {
                store: vs[0],
                warehouse: Some(vs[1]),
                echelon: None,
            };
            let actions = TapeActions {
                store: vs[2],
                warehouse: Some(vs[3]),
                echelon: None,
            };
            let d = tape.constant(demand.clone());
            let (next, cost) = if fused {
                let (next, cost) = dynamics.step(&mut tape, &state, &actions, d).unwrap();
                let total = cost.total(&mut tape);
                (next, total)
            } else {
                primitive_step(&mut tape, statics, &state, &actions, d)
            };
            let w1 = tape.constant(Array2::from_shape_fn(tape.shape(next.store), |(i, j)| {
                1.0 + (i + 3 * j) as f32 * 0.1
            }));
            let w2 = tape.constant(Array2::from_shape_fn(
                tape.shape(next.warehouse.unwrap()),
                |(i, j)| 0.5 + (2 * i + j) as f32 * 0.1,
            ));
            let a = tape.mul(next.store, w1);
            let a = tape.sum_all(a);
            let b = tape.mul(next.warehouse.unwrap(), w2);
            let b = tape.sum_all(b);
            let l = tape.add(a, b);
            let l = tape.add(l, cost);
            let mut none = hdpo_autodiff::ParamStore::new().zero_grads();
            tape.backward(l, &mut none);
            values.push(tape.scalar(l));
            grads.push(
                vs.iter()
                    .map(|&v| tape.grad(v).unwrap().clone())
                    .collect::<Vec<_>>(),
            );
        }
        assert!(
            (values[0] - values[1]).abs() < 1e-3 * values[0].abs(),
            "loss {} vs {}",
            values[0],
            values[1]
        );
        for (k, (a, b)) in grads[0].iter().zip(&grads[1]).enumerate() {
            let diff = (a - b).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
            assert!(
                diff < 1e-4,
                "scale {request_scale}: input {k} gradients differ by {diff}:\n{a}\n{b}"
            );
        }
    }
}

#[test]
fn non_edge_shipments_are_errors_on_the_tape() {
    let sc = scenario("many_warehouses_lost", 2, 1);
    let statics = &sc.statics;
    let dynamics = TapeDynamics::new(statics);
    let mut tape = Tape::new();
    let state = TapeState::from_state(&mut tape, &sc.initial);
    let mut a = Actions::zeros(statics.n_samples, statics);
    let (r, w) = (0..a.store.nrows())
        .flat_map(|r| (0..2).map(move |w| (r, w)))
        .find(|&(r, w)| statics.lead_time[[r, w]] == 0)
        .expect("the many-warehouse instance has non-edges");
    a.store[[r, w]] = 1.0;
    let ta = actions_on_tape(&mut tape, &a, statics);
    let d = tape.constant_from(sc.demand.slice(s![.., 0..1]));
    let err = dynamics.step(&mut tape, &state, &ta, d).unwrap_err();
    assert!(
        matches!(err, dynamics::StepError::NonEdgeShipment { warehouse, .. } if warehouse == w),
        "{err}"
    );
}

#[test]
fn invalid_actions_are_errors_on_the_tape() {
    use dynamics::StepError;
    // a serial chain: warehouse and both echelons are rationed, echelon 0 orders from outside
    let sc = scenario("serial_system", 3, 1);
    let statics = &sc.statics;
    let dynamics = TapeDynamics::new(statics);
    let run = |edit: &dyn Fn(&mut Actions)| {
        let mut tape = Tape::new();
        let state = TapeState::from_state(&mut tape, &sc.initial);
        let mut a = Actions::zeros(statics.n_samples, statics);
        a.store.fill(1.0);
        a.warehouse.fill(1.0);
        a.echelon.fill(1.0);
        edit(&mut a);
        let ta = actions_on_tape(&mut tape, &a, statics);
        let d = tape.constant_from(sc.demand.slice(s![.., 0..1]));
        dynamics.step(&mut tape, &state, &ta, d).err()
    };
    assert!(run(&|_| {}).is_none(), "valid actions");
    let err = run(&|a| a.store[[2, 0]] = f32::NAN).unwrap();
    assert!(
        matches!(
            err,
            StepError::NonFinite {
                what: "actions.store",
                row: 2,
                ..
            }
        ),
        "{err}"
    );
    let err = run(&|a| a.echelon[[3, 0]] = f32::INFINITY).unwrap();
    assert!(
        matches!(
            err,
            StepError::NonFinite {
                what: "actions.echelon",
                row: 3,
                ..
            }
        ),
        "{err}"
    );
    let err = run(&|a| a.store[[1, 0]] = -2.0).unwrap();
    assert!(
        matches!(
            err,
            StepError::NegativeShipment {
                what: "store action",
                sample: 1,
                node: 0,
                ..
            }
        ),
        "{err}"
    );
    let err = run(&|a| a.warehouse[[2, 0]] = -1.0).unwrap();
    assert!(
        matches!(
            err,
            StepError::NegativeShipment {
                what: "warehouse order",
                sample: 2,
                ..
            }
        ),
        "{err}"
    );
    // echelon 0 of each sample orders from the outside supplier: any sign; echelon 1 may not
    assert!(run(&|a| a.echelon[[2, 0]] = -1.0).is_none());
    let err = run(&|a| a.echelon[[3, 0]] = -1.0).unwrap();
    assert!(
        matches!(
            err,
            StepError::NegativeShipment {
                what: "echelon order",
                sample: 1,
                node: 1,
                ..
            }
        ),
        "{err}"
    );
}

/// Regression: the data-driven net on the Favorita networks stopped with a non-finite gradient.
/// A warehouse left with a few ulps of stock by rounding (here 1e-26) was asked for slightly more
/// than it had: rationing bound with a total `t` whose square underflows f32 (t² = 0), and the
/// rationing VJP's `a / t²` was `a / 0 = ∞`. The gradients are now finite there, and elsewhere
/// the same as ever (checked against finite differences above).
#[test]
fn rationing_a_stock_of_a_few_ulps_has_finite_gradients() {
    let sc = scenario("one_warehouse_lost", 1, 1);
    let statics = &sc.statics;
    let dynamics = TapeDynamics::new(statics);
    let mut tape = Tape::new();
    let mut warehouse = sc.initial.warehouse.clone();
    warehouse[[0, 0]] = 1e-26;
    let wh = tape.variable(warehouse);
    let store = tape.variable(sc.initial.store.clone());
    // the five stores ask 1e-26 each: 5e-26 of a stock of 1e-26
    let ship = tape.variable(Array2::from_elem((statics.n_stores, 1), 1e-26f32));
    let order = tape.variable(Array2::from_elem((1, 1), 3.0f32));
    let state = TapeState {
        store,
        warehouse: Some(wh),
        echelon: None,
    };
    let actions = TapeActions {
        store: ship,
        warehouse: Some(order),
        echelon: None,
    };
    let d = tape.constant_from(sc.demand.slice(s![.., 0..1]));
    let (next, cost) = dynamics.step(&mut tape, &state, &actions, d).unwrap();
    // a loss that weighs every next store slot, so the rationed shipments' gradients are live
    let w = tape.constant(Array2::from_shape_fn(tape.shape(next.store), |(i, j)| {
        1.0 + i as f32 + 0.5 * j as f32
    }));
    let weighted = tape.mul(next.store, w);
    let slots = tape.sum_all(weighted);
    let total = cost.total(&mut tape);
    let loss = tape.add(total, slots);
    let mut grads = hdpo_autodiff::ParamStore::new().zero_grads();
    tape.backward(loss, &mut grads);
    for (what, v) in [("shipments", ship), ("warehouse", wh), ("stores", store)] {
        let g = tape.grad(v).unwrap();
        assert!(g.iter().all(|x| x.is_finite()), "{what}: {g:?}");
    }
}
