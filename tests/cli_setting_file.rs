//! Setting files (`hdpo settings --show`, `--setting-file`): the shipped examples are the
//! command's output and read back as the embedded settings, a hand-written network trains, and bad
//! files get errors that name the option, the file and the field.

use hdpo::cli::{TrainRequest, resolve_config};
use hdpo::setting_file;
use hdpo::sim::settings::setting;
use hdpo::train::Trainer;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/settings")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hdpo-setting-file-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn request(setting: &str, file: Option<&Path>, policy: &str) -> TrainRequest {
    TrainRequest {
        setting: setting.into(),
        setting_file: file.map(Path::to_path_buf),
        policy: policy.into(),
        config: None,
        seed: None,
        out: None,
        resume: None,
        overrides: Vec::new(),
        force: false,
    }
}

#[test]
fn every_example_is_the_show_output_of_its_setting_and_reads_back_as_it() {
    let mut checked = 0;
    for entry in std::fs::read_dir(examples()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        // hand-written files, not the output of `settings --show`
        if name == "my_network"
            || name == "my_network_data"
            || path.extension().is_none_or(|e| e != "toml")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let shown = setting_file::show(&name).unwrap();
        assert_eq!(
            text.trim_end(),
            shown.trim_end(),
            "examples/settings/{name}.toml differs from `hdpo settings --show {name}`: regenerate it"
        );
        let read = setting_file::load("unused", Some(&path)).unwrap();
        assert_eq!(read, setting(&name).unwrap(), "{name}");
        checked += 1;
    }
    // the seven embedded settings and the serial / many-warehouse sizes
    assert!(checked >= 7, "{checked} examples");
}

#[test]
fn a_setting_file_gets_the_same_defaults_as_the_embedded_setting() {
    for (name, policy) in [
        ("one_store_lost", "vanilla_one_store"),
        ("one_warehouse_lost", "gnn"),
        ("serial_system", "echelon_stock"),
        ("transshipment_backlogged", "vanilla_warehouse"),
    ] {
        let file = examples().join(format!("{name}.toml"));
        let from_file = resolve_config(&request("one_store_lost", Some(&file), policy)).unwrap();
        let embedded = resolve_config(&request(name, None, policy)).unwrap();
        assert_eq!(from_file, embedded, "{name} / {policy}");
    }
}

#[test]
fn the_hand_written_network_trains_with_the_default_network_policies() {
    let file = examples().join("my_network.toml");
    for policy in ["gnn", "vanilla_warehouse"] {
        let mut req = request("unused", Some(&file), policy);
        req.overrides = [
            ("setting.splits.train.batch_size", "64"),
            ("setting.splits.train.n_samples", "64"),
            ("setting.splits.dev.batch_size", "64"),
            ("setting.splits.dev.n_samples", "64"),
            ("max_epochs", "2"),
            ("run_test", "false"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = resolve_config(&req).unwrap();
        assert_eq!(config.setting.name, "my_network");
        assert_eq!(config.setting.network.n_warehouses, 2);
        let mut trainer = Trainer::new(config).unwrap();
        trainer.run(&AtomicBool::new(false), |_, _| {}).unwrap();
        let best = trainer.best.as_ref().expect("a dev pass").dev_cost;
        assert!(best.is_finite() && best > 0.0, "{policy}: dev {best}");
    }
}

#[test]
fn the_data_demand_example_trains_and_its_policy_evaluates() {
    let file = examples().join("my_network_data.toml");
    let dir = temp_dir("data");
    let mut req = request("unused", Some(&file), "gnn");
    req.overrides = [("max_epochs", "2"), ("run_test", "false")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = resolve_config(&req).unwrap();
    assert_eq!(config.setting.name, "my_network_data");
    let data_file = config.setting.demand.file.clone().unwrap();
    assert!(data_file.is_absolute() && data_file.ends_with("my_network_sales.csv"));
    let mut trainer = Trainer::new(config).unwrap();
    trainer.run(&AtomicBool::new(false), |_, _| {}).unwrap();
    let best = trainer.best.as_ref().expect("a dev pass").dev_cost;
    assert!(best.is_finite() && best > 0.0, "dev {best}");
    // `hdpo eval policy.json --setting-file …` on the test split
    let policy = dir.join("policy.json");
    hdpo::policy::SavedPolicy::new(&trainer.policy, &trainer.params, &trainer.config.setting)
        .save(&policy)
        .unwrap();
    hdpo::cli::eval(&policy, None, Some(&file), "test", &[], false).unwrap();
    // and with the setting the policy file carries (the data file's path is absolute in it)
    hdpo::cli::eval(&policy, None, None, "dev", &[], false).unwrap();
}

#[test]
fn bad_setting_files_are_reported_with_the_option_the_file_and_the_field() {
    let dir = temp_dir("bad");
    // missing file
    let missing = dir.join("nope.toml");
    let err = setting_file::load("unused", Some(&missing)).unwrap_err();
    assert!(
        err.starts_with("--setting-file") && err.contains("nope.toml"),
        "{err}"
    );
    // a bad value: the dotted field and the allowed values
    let text = std::fs::read_to_string(examples().join("my_network.toml")).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        text.replace("lead_time = [3, 4]", "lead_time = [3, 0]"),
    )
    .unwrap();
    let err = setting_file::load("unused", Some(&bad)).unwrap_err();
    assert!(err.contains("warehouses.lead_time"), "{err}");
    // a training configuration given as a setting file, and the other way round
    let config = resolve_config(&request("one_store_lost", None, "vanilla_one_store")).unwrap();
    let config_file = dir.join("config.toml");
    std::fs::write(&config_file, config.to_toml_string()).unwrap();
    let err = setting_file::load("unused", Some(&config_file)).unwrap_err();
    assert!(err.contains("pass it with --config"), "{err}");
    let mut req = request("one_store_lost", None, "vanilla_one_store");
    req.config = Some(examples().join("my_network.toml"));
    let err = resolve_config(&req).unwrap_err();
    assert!(err.contains("pass it with --setting-file"), "{err}");
}
