//! `hdpo act` in the library: the orders of a saved policy for states a planner writes equal the
//! policy's actions on the same states as the simulator lays them out; a base-stock policy orders
//! up to its level; JSON and CSV read the same states; every malformed state is refused with a
//! message naming the state, the location and what was expected.

use hdpo_policy::SavedPolicy;
use hdpo_sim::config::Split;
use hdpo_sim::eval::{ActionPolicy, EvalObservation};
use hdpo_sim::scenario::ScenarioGenerator;
use hdpo_sim::settings::setting;
use hdpo_sim::state::{Actions, State};
use hdpo_train::act::{
    ActError, ActOptions, LocationState, NetworkState, act, orders_to_csv, states_from_csv,
    states_from_json,
};
use hdpo_train::{PolicyEvaluator, TrainConfig, Trainer};
use ndarray::Array2;

/// An untrained policy (random weights: a slot read from the wrong place changes the orders).
fn saved(setting_name: &str, policy: &str, extra: &[(&str, &str)]) -> SavedPolicy {
    let mut config = TrainConfig::default_for(setting(setting_name).unwrap(), policy).unwrap();
    for (k, v) in extra {
        config.apply_override(k, v).unwrap();
    }
    let t = Trainer::new(config).unwrap();
    SavedPolicy::new(&t.policy, &t.params, &t.config.setting)
}

/// Rows `b·n .. (b + 1)·n` of `pipelines` as planner states.
fn locations(pipelines: &Array2<f32>, b: usize, n: usize) -> Vec<LocationState> {
    (b * n..(b + 1) * n)
        .map(|r| {
            let row = pipelines.row(r);
            LocationState {
                on_hand: f64::from(row[0]),
                arriving: row.iter().skip(1).map(|&q| f64::from(q)).collect(),
            }
        })
        .collect()
}

#[test]
fn orders_equal_the_policys_actions_on_the_simulators_states() {
    for (s, p) in [
        ("one_store_lost", "vanilla_one_store"),
        ("one_warehouse_lost", "gnn"),
        ("one_warehouse_lost", "vanilla_warehouse"),
        ("one_warehouse_lost", "symmetry_aware"),
        ("serial_system", "gnn"),
        ("serial_system", "vanilla_serial"),
        ("transshipment_backlogged", "gnn"),
        ("many_warehouses_lost", "gnn"),
    ] {
        let saved = saved(s, p, &[]);
        let setting = &saved.setting;
        let generator = ScenarioGenerator::new(setting, Split::Test).unwrap();
        // initial states of three test samples, then one simulated period later (non-empty
        // warehouses and pipelines with shipments in flight), as the simulator lays them out
        let n = 3;
        let statics = generator.statics(0..n);
        // these settings' static parameters are the same in every sample (act uses sample 0's)
        let one = generator.statics(0..1);
        let stores = statics.n_stores;
        for b in 0..n {
            let rows = b * stores..(b + 1) * stores;
            assert_eq!(statics.mean.slice(ndarray::s![rows.clone()]), one.mean);
            assert_eq!(
                statics.underage_cost.slice(ndarray::s![rows.clone()]),
                one.underage_cost
            );
            assert_eq!(
                statics.lead_time.slice(ndarray::s![rows, ..]),
                one.lead_time
            );
        }
        let mut state: State = generator.initial_state(0..n);
        // make every slot distinct and non-zero, warehouses included
        for (k, x) in state.store.iter_mut().enumerate() {
            *x += 0.37 * (k % 7) as f32 + 0.5;
        }
        for (k, x) in state.warehouse.iter_mut().enumerate() {
            *x += 3.1 * (k % 5) as f32 + 20.0;
        }
        for (k, x) in state.echelon.iter_mut().enumerate() {
            *x += 2.3 * (k % 4) as f32 + 10.0;
        }
        let policy = saved.check_setting(setting).unwrap();
        let periods = setting.split(Split::Test).periods;
        let obs = EvalObservation::new(&state, &statics, &setting.observation, 0, periods);
        let mut expected = Actions::zeros(n, &statics);
        PolicyEvaluator::new(&policy, &saved.params, state.store.ncols()).act(&obs, &mut expected);

        let states: Vec<NetworkState> = (0..n)
            .map(|b| NetworkState {
                stores: locations(&state.store, b, statics.n_stores),
                warehouses: locations(&state.warehouse, b, statics.n_warehouses),
                echelons: locations(&state.echelon, b, statics.n_echelons),
                ..NetworkState::default()
            })
            .collect();
        let orders = act(&saved, &states, ActOptions::default()).unwrap();
        assert_eq!(orders.len(), n);
        let mut any_positive = false;
        for (b, o) in orders.iter().enumerate() {
            for (i, sources) in o.stores.iter().enumerate() {
                let row = expected.store.row(b * statics.n_stores + i);
                assert_eq!(
                    sources.as_slice(),
                    row.as_slice().unwrap(),
                    "{s}/{p} store {i}"
                );
                any_positive |= sources.iter().any(|&q| q > 0.0);
            }
            for (i, q) in o.warehouses.iter().enumerate() {
                assert_eq!(*q, expected.warehouse[[b * statics.n_warehouses + i, 0]]);
            }
            for (i, q) in o.echelons.iter().enumerate() {
                assert_eq!(*q, expected.echelon[[b * statics.n_echelons + i, 0]]);
            }
        }
        assert!(
            any_positive,
            "{s}/{p}: every order is zero; the check says nothing"
        );
        // each state alone gets the orders it got in the batch (to rounding: the matrix kernels
        // block a batch of one row differently)
        let alone = act(&saved, &states[2..], ActOptions::default()).unwrap();
        let flat = |o: &hdpo_train::act::Orders| -> Vec<f32> {
            let mut v: Vec<f32> = o.stores.concat();
            v.extend(&o.warehouses);
            v.extend(&o.echelons);
            v
        };
        for (x, y) in flat(&alone[0]).into_iter().zip(flat(&orders[2])) {
            assert!(
                (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                "{s}/{p}: alone {x}, in the batch {y}"
            );
        }
    }
}

#[test]
fn a_base_stock_policy_orders_up_to_one_level() {
    let saved = saved("one_store_backlogged", "base_stock", &[]);
    let state = |on_hand: f64, arriving: &[f64]| NetworkState {
        stores: vec![LocationState {
            on_hand,
            arriving: arriving.to_vec(),
        }],
        ..NetworkState::default()
    };
    let states = vec![
        state(0.0, &[]),
        state(-7.5, &[1.0, 2.0, 3.0]),
        state(4.0, &[0.0, 0.0, 2.5]),
        state(500.0, &[]),
    ];
    let orders = act(&saved, &states, ActOptions::default()).unwrap();
    let level = f64::from(orders[0].stores[0][0]);
    assert!(
        level > 0.0,
        "an untrained base-stock level orders something at zero stock"
    );
    for (s, o) in states.iter().zip(&orders) {
        let position = s.stores[0].on_hand + s.stores[0].arriving.iter().sum::<f64>();
        let want = (level - position).max(0.0);
        let got = f64::from(o.stores[0][0]);
        assert!(
            (got - want).abs() < 1e-4,
            "position {position}: {got} vs {want}"
        );
    }
    assert_eq!(orders[3].stores[0][0], 0.0);
}

#[test]
fn json_and_csv_give_the_same_states() {
    let json = r#"[
        {"stores": [{"on_hand": 3, "arriving": [5, 4]}, {"on_hand": 0}], "warehouses": [{"on_hand": 40, "arriving": [10]}]},
        {"stores": [{"on_hand": 1.5}, {"on_hand": 2, "arriving": [0, 1]}], "warehouses": [{"on_hand": 0}]}
    ]"#;
    let csv = "state,location,index,on_hand,arriving_1,arriving_2\n\
               0,store,0,3,5,4\n0,store,1,0,0,0\n0,warehouse,0,40,10,0\n\
               1,store,0,1.5,0,0\n1,store,1,2,0,1\n1,warehouse,0,0,0,0\n";
    let from_json = states_from_json(json).unwrap();
    let from_csv = states_from_csv(csv).unwrap();
    let saved = saved("one_warehouse_lost", "gnn", &[("setting.n_stores", "2")]);
    let a = act(&saved, &from_json, ActOptions::default()).unwrap();
    let b = act(&saved, &from_csv, ActOptions::default()).unwrap();
    assert_eq!(a, b);
    // a single object is one state
    let one = states_from_json(r#"{"stores": [{"on_hand": 3}, {"on_hand": 0}]}"#).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].warehouses.len(), 0);
    // the CSV output has one row per order
    let text = orders_to_csv(&a);
    assert_eq!(text.lines().count(), 1 + 2 * (2 + 1));
    assert!(text.starts_with("state,location,index,source,order\n0,store,0,0,"));
}

fn message(r: Result<Vec<hdpo_train::act::Orders>, ActError>) -> String {
    r.expect_err("the state must be refused").to_string()
}

#[test]
fn malformed_states_are_refused_with_what_was_expected() {
    let lost = saved("one_warehouse_lost", "gnn", &[("setting.n_stores", "2")]);
    let store = |on_hand: f64, arriving: &[f64]| LocationState {
        on_hand,
        arriving: arriving.to_vec(),
    };
    let ok = NetworkState {
        stores: vec![store(1.0, &[]), store(2.0, &[])],
        warehouses: vec![store(10.0, &[])],
        ..NetworkState::default()
    };
    act(&lost, std::slice::from_ref(&ok), ActOptions::default()).unwrap();
    let cases: Vec<(NetworkState, &str)> = vec![
        (
            NetworkState {
                stores: vec![store(1.0, &[])],
                ..ok.clone()
            },
            "`stores` has 1 entries; expected 2",
        ),
        (
            NetworkState {
                warehouses: vec![],
                ..ok.clone()
            },
            "`warehouses` has 0 entries; expected 1",
        ),
        (
            NetworkState {
                stores: vec![store(1.0, &[]), store(-1.0, &[])],
                ..ok.clone()
            },
            "`stores[1]`.on_hand = -1: expected a finite number ≥ 0",
        ),
        (
            NetworkState {
                stores: vec![store(1.0, &[1.0; 40]), store(1.0, &[])],
                ..ok.clone()
            },
            "`stores[0]`.arriving has 40 entries; at most",
        ),
        (
            NetworkState {
                stores: vec![store(1.0, &[1.0, -2.0]), store(1.0, &[])],
                ..ok.clone()
            },
            "`stores[0]`.arriving[1] = -2: expected a finite number ≥ 0",
        ),
        (
            NetworkState {
                warehouses: vec![store(-3.0, &[])],
                ..ok.clone()
            },
            "`warehouses[0]`.on_hand = -3",
        ),
        (
            NetworkState {
                past_demand: vec![vec![1.0], vec![2.0]],
                ..ok.clone()
            },
            "the policy does not observe past demand",
        ),
    ];
    for (state, want) in cases {
        let got = message(act(&lost, &[ok.clone(), state], ActOptions::default()));
        assert!(got.contains("state 1"), "{got}");
        assert!(got.contains(want), "expected `{want}` in: {got}");
    }
    // a backlogged store may be negative
    let backlogged = saved("one_store_backlogged", "base_stock", &[]);
    let negative = NetworkState {
        stores: vec![store(-4.0, &[])],
        ..NetworkState::default()
    };
    act(&backlogged, &[negative], ActOptions::default()).unwrap();
}

#[test]
fn a_policy_that_observes_past_demand_needs_it() {
    let saved = saved(
        "one_store_lost",
        "data_driven",
        &[("setting.observation.past_demands", "3")],
    );
    let base = NetworkState {
        stores: vec![LocationState {
            on_hand: 2.0,
            arriving: vec![5.0],
        }],
        ..NetworkState::default()
    };
    let missing = message(act(
        &saved,
        std::slice::from_ref(&base),
        ActOptions::default(),
    ));
    assert!(missing.contains("`past_demand` needs 1 rows"), "{missing}");
    let short = NetworkState {
        past_demand: vec![vec![4.0, 5.0]],
        ..base.clone()
    };
    let got = message(act(&saved, &[short], ActOptions::default()));
    assert!(
        got.contains("`past_demand[0]` has 2 numbers; expected 3"),
        "{got}"
    );
    // given, it matters: different past demand, different orders (random weights)
    let with = |d: [f64; 3]| NetworkState {
        past_demand: vec![d.to_vec()],
        ..base.clone()
    };
    let orders = act(
        &saved,
        &[with([1.0, 2.0, 3.0]), with([9.0, 12.0, 15.0])],
        ActOptions::default(),
    )
    .unwrap();
    assert_ne!(orders[0], orders[1]);
}

#[test]
fn bad_state_files_name_the_line_and_column() {
    let cases = [
        ("stores\n", "expected `state,location,index,on_hand`"),
        (
            "state,location,index,on_hand,in_1\n0,store,0,1,2\n",
            "expected `state,location,index,on_hand` followed by `arriving_1`",
        ),
        (
            "state,location,index,on_hand\n0,store,0,lots\n",
            "CSV line 2, column `on_hand`: `lots` is not a number",
        ),
        (
            "state,location,index,on_hand\n0,shop,0,1\n",
            "column `location`: `shop`; allowed: store, warehouse, echelon",
        ),
        (
            "state,location,index,on_hand\n1,store,0,1\n",
            "state 1 comes before state 0",
        ),
        (
            "state,location,index,on_hand\n0,store,1,1\n",
            "store 1 of state 0 comes after 0 of them",
        ),
        (
            "state,location,index,on_hand\n",
            "the CSV has no state rows",
        ),
    ];
    for (text, want) in cases {
        let got = states_from_csv(text).expect_err(text).to_string();
        assert!(got.contains(want), "expected `{want}` in: {got}");
    }
    let got = states_from_json(r#"{"stores": [{"on_hand": 1, "arrivng": [2]}]}"#)
        .expect_err("unknown field")
        .to_string();
    assert!(got.contains("arrivng"), "{got}");
    let got = states_from_json("[1, 2").expect_err("bad json").to_string();
    assert!(got.contains("not valid JSON"), "{got}");
}

#[test]
fn an_oracle_cannot_act_on_a_state() {
    let oracle = saved("one_store_lost", "just_in_time", &[]);
    let state = NetworkState {
        stores: vec![LocationState {
            on_hand: 1.0,
            arriving: vec![],
        }],
        ..NetworkState::default()
    };
    let got = message(act(&oracle, &[state], ActOptions::default()));
    assert!(got.contains("non-admissible oracle"), "{got}");
}
