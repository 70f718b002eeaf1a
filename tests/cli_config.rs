//! How `hdpo train` resolves a configuration: defaults are derived from the setting *after* its
//! `--set setting.…` overrides, and every explicit override still wins over the defaults.

use hdpo::cli::{TrainRequest, resolve_config};
use hdpo::policy::PolicySpec;

fn request(overrides: &[(&str, &str)]) -> TrainRequest {
    TrainRequest {
        setting: "one_store_lost".into(),
        setting_file: None,
        policy: "vanilla_one_store".into(),
        config: None,
        seed: None,
        out: None,
        resume: None,
        overrides: overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        force: false,
    }
}

fn input_scale(overrides: &[(&str, &str)]) -> f32 {
    match resolve_config(&request(overrides)).unwrap().policy {
        PolicySpec::VanillaOneStore { input_scale, .. } => input_scale,
        other => panic!("unexpected policy {other:?}"),
    }
}

#[test]
fn defaults_follow_the_overridden_setting_and_explicit_values_win() {
    // the MLP's inputs are scaled by 1 / mean demand: the default instance has mean 5 …
    assert!((input_scale(&[]) - 0.2).abs() < 1e-7);
    // … and an overridden mean changes the default
    assert!((input_scale(&[("setting.demand.mean", "10")]) - 0.1).abs() < 1e-7);
    // an explicit value wins over the derived default, in either order
    for order in [
        [("setting.demand.mean", "10"), ("policy.input_scale", "0.5")],
        [("policy.input_scale", "0.5"), ("setting.demand.mean", "10")],
    ] {
        assert_eq!(input_scale(&order), 0.5);
    }
    // the one-store defaults lower the train batch to 1,024; an explicit batch size is kept
    let config = resolve_config(&request(&[("setting.splits.train.batch_size", "8192")])).unwrap();
    assert_eq!(config.setting.splits.train.batch_size, 8192);
    // a bad setting override is reported with its key
    let err = resolve_config(&request(&[("setting.demand.mean", "-1")])).unwrap_err();
    assert!(err.contains("setting.demand.mean"), "{err}");
}

#[test]
fn setting_shortcuts_work_without_the_prefix_and_the_description_names_the_overrides() {
    let config = resolve_config(&request(&[("lead_time", "2"), ("underage_cost", "19")])).unwrap();
    let default = resolve_config(&request(&[])).unwrap();
    let prefixed = resolve_config(&request(&[
        ("setting.lead_time", "2"),
        ("setting.underage_cost", "19"),
    ]))
    .unwrap();
    assert_eq!(config.setting, prefixed.setting);
    assert_ne!(
        config.setting.stores.lead_time,
        default.setting.stores.lead_time
    );
    assert_ne!(
        config.setting.stores.underage_cost,
        default.setting.stores.underage_cost
    );
    // the embedded description ("L = 4, p = 9 …") is followed by what was changed
    let d = &config.setting.description;
    assert!(
        d.ends_with("(overridden: lead_time=2, underage_cost=19)"),
        "{d}"
    );
    // overriding a key again replaces its value in the note
    let mut setting = config.setting.clone();
    setting.apply_override("lead_time", "3").unwrap();
    assert!(
        setting
            .description
            .ends_with("(overridden: underage_cost=19, lead_time=3)"),
        "{}",
        setting.description
    );
    // a key that is neither a train field nor a setting shortcut is still rejected
    assert!(resolve_config(&request(&[("lead_times", "2")])).is_err());
}

#[test]
fn setting_overrides_are_validated_together_in_any_order() {
    // lowering n_samples below the setting's batch size is valid only once the batch is lowered
    // too; neither order may pass through the invalid intermediate combination
    let lowered = [
        ("setting.splits.dev.n_samples", "64"),
        ("setting.splits.dev.batch_size", "64"),
        ("setting.splits.train.n_samples", "128"),
        ("setting.splits.train.batch_size", "32"),
    ];
    let mut reversed = lowered;
    reversed.reverse();
    for order in [lowered, reversed] {
        let config = resolve_config(&request(&order)).unwrap();
        let splits = &config.setting.splits;
        assert_eq!((splits.dev.n_samples, splits.dev.batch_size), (64, 64));
        assert_eq!((splits.train.n_samples, splits.train.batch_size), (128, 32));
    }
    // the same with a network policy, whose defaults lower the train batch after the overrides
    let mut req = request(&lowered);
    req.setting = "one_warehouse_lost".into();
    req.policy = "gnn".into();
    let config = resolve_config(&req).unwrap();
    assert_eq!(config.setting.splits.train.batch_size, 32);
    // a combination that stays invalid is still refused, naming a key
    let err = resolve_config(&request(&[("setting.splits.dev.n_samples", "64")])).unwrap_err();
    assert!(err.contains("batch_size"), "{err}");
}
