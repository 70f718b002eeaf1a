//! Random configurations never panic: random TOML text, valid configurations with random keys
//! set to random values (or removed), and random `--set` pairs go through the parsers, the
//! validation, the size estimates and — when they are small enough — the policy build and the tape
//! measurement. Each input ends in a value or an error, never a panic.

use hdpo_autodiff::ParamStore;
use hdpo_policy::{NetworkShape, POLICY_KINDS, Policy};
use hdpo_sim::config::Setting;
use hdpo_sim::settings::{list_settings, setting};
use hdpo_train::{TrainConfig, budget};
use proptest::prelude::*;
use rand::SeedableRng;

/// Keys a user would type (and a few they should not), at every level of a configuration.
const KEYS: &[&str] = &[
    "seed",
    "learning_rate",
    "max_epochs",
    "dev_every",
    "patience_epochs",
    "max_seconds",
    "shard_rows",
    "eval_shard_size",
    "grad_clip",
    "run_test",
    "loss_skips_warm_up",
    "lr_schedule",
    "lr_schedule.kind",
    "lr_schedule.final_fraction",
    "lr_schedule.every_epochs",
    "lr_schedule.factor",
    "policy",
    "policy.kind",
    "policy.hidden",
    "policy.hiden",
    "policy.activation",
    "policy.input_scale",
    "policy.width",
    "policy.rounds",
    "policy.output_bias",
    "policy.context_size",
    "policy.context_hidden",
    "policy.store_hidden",
    "policy.warehouse_hidden",
    "policy.initial_level",
    "policy.initial_cap",
    "policy.initial_increments",
    "policy.transshipment",
    "setting.n_stores",
    "n_stores",
    "lead_time",
    "underage_cost",
    "holding_cost",
    "correlation",
    "setting.network.n_warehouses",
    "setting.network.adjacency",
    "setting.stores.lead_time",
    "setting.stores.pipeline_length",
    "setting.demand.distribution",
    "setting.demand.mean",
    "setting.demand.std",
    "setting.demand.coef_of_var",
    "setting.demand.clip",
    "setting.warehouses",
    "setting.warehouses.lead_time",
    "setting.warehouses.holding_cost",
    "setting.echelons.lead_time",
    "setting.echelons.holding_cost",
    "setting.initial_inventory.range_mult",
    "setting.initial_inventory.inventory_periods",
    "setting.initial_inventory.rule",
    "setting.splits.train.n_samples",
    "setting.splits.train.batch_size",
    "setting.splits.train.periods",
    "setting.splits.train.ignore_periods",
    "setting.splits.dev.n_samples",
    "setting.splits.test.periods",
    "setting.observation.past_demands",
    "setting.observation.static_features",
    "setting.unmet_demand",
    "setting.objective",
    "setting.upper_bound_mult",
    "setting.seeds.train",
    "nonsense",
    "setting.nonsense.deeper",
    "policy.hidden.0",
    "",
    ".",
    "a..b",
];

/// TOML value texts: every type, edge numbers, and some that are not TOML at all.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(-1),
            Just(2),
            Just(1_000_000),
            Just(1_000_000_000_000),
            Just(i64::MAX),
            Just(i64::MIN),
        ]
        .prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        prop_oneof![
            Just("0.0"),
            Just("-0.5"),
            Just("1e39"),
            Just("1e-45"),
            Just("inf"),
            Just("-inf"),
            Just("nan"),
            Just("3e-3")
        ]
        .prop_map(str::to_string),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        prop_oneof![
            Just("true"),
            Just("\"lost\""),
            Just("\"reference\""),
            Just("\"elu\""),
            Just("\"cosine\""),
            Just("\"gnn\""),
            Just("lost"),
            Just("\"\""),
            Just("[]"),
            Just("[0]"),
            Just("[4, 4]"),
            Just("[100000, 100000]"),
            Just("[[0, 2], [6, 1]]"),
            Just("[1, \"x\"]"),
            Just("{ sample = \"per_store\", range = [1, 3] }"),
            Just("{ sample = \"per_sample\", range = [2, 1] }"),
            Just("{ kind = \"constant\" }"),
            Just("{ kind = \"step\", every_epochs = 0, factor = 2 }"),
            Just("{"),
            Just("]"),
            Just("= ="),
        ]
        .prop_map(str::to_string),
        prop::collection::vec(0usize..70_000, 0..4).prop_map(|v| format!("{v:?}")),
        "[ -~]{0,12}",
    ]
}

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (prop::sample::select(KEYS).prop_map(str::to_string), value()),
        0..6,
    )
}

/// Everything downstream of a configuration that must not panic either: the estimates, and for
/// small networks the build and the tape measurement.
fn exercise(config: &TrainConfig) {
    let _ = config.to_toml_string();
    let Ok(shape) = NetworkShape::from_setting(&config.setting) else {
        return;
    };
    let estimate = budget::before_building(config, &shape);
    let params = config.policy.parameter_count(&shape);
    if params > 1e6 || estimate.bytes() > 1e8 || config.setting.n_stores() > 200 {
        return;
    }
    let mut store = ParamStore::new();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
    let Ok(policy) = Policy::build(config.policy.clone(), &shape, &mut store, &mut rng) else {
        return;
    };
    assert!((params - store.num_scalars() as f64).abs() <= 0.01 * params.max(1.0));
    if let Ok(tape) = budget::measure_tape(config, &policy, &store) {
        let _ = budget::training(config, &policy, &store, tape, 2);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 192,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_0027),
        ..ProptestConfig::default()
    })]

    /// Arbitrary text is a parse error, never a panic.
    #[test]
    fn random_text_is_rejected_without_panicking(text in "[ -~\n]{0,200}") {
        let _ = TrainConfig::from_toml_str(&text);
        let _ = Setting::from_toml_str(&text);
    }

    /// A valid configuration file with random keys set to random values, or removed.
    #[test]
    fn edited_config_files_parse_or_fail_cleanly(
        kind in prop::sample::select(POLICY_KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>()),
        which in 0usize..6,
        edits in prop::collection::vec(
            (prop::sample::select(KEYS), prop::option::of(value())),
            0..5,
        ),
    ) {
        let name = list_settings()[which % list_settings().len()].name;
        let Ok(config) = TrainConfig::default_for(setting(name).unwrap(), kind) else {
            return Ok(());
        };
        let mut root: toml::Table = toml::from_str(&config.to_toml_string()).unwrap();
        for (key, edit) in edits {
            let path: Vec<&str> = key.split('.').collect();
            let mut table = &mut root;
            for part in &path[..path.len() - 1] {
                let entry = table
                    .entry(part.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                match entry {
                    toml::Value::Table(t) => table = t,
                    other => {
                        *other = toml::Value::Table(toml::Table::new());
                        let toml::Value::Table(t) = other else { unreachable!() };
                        table = t;
                    }
                }
            }
            let last = path[path.len() - 1].to_string();
            match edit {
                None => {
                    table.remove(&last);
                }
                Some(text) => {
                    let value = toml::from_str::<toml::Table>(&format!("v = {text}"))
                        .ok()
                        .and_then(|mut t| t.remove("v"))
                        .unwrap_or(toml::Value::String(text));
                    table.insert(last, value);
                }
            }
        }
        let text = toml::to_string(&root).unwrap();
        if let Ok(config) = TrainConfig::from_toml_str(&text) {
            exercise(&config);
        }
    }

    /// Random `--set` pairs on every setting and policy, as `hdpo train` applies them.
    #[test]
    fn random_overrides_apply_or_fail_cleanly(
        kind in prop::sample::select(POLICY_KINDS.iter().map(|(k, _)| *k).collect::<Vec<_>>()),
        which in 0usize..6,
        overrides in pairs(),
    ) {
        let name = list_settings()[which % list_settings().len()].name;
        let s = setting(name).unwrap();
        let mut bare = s.clone();
        let _ = bare.apply_overrides(overrides.iter().map(|(k, v)| format!("{k}={v}")));
        if let Ok(config) = TrainConfig::default_with_overrides(s, kind, &overrides) {
            exercise(&config);
            // one more override on the result, as a resumed or edited run would
            let mut again = config.clone();
            if let Some((k, v)) = overrides.first() && again.apply_override(k, v).is_ok() {
                exercise(&again);
            }
        }
    }
}
