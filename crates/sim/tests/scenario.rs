//! Scenario generation: determinism, per-sample streams (independent of the number of samples),
//! materialised = streamed, batch gathers, and the distributions and statics it produces.

use hdpo_sim::config::{Setting, Split};
use hdpo_sim::scenario::{Scenario, ScenarioGenerator};
use hdpo_sim::settings::setting;
use ndarray::{Array2, s};

/// A setting with small splits.
fn small(name: &str, n_samples: usize, periods: usize) -> Setting {
    let mut s = setting(name).unwrap();
    for split in ["train", "dev", "test"] {
        s.apply_overrides([
            format!("splits.{split}.n_samples={n_samples}"),
            format!("splits.{split}.batch_size={}", n_samples.min(4)),
            format!("splits.{split}.periods={periods}"),
            format!("splits.{split}.ignore_periods=0"),
        ])
        .unwrap();
    }
    s
}

const NAMES: [&str; 6] = [
    "one_store_lost",
    "one_store_backlogged",
    "serial_system",
    "one_warehouse_lost",
    "transshipment_backlogged",
    "many_warehouses_lost",
];

#[test]
fn same_seed_same_scenario_and_splits_differ() {
    for name in NAMES {
        let s = small(name, 6, 20);
        let a = Scenario::generate(&s, Split::Train).unwrap();
        let b = Scenario::generate(&s, Split::Train).unwrap();
        assert_eq!(a, b, "{name}");
        let dev = Scenario::generate(&s, Split::Dev).unwrap();
        assert_ne!(
            a.demand, dev.demand,
            "{name}: splits must have their own streams"
        );
        assert_ne!(a.initial.store, dev.initial.store, "{name}");
        let mut reseeded = s.clone();
        reseeded.seeds.train += 1;
        let c = Scenario::generate(&reseeded, Split::Train).unwrap();
        assert_ne!(a.demand, c.demand, "{name}: the seed must matter");
        // Shapes.
        let inst = s.instance().unwrap();
        assert_eq!(a.demand.dim(), (6 * inst.n_stores, 20));
        assert_eq!(
            a.initial.store.dim(),
            (6 * inst.n_stores, inst.pipeline.store)
        );
        assert_eq!(
            a.initial.warehouse.dim(),
            (6 * inst.n_warehouses, inst.pipeline.warehouse)
        );
        assert_eq!(
            a.initial.echelon.dim(),
            (6 * inst.n_echelons, inst.pipeline.echelon)
        );
        assert_eq!(
            a.statics.lead_time.dim(),
            (6 * inst.n_stores, inst.n_sources())
        );
    }
}

#[test]
fn sample_streams_do_not_depend_on_the_number_of_samples() {
    for name in NAMES {
        let few = Scenario::generate(&small(name, 3, 15), Split::Test).unwrap();
        let many = Scenario::generate(&small(name, 9, 40), Split::Test).unwrap();
        let rows = few.demand.nrows();
        assert_eq!(few.demand, many.demand.slice(s![..rows, ..15]), "{name}");
        assert_eq!(
            few.initial.store,
            many.initial.store.slice(s![..rows, ..]),
            "{name}"
        );
        assert_eq!(few.statics, many.statics.gather(&[0, 1, 2]), "{name}");
        // Any sub-range generated on its own equals the corresponding rows.
        let generator = ScenarioGenerator::new(&small(name, 9, 40), Split::Test).unwrap();
        let part = generator.generate(4..7, 40);
        assert_eq!(part, many.batch(&[4, 5, 6]).unwrap(), "{name}");
    }
}

#[test]
fn streamed_demand_equals_materialised_demand() {
    for name in NAMES {
        let s = small(name, 5, 50);
        let full = Scenario::generate(&s, Split::Dev).unwrap();
        let generator = ScenarioGenerator::new(&s, Split::Dev).unwrap();
        // The whole split streamed in uneven chunks.
        let mut stream = generator.demand_stream(0..5);
        let mut pieces = Vec::new();
        for chunk in [7, 13, 1, 29] {
            pieces.push(stream.next_chunk(chunk));
        }
        assert_eq!(stream.next_period(), 50);
        let views: Vec<_> = pieces.iter().map(|p| p.view()).collect();
        let streamed = ndarray::concatenate(ndarray::Axis(1), &views).unwrap();
        assert_eq!(streamed, full.demand, "{name}");
        // A sub-range of samples, streamed into a period-major buffer.
        let mut sub = generator.demand_stream(2..4);
        let mut buffer = Array2::<f32>::zeros((50, sub.n_rows()));
        sub.fill_next(buffer.view_mut().reversed_axes());
        let rows = full.statics.n_stores;
        assert_eq!(
            buffer.t(),
            full.demand.slice(s![2 * rows..4 * rows, ..]),
            "{name}"
        );
    }
}

#[test]
fn batches_gather_samples() {
    let s = small("one_warehouse_lost", 8, 10);
    let scenario = Scenario::generate(&s, Split::Train).unwrap();
    let batch = scenario.batch(&[5, 1]).unwrap();
    assert_eq!(batch.n_samples(), 2);
    assert_eq!(
        batch.demand.slice(s![0..5, ..]),
        scenario.demand.slice(s![25..30, ..])
    );
    assert_eq!(
        batch.demand.slice(s![5..10, ..]),
        scenario.demand.slice(s![5..10, ..])
    );
    assert_eq!(
        batch.initial.store.slice(s![0..5, ..]),
        scenario.initial.store.slice(s![25..30, ..])
    );
    assert_eq!(batch.initial.warehouse.nrows(), 2);
    assert_eq!(batch.statics.mean.len(), 10);
    let err = scenario.batch(&[1, 8]).unwrap_err();
    assert_eq!((err.index, err.n_samples), (8, 8));
}

/// A batch's demand is stored period-major (each period's column contiguous, what a rollout
/// copies), with every value of the gathered rows, in blocks and at a block's edge (more than 64
/// rows), from a row-major source and from a batch (a column-major source).
#[test]
fn batch_demand_is_period_major_with_the_gathered_values() {
    let s = small("one_warehouse_lost", 40, 12);
    let scenario = Scenario::generate(&s, Split::Train).unwrap();
    let samples: Vec<usize> = (0..40).rev().chain([3, 3, 17]).collect();
    let batch = scenario.batch(&samples).unwrap();
    let rows: Vec<usize> = samples.iter().flat_map(|&b| b * 5..b * 5 + 5).collect();
    assert_eq!(batch.demand.nrows(), 215);
    assert_eq!(
        batch.demand,
        scenario.demand.select(ndarray::Axis(0), &rows)
    );
    for t in 0..batch.periods() {
        assert!(batch.demand.column(t).as_slice().is_some(), "period {t}");
    }
    let again = batch.batch(&[42, 0, 7]).unwrap();
    let rows_again: Vec<usize> = [42, 0, 7].iter().flat_map(|&b| b * 5..b * 5 + 5).collect();
    assert_eq!(
        again.demand,
        batch.demand.select(ndarray::Axis(0), &rows_again)
    );
    assert!(again.demand.column(11).as_slice().is_some());
}

#[test]
fn statics_follow_the_instance() {
    let s = small("many_warehouses_lost", 3, 5);
    let scenario = Scenario::generate(&s, Split::Test).unwrap();
    let st = &scenario.statics;
    assert_eq!((st.n_stores, st.n_warehouses, st.n_echelons), (10, 2, 0));
    for b in 0..3 {
        assert_eq!(st.lead_time.row(b * 10).to_vec(), vec![0, 2]);
        assert_eq!(st.lead_time.row(b * 10 + 6).to_vec(), vec![6, 0]);
        assert!((st.mean[b * 10] - 3.743).abs() < 1e-6);
        assert!((st.std[b * 10 + 4] - 1.714).abs() < 1e-6);
    }
    assert_eq!(st.warehouse_edge_cost, vec![0.5, 1.5]);
    assert!(st.adjacency[[0, 2]] && !st.adjacency[[0, 0]] && st.adjacency[[1, 0]]);
    // Warehouses start empty; store slots lie in [0, mean_s].
    assert!(scenario.initial.warehouse.iter().all(|&x| x == 0.0));
    for (r, row) in scenario.initial.store.rows().into_iter().enumerate() {
        assert!(row.iter().all(|&x| x >= 0.0 && x <= st.mean[r]));
    }
    // Zero initial inventory rule.
    let mut z = s.clone();
    z.apply_override("initial_inventory.rule", "zero").unwrap();
    let zero = Scenario::generate(&z, Split::Test).unwrap();
    assert!(zero.initial.store.iter().all(|&x| x == 0.0));
}

#[test]
fn per_sample_parameters_vary_by_sample_only() {
    let mut s = small("one_warehouse_lost", 400, 2);
    s.apply_overrides([
        "underage_cost={ sample = \"per_sample\", range = [6.3, 11.7] }",
        "lead_time={ sample = \"per_sample\", range = [1, 4] }",
    ])
    .unwrap();
    let st = ScenarioGenerator::new(&s, Split::Train)
        .unwrap()
        .statics(0..400);
    let mut seen = std::collections::BTreeSet::new();
    for b in 0..400 {
        let p = st.underage_cost[b * 5];
        assert!((6.3..11.7).contains(&p));
        let lt = st.lead_time[[b * 5, 0]];
        seen.insert(lt);
        for i in 0..5 {
            assert_eq!(
                st.underage_cost[b * 5 + i],
                p,
                "same for the stores of a sample"
            );
            assert_eq!(st.lead_time[[b * 5 + i, 0]], lt);
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_ne!(st.underage_cost[0], st.underage_cost[5]);
    // Holding costs still come from the reference, the same for every sample.
    assert_eq!(st.holding_cost[0], st.holding_cost[5]);
}

/// Sample mean and variance, correlation between stores 0 and 1, of a `(N·S, T)` demand array.
fn moments(demand: &Array2<f32>, n_stores: usize, store: usize) -> (f64, f64) {
    let values: Vec<f64> = demand
        .rows()
        .into_iter()
        .skip(store)
        .step_by(n_stores)
        .flat_map(|r| r.iter().map(|&x| f64::from(x)).collect::<Vec<_>>())
        .collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

#[test]
fn demand_distributions() {
    // Poisson(5): 200 × 200 = 40,000 draws → standard error of the mean ≈ 0.011.
    let lost = Scenario::generate(&small("one_store_lost", 200, 200), Split::Train).unwrap();
    let (mean, var) = moments(&lost.demand, 1, 0);
    assert!((mean - 5.0).abs() < 0.06, "Poisson mean {mean}");
    assert!((var - 5.0).abs() < 0.25, "Poisson variance {var}");
    assert!(lost.demand.iter().all(|&x| x >= 0.0 && x.fract() == 0.0));

    // Multivariate normal, not clipped (transshipment): means, stds and ρ = 0.5.
    let t = Scenario::generate(&small("transshipment_backlogged", 200, 200), Split::Train).unwrap();
    let inst = setting("transshipment_backlogged")
        .unwrap()
        .instance()
        .unwrap();
    for store in 0..5 {
        let (m, v) = moments(&t.demand, 5, store);
        let sd = inst.std[store];
        assert!(
            (m - inst.mean[store]).abs() < 5.0 * sd / 200.0,
            "store {store} mean {m}"
        );
        assert!(
            (v.sqrt() - sd).abs() < 0.03 * sd,
            "store {store} std {}",
            v.sqrt()
        );
    }
    let (m0, v0) = moments(&t.demand, 5, 0);
    let (m1, v1) = moments(&t.demand, 5, 1);
    let mut cov = 0.0;
    let mut n = 0.0;
    for b in 0..200 {
        for (x, y) in t.demand.row(b * 5).iter().zip(t.demand.row(b * 5 + 1)) {
            cov += (f64::from(*x) - m0) * (f64::from(*y) - m1);
            n += 1.0;
        }
    }
    let rho = cov / (n - 1.0) / (v0 * v1).sqrt();
    // Standard error of a correlation estimate with 40,000 pairs ≈ (1 − ρ²)/√n ≈ 0.004.
    assert!((rho - 0.5).abs() < 0.02, "correlation {rho}");
    assert!(
        t.demand.iter().any(|&x| x < 0.0),
        "unclipped normal demand can be negative"
    );

    // Clipped normal never goes below 0.
    let c = Scenario::generate(&small("one_warehouse_lost", 50, 50), Split::Train).unwrap();
    assert!(c.demand.iter().all(|&x| x >= 0.0));
}

#[test]
fn upstream_initial_inventory_fills_warehouses_and_echelons_and_keeps_the_store_draws() {
    for name in [
        "serial_system",
        "one_warehouse_lost",
        "many_warehouses_lost",
    ] {
        let empty = small(name, 64, 5);
        let mut stocked = empty.clone();
        stocked
            .apply_overrides(["initial_inventory.upstream=uniform_mean"])
            .unwrap();
        let a = Scenario::generate(&empty, Split::Train).unwrap();
        let b = Scenario::generate(&stocked, Split::Train).unwrap();
        // the reference's empty start is the default; the stores' draws and the demand do not move
        assert!(a.initial.warehouse.iter().all(|&x| x == 0.0), "{name}");
        assert!(a.initial.echelon.iter().all(|&x| x == 0.0), "{name}");
        assert_eq!(a.initial.store, b.initial.store, "{name}");
        assert_eq!(a.demand, b.demand, "{name}");
        // every slot in [0, 1] × the mean demand the location serves, and on average about half
        let inst = stocked.instance().unwrap();
        let (w, e) = (inst.n_warehouses, inst.n_echelons);
        let total: f64 = inst.mean.iter().sum();
        for (rows, count, served) in [
            (&b.initial.warehouse, w, None),
            (&b.initial.echelon, e, Some(total)),
        ] {
            for (r, row) in rows.outer_iter().enumerate() {
                let served = served.unwrap_or_else(|| {
                    let wh = r % count;
                    (0..inst.n_stores)
                        .filter(|&j| inst.adjacency[wh][j])
                        .map(|j| {
                            let sources = (0..w).filter(|&v| inst.adjacency[v][j]).count();
                            inst.mean[j] / sources as f64
                        })
                        .sum()
                });
                for &x in row {
                    assert!(
                        (0.0..=served as f32 * 1.0001).contains(&x),
                        "{name}: {x} outside [0, {served}]"
                    );
                }
                let mean = row.iter().map(|&x| x as f64).sum::<f64>() / row.len() as f64;
                assert!(mean > 0.0, "{name}: row {r} stayed empty");
            }
            if count > 0 {
                let avg = rows.iter().map(|&x| x as f64).sum::<f64>() / rows.len() as f64;
                let expected = match served {
                    Some(t) => t / 2.0,
                    None => total / w as f64 / 2.0,
                };
                assert!(
                    (avg / expected - 1.0).abs() < 0.1,
                    "{name}: average slot {avg}, expected about {expected}"
                );
            }
        }
    }
}
