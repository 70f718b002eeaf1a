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
