//! Which policy runs on which setting (the table in `docs/policies.md`), and every supported pair
//! produces feasible actions: a few periods on the tape through the simulator's step, which rejects
//! non-finite actions, shipments on non-edges and negative requests of upstream stock; shipments
//! never exceed the supplier's on-hand (the simulator rations, and the policies allocate within it).

use hdpo_autodiff::{ParamStore, Tape};
use hdpo_policy::{NetworkShape, POLICY_KINDS, Policy, TapeObservation};
use hdpo_sim::config::Split;
use hdpo_sim::fused::{TapeDynamics, TapeState};
use hdpo_sim::scenario::ScenarioGenerator;
use hdpo_sim::settings::list_settings;
use hdpo_sim::state::Actions;
use hdpo_train::TrainConfig;
use hdpo_train::rollout::past_demand_window;
use ndarray::{Array2, s};
use rand::SeedableRng;

/// The documented support matrix: settings in `list_settings()` order, policies in `POLICY_KINDS`
/// order (vanilla_one_store, base_stock, capped_base_stock, echelon_stock, vanilla_serial,
/// vanilla_warehouse, symmetry_aware, gnn, data_driven, just_in_time).
const SUPPORT: &[(&str, [bool; 10])] = &[
    (
        "one_store_lost",
        [
            true, true, true, false, false, false, false, true, false, true,
        ],
    ),
    (
        "one_store_backlogged",
        [
            true, true, true, false, false, false, false, true, false, true,
        ],
    ),
    (
        "serial_system",
        [
            false, false, false, true, true, false, false, true, false, false,
        ],
    ),
    (
        "one_warehouse_lost",
        [
            false, false, false, false, false, true, true, true, false, false,
        ],
    ),
    (
        "transshipment_backlogged",
        [
            false, false, false, false, false, true, true, true, false, false,
        ],
    ),
    (
        "many_warehouses_lost",
        [
            false, false, false, false, false, true, false, true, false, false,
        ],
    ),
    (
        "identical_stores_lost",
        [
            true, true, true, false, false, false, false, true, false, true,
        ],
    ),
    (
        "favorita_one_store",
        [
            true, true, true, false, false, false, false, true, true, true,
        ],
    ),
    (
        "favorita_one_warehouse",
        [
            false, false, false, false, false, true, true, true, true, false,
        ],
    ),
    (
        "favorita_many_warehouses",
        [
            false, false, false, false, false, true, false, true, true, false,
        ],
    ),
];

#[test]
fn support_matrix_matches_the_documentation_and_actions_are_feasible() {
    let settings = list_settings();
    assert_eq!(
        settings.len(),
        SUPPORT.len(),
        "a setting is missing from the documented table"
    );
    for (info, (name, row)) in settings.iter().zip(SUPPORT) {
        assert_eq!(info.name, *name);
        for ((kind, _), &expected) in POLICY_KINDS.iter().zip(row) {
            let setting = hdpo_sim::settings::setting(name).unwrap();
            let built = TrainConfig::default_for(setting, kind)
                .map_err(|e| e.to_string())
                .and_then(|config| {
                    let shape =
                        NetworkShape::from_setting(&config.setting).map_err(|e| e.to_string())?;
                    let mut params = ParamStore::new();
                    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
                    Policy::build(config.policy.clone(), &shape, &mut params, &mut rng)
                        .map(|p| (p, params, config))
                        .map_err(|e| e.to_string())
                });
            assert_eq!(
                built.is_ok(),
                expected,
                "{kind} on {name}: {:?}",
                built.as_ref().err()
            );
            let Ok((policy, params, config)) = built else {
                continue;
            };
            // a few periods on the tape: the step validates every action
            let sc = ScenarioGenerator::new(&config.setting, Split::Train)
                .unwrap()
                .generate(0..6, 12); // 4 periods stepped + an oracle's look-ahead of up to 6 + 1
            let dynamics = TapeDynamics::new(&sc.statics);
            let mut tape = Tape::new();
            let mut state = TapeState::from_state(&mut tape, &sc.initial);
            let p = policy.shape.past_demands;
            for t in 0..4 {
                // the past demands, when the setting shows them (data demand: the history)
                let past_demands = (p > 0)
                    .then(|| tape.constant(past_demand_window(&sc.demand, &sc.history, t, p)));
                let obs = TapeObservation {
                    statics: &sc.statics,
                    state,
                    period: t,
                    past_demands,
                    future_demand: (!policy.admissible()).then(|| sc.demand.slice(s![.., t..])),
                };
                let actions = policy.act(&mut tape, &params, &obs);
                let store = tape.value(actions.store);
                assert!(
                    store.iter().all(|v| v.is_finite() && *v >= 0.0),
                    "{kind} on {name}: store actions {store}"
                );
                if let Some(wh) = state.warehouse {
                    let orders = actions.store;
                    // shipments from each warehouse ≤ its on-hand (allocation within stock), up to
                    // rounding, for policies that allocate (the simulator rations the others)
                    let on_hand = tape.value(wh).column(0).to_owned();
                    let shipped = tape.value(orders);
                    let (w, n_s) = (sc.statics.n_warehouses, sc.statics.n_stores);
                    for b in 0..sc.statics.n_samples {
                        for wi in 0..w {
                            let total: f32 = (0..n_s).map(|st| shipped[[b * n_s + st, wi]]).sum();
                            assert!(
                                total <= on_hand[b * w + wi] * (1.0 + 1e-4) + 1e-3,
                                "{kind} on {name}: ships {total} > on-hand {}",
                                on_hand[b * w + wi]
                            );
                        }
                    }
                }
                let d = tape.constant_from(sc.demand.slice(s![.., t..t + 1]));
                // the same period in the tape-free simulator, from the same state and actions
                let mut free_state = state.to_state(&tape);
                let free_actions = Actions {
                    store: tape.value(actions.store).clone(),
                    warehouse: actions
                        .warehouse
                        .map_or_else(|| Array2::zeros((0, 1)), |v| tape.value(v).clone()),
                    echelon: actions
                        .echelon
                        .map_or_else(|| Array2::zeros((0, 1)), |v| tape.value(v).clone()),
                };
                let demand: Vec<f32> = sc.demand.column(t).to_vec();
                let mut free_cost = vec![0.0f32; sc.statics.n_samples];
                hdpo_sim::dynamics::step(
                    &mut free_state,
                    &free_actions,
                    &demand,
                    &sc.statics,
                    &mut free_cost,
                )
                .unwrap_or_else(|e| panic!("{kind} on {name}, tape-free: {e}"));
                let (next, cost) = dynamics
                    .step(&mut tape, &state, &actions, d)
                    .unwrap_or_else(|e| panic!("{kind} on {name}: {e}"));
                let total = cost.total(&mut tape);
                let (on_tape, free): (f32, f32) = (tape.scalar(total), free_cost.iter().sum());
                assert!(
                    on_tape.is_finite() && (on_tape - free).abs() <= 1e-4 * free.abs().max(1.0),
                    "{kind} on {name} period {t}: tape cost {on_tape}, tape-free {free}"
                );
                let next_free = next.to_state(&tape);
                for (what, a, b) in [
                    ("store", &next_free.store, &free_state.store),
                    ("warehouse", &next_free.warehouse, &free_state.warehouse),
                    ("echelon", &next_free.echelon, &free_state.echelon),
                ] {
                    if a.is_empty() && b.is_empty() {
                        continue;
                    }
                    let diff = (a - b).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
                    assert!(
                        diff <= 1e-3,
                        "{kind} on {name} period {t}: {what} differs by {diff}"
                    );
                }
                state = next;
            }
        }
    }
}
