//! Hostile input to the trainer's library API: unknown keys in every configuration table, sizes
//! past the limits, checkpoints that are valid JSON but not a valid state.

use hdpo_sim::settings::setting;
use hdpo_train::{TrainConfig, TrainConfigError};

fn defaults(setting_name: &str, policy: &str) -> TrainConfig {
    TrainConfig::default_for(setting(setting_name).unwrap(), policy).unwrap()
}

#[test]
fn unknown_keys_are_rejected_in_every_table_of_a_config_file() {
    let text = defaults("one_store_lost", "vanilla_one_store").to_toml_string();
    TrainConfig::from_toml_str(&text).unwrap();
    for (table, key) in [
        ("[policy]", "hiden = [4]"),
        ("[policy]", "layers = 7"),
        ("[lr_schedule]", "rate = 3"),
        ("[setting.network]", "n_store = 3"),
        ("[setting.splits.train]", "n_sample = 3"),
    ] {
        let bad = text.replacen(table, &format!("{table}\n{key}"), 1);
        assert_ne!(bad, text, "{table} is in the file");
        let err = TrainConfig::from_toml_str(&bad).unwrap_err().to_string();
        let name = key.split(' ').next().unwrap();
        assert!(
            err.contains("unknown field") && err.contains(name),
            "{table} {key}: {err}"
        );
    }
    // the just-in-time oracle's table has no keys but `kind`
    let jit = defaults("one_store_lost", "just_in_time").to_toml_string();
    TrainConfig::from_toml_str(&jit).unwrap();
    let bad = jit.replacen(
        "kind = \"just_in_time\"",
        "kind = \"just_in_time\"\nhidden = [4]",
        1,
    );
    assert!(TrainConfig::from_toml_str(&bad).is_err());
}

#[test]
fn overrides_name_the_field_and_leave_the_config_unchanged_on_error() {
    for policy in [
        "vanilla_one_store",
        "vanilla_serial",
        "vanilla_warehouse",
        "data_driven",
        "gnn",
    ] {
        let mut config = defaults("one_store_lost", "base_stock");
        config.policy = hdpo_policy::PolicySpec::default_for(
            policy,
            &hdpo_policy::NetworkShape::from_setting(&config.setting).unwrap(),
            false,
        )
        .unwrap();
        let before = config.clone();
        let err = config.apply_override("policy.hidden", "[0]").unwrap_err();
        assert!(
            matches!(&err, TrainConfigError::Invalid { field, .. } if field == "policy.hidden"),
            "{policy}: {err}"
        );
        assert!(err.to_string().contains("1 … 65536"), "{err}");
        assert_eq!(config, before, "{policy}");
    }
    let mut config = defaults("one_warehouse_lost", "gnn");
    // an unset optional field can be set, within its range
    config.apply_override("policy.rounds", "2").unwrap();
    let err = config
        .apply_override("policy.rounds", "1000000")
        .unwrap_err();
    assert!(err.to_string().contains("`policy.rounds`"), "{err}");
    let err = config.apply_override("policy.round", "2").unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("unknown key `round`") && message.contains("rounds"),
        "{message}"
    );
    let mut config = defaults("one_store_lost", "vanilla_one_store");
    let before = config.clone();
    assert!(config.apply_override("lead_time", "0").is_err());
    assert!(config.apply_override("learning_rate", "-1").is_err());
    assert_eq!(config, before);
}

/// The measured tape cost of one period predicts the tape of a real rollout (forward values) to
/// within a factor of two, for every supported (setting, policy) pair: the memory estimate of a
/// run rests on it.
#[test]
fn measured_tape_cost_predicts_the_tape_of_a_rollout() {
    use hdpo_autodiff::{ParamStore, Tape};
    use hdpo_policy::{NetworkShape, POLICY_KINDS, Policy};
    use hdpo_sim::config::Split;
    use hdpo_sim::scenario::ScenarioGenerator;
    use hdpo_train::{RolloutPeriods, budget, rollout_on_tape};
    use rand::SeedableRng;
    let mut checked = 0;
    for info in hdpo_sim::settings::list_settings() {
        for (kind, _) in POLICY_KINDS {
            let Ok(config) = TrainConfig::default_for(setting(info.name).unwrap(), kind) else {
                continue;
            };
            let shape = NetworkShape::from_setting(&config.setting).unwrap();
            let mut params = ParamStore::new();
            let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
            let Ok(policy) = Policy::build(config.policy.clone(), &shape, &mut params, &mut rng)
            else {
                continue;
            };
            if !policy.trainable() {
                continue;
            }
            let cost = budget::measure_tape(&config, &policy, &params).unwrap();
            let (b, periods) = (4, 24);
            let scenario = ScenarioGenerator::new(&config.setting, Split::Train)
                .unwrap()
                .generate(0..b, periods);
            let mut tape = Tape::new();
            rollout_on_tape(
                &mut tape,
                &policy,
                &params,
                &scenario,
                RolloutPeriods {
                    periods,
                    ignore: 0,
                    loss_from: 0,
                },
                1.0,
            )
            .unwrap();
            let actual = tape.value_floats() as f64;
            let predicted = (b * periods) as f64 * cost.per_sample_period + cost.constant;
            let ratio = predicted / actual;
            println!(
                "{kind} on {}: predicted {predicted} actual {actual} ratio {ratio:.2} ({cost:?})",
                info.name
            );
            assert!(
                (0.5..=2.0).contains(&ratio),
                "{kind} on {}: predicted {predicted} values, the rollout recorded {actual}",
                info.name
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} pairs checked");
}

/// A small configuration that trains in a fraction of a second per epoch.
fn tiny(setting_name: &str, policy: &str, epochs: usize) -> TrainConfig {
    let mut c = defaults(setting_name, policy);
    for (k, v) in [
        ("setting.splits.train.batch_size", "32"),
        ("setting.splits.train.n_samples", "64"),
        ("setting.splits.train.ignore_periods", "2"),
        ("setting.splits.train.periods", "8"),
        ("setting.splits.dev.batch_size", "32"),
        ("setting.splits.dev.n_samples", "32"),
        ("setting.splits.dev.ignore_periods", "2"),
        ("setting.splits.dev.periods", "8"),
        ("shard_rows", "16"),
        ("eval_shard_size", "32"),
        ("dev_every", "1"),
        ("run_test", "false"),
    ] {
        c.apply_override(k, v).unwrap();
    }
    c.max_epochs = epochs;
    c
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hdpo-hardening-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn checkpoints_are_validated_completely_on_load() {
    use hdpo_train::{Checkpoint, Trainer};
    use serde_json::{Value, json};
    use std::sync::atomic::AtomicBool;
    let dir = temp_dir("checkpoints");
    let path = dir.join("checkpoint.json");
    let mut t = Trainer::new(tiny("one_store_lost", "vanilla_one_store", 4)).unwrap();
    let stop = AtomicBool::new(false);
    t.run(&stop, |t, _| {
        if t.epoch == 2 {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    })
    .unwrap();
    t.checkpoint().save(&path).unwrap();
    let good: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    Trainer::resume(Checkpoint::load(&path).unwrap()).unwrap();

    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "Adam state too large for f32",
            |v| v["adam"]["v"][0]["data"][0] = json!(1e39),
            "second moment",
        ),
        (
            "negative second moment",
            |v| v["adam"]["v"][0]["data"][0] = json!(-1.0),
            "≥ 0",
        ),
        (
            "parameter too large for f32",
            |v| v["params"]["values"][0]["data"][0] = json!(-1e39),
            "parameter",
        ),
        (
            "epoch past max_epochs",
            |v| v["epoch"] = json!(99),
            "max_epochs",
        ),
        (
            "empty history",
            |v| v["history"] = json!([]),
            "history records for 2 epochs",
        ),
        (
            "history out of order",
            |v| v["history"][1]["epoch"] = json!(0),
            "epoch order",
        ),
        (
            "history value too large for f32",
            |v| v["history"][0]["learning_rate"] = json!(1e39),
            "history[0].learning_rate",
        ),
        (
            "best that is no dev epoch",
            |v| v["best"]["epoch"] = json!(7),
            "best",
        ),
        (
            "best that is not the best",
            |v| v["best"]["dev_cost"] = json!(1e9),
            "best",
        ),
        ("missing best", |v| v["best"] = Value::Null, "best-on-dev"),
        (
            "wrong step count",
            |v| v["adam"]["step_count"] = json!(3),
            "step_count",
        ),
        (
            "negative elapsed time",
            |v| v["elapsed_seconds"] = json!(-5.0),
            "elapsed_seconds",
        ),
        ("bad beta", |v| v["adam"]["beta2"] = json!(1.0), "beta2"),
        (
            "unknown field in a history record",
            |v| v["history"][0]["note"] = json!("x"),
            "unknown field",
        ),
    ];
    for (what, edit, expected) in cases {
        let mut value = good.clone();
        edit(&mut value);
        std::fs::write(&path, serde_json::to_string(&value).unwrap()).unwrap();
        let err = Checkpoint::load(&path).expect_err(what);
        assert!(err.contains(expected), "{what}: {err}");
        assert!(err.contains("checkpoint"), "{what}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn diverging_runs_stop_with_an_error_naming_what_left_its_range() {
    use hdpo_train::{TrainError, Trainer};
    use std::sync::atomic::AtomicBool;
    // a base-stock level thrown far past any demand by a huge step
    let mut config = tiny("one_store_lost", "base_stock", 5);
    config.learning_rate = 1e12;
    config.lr_schedule = hdpo_train::LrSchedule::Constant {};
    let mut t = Trainer::new(config).unwrap();
    match t.run(&AtomicBool::new(false), |_, _| {}) {
        Err(e @ TrainError::Diverged { .. }) => {
            let message = e.to_string();
            assert!(message.contains("base_stock.level"), "{message}");
        }
        other => panic!("expected divergence, got {other:?}"),
    }
    // a loss that grows past DIVERGENCE_FACTOR × its start (the start made small by hand: real
    // runs start at their worst)
    let mut config = tiny("one_store_lost", "vanilla_one_store", 5);
    config.apply_override("underage_cost", "100000").unwrap();
    let mut t = Trainer::new(config).unwrap();
    let stop = AtomicBool::new(false);
    t.run(&stop, |_, _| {
        stop.store(true, std::sync::atomic::Ordering::SeqCst)
    })
    .unwrap();
    assert_eq!(t.epoch, 1);
    t.history[0].train_loss = 0.5;
    match t.run(&AtomicBool::new(false), |_, _| {}) {
        Err(e @ TrainError::Diverged { epoch: 1, .. }) => {
            assert!(e.to_string().contains("train loss"), "{e}");
        }
        other => panic!("expected divergence, got {other:?}"),
    }
    // absurd initial values are refused before training
    let mut config = tiny("one_store_lost", "base_stock", 1);
    config
        .apply_override("policy.initial_level", "1e30")
        .unwrap();
    let err = Trainer::new(config).err().expect("refused");
    assert!(err.to_string().contains("initial parameter"), "{err}");
}

#[test]
fn failing_epoch_callbacks_stop_the_run_at_once() {
    use hdpo_train::{TrainError, Trainer};
    use std::sync::atomic::AtomicBool;
    let mut t = Trainer::new(tiny("one_store_lost", "vanilla_one_store", 10)).unwrap();
    let result = t.try_run(&AtomicBool::new(false), |t, _| {
        if t.epoch == 2 {
            Err("disk full".to_string())
        } else {
            Ok(())
        }
    });
    assert!(matches!(result, Err(TrainError::Output(ref m)) if m == "disk full"));
    assert_eq!(t.epoch, 2);
}

#[test]
fn runs_that_cannot_fit_are_refused_with_the_estimate_before_allocating() {
    use hdpo_train::{Limits, TrainError, Trainer};
    let limits = Limits {
        memory_bytes: Some(16e9),
        max_seconds: hdpo_train::budget::MAX_SECONDS,
        force: false,
    };
    // two 60,000-wide hidden layers: 3.6 × 10⁹ parameters, refused from the spec alone
    let mut config = tiny("one_store_lost", "vanilla_one_store", 1);
    config
        .apply_override("policy.hidden", "[60000, 60000]")
        .unwrap();
    let err = Trainer::new_within(config, &limits).err().unwrap();
    assert!(matches!(err, TrainError::TooLarge(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("parameters") && message.contains("16.0 GB available"),
        "{message}"
    );
    // a long horizon: the tapes
    let mut config = tiny("one_store_lost", "vanilla_one_store", 1);
    for (k, v) in [
        ("setting.splits.train.n_samples", "100000"),
        ("setting.splits.train.batch_size", "100000"),
        ("setting.splits.train.periods", "1000000"),
    ] {
        config.apply_override(k, v).unwrap();
    }
    let err = Trainer::new_within(config, &limits).err().unwrap();
    let message = err.to_string();
    assert!(
        message.contains("tapes") || message.contains("train split"),
        "{message}"
    );
    // years of training
    let mut config = tiny("one_store_lost", "vanilla_one_store", 1);
    config.max_epochs = 1_000_000_000_000;
    let err = Trainer::new_within(config.clone(), &limits).err().unwrap();
    assert!(err.to_string().contains("years"), "{err}");
    // … which a time budget bounds, and --force overrides
    Trainer::new_within(config.clone(), &limits.clone().forced(true)).unwrap();
    config.max_seconds = 60.0;
    Trainer::new_within(config, &limits).unwrap();
}

#[test]
fn a_reproduction_whose_record_cannot_be_written_stops_with_an_output_error() {
    use hdpo_train::reproduce::{
        Cell, Experiment, ReproduceError, ReproduceOptions, Scale, run_cells,
    };
    use std::sync::atomic::AtomicBool;
    let dir = temp_dir("reproduce-output");
    let cell = Cell {
        id: "tiny".into(),
        policy: "base_stock".into(),
        ..Experiment::OneStoreLost.cells().remove(0)
    };
    let options = ReproduceOptions {
        scale: Scale::Smoke,
        out: dir.clone(),
        filter: None,
        limit: None,
        part: None,
        overrides: [
            ("max_epochs", "1"),
            ("setting.splits.test.ignore_periods", "4"),
            ("setting.splits.test.periods", "8"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        cache: None,
        command: "test".into(),
        limits: hdpo_train::Limits::machine(),
    };
    // a directory where the cell's record goes: renaming a file over it fails, also as root
    std::fs::create_dir_all(dir.join("custom/cells/tiny.json/blocker")).unwrap();
    let err = run_cells(
        "custom",
        "one cell",
        &[cell],
        &options,
        &AtomicBool::new(false),
        |_| {},
    )
    .unwrap_err();
    match &err {
        ReproduceError::Output(message) => {
            assert!(
                message.contains("tiny.json") && message.contains("retried"),
                "{message}"
            )
        }
        other => panic!("expected an output error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).ok();
}
