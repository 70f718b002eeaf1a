//! The tape-free evaluator: base-stock costs against the reference/analytic numbers, thread-count
//! and chunking independence, oracle look-ahead, past demands, rounding and errors.

use std::sync::Mutex;

use hdpo_sim::config::{Setting, Split, StaticFeature};
use hdpo_sim::eval::{
    ActionPolicy, BaseStockPolicy, EvalError, EvalObservation, EvalOptions, EvalReport,
    SplitDemand, evaluate, evaluate_with_demand,
};
use hdpo_sim::settings::setting;
use hdpo_sim::state::Actions;

/// `setting` with the test split resized.
fn with_test_split(name: &str, n_samples: usize, periods: usize, ignore: usize) -> Setting {
    let mut s = setting(name).unwrap();
    s.apply_overrides([
        format!("splits.test.n_samples={n_samples}"),
        format!("splits.test.batch_size={n_samples}"),
        format!("splits.test.periods={periods}"),
        format!("splits.test.ignore_periods={ignore}"),
    ])
    .unwrap();
    s
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// Base stock on one_store_backlogged (N(5, 1.6)⁺, L = 4, p = 9, h = 1). The reference reports
/// 6.2780 / 6.3680 / 6.3180 for S = 29.585 / 29 / 30 on 32,768 × 2,000 reported periods with a
/// standard error ≈ 0.002; the analytic values are 6.2788 / 6.3687 / 6.3190. We use 16,384
/// samples × 1,700 reported periods (≈ 2.4× fewer sample-periods → standard error ≈ 0.003) and a
/// tolerance of 0.012 (4 standard errors). The three levels share the demand (common random
/// numbers), so their differences are far more precise: 29.585 must beat 30 must beat 29.
#[test]
fn base_stock_matches_the_reference_costs() {
    let s = with_test_split("one_store_backlogged", 16384, 2000, 300);
    let options = EvalOptions::for_setting(&s);
    assert!(!options.round_actions);
    let cost = |level: f32| -> EvalReport {
        evaluate(&s, Split::Test, &BaseStockPolicy { level }, &options).unwrap()
    };
    let best = cost(29.585);
    let low = cost(29.0);
    let high = cost(30.0);
    eprintln!(
        "S=29.585: {:.4} (all periods {:.4}); S=29: {:.4}; S=30: {:.4}",
        best.cost_per_store_period,
        best.cost_per_store_period_all,
        low.cost_per_store_period,
        high.cost_per_store_period
    );
    assert!((best.cost_per_store_period - 6.2780).abs() < 0.012);
    assert!((low.cost_per_store_period - 6.3680).abs() < 0.012);
    assert!((high.cost_per_store_period - 6.3180).abs() < 0.012);
    assert!(best.cost_per_store_period < high.cost_per_store_period);
    assert!(high.cost_per_store_period < low.cost_per_store_period);
    // Warm-up from the random initial state is more expensive than the steady state.
    assert!(best.cost_per_store_period_all > best.cost_per_store_period);
    assert_eq!(
        (best.n_samples, best.periods, best.ignore_periods),
        (16384, 2000, 300)
    );
    assert!(
        (best.total_cost_reported / (16384.0 * 1700.0) - best.cost_per_store_period).abs() < 1e-12
    );
}

#[test]
fn result_is_independent_of_thread_count_and_chunking() {
    // Several shards (shard size 100 → 7 shards, the last one partial), multi-store network.
    let s = with_test_split("one_warehouse_lost", 650, 60, 20);
    let policy = ProportionalPolicy { target: 12.0 };
    let options = EvalOptions {
        shard_size: 100,
        ..EvalOptions::for_setting(&s)
    };
    let one = in_pool(1, || evaluate(&s, Split::Test, &policy, &options).unwrap());
    let two = in_pool(2, || evaluate(&s, Split::Test, &policy, &options).unwrap());
    assert_eq!(one, two, "identical, bit for bit, for 1 and 2 threads");
    for chunk_periods in [1, 7, 60, 500] {
        let chunked = EvalOptions {
            chunk_periods,
            ..options
        };
        let r = in_pool(2, || evaluate(&s, Split::Test, &policy, &chunked).unwrap());
        assert_eq!(r, one, "chunk_periods {chunk_periods}");
    }
    // A different shard size only regroups the f64 sums.
    let other = EvalOptions {
        shard_size: 64,
        ..options
    };
    let r = evaluate(&s, Split::Test, &policy, &other).unwrap();
    let rel =
        (r.cost_per_store_period - one.cost_per_store_period).abs() / one.cost_per_store_period;
    assert!(rel < 1e-12, "{rel}");
    assert!(one.cost_per_store_period > 0.0);
}

#[test]
fn demand_generated_once_gives_the_same_results_bit_for_bit() {
    // several shards (the last one partial), a multi-store network, and an oracle reading ahead
    let s = with_test_split("one_warehouse_lost", 650, 60, 20);
    let policy = ProportionalPolicy { target: 12.0 };
    let options = EvalOptions {
        shard_size: 100,
        chunk_periods: 7,
        ..EvalOptions::for_setting(&s)
    };
    let streamed = evaluate(&s, Split::Test, &policy, &options).unwrap();
    let demand = SplitDemand::generate(&s, Split::Test, 100, 0).unwrap();
    assert_eq!(demand.split(), Split::Test);
    assert_eq!(
        SplitDemand::bytes_for(&s, Split::Test, 0).unwrap(),
        650 * 5 * 60 * 4
    );
    for threads in [1, 2] {
        let cached = in_pool(threads, || {
            evaluate_with_demand(&s, Split::Test, &policy, &options, Some(&demand)).unwrap()
        });
        assert_eq!(cached, streamed, "{threads} threads");
    }
    // a cache for other shards, another split or a shorter look-ahead is not used: same results
    let other_shards = SplitDemand::generate(&s, Split::Test, 64, 0).unwrap();
    let other_split = SplitDemand::generate(&s, Split::Dev, 100, 0).unwrap();
    for other in [&other_shards, &other_split] {
        let r = evaluate_with_demand(&s, Split::Test, &policy, &options, Some(other)).unwrap();
        assert_eq!(r, streamed);
    }

    let mut lost = with_test_split("one_store_lost", 300, 40, 4);
    lost.apply_override("initial_inventory.rule", "zero")
        .unwrap();
    let options = EvalOptions {
        shard_size: 128,
        chunk_periods: 3,
        round_actions: true,
    };
    let streamed = evaluate(&lost, Split::Test, &JustInTime, &options).unwrap();
    let short = SplitDemand::generate(&lost, Split::Test, 128, 2).unwrap();
    let enough = SplitDemand::generate(&lost, Split::Test, 128, 4).unwrap();
    for demand in [&short, &enough] {
        let r =
            evaluate_with_demand(&lost, Split::Test, &JustInTime, &options, Some(demand)).unwrap();
        assert_eq!(r, streamed);
    }
    assert_eq!(streamed.cost_per_store_period, 0.0);
    assert!(matches!(
        SplitDemand::generate(&lost, Split::Test, 0, 0),
        Err(EvalError::Options {
            field: "shard_size"
        })
    ));
}

/// One warehouse: the warehouse orders up to a fixed level; each store asks for what brings
/// its inventory position to `target` (rationed by the simulator when the warehouse runs short).
struct ProportionalPolicy {
    target: f32,
}

impl ActionPolicy for ProportionalPolicy {
    fn act(&self, obs: &EvalObservation<'_>, actions: &mut Actions) {
        let state = obs.state();
        for (pipeline, mut ship) in state.store.rows().into_iter().zip(actions.store.rows_mut()) {
            ship[0] = (self.target - pipeline.sum()).max(0.0);
        }
        for (pipeline, mut order) in state
            .warehouse
            .rows()
            .into_iter()
            .zip(actions.warehouse.rows_mut())
        {
            order[0] = (5.0 * self.target - pipeline.sum()).max(0.0);
        }
    }
}

/// Non-admissible: orders exactly the demand that its order will meet (period t + L).
struct JustInTime;

impl ActionPolicy for JustInTime {
    fn act(&self, obs: &EvalObservation<'_>, actions: &mut Actions) {
        let oracle = obs.oracle().expect("declared as an oracle");
        for (r, mut order) in actions.store.rows_mut().into_iter().enumerate() {
            let lead = oracle.statics.lead_time[[r, 0]] as usize;
            order[0] = oracle.future_demand[[r, lead]];
        }
    }

    fn oracle_lookahead(&self) -> Option<usize> {
        Some(4)
    }
}

#[test]
fn oracle_sees_future_demand() {
    // Lost sales, no initial stock: the first L = 4 periods lose demand, afterwards every
    // arrival exactly meets its period's demand — zero cost. Chunks of 3 periods < look-ahead.
    let mut s = with_test_split("one_store_lost", 300, 40, 4);
    s.apply_override("initial_inventory.rule", "zero").unwrap();
    let options = EvalOptions {
        shard_size: 128,
        chunk_periods: 3,
        round_actions: true,
    };
    let r = evaluate(&s, Split::Test, &JustInTime, &options).unwrap();
    assert_eq!(r.cost_per_store_period, 0.0);
    // The first 4 periods lose Poisson(5) demand at p = 9: ≈ 9 · 5 · 4 / 40 per period.
    assert!(
        (r.cost_per_store_period_all - 4.5).abs() < 0.3,
        "{}",
        r.cost_per_store_period_all
    );
    // Admissible policies get no oracle view.
    struct Peek;
    impl ActionPolicy for Peek {
        fn act(&self, obs: &EvalObservation<'_>, _: &mut Actions) {
            assert!(obs.oracle().is_none());
            assert!(obs.past_demands().is_none());
            assert!(obs.mean().is_none());
        }
    }
    evaluate(&s, Split::Test, &Peek, &options).unwrap();
}

/// Checks that `past_demands` holds the demand of the previous periods, which it saw through a
/// one-period oracle window.
struct PastDemandChecker {
    seen: Mutex<Vec<Vec<f32>>>,
}

impl ActionPolicy for PastDemandChecker {
    fn act(&self, obs: &EvalObservation<'_>, _: &mut Actions) {
        let past = obs
            .past_demands()
            .expect("the setting asks for 3 past demands");
        let current = obs.oracle().unwrap().future_demand.column(0).to_vec();
        let mut seen = self.seen.lock().unwrap();
        let t = obs.period();
        assert_eq!(t, seen.len());
        for k in 0..3 {
            // Column 2 is period t − 1, column 0 period t − 3; zeros before period 0.
            let expected: Vec<f32> = if t + k >= 3 {
                seen[t + k - 3].clone()
            } else {
                vec![0.0; current.len()]
            };
            assert_eq!(past.column(k).to_vec(), expected, "period {t}, column {k}");
        }
        assert_eq!(obs.mean().map(|m| m.len()), Some(current.len()));
        assert!(obs.std().is_some() && obs.holding_cost().is_none());
        seen.push(current);
    }

    fn oracle_lookahead(&self) -> Option<usize> {
        Some(0)
    }
}

#[test]
fn past_demands_are_shown_oldest_first() {
    let mut s = with_test_split("one_warehouse_lost", 3, 12, 2);
    s.apply_override("observation.past_demands", "3").unwrap();
    assert_eq!(
        s.observation.static_features,
        vec![StaticFeature::Mean, StaticFeature::Std]
    );
    let checker = PastDemandChecker {
        seen: Mutex::new(Vec::new()),
    };
    let options = EvalOptions {
        chunk_periods: 5,
        ..EvalOptions::for_setting(&s)
    };
    in_pool(1, || evaluate(&s, Split::Test, &checker, &options)).unwrap();
    assert_eq!(checker.seen.lock().unwrap().len(), 12);
}

struct Constant(f32);

impl ActionPolicy for Constant {
    fn act(&self, _: &EvalObservation<'_>, actions: &mut Actions) {
        actions.store.fill(self.0);
    }
}

#[test]
fn actions_are_rounded_half_to_even_when_asked() {
    let s = with_test_split("one_store_lost", 200, 30, 5);
    let options = EvalOptions::for_setting(&s);
    assert!(options.round_actions, "Poisson demand rounds by default");
    let run = |q: f32, round: bool| {
        let o = EvalOptions {
            round_actions: round,
            ..options
        };
        evaluate(&s, Split::Test, &Constant(q), &o).unwrap()
    };
    assert_eq!(run(4.5, true), run(4.0, true));
    assert_eq!(run(5.5, true), run(6.0, true));
    assert_eq!(run(4.7, true), run(5.0, true));
    assert_ne!(run(4.5, false), run(4.0, false));
}

#[test]
fn invalid_actions_and_options_are_errors() {
    // Shipping to every (store, warehouse) pair hits the non-edges of many_warehouses_lost.
    let s = with_test_split("many_warehouses_lost", 10, 5, 1);
    let err = evaluate(
        &s,
        Split::Test,
        &Constant(1.0),
        &EvalOptions::for_setting(&s),
    )
    .unwrap_err();
    assert!(matches!(err, EvalError::Step { period: 0, .. }), "{err}");
    assert!(err.to_string().contains("does not ship"), "{err}");
    let bad = EvalOptions {
        shard_size: 0,
        ..EvalOptions::for_setting(&s)
    };
    assert!(matches!(
        evaluate(&s, Split::Test, &Constant(0.0), &bad),
        Err(EvalError::Options {
            field: "shard_size"
        })
    ));
}

#[test]
fn serial_and_multi_warehouse_settings_run() {
    // Every embedded setting can be evaluated (zero policy: costs come from initial stock and
    // lost/backlogged demand) and gives finite, positive costs.
    for name in [
        "one_store_lost",
        "one_store_backlogged",
        "serial_system",
        "one_warehouse_lost",
        "transshipment_backlogged",
        "many_warehouses_lost",
    ] {
        let s = with_test_split(name, 50, 20, 5);
        let r = evaluate(
            &s,
            Split::Test,
            &Constant(0.0),
            &EvalOptions::for_setting(&s),
        )
        .unwrap();
        assert!(
            r.cost_per_store_period.is_finite() && r.cost_per_store_period > 0.0,
            "{name}"
        );
        assert_eq!(r.n_stores, s.n_stores());
        // the same number from a plain f64 loop over the same scenario, written here without the
        // simulator: with no orders, each store serves its initial pipeline and each warehouse
        // and echelon holds its initial stock as it arrives
        let independent = zero_policy_cost(&s, 50, 20, 5);
        assert!(
            (r.cost_per_store_period - independent).abs() <= 1e-5 * independent.abs().max(1.0),
            "{name}: evaluator {}, independent {independent}",
            r.cost_per_store_period
        );
    }
}

/// Average cost per store and reported period of the zero policy on the test split, computed in
/// f64 directly from the scenario's demand and initial pipelines.
fn zero_policy_cost(s: &Setting, n_samples: usize, periods: usize, ignore: usize) -> f64 {
    use hdpo_sim::config::{Objective, UnmetDemand};
    let sc = hdpo_sim::scenario::ScenarioGenerator::new(s, Split::Test)
        .unwrap()
        .generate(0..n_samples, periods);
    let st = &sc.statics;
    let advance = |row: &mut Vec<f64>, leftover: f64| {
        row.remove(0);
        row.push(0.0);
        row[0] += leftover;
    };
    let mut total = 0.0;
    let mut store: Vec<Vec<f64>> = sc
        .initial
        .store
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&x| f64::from(x)).collect())
        .collect();
    let mut warehouse: Vec<Vec<f64>> = sc
        .initial
        .warehouse
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&x| f64::from(x)).collect())
        .collect();
    let mut echelon: Vec<Vec<f64>> = sc
        .initial
        .echelon
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|&x| f64::from(x)).collect())
        .collect();
    for t in 0..periods {
        let mut period = 0.0;
        for (r, row) in store.iter_mut().enumerate() {
            let (on, d) = (row[0], f64::from(sc.demand[[r, t]]));
            let (h, p) = (
                f64::from(st.holding_cost[r]),
                f64::from(st.underage_cost[r]),
            );
            period += match st.objective {
                Objective::Cost => p * (d - on).max(0.0) + h * (on - d).max(0.0),
                Objective::Profit => -p * on.min(d) + h * (on - d).max(0.0),
            };
            let leftover = match st.unmet_demand {
                UnmetDemand::Lost => (on - d).max(0.0),
                UnmetDemand::Backlogged => on - d,
            };
            advance(row, leftover);
        }
        for (rows, holding) in [
            (&mut warehouse, &st.warehouse_holding_cost),
            (&mut echelon, &st.echelon_holding_cost),
        ] {
            for (r, row) in rows.iter_mut().enumerate() {
                let on = row[0];
                period += f64::from(holding[r % holding.len()]) * on.max(0.0);
                advance(row, on);
            }
        }
        if t >= ignore {
            total += period;
        }
    }
    total / (n_samples * (periods - ignore) * st.n_stores) as f64
}

/// A base-stock policy that records the periods it is asked about.
struct RecordingBaseStock {
    level: f32,
    asked: Mutex<Vec<usize>>,
}

impl ActionPolicy for RecordingBaseStock {
    fn act(&self, obs: &EvalObservation<'_>, actions: &mut Actions) {
        self.asked.lock().unwrap().push(obs.period());
        BaseStockPolicy { level: self.level }.act(obs, actions);
    }
}

/// The last `min ℓ` periods of a stores-only network run with zero actions and do not ask the
/// policy; the costs are those of a plain loop that asks the policy in every period. With a
/// warehouse, every period asks the policy.
#[test]
fn periods_whose_orders_cannot_arrive_skip_the_policy_with_the_same_costs() {
    use hdpo_sim::dynamics::step;
    use hdpo_sim::scenario::Scenario;
    let (n, periods) = (96, 14);
    // one_store_lost: ℓ = 4; per-sample ℓ in {2, 3, 4}: the shortest decides
    for (lead_time, acting) in [
        (None, periods - 4),
        (
            Some("{ sample = \"per_sample\", range = [2, 5] }"),
            periods - 2,
        ),
    ] {
        let mut s = with_test_split("one_store_lost", n, periods, 3);
        if let Some(l) = lead_time {
            s.apply_overrides([format!("stores.lead_time={l}")])
                .unwrap();
        }
        let scenario = Scenario::generate(&s, Split::Test).unwrap();
        let statics = &scenario.statics;
        assert_eq!(statics.periods_with_effective_actions(periods), acting);
        if lead_time.is_some() {
            let shortest = statics.lead_time.iter().min().unwrap();
            let longest = statics.lead_time.iter().max().unwrap();
            assert_eq!((*shortest, *longest), (2, 4), "the lead times drawn");
        }
        let options = EvalOptions {
            shard_size: n,
            ..EvalOptions::for_setting(&s)
        };
        let policy = RecordingBaseStock {
            level: 22.0,
            asked: Mutex::new(Vec::new()),
        };
        let report = evaluate(&s, Split::Test, &policy, &options).unwrap();
        let asked = policy.asked.into_inner().unwrap();
        assert_eq!(asked, (0..acting).collect::<Vec<_>>());

        // the same split, the policy asked in every period
        let mut state = scenario.initial.clone();
        let mut actions = Actions::zeros(n, statics);
        let mut cost = vec![0.0f32; n];
        let (mut all, mut reported) = (0.0f64, 0.0f64);
        let mut tail_orders = 0.0f32;
        for t in 0..periods {
            let obs = EvalObservation::new(&state, statics, &s.observation, t, periods);
            actions.clear();
            BaseStockPolicy { level: 22.0 }.act(&obs, &mut actions);
            actions.round_half_even();
            if t >= acting {
                tail_orders += actions.store.sum();
            }
            let demand = scenario.demand.column(t).to_vec();
            step(&mut state, &actions, &demand, statics, &mut cost).unwrap();
            let period_cost: f64 = cost.iter().map(|&c| f64::from(c)).sum();
            all += period_cost;
            if t >= 3 {
                reported += period_cost;
            }
        }
        assert!(tail_orders > 0.0, "the skipped periods would have ordered");
        assert_eq!(report.total_cost_all, all);
        assert_eq!(report.total_cost_reported, reported);
    }
}

/// With a warehouse (or echelons), every order moves upstream stock at once: no period is skipped.
#[test]
fn with_upstream_nodes_every_period_has_effective_actions() {
    use hdpo_sim::scenario::Scenario;
    for name in [
        "one_warehouse_lost",
        "serial_system",
        "many_warehouses_lost",
    ] {
        let s = with_test_split(name, 8, 10, 2);
        let scenario = Scenario::generate(&s, Split::Test).unwrap();
        assert_eq!(scenario.statics.periods_with_effective_actions(10), 10);
    }
    // a horizon shorter than the lead time: no period matters
    let s = with_test_split("one_store_lost", 8, 3, 0);
    let scenario = Scenario::generate(&s, Split::Test).unwrap();
    assert_eq!(scenario.statics.periods_with_effective_actions(3), 0);
    assert_eq!(scenario.statics.periods_with_effective_actions(5), 1);
}
