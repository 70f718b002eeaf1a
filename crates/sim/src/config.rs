//! Problem settings: what network is simulated, with which costs, lead times and demand, over
//! which dataset sizes and seeds. A [`Setting`] is plain serde data read from TOML
//! ([`Setting::from_toml_str`], [`Setting::from_file`]), changed with dotted `key=value`
//! overrides ([`Setting::apply_override`]) and checked by [`Setting::validate`], which names the
//! offending field and the allowed values. [`Setting::instance`] resolves it into concrete
//! per-store parameters (an [`Instance`]) — including "the reference instance", the first `S`
//! entries of `data/instances/multi_store_parameters.json`, embedded at compile time.
//!
//! The full schema is documented in `docs/simulator.md`.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::OnceLock;

use rand::RngExt;
use rand_pcg::Pcg64;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use crate::rng::parameter_rng;

/// Per-store parameters of the reference's multi-store instances (50 stores).
const REFERENCE_PARAMETERS_JSON: &str =
    include_str!("../../../data/instances/multi_store_parameters.json");

/// Number of stores in the embedded reference instance.
pub const REFERENCE_MAX_STORES: usize = 50;

/// Size limits, checked by [`Setting::validate`] before anything is allocated: past them a setting
/// is refused with the field and the allowed range (within them, the trainer still estimates the
/// memory and time a run needs before it starts).
pub mod limits {
    /// Largest number of stores `S`.
    pub const MAX_STORES: usize = 100_000;
    /// Largest number of stores with correlated normal demand: the draw keeps an `S × S` Cholesky
    /// factor (16 · S² bytes while it is computed) and computing it takes `S³ / 3` operations.
    pub const MAX_CORRELATED_STORES: usize = 10_000;
    /// Largest number of warehouses `W`.
    pub const MAX_WAREHOUSES: usize = 1_000;
    /// Largest number of extra echelons `E`.
    pub const MAX_ECHELONS: usize = 100;
    /// Largest lead time, pipeline length, `inventory_periods` and `past_demands` (periods).
    pub const MAX_LEAD_TIME: usize = 1_000;
    /// Largest number of samples of a split.
    pub const MAX_SAMPLES: usize = 100_000_000;
    /// Largest number of periods of a split.
    pub const MAX_PERIODS: usize = 1_000_000;
}

use limits::*;

/// Setting-level shortcut keys accepted by [`Setting::apply_override`] and the full keys they stand for.
pub const OVERRIDE_SHORTCUTS: &[(&str, &str)] = &[
    ("n_stores", "network.n_stores"),
    ("lead_time", "stores.lead_time"),
    ("holding_cost", "stores.holding_cost"),
    ("underage_cost", "stores.underage_cost"),
    ("correlation", "demand.correlation"),
];

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Everything that can be wrong with a setting. Never a panic.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The setting file could not be read.
    #[error("cannot read setting file `{path}`: {source}")]
    Io {
        /// The path that was read.
        path: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not TOML, or a key/type does not match the schema.
    #[error("setting does not parse: {0}")]
    Parse(String),
    /// A field has a value outside its allowed set.
    #[error("`{field}`: {message}")]
    Invalid {
        /// Dotted path of the field, e.g. `stores.lead_time`.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A `key=value` override could not be applied.
    #[error("override `{key}`: {message}")]
    Override {
        /// The key as given.
        key: String,
        /// What is wrong (lists the valid keys when the key is unknown).
        message: String,
    },
    /// No embedded setting has this name.
    #[error("unknown setting `{name}`; valid names: {valid}")]
    UnknownSetting {
        /// The name asked for.
        name: String,
        /// Comma-separated valid names.
        valid: String,
    },
}

impl ConfigError {
    /// The dotted field name for [`ConfigError::Invalid`], if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Small enums
// ---------------------------------------------------------------------------------------------

/// What happens to demand a store cannot serve from on-hand stock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmetDemand {
    /// Unmet demand vanishes; `p` is charged once per lost unit.
    Lost,
    /// Unmet demand is carried as negative on-hand; `p` is charged every period it persists.
    Backlogged,
}

/// What the per-period "cost" measures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// `p·shortage + h·leftover` (lower is better).
    #[default]
    Cost,
    /// `−p·sales + h·leftover`: `p` is a unit margin, the cost is a negative profit.
    Profit,
}

/// Family of the demand distribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DemandDistribution {
    /// Independent Poisson per store and period (integer demand).
    Poisson,
    /// Normal per store and period; with several stores multivariate normal with a common
    /// pairwise correlation (drawn through the Cholesky factor of the covariance).
    Normal,
}

/// Whether a sampled parameter is drawn once per store (shared by all samples) or once per sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleLevel {
    /// One draw per store; every sample sees the same value (the reference's `sample_across_stores`).
    PerStore,
    /// One draw per sample, shared by the stores of that sample (`vary_across_samples`).
    PerSample,
}

/// How store pipelines start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialInventoryRule {
    /// Every pipeline slot of store `s` is `U(range_mult)·mean_s`, independently.
    #[default]
    UniformMean,
    /// All store pipelines start empty.
    Zero,
}

/// Static per-store features a policy may observe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaticFeature {
    /// Store holding cost.
    HoldingCost,
    /// Store underage cost (or margin in profit mode).
    UnderageCost,
    /// Store lead times per source.
    LeadTime,
    /// Mean of the store's demand distribution.
    Mean,
    /// Standard deviation of the store's demand distribution.
    Std,
}

/// A dataset split; each has its own sizes and its own seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Training samples.
    Train,
    /// Development samples (model selection).
    Dev,
    /// Test samples (final report).
    Test,
}

impl Split {
    /// All splits in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Dev, Split::Test];

    /// Lower-case name (`train`, `dev`, `test`).
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Split, ConfigError> {
        match s {
            "train" => Ok(Split::Train),
            "dev" => Ok(Split::Dev),
            "test" => Ok(Split::Test),
            other => Err(invalid(
                "split",
                format!("`{other}` is not a split; allowed: train, dev, test"),
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parameter sources
// ---------------------------------------------------------------------------------------------

/// How a per-store quantity (cost, lead time, demand mean/std) is obtained.
///
/// TOML forms: a number (`4`), a list with one number per store (`[2, 3, 2]`), a per-edge
/// matrix with one row per store and one column per source (`[[0, 2], [6, 1]]`, store lead times
/// only), the string `"reference"` (first `S` entries of the reference instance), or a table
/// `{ sample = "per_store" | "per_sample", range = [low, high], seed = 7 }`.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamSource {
    /// The same value for every store and sample.
    Constant(f64),
    /// One value per store (length `S`), shared by all samples.
    PerStore(Vec<f64>),
    /// One value per (store, source): `S` rows × `W'` columns. Store lead times only; `0` marks
    /// a non-edge.
    PerEdge(Vec<Vec<f64>>),
    /// Drawn uniformly from a range, per store or per sample.
    Sampled(SampledRange),
    /// The reference instance's value for each store (first `S` of 50).
    Reference,
}

/// A uniformly sampled parameter. Costs/means: `U[low, high)`. Lead times: an integer uniform on
/// `{low, …, high − 1}` (half-open like numpy's `randint`, so `[2, 4]` gives 2 or 3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampledRange {
    /// Per store (shared by samples) or per sample (shared by the sample's stores).
    pub sample: SampleLevel,
    /// `[low, high]`.
    pub range: [f64; 2],
    /// Seed of the draws; default: `seeds.parameters` for per-store draws, the split seed for
    /// per-sample draws (mixed with the parameter's name in both cases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

const PARAM_SOURCE_EXPECTING: &str = "a number, a list with one number per store, a per-edge matrix \
     [[..], ..] (store lead times only), \"reference\", or a table { sample = \"per_store\" | \
     \"per_sample\", range = [low, high], seed = n }";

/// A number that prints as an integer when it is one (`3`, not `3.0`).
struct Number(f64);

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.fract() == 0.0 && v.abs() < 9.0e15 {
            serializer.serialize_i64(v as i64)
        } else {
            serializer.serialize_f64(v)
        }
    }
}

/// Serialises a list of numbers with [`Number`].
fn serialize_numbers<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(values.len()))?;
    for &v in values {
        seq.serialize_element(&Number(v))?;
    }
    seq.end()
}

impl Serialize for ParamSource {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ParamSource::Constant(v) => Number(*v).serialize(serializer),
            ParamSource::PerStore(values) => serialize_numbers(values, serializer),
            ParamSource::PerEdge(rows) => {
                let rows: Vec<Vec<Number>> = rows
                    .iter()
                    .map(|row| row.iter().map(|&v| Number(v)).collect())
                    .collect();
                rows.serialize(serializer)
            }
            ParamSource::Sampled(range) => range.serialize(serializer),
            ParamSource::Reference => serializer.serialize_str("reference"),
        }
    }
}

/// A list element of a [`ParamSource`]: a number (per-store list) or a row (per-edge matrix).
enum NumberOrRow {
    Number(f64),
    Row(Vec<f64>),
}

impl<'de> Deserialize<'de> for NumberOrRow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NumberOrRow;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a list of numbers")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumberOrRow, E> {
                Ok(NumberOrRow::Number(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumberOrRow, E> {
                Ok(NumberOrRow::Number(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumberOrRow, E> {
                Ok(NumberOrRow::Number(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NumberOrRow, A::Error> {
                let mut row = Vec::new();
                while let Some(x) = seq.next_element::<f64>()? {
                    row.push(x);
                }
                Ok(NumberOrRow::Row(row))
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ParamSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ParamSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(PARAM_SOURCE_EXPECTING)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ParamSource, E> {
                Ok(ParamSource::Constant(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ParamSource, E> {
                Ok(ParamSource::Constant(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ParamSource, E> {
                Ok(ParamSource::Constant(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ParamSource, E> {
                if v == "reference" {
                    Ok(ParamSource::Reference)
                } else {
                    Err(E::invalid_value(Unexpected::Str(v), &self))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ParamSource, A::Error> {
                let mut numbers = Vec::new();
                let mut rows = Vec::new();
                while let Some(item) = seq.next_element::<NumberOrRow>()? {
                    match item {
                        NumberOrRow::Number(x) => numbers.push(x),
                        NumberOrRow::Row(r) => rows.push(r),
                    }
                }
                match (numbers.is_empty(), rows.is_empty()) {
                    (false, true) => Ok(ParamSource::PerStore(numbers)),
                    (true, false) => Ok(ParamSource::PerEdge(rows)),
                    (true, true) => Ok(ParamSource::PerStore(Vec::new())),
                    (false, false) => Err(de::Error::custom(
                        "a list mixes numbers and lists; use either one number per store or \
                         one row per store",
                    )),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ParamSource, A::Error> {
                SampledRange::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(ParamSource::Sampled)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A per-node quantity of warehouses: one number for all, or one per warehouse.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeValues {
    /// The same value for every node.
    All(f64),
    /// One value per node.
    Each(Vec<f64>),
}

impl NodeValues {
    /// The values for `n` nodes, or a message if a list has the wrong length.
    fn expand(&self, n: usize) -> Result<Vec<f64>, String> {
        match self {
            NodeValues::All(v) => Ok(vec![*v; n]),
            NodeValues::Each(values) if values.len() == n => Ok(values.clone()),
            NodeValues::Each(values) => Err(format!(
                "the list has {} entries but network.n_warehouses = {n}; give one number for \
                 all warehouses or one per warehouse",
                values.len()
            )),
        }
    }
}

impl Serialize for NodeValues {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            NodeValues::All(v) => Number(*v).serialize(serializer),
            NodeValues::Each(values) => serialize_numbers(values, serializer),
        }
    }
}

impl<'de> Deserialize<'de> for NodeValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NodeValues;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number (all warehouses) or a list with one number per warehouse")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeValues, E> {
                Ok(NodeValues::All(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeValues, E> {
                Ok(NodeValues::All(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeValues, E> {
                Ok(NodeValues::All(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValues, A::Error> {
                let mut values = Vec::new();
                while let Some(x) = seq.next_element::<f64>()? {
                    values.push(x);
                }
                Ok(NodeValues::Each(values))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// Opens the note that [`Setting::apply_override`] appends to a description.
const OVERRIDE_NOTE: &str = " (overridden: ";

/// `description` with `pairs` added to its trailing "(overridden: k=v, …)" note, so that a
/// report never shows the embedded description ("L = 4, p = 9") of a setting whose parameters
/// were changed. A key given again replaces its earlier value in the note.
fn note_overrides(description: &str, pairs: &[(&str, &str)]) -> String {
    let (base, mut notes): (&str, Vec<String>) = match description.rfind(OVERRIDE_NOTE) {
        Some(i) if description.ends_with(')') => (
            &description[..i],
            description[i + OVERRIDE_NOTE.len()..description.len() - 1]
                .split(", ")
                .map(str::to_string)
                .collect(),
        ),
        _ => (description, Vec::new()),
    };
    for (key, value) in pairs {
        notes.retain(|n| n.split_once('=').map(|(k, _)| k) != Some(*key));
        notes.push(format!("{key}={value}"));
    }
    format!("{base}{OVERRIDE_NOTE}{})", notes.join(", "))
}

// ---------------------------------------------------------------------------------------------
// The setting
// ---------------------------------------------------------------------------------------------

/// A complete problem setting. See `docs/simulator.md` for every key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// Short identifier, e.g. `one_store_lost`.
    pub name: String,
    /// One-line human description.
    #[serde(default)]
    pub description: String,
    /// Lost sales or backlogging at the stores.
    pub unmet_demand: UnmetDemand,
    /// Cost minimisation (default) or profit maximisation (requires lost sales).
    #[serde(default)]
    pub objective: Objective,
    /// Warehouse upper bound multiplier: `U = upper_bound_mult × Σ_s mean_s` (used by policies
    /// that scale a sigmoid to an order size).
    #[serde(default = "default_upper_bound_mult")]
    pub upper_bound_mult: f64,
    /// Node counts and the warehouse→store adjacency.
    pub network: Network,
    /// Store costs, lead times and pipeline length.
    pub stores: StoreParams,
    /// Demand model.
    pub demand: DemandConfig,
    /// Warehouse parameters; required exactly when `network.n_warehouses > 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouses: Option<WarehouseParams>,
    /// Extra upstream echelons of a serial chain (echelon 0 is the most upstream); the number of
    /// echelons is the length of the lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echelons: Option<EchelonParams>,
    /// How store pipelines start.
    #[serde(default)]
    pub initial_inventory: InitialInventory,
    /// Dataset sizes per split.
    pub splits: Splits,
    /// Seeds per split (and for per-store sampled parameters).
    pub seeds: Seeds,
    /// What a policy may observe.
    #[serde(default)]
    pub observation: ObservationConfig,
}

fn default_upper_bound_mult() -> f64 {
    4.0
}

/// Node counts and topology.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Number of stores `S ≥ 1`.
    pub n_stores: usize,
    /// Number of warehouses `W ≥ 0`.
    #[serde(default)]
    pub n_warehouses: usize,
    /// `W × S` matrix of 0/1: warehouse `w` ships to store `s`. Required when `W > 1`; when
    /// `W = 1` it defaults to all ones; must be absent when `W = 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjacency: Option<Vec<Vec<u8>>>,
}

/// Store-level parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreParams {
    /// Holding cost `h ≥ 0` per unit left at the end of a period.
    pub holding_cost: ParamSource,
    /// Underage cost `p ≥ 0` per unit short (cost mode) or unit margin (profit mode).
    pub underage_cost: ParamSource,
    /// Lead time (integer ≥ 1) of shipments to the store; a per-edge matrix `S × W'` gives one
    /// per (store, source) with `0` on non-edges.
    pub lead_time: ParamSource,
    /// Pipeline length `Ls`; derived when absent (see [`Setting::pipeline_lengths`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_length: Option<usize>,
}

/// The demand model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemandConfig {
    /// `poisson` or `normal`.
    pub distribution: DemandDistribution,
    /// Mean per store (Poisson rate, or normal mean); must be > 0 for Poisson.
    pub mean: ParamSource,
    /// Standard deviation per store (normal only; give this or `coef_of_var`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<ParamSource>,
    /// Coefficient of variation per store: `std = mean × coef_of_var` (normal only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coef_of_var: Option<ParamSource>,
    /// Common pairwise correlation of the store demands in a period (normal, `S > 1`);
    /// must lie in `(−1/(S−1), 1)`.
    #[serde(default)]
    pub correlation: f64,
    /// Clip normal demand at 0 (`max(d, 0)`); default true.
    #[serde(default = "default_true")]
    pub clip: bool,
}

fn default_true() -> bool {
    true
}

/// Warehouse parameters (scalars apply to every warehouse, lists give one per warehouse).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseParams {
    /// Holding cost per unit on hand at the end of a period, ≥ 0.
    pub holding_cost: NodeValues,
    /// Lead time (integer ≥ 1) of the warehouse's orders.
    pub lead_time: NodeValues,
    /// Edge (procurement) cost per unit ordered, ≥ 0; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_cost: Option<NodeValues>,
    /// Pipeline length `Lw`; default `max(2, max lead time)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_length: Option<usize>,
}

/// Extra echelons of a serial chain, most upstream first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EchelonParams {
    /// Holding cost per echelon, ≥ 0.
    pub holding_cost: Vec<f64>,
    /// Lead time (integer ≥ 1) of each echelon's inbound orders.
    #[serde(serialize_with = "serialize_numbers")]
    pub lead_time: Vec<f64>,
    /// Pipeline length `Le`; default `max(2, max lead time)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_length: Option<usize>,
}

/// Initial store inventories (warehouses and echelons always start empty).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialInventory {
    /// `uniform_mean` (default) or `zero`.
    #[serde(default)]
    pub rule: InitialInventoryRule,
    /// `[low, high]` of the uniform multiplier, `0 ≤ low ≤ high`; default `[0, 1]`.
    #[serde(default = "default_range_mult")]
    pub range_mult: [f64; 2],
    /// Minimum store pipeline length (the reference's `inventory_periods`); default 2.
    #[serde(default = "default_inventory_periods")]
    pub inventory_periods: usize,
}

fn default_range_mult() -> [f64; 2] {
    [0.0, 1.0]
}

fn default_inventory_periods() -> usize {
    2
}

impl Default for InitialInventory {
    fn default() -> Self {
        InitialInventory {
            rule: InitialInventoryRule::UniformMean,
            range_mult: default_range_mult(),
            inventory_periods: default_inventory_periods(),
        }
    }
}

/// Sizes of one split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSizes {
    /// Number of samples (independent demand traces / initial states), ≥ 1.
    pub n_samples: usize,
    /// Samples per batch, `1 ≤ batch_size ≤ n_samples`.
    pub batch_size: usize,
    /// Periods simulated per sample, ≥ 1.
    pub periods: usize,
    /// Warm-up periods excluded from the reported cost, `< periods`.
    pub ignore_periods: usize,
}

/// Sizes of the three splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Splits {
    /// Training split.
    pub train: SplitSizes,
    /// Development split.
    pub dev: SplitSizes,
    /// Test split.
    pub test: SplitSizes,
}

/// Seeds. Each split has its own; `parameters` seeds the per-store sampled parameters, which are
/// shared by all splits (they define the instance).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seeds {
    /// Seed of the training split.
    pub train: u64,
    /// Seed of the development split.
    pub dev: u64,
    /// Seed of the test split.
    pub test: u64,
    /// Seed of per-store sampled parameters; default 0.
    #[serde(default)]
    pub parameters: u64,
}

/// What a policy may observe besides the pipelines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationConfig {
    /// Static per-store features the policy may see.
    #[serde(default)]
    pub static_features: Vec<StaticFeature>,
    /// Number of past demand periods shown (oldest first; zeros before period 0).
    #[serde(default)]
    pub past_demands: usize,
}

/// Pipeline lengths `(Ls, Lw, Le)`; `Lw`/`Le` are 0 when there are no warehouses/echelons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipelineLengths {
    /// Store pipeline length.
    pub store: usize,
    /// Warehouse pipeline length.
    pub warehouse: usize,
    /// Echelon pipeline length.
    pub echelon: usize,
}

// ---------------------------------------------------------------------------------------------
// Resolved instance
// ---------------------------------------------------------------------------------------------

/// A per-store quantity after resolution.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreValues {
    /// One value per store, shared by all samples.
    PerStore(Vec<f64>),
    /// Drawn per sample from `U[low, high)`, shared by the sample's stores; `stream` selects the
    /// per-sample random stream.
    PerSample {
        /// Lower end.
        low: f64,
        /// Upper end.
        high: f64,
        /// Seed mixed into the per-sample stream (`None` = the split seed).
        seed: Option<u64>,
    },
}

/// Store lead times after resolution.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreLeadTimes {
    /// `S × W'` matrix, `0` on non-edges, shared by all samples.
    PerEdge(Vec<Vec<u32>>),
    /// One lead time per sample, uniform on `{low, …, high−1}`, on every edge.
    PerSample {
        /// Smallest lead time.
        low: u32,
        /// One past the largest lead time.
        high: u32,
        /// Seed mixed into the per-sample stream (`None` = the split seed).
        seed: Option<u64>,
    },
}

/// A setting resolved into concrete numbers (everything but the per-sample random draws).
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Stores `S`.
    pub n_stores: usize,
    /// Warehouses `W`.
    pub n_warehouses: usize,
    /// Extra echelons `E`.
    pub n_echelons: usize,
    /// `W × S`: warehouse `w` ships to store `s`.
    pub adjacency: Vec<Vec<bool>>,
    /// Store holding costs.
    pub holding_cost: StoreValues,
    /// Store underage costs (margins in profit mode).
    pub underage_cost: StoreValues,
    /// Store lead times.
    pub lead_time: StoreLeadTimes,
    /// Demand distribution.
    pub distribution: DemandDistribution,
    /// Demand mean per store.
    pub mean: Vec<f64>,
    /// Demand standard deviation per store (`√mean` for Poisson).
    pub std: Vec<f64>,
    /// Pairwise demand correlation (normal, `S > 1`).
    pub correlation: f64,
    /// Clip normal demand at 0.
    pub clip: bool,
    /// Warehouse holding costs, length `W`.
    pub warehouse_holding_cost: Vec<f64>,
    /// Warehouse lead times, length `W`.
    pub warehouse_lead_time: Vec<u32>,
    /// Warehouse edge costs per unit ordered, length `W`.
    pub warehouse_edge_cost: Vec<f64>,
    /// Echelon holding costs, length `E`.
    pub echelon_holding_cost: Vec<f64>,
    /// Echelon lead times, length `E`.
    pub echelon_lead_time: Vec<u32>,
    /// Pipeline lengths.
    pub pipeline: PipelineLengths,
    /// Lost sales or backlog.
    pub unmet_demand: UnmetDemand,
    /// Cost or profit.
    pub objective: Objective,
    /// Initial inventory rule.
    pub initial_inventory: InitialInventory,
}

impl Instance {
    /// `W' = max(W, 1)`.
    pub fn n_sources(&self) -> usize {
        self.n_warehouses.max(1)
    }
}

// ---------------------------------------------------------------------------------------------
// Reference instance
// ---------------------------------------------------------------------------------------------

/// Per-store parameters of the reference's multi-store instances (first `S` entries = instance
/// with `S` stores).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ReferenceStores {
    /// Demand means (3 decimals).
    pub mean: Vec<f64>,
    /// Demand standard deviations (3 decimals).
    pub std: Vec<f64>,
    /// Underage costs.
    pub underage_cost: Vec<f64>,
    /// Holding costs.
    pub holding_cost: Vec<f64>,
    /// Lead times (periods).
    pub lead_time: Vec<f64>,
}

#[derive(Deserialize)]
struct ReferenceFile {
    stores_50: ReferenceStores,
}

/// The full 50-store reference parameter table, parsed once from the embedded JSON.
pub fn reference_stores() -> &'static ReferenceStores {
    static PARSED: OnceLock<ReferenceStores> = OnceLock::new();
    PARSED.get_or_init(|| {
        let file: ReferenceFile = serde_json::from_str(REFERENCE_PARAMETERS_JSON)
            .expect("embedded multi_store_parameters.json is valid (checked by a test)");
        file.stores_50
    })
}

// ---------------------------------------------------------------------------------------------
// Reading, overriding, validating
// ---------------------------------------------------------------------------------------------

impl Setting {
    /// Parses and validates a TOML setting.
    pub fn from_toml_str(text: &str) -> Result<Setting, ConfigError> {
        let setting: Setting =
            toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        setting.validate()?;
        Ok(setting)
    }

    /// Reads, parses and validates a TOML setting file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Setting, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Setting::from_toml_str(&text)
    }

    /// The setting as TOML text (round-trips through [`Setting::from_toml_str`]).
    pub fn to_toml_string(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|e| ConfigError::Parse(e.to_string()))
    }

    /// Applies one dotted override, e.g. `apply_override("stores.underage_cost", "19")`, then
    /// re-validates. The value is read as a TOML value (`19`, `0.5`, `[1, 2]`, `"reference"`,
    /// `{ sample = "per_store", range = [1, 2] }`); anything that is not TOML is taken as a
    /// string (so `unmet_demand=lost` works). Shortcut keys: see [`OVERRIDE_SHORTCUTS`]. On
    /// error the setting is unchanged.
    pub fn apply_override(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        self.apply_pairs(&[(key, value)])
    }

    /// Applies `key=value` overrides together (in order), then validates once — so
    /// `splits.test.n_samples=100` and `splits.test.batch_size=50` can be given in either order.
    /// On error the setting is unchanged.
    pub fn apply_overrides<I, T>(&mut self, overrides: I) -> Result<(), ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let items: Vec<String> = overrides
            .into_iter()
            .map(|item| item.as_ref().to_string())
            .collect();
        let mut pairs = Vec::with_capacity(items.len());
        for item in &items {
            let Some((key, value)) = item.split_once('=') else {
                return Err(ConfigError::Override {
                    key: item.clone(),
                    message: "expected `key=value`".to_string(),
                });
            };
            pairs.push((key.trim(), value.trim()));
        }
        self.apply_pairs(&pairs)
    }

    /// Sets every `(key, value)` in the TOML form of the setting, deserialises and validates.
    fn apply_pairs(&mut self, pairs: &[(&str, &str)]) -> Result<(), ConfigError> {
        let mut root = toml::Value::try_from(&*self).map_err(|e| ConfigError::Override {
            key: String::new(),
            message: format!("cannot serialise the setting: {e}"),
        })?;
        for &(key, value) in pairs {
            set_override(&mut root, key, value)?;
        }
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
        let updated: Setting = root.try_into().map_err(|e: toml::de::Error| {
            let mut message = e.message().trim().to_string();
            let top_level = pairs.iter().any(|(k, _)| !k.contains('.'));
            if top_level && message.contains("unknown field") {
                let shortcuts: Vec<&str> = OVERRIDE_SHORTCUTS.iter().map(|(s, _)| *s).collect();
                message.push_str(&format!(
                    " (top-level shortcut keys: {})",
                    shortcuts.join(", ")
                ));
            }
            ConfigError::Override {
                key: keys.join(", "),
                message,
            }
        })?;
        updated.validate()?;
        let description_overridden = pairs.iter().any(|(k, _)| *k == "description");
        *self = updated;
        if !description_overridden {
            self.description = note_overrides(&self.description, pairs);
        }
        Ok(())
    }

    /// Checks every field; the error names the field and the allowed values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.instance().map(|_| ())
    }

    /// Stores `S`.
    pub fn n_stores(&self) -> usize {
        self.network.n_stores
    }

    /// Warehouses `W`.
    pub fn n_warehouses(&self) -> usize {
        self.network.n_warehouses
    }

    /// Extra echelons `E` (length of the echelon lists).
    pub fn n_echelons(&self) -> usize {
        self.echelons.as_ref().map_or(0, |e| e.lead_time.len())
    }

    /// Sizes of a split.
    pub fn split(&self, split: Split) -> &SplitSizes {
        match split {
            Split::Train => &self.splits.train,
            Split::Dev => &self.splits.dev,
            Split::Test => &self.splits.test,
        }
    }

    /// Seed of a split.
    pub fn seed(&self, split: Split) -> u64 {
        match split {
            Split::Train => self.seeds.train,
            Split::Dev => self.seeds.dev,
            Split::Test => self.seeds.test,
        }
    }

    /// Whether demand is integer (Poisson), in which case evaluation rounds actions by default.
    pub fn discrete_demand(&self) -> bool {
        self.demand.distribution == DemandDistribution::Poisson
    }

    /// Pipeline lengths: explicit `pipeline_length`s, else store `max(inventory_periods, max
    /// store lead time, 2)`, warehouse `max(2, max warehouse lead time)`, echelon `max(2, max
    /// echelon lead time)` (0 when there is no such node).
    pub fn pipeline_lengths(&self) -> Result<PipelineLengths, ConfigError> {
        Ok(self.instance()?.pipeline)
    }

    /// Warehouse upper bound `U = upper_bound_mult × Σ_s mean_s`.
    pub fn warehouse_upper_bound(&self) -> Result<f64, ConfigError> {
        let instance = self.instance()?;
        Ok(self.upper_bound_mult * instance.mean.iter().sum::<f64>())
    }

    /// Validates the setting and resolves it into concrete per-store parameters.
    pub fn instance(&self) -> Result<Instance, ConfigError> {
        let s = self.network.n_stores;
        let w = self.network.n_warehouses;
        if s == 0 || s > MAX_STORES {
            return Err(invalid(
                "network.n_stores",
                format!("is {s}; allowed: an integer 1 … {MAX_STORES}"),
            ));
        }
        if w > MAX_WAREHOUSES {
            return Err(invalid(
                "network.n_warehouses",
                format!("is {w}; allowed: an integer 0 … {MAX_WAREHOUSES}"),
            ));
        }
        let n_echelons = self.n_echelons();
        if n_echelons > MAX_ECHELONS {
            return Err(invalid(
                "echelons.lead_time",
                format!(
                    "has {n_echelons} entries (one per extra echelon); allowed: 1 … {MAX_ECHELONS}"
                ),
            ));
        }
        // sizes first: everything below allocates in proportion to them
        self.check_split_sizes()?;
        let observation = &self.observation;
        if observation.past_demands > MAX_LEAD_TIME {
            return Err(invalid(
                "observation.past_demands",
                format!(
                    "is {}; allowed: an integer 0 … {MAX_LEAD_TIME}",
                    observation.past_demands
                ),
            ));
        }
        check_finite_positive("upper_bound_mult", self.upper_bound_mult, false)?;
        if self.objective == Objective::Profit && self.unmet_demand != UnmetDemand::Lost {
            return Err(invalid(
                "objective",
                "\"profit\" requires unmet_demand = \"lost\"; allowed with \"backlogged\": \"cost\"",
            ));
        }
        let adjacency = self.resolve_adjacency()?;

        // Stores.
        let holding_cost = self.resolve_store_values(
            "stores.holding_cost",
            &self.stores.holding_cost,
            |r| &r.holding_cost,
            true,
        )?;
        let underage_cost = self.resolve_store_values(
            "stores.underage_cost",
            &self.stores.underage_cost,
            |r| &r.underage_cost,
            true,
        )?;
        let lead_time = self.resolve_store_lead_times(&adjacency)?;
        let max_store_lead_time = match &lead_time {
            StoreLeadTimes::PerEdge(m) => m.iter().flatten().copied().max().unwrap_or(1),
            StoreLeadTimes::PerSample { high, .. } => high - 1,
        };

        // Demand.
        let (mean, std) = self.resolve_demand()?;

        // Warehouses.
        let (warehouse_holding_cost, warehouse_lead_time, warehouse_edge_cost) =
            match (&self.warehouses, w) {
                (None, 0) => (Vec::new(), Vec::new(), Vec::new()),
                (Some(_), 0) => {
                    return Err(invalid(
                        "warehouses",
                        "is given but network.n_warehouses = 0; remove the table or set \
                         network.n_warehouses ≥ 1",
                    ));
                }
                (None, _) => {
                    return Err(invalid(
                        "warehouses",
                        format!(
                            "is required when network.n_warehouses = {w} (keys: holding_cost, \
                             lead_time, edge_cost, pipeline_length)"
                        ),
                    ));
                }
                (Some(params), _) => {
                    let h = params
                        .holding_cost
                        .expand(w)
                        .map_err(|m| invalid("warehouses.holding_cost", m))?;
                    for &x in &h {
                        check_finite_positive("warehouses.holding_cost", x, true)?;
                    }
                    let lt = params
                        .lead_time
                        .expand(w)
                        .map_err(|m| invalid("warehouses.lead_time", m))?
                        .into_iter()
                        .map(|x| lead_time_value("warehouses.lead_time", x))
                        .collect::<Result<Vec<u32>, _>>()?;
                    let edge = match &params.edge_cost {
                        None => vec![0.0; w],
                        Some(values) => values
                            .expand(w)
                            .map_err(|m| invalid("warehouses.edge_cost", m))?,
                    };
                    for &x in &edge {
                        check_finite_positive("warehouses.edge_cost", x, true)?;
                    }
                    (h, lt, edge)
                }
            };

        // Echelons.
        let (echelon_holding_cost, echelon_lead_time) = match &self.echelons {
            None => (Vec::new(), Vec::new()),
            Some(params) => {
                if params.lead_time.is_empty() {
                    return Err(invalid(
                        "echelons.lead_time",
                        "is empty; give one lead time per extra echelon or remove the table",
                    ));
                }
                if params.holding_cost.len() != params.lead_time.len() {
                    return Err(invalid(
                        "echelons.holding_cost",
                        format!(
                            "has {} entries but echelons.lead_time has {}; give one per echelon",
                            params.holding_cost.len(),
                            params.lead_time.len()
                        ),
                    ));
                }
                if w == 0 {
                    return Err(invalid(
                        "echelons",
                        "extra echelons feed a warehouse; set network.n_warehouses ≥ 1",
                    ));
                }
                for &x in &params.holding_cost {
                    check_finite_positive("echelons.holding_cost", x, true)?;
                }
                let lt = params
                    .lead_time
                    .iter()
                    .map(|&x| lead_time_value("echelons.lead_time", x))
                    .collect::<Result<Vec<u32>, _>>()?;
                (params.holding_cost.clone(), lt)
            }
        };
        let e = echelon_lead_time.len();

        // Initial inventory.
        let init = &self.initial_inventory;
        let [lo, hi] = init.range_mult;
        if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
            return Err(invalid(
                "initial_inventory.range_mult",
                format!("is [{lo}, {hi}]; allowed: [low, high] with 0 ≤ low ≤ high"),
            ));
        }
        if init.inventory_periods == 0 || init.inventory_periods > MAX_LEAD_TIME {
            return Err(invalid(
                "initial_inventory.inventory_periods",
                format!(
                    "is {}; allowed: an integer 1 … {MAX_LEAD_TIME}",
                    init.inventory_periods
                ),
            ));
        }

        // Pipelines.
        let store_pipeline = pipeline_length(
            "stores.pipeline_length",
            self.stores.pipeline_length,
            init.inventory_periods
                .max(max_store_lead_time as usize)
                .max(2),
            max_store_lead_time,
        )?;
        let warehouse_pipeline = match &self.warehouses {
            Some(p) if w > 0 => {
                let max_lt = warehouse_lead_time.iter().copied().max().unwrap_or(1);
                pipeline_length(
                    "warehouses.pipeline_length",
                    p.pipeline_length,
                    (max_lt as usize).max(2),
                    max_lt,
                )?
            }
            _ => 0,
        };
        let echelon_pipeline = match &self.echelons {
            Some(p) => {
                let max_lt = echelon_lead_time.iter().copied().max().unwrap_or(1);
                pipeline_length(
                    "echelons.pipeline_length",
                    p.pipeline_length,
                    (max_lt as usize).max(2),
                    max_lt,
                )?
            }
            None => 0,
        };

        Ok(Instance {
            n_stores: s,
            n_warehouses: w,
            n_echelons: e,
            adjacency,
            holding_cost,
            underage_cost,
            lead_time,
            distribution: self.demand.distribution,
            mean,
            std,
            correlation: self.demand.correlation,
            clip: self.demand.clip,
            warehouse_holding_cost,
            warehouse_lead_time,
            warehouse_edge_cost,
            echelon_holding_cost,
            echelon_lead_time,
            pipeline: PipelineLengths {
                store: store_pipeline,
                warehouse: warehouse_pipeline,
                echelon: echelon_pipeline,
            },
            unmet_demand: self.unmet_demand,
            objective: self.objective,
            initial_inventory: self.initial_inventory.clone(),
        })
    }

    /// Sizes of the three splits: counts ≥ 1 and within [`limits`], `batch_size ≤ n_samples`,
    /// `ignore_periods < periods`.
    fn check_split_sizes(&self) -> Result<(), ConfigError> {
        for split in Split::ALL {
            let sizes = self.split(split);
            let field = |k: &str| format!("splits.{split}.{k}");
            if sizes.n_samples == 0 || sizes.n_samples > MAX_SAMPLES {
                return Err(invalid(
                    field("n_samples"),
                    format!(
                        "is {}; allowed: an integer 1 … {MAX_SAMPLES}",
                        sizes.n_samples
                    ),
                ));
            }
            if sizes.batch_size == 0 || sizes.batch_size > sizes.n_samples {
                return Err(invalid(
                    field("batch_size"),
                    format!(
                        "is {}; allowed: 1 ≤ batch_size ≤ n_samples = {}",
                        sizes.batch_size, sizes.n_samples
                    ),
                ));
            }
            if sizes.periods == 0 || sizes.periods > MAX_PERIODS {
                return Err(invalid(
                    field("periods"),
                    format!(
                        "is {}; allowed: an integer 1 … {MAX_PERIODS}",
                        sizes.periods
                    ),
                ));
            }
            if sizes.ignore_periods >= sizes.periods {
                return Err(invalid(
                    field("ignore_periods"),
                    format!(
                        "is {}; allowed: 0 ≤ ignore_periods < periods = {}",
                        sizes.ignore_periods, sizes.periods
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `W × S` adjacency as booleans, validated.
    fn resolve_adjacency(&self) -> Result<Vec<Vec<bool>>, ConfigError> {
        let s = self.network.n_stores;
        let w = self.network.n_warehouses;
        let field = "network.adjacency";
        let Some(matrix) = &self.network.adjacency else {
            return match w {
                0 => Ok(Vec::new()),
                1 => Ok(vec![vec![true; s]]),
                _ => Err(invalid(
                    field,
                    format!(
                        "is required when network.n_warehouses = {w} > 1: a {w} × {s} matrix of 0/1"
                    ),
                )),
            };
        };
        if w == 0 {
            return Err(invalid(
                field,
                "is given but network.n_warehouses = 0; remove it",
            ));
        }
        if matrix.len() != w || matrix.iter().any(|row| row.len() != s) {
            let shape: Vec<usize> = matrix.iter().map(Vec::len).collect();
            return Err(invalid(
                field,
                format!(
                    "must be W × S = {w} × {s} (one row per warehouse, one column per store); \
                     got {} rows with lengths {shape:?}",
                    matrix.len()
                ),
            ));
        }
        let mut out = vec![vec![false; s]; w];
        for (wi, row) in matrix.iter().enumerate() {
            for (si, &x) in row.iter().enumerate() {
                match x {
                    0 => {}
                    1 => out[wi][si] = true,
                    other => {
                        return Err(invalid(
                            format!("{field}[{wi}][{si}]"),
                            format!("is {other}; allowed: 0 or 1"),
                        ));
                    }
                }
            }
        }
        for si in 0..s {
            if !out.iter().any(|row| row[si]) {
                return Err(invalid(
                    field,
                    format!("store {si} has no warehouse; every store needs at least one source"),
                ));
            }
        }
        Ok(out)
    }

    /// Resolves a per-store cost or demand quantity.
    fn resolve_store_values(
        &self,
        field: &str,
        source: &ParamSource,
        reference: fn(&ReferenceStores) -> &Vec<f64>,
        allow_per_sample: bool,
    ) -> Result<StoreValues, ConfigError> {
        let s = self.network.n_stores;
        let values = match source {
            ParamSource::Constant(v) => vec![*v; s],
            ParamSource::PerStore(values) => {
                if values.len() != s {
                    return Err(invalid(
                        field,
                        format!(
                            "the list has {} entries but network.n_stores = {s}; give one per store",
                            values.len()
                        ),
                    ));
                }
                values.clone()
            }
            ParamSource::PerEdge(_) => {
                return Err(invalid(
                    field,
                    "a per-edge matrix is only allowed for stores.lead_time; allowed here: a \
                     number, a list with one number per store, \"reference\" or a sampled range",
                ));
            }
            ParamSource::Reference => reference_prefix(field, s, reference)?,
            ParamSource::Sampled(range) => {
                let [low, high] = range.range;
                if !(low.is_finite() && high.is_finite() && 0.0 <= low && low <= high) {
                    return Err(invalid(
                        format!("{field}.range"),
                        format!("is [{low}, {high}]; allowed: [low, high] with 0 ≤ low ≤ high"),
                    ));
                }
                match range.sample {
                    SampleLevel::PerSample if !allow_per_sample => {
                        return Err(invalid(
                            format!("{field}.sample"),
                            "\"per_sample\" is not supported for demand parameters; allowed: \
                             \"per_store\"",
                        ));
                    }
                    SampleLevel::PerSample => {
                        return Ok(StoreValues::PerSample {
                            low,
                            high,
                            seed: range.seed,
                        });
                    }
                    SampleLevel::PerStore => {
                        let mut rng =
                            parameter_rng(range.seed.unwrap_or(self.seeds.parameters), field);
                        (0..s).map(|_| uniform(&mut rng, low, high)).collect()
                    }
                }
            }
        };
        for &x in &values {
            check_finite_positive(field, x, true)?;
        }
        Ok(StoreValues::PerStore(values))
    }

    /// Resolves store lead times into a per-edge matrix or a per-sample range.
    fn resolve_store_lead_times(
        &self,
        adjacency: &[Vec<bool>],
    ) -> Result<StoreLeadTimes, ConfigError> {
        let field = "stores.lead_time";
        let s = self.network.n_stores;
        let w = self.network.n_warehouses;
        let sources = w.max(1);
        let is_edge = |si: usize, wi: usize| w == 0 || adjacency[wi][si];
        let per_store: Vec<u32> = match &self.stores.lead_time {
            ParamSource::PerEdge(rows) => {
                if rows.len() != s || rows.iter().any(|r| r.len() != sources) {
                    let shape: Vec<usize> = rows.iter().map(Vec::len).collect();
                    return Err(invalid(
                        field,
                        format!(
                            "a per-edge matrix must be S × max(W, 1) = {s} × {sources} (one row \
                             per store, one column per source); got {} rows with lengths {shape:?}",
                            rows.len()
                        ),
                    ));
                }
                let mut matrix = vec![vec![0u32; sources]; s];
                for (si, row) in rows.iter().enumerate() {
                    for (wi, &x) in row.iter().enumerate() {
                        let cell = format!("{field}[{si}][{wi}]");
                        if is_edge(si, wi) {
                            matrix[si][wi] = lead_time_value(&cell, x).map_err(|_| {
                                invalid(
                                    &cell,
                                    format!(
                                        "is {x} but warehouse {wi} ships to store {si}; allowed: \
                                         an integer ≥ 1 on every edge"
                                    ),
                                )
                            })?;
                        } else if x != 0.0 {
                            return Err(invalid(
                                &cell,
                                format!(
                                    "is {x} but warehouse {wi} does not ship to store {si} \
                                     (network.adjacency); allowed: 0 on non-edges"
                                ),
                            ));
                        }
                    }
                }
                return Ok(StoreLeadTimes::PerEdge(matrix));
            }
            ParamSource::Constant(x) => vec![lead_time_value(field, *x)?; s],
            ParamSource::PerStore(values) => {
                if values.len() != s {
                    return Err(invalid(
                        field,
                        format!(
                            "the list has {} entries but network.n_stores = {s}; give one per store",
                            values.len()
                        ),
                    ));
                }
                values
                    .iter()
                    .map(|&x| lead_time_value(field, x))
                    .collect::<Result<_, _>>()?
            }
            ParamSource::Reference => reference_prefix(field, s, |r| &r.lead_time)?
                .into_iter()
                .map(|x| lead_time_value(field, x))
                .collect::<Result<_, _>>()?,
            ParamSource::Sampled(range) => {
                let [low, high] = range.range;
                let ok = low.fract() == 0.0 && high.fract() == 0.0 && low >= 1.0 && high > low;
                if !ok || high > (MAX_LEAD_TIME + 1) as f64 {
                    return Err(invalid(
                        format!("{field}.range"),
                        format!(
                            "is [{low}, {high}]; allowed: integers [low, high] with 1 ≤ low < \
                             high ≤ {} (lead times are drawn from low, …, high − 1)",
                            MAX_LEAD_TIME + 1
                        ),
                    ));
                }
                let (low, high) = (low as u32, high as u32);
                match range.sample {
                    SampleLevel::PerSample => {
                        return Ok(StoreLeadTimes::PerSample {
                            low,
                            high,
                            seed: range.seed,
                        });
                    }
                    SampleLevel::PerStore => {
                        let mut rng =
                            parameter_rng(range.seed.unwrap_or(self.seeds.parameters), field);
                        (0..s).map(|_| rng.random_range(low..high)).collect()
                    }
                }
            }
        };
        let matrix = (0..s)
            .map(|si| {
                (0..sources)
                    .map(|wi| if is_edge(si, wi) { per_store[si] } else { 0 })
                    .collect()
            })
            .collect();
        Ok(StoreLeadTimes::PerEdge(matrix))
    }

    /// Per-store demand means and standard deviations.
    fn resolve_demand(&self) -> Result<(Vec<f64>, Vec<f64>), ConfigError> {
        let s = self.network.n_stores;
        let demand = &self.demand;
        let StoreValues::PerStore(mean) =
            self.resolve_store_values("demand.mean", &demand.mean, |r| &r.mean, false)?
        else {
            unreachable!("per-sample demand parameters are rejected above")
        };
        let c = demand.correlation;
        match demand.distribution {
            DemandDistribution::Poisson => {
                if let Some(i) = mean.iter().position(|&m| m <= 0.0) {
                    return Err(invalid(
                        "demand.mean",
                        format!("store {i} has mean {}; allowed for Poisson: > 0", mean[i]),
                    ));
                }
                if c != 0.0 {
                    return Err(invalid(
                        "demand.correlation",
                        format!("is {c}; allowed for Poisson demand: 0 (independent stores)"),
                    ));
                }
                let std = mean.iter().map(|m| m.sqrt()).collect();
                Ok((mean, std))
            }
            DemandDistribution::Normal => {
                let std = match (&demand.std, &demand.coef_of_var) {
                    (Some(std), None) => {
                        let StoreValues::PerStore(std) =
                            self.resolve_store_values("demand.std", std, |r| &r.std, false)?
                        else {
                            unreachable!("per-sample demand parameters are rejected above")
                        };
                        std
                    }
                    (None, Some(cv)) => {
                        let StoreValues::PerStore(cv) =
                            self.resolve_store_values("demand.coef_of_var", cv, |_| &EMPTY, false)?
                        else {
                            unreachable!("per-sample demand parameters are rejected above")
                        };
                        mean.iter().zip(&cv).map(|(m, c)| m * c).collect()
                    }
                    (None, None) => {
                        return Err(invalid(
                            "demand.std",
                            "is required for normal demand (or give demand.coef_of_var)",
                        ));
                    }
                    (Some(_), Some(_)) => {
                        return Err(invalid(
                            "demand.coef_of_var",
                            "give either demand.std or demand.coef_of_var, not both",
                        ));
                    }
                };
                if let Some(i) = std.iter().position(|&x| x <= 0.0) {
                    return Err(invalid(
                        "demand.std",
                        format!("store {i} has std {}; allowed: > 0", std[i]),
                    ));
                }
                if c != 0.0 && s > MAX_CORRELATED_STORES {
                    return Err(invalid(
                        "demand.correlation",
                        format!(
                            "is {c} with network.n_stores = {s}; correlated demand is drawn \
                             through an S × S Cholesky factor ({:.1} GB to compute here); \
                             allowed: correlation = 0, or n_stores ≤ {MAX_CORRELATED_STORES}",
                            16.0 * (s as f64).powi(2) / 1e9
                        ),
                    ));
                }
                let lower = if s > 1 { -1.0 / (s as f64 - 1.0) } else { -1.0 };
                let ok = if s > 1 {
                    c > lower && c < 1.0
                } else {
                    (-1.0..=1.0).contains(&c)
                };
                if !ok {
                    return Err(invalid(
                        "demand.correlation",
                        format!(
                            "is {c}; allowed with {s} stores: {lower:.4} < correlation < 1 (the \
                             covariance must be positive definite)"
                        ),
                    ));
                }
                Ok((mean, std))
            }
        }
    }
}

static EMPTY: Vec<f64> = Vec::new();

/// The first `s` reference values of a quantity, or an error if there are fewer.
fn reference_prefix(
    field: &str,
    s: usize,
    quantity: fn(&ReferenceStores) -> &Vec<f64>,
) -> Result<Vec<f64>, ConfigError> {
    let values = quantity(reference_stores());
    if values.is_empty() {
        return Err(invalid(
            field,
            "\"reference\" is not available for this quantity; allowed: a number, a list or a \
             sampled range",
        ));
    }
    if s > values.len() {
        return Err(invalid(
            field,
            format!(
                "\"reference\" has {} stores but network.n_stores = {s}; allowed: n_stores ≤ {}",
                values.len(),
                values.len()
            ),
        ));
    }
    Ok(values[..s].to_vec())
}

/// A lead time: an integer `1 ≤ x ≤` [`MAX_LEAD_TIME`].
fn lead_time_value(field: &str, x: f64) -> Result<u32, ConfigError> {
    if x.fract() == 0.0 && x >= 1.0 && x <= MAX_LEAD_TIME as f64 {
        Ok(x as u32)
    } else {
        Err(invalid(
            field,
            format!("is {x}; allowed: an integer 1 … {MAX_LEAD_TIME} (periods)"),
        ))
    }
}

/// A non-negative (or strictly positive) finite number.
fn check_finite_positive(field: &str, x: f64, allow_zero: bool) -> Result<(), ConfigError> {
    let ok = x.is_finite() && if allow_zero { x >= 0.0 } else { x > 0.0 };
    if ok {
        Ok(())
    } else {
        let allowed = if allow_zero { "≥ 0" } else { "> 0" };
        Err(invalid(
            field,
            format!("is {x}; allowed: a finite number {allowed}"),
        ))
    }
}

/// An explicit pipeline length (checked) or the derived one.
fn pipeline_length(
    field: &str,
    explicit: Option<usize>,
    derived: usize,
    max_lead_time: u32,
) -> Result<usize, ConfigError> {
    match explicit {
        None => Ok(derived),
        Some(length)
            if length >= 2 && length >= max_lead_time as usize && length <= MAX_LEAD_TIME =>
        {
            Ok(length)
        }
        Some(length) => Err(invalid(
            field,
            format!(
                "is {length}; allowed: an integer ≥ 2, ≥ the largest lead time ({max_lead_time}) \
                 and ≤ {MAX_LEAD_TIME}"
            ),
        )),
    }
}

/// Sets `key` (dotted, or a shortcut) to `value` inside the TOML form of a setting, creating
/// missing tables on the way.
fn set_override(root: &mut toml::Value, key: &str, value: &str) -> Result<(), ConfigError> {
    let override_error = |message: String| ConfigError::Override {
        key: key.to_string(),
        message,
    };
    let full_key = OVERRIDE_SHORTCUTS
        .iter()
        .find(|(short, _)| *short == key)
        .map_or(key, |(_, full)| *full);
    let path: Vec<&str> = full_key.split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(override_error(
            "empty path component; write keys like `stores.lead_time`".to_string(),
        ));
    }
    let mut table = root;
    for (depth, component) in path.iter().enumerate() {
        let here = path[..depth].join(".");
        let map = match table {
            toml::Value::Table(map) => map,
            _ => {
                return Err(override_error(format!(
                    "`{here}` is a value, not a table; it has no key `{component}`"
                )));
            }
        };
        if depth + 1 == path.len() {
            map.insert((*component).to_string(), parse_override_value(value));
            break;
        }
        table = map
            .entry((*component).to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    Ok(())
}

/// Parses an override value as TOML, falling back to a plain string.
fn parse_override_value(value: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()))
}

/// `U[low, high)`.
fn uniform(rng: &mut Pcg64, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.random::<f64>()
}
