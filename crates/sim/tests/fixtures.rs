//! Replays every case of `data/reference_fixtures/simulator_steps.json` through our step.
//!
//! The reference lets warehouse/echelon stock go negative when shipments exceed on-hand; we
//! ration instead. Each sample is therefore compared with the reference step by step until the
//! first period in which our rationing binds for it (that period's cost is still compared — it
//! is unaffected — but not the pipelines); rationing itself is tested by hand in `dynamics.rs`.

mod common;

use common::close;
use hdpo_sim::config::{Objective, UnmetDemand};
use hdpo_sim::dynamics::{rationing_factor, step, warehouse_requests};
use hdpo_sim::state::{Actions, State, Statics};
use ndarray::{Array1, Array2};
use serde_json::Value;

const FIXTURES: &str = include_str!("../../../data/reference_fixtures/simulator_steps.json");
const TOL: f64 = 1e-4;

fn f(v: &Value) -> f32 {
    v.as_f64().expect("number") as f32
}

/// `[B][N][L]` → `(B·N, L)`.
fn rows3(v: &Value) -> Array2<f32> {
    let outer = v.as_array().unwrap();
    let mut rows: Vec<Vec<f32>> = Vec::new();
    for sample in outer {
        for node in sample.as_array().unwrap() {
            rows.push(node.as_array().unwrap().iter().map(f).collect());
        }
    }
    let cols = rows.first().map_or(0, Vec::len);
    Array2::from_shape_vec((rows.len(), cols), rows.concat()).unwrap()
}

/// `[B][N]` → `(B·N)`.
fn flat2(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s.as_array().unwrap().iter().map(f))
        .collect()
}

/// Per-node constants `[B][N]` that must be equal across samples → `N` values.
fn per_node(v: &Value) -> Vec<f32> {
    let samples = v.as_array().unwrap();
    let first: Vec<f32> = samples[0].as_array().unwrap().iter().map(f).collect();
    for s in samples {
        let this: Vec<f32> = s.as_array().unwrap().iter().map(f).collect();
        assert_eq!(this, first, "per-node constants differ across samples");
    }
    first
}

struct Case {
    name: String,
    statics: Statics,
    state: State,
    /// `(B·S, T)`.
    demand: Array2<f32>,
    actions: Vec<Actions>,
    expected: Vec<Value>,
}

fn load_cases() -> Vec<Case> {
    let root: Value = serde_json::from_str(FIXTURES).unwrap();
    let mut cases = Vec::new();
    for case in root["cases"].as_array().unwrap() {
        let pp = &case["problem_params"];
        let inputs = &case["inputs"];
        let s = pp["n_stores"].as_u64().unwrap() as usize;
        let w = pp["n_warehouses"].as_u64().unwrap() as usize;
        let e = pp["n_extra_echelons"].as_u64().unwrap() as usize;
        let demand = rows3(&inputs["demands"]);
        let b = demand.nrows() / s;
        let lead_f = rows3(&inputs["lead_times"]);
        let lead_time = lead_f.mapv(|x| x as u32);
        let mut adjacency = Array2::from_elem((w, s), w == 1);
        if let Some(adj) = pp.get("warehouse_store_adjacency") {
            for (k, row) in adj.as_array().unwrap().iter().enumerate() {
                for (i, x) in row.as_array().unwrap().iter().enumerate() {
                    adjacency[[k, i]] = x.as_f64().unwrap() != 0.0;
                }
            }
        }
        let get = |key: &str| inputs.get(key).map(per_node).unwrap_or_default();
        let statics = Statics {
            n_samples: b,
            n_stores: s,
            n_warehouses: w,
            n_echelons: e,
            unmet_demand: if pp["lost_demand"].as_bool().unwrap() {
                UnmetDemand::Lost
            } else {
                UnmetDemand::Backlogged
            },
            objective: if pp["maximize_profit"].as_bool().unwrap() {
                Objective::Profit
            } else {
                Objective::Cost
            },
            holding_cost: Array1::from(flat2(&inputs["holding_costs"])),
            underage_cost: Array1::from(flat2(&inputs["underage_costs"])),
            lead_time,
            mean: Array1::zeros(b * s),
            std: Array1::zeros(b * s),
            warehouse_holding_cost: get("warehouse_holding_costs"),
            warehouse_lead_time: get("warehouse_lead_times")
                .iter()
                .map(|&x| x as u32)
                .collect(),
            warehouse_edge_cost: inputs
                .get("warehouse_edge_costs")
                .map(per_node)
                .unwrap_or_else(|| vec![0.0; w]),
            echelon_holding_cost: get("echelon_holding_costs"),
            echelon_lead_time: get("echelon_lead_times")
                .iter()
                .map(|&x| x as u32)
                .collect(),
            adjacency,
            calendar: Default::default(),
        };
        let state = State {
            store: rows3(&inputs["initial_inventories"]),
            warehouse: inputs
                .get("initial_warehouse_inventories")
                .map(rows3)
                .unwrap_or_else(|| Array2::zeros((0, 0))),
            echelon: inputs
                .get("initial_echelon_inventories")
                .map(rows3)
                .unwrap_or_else(|| Array2::zeros((0, 0))),
        };
        let actions = case["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| Actions {
                store: rows3(&a["stores"]),
                warehouse: a
                    .get("warehouses")
                    .map(rows3)
                    .unwrap_or_else(|| Array2::zeros((0, 1))),
                echelon: a
                    .get("echelons")
                    .map(rows3)
                    .unwrap_or_else(|| Array2::zeros((0, 1))),
            })
            .collect();
        cases.push(Case {
            name: case["name"].as_str().unwrap().to_string(),
            statics,
            state,
            demand,
            actions,
            expected: case["expected_steps"].as_array().unwrap().clone(),
        });
    }
    cases
}

/// Does rationing bind for sample `b` in this period (any warehouse or echelon)?
fn rationing_binds(state: &State, actions: &Actions, statics: &Statics, b: usize) -> bool {
    let (w, e) = (statics.n_warehouses, statics.n_echelons);
    let requested = warehouse_requests(actions, statics);
    let warehouse = (0..w).any(|k| {
        let r = b * w + k;
        rationing_factor(state.warehouse[[r, 0]], requested[r]) < 1.0
    });
    let echelon = (0..e).any(|i| {
        let r = b * e + i;
        let req = if i + 1 < e {
            actions.echelon[[r + 1, 0]]
        } else {
            (0..w).map(|k| actions.warehouse[[b * w + k, 0]]).sum()
        };
        rationing_factor(state.echelon[[r, 0]], req) < 1.0
    });
    warehouse || echelon
}

/// The reference's state after a step, corrected by exactly what our rationing changes: a
/// binding warehouse/echelon keeps `requested·(1 − k)` more on hand (its leftover is
/// `max(on, 0) − shipped` instead of negative) and every node it supplies receives
/// `quantity·(1 − k)` less in slot `ℓ − 1`. Returns the corrected state and the number of
/// binding nodes.
fn with_rationing_corrections(
    before: &State,
    after_reference: &State,
    actions: &Actions,
    statics: &Statics,
) -> (State, usize) {
    let (b_count, s, w, e) = (
        statics.n_samples,
        statics.n_stores,
        statics.n_warehouses,
        statics.n_echelons,
    );
    let mut out = after_reference.clone();
    let mut binding = 0;
    let requested = warehouse_requests(actions, statics);
    for b in 0..b_count {
        for k in 0..w {
            let r = b * w + k;
            let factor = rationing_factor(before.warehouse[[r, 0]], requested[r]);
            if factor < 1.0 {
                binding += 1;
                out.warehouse[[r, 0]] += requested[r] * (1.0 - factor);
                for i in 0..s {
                    let q = actions.store[[b * s + i, k]];
                    let lt = statics.lead_time[[b * s + i, k]] as usize;
                    if q > 0.0 {
                        out.store[[b * s + i, lt - 1]] -= q * (1.0 - factor);
                    }
                }
            }
        }
        for i in 0..e {
            let r = b * e + i;
            let req: f32 = if i + 1 < e {
                actions.echelon[[r + 1, 0]]
            } else {
                (0..w).map(|k| actions.warehouse[[b * w + k, 0]]).sum()
            };
            let factor = rationing_factor(before.echelon[[r, 0]], req);
            if factor < 1.0 {
                binding += 1;
                out.echelon[[r, 0]] += req * (1.0 - factor);
                if i + 1 < e {
                    let lt = statics.echelon_lead_time[i + 1] as usize;
                    out.echelon[[r + 1, lt - 1]] -= actions.echelon[[r + 1, 0]] * (1.0 - factor);
                } else {
                    for k in 0..w {
                        let lt = statics.warehouse_lead_time[k] as usize;
                        out.warehouse[[b * w + k, lt - 1]] -=
                            actions.warehouse[[b * w + k, 0]] * (1.0 - factor);
                    }
                }
            }
        }
    }
    (out, binding)
}

fn compare_row(
    case: &str,
    what: &str,
    t: usize,
    ours: &Array2<f32>,
    reference: &Array2<f32>,
    r: usize,
) {
    for (k, (&x, &y)) in ours.row(r).iter().zip(reference.row(r)).enumerate() {
        assert!(
            close(f64::from(x), f64::from(y), TOL),
            "{case} t={t}: {what} row {r} slot {k}: ours {x}, reference {y}"
        );
    }
}

fn compare_rows(
    case: &str,
    what: &str,
    t: usize,
    ours: &Array2<f32>,
    expected: &Value,
    b: usize,
    per_sample: usize,
) {
    let reference = rows3(expected);
    for r in b * per_sample..(b + 1) * per_sample {
        for (k, (&x, &y)) in ours.row(r).iter().zip(reference.row(r)).enumerate() {
            assert!(
                close(f64::from(x), f64::from(y), TOL),
                "{case} t={t} sample {b}: {what} row {r} slot {k}: ours {x}, reference {y}"
            );
        }
    }
}

#[test]
fn replay_reference_simulator_steps() {
    let cases = load_cases();
    assert_eq!(cases.len(), 6, "expected the 6 fixture cases");
    for mut case in cases {
        let statics = &case.statics;
        let b_count = statics.n_samples;
        let mut diverged = vec![false; b_count];
        let mut compared_steps = 0;
        let mut binding_events = 0;
        let mut reference_negative = false;
        let mut cost = vec![0.0f32; b_count];
        for (t, (actions, expected)) in case.actions.iter().zip(&case.expected).enumerate() {
            // The multi-warehouse case sends non-zero quantities only on edges.
            for (row, lead_row) in actions
                .store
                .rows()
                .into_iter()
                .zip(statics.lead_time.rows())
            {
                for (&q, &lt) in row.iter().zip(lead_row) {
                    assert!(lt > 0 || q == 0.0, "{}: shipment on a non-edge", case.name);
                }
            }
            let binds: Vec<bool> = (0..b_count)
                .map(|b| rationing_binds(&case.state, actions, statics, b))
                .collect();
            let demand: Vec<f32> = case.demand.column(t).to_vec();
            step(&mut case.state, actions, &demand, statics, &mut cost)
                .unwrap_or_else(|e| panic!("{} t={t}: {e}", case.name));
            let reward = &expected["reward_per_sample"];
            for b in 0..b_count {
                if diverged[b] {
                    continue;
                }
                let reference = reward[b].as_f64().unwrap();
                assert!(
                    close(f64::from(cost[b]), reference, TOL),
                    "{} t={t} sample {b}: cost ours {}, reference {reference}",
                    case.name,
                    cost[b]
                );
                if binds[b] {
                    binding_events += 1;
                    diverged[b] = true;
                    continue;
                }
                compared_steps += 1;
                let (s, w, e) = (statics.n_stores, statics.n_warehouses, statics.n_echelons);
                let store = &expected["store_inventories_after"];
                compare_rows(&case.name, "store", t, &case.state.store, store, b, s);
                if w > 0 {
                    let wh = &expected["warehouse_inventories_after"];
                    compare_rows(&case.name, "warehouse", t, &case.state.warehouse, wh, b, w);
                }
                if e > 0 {
                    let ech = &expected["echelon_inventories_after"];
                    compare_rows(&case.name, "echelon", t, &case.state.echelon, ech, b, e);
                }
            }
            for key in ["warehouse_inventories_after", "echelon_inventories_after"] {
                if let Some(v) = expected.get(key) {
                    reference_negative |= rows3(v).iter().any(|&x| x < 0.0);
                }
            }
            // Our upstream stock never goes negative.
            for upstream in [&case.state.warehouse, &case.state.echelon] {
                assert!(upstream.rows().into_iter().all(|row| row[0] >= 0.0));
            }
        }
        eprintln!(
            "{}: {compared_steps} sample-steps compared in full, {binding_events} rationing events",
            case.name
        );
        if binding_events == 0 {
            assert_eq!(
                compared_steps, 16,
                "{}: every step must be compared",
                case.name
            );
        }
        // Wherever the reference goes negative upstream, our rationing must have bound.
        assert_eq!(
            reference_negative,
            binding_events > 0,
            "{}: negative reference upstream stock iff our rationing binds",
            case.name
        );
    }
}

/// Every step again, but each from the reference's own state before it (the initial state or
/// the reference's state after the previous step), so that a sample whose upstream stock the
/// reference let go negative earlier is still compared in later periods — wherever our
/// rationing does not bind in that period.
#[test]
fn replay_each_step_from_reference_state() {
    for case in load_cases() {
        let statics = &case.statics;
        let b_count = statics.n_samples;
        let (w, e) = (statics.n_warehouses, statics.n_echelons);
        let mut state = case.state.clone();
        let mut binding_nodes = 0;
        let mut reference_negative = false;
        let mut cost = vec![0.0f32; b_count];
        for (t, (actions, expected)) in case.actions.iter().zip(&case.expected).enumerate() {
            let demand: Vec<f32> = case.demand.column(t).to_vec();
            let mut ours = state.clone();
            step(&mut ours, actions, &demand, statics, &mut cost).unwrap();
            let reference = State {
                store: rows3(&expected["store_inventories_after"]),
                warehouse: expected
                    .get("warehouse_inventories_after")
                    .map(rows3)
                    .unwrap_or_else(|| state.warehouse.clone()),
                echelon: expected
                    .get("echelon_inventories_after")
                    .map(rows3)
                    .unwrap_or_else(|| state.echelon.clone()),
            };
            reference_negative |= reference.warehouse.iter().any(|&x| x < 0.0)
                || reference.echelon.iter().any(|&x| x < 0.0);
            let (corrected, binding) =
                with_rationing_corrections(&state, &reference, actions, statics);
            binding_nodes += binding;
            for b in 0..b_count {
                // Rationing never changes the cost of the period it binds in (store costs depend
                // on the on-hand before arrivals; upstream holding is charged on max(leftover, 0),
                // 0 in both; the fixture with edge costs has no echelon to ration orders).
                let reward = expected["reward_per_sample"][b].as_f64().unwrap();
                assert!(
                    close(f64::from(cost[b]), reward, TOL),
                    "{} t={t} sample {b}: cost ours {}, reference {reward}",
                    case.name,
                    cost[b]
                );
            }
            for r in 0..ours.store.nrows() {
                compare_row(&case.name, "store", t, &ours.store, &corrected.store, r);
            }
            for r in 0..ours.warehouse.nrows() {
                compare_row(
                    &case.name,
                    "warehouse",
                    t,
                    &ours.warehouse,
                    &corrected.warehouse,
                    r,
                );
            }
            for r in 0..ours.echelon.nrows() {
                compare_row(
                    &case.name,
                    "echelon",
                    t,
                    &ours.echelon,
                    &corrected.echelon,
                    r,
                );
            }
            // Next step starts from the reference's state.
            state = reference;
        }
        eprintln!(
            "{}: all steps compared, {binding_nodes} binding node-steps corrected",
            case.name
        );
        assert_eq!(
            reference_negative,
            binding_nodes > 0,
            "{}: the reference goes negative upstream iff our rationing binds",
            case.name
        );
        if w + e == 0 {
            assert_eq!(binding_nodes, 0);
        }
    }
}

/// The hand check of spec §9.3 (case `one_store_lost_L1_and_L4`, t = 0).
#[test]
fn hand_check_one_store_lost_l1_and_l4() {
    let cases = load_cases();
    let mut case = cases
        .into_iter()
        .find(|c| c.name == "one_store_lost_L1_and_L4")
        .unwrap();
    assert_eq!(case.state.store.row(0).to_vec(), vec![3.0, 4.0, 0.0, 2.0]);
    assert_eq!(case.state.store.row(1).to_vec(), vec![10.0, 0.0, 5.0, 0.0]);
    let mut cost = vec![0.0; 2];
    let demand = case.demand.column(0).to_vec();
    assert_eq!(demand, vec![6.0, 6.0]);
    step(
        &mut case.state,
        &case.actions[0],
        &demand,
        &case.statics,
        &mut cost,
    )
    .unwrap();
    // Sample 0: p = 4, 3 units short → 12; pipeline [0 + 4 + 7, 0, 2, 0].
    // Sample 1: h = 1, 4 left → 4; order 2 with L = 4 lands in the last slot.
    assert_eq!(cost, vec![12.0, 4.0]);
    assert_eq!(case.state.store.row(0).to_vec(), vec![11.0, 0.0, 2.0, 0.0]);
    assert_eq!(case.state.store.row(1).to_vec(), vec![4.0, 5.0, 0.0, 2.0]);
}

/// An independent, hand-written f64 simulator of one period (spec §1.3 with proportional
/// rationing), sharing no code with `hdpo_sim::dynamics`: each supplier ships
/// `k = min(1, max(on, 0) / requested)` of every request on it (`k = 1` when nothing is asked),
/// keeps `on − k·requested`, and each receiver gets its request times its supplier's `k`.
/// Returns each sample's cost of the period and whether any supplier of that sample rationed.
/// With `ration == false` every request is shipped in full and upstream stock may go negative:
/// the reference's own rule.
fn independent_step(
    ration: bool,
    store: &mut Array2<f64>,
    warehouse: &mut Array2<f64>,
    echelon: &mut Array2<f64>,
    actions: &Actions,
    demand: &[f32],
    st: &Statics,
) -> (Vec<f64>, Vec<bool>) {
    let (b_count, s, w, e) = (st.n_samples, st.n_stores, st.n_warehouses, st.n_echelons);
    let factor = |on: f64, requested: f64| {
        if ration && requested > 0.0 {
            (on.max(0.0) / requested).min(1.0)
        } else {
            1.0
        }
    };
    // new[0] = old[1] + leftover, new[j] = old[j + 1], new[L − 1] = 0
    let advance = |row: &mut [f64], leftover: f64| {
        let l = row.len();
        for j in 0..l - 1 {
            row[j] = row[j + 1];
        }
        row[l - 1] = 0.0;
        row[0] += leftover;
    };
    let mut costs = vec![0.0f64; b_count];
    let mut rationed = vec![false; b_count];
    for b in 0..b_count {
        let q = |i: usize, k: usize| f64::from(actions.store[[b * s + i, k]]);
        let is_edge = |i: usize, k: usize| st.lead_time[[b * s + i, k]] > 0;
        // requests and factors, all from the on-hand at the start of the period
        let wh_requested: Vec<f64> = (0..w)
            .map(|k| (0..s).filter(|&i| is_edge(i, k)).map(|i| q(i, k)).sum())
            .collect();
        let wh_factor: Vec<f64> = (0..w)
            .map(|k| factor(warehouse[[b * w + k, 0]], wh_requested[k]))
            .collect();
        let wh_order = |k: usize| f64::from(actions.warehouse[[b * w + k, 0]]);
        let ech_order = |i: usize| f64::from(actions.echelon[[b * e + i, 0]]);
        let ech_requested: Vec<f64> = (0..e)
            .map(|i| {
                if i + 1 < e {
                    ech_order(i + 1)
                } else {
                    (0..w).map(wh_order).sum()
                }
            })
            .collect();
        let ech_factor: Vec<f64> = (0..e)
            .map(|i| factor(echelon[[b * e + i, 0]], ech_requested[i]))
            .collect();
        rationed[b] = wh_factor.iter().chain(&ech_factor).any(|&k| k < 1.0);
        // stores
        for i in 0..s {
            let r = b * s + i;
            let (on, d) = (store[[r, 0]], f64::from(demand[r]));
            let (h, p) = (
                f64::from(st.holding_cost[r]),
                f64::from(st.underage_cost[r]),
            );
            costs[b] += match st.objective {
                Objective::Cost => p * (d - on).max(0.0) + h * (on - d).max(0.0),
                Objective::Profit => -p * on.min(d) + h * (on - d).max(0.0),
            };
            let leftover = match st.unmet_demand {
                UnmetDemand::Lost => (on - d).max(0.0),
                UnmetDemand::Backlogged => on - d,
            };
            let mut row = store.row(r).to_vec();
            advance(&mut row, leftover);
            if w == 0 {
                let lt = st.lead_time[[r, 0]] as usize;
                row[lt - 1] += q(i, 0);
            } else {
                for k in (0..w).filter(|&k| is_edge(i, k)) {
                    let lt = st.lead_time[[r, k]] as usize;
                    row[lt - 1] += q(i, k) * wh_factor[k];
                }
            }
            store.row_mut(r).assign(&Array1::from(row));
        }
        // warehouses, supplied by the last echelon (if any) or the outside supplier
        for k in 0..w {
            let r = b * w + k;
            let leftover = warehouse[[r, 0]] - wh_requested[k] * wh_factor[k];
            let delivered = wh_order(k) * if e > 0 { ech_factor[e - 1] } else { 1.0 };
            let edge_cost = st.warehouse_edge_cost.get(k).copied().unwrap_or(0.0);
            costs[b] += f64::from(st.warehouse_holding_cost[k]) * leftover.max(0.0)
                + f64::from(edge_cost) * delivered;
            let mut row = warehouse.row(r).to_vec();
            advance(&mut row, leftover);
            row[st.warehouse_lead_time[k] as usize - 1] += delivered;
            warehouse.row_mut(r).assign(&Array1::from(row));
        }
        // echelons: echelon 0 orders from the outside supplier, echelon i from echelon i − 1
        for i in 0..e {
            let r = b * e + i;
            let leftover = echelon[[r, 0]] - ech_requested[i] * ech_factor[i];
            let delivered = ech_order(i) * if i > 0 { ech_factor[i - 1] } else { 1.0 };
            costs[b] += f64::from(st.echelon_holding_cost[i]) * leftover.max(0.0);
            let mut row = echelon.row(r).to_vec();
            advance(&mut row, leftover);
            row[st.echelon_lead_time[i] as usize - 1] += delivered;
            echelon.row_mut(r).assign(&Array1::from(row));
        }
    }
    (costs, rationed)
}

/// Every field of every step of every case, from the initial state to the end — including every
/// period after rationing first binds — against [`independent_step`], which is itself checked
/// against the reference's recorded steps for each sample until its first rationing. Closes the
/// hole of `replay_reference_simulator_steps` (which stops comparing a sample's pipelines once
/// rationing binds: 1, 1 and 0 of 16 sample-steps in the three multi-node cases) and of
/// `replay_each_step_from_reference_state` (which corrects the reference with our own
/// `rationing_factor`).
#[test]
fn replay_against_an_independent_rationing_simulator() {
    let close_to = |ours: f32, theirs: f64| close(f64::from(ours), theirs, TOL);
    for mut case in load_cases() {
        let st = case.statics.clone();
        let b_count = st.n_samples;
        let (mut store, mut warehouse, mut echelon) = (
            case.state.store.mapv(f64::from),
            case.state.warehouse.mapv(f64::from),
            case.state.echelon.mapv(f64::from),
        );
        let mut diverged_from_reference = vec![false; b_count];
        let (mut rationed_steps, mut after_rationing, mut checked_against_reference) = (0, 0, 0);
        let mut cost = vec![0.0f32; b_count];
        let mut reference_before = case.state.clone();
        let mut validated_from_reference_state = 0;
        for (t, (actions, expected)) in case.actions.iter().zip(&case.expected).enumerate() {
            let demand: Vec<f32> = case.demand.column(t).to_vec();
            // the independent simulator, rationing switched off (the reference's rule), from the
            // reference's own state before this step must reproduce the reference's step
            let (mut s0, mut w0, mut e0) = (
                reference_before.store.mapv(f64::from),
                reference_before.warehouse.mapv(f64::from),
                reference_before.echelon.mapv(f64::from),
            );
            let (c0, _) = independent_step(false, &mut s0, &mut w0, &mut e0, actions, &demand, &st);
            let reference_after = State {
                store: rows3(&expected["store_inventories_after"]),
                warehouse: expected
                    .get("warehouse_inventories_after")
                    .map(rows3)
                    .unwrap_or_else(|| reference_before.warehouse.clone()),
                echelon: expected
                    .get("echelon_inventories_after")
                    .map(rows3)
                    .unwrap_or_else(|| reference_before.echelon.clone()),
            };
            for b in 0..b_count {
                let reward = expected["reward_per_sample"][b].as_f64().unwrap();
                assert!(
                    close(c0[b], reward, TOL),
                    "{} t={t}: cost from the reference state",
                    case.name
                );
                for (what, ours, theirs, n) in [
                    ("store", &s0, &reference_after.store, st.n_stores),
                    (
                        "warehouse",
                        &w0,
                        &reference_after.warehouse,
                        st.n_warehouses,
                    ),
                    ("echelon", &e0, &reference_after.echelon, st.n_echelons),
                ] {
                    for r in b * n..(b + 1) * n {
                        for (k, &y) in theirs.row(r).iter().enumerate() {
                            assert!(
                                close(ours[[r, k]], f64::from(y), TOL),
                                "{} t={t}: independent {what} row {r} slot {k} from the \
                                 reference state: {} vs {y}",
                                case.name,
                                ours[[r, k]]
                            );
                        }
                    }
                }
                validated_from_reference_state += 1;
            }
            reference_before = reference_after;
            step(&mut case.state, actions, &demand, &st, &mut cost).unwrap();
            let (costs, rationed) = independent_step(
                true,
                &mut store,
                &mut warehouse,
                &mut echelon,
                actions,
                &demand,
                &st,
            );
            let name = &case.name;
            for b in 0..b_count {
                assert!(
                    close_to(cost[b], costs[b]),
                    "{name} t={t} sample {b}: cost ours {}, independent {}",
                    cost[b],
                    costs[b]
                );
                if rationed[b] {
                    rationed_steps += 1;
                    diverged_from_reference[b] = true;
                }
                // from its first rationing on, a sample is compared with the independent
                // simulator only (the earlier replays stop comparing it there)
                after_rationing += usize::from(diverged_from_reference[b]);
            }
            for (what, ours, theirs) in [
                ("store", &case.state.store, &store),
                ("warehouse", &case.state.warehouse, &warehouse),
                ("echelon", &case.state.echelon, &echelon),
            ] {
                assert_eq!(ours.dim(), theirs.dim(), "{name}: {what} shape");
                for ((r, k), &x) in ours.indexed_iter() {
                    assert!(
                        close_to(x, theirs[[r, k]]),
                        "{name} t={t}: {what} row {r} slot {k}: ours {x}, independent {}",
                        theirs[[r, k]]
                    );
                }
            }
            // the independent simulator agrees with the reference's own record wherever no
            // rationing has happened yet in that sample (the reference does not ration)
            let per_sample = [
                ("store_inventories_after", &store, st.n_stores),
                ("warehouse_inventories_after", &warehouse, st.n_warehouses),
                ("echelon_inventories_after", &echelon, st.n_echelons),
            ];
            for b in (0..b_count).filter(|&b| !diverged_from_reference[b]) {
                let reward = expected["reward_per_sample"][b].as_f64().unwrap();
                assert!(
                    close(costs[b], reward, TOL),
                    "{name} t={t}: independent cost"
                );
                for (key, ours, n) in per_sample {
                    if n == 0 {
                        continue;
                    }
                    let reference = rows3(&expected[key]);
                    for r in b * n..(b + 1) * n {
                        for (k, &y) in reference.row(r).iter().enumerate() {
                            assert!(
                                close(ours[[r, k]], f64::from(y), TOL),
                                "{name} t={t}: independent {key} row {r} slot {k}: {} vs reference {y}",
                                ours[[r, k]]
                            );
                        }
                    }
                }
                checked_against_reference += 1;
            }
        }
        eprintln!(
            "{}: {rationed_steps} rationing sample-steps, {after_rationing} sample-steps from a \
             sample's first rationing on compared in full; the independent simulator checked \
             against the reference on {checked_against_reference} sample-steps along the \
             trajectory and {validated_from_reference_state} from the reference's states",
            case.name
        );
        assert!(
            validated_from_reference_state == case.actions.len() * b_count,
            "{}: the independent simulator reproduced only {validated_from_reference_state} \
             reference steps",
            case.name
        );
        if st.n_warehouses + st.n_echelons > 0 {
            // the multi-node cases ration from their first periods on: most of their
            // sample-steps are compared only here
            assert!(
                rationed_steps > 0 && after_rationing >= 8,
                "{}: {rationed_steps} rationing sample-steps, {after_rationing} compared after",
                case.name
            );
        } else {
            assert_eq!(rationed_steps, 0);
        }
    }
}
