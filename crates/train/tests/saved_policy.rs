//! Policy files: a trained policy round-trips through save/load and acts identically; loading
//! rejects foreign, corrupt and mismatched files with clear messages; a policy used on a setting it
//! does not fit says what differs. Also the data-driven policy on settings that show past demands.

use hdpo_policy::SavedPolicy;
use hdpo_sim::config::Split;
use hdpo_sim::settings::setting;
use hdpo_train::{TrainConfig, Trainer, evaluate_policy};
use std::sync::atomic::AtomicBool;

fn small(setting_name: &str, policy: &str, extra: &[(&str, &str)]) -> TrainConfig {
    let mut c = TrainConfig::default_for(setting(setting_name).unwrap(), policy).unwrap();
    for (k, v) in [
        ("setting.splits.train.batch_size", "64"),
        ("setting.splits.train.n_samples", "128"),
        ("setting.splits.train.ignore_periods", "2"),
        ("setting.splits.train.periods", "8"),
        ("setting.splits.dev.batch_size", "64"),
        ("setting.splits.dev.n_samples", "64"),
        ("setting.splits.dev.ignore_periods", "2"),
        ("setting.splits.dev.periods", "10"),
        ("shard_rows", "32"),
        ("eval_shard_size", "32"),
        ("dev_every", "1"),
        ("run_test", "false"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        c.apply_override(k, v).unwrap();
    }
    c.max_epochs = 2;
    c
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hdpo-saved-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn policies_round_trip_and_act_identically() {
    for (s, p) in [
        ("one_store_lost", "vanilla_one_store"),
        ("one_warehouse_lost", "gnn"),
        ("serial_system", "echelon_stock"),
    ] {
        let mut t = Trainer::new(small(s, p, &[])).unwrap();
        t.run(&AtomicBool::new(false), |_, _| {}).unwrap();
        let saved = SavedPolicy::new(&t.policy, t.best_params(), &t.config.setting);
        let dir = temp(p);
        let path = dir.join("policy.json");
        saved.save(&path).unwrap();
        let loaded = SavedPolicy::load(&path).unwrap();
        assert_eq!(loaded, saved, "{p}: the file does not round-trip");
        let policy = loaded.check_setting(&t.config.setting).unwrap();
        let before = evaluate_policy(&t.config, &t.policy, t.best_params(), Split::Dev).unwrap();
        // the trainer's dev pass reads the dev demand it generated once: the same, to the bit
        assert_eq!(t.evaluate(Split::Dev, true).unwrap(), before, "{p}");
        let after = evaluate_policy(&t.config, &policy, &loaded.params, Split::Dev).unwrap();
        assert_eq!(
            before.cost_per_store_period.to_bits(),
            after.cost_per_store_period.to_bits(),
            "{p}: loaded policy acts differently"
        );
        std::fs::remove_dir_all(dir).ok();
    }
}

#[test]
fn loading_rejects_bad_files_and_mismatched_settings() {
    let mut t = Trainer::new(small(
        "one_warehouse_lost",
        "vanilla_warehouse",
        &[("policy.hidden", "[8]")],
    ))
    .unwrap();
    t.run(&AtomicBool::new(false), |_, _| {}).unwrap();
    let saved = SavedPolicy::new(&t.policy, t.best_params(), &t.config.setting);
    let dir = temp("bad");
    let path = dir.join("p.json");

    std::fs::write(&path, "{ truncated").unwrap();
    assert!(
        SavedPolicy::load(&path)
            .unwrap_err()
            .to_string()
            .contains("not valid JSON")
    );
    std::fs::write(&path, r#"{"format": "other"}"#).unwrap();
    assert!(
        SavedPolicy::load(&path)
            .unwrap_err()
            .to_string()
            .contains("not an hdpo policy file")
    );

    // weights that do not fit the architecture
    let mut wrong = saved.clone();
    wrong.params = hdpo_autodiff::ParamStore::new();
    wrong.save(&path).unwrap();
    assert!(
        SavedPolicy::load(&path)
            .unwrap_err()
            .to_string()
            .contains("do not fit")
    );

    // a NaN weight is refused
    let mut nan = saved.clone();
    let id = nan.params.ids().next().unwrap();
    nan.params.value_mut(id)[[0, 0]] = f32::NAN;
    assert!(nan.build().unwrap_err().to_string().contains("NaN"));

    // another network: every difference is named
    let mut other = setting("one_warehouse_lost").unwrap();
    other.apply_override("n_stores", "10").unwrap();
    let err = saved.check_setting(&other).unwrap_err().to_string();
    assert!(
        err.contains("stores: trained for 5, setting has 10"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn data_driven_policy_trains_where_past_demands_are_shown() {
    for s in ["one_store_lost", "one_warehouse_lost"] {
        let config = small(
            s,
            "data_driven",
            &[("setting.observation.past_demands", "4")],
        );
        let mut t = Trainer::new(config).unwrap_or_else(|e| panic!("{s}: {e}"));
        // the untrained net's dev cost, through the evaluator
        let initial = t.evaluate(Split::Dev, false).unwrap().cost_per_store_period;
        t.run(&AtomicBool::new(false), |_, _| {})
            .unwrap_or_else(|e| panic!("{s}: {e}"));
        let dev = t.best.as_ref().unwrap().dev_cost;
        eprintln!("{s}: dev cost {initial:.4} untrained, {dev:.4} trained");
        // the recorded best dev cost is what the evaluator gives for the best parameters
        let again = t.evaluate(Split::Dev, true).unwrap().cost_per_store_period;
        assert!(
            (again - dev).abs() <= 1e-9 * dev.abs().max(1.0),
            "{s}: {again} vs {dev}"
        );
        // and training moved the net downhill
        assert!(
            dev.is_finite() && dev > 0.0 && dev < initial,
            "{s}: dev {dev}, untrained {initial}"
        );
    }
}
