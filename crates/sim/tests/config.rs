//! Settings: the embedded defaults, TOML round trips, validation errors that name the field,
//! dotted overrides and the derived quantities.

use hdpo_sim::config::{
    ConfigError, ParamSource, PipelineLengths, Setting, Split, StoreLeadTimes, StoreValues,
    reference_stores,
};
use hdpo_sim::settings::{list_settings, serial_system, setting};

/// The field an error names, panicking with the message if it is not a field error.
fn field_of(err: ConfigError) -> String {
    match err {
        ConfigError::Invalid { field, .. } => field,
        other => panic!("expected a field error, got: {other}"),
    }
}

fn one_store_toml(extra_stores: &str, extra: &str) -> String {
    format!(
        r#"
name = "t"
unmet_demand = "backlogged"

[network]
n_stores = 1

[stores]
holding_cost = 1.0
underage_cost = 9.0
lead_time = 4
{extra_stores}

[demand]
distribution = "normal"
mean = 5.0
std = 1.6

{extra}

[splits.train]
n_samples = 8
batch_size = 4
periods = 10
ignore_periods = 2

[splits.dev]
n_samples = 8
batch_size = 8
periods = 10
ignore_periods = 2

[splits.test]
n_samples = 8
batch_size = 8
periods = 10
ignore_periods = 2

[seeds]
train = 1
dev = 2
test = 3
"#
    )
}

#[test]
fn every_embedded_setting_validates_and_round_trips() {
    let names: Vec<&str> = list_settings().iter().map(|i| i.name).collect();
    assert_eq!(
        names,
        vec![
            "one_store_lost",
            "one_store_backlogged",
            "serial_system",
            "one_warehouse_lost",
            "transshipment_backlogged",
            "many_warehouses_lost",
            "identical_stores_lost",
            "favorita_one_store",
            "favorita_one_warehouse",
            "favorita_many_warehouses",
        ]
    );
    for info in list_settings() {
        assert!(!info.description.is_empty());
        let s = setting(info.name).unwrap();
        assert_eq!(s.name, info.name);
        s.validate().unwrap();
        let text = s.to_toml_string().unwrap();
        let back = Setting::from_toml_str(&text).unwrap();
        assert_eq!(back, s, "{} does not round-trip through TOML", info.name);
        // Each split has its own seed.
        assert_ne!(s.seed(Split::Train), s.seed(Split::Dev));
        assert_ne!(s.seed(Split::Dev), s.seed(Split::Test));
    }
}

#[test]
fn generated_many_warehouse_networks_follow_the_paper_and_round_trip() {
    use hdpo_sim::settings::{MANY_WAREHOUSE_SIZES, many_warehouse_adjacency, many_warehouses};
    for (w, n) in MANY_WAREHOUSE_SIZES {
        let s = setting(&format!("many_warehouses_lost_{w}x{n}")).unwrap();
        assert_eq!(s, many_warehouses(w, n).unwrap());
        let instance = s.instance().unwrap();
        assert_eq!((instance.n_warehouses, instance.n_stores), (w, n));
        let text = s.to_toml_string().unwrap();
        assert_eq!(
            Setting::from_toml_str(&text).unwrap(),
            s,
            "{w}x{n} round-trips"
        );
        if w == 2 {
            // the reference's own adjacency
            assert_eq!(s, setting("many_warehouses_lost").unwrap());
            continue;
        }
        let table = many_warehouse_adjacency(w, n);
        assert_eq!(table, many_warehouse_adjacency(w, n), "the table is fixed");
        for (store, row) in table.iter().enumerate() {
            let edges: Vec<u32> = row.iter().copied().filter(|&l| l > 0).collect();
            assert!((1..=2).contains(&edges.len()), "store {store}: {row:?}");
            assert!(
                edges.iter().all(|l| (1..=6).contains(l)),
                "store {store}: {row:?}"
            );
            assert!(
                row[store % w] > 0,
                "store {store} is served by warehouse {}",
                store % w
            );
            for (wh, &l) in row.iter().enumerate() {
                assert_eq!(instance.adjacency[wh][store], l > 0);
            }
        }
        let toml: toml::Value = toml::from_str(&text).unwrap();
        let warehouses = &toml["warehouses"];
        let expected_holding: Vec<f64> = (0..w).map(|k| 0.3 + 0.1 * k as f64).collect();
        let expected_edge: Vec<f64> = (0..w).map(|k| 0.5 + k as f64).collect();
        let read = |v: &toml::Value| -> Vec<f64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_float().or(x.as_integer().map(|i| i as f64)).unwrap())
                .collect()
        };
        for (got, want) in read(&warehouses["holding_cost"])
            .iter()
            .zip(&expected_holding)
        {
            assert!((got - want).abs() < 1e-9, "{w}x{n} holding {got} vs {want}");
        }
        for (got, want) in read(&warehouses["edge_cost"]).iter().zip(&expected_edge) {
            assert!(
                (got - want).abs() < 1e-9,
                "{w}x{n} edge cost {got} vs {want}"
            );
        }
    }
    let err = setting("many_warehouses_lost_3x21")
        .unwrap_err()
        .to_string();
    assert!(err.contains("2x10, 3x20"), "{err}");
}

#[test]
fn unknown_setting_lists_valid_names() {
    let err = setting("one_store").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ConfigError::UnknownSetting { .. }));
    assert!(message.contains("one_store_lost") && message.contains("many_warehouses_lost"));
}

#[test]
fn embedded_values_match_the_spec() {
    let s = setting("one_store_lost").unwrap();
    assert!(s.discrete_demand());
    assert_eq!(s.splits.train.n_samples, 32768);
    assert_eq!(s.splits.train.batch_size, 8192);
    assert_eq!(
        (s.splits.test.periods, s.splits.test.ignore_periods),
        (5000, 3000)
    );
    assert_eq!(
        s.pipeline_lengths().unwrap(),
        PipelineLengths {
            store: 4,
            warehouse: 0,
            echelon: 0
        }
    );

    let s = setting("one_store_backlogged").unwrap();
    let inst = s.instance().unwrap();
    assert!(!s.discrete_demand());
    assert_eq!(
        (inst.mean.clone(), inst.std.clone()),
        (vec![5.0], vec![1.6])
    );

    let s = setting("serial_system").unwrap();
    let inst = s.instance().unwrap();
    assert_eq!(inst.echelon_lead_time, vec![2, 4]);
    assert_eq!(inst.echelon_holding_cost, vec![0.1, 0.2]);
    assert_eq!(
        (
            inst.warehouse_lead_time.clone(),
            inst.warehouse_holding_cost.clone()
        ),
        (vec![3], vec![0.5])
    );
    assert_eq!(
        inst.pipeline,
        PipelineLengths {
            store: 4,
            warehouse: 3,
            echelon: 4
        }
    );
    assert_eq!(s.warehouse_upper_bound().unwrap(), 20.0);

    let s = setting("one_warehouse_lost").unwrap();
    let inst = s.instance().unwrap();
    assert_eq!(inst.mean, vec![3.743, 4.75, 4.555, 3.801, 6.852]);
    assert_eq!(inst.std, vec![1.765, 2.124, 1.622, 1.405, 1.714]);
    assert_eq!(
        inst.lead_time,
        StoreLeadTimes::PerEdge(vec![vec![2], vec![3], vec![2], vec![2], vec![2]])
    );
    let StoreValues::PerStore(p) = &inst.underage_cost else {
        panic!()
    };
    assert!((p[0] - 10.2367).abs() < 1e-4 && (p[4] - 10.5191).abs() < 1e-4);
    assert_eq!(inst.pipeline.store, 3);
    assert_eq!(inst.pipeline.warehouse, 3);
    assert_eq!(inst.correlation, 0.5);
    assert!((s.warehouse_upper_bound().unwrap() - 94.804).abs() < 1e-9);
    assert_eq!(s.splits.train.n_samples, 8192);

    let s = setting("transshipment_backlogged").unwrap();
    let inst = s.instance().unwrap();
    assert!(!inst.clip);
    assert_eq!(inst.holding_cost, StoreValues::PerStore(vec![1.0; 5]));
    assert_eq!(inst.underage_cost, StoreValues::PerStore(vec![4.0; 5]));
    assert_eq!(inst.pipeline.store, 2);
    assert!(s.observation.static_features.is_empty());

    let s = setting("many_warehouses_lost").unwrap();
    let inst = s.instance().unwrap();
    assert_eq!(inst.n_warehouses, 2);
    assert_eq!(inst.pipeline.store, 6);
    assert_eq!(inst.warehouse_edge_cost, vec![0.5, 1.5]);
    assert_eq!(inst.warehouse_holding_cost, vec![0.3, 0.4]);
    let StoreLeadTimes::PerEdge(m) = &inst.lead_time else {
        panic!()
    };
    assert_eq!(m[0], vec![0, 2]);
    assert_eq!(m[6], vec![6, 0]);
    assert_eq!(m[7], vec![5, 2]);
    assert!(inst.adjacency[0][6]);
    assert!(!inst.adjacency[1][6]);
}

#[test]
fn serial_system_sizes() {
    let expected_leads = [
        vec![2],
        vec![2, 4],
        vec![2, 4, 1],
        vec![2, 4, 1, 3],
        vec![2, 4, 1, 3, 2],
    ];
    let expected_h = [
        vec![0.1],
        vec![0.1, 0.2],
        vec![0.1, 0.2, 0.25],
        vec![0.1, 0.2, 0.25, 0.3],
        vec![0.1, 0.2, 0.25, 0.3, 0.4],
    ];
    for n in 3..=7 {
        let s = serial_system(n).unwrap();
        let inst = s.instance().unwrap();
        assert_eq!(inst.n_echelons, n - 2);
        assert_eq!(inst.echelon_lead_time, expected_leads[n - 3]);
        assert_eq!(inst.echelon_holding_cost, expected_h[n - 3]);
        assert_eq!(setting(&format!("serial_system_{n}")).unwrap(), s);
    }
    assert_eq!(serial_system(4).unwrap(), setting("serial_system").unwrap());
    assert_eq!(field_of(serial_system(8).unwrap_err()), "n_locations");
}

#[test]
fn invalid_settings_name_the_field() {
    let cases: Vec<(String, &str)> = vec![
        (
            one_store_toml("", "").replace("lead_time = 4", "lead_time = 0"),
            "stores.lead_time",
        ),
        (
            one_store_toml("", "").replace("lead_time = 4", "lead_time = 2.5"),
            "stores.lead_time",
        ),
        (
            one_store_toml("pipeline_length = 1", ""),
            "stores.pipeline_length",
        ),
        (
            one_store_toml("pipeline_length = 3", ""),
            "stores.pipeline_length",
        ),
        (
            one_store_toml("", "").replace("std = 1.6", "std = 0.0"),
            "demand.std",
        ),
        (
            one_store_toml("", "").replace("std = 1.6", ""),
            "demand.std",
        ),
        (
            one_store_toml("", "").replace("holding_cost = 1.0", "holding_cost = -1.0"),
            "stores.holding_cost",
        ),
        (
            one_store_toml("", "").replace(
                "ignore_periods = 2\n\n[splits.dev]",
                "ignore_periods = 10\n\n[splits.dev]",
            ),
            "splits.train.ignore_periods",
        ),
        (
            one_store_toml("", "").replace("batch_size = 4", "batch_size = 9"),
            "splits.train.batch_size",
        ),
        (
            one_store_toml("", "").replace("n_stores = 1", "n_stores = 0"),
            "network.n_stores",
        ),
        (
            one_store_toml("", "").replace(
                "unmet_demand = \"backlogged\"",
                "unmet_demand = \"backlogged\"\nobjective = \"profit\"",
            ),
            "objective",
        ),
        (
            one_store_toml("", "").replace("n_stores = 1", "n_stores = 1\nn_warehouses = 1"),
            "warehouses",
        ),
        (
            one_store_toml("", "[warehouses]\nholding_cost = 0.3\nlead_time = 3\n"),
            "warehouses",
        ),
        (
            one_store_toml("", "[initial_inventory]\nrange_mult = [1.0, 0.5]\n"),
            "initial_inventory.range_mult",
        ),
        (
            one_store_toml("", "").replace("holding_cost = 1.0", "holding_cost = [1.0, 2.0]"),
            "stores.holding_cost",
        ),
        (
            one_store_toml("", "").replace("underage_cost = 9.0", "underage_cost = [[1.0]]"),
            "stores.underage_cost",
        ),
        (
            one_store_toml("", "").replace(
                "lead_time = 4",
                "lead_time = { sample = \"per_sample\", range = [4, 4] }",
            ),
            "stores.lead_time.range",
        ),
    ];
    for (text, field) in cases {
        let err = Setting::from_toml_str(&text).unwrap_err();
        let message = err.to_string();
        assert_eq!(field_of(err), field, "wrong field in: {message}");
        assert!(
            message.contains("allowed") || message.contains("required") || message.contains("give"),
            "{message}"
        );
    }
}

#[test]
fn multi_store_validation() {
    let base = setting("one_warehouse_lost").unwrap();
    // Correlation must keep the covariance positive definite.
    for bad in ["1.0", "-0.3", "1.5"] {
        let mut s = base.clone();
        let err = s.apply_override("demand.correlation", bad).unwrap_err();
        assert_eq!(field_of(err), "demand.correlation", "correlation {bad}");
        assert_eq!(s, base, "a failed override leaves the setting unchanged");
    }
    let mut s = base.clone();
    s.apply_override("demand.correlation", "-0.2").unwrap();
    // The reference instance has 50 stores.
    let err = base.clone().apply_override("n_stores", "51").unwrap_err();
    let message = err.to_string();
    assert!(message.contains("n_stores ≤ 50"), "{message}");
    // Adjacency shape and lead times on edges only.
    let many = setting("many_warehouses_lost").unwrap();
    let mut s = many.clone();
    let err = s
        .apply_override("network.adjacency", "[[1, 1], [1, 1]]")
        .unwrap_err();
    assert_eq!(field_of(err), "network.adjacency");
    let mut s = many.clone();
    let lead_9x2 = "[[0,2],[0,1],[6,2],[6,2],[6,1],[0,2],[6,0],[5,2],[6,2]]";
    assert_eq!(
        field_of(s.apply_override("stores.lead_time", lead_9x2).unwrap_err()),
        "stores.lead_time"
    );
    let positive_on_non_edge = "[[1,2],[0,1],[6,2],[6,2],[6,1],[0,2],[6,0],[5,2],[6,2],[0,2]]";
    let err = s
        .apply_override("stores.lead_time", positive_on_non_edge)
        .unwrap_err();
    assert_eq!(field_of(err), "stores.lead_time[0][0]");
    let zero_on_edge = "[[0,2],[0,1],[0,2],[6,2],[6,1],[0,2],[6,0],[5,2],[6,2],[0,2]]";
    let err = s
        .apply_override("stores.lead_time", zero_on_edge)
        .unwrap_err();
    assert_eq!(field_of(err), "stores.lead_time[2][0]");
    // A store without any warehouse.
    let orphan = "[[0, 0, 1, 1, 1, 0, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1, 0, 1, 1, 1]]";
    let err = s.apply_override("network.adjacency", orphan).unwrap_err();
    assert!(
        err.to_string().contains("store 0 has no warehouse"),
        "{err}"
    );
    // Two warehouses need an adjacency.
    let text = many.to_toml_string().unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("adjacency"))
        .collect::<Vec<_>>()
        .join("\n");
    let err = Setting::from_toml_str(&without);
    assert!(err.is_err());
    // Edge costs: one per warehouse.
    let err = many
        .clone()
        .apply_override("warehouses.edge_cost", "[0.5, 1.5, 2.0]")
        .unwrap_err();
    assert_eq!(field_of(err), "warehouses.edge_cost");
    // Echelons: equal lengths, positive lead times.
    let serial = setting("serial_system").unwrap();
    let err = serial
        .clone()
        .apply_override("echelons.lead_time", "[2, 0]")
        .unwrap_err();
    assert_eq!(field_of(err), "echelons.lead_time");
    let err = serial
        .clone()
        .apply_override("echelons.lead_time", "[2, 4, 1]")
        .unwrap_err();
    assert_eq!(field_of(err), "echelons.holding_cost");
    let err = serial
        .clone()
        .apply_override("echelons.pipeline_length", "3")
        .unwrap_err();
    assert_eq!(field_of(err), "echelons.pipeline_length");
    // Poisson demand cannot be correlated.
    let err = setting("one_store_lost")
        .unwrap()
        .apply_override("correlation", "0.3")
        .unwrap_err();
    assert_eq!(field_of(err), "demand.correlation");
}

#[test]
fn parse_errors_name_the_key_and_allowed_values() {
    let text =
        one_store_toml("", "").replace("unmet_demand = \"backlogged\"", "unmet_demand = \"lsot\"");
    let message = Setting::from_toml_str(&text).unwrap_err().to_string();
    assert!(
        message.contains("lsot") && message.contains("lost") && message.contains("backlogged"),
        "{message}"
    );
    let text = one_store_toml("colour = 1", "");
    let message = Setting::from_toml_str(&text).unwrap_err().to_string();
    assert!(
        message.contains("colour") && message.contains("holding_cost"),
        "{message}"
    );
    let text = one_store_toml("", "").replace("lead_time = 4", "lead_time = \"four\"");
    let message = Setting::from_toml_str(&text).unwrap_err().to_string();
    assert!(
        message.contains("four") && message.contains("reference"),
        "{message}"
    );
    let err = Setting::from_file("/nonexistent/setting.toml").unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
}

#[test]
fn overrides() {
    let mut s = setting("one_store_backlogged").unwrap();
    s.apply_override("stores.underage_cost", "19").unwrap();
    assert_eq!(s.stores.underage_cost, ParamSource::Constant(19.0));
    s.apply_override("lead_time", "7").unwrap();
    assert_eq!(s.stores.lead_time, ParamSource::Constant(7.0));
    assert_eq!(s.pipeline_lengths().unwrap().store, 7);
    s.apply_override("unmet_demand", "lost").unwrap();
    assert_eq!(s.unmet_demand, hdpo_sim::UnmetDemand::Lost);
    s.apply_overrides(["splits.test.n_samples=100", "splits.test.batch_size = 50"])
        .unwrap();
    assert_eq!(s.splits.test.n_samples, 100);
    assert_eq!(s.splits.test.batch_size, 50);
    s.apply_override(
        "holding_cost",
        "{ sample = \"per_sample\", range = [0.5, 1.5] }",
    )
    .unwrap();
    assert!(matches!(s.stores.holding_cost, ParamSource::Sampled(_)));

    // Unknown keys list the valid keys at that level.
    let message = s
        .clone()
        .apply_override("stores.colour", "1")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("colour")
            && message.contains("underage_cost")
            && message.contains("pipeline_length"),
        "{message}"
    );
    let message = s
        .clone()
        .apply_override("colour", "1")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("network") && message.contains("n_stores"),
        "{message}"
    );
    let message = s
        .clone()
        .apply_override("stores.lead_time.x", "1")
        .unwrap_err()
        .to_string();
    assert!(message.contains("not a table"), "{message}");
    let message = s
        .clone()
        .apply_overrides(["no_equals_sign"])
        .unwrap_err()
        .to_string();
    assert!(message.contains("key=value"), "{message}");
    // Invalid values name the field.
    assert_eq!(
        field_of(s.clone().apply_override("lead_time", "0").unwrap_err()),
        "stores.lead_time"
    );

    // n_stores re-resolves the reference instance.
    let mut w = setting("one_warehouse_lost").unwrap();
    w.apply_override("n_stores", "10").unwrap();
    let inst = w.instance().unwrap();
    assert_eq!(inst.mean, reference_stores().mean[..10].to_vec());
    assert_eq!(inst.std, reference_stores().std[..10].to_vec());
    let mut t = setting("transshipment_backlogged").unwrap();
    t.apply_override("n_stores", "3").unwrap();
    assert_eq!(t.instance().unwrap().mean, vec![3.743, 4.75, 4.555]);
}

#[test]
fn sampled_parameters_resolve() {
    let text = one_store_toml("", "")
        .replace("n_stores = 1", "n_stores = 4")
        .replace(
            "underage_cost = 9.0",
            "underage_cost = { sample = \"per_store\", range = [6.3, 11.7] }",
        )
        .replace(
            "lead_time = 4",
            "lead_time = { sample = \"per_sample\", range = [4, 7] }",
        )
        .replace(
            "mean = 5.0",
            "mean = { sample = \"per_store\", range = [2.5, 7.5] }",
        )
        .replace(
            "std = 1.6",
            "coef_of_var = { sample = \"per_store\", range = [0.25, 0.5] }",
        );
    let s = Setting::from_toml_str(&text).unwrap();
    let inst = s.instance().unwrap();
    let StoreValues::PerStore(p) = &inst.underage_cost else {
        panic!()
    };
    assert_eq!(p.len(), 4);
    assert!(p.iter().all(|&x| (6.3..11.7).contains(&x)));
    assert!(p.windows(2).any(|w| w[0] != w[1]));
    assert!(matches!(
        inst.lead_time,
        StoreLeadTimes::PerSample {
            low: 4,
            high: 7,
            ..
        }
    ));
    // Pipeline covers the largest possible lead time (6).
    assert_eq!(inst.pipeline.store, 6);
    for (m, sd) in inst.mean.iter().zip(&inst.std) {
        assert!((2.5..7.5).contains(m));
        assert!(*sd >= 0.25 * m && *sd <= 0.5 * m);
    }
    // Per-store draws are fixed by the parameter seed, not by the split seeds.
    let mut other = s.clone();
    other.seeds.train = 99;
    assert_eq!(other.instance().unwrap().mean, inst.mean);
    other.seeds.parameters = 1;
    assert_ne!(other.instance().unwrap().mean, inst.mean);
}

#[test]
fn sizes_past_the_limits_are_refused_before_anything_is_allocated() {
    use hdpo_sim::config::limits::*;
    let base = setting("one_store_lost").unwrap();
    let cases = [
        (
            "n_stores",
            "1000000".to_string(),
            "network.n_stores",
            "1 … 100000",
        ),
        (
            "lead_time",
            "1000000".into(),
            "stores.lead_time",
            "1 … 1000",
        ),
        (
            "splits.train.periods",
            "1000000000".into(),
            "splits.train.periods",
            "1 … 1000000",
        ),
        (
            "splits.test.n_samples",
            "1000000000000".into(),
            "splits.test.n_samples",
            "1 … 100000000",
        ),
        (
            "observation.past_demands",
            "5000".into(),
            "observation.past_demands",
            "0 … 1000",
        ),
        (
            "initial_inventory.inventory_periods",
            "5000".into(),
            "initial_inventory.inventory_periods",
            "1 … 1000",
        ),
        (
            "stores.pipeline_length",
            "5000".into(),
            "stores.pipeline_length",
            "≤ 1000",
        ),
        (
            "stores.lead_time",
            "{ sample = \"per_sample\", range = [1, 5000] }".into(),
            "stores.lead_time.range",
            "≤ 1001",
        ),
    ];
    for (key, value, field, allowed) in cases {
        let mut s = base.clone();
        let err = s.apply_override(key, &value).unwrap_err();
        let message = err.to_string();
        assert_eq!(field_of(err), field, "{key}={value}: {message}");
        assert!(message.contains(allowed), "{key}={value}: {message}");
        assert_eq!(s, base, "a rejected override leaves the setting unchanged");
    }
    // correlated demand over more stores than the Cholesky limit (the reference values stop at 50)
    let mut s = setting("one_warehouse_lost").unwrap();
    let n = MAX_CORRELATED_STORES + 1;
    let err = s
        .apply_overrides([
            format!("n_stores={n}"),
            "stores.holding_cost=1".into(),
            "stores.underage_cost=9".into(),
            "stores.lead_time=2".into(),
            "demand.mean=5".into(),
            "demand.std=1".into(),
        ])
        .unwrap_err();
    let message = err.to_string();
    assert_eq!(field_of(err), "demand.correlation", "{message}");
    assert!(message.contains("n_stores ≤ 10000"), "{message}");
    // the same network without correlation is accepted
    s.apply_overrides([
        format!("n_stores={n}"),
        "stores.holding_cost=1".into(),
        "stores.underage_cost=9".into(),
        "stores.lead_time=2".into(),
        "demand.mean=5".into(),
        "demand.std=1".into(),
        "correlation=0".into(),
    ])
    .unwrap();
    assert_eq!(s.n_stores(), n);
    // the limits leave room for every embedded setting and the paper's sizes
    const { assert!(MAX_LEAD_TIME >= 20 && MAX_PERIODS >= 5000 && MAX_SAMPLES >= 32768) };
}
