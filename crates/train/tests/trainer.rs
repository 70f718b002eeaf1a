//! The HDPO loop: determinism across thread counts, bit-identical resume, clean failure on
//! non-finite losses, clear configuration errors, and small versions of the quality targets.

use hdpo_sim::config::Split;
use hdpo_sim::settings::setting;
use hdpo_train::{Checkpoint, StopReason, TrainConfig, TrainError, Trainer};
use std::sync::atomic::AtomicBool;

/// A small configuration that trains in well under a second per epoch.
fn tiny(setting_name: &str, policy: &str, epochs: usize) -> TrainConfig {
    let mut c = TrainConfig::default_for(setting(setting_name).unwrap(), policy).unwrap();
    for (k, v) in [
        ("setting.splits.train.batch_size", "64"),
        ("setting.splits.train.n_samples", "256"),
        ("setting.splits.train.ignore_periods", "4"),
        ("setting.splits.train.periods", "12"),
        ("setting.splits.dev.batch_size", "128"),
        ("setting.splits.dev.n_samples", "128"),
        ("setting.splits.dev.ignore_periods", "5"),
        ("setting.splits.dev.periods", "20"),
        ("shard_rows", "16"),
        ("eval_shard_size", "64"),
        ("dev_every", "2"),
        ("run_test", "false"),
    ] {
        c.apply_override(k, v).unwrap();
    }
    c.max_epochs = epochs;
    c
}

fn bits(trainer: &Trainer) -> Vec<u32> {
    trainer
        .params
        .ids()
        .flat_map(|id| {
            trainer
                .params
                .value(id)
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn train_in_pool(config: TrainConfig, threads: usize) -> Trainer {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut t = Trainer::new(config).unwrap();
        t.run(&AtomicBool::new(false), |_, _| {}).unwrap();
        t
    })
}

#[test]
fn same_seed_gives_a_bit_identical_run_on_one_and_two_threads() {
    let config = tiny("one_store_lost", "vanilla_one_store", 4);
    let one = train_in_pool(config.clone(), 1);
    let two = train_in_pool(config, 2);
    let (a, b) = (bits(&one), bits(&two));
    let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert!(
        a.len() == b.len() && differing == 0,
        "{differing} of {} parameters differ",
        a.len()
    );
    assert_eq!(
        one.history,
        two.history
            .iter()
            .map(|r| hdpo_train::EpochRecord {
                elapsed_seconds: 0.0,
                ..r.clone()
            })
            .zip(&one.history)
            .map(|(mut r, o)| {
                r.elapsed_seconds = o.elapsed_seconds;
                r
            })
            .collect::<Vec<_>>()
    );
    // and the run trained: the loss went down
    let first = one.history.first().unwrap().train_loss;
    let last = one.history.last().unwrap().train_loss;
    assert!(last < first, "train loss {first} → {last}");
}

#[test]
fn resume_from_a_checkpoint_ends_bit_identical_to_an_uninterrupted_run() {
    let config = tiny("one_store_lost", "vanilla_one_store", 6);
    let straight = train_in_pool(config.clone(), 2);

    // interrupted after 3 of the 6 epochs (same configuration), checkpoint to disk, reload, resume
    let first = {
        let mut t = Trainer::new(config.clone()).unwrap();
        let stop = AtomicBool::new(false);
        let reason = t
            .run(&stop, |t, _| {
                if t.epoch == 3 {
                    stop.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            })
            .unwrap();
        assert_eq!(reason, StopReason::Interrupted);
        t
    };
    let dir = std::env::temp_dir().join(format!("hdpo-resume-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("checkpoint.json");
    first.checkpoint().save(&path).unwrap();
    let loaded = Checkpoint::load(&path).unwrap();
    assert_eq!(loaded.epoch, 3);
    let mut resumed = Trainer::resume(loaded).unwrap();
    let reason = resumed.run(&AtomicBool::new(false), |_, _| {}).unwrap();
    assert_eq!(reason, StopReason::MaxEpochs);
    assert_eq!(resumed.epoch, 6);
    let (a, b) = (bits(&resumed), bits(&straight));
    let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert!(
        a.len() == b.len() && differing == 0,
        "{differing} of {} parameters differ after resume",
        a.len()
    );
    assert_eq!(
        resumed.adam, straight.adam,
        "optimizer state differs after resume"
    );
    let devs = |t: &Trainer| {
        t.history
            .iter()
            .map(|r| (r.epoch, r.dev_cost, r.train_loss))
            .collect::<Vec<_>>()
    };
    assert_eq!(devs(&resumed), devs(&straight));
    assert_eq!(
        resumed.best.as_ref().map(|b| b.epoch),
        straight.best.as_ref().map(|b| b.epoch)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn interrupt_flag_stops_between_epochs() {
    let config = tiny("one_store_lost", "vanilla_one_store", 50);
    let mut t = Trainer::new(config).unwrap();
    let stop = AtomicBool::new(false);
    let reason = t
        .run(&stop, |t, _| {
            if t.epoch == 2 {
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        })
        .unwrap();
    assert_eq!(reason, StopReason::Interrupted);
    assert_eq!(t.epoch, 2);
}

#[test]
fn corrupt_or_foreign_checkpoints_get_clear_errors() {
    let dir = std::env::temp_dir().join(format!("hdpo-ckpt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("checkpoint.json");
    std::fs::write(&path, "{ not json").unwrap();
    assert!(
        Checkpoint::load(&path)
            .unwrap_err()
            .contains("not valid JSON")
    );
    std::fs::write(&path, r#"{"format": "something-else", "version": 1}"#).unwrap();
    assert!(
        Checkpoint::load(&path)
            .unwrap_err()
            .contains("not an hdpo checkpoint")
    );
    // a valid checkpoint whose parameters do not fit its policy
    let t = Trainer::new(tiny("one_store_lost", "vanilla_one_store", 1)).unwrap();
    let mut c = t.checkpoint();
    c.params = hdpo_autodiff::ParamStore::new();
    c.adam = hdpo_autodiff::Adam::new(&c.params, 1e-3);
    c.save(&path).unwrap();
    let err = Trainer::resume(Checkpoint::load(&path).unwrap())
        .err()
        .expect("mismatch");
    assert!(err.to_string().contains("do not match"), "{err}");
    assert!(
        Checkpoint::load(&dir.join("missing.json"))
            .unwrap_err()
            .contains("cannot read")
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_collapsed_policy_stops_after_two_epochs_of_vanishing_gradient() {
    // every bias far below softplus's and ELU's working range: each unit is saturated, the policy
    // orders nothing and the gradient vanishes (1.5e-37), as in a diverged network run
    let config = tiny("one_store_lost", "vanilla_one_store", 50);
    let mut t = Trainer::new(config).unwrap();
    let biases: Vec<_> = t
        .params
        .ids()
        .filter(|&id| t.params.name(id).contains("bias"))
        .collect();
    assert!(!biases.is_empty());
    for id in biases {
        t.params.value_mut(id).fill(-200.0);
    }
    let reason = t.run(&AtomicBool::new(false), |_, _| {}).unwrap();
    assert_eq!(reason, StopReason::Collapsed);
    assert_eq!(t.epoch, hdpo_train::COLLAPSED_EPOCHS);
    assert!(
        t.history
            .iter()
            .all(|r| r.grad_norm < hdpo_train::COLLAPSED_GRAD_NORM)
    );

    // a healthy run of the same configuration is not stopped
    let mut healthy = Trainer::new(tiny("one_store_lost", "vanilla_one_store", 4)).unwrap();
    let reason = healthy.run(&AtomicBool::new(false), |_, _| {}).unwrap();
    assert_eq!(reason, StopReason::MaxEpochs);
}

#[test]
fn exploding_training_stops_with_an_error_and_keeps_finite_parameters() {
    let mut config = tiny("one_store_backlogged", "vanilla_one_store", 20);
    config.learning_rate = 1e30;
    let mut t = Trainer::new(config).unwrap();
    let result = t.run(&AtomicBool::new(false), |_, _| {});
    match result {
        Err(TrainError::NonFinite { .. })
        | Err(TrainError::Step { .. })
        | Err(TrainError::Diverged { .. }) => {}
        other => panic!("expected a non-finite error, got {other:?}"),
    }
    assert!(
        t.best_params()
            .ids()
            .all(|id| t.best_params().value(id).iter().all(|v| v.is_finite()))
    );
}

#[test]
fn configuration_errors_name_the_problem() {
    let err =
        TrainConfig::default_for(setting("one_store_lost").unwrap(), "no_such_policy").unwrap_err();
    assert!(err.to_string().contains("valid policies"), "{err}");
    let config =
        TrainConfig::default_for(setting("one_warehouse_lost").unwrap(), "vanilla_one_store")
            .unwrap();
    let err = Trainer::new(config).err().expect("unsupported pair");
    assert!(err.to_string().contains("does not support"), "{err}");
    let mut config = tiny("one_store_lost", "vanilla_one_store", 1);
    let err = config.apply_override("learning_rat", "1").unwrap_err();
    assert!(err.to_string().contains("valid keys"), "{err}");
    let err = config.apply_override("learning_rate", "-1").unwrap_err();
    assert!(err.to_string().contains("learning_rate"), "{err}");
    let err = config.apply_override("setting.lead_time", "0").unwrap_err();
    assert!(err.to_string().contains("lead_time"), "{err}");
}

#[test]
fn learned_base_stock_reaches_the_backlog_optimum_on_a_small_instance() {
    // one_store_backlogged: N(5, 1.6), L = 4, p = 9, h = 1 → S* = 29.585, cost 6.279 per period
    let mut config =
        TrainConfig::default_for(setting("one_store_backlogged").unwrap(), "base_stock").unwrap();
    for (k, v) in [
        ("setting.splits.train.batch_size", "512"),
        ("setting.splits.train.n_samples", "2048"),
        ("setting.splits.train.periods", "40"),
        ("setting.splits.train.ignore_periods", "10"),
        ("setting.splits.dev.batch_size", "2048"),
        ("setting.splits.dev.n_samples", "2048"),
        ("setting.splits.dev.periods", "200"),
        ("setting.splits.dev.ignore_periods", "20"),
        ("max_epochs", "60"),
        ("run_test", "false"),
    ] {
        config.apply_override(k, v).unwrap();
    }
    let mut t = Trainer::new(config).unwrap();
    t.run(&AtomicBool::new(false), |_, _| {}).unwrap();
    let raw = t
        .best_params()
        .value(t.best_params().find("base_stock.level").unwrap())[[0, 0]];
    let level = hdpo_autodiff::Unary::Softplus.f(raw);
    assert!((level - 29.585).abs() < 0.5, "learned level {level}");
    let dev = t.evaluate(Split::Dev, true).unwrap().cost_per_store_period;
    assert!(dev < 6.279 * 1.01 && dev > 6.279 * 0.97, "dev cost {dev}");
}

/// Capped base stock (order `min(max(S − IP, 0), cap)`) on plain arrays.
struct CappedBaseStock {
    level: f32,
    cap: f32,
}

impl hdpo_sim::eval::ActionPolicy for CappedBaseStock {
    fn act(
        &self,
        obs: &hdpo_sim::eval::EvalObservation<'_>,
        actions: &mut hdpo_sim::state::Actions,
    ) {
        for (pipeline, mut order) in obs
            .state()
            .store
            .rows()
            .into_iter()
            .zip(actions.store.rows_mut())
        {
            let position: f32 = pipeline.iter().sum();
            order[0] = (self.level - position).max(0.0).min(self.cap);
        }
    }
}

#[test]
fn one_store_mlp_beats_the_best_capped_base_stock_in_seconds() {
    // one_store_lost (Poisson(5), L = 4, p = 9, h = 1): exact optimum 6.8359, best capped base
    // stock (S = 29, cap = 5) 6.9123 — both from the exact Markov-chain computations of
    // `hdpo-optimum` (Zipkin 2008 publishes 6.84 for the optimum). The gap between them is 1.1 %;
    // a net that merely learns "order about the mean" or a base-stock-like rule stays above the
    // capped rule, so beating it by a clear margin needs a correct gradient end to end.
    //
    // Both policies are evaluated on the same dev split (common random numbers): the capped rule's
    // dev cost is checked against its exact 6.9123 (within the split's sampling error), and the
    // MLP must be at least 0.02 below the capped rule on that split.
    //
    // Budget: 20 epochs of 4,096 samples in batches of 128 (640 Adam steps; about 4 s in release
    // on the loaded 2-core development machine). Measured when this test was written: MLP dev
    // 6.8480, capped base stock on the same split 6.8959 (± 0.024) — the MLP 0.048 (0.7 %) below
    // it, more than twice the required 0.02. (The previous version of this test, 160 steps, reached
    // 7.0173 and passed its bound of 1.03 × optimum while losing to the capped rule.)
    let mut config =
        TrainConfig::default_for(setting("one_store_lost").unwrap(), "vanilla_one_store").unwrap();
    for (k, v) in [
        ("setting.splits.train.batch_size", "128"),
        ("setting.splits.train.n_samples", "4096"),
        ("setting.splits.dev.batch_size", "4096"),
        ("setting.splits.dev.n_samples", "4096"),
        ("max_epochs", "20"),
        ("dev_every", "5"),
        ("shard_rows", "256"),
        ("run_test", "false"),
    ] {
        config.apply_override(k, v).unwrap();
    }
    let options = hdpo_sim::eval::EvalOptions::for_setting(&config.setting);
    let capped = hdpo_sim::eval::evaluate(
        &config.setting,
        Split::Dev,
        &CappedBaseStock {
            level: 29.0,
            cap: 5.0,
        },
        &options,
    )
    .unwrap();
    let capped_dev = capped.cost_per_store_period;
    let se = capped
        .cost_std_error
        .expect("a standard error over 4,096 samples");
    let mut t = Trainer::new(config).unwrap();
    t.run(&AtomicBool::new(false), |_, _| {}).unwrap();
    let dev = t.evaluate(Split::Dev, true).unwrap().cost_per_store_period;
    eprintln!(
        "MLP dev {dev:.4}, capped base stock on the same split {capped_dev:.4} (± {:.4}); \
         exact: capped 6.9123, optimum 6.8359",
        se
    );
    assert!(
        (capped_dev - 6.9123).abs() < 4.0 * se + 0.01,
        "the dev split's capped base-stock cost {capped_dev} is far from its exact 6.9123"
    );
    assert!(
        dev < capped_dev - 0.02,
        "MLP dev cost {dev} does not beat the best capped base stock ({capped_dev}) clearly"
    );
    assert!(dev > 6.8359 - 4.0 * se - 0.01, "below the optimum: {dev}");
}

#[test]
fn loss_without_warm_up_is_the_reported_cost_and_is_the_base_stock_default() {
    let base = TrainConfig::default_for(setting("one_store_lost").unwrap(), "base_stock").unwrap();
    assert!(
        base.loss_skips_warm_up,
        "base-stock policies skip the warm-up in the loss"
    );
    let mlp =
        TrainConfig::default_for(setting("one_store_lost").unwrap(), "vanilla_one_store").unwrap();
    assert!(
        !mlp.loss_skips_warm_up,
        "the MLP keeps the reference's loss"
    );
    for skip in [true, false] {
        let mut config = tiny("one_store_lost", "vanilla_one_store", 1);
        config
            .apply_override("loss_skips_warm_up", &skip.to_string())
            .unwrap();
        let mut t = Trainer::new(config).unwrap();
        let record = t.train_epoch().unwrap();
        let relative = (record.train_loss - record.train_cost).abs() / record.train_cost;
        if skip {
            // same periods, same normalisation: equal up to f32 summation
            assert!(relative < 1e-5, "{record:?}");
        } else {
            // the warm-up periods (random initial inventory) cost differently
            assert!(relative > 1e-3, "{record:?}");
        }
    }
}
