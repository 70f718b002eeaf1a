//! Memoised evaluation (`hdpo_train::memo`) gives exactly the costs of the plain evaluator — the
//! same bits — on every policy family it applies to, on 1 and 2 threads, and it does find recurring
//! states in a rounded one-store test rollout.

use hdpo_sim::config::Split;
use hdpo_sim::eval::{EvalOptions, EvalReport, evaluate};
use hdpo_sim::settings::setting;
use hdpo_train::{PolicyEvaluator, TrainConfig, Trainer};

/// A briefly trained policy (so its actions are not the initial ones) with a small test split.
fn trained(setting_name: &str, policy: &str, overrides: &[(&str, &str)]) -> Trainer {
    let mut c = TrainConfig::default_for(setting(setting_name).unwrap(), policy).unwrap();
    for (k, v) in [
        ("setting.splits.train.batch_size", "64"),
        ("setting.splits.train.n_samples", "128"),
        ("setting.splits.train.ignore_periods", "4"),
        ("setting.splits.train.periods", "16"),
        ("setting.splits.dev.batch_size", "64"),
        ("setting.splits.dev.n_samples", "64"),
        ("setting.splits.dev.ignore_periods", "2"),
        ("setting.splits.dev.periods", "10"),
        ("setting.splits.test.batch_size", "150"),
        ("setting.splits.test.n_samples", "150"),
        ("setting.splits.test.ignore_periods", "100"),
        ("setting.splits.test.periods", "400"),
        ("shard_rows", "32"),
        ("eval_shard_size", "64"),
        ("run_test", "false"),
    ]
    .iter()
    .chain(overrides)
    {
        c.apply_override(k, v).unwrap();
    }
    c.max_epochs = 2;
    let mut t = Trainer::new(c).unwrap();
    t.run(&std::sync::atomic::AtomicBool::new(false), |_, _| {})
        .unwrap();
    t
}

/// The test split evaluated with rounded actions, with or without the memo.
fn evaluate_test(t: &Trainer, memo: bool, threads: usize) -> (EvalReport, (u64, u64)) {
    let setting = &t.config.setting;
    let mut options = EvalOptions::for_setting(setting);
    options.shard_size = 64;
    options.round_actions = true;
    let max_lead_time = setting.instance().unwrap().pipeline.store;
    let evaluator = PolicyEvaluator::new(&t.policy, &t.params, max_lead_time).with_memo(memo);
    assert_eq!(evaluator.memoised(), memo);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let report = evaluate(setting, Split::Test, &evaluator, &options).unwrap();
        // statistics of one worker thread's table (each thread keeps its own)
        let stats = pool.broadcast(|_| evaluator.memo_stats());
        let total = stats.iter().fold((0, 0), |(h, l), (a, b)| (h + a, l + b));
        (report, total)
    })
}

fn assert_same_costs(setting_name: &str, policy: &str, overrides: &[(&str, &str)]) -> (u64, u64) {
    let t = trained(setting_name, policy, overrides);
    let (plain, _) = evaluate_test(&t, false, 1);
    let mut stats = (0, 0);
    for threads in [1, 2] {
        let (memo, s) = evaluate_test(&t, true, threads);
        assert_eq!(
            memo.total_cost_all.to_bits(),
            plain.total_cost_all.to_bits(),
            "{policy} on {setting_name}, {threads} threads: {} vs {}",
            memo.total_cost_all,
            plain.total_cost_all
        );
        assert_eq!(
            memo.cost_per_store_period.to_bits(),
            plain.cost_per_store_period.to_bits()
        );
        assert!(s.1 > 0, "{policy} on {setting_name}: the memo was not used");
        stats = s;
    }
    stats
}

#[test]
fn memo_gives_identical_costs_and_finds_recurring_states() {
    let (hits, lookups) = assert_same_costs("one_store_lost", "vanilla_one_store", &[]);
    // 150 samples × 400 periods, less the last 4 (ℓ = 4: their orders cannot arrive, the policy
    // is not asked): after the transient most integer states recur
    assert_eq!(lookups, 150 * (400 - 4));
    assert!(
        hits as f64 > 0.5 * lookups as f64,
        "only {hits} of {lookups} lookups hit"
    );
    assert_same_costs("one_store_backlogged", "base_stock", &[]);
    assert_same_costs("one_store_lost", "capped_base_stock", &[]);
    assert_same_costs("serial_system", "vanilla_serial", &[]);
    assert_same_costs("serial_system", "echelon_stock", &[]);
    assert_same_costs(
        "one_warehouse_lost",
        "vanilla_warehouse",
        &[("setting.n_stores", "3")],
    );
    assert_same_costs(
        "one_warehouse_lost",
        "symmetry_aware",
        &[("setting.n_stores", "3")],
    );
    assert_same_costs("one_warehouse_lost", "gnn", &[("setting.n_stores", "3")]);
}

#[test]
fn memo_is_off_for_policies_that_read_demand_history_or_the_future() {
    let t = trained("one_store_lost", "just_in_time", &[]);
    let e = PolicyEvaluator::new(&t.policy, &t.params, 4).with_memo(true);
    assert!(!e.memoised());
    assert!(!PolicyEvaluator::memo_applies(&t.policy));
}
