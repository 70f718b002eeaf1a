//! The schema of a setting: the serde data a TOML setting file deserialises into — [`Setting`] and
//! its tables, the small enums, the per-store and per-warehouse value forms ([`ParamSource`],
//! [`NodeValues`]) — with the defaults of omitted keys and the plain accessors. Every key is
//! documented in `docs/simulator.md`; the hand-written serde forms are in `parse.rs`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};
use crate::demand_data::{DataFormat, DataStores, NegativeDemand};

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
    /// Historical series read from a CSV file ([`DemandConfig::file`]); no randomness.
    Data,
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

/// How pipelines start (stores: [`InitialInventory::rule`]; warehouses and echelons:
/// [`InitialInventory::upstream`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialInventoryRule {
    /// Every pipeline slot of a location is `U(range_mult)·` the mean demand it serves (a store
    /// its own mean), independently.
    #[default]
    UniformMean,
    /// The pipelines start empty.
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
    pub(super) fn expand(&self, n: usize) -> Result<Vec<f64>, String> {
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
    /// How pipelines start (stores: [`InitialInventory::rule`]; warehouses and echelons:
    /// [`InitialInventory::upstream`]).
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
    /// `poisson`, `normal` or `data`.
    pub distribution: DemandDistribution,
    /// Mean per store (Poisson rate, or normal mean); must be > 0 for Poisson. Required for
    /// Poisson and normal demand; must be absent for data demand (the mean is the data's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<ParamSource>,
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
    /// The CSV file of data demand (required exactly for `distribution = "data"`). A relative
    /// path read by [`Setting::from_file`] is resolved against the setting file's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Layout of [`DemandConfig::file`] (required with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<DataFormat>,
    /// Data demand: the first `past_periods` periods of each split's `periods_range` are only
    /// observed (as past demands), not simulated; default 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub past_periods: usize,
    /// Data demand: what a negative cell means; default `error`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub negative: NegativeDemand,
    /// Data demand: which of the file's stores make the network's stores — `all` (default: the
    /// counts agree), `first` (the first `network.n_stores`), or `as_samples` (every (sample,
    /// store) series is a one-store sample).
    #[serde(default, skip_serializing_if = "is_default")]
    pub stores: DataStores,
    /// Data demand: per-period calendar features from a second CSV file, observed by the policies
    /// that read them (the data-driven net).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calendar: Option<CalendarConfig>,
}

/// Calendar features of data demand (`demand.calendar`): the named columns of a CSV file with a
/// `period` column (the demand file's periods); see [`crate::calendar`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// The CSV file; a relative path read by [`Setting::from_file`] is resolved against the
    /// setting file's directory.
    pub file: PathBuf,
    /// The feature columns (at least one, each once), e.g. `["days_from_christmas"]`.
    pub columns: Vec<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
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
    #[serde(serialize_with = "super::parse::serialize_numbers")]
    pub lead_time: Vec<f64>,
    /// Pipeline length `Le`; default `max(2, max lead time)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_length: Option<usize>,
}

/// Initial inventories: store pipelines by `rule`, warehouse and echelon pipelines by
/// `upstream` (empty by default, as in the reference).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialInventory {
    /// Store pipelines: `uniform_mean` (default) or `zero`.
    #[serde(default)]
    pub rule: InitialInventoryRule,
    /// Warehouse and echelon pipelines: `zero` (default: they start empty, as in the reference)
    /// or `uniform_mean` (every slot `U(range_mult) ·` the mean demand the location serves).
    /// (Not written when it is the default, so that the written form — and the fingerprint of
    /// every configuration that does not use it — is as before the key existed.)
    #[serde(
        default = "default_upstream_rule",
        skip_serializing_if = "is_default_upstream_rule"
    )]
    pub upstream: InitialInventoryRule,
    /// `[low, high]` of the uniform multiplier, `0 ≤ low ≤ high`; default `[0, 1]`.
    #[serde(default = "default_range_mult")]
    pub range_mult: [f64; 2],
    /// Minimum store pipeline length (the reference's `inventory_periods`); default 2.
    #[serde(default = "default_inventory_periods")]
    pub inventory_periods: usize,
}

fn default_upstream_rule() -> InitialInventoryRule {
    InitialInventoryRule::Zero
}

fn is_default_upstream_rule(rule: &InitialInventoryRule) -> bool {
    *rule == default_upstream_rule()
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
            upstream: default_upstream_rule(),
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
    /// Data demand only (required there): the file's periods `[start, end)` this split reads;
    /// the first `demand.past_periods` are observed only, the rest simulated, so
    /// `end − start = demand.past_periods + periods`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periods_range: Option<[usize; 2]>,
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

impl Setting {
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

    /// Periods of demand observed before period 0 of every split: `demand.past_periods` for
    /// data demand, 0 otherwise.
    pub fn history_periods(&self) -> usize {
        match self.demand.distribution {
            DemandDistribution::Data => self.demand.past_periods,
            _ => 0,
        }
    }
}
