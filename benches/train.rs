//! End-to-end HDPO workloads of the trainer issue's speed table: one training epoch (all batches,
//! rollout on the tape, backward, Adam step; no dev pass) and the dev/test passes of the tape-free
//! evaluator. Figures and the FLOP counts are in `docs/performance.md`.
//!
//! Run: `cargo bench --bench train` (≈15 minutes on 2 cores: the GNN epochs and the 32,768 × 5,000
//! test pass take seconds each and criterion takes at least 10 samples). Filter with e.g.
//! `cargo bench --bench train -- one_store`.

use criterion::{Criterion, criterion_group, criterion_main};
use hdpo_sim::config::Split;
use hdpo_sim::settings::setting;
use hdpo_train::{Limits, TrainConfig, Trainer};
use std::hint::black_box;
use std::time::Duration;

/// A trainer for `(setting, policy)` with `overrides`, dev evaluation pushed out of the epochs.
fn trainer(setting_name: &str, policy: &str, overrides: &[(&str, &str)]) -> Trainer {
    let mut config = TrainConfig::default_for(setting(setting_name).unwrap(), policy).unwrap();
    for (k, v) in overrides {
        config.apply_override(k, v).unwrap();
    }
    config.dev_every = 1_000_000;
    config.max_epochs = usize::MAX;
    // an endless run is the point of a benchmark: past the 30-day limit of `hdpo train`
    let forced = Limits {
        force: true,
        ..Limits::machine()
    };
    let mut t = Trainer::new_within(config, &forced).unwrap();
    // epoch 0 is a dev epoch; run it outside the measurement
    t.train_epoch().unwrap();
    t
}

/// One training epoch of the trainer `make` builds. The trainer is built on first use, inside the
/// benchmark closure, so that a filtered-out benchmark costs nothing.
fn epoch(c: &mut Criterion, name: &str, make: impl Fn() -> Trainer) {
    let mut g = c.benchmark_group("epoch");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(1));
    let mut trainer: Option<Trainer> = None;
    g.bench_function(name, |b| {
        let t = trainer.get_or_insert_with(&make);
        b.iter(|| black_box(t.train_epoch().unwrap()))
    });
    g.finish();
}

/// The reference's batch 8192 (4 Adam steps per epoch), as in the speed table.
const ONE_STORE_REFERENCE_BATCH: &[(&str, &str)] = &[
    ("setting.splits.train.batch_size", "8192"),
    ("shard_rows", "1024"),
    ("learning_rate", "3e-3"),
];

fn one_store_trainer() -> Trainer {
    trainer(
        "one_store_lost",
        "vanilla_one_store",
        ONE_STORE_REFERENCE_BATCH,
    )
}

fn one_store(c: &mut Criterion) {
    {
        let mut g = c.benchmark_group("dev_pass");
        g.sample_size(10).measurement_time(Duration::from_secs(10));
        let mut t: Option<Trainer> = None;
        g.bench_function("one_store_lost_mlp_32768x100", |b| {
            let t = t.get_or_insert_with(one_store_trainer);
            b.iter(|| black_box(t.evaluate(Split::Dev, false).unwrap()))
        });
        g.finish();
    }
    epoch(c, "one_store_lost_mlp3x32_b8192", one_store_trainer);
}

fn test_pass(c: &mut Criterion) {
    let mut g = c.benchmark_group("test_pass");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(60))
        .warm_up_time(Duration::from_secs(1));
    let mut t: Option<Trainer> = None;
    g.bench_function("one_store_lost_mlp_32768x5000_rounded", |b| {
        let t = t.get_or_insert_with(one_store_trainer);
        b.iter(|| black_box(t.test().unwrap()))
    });
    g.finish();
}

fn serial(c: &mut Criterion) {
    epoch(c, "serial_system_vanilla_b8192", || {
        trainer("serial_system", "vanilla_serial", &[])
    });
}

fn warehouse(c: &mut Criterion) {
    epoch(c, "one_warehouse_5_vanilla3x512_b1024", || {
        trainer("one_warehouse_lost", "vanilla_warehouse", &[])
    });
    epoch(c, "one_warehouse_5_gnn_b1024", || {
        trainer("one_warehouse_lost", "gnn", &[])
    });
    epoch(c, "many_warehouses_2x10_gnn_b1024", || {
        trainer("many_warehouses_lost", "gnn", &[])
    });
    epoch(c, "one_warehouse_20_symmetry_aware_b1024", || {
        trainer(
            "one_warehouse_lost",
            "symmetry_aware",
            &[("setting.n_stores", "20")],
        )
    });
}

criterion_group!(benches, one_store, serial, warehouse, test_pass);
criterion_main!(benches);
