//! The Favorita settings (`data/favorita_21_stores/`): each loads with the reference's sizes,
//! splits and data; the series, returns and calendar reach the scenarios where the spec puts them;
//! the `n_stores` shortcut and the 2–5 warehouse networks resolve; the data-driven net reads the
//! calendar; and the data-driven net (one store) and the GNN (one warehouse, 3 stores) train at a
//! tiny size, their costs finite and moving.

// store and warehouse indices address several tables at once (file, matrix, adjacency)
#![allow(clippy::needless_range_loop)]

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use hdpo_autodiff::Tape;
use hdpo_policy::TapeObservation;
use hdpo_sim::config::{DataStores, Split};
use hdpo_sim::fused::TapeState;
use hdpo_sim::scenario::{Scenario, ScenarioGenerator};
use hdpo_sim::settings::{favorita_warehouses, repository_root, setting};
use hdpo_train::rollout::past_demand_window;
use hdpo_train::{TrainConfig, Trainer};

/// The shipped weekly sales, `[sample][store][week]`, read straight from the CSV.
fn sales() -> Vec<Vec<Vec<f32>>> {
    let text = std::fs::read_to_string(
        repository_root().join("data/favorita_21_stores/weekly_sales_wide.csv"),
    )
    .unwrap();
    let mut out = vec![vec![Vec::new(); 21]; 288];
    for line in text.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        let (b, s): (usize, usize) = (cells[0].parse().unwrap(), cells[1].parse().unwrap());
        out[b][s] = cells[2..].iter().map(|c| c.parse().unwrap()).collect();
    }
    out
}

/// `days_from_christmas` by period, read straight from the calendar CSV.
fn days_from_christmas() -> Vec<f32> {
    let text = std::fs::read_to_string(
        repository_root().join("data/favorita_21_stores/dates_with_info.csv"),
    )
    .unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "days_from_christmas")
        .unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn each_favorita_setting_has_the_reference_sizes_splits_and_data() {
    for (name, samples, stores, warehouses) in [
        ("favorita_one_store", 6048, 1, 0),
        ("favorita_one_warehouse", 288, 5, 1),
        ("favorita_many_warehouses", 288, 21, 3),
        ("favorita_many_warehouses_2", 288, 21, 2),
        ("favorita_many_warehouses_4", 288, 21, 4),
        ("favorita_many_warehouses_5", 288, 21, 5),
    ] {
        let s = setting(name).unwrap();
        assert_eq!(s.name, name);
        assert_eq!(
            (s.n_stores(), s.n_warehouses()),
            (stores, warehouses),
            "{name}"
        );
        assert_eq!(s.demand.past_periods, 16, "{name}");
        assert_eq!(s.observation.past_demands, 16, "{name}");
        for (split, range, periods) in [
            (Split::Train, [0, 111], 95),
            (Split::Dev, [88, 141], 37),
            (Split::Test, [118, 171], 37),
        ] {
            let sizes = s.split(split);
            assert_eq!(sizes.n_samples, samples, "{name} {split}");
            assert_eq!(sizes.periods_range, Some(range), "{name} {split}");
            assert_eq!(sizes.periods, periods, "{name} {split}");
            assert_eq!(sizes.ignore_periods, 16, "{name} {split}");
        }
        let instance = s.instance().unwrap();
        let data = instance.data.as_ref().unwrap();
        assert_eq!(
            (data.n_samples(), data.n_stores(), data.n_periods()),
            (samples, stores, 171),
            "{name}"
        );
        // the ten returns (negative weekly sales) of the file are read as zero demand
        assert_eq!(data.negatives_zeroed(), 10, "{name}");
        let calendar = instance.calendar.as_ref().unwrap();
        assert_eq!(calendar.columns(), ["days_from_christmas"]);
        // the store pipelines hold 6 weeks (lead times up to 6), starting empty
        assert_eq!(instance.pipeline.store, 6, "{name}");
    }
}

#[test]
fn the_one_store_samples_are_the_files_series_with_returns_zeroed_and_the_calendar_aligned() {
    let s = setting("favorita_one_store").unwrap();
    assert_eq!(s.demand.stores, DataStores::AsSamples);
    let file = sales();
    let days = days_from_christmas();
    for (split, start) in [(Split::Train, 0), (Split::Dev, 88), (Split::Test, 118)] {
        let g = ScenarioGenerator::new(&s, split).unwrap();
        // sample k = product k / 21 at store k mod 21; one with a return in the test weeks
        let samples = [0usize, 1000, 44 * 21 + 14, 6047];
        for &k in &samples {
            let sc = g.generate(k..k + 1, g.periods());
            let series = &file[k / 21][k % 21];
            for j in 0..16 {
                assert_eq!(
                    sc.history[[0, j]],
                    series[start + j].max(0.0),
                    "{split} {k}"
                );
            }
            for t in 0..g.periods() {
                assert_eq!(
                    sc.demand[[0, t]],
                    series[start + 16 + t].max(0.0),
                    "{split} {k} t={t}"
                );
                // the calendar of the current week, raw
                assert_eq!(
                    sc.statics.calendar_at(t).unwrap().to_vec(),
                    vec![days[start + 16 + t]],
                    "{split} t={t}"
                );
            }
        }
    }
    // the return of −1632 units (product 44, store 14, week 154) is zero demand in test week 20
    let test = ScenarioGenerator::new(&s, Split::Test).unwrap();
    let k = 44 * 21 + 14;
    assert_eq!(file[44][14][154], -1632.0);
    assert_eq!(test.generate(k..k + 1, 37).demand[[0, 154 - 134]], 0.0);
    // per-sample margins and lead times: the same for a product in every split, in range
    let train = Scenario::generate(&s, Split::Train).unwrap();
    let dev = ScenarioGenerator::new(&s, Split::Dev)
        .unwrap()
        .statics(0..6048);
    assert_eq!(train.statics.underage_cost, dev.underage_cost);
    assert_eq!(train.statics.lead_time, dev.lead_time);
    assert!(
        train
            .statics
            .underage_cost
            .iter()
            .all(|&p| (6.3..11.7).contains(&p))
    );
    let mut seen = [false; 3];
    for &l in &train.statics.lead_time {
        assert!((4..=6).contains(&l), "lead time {l}");
        seen[l as usize - 4] = true;
    }
    assert_eq!(seen, [true; 3], "lead times 4, 5 and 6 all occur");
    assert!(train.statics.holding_cost.iter().all(|&h| h == 1.0));
}

#[test]
fn the_one_warehouse_setting_takes_the_first_n_stores_through_the_shortcut() {
    let file = sales();
    for n in [3, 5, 10, 15, 21] {
        let mut s = setting("favorita_one_warehouse").unwrap();
        s.apply_override("n_stores", &n.to_string()).unwrap();
        assert_eq!(s.n_stores(), n);
        let sc = ScenarioGenerator::new(&s, Split::Dev)
            .unwrap()
            .generate(7..8, 37);
        for st in 0..n {
            assert_eq!(
                sc.demand[[st, 0]],
                file[7][st][88 + 16].max(0.0),
                "n={n} store {st}"
            );
        }
        // the per-store parameters of the first stores do not depend on n
        let five = setting("favorita_one_warehouse").unwrap();
        let a = Scenario::generate(&five, Split::Dev).unwrap().statics;
        let m = n.min(5);
        assert_eq!(
            sc.statics.underage_cost.as_slice().unwrap()[..m],
            a.underage_cost.as_slice().unwrap()[..m]
        );
    }
    let mut s = setting("favorita_one_warehouse").unwrap();
    let e = s.apply_override("n_stores", "22").unwrap_err().to_string();
    assert!(
        e.contains("network.n_stores") && e.contains("1 … 21"),
        "{e}"
    );
}

#[test]
fn the_many_warehouse_networks_extend_the_reference_topology_by_its_rule() {
    let shipped = |file: &str| -> Vec<Vec<u32>> {
        let text = std::fs::read_to_string(repository_root().join(file)).unwrap();
        text.lines()
            .skip(1)
            .map(|l| l.split(',').skip(1).map(|c| c.parse().unwrap()).collect())
            .collect()
    };
    let adjacency = shipped("data/favorita_21_stores/warehouse_store_adjacency.csv");
    let lead = shipped("data/favorita_21_stores/store_warehouse_lead_times.csv");
    for w in 2..=5 {
        let s = setting(&format!("favorita_many_warehouses_{w}")).unwrap();
        let instance = s.instance().unwrap();
        let hdpo_sim::config::StoreLeadTimes::PerEdge(matrix) = &instance.lead_time else {
            panic!("per-edge lead times");
        };
        let (expected, holding, edge) = favorita_warehouses(w);
        assert_eq!(matrix, &expected);
        for st in 0..21 {
            assert!(
                (0..w).any(|k| instance.adjacency[k][st]),
                "store {st} has a source"
            );
            for k in 0..w {
                // warehouse k = 3m + j is the shipped warehouse j with the stores shifted by 7m
                let (m, j) = (k / 3, k % 3);
                let source = (st + 7 * m) % 21;
                assert_eq!(instance.adjacency[k][st], adjacency[j][source] == 1);
                let want = if adjacency[j][source] == 1 {
                    lead[source][j]
                } else {
                    0
                };
                assert_eq!(matrix[st][k], want, "W={w} store {st} warehouse {k}");
            }
        }
        assert_eq!(instance.warehouse_holding_cost, holding);
        assert_eq!(instance.warehouse_edge_cost, edge);
        assert_eq!(instance.warehouse_lead_time, vec![3; w]);
    }
    // 3 warehouses: the embedded setting is the reference's network
    assert_eq!(
        setting("favorita_many_warehouses_3").unwrap(),
        setting("favorita_many_warehouses").unwrap()
    );
    let e = setting("favorita_many_warehouses_6")
        .unwrap_err()
        .to_string();
    assert!(e.contains("allowed: 2, 3, 4, 5"), "{e}");
}

/// `policy` on `name` at a tiny size: `samples` scenarios in batches of half, `epochs` epochs.
fn tiny(name: &str, policy: &str, samples: usize, extra: &[(&str, &str)]) -> Trainer {
    let n = samples.to_string();
    let half = (samples / 2).to_string();
    let mut overrides: Vec<(String, String)> = [
        ("setting.splits.train.n_samples", n.as_str()),
        ("setting.splits.train.batch_size", half.as_str()),
        ("setting.splits.dev.n_samples", n.as_str()),
        ("setting.splits.dev.batch_size", n.as_str()),
        ("setting.splits.test.n_samples", n.as_str()),
        ("setting.splits.test.batch_size", n.as_str()),
        ("dev_every", "1"),
        ("run_test", "false"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    overrides.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut config =
        TrainConfig::default_with_overrides(setting(name).unwrap(), policy, &overrides).unwrap();
    config.max_epochs = 6;
    let mut t = Trainer::new(config).unwrap();
    t.run(&AtomicBool::new(false), |_, _| {}).unwrap();
    t
}

/// The train and dev costs are finite and training moves them (profit: the cost is a negative
/// profit, so it should fall).
fn assert_trains(t: &Trainer, what: &str) {
    let train: Vec<f64> = t.history.iter().map(|r| r.train_cost).collect();
    let dev: Vec<f64> = t.history.iter().filter_map(|r| r.dev_cost).collect();
    assert_eq!(dev.len(), 6, "{what}: a dev pass every epoch");
    assert!(
        train.iter().chain(&dev).all(|c| c.is_finite()),
        "{what}: train {train:?} dev {dev:?}"
    );
    let best = t.best.as_ref().unwrap().dev_cost;
    assert!(
        best < dev[0] - 1e-3 * dev[0].abs().max(1.0),
        "{what}: training did not improve the dev cost: {dev:?}"
    );
    assert_ne!(train[0], train[5], "{what}: the train cost did not move");
}

#[test]
fn the_data_driven_net_trains_on_one_store_series() {
    let t = tiny("favorita_one_store", "data_driven", 64, &[]);
    // the net reads 6 pipeline slots, 16 past weeks, p, h, the days from Christmas and L
    assert_eq!(t.policy.shape.calendar_features, 1);
    assert_eq!(t.params.num_scalars(), 26 * 64 + 64 + 64 * 64 + 64 + 64 + 1);
    assert_trains(&t, "data_driven, favorita_one_store");
}

#[test]
fn the_gnn_trains_on_one_warehouse_with_three_stores() {
    let t = tiny("favorita_one_warehouse", "gnn", 16, &[("n_stores", "3")]);
    assert_eq!(t.config.setting.n_stores(), 3);
    assert_trains(&t, "gnn, favorita_one_warehouse, 3 stores");
}

#[test]
fn the_data_driven_net_trains_on_many_warehouses_without_negative_shipments() {
    // the network on which the proportional allocation once passed a stock of −6.8e-9
    let t = tiny("favorita_many_warehouses", "data_driven", 16, &[]);
    assert_trains(&t, "data_driven, favorita_many_warehouses");
}

/// The actions (store shipments, then warehouse orders) of `policy` (default configuration,
/// untrained) on `setting` at period `t` of a dev batch from its initial state: with the batch's
/// calendar, with every calendar value shifted by 100 days, and with the batch's calendar again.
fn actions_with_and_without_shifted_calendar(
    s: hdpo_sim::config::Setting,
    policy: &str,
    t: usize,
) -> [Vec<f32>; 3] {
    let config = TrainConfig::default_for(s.clone(), policy).unwrap();
    let trainer = Trainer::new(config).unwrap();
    let sc = Scenario::generate(&trainer.config.setting, Split::Dev)
        .unwrap()
        .batch(&[3, 100, 200])
        .unwrap();
    let act = |statics: &hdpo_sim::state::Statics| {
        let mut tape = Tape::no_grad();
        let state = TapeState::from_state(&mut tape, &sc.initial);
        let past = tape.constant(past_demand_window(&sc.demand, &sc.history, t, 16));
        let obs = TapeObservation {
            statics,
            state,
            period: t,
            past_demands: Some(past),
            future_demand: None,
        };
        let out = trainer.policy.act(&mut tape, &trainer.params, &obs);
        let mut values = tape.value(out.store).iter().copied().collect::<Vec<f32>>();
        if let Some(w) = out.warehouse {
            values.extend(tape.value(w).iter().copied());
        }
        values
    };
    let mut shifted = sc.statics.clone();
    shifted.calendar = Arc::new(shifted.calendar.mapv(|d| d + 100.0));
    [act(&sc.statics), act(&shifted), act(&sc.statics)]
}

#[test]
fn the_data_driven_net_and_the_gnn_read_the_calendar_of_the_current_week() {
    let one_store = setting("favorita_one_store").unwrap();
    let mut three = setting("favorita_one_warehouse").unwrap();
    three.apply_override("n_stores", "3").unwrap();
    // (the warehouse starts empty: the GNN's shipments are 0, its orders are not)
    for (s, policy) in [(one_store, "data_driven"), (three, "gnn")] {
        let [base, shifted, again] = actions_with_and_without_shifted_calendar(s, policy, 8);
        assert!(base.iter().any(|&x| x > 0.0), "{policy}: {base:?}");
        // another value of the days from Christmas at the same period: other orders
        assert_ne!(base, shifted, "{policy}");
        // the same statics, the same orders
        assert_eq!(base, again, "{policy}");
    }
}
