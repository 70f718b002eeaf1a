//! The step: hand-computed cases (rationing, errors, formulas) and property tests (units are
//! conserved, costs are non-negative in cost mode, upstream stock stays non-negative, an order
//! with lead time ℓ is on hand exactly ℓ periods later).

mod common;

use common::{Net, zeros_actions, zeros_state};
use hdpo_sim::config::{Objective, PipelineLengths, UnmetDemand};
use hdpo_sim::dynamics::{
    StepError, leftover_backlogged, leftover_lost, rationing_factor, step, store_cost,
    store_profit_cost, upstream_leftover,
};
use hdpo_sim::state::{Actions, State, Statics};
use ndarray::Array2;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64;

fn lengths(store: usize, warehouse: usize, echelon: usize) -> PipelineLengths {
    PipelineLengths {
        store,
        warehouse,
        echelon,
    }
}

/// One warehouse (h 0.3, LT 3) serving two stores with lead times 1 and 2, one sample.
fn one_warehouse_two_stores() -> Net {
    Net {
        n_samples: 1,
        n_stores: 2,
        n_warehouses: 1,
        n_echelons: 0,
        unmet: UnmetDemand::Lost,
        objective: Objective::Cost,
        holding: vec![1.0, 1.0],
        underage: vec![9.0, 9.0],
        lead: vec![vec![1], vec![2]],
        warehouse_holding: vec![0.3],
        warehouse_lead: vec![3],
        warehouse_edge: vec![0.0],
        echelon_holding: vec![],
        echelon_lead: vec![],
    }
}

#[test]
fn scalar_formulas() {
    // Cost mode: 3 short at p = 9; 2 left at h = 1.
    assert_eq!(store_cost(2.0, 5.0, 1.0, 9.0), 27.0);
    assert_eq!(store_cost(7.0, 5.0, 1.0, 9.0), 2.0);
    // Backlog carried (on-hand −4) is charged again with the new shortage.
    assert_eq!(store_cost(-4.0, 5.0, 1.0, 9.0), 81.0);
    // Profit mode: sells min(on, d), pays holding on the leftover.
    assert_eq!(store_profit_cost(5.0, 3.0, 1.0, 8.5), -8.5 * 3.0 + 2.0);
    assert_eq!(store_profit_cost(5.0, -2.0, 1.0, 8.5), 8.5 * 2.0 + 7.0);
    assert_eq!(leftover_lost(2.0, 5.0), 0.0);
    assert_eq!(leftover_backlogged(2.0, 5.0), -3.0);
    // Rationing.
    assert_eq!(rationing_factor(10.0, 15.0), 10.0 / 15.0);
    assert_eq!(rationing_factor(10.0, 5.0), 1.0);
    assert_eq!(rationing_factor(10.0, 0.0), 1.0);
    assert_eq!(rationing_factor(-3.0, 5.0), 0.0);
    assert_eq!(upstream_leftover(10.0, 15.0), 0.0);
    assert_eq!(upstream_leftover(10.0, 4.0), 6.0);
    assert_eq!(upstream_leftover(-3.0, 5.0), -3.0);
    assert_eq!(upstream_leftover(-3.0, 0.0), -3.0);
}

#[test]
fn warehouse_rations_proportionally_when_asked_too_much() {
    let statics = one_warehouse_two_stores().statics();
    let mut state = zeros_state(&statics, lengths(3, 3, 0));
    state.store.fill(0.0);
    state.store[[0, 0]] = 1.0;
    state.store[[1, 0]] = 1.0;
    state.warehouse[[0, 0]] = 10.0;
    let mut actions = zeros_actions(&statics);
    actions.store[[0, 0]] = 6.0;
    actions.store[[1, 0]] = 9.0;
    actions.warehouse[[0, 0]] = 5.0;
    let mut cost = vec![0.0];
    step(&mut state, &actions, &[0.0, 0.0], &statics, &mut cost).unwrap();
    // k = 10 / 15: store 0 receives 4 (lead time 1 → on hand next period), store 1 receives 6
    // in slot 1; the warehouse ends at 0 (no holding cost) and its order lands in slot 2.
    let k = 10.0f32 / 15.0;
    assert_eq!(state.store.row(0).to_vec(), vec![1.0 + 6.0 * k, 0.0, 0.0]);
    assert_eq!(state.store.row(1).to_vec(), vec![1.0, 9.0 * k, 0.0]);
    assert!((state.store[[0, 0]] - 5.0).abs() < 1e-6);
    assert!((state.store[[1, 1]] - 6.0).abs() < 1e-6);
    assert_eq!(state.warehouse.row(0).to_vec(), vec![0.0, 0.0, 5.0]);
    assert_eq!(cost, vec![2.0]);
}

#[test]
fn warehouse_ships_in_full_when_it_can() {
    let statics = one_warehouse_two_stores().statics();
    let mut state = zeros_state(&statics, lengths(3, 3, 0));
    state.warehouse[[0, 0]] = 10.0;
    state.warehouse[[0, 1]] = 2.0;
    let mut actions = zeros_actions(&statics);
    actions.store[[0, 0]] = 3.0;
    actions.store[[1, 0]] = 2.0;
    let mut cost = vec![0.0];
    step(&mut state, &actions, &[0.0, 0.0], &statics, &mut cost).unwrap();
    assert_eq!(state.store.row(0).to_vec(), vec![3.0, 0.0, 0.0]);
    assert_eq!(state.store.row(1).to_vec(), vec![0.0, 2.0, 0.0]);
    // 5 left + 2 arriving; holding 0.3 · 5.
    assert_eq!(state.warehouse.row(0).to_vec(), vec![7.0, 0.0, 0.0]);
    assert!((cost[0] - 1.5).abs() < 1e-6);
}

#[test]
fn warehouse_with_negative_stock_ships_nothing() {
    // A hand-built state with negative warehouse stock (e.g. copied from the reference).
    let statics = one_warehouse_two_stores().statics();
    let mut state = zeros_state(&statics, lengths(3, 3, 0));
    state.warehouse[[0, 0]] = -2.0;
    let mut actions = zeros_actions(&statics);
    actions.store[[0, 0]] = 3.0;
    let mut cost = vec![0.0];
    step(&mut state, &actions, &[0.0, 0.0], &statics, &mut cost).unwrap();
    assert_eq!(state.store.row(0).to_vec(), vec![0.0, 0.0, 0.0]);
    assert_eq!(state.warehouse[[0, 0]], -2.0);
    assert_eq!(cost, vec![0.0]);
}

/// Serial chain: echelon 0 (LT 2) → echelon 1 (LT 3) → warehouse (LT 2) → store (LT 1).
fn serial_net() -> Net {
    Net {
        n_samples: 1,
        n_stores: 1,
        n_warehouses: 1,
        n_echelons: 2,
        unmet: UnmetDemand::Backlogged,
        objective: Objective::Cost,
        holding: vec![1.0],
        underage: vec![9.0],
        lead: vec![vec![1]],
        warehouse_holding: vec![0.5],
        warehouse_lead: vec![2],
        warehouse_edge: vec![0.0],
        echelon_holding: vec![0.1, 0.2],
        echelon_lead: vec![2, 3],
    }
}

#[test]
fn echelons_ration_their_downstream_orders() {
    let statics = serial_net().statics();
    let mut state = zeros_state(&statics, lengths(2, 2, 3));
    state.echelon[[0, 0]] = 0.0; // echelon 0 has nothing
    state.echelon[[1, 0]] = 3.0; // echelon 1 has 3
    state.warehouse[[0, 0]] = 4.0;
    let mut actions = zeros_actions(&statics);
    actions.echelon[[0, 0]] = 7.0; // from the outside supplier: unlimited
    actions.echelon[[1, 0]] = 2.0; // asks echelon 0 (empty) → receives 0
    actions.warehouse[[0, 0]] = 5.0; // asks echelon 1 (3 on hand) → receives 3
    actions.store[[0, 0]] = 1.0; // asks the warehouse (4 on hand) → receives 1
    let mut cost = vec![0.0];
    step(&mut state, &actions, &[0.0], &statics, &mut cost).unwrap();
    assert_eq!(state.echelon.row(0).to_vec(), vec![0.0, 7.0, 0.0]);
    assert_eq!(state.echelon.row(1).to_vec(), vec![0.0, 0.0, 0.0]);
    assert_eq!(state.warehouse.row(0).to_vec(), vec![3.0, 3.0]);
    assert_eq!(state.store.row(0).to_vec(), vec![1.0, 0.0]);
    // Holding: warehouse 0.5 · 3; echelons hold nothing; store holds 0.
    assert!((cost[0] - 1.5).abs() < 1e-6);
}

#[test]
fn edge_cost_is_charged_per_unit_ordered() {
    let mut net = one_warehouse_two_stores();
    net.warehouse_edge = vec![1.5];
    let statics = net.statics();
    let mut state = zeros_state(&statics, lengths(3, 3, 0));
    let mut actions = zeros_actions(&statics);
    actions.warehouse[[0, 0]] = 4.0;
    let mut cost = vec![0.0];
    step(&mut state, &actions, &[0.0, 0.0], &statics, &mut cost).unwrap();
    assert_eq!(cost, vec![6.0]);
}

/// Two warehouses, one store reachable only from warehouse 1.
fn non_edge_net() -> Net {
    Net {
        n_samples: 2,
        n_stores: 1,
        n_warehouses: 2,
        n_echelons: 0,
        unmet: UnmetDemand::Lost,
        objective: Objective::Cost,
        holding: vec![1.0],
        underage: vec![9.0],
        lead: vec![vec![0, 2]],
        warehouse_holding: vec![0.3, 0.4],
        warehouse_lead: vec![3, 3],
        warehouse_edge: vec![0.5, 1.5],
        echelon_holding: vec![],
        echelon_lead: vec![],
    }
}

#[test]
fn shipment_on_a_non_edge_is_an_error_and_changes_nothing() {
    let statics = non_edge_net().statics();
    let mut state = zeros_state(&statics, lengths(3, 3, 0));
    state.warehouse.fill(5.0);
    let before = state.clone();
    let mut actions = zeros_actions(&statics);
    actions.store[[1, 0]] = 1.0; // sample 1, store 0, warehouse 0: not an edge
    let mut cost = vec![0.0; 2];
    let err = step(&mut state, &actions, &[0.0, 0.0], &statics, &mut cost).unwrap_err();
    assert_eq!(
        err,
        StepError::NonEdgeShipment {
            sample: 1,
            store: 0,
            warehouse: 0,
            quantity: 1.0
        }
    );
    assert!(err.to_string().contains("non-edges must be exactly 0"));
    assert_eq!(state, before);
    // On the edge it is fine.
    actions.store[[1, 0]] = 0.0;
    actions.store[[1, 1]] = 1.0;
    step(&mut state, &actions, &[0.0, 0.0], &statics, &mut cost).unwrap();
    assert_eq!(state.store.row(1).to_vec(), vec![0.0, 1.0, 0.0]);
}

#[test]
fn invalid_actions_and_inputs_are_errors() {
    let statics = one_warehouse_two_stores().statics();
    let state = zeros_state(&statics, lengths(3, 3, 0));
    let mut cost = vec![0.0];
    let run = |actions: &Actions, state: &State, demand: &[f32], statics: &Statics| {
        let mut state = state.clone();
        let mut cost = cost.clone();
        step(&mut state, actions, demand, statics, &mut cost)
    };
    // Negative shipment from a warehouse.
    let mut actions = zeros_actions(&statics);
    actions.store[[0, 0]] = -1.0;
    assert!(matches!(
        run(&actions, &state, &[0.0, 0.0], &statics),
        Err(StepError::NegativeShipment { .. })
    ));
    // NaN.
    actions.store[[0, 0]] = f32::NAN;
    assert!(matches!(
        run(&actions, &state, &[0.0, 0.0], &statics),
        Err(StepError::NonFinite { .. })
    ));
    // Wrong demand length.
    let actions = zeros_actions(&statics);
    assert!(matches!(
        run(&actions, &state, &[0.0], &statics),
        Err(StepError::Shape { what: "demand", .. })
    ));
    // Wrong action shape.
    let wide = Actions {
        store: Array2::zeros((2, 2)),
        ..zeros_actions(&statics)
    };
    assert!(matches!(
        run(&wide, &state, &[0.0, 0.0], &statics),
        Err(StepError::Shape {
            what: "actions.store",
            ..
        })
    ));
    // Lead time longer than the pipeline.
    let short = zeros_state(&statics, lengths(1 + 1, 3, 0));
    let mut long_lead = one_warehouse_two_stores();
    long_lead.lead = vec![vec![1], vec![3]];
    assert!(matches!(
        run(&actions, &short, &[0.0, 0.0], &long_lead.statics()),
        Err(StepError::LeadTime { .. })
    ));
    // Pipeline of length 1.
    let one = zeros_state(&statics, lengths(1, 3, 0));
    let mut unit_lead = one_warehouse_two_stores();
    unit_lead.lead = vec![vec![1], vec![1]];
    assert!(matches!(
        run(&actions, &one, &[0.0, 0.0], &unit_lead.statics()),
        Err(StepError::PipelineTooShort { .. })
    ));
    // Negative orders from the outside supplier are allowed (returns).
    let single = Net::one_store(1, UnmetDemand::Lost, 1).statics();
    let mut s_state = zeros_state(&single, lengths(2, 0, 0));
    s_state.store[[0, 0]] = 5.0;
    let mut s_actions = zeros_actions(&single);
    s_actions.store[[0, 0]] = -2.0;
    step(&mut s_state, &s_actions, &[1.0], &single, &mut cost).unwrap();
    assert_eq!(s_state.store.row(0).to_vec(), vec![2.0, 0.0]);
}

#[test]
fn zero_orders_go_through_the_same_formula() {
    // A zero order is placed like any other: the pipeline still advances and the slot gets +0.
    let statics = Net::one_store(1, UnmetDemand::Backlogged, 2).statics();
    let mut state = zeros_state(&statics, lengths(3, 0, 0));
    state
        .store
        .row_mut(0)
        .assign(&ndarray::arr1(&[4.0, 1.0, 2.0]));
    let actions = zeros_actions(&statics);
    let mut cost = vec![0.0];
    step(&mut state, &actions, &[6.0], &statics, &mut cost).unwrap();
    assert_eq!(state.store.row(0).to_vec(), vec![-1.0, 2.0, 0.0]);
    assert_eq!(cost, vec![18.0]);
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

/// A random network, state, actions and demand (all from `seed`).
struct Random {
    statics: Statics,
    state: State,
    actions: Actions,
    demand: Vec<f32>,
}

fn random_case(seed: u64, b: usize, s: usize, w: usize, e: usize, lost: bool) -> Random {
    let mut rng = Pcg64::seed_from_u64(seed);
    let (ls, lw, le) = (
        rng.random_range(2..=5usize),
        rng.random_range(2..=4usize),
        rng.random_range(2..=4usize),
    );
    let sources = w.max(1);
    let mut lead = vec![vec![0u32; sources]; s];
    for row in &mut lead {
        let forced = rng.random_range(0..sources);
        for (k, lt) in row.iter_mut().enumerate() {
            if w == 0 || k == forced || rng.random::<bool>() {
                *lt = rng.random_range(1..=ls as u32);
            }
        }
    }
    let net = Net {
        n_samples: b,
        n_stores: s,
        n_warehouses: w,
        n_echelons: e,
        unmet: if lost {
            UnmetDemand::Lost
        } else {
            UnmetDemand::Backlogged
        },
        objective: Objective::Cost,
        holding: (0..s).map(|_| rng.random_range(0.0..2.0)).collect(),
        underage: (0..s).map(|_| rng.random_range(0.0..12.0)).collect(),
        lead,
        warehouse_holding: (0..w).map(|_| rng.random_range(0.0..1.0)).collect(),
        warehouse_lead: (0..w).map(|_| rng.random_range(1..=lw as u32)).collect(),
        warehouse_edge: (0..w).map(|_| rng.random_range(0.0..2.0)).collect(),
        echelon_holding: (0..e).map(|_| rng.random_range(0.0..1.0)).collect(),
        echelon_lead: (0..e).map(|_| rng.random_range(1..=le as u32)).collect(),
    };
    let statics = net.statics();
    let mut state = zeros_state(
        &statics,
        lengths(ls, if w > 0 { lw } else { 0 }, if e > 0 { le } else { 0 }),
    );
    let low_on_hand = if lost { 0.0 } else { -10.0 };
    for mut row in state.store.rows_mut() {
        row[0] = rng.random_range(low_on_hand..20.0);
        for x in row.iter_mut().skip(1) {
            *x = rng.random_range(0.0..10.0);
        }
    }
    state
        .warehouse
        .mapv_inplace(|_| rng.random_range(0.0..30.0));
    state.echelon.mapv_inplace(|_| rng.random_range(0.0..30.0));
    let mut actions = zeros_actions(&statics);
    for ((_, mut row), lead_row) in actions
        .store
        .rows_mut()
        .into_iter()
        .enumerate()
        .zip(statics.lead_time.rows())
    {
        for (q, &lt) in row.iter_mut().zip(lead_row) {
            if lt > 0 {
                *q = rng.random_range(0.0..15.0);
            }
        }
    }
    actions
        .warehouse
        .mapv_inplace(|_| rng.random_range(0.0..15.0));
    actions
        .echelon
        .mapv_inplace(|_| rng.random_range(0.0..15.0));
    let demand = (0..b * s).map(|_| rng.random_range(0.0..15.0)).collect();
    Random {
        statics,
        state,
        actions,
        demand,
    }
}

fn network() -> impl Strategy<Value = (u64, usize, usize, usize, usize, bool)> {
    (
        any::<u64>(),
        1..=3usize,
        1..=4usize,
        0..=2usize,
        0..=2usize,
        any::<bool>(),
    )
        .prop_map(|(seed, b, s, w, e, lost)| {
            let e = if w == 0 { 0 } else { e };
            (seed, b, s, w, e, lost)
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 400,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_0027),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Units entering from the outside supplier = change in stock held anywhere + units sold
    /// (lost sales) or demanded (backlog); internal shipments (rationed or not) move units
    /// without creating or destroying any.
    #[test]
    fn units_are_conserved((seed, b, s, w, e, lost) in network()) {
        let Random { statics, mut state, actions, demand } = random_case(seed, b, s, w, e, lost);
        let before = state.total_units_per_sample(&statics);
        let on_hand: Vec<f32> = state.store.column(0).to_vec();
        let mut cost = vec![0.0; b];
        step(&mut state, &actions, &demand, &statics, &mut cost).unwrap();
        let after = state.total_units_per_sample(&statics);
        for bi in 0..b {
            let external: f64 = if w == 0 {
                (0..s).map(|i| f64::from(actions.store[[bi * s + i, 0]])).sum()
            } else if e == 0 {
                (0..w).map(|k| f64::from(actions.warehouse[[bi * w + k, 0]])).sum()
            } else {
                f64::from(actions.echelon[[bi * e, 0]])
            };
            let left_stores: f64 = (0..s)
                .map(|i| {
                    let (on, d) = (on_hand[bi * s + i], demand[bi * s + i]);
                    let sold_or_backlogged = if lost { on.min(d) } else { d };
                    f64::from(sold_or_backlogged)
                })
                .sum();
            let expected = before[bi] + external - left_stores;
            prop_assert!(
                (after[bi] - expected).abs() <= 1e-4 * expected.abs().max(10.0),
                "sample {bi}: after {} expected {}", after[bi], expected
            );
        }
    }

    /// In cost mode every sample's cost is ≥ 0, and upstream stock never goes negative.
    #[test]
    fn costs_are_non_negative_and_upstream_stays_feasible((seed, b, s, w, e, lost) in network()) {
        let Random { statics, mut state, actions, demand } = random_case(seed, b, s, w, e, lost);
        let mut cost = vec![0.0; b];
        step(&mut state, &actions, &demand, &statics, &mut cost).unwrap();
        prop_assert!(cost.iter().all(|&c| c >= 0.0), "{cost:?}");
        for upstream in [&state.warehouse, &state.echelon] {
            for row in upstream.rows() {
                prop_assert!(row.iter().all(|&x| x >= 0.0), "{row:?}");
            }
        }
        if lost {
            prop_assert!(state.store.column(0).iter().all(|&x| x >= 0.0));
        }
    }

    /// An order with lead time ℓ (store, warehouse or echelon) is on hand exactly ℓ periods later.
    #[test]
    fn an_order_arrives_after_its_lead_time(
        length in 2..=6usize,
        lead_fraction in 0.0..1.0f64,
        node in 0..3usize,
        quantity in 0.5..20.0f32,
    ) {
        let lead = 1 + ((length as f64 * lead_fraction) as u32).min(length as u32 - 1);
        let mut net = serial_net();
        net.lead = vec![vec![1]];
        net.warehouse_lead = vec![1];
        net.echelon_lead = vec![1, 1];
        match node {
            0 => net.lead = vec![vec![lead]],
            1 => net.warehouse_lead = vec![lead],
            _ => net.echelon_lead = vec![lead, 1],
        }
        let statics = net.statics();
        let start = zeros_state(&statics, lengths(length, length, length));
        let run = |order: f32| -> Vec<f32> {
            // On-hand of the node after each of `length + 1` periods, zero demand.
            let mut state = start.clone();
            let mut cost = vec![0.0];
            let mut on_hand = Vec::new();
            for t in 0..=length {
                let mut actions = zeros_actions(&statics);
                if t == 0 {
                    match node {
                        0 => actions.store[[0, 0]] = order,
                        1 => actions.warehouse[[0, 0]] = order,
                        _ => actions.echelon[[0, 0]] = order,
                    }
                }
                if node == 0 {
                    // The store's warehouse needs the stock to ship.
                    state.warehouse[[0, 0]] = 100.0;
                } else if node == 1 {
                    state.echelon[[1, 0]] = 100.0;
                }
                step(&mut state, &actions, &[0.0], &statics, &mut cost).unwrap();
                on_hand.push(match node {
                    0 => state.store[[0, 0]],
                    1 => state.warehouse[[0, 0]],
                    _ => state.echelon[[0, 0]],
                });
            }
            on_hand
        };
        let with = run(quantity);
        let without = run(0.0);
        for (k, (a, b)) in with.iter().zip(&without).enumerate() {
            // After k + 1 steps: the order placed at t = 0 is on hand from period ℓ on.
            let expected = if k + 1 >= lead as usize { quantity } else { 0.0 };
            prop_assert!((a - b - expected).abs() < 1e-4, "period {}: {a} vs {b}", k + 1);
        }
    }
}
