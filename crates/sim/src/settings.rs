//! The embedded settings of the reference (spec §2.2, sizes from §6.1), written as TOML so they
//! double as examples of the schema. [`list_settings`] names them, [`setting`] returns one
//! (validated), [`serial_system`] builds the serial chain with 3–7 locations. Seeds are ours (each
//! split its own); the instances (costs, lead times, demand parameters) are the reference's.
//!
//! The Favorita settings (`favorita_one_store`, `favorita_one_warehouse`,
//! `favorita_many_warehouses`, spec §2.2, §3.5, published results §6–7) read the weekly sales and
//! calendar of `data/favorita_21_stores/`, by paths relative to the repository root
//! ([`repository_root`]); [`favorita_many_warehouses`] builds 2–5 warehouses.

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, EchelonParams, Setting, normalize_lexically};

/// Name and one-line description of an embedded setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingInfo {
    /// Name accepted by [`setting`].
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
}

const SIZES_ONE_STORE: &str = r#"
[splits.train]
n_samples = 32768
batch_size = 8192
periods = 50
ignore_periods = 30

[splits.dev]
n_samples = 32768
batch_size = 32768
periods = 100
ignore_periods = 60

[splits.test]
n_samples = 32768
batch_size = 32768
periods = 5000
ignore_periods = 3000
"#;

const SIZES_WAREHOUSE: &str = r#"
[splits.train]
n_samples = 8192
batch_size = 1024
periods = 50
ignore_periods = 30

[splits.dev]
n_samples = 8192
batch_size = 8192
periods = 100
ignore_periods = 60

[splits.test]
n_samples = 8192
batch_size = 8192
periods = 5000
ignore_periods = 3000
"#;

const SIZES_TRANSSHIPMENT: &str = r#"
[splits.train]
n_samples = 32768
batch_size = 1024
periods = 50
ignore_periods = 30

[splits.dev]
n_samples = 32768
batch_size = 32768
periods = 100
ignore_periods = 60

[splits.test]
n_samples = 32768
batch_size = 32768
periods = 5000
ignore_periods = 3000
"#;

const SEEDS: &str = r#"
[seeds]
train = 57
dev = 58
test = 65
parameters = 33
"#;

const ONE_STORE_LOST: &str = r#"
name = "one_store_lost"
description = "One store, no warehouse, lost sales; Poisson(5) demand; L = 4, p = 9, h = 1"
unmet_demand = "lost"
objective = "cost"

[network]
n_stores = 1
n_warehouses = 0

[stores]
holding_cost = 1.0
underage_cost = 9.0
lead_time = 4

[demand]
distribution = "poisson"
mean = 5.0

[initial_inventory]
rule = "uniform_mean"
range_mult = [0.0, 1.0]
inventory_periods = 4
"#;

const ONE_STORE_BACKLOGGED: &str = r#"
name = "one_store_backlogged"
description = "One store, no warehouse, backlogged; N(5, 1.6) demand clipped at 0; L = 4, p = 9, h = 1"
unmet_demand = "backlogged"
objective = "cost"

[network]
n_stores = 1
n_warehouses = 0

[stores]
holding_cost = 1.0
underage_cost = 9.0
lead_time = 4

[demand]
distribution = "normal"
mean = 5.0
std = 1.6
clip = true

[initial_inventory]
rule = "uniform_mean"
range_mult = [0.0, 1.0]
inventory_periods = 4
"#;

const SERIAL_SYSTEM: &str = r#"
name = "serial_system"
description = "Serial chain supplier -> echelons -> warehouse -> store, backlogged; N(5, 2) clipped; 4 locations"
unmet_demand = "backlogged"
objective = "cost"
upper_bound_mult = 4.0

[network]
n_stores = 1
n_warehouses = 1

[stores]
holding_cost = 1.0
underage_cost = 9.0
lead_time = 4

[demand]
distribution = "normal"
mean = 5.0
std = 2.0
clip = true

[warehouses]
holding_cost = 0.5
lead_time = 3

[echelons]
holding_cost = [0.1, 0.2]
lead_time = [2, 4]

[initial_inventory]
rule = "uniform_mean"
range_mult = [0.0, 1.0]
inventory_periods = 4
"#;

const ONE_WAREHOUSE_LOST: &str = r#"
name = "one_warehouse_lost"
description = "One warehouse, 5 stores (3-50 via n_stores), lost sales; reference per-store parameters; MVN rho = 0.5 clipped"
unmet_demand = "lost"
objective = "cost"
upper_bound_mult = 4.0

[network]
n_stores = 5
n_warehouses = 1

[stores]
holding_cost = "reference"
underage_cost = "reference"
lead_time = "reference"

[demand]
distribution = "normal"
mean = "reference"
std = "reference"
correlation = 0.5
clip = true

[warehouses]
holding_cost = 0.3
lead_time = 3

[initial_inventory]
rule = "uniform_mean"
range_mult = [0.0, 1.0]
inventory_periods = 3

[observation]
static_features = ["mean", "std"]
"#;

const TRANSSHIPMENT_BACKLOGGED: &str = r#"
name = "transshipment_backlogged"
description = "Transshipment center (policy ships all its stock) + 5 stores (3-50 via n_stores), backlogged; MVN rho = 0.5 not clipped; L = 2, p = 4, h = 1"
unmet_demand = "backlogged"
objective = "cost"
upper_bound_mult = 4.0

[network]
n_stores = 5
n_warehouses = 1

[stores]
holding_cost = 1.0
underage_cost = 4.0
lead_time = 2

[demand]
distribution = "normal"
mean = "reference"
std = "reference"
correlation = 0.5
clip = false

[warehouses]
holding_cost = 0.5
lead_time = 3

[initial_inventory]
rule = "uniform_mean"
range_mult = [0.0, 1.0]
inventory_periods = 2
"#;

const MANY_WAREHOUSES_LOST: &str = r#"
name = "many_warehouses_lost"
description = "Two warehouses, 10 stores with a fixed adjacency and per-edge lead times, lost sales, edge costs; reference per-store parameters"
unmet_demand = "lost"
objective = "cost"
upper_bound_mult = 4.0

[network]
n_stores = 10
n_warehouses = 2
adjacency = [
    [0, 0, 1, 1, 1, 0, 1, 1, 1, 0],
    [1, 1, 1, 1, 1, 1, 0, 1, 1, 1],
]

[stores]
holding_cost = "reference"
underage_cost = "reference"
lead_time = [[0, 2], [0, 1], [6, 2], [6, 2], [6, 1], [0, 2], [6, 0], [5, 2], [6, 2], [0, 2]]

[demand]
distribution = "normal"
mean = "reference"
std = "reference"
correlation = 0.5
clip = true

[warehouses]
holding_cost = [0.3, 0.4]
lead_time = 3
edge_cost = [0.5, 1.5]

[initial_inventory]
rule = "uniform_mean"
range_mult = [0.0, 1.0]
inventory_periods = 3

[observation]
static_features = ["mean", "std"]
"#;

const IDENTICAL_STORES_LOST: &str = r#"
name = "identical_stores_lost"
description = "Identical independent stores (3-50 via n_stores, default 10), no warehouse, lost sales; Poisson(5); L = 3, p = 9, h = 1 (optimum 6.5314 per store)"
unmet_demand = "lost"
objective = "cost"

[network]
n_stores = 10
n_warehouses = 0

[stores]
holding_cost = 1.0
underage_cost = 9.0
lead_time = 3

[demand]
distribution = "poisson"
mean = 5.0

[initial_inventory]
rule = "uniform_mean"
range_mult = [0.0, 1.0]
inventory_periods = 3

[observation]
static_features = ["mean", "std"]
"#;

/// Sizes of the Favorita settings: 288 products, the reference's weeks and warm-up (spec §2.2,
/// §3.5): each split's range starts with 16 observed weeks, then 95 / 37 / 37 simulated weeks of
/// which the first 16 are warm-up from empty pipelines.
const SIZES_FAVORITA_NETWORK: &str = r#"
[splits.train]
n_samples = 288
batch_size = 72
periods = 95
ignore_periods = 16
periods_range = [0, 111]

[splits.dev]
n_samples = 288
batch_size = 288
periods = 37
ignore_periods = 16
periods_range = [88, 141]

[splits.test]
n_samples = 288
batch_size = 288
periods = 37
ignore_periods = 16
periods_range = [118, 171]
"#;

/// The one-store Favorita sizes: the 6,048 (product, store) series.
const SIZES_FAVORITA_ONE_STORE: &str = r#"
[splits.train]
n_samples = 6048
batch_size = 1512
periods = 95
ignore_periods = 16
periods_range = [0, 111]

[splits.dev]
n_samples = 6048
batch_size = 6048
periods = 37
ignore_periods = 16
periods_range = [88, 141]

[splits.test]
n_samples = 6048
batch_size = 6048
periods = 37
ignore_periods = 16
periods_range = [118, 171]
"#;

/// The Favorita demand table, shared by the three Favorita settings (paths relative to the
/// repository root, see [`repository_root`]). `{stores}` is replaced by the store selection.
const FAVORITA_DEMAND: &str = r#"
[demand]
distribution = "data"
file = "data/favorita_21_stores/weekly_sales_wide.csv"
format = "wide"
past_periods = 16
negative = "zero"
stores = "{stores}"

[demand.calendar]
file = "data/favorita_21_stores/dates_with_info.csv"
columns = ["days_from_christmas"]

[initial_inventory]
rule = "zero"
inventory_periods = 6

[observation]
static_features = ["holding_cost", "underage_cost", "lead_time"]
past_demands = 16
"#;

const FAVORITA_ONE_STORE: &str = r#"
name = "favorita_one_store"
description = "Favorita weekly sales, each of the 6,048 (product, store) series a one-store sample; lost sales, profit; L ~ U{4, 5, 6} and p ~ U[6.3, 11.7] per sample, h = 1"
unmet_demand = "lost"
objective = "profit"

[network]
n_stores = 1
n_warehouses = 0

[stores]
holding_cost = 1.0
underage_cost = { sample = "per_sample", range = [6.3, 11.7], seed = 28 }
lead_time = { sample = "per_sample", range = [4, 7], seed = 41 }
"#;

const FAVORITA_ONE_WAREHOUSE: &str = r#"
name = "favorita_one_warehouse"
description = "Favorita weekly sales of 288 products at the first 5 of 21 stores (n_stores = 1 … 21) behind one warehouse; lost sales, profit; h ~ U[0.7, 1.3], p ~ U[6.3, 11.7], L ~ U{4, 5, 6} per store; warehouse h 0.3, L 3, edge cost 0.5"
unmet_demand = "lost"
objective = "profit"

[network]
n_stores = 5
n_warehouses = 1

[stores]
holding_cost = { sample = "per_store", range = [0.7, 1.3] }
underage_cost = { sample = "per_store", range = [6.3, 11.7] }
lead_time = { sample = "per_store", range = [4, 7] }

[warehouses]
holding_cost = 0.3
lead_time = 3
edge_cost = 0.5
"#;

const FAVORITA_MANY_WAREHOUSES: &str = r#"
name = "favorita_many_warehouses"
description = "Favorita weekly sales of 288 products at 21 stores, 3 warehouses with the reference's adjacency and store lead times (favorita_many_warehouses_2, _4, _5 for 2, 4, 5); lost sales, profit; h ~ U[0.7, 1.3], p ~ U[6.3, 11.7] per store"
unmet_demand = "lost"
objective = "profit"

[network]
n_stores = 21
n_warehouses = 3
adjacency = [
    [1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1],
]

[stores]
holding_cost = { sample = "per_store", range = [0.7, 1.3] }
underage_cost = { sample = "per_store", range = [6.3, 11.7] }
lead_time = [[6, 1, 5], [6, 1, 5], [6, 1, 5], [0, 1, 5], [6, 1, 4], [5, 0, 6], [5, 2, 5], [5, 2, 5], [5, 1, 5], [5, 2, 5], [5, 0, 5], [5, 0, 0], [5, 0, 5], [5, 0, 6], [0, 1, 5], [6, 1, 5], [6, 1, 5], [6, 1, 5], [6, 1, 5], [5, 1, 4], [5, 2, 5]]

[warehouses]
holding_cost = [0.3, 0.4, 0.2]
lead_time = 3
edge_cost = [0.5, 1.5, 0.7]
"#;

/// The embedded settings: name, description, TOML body, split sizes.
const EMBEDDED: &[(&str, &str, &str, &str)] = &[
    (
        "one_store_lost",
        "one store, lost sales, Poisson(5), L=4, p=9, h=1 (test actions rounded)",
        ONE_STORE_LOST,
        SIZES_ONE_STORE,
    ),
    (
        "one_store_backlogged",
        "one store, backlogged, N(5,1.6) clipped, L=4, p=9, h=1 (base stock optimal)",
        ONE_STORE_BACKLOGGED,
        SIZES_ONE_STORE,
    ),
    (
        "serial_system",
        "serial chain of 4 locations (serial_system_3 … serial_system_7 for 3–7), backlogged, N(5,2) clipped",
        SERIAL_SYSTEM,
        SIZES_ONE_STORE,
    ),
    (
        "one_warehouse_lost",
        "1 warehouse + 5 stores (n_stores=3…50), lost sales, reference instance, MVN rho=0.5 clipped",
        ONE_WAREHOUSE_LOST,
        SIZES_WAREHOUSE,
    ),
    (
        "transshipment_backlogged",
        "transshipment center + 5 stores (n_stores=3…50), backlogged, MVN rho=0.5 not clipped, L=2, p=4",
        TRANSSHIPMENT_BACKLOGGED,
        SIZES_TRANSSHIPMENT,
    ),
    (
        "many_warehouses_lost",
        "2 warehouses + 10 stores with adjacency, per-edge lead times and edge costs, lost sales (many_warehouses_lost_WxS for W = 3…6 warehouses, S = 10·(W − 1) stores)",
        MANY_WAREHOUSES_LOST,
        SIZES_WAREHOUSE,
    ),
    (
        "identical_stores_lost",
        "n identical independent stores (n_stores=3…50, default 10), Poisson(5), L=3, p=9, h=1, no warehouse",
        IDENTICAL_STORES_LOST,
        SIZES_WAREHOUSE,
    ),
    (
        "favorita_one_store",
        "Favorita weekly sales: 6,048 (product, store) series as one-store samples, lost sales, profit, L~U{4,5,6}, p~U[6.3,11.7] per sample",
        FAVORITA_ONE_STORE,
        SIZES_FAVORITA_ONE_STORE,
    ),
    (
        "favorita_one_warehouse",
        "Favorita weekly sales, 288 products, 1 warehouse + the first 5 stores (n_stores=1…21), lost sales, profit",
        FAVORITA_ONE_WAREHOUSE,
        SIZES_FAVORITA_NETWORK,
    ),
    (
        "favorita_many_warehouses",
        "Favorita weekly sales, 288 products, 21 stores, 3 warehouses of the reference (favorita_many_warehouses_2, _4, _5 for 2, 4, 5), lost sales, profit",
        FAVORITA_MANY_WAREHOUSES,
        SIZES_FAVORITA_NETWORK,
    ),
];

/// The store selection (`demand.stores`) of each Favorita setting.
fn favorita_stores(name: &str) -> Option<&'static str> {
    match name {
        "favorita_one_store" => Some("as_samples"),
        "favorita_one_warehouse" => Some("first"),
        "favorita_many_warehouses" => Some("all"),
        _ => None,
    }
}

/// The root of the repository this crate was built from (`crates/sim/../..`): relative data paths
/// of the embedded settings (`data/favorita_21_stores/…`) are resolved against it, so they work
/// whatever the working directory (the repository root, a crate's tests).
pub fn repository_root() -> PathBuf {
    normalize_lexically(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

/// Parses an embedded setting, resolves its data paths against [`repository_root`], validates.
fn embedded(text: &str) -> Result<Setting, ConfigError> {
    let mut setting: Setting =
        toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
    setting.resolve_data_paths(&repository_root());
    setting.validate()?;
    Ok(setting)
}

/// Extra-echelon lead times of the serial chain (most upstream first), for up to 5 echelons.
const SERIAL_ECHELON_LEAD_TIMES: [f64; 5] = [2.0, 4.0, 1.0, 3.0, 2.0];
/// Extra-echelon holding costs of the serial chain, for up to 5 echelons.
const SERIAL_ECHELON_HOLDING_COSTS: [f64; 5] = [0.1, 0.2, 0.25, 0.3, 0.4];

/// The embedded settings, in a stable order.
pub fn list_settings() -> Vec<SettingInfo> {
    EMBEDDED
        .iter()
        .map(|&(name, description, _, _)| SettingInfo { name, description })
        .collect()
}

/// The embedded setting `name`, validated. Also accepts `serial_system_3` … `serial_system_7`.
/// An unknown name gives an error listing the valid names.
pub fn setting(name: &str) -> Result<Setting, ConfigError> {
    if let Some(n) = name.strip_prefix("serial_system_")
        && let Ok(n_locations) = n.parse::<usize>()
    {
        return serial_system(n_locations);
    }
    if let Some(size) = name.strip_prefix("many_warehouses_lost_")
        && let Some((w, st)) = size.split_once('x')
        && let (Ok(w), Ok(st)) = (w.parse::<usize>(), st.parse::<usize>())
    {
        return many_warehouses(w, st);
    }
    if let Some(w) = name.strip_prefix("favorita_many_warehouses_")
        && let Ok(w) = w.parse::<usize>()
    {
        return favorita_many_warehouses(w);
    }
    let Some(&(_, _, body, sizes)) = EMBEDDED.iter().find(|entry| entry.0 == name) else {
        let mut valid: Vec<&str> = EMBEDDED.iter().map(|entry| entry.0).collect();
        valid.push("serial_system_3 … serial_system_7");
        valid.push("many_warehouses_lost_3x20, _4x30, _5x40, _6x50");
        valid.push("favorita_many_warehouses_2 … favorita_many_warehouses_5");
        return Err(ConfigError::UnknownSetting {
            name: name.to_string(),
            valid: valid.join(", "),
        });
    };
    match favorita_stores(name) {
        Some(stores) => embedded(&format!(
            "{body}\n{}\n{sizes}\n{SEEDS}",
            FAVORITA_DEMAND.replace("{stores}", stores)
        )),
        None => embedded(&format!("{body}\n{sizes}\n{SEEDS}")),
    }
}

/// The reference's Favorita topology (`data/favorita_21_stores/`): `W × S` adjacency of its
/// three warehouses and 21 stores.
const FAVORITA_ADJACENCY: [[u8; 21]; 3] = [
    [
        1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1,
    ],
    [
        1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1,
    ],
    [
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ],
];

/// The reference's store-from-warehouse lead times, `S × W` (listed for every pair, edges or not).
const FAVORITA_LEAD_TIMES: [[u32; 3]; 21] = [
    [6, 1, 5],
    [6, 1, 5],
    [6, 1, 5],
    [6, 1, 5],
    [6, 1, 4],
    [5, 2, 6],
    [5, 2, 5],
    [5, 2, 5],
    [5, 1, 5],
    [5, 2, 5],
    [5, 2, 5],
    [5, 2, 6],
    [5, 2, 5],
    [5, 2, 6],
    [6, 1, 5],
    [6, 1, 5],
    [6, 1, 5],
    [6, 1, 5],
    [6, 1, 5],
    [5, 1, 4],
    [5, 2, 5],
];

/// Holding costs of the reference's three Favorita warehouses.
const FAVORITA_WAREHOUSE_HOLDING: [f64; 3] = [0.3, 0.4, 0.2];
/// Edge (procurement) costs of the reference's three Favorita warehouses.
const FAVORITA_WAREHOUSE_EDGE_COST: [f64; 3] = [0.5, 1.5, 0.7];

/// The Favorita network with `n_warehouses` warehouses, its `S × W` store lead times (0 on
/// non-edges) and per-warehouse holding and edge costs. Warehouse `w = 3k + j` is the reference's
/// warehouse `j` with its stores shifted by `7k`: it ships to store `s` when the reference's
/// warehouse `j` ships to store `(s + 7k) mod 21`, with that store's lead time, and has warehouse
/// `j`'s costs. So 3 warehouses are the reference's network, 2 its first two warehouses, and 4 and
/// 5 add copies of warehouses 0 and 1 serving a shifted set of stores (docs/simulator.md).
pub fn favorita_warehouses(n_warehouses: usize) -> (Vec<Vec<u32>>, Vec<f64>, Vec<f64>) {
    let s = FAVORITA_LEAD_TIMES.len();
    let lead_times = (0..s)
        .map(|st| {
            (0..n_warehouses)
                .map(|w| {
                    let (k, j) = (w / 3, w % 3);
                    let source = (st + 7 * k) % s;
                    if FAVORITA_ADJACENCY[j][source] == 1 {
                        FAVORITA_LEAD_TIMES[source][j]
                    } else {
                        0
                    }
                })
                .collect()
        })
        .collect();
    let per_warehouse = |values: [f64; 3]| {
        (0..n_warehouses)
            .map(|w| values[w % 3])
            .collect::<Vec<f64>>()
    };
    (
        lead_times,
        per_warehouse(FAVORITA_WAREHOUSE_HOLDING),
        per_warehouse(FAVORITA_WAREHOUSE_EDGE_COST),
    )
}

/// `favorita_many_warehouses` with `n_warehouses` ∈ 2..=5 warehouses ([`favorita_warehouses`]);
/// 3 is the embedded setting itself.
pub fn favorita_many_warehouses(n_warehouses: usize) -> Result<Setting, ConfigError> {
    if !(2..=5).contains(&n_warehouses) {
        return Err(ConfigError::Invalid {
            field: "favorita_many_warehouses size".to_string(),
            message: format!("is {n_warehouses} warehouses; allowed: 2, 3, 4, 5"),
        });
    }
    let mut setting = setting("favorita_many_warehouses")?;
    if n_warehouses == 3 {
        return Ok(setting);
    }
    let (lead_times, holding, edge) = favorita_warehouses(n_warehouses);
    let list = |values: Vec<String>| format!("[{}]", values.join(", "));
    let adjacency = list(
        (0..n_warehouses)
            .map(|w| {
                list(
                    lead_times
                        .iter()
                        .map(|row| u8::from(row[w] > 0).to_string())
                        .collect(),
                )
            })
            .collect(),
    );
    let store_lead_times = list(
        lead_times
            .iter()
            .map(|row| list(row.iter().map(|l| l.to_string()).collect()))
            .collect(),
    );
    let numbers = |v: Vec<f64>| list(v.iter().map(|x| format!("{x:.1}")).collect());
    setting.apply_overrides([
        format!("network.n_warehouses={n_warehouses}"),
        format!("network.adjacency={adjacency}"),
        format!("stores.lead_time={store_lead_times}"),
        format!("warehouses.holding_cost={}", numbers(holding)),
        format!("warehouses.edge_cost={}", numbers(edge)),
    ])?;
    setting.name = format!("favorita_many_warehouses_{n_warehouses}");
    setting.description = format!(
        "Favorita weekly sales of 288 products at 21 stores, {n_warehouses} warehouses (the \
         reference's three, extended by store shifts: docs/simulator.md); lost sales, profit; \
         h ~ U[0.7, 1.3], p ~ U[6.3, 11.7] per store"
    );
    Ok(setting)
}

/// The serial chain with `n_locations` ∈ 3..=7 locations (store, warehouse and
/// `n_locations − 2` extra echelons with lead times `[2, 4, 1, 3, 2]` and holding costs
/// `[0.1, 0.2, 0.25, 0.3, 0.4]`, truncated).
pub fn serial_system(n_locations: usize) -> Result<Setting, ConfigError> {
    if !(3..=7).contains(&n_locations) {
        return Err(ConfigError::Invalid {
            field: "n_locations".to_string(),
            message: format!("is {n_locations}; allowed for serial_system: 3 to 7"),
        });
    }
    let mut setting = setting("serial_system")?;
    let n_echelons = n_locations - 2;
    setting.echelons = Some(EchelonParams {
        holding_cost: SERIAL_ECHELON_HOLDING_COSTS[..n_echelons].to_vec(),
        lead_time: SERIAL_ECHELON_LEAD_TIMES[..n_echelons].to_vec(),
        pipeline_length: None,
    });
    if n_locations != 4 {
        setting.name = format!("serial_system_{n_locations}");
        setting.description = format!(
            "Serial chain supplier -> echelons -> warehouse -> store, backlogged; N(5, 2) \
             clipped; {n_locations} locations"
        );
    }
    setting.validate()?;
    Ok(setting)
}

/// The many-warehouse networks of the paper's v3 study, `(warehouses, stores)`.
pub const MANY_WAREHOUSE_SIZES: [(usize, usize); 5] = [(2, 10), (3, 20), (4, 30), (5, 40), (6, 50)];

/// A many-warehouse network with `n_warehouses` warehouses and `n_stores` stores, one of
/// [`MANY_WAREHOUSE_SIZES`]. `(2, 10)` is the embedded `many_warehouses_lost` (the reference's
/// adjacency). The larger ones follow the paper's description (warehouse holding costs 0.3, 0.4, …;
/// edge costs 0.5, 1.5, …; warehouse lead time 3; store-to-warehouse lead times 1–6) with an
/// adjacency table of ours, generated by [`many_warehouse_adjacency`] and listed in
/// `docs/simulator.md`; store costs and demand are the reference's first `n_stores` stores.
pub fn many_warehouses(n_warehouses: usize, n_stores: usize) -> Result<Setting, ConfigError> {
    if !MANY_WAREHOUSE_SIZES.contains(&(n_warehouses, n_stores)) {
        return Err(ConfigError::Invalid {
            field: "many_warehouses_lost size".to_string(),
            message: format!(
                "is {n_warehouses}x{n_stores}; allowed: 2x10, 3x20, 4x30, 5x40, 6x50 (warehouses x stores)"
            ),
        });
    }
    let mut setting = setting("many_warehouses_lost")?;
    if n_warehouses == 2 {
        return Ok(setting);
    }
    let lead_times = many_warehouse_adjacency(n_warehouses, n_stores);
    let list = |values: Vec<String>| format!("[{}]", values.join(", "));
    let adjacency = list(
        (0..n_warehouses)
            .map(|w| {
                list(
                    lead_times
                        .iter()
                        .map(|row| u8::from(row[w] > 0).to_string())
                        .collect(),
                )
            })
            .collect(),
    );
    let store_lead_times = list(
        lead_times
            .iter()
            .map(|row| list(row.iter().map(|l| l.to_string()).collect()))
            .collect(),
    );
    let per_warehouse = |first: f64, step: f64| {
        list(
            (0..n_warehouses)
                .map(|w| format!("{:.1}", first + step * w as f64))
                .collect(),
        )
    };
    setting.apply_overrides([
        format!("network.n_warehouses={n_warehouses}"),
        format!("network.n_stores={n_stores}"),
        format!("network.adjacency={adjacency}"),
        format!("stores.lead_time={store_lead_times}"),
        format!("warehouses.holding_cost={}", per_warehouse(0.3, 0.1)),
        format!("warehouses.edge_cost={}", per_warehouse(0.5, 1.0)),
    ])?;
    setting.name = format!("many_warehouses_lost_{n_warehouses}x{n_stores}");
    setting.description = format!(
        "{n_warehouses} warehouses, {n_stores} stores, generated adjacency with store lead times \
         1-6, warehouse holding 0.3 + 0.1 w, edge cost 0.5 + w, lead time 3, lost sales; \
         reference per-store parameters"
    );
    Ok(setting)
}

/// The store-to-warehouse lead times of a generated many-warehouse network, `S × W` (0 = no
/// edge): store `s` is served by warehouse `s mod W` and, with probability 1/2, by one other
/// warehouse; each edge's lead time is uniform on 1–6. Drawn from a fixed-seed PCG stream, so
/// the table is the same on every machine.
pub fn many_warehouse_adjacency(n_warehouses: usize, n_stores: usize) -> Vec<Vec<u32>> {
    use rand::{RngExt, SeedableRng};
    let mut rng =
        rand_pcg::Pcg64Mcg::seed_from_u64(0x5eed_0000 + (n_warehouses * 1000 + n_stores) as u64);
    (0..n_stores)
        .map(|s| {
            let mut row = vec![0u32; n_warehouses];
            row[s % n_warehouses] = rng.random_range(1..=6);
            if rng.random_bool(0.5) {
                let other = (s % n_warehouses + rng.random_range(1..n_warehouses)) % n_warehouses;
                row[other] = rng.random_range(1..=6);
            }
            row
        })
        .collect()
}
