//! `hdpo reproduce`: the paper's experiment grids, one training run per cell, each next to the
//! published number and our optimum / bound.
//!
//! An [`Experiment`] is a list of [`Cell`]s (setting, policy, overrides, training scenarios, the
//! published values of `crate::published`). [`run_experiment`] trains every cell
//! ([`TrainConfig::default_for`] + the cell's overrides + the [`Scale`]'s sizes + the caller's
//! overrides), tests it, and writes under `<out>/<experiment>/`:
//!
//! | file | content |
//! |---|---|
//! | `cells/<id>.json` | the record of a finished cell (resumability: a finished cell is not re-run) |
//! | `runs/<id>/` | the cell's `checkpoint.json` (a cell interrupted mid-training resumes from it), `metrics.csv`, `curve.svg` |
//! | `results.csv` | one row per cell |
//! | `results.md` | the tables: ours, the optimum / bound and the gap, the published numbers |
//! | `gaps.svg` | our gap and the published gap per cell |
//! | `sample_efficiency.svg` | per instance: test cost against training scenarios, ours and published, with the reference |
//!
//! A cell is skipped when its record exists, says "done", and was produced by the same resolved
//! configuration (a fingerprint of the configuration TOML is stored in the record; so changing the
//! scale or an override re-runs it). Policies that cannot be built (`PolicyError::Unsupported`,
//! unknown kinds) are recorded as "unavailable: \<reason\>"; any other error (a diverging cell, a
//! cell too large for the machine's memory) or a panic as "failed: \<reason\>"; both are retried
//! by the next run. A file that cannot be written (checkpoint, record, tables; after one retry)
//! stops the whole run at once with [`ReproduceError::Output`]: the next cells would fail alike.

use crate::budget::Limits;
use crate::checkpoint::{Checkpoint, remove_stale_temp_files, retry_once, write_atomic};
use crate::config::TrainConfig;
use crate::optimum::{self, OptimumCache, ReferenceKind};
use crate::published::{self, Published};
use crate::record::{EpochRecord, StopReason};
use crate::run::RunDir;
use crate::trainer::{TrainError, Trainer};
use hdpo_policy::PolicyError;
use hdpo_sim::config::Split;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// The experiments of `hdpo reproduce`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Experiment {
    /// The 16 Zipkin instances, one store, lost sales.
    OneStoreLost,
    /// One store, backlogged, 6 lead times × 4 penalties.
    OneStoreBacklogged,
    /// Serial chains: 4 locations × L_s × p, and 3–7 locations.
    Serial,
    /// One warehouse with 3–50 stores.
    OneWarehouse,
    /// Transshipment centre with 3–50 stores.
    Transshipment,
    /// Several warehouses with 10–50 stores.
    ManyWarehouses,
    /// `n` identical independent stores (known optimum).
    IdenticalStores,
}

impl Experiment {
    /// Every experiment, in order.
    pub const ALL: [Experiment; 7] = [
        Experiment::OneStoreLost,
        Experiment::OneStoreBacklogged,
        Experiment::Serial,
        Experiment::OneWarehouse,
        Experiment::Transshipment,
        Experiment::ManyWarehouses,
        Experiment::IdenticalStores,
    ];

    /// The name used on the command line and as the output directory.
    pub fn name(self) -> &'static str {
        match self {
            Experiment::OneStoreLost => "one_store_lost",
            Experiment::OneStoreBacklogged => "one_store_backlogged",
            Experiment::Serial => "serial",
            Experiment::OneWarehouse => "one_warehouse",
            Experiment::Transshipment => "transshipment",
            Experiment::ManyWarehouses => "many_warehouses",
            Experiment::IdenticalStores => "identical_stores",
        }
    }

    /// A one-line description.
    pub fn description(self) -> &'static str {
        match self {
            Experiment::OneStoreLost => {
                "one store, lost sales, Poisson(5): L ∈ 1..4 × p ∈ {4, 9, 19, 39}, vanilla MLP (16 cells)"
            }
            Experiment::OneStoreBacklogged => {
                "one store, backlogged, N(5, 1.6): L ∈ {1, 4, 7, 10, 15, 20} × p ∈ {4, 9, 19, 39}, vanilla MLP and base stock (48 cells)"
            }
            Experiment::Serial => {
                "serial chain: 4 locations × L_s ∈ 1..4 × p (vanilla), 3–7 locations × {GNN, vanilla} × {128, 1024, 8192} scenarios, echelon stock (51 cells)"
            }
            Experiment::OneWarehouse => {
                "one warehouse, 3–50 stores × {vanilla, symmetry-aware, GNN} × {128, 1024, 8192} scenarios (54 cells)"
            }
            Experiment::Transshipment => {
                "transshipment centre, 3–50 stores × {vanilla, GNN} × {128, 1024, 8192} (L = 4, p = 9), and the 5 published vanilla rows (41 cells)"
            }
            Experiment::ManyWarehouses => {
                "many warehouses, (W, S) ∈ {(2, 10), (3, 20), (4, 30), (5, 40), (6, 50)} × {GNN, vanilla} × {128, 1024, 8192} (30 cells)"
            }
            Experiment::IdenticalStores => {
                "n identical independent stores (Poisson(5), L = 3, p = 9), n ∈ {3, 10, 20, 30, 50} × {GNN, vanilla} × {128, 1024, 8192} (30 cells)"
            }
        }
    }

    /// Parses a name; the error lists the allowed names.
    pub fn parse(name: &str) -> Result<Experiment, String> {
        Experiment::ALL
            .into_iter()
            .find(|e| e.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown experiment `{name}`; allowed: {}",
                    Experiment::ALL.map(|e| e.name()).join(", ")
                )
            })
    }

    /// The cells of the experiment, in table order.
    pub fn cells(self) -> Vec<Cell> {
        match self {
            Experiment::OneStoreLost => one_store_lost_cells(),
            Experiment::OneStoreBacklogged => one_store_backlogged_cells(),
            Experiment::Serial => serial_cells(),
            Experiment::OneWarehouse => one_warehouse_cells(),
            Experiment::Transshipment => transshipment_cells(),
            Experiment::ManyWarehouses => many_warehouses_cells(),
            Experiment::IdenticalStores => identical_stores_cells(),
        }
    }
}

/// How large each training run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// Tiny sizes: a cell takes seconds. Checks the pipeline; numbers are not comparable to the
    /// published ones.
    Smoke,
    /// The setting's sizes and our training defaults (the cell's scenario count where it has one).
    Full,
}

impl Scale {
    /// "smoke" / "full".
    pub fn name(self) -> &'static str {
        match self {
            Scale::Smoke => "smoke",
            Scale::Full => "full",
        }
    }

    /// Parses a name; the error lists the allowed names.
    pub fn parse(name: &str) -> Result<Scale, String> {
        match name {
            "smoke" => Ok(Scale::Smoke),
            "full" => Ok(Scale::Full),
            other => Err(format!("unknown scale `{other}`; allowed: smoke, full")),
        }
    }
}

/// One cell of an experiment grid: one training run.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Unique within the experiment, usable as a file name (e.g. `L1-p4-vanilla_one_store`).
    pub id: String,
    /// The table it belongs to.
    pub group: String,
    /// Embedded setting name.
    pub setting: String,
    /// Policy kind.
    pub policy: String,
    /// `key=value` overrides of the training configuration (`setting.…` keys for the instance).
    pub overrides: Vec<(String, String)>,
    /// Training scenarios (the sample-efficiency dimension), when the cell has one.
    pub scenarios: Option<usize>,
    /// The instance columns of the table, e.g. `[("L", "1"), ("p", "4")]`.
    pub labels: Vec<(String, String)>,
    /// Cells with the same row key are compared with each other when no bound is known.
    pub row_key: String,
    /// What the publication reports for it.
    pub published: Published,
}

fn p_text(p: f64) -> String {
    format!("{p}")
}

const PENALTIES: [f64; 4] = [4.0, 9.0, 19.0, 39.0];
/// Dev and test scenarios of the sample-efficiency cells at full scale (the v3 study's 4,096).
const V3_EVAL_SAMPLES: usize = 4096;
const SCENARIOS: [usize; 3] = [128, 1024, 8192];
const STORE_COUNTS: [usize; 6] = [3, 5, 10, 20, 30, 50];

/// The cells of one table that crosses a lead time with a penalty (`L × p`) on one setting and
/// policy: they differ only in those two overrides and in what was published for them.
struct LeadTimePenaltyGrid<'a> {
    group: &'a str,
    setting: &'a str,
    policy: &'a str,
    /// Prepended to the row key `L{l}-p{p}` (e.g. `"4loc-"`); the id is `{row key}-{policy}`.
    row_prefix: &'a str,
    /// The table's name for the lead time column (`"L"`, or `"L_s"` for the store of a chain).
    lead_time_label: &'a str,
}

impl LeadTimePenaltyGrid<'_> {
    fn cell(&self, l: usize, p: f64, published: Published) -> Cell {
        let row_key = format!("{}L{l}-p{p}", self.row_prefix);
        Cell {
            id: format!("{row_key}-{}", self.policy),
            group: self.group.into(),
            setting: self.setting.into(),
            policy: self.policy.into(),
            overrides: vec![
                ("setting.stores.lead_time".into(), l.to_string()),
                ("setting.stores.underage_cost".into(), p_text(p)),
            ],
            scenarios: None,
            labels: vec![
                (self.lead_time_label.into(), l.to_string()),
                ("p".into(), p_text(p)),
            ],
            row_key,
            published,
        }
    }
}

fn one_store_lost_cells() -> Vec<Cell> {
    let grid = LeadTimePenaltyGrid {
        group: "Zipkin instances, Poisson(5), h = 1",
        setting: "one_store_lost",
        policy: "vanilla_one_store",
        row_prefix: "",
        lead_time_label: "L",
    };
    let mut cells = Vec::new();
    for l in 1..=4 {
        for p in PENALTIES {
            cells.push(grid.cell(l, p, published::one_store_lost(l, p)));
        }
    }
    cells
}

fn one_store_backlogged_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for policy in ["vanilla_one_store", "base_stock"] {
        let group = format!("{policy}, N(5, 1.6) clipped, h = 1");
        let grid = LeadTimePenaltyGrid {
            group: &group,
            setting: "one_store_backlogged",
            policy,
            row_prefix: "",
            lead_time_label: "L",
        };
        for l in [1usize, 4, 7, 10, 15, 20] {
            for p in PENALTIES {
                cells.push(grid.cell(l, p, published::one_store_backlogged(l, p, policy)));
            }
        }
    }
    cells
}

fn serial_cells() -> Vec<Cell> {
    let grid = LeadTimePenaltyGrid {
        group: "4 locations, store lead time L_s × penalty p (vanilla MLP)",
        setting: "serial_system",
        policy: "vanilla_serial",
        row_prefix: "4loc-",
        lead_time_label: "L_s",
    };
    let mut cells = Vec::new();
    for l in 1..=4 {
        for p in PENALTIES {
            cells.push(grid.cell(l, p, published::serial_grid(l, p, "vanilla_serial")));
        }
    }
    for n in 3..=7 {
        for scenarios in SCENARIOS {
            for policy in ["gnn", "vanilla_serial"] {
                cells.push(Cell {
                    id: format!("{n}loc-s{scenarios}-{policy}"),
                    group: "3–7 locations (L_s = 4, p = 9) × training scenarios".into(),
                    setting: format!("serial_system_{n}"),
                    policy: policy.into(),
                    overrides: Vec::new(),
                    scenarios: Some(scenarios),
                    labels: vec![("locations".into(), n.to_string())],
                    row_key: format!("{n}loc"),
                    published: published::serial_sizes(n, scenarios, policy),
                });
            }
        }
    }
    for n in 3..=7 {
        cells.push(Cell {
            id: format!("{n}loc-echelon_stock"),
            group: "3–7 locations, echelon-stock policy (optimal family)".into(),
            setting: format!("serial_system_{n}"),
            policy: "echelon_stock".into(),
            overrides: Vec::new(),
            scenarios: None,
            labels: vec![("locations".into(), n.to_string())],
            row_key: format!("{n}loc"),
            published: published::serial_sizes(n, 0, "echelon_stock"),
        });
    }
    cells
}

fn one_warehouse_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for n in STORE_COUNTS {
        for scenarios in SCENARIOS {
            for policy in ["gnn", "vanilla_warehouse", "symmetry_aware"] {
                cells.push(Cell {
                    id: format!("n{n}-s{scenarios}-{policy}"),
                    group: "one warehouse, lost sales, reference stores".into(),
                    setting: "one_warehouse_lost".into(),
                    policy: policy.into(),
                    overrides: vec![("setting.network.n_stores".into(), n.to_string())],
                    scenarios: Some(scenarios),
                    labels: vec![("stores".into(), n.to_string())],
                    row_key: format!("n{n}"),
                    published: published::one_warehouse(n, scenarios, policy),
                });
            }
        }
    }
    cells
}

fn transshipment_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for n in STORE_COUNTS {
        for scenarios in SCENARIOS {
            for policy in ["gnn", "vanilla_warehouse"] {
                cells.push(Cell {
                    id: format!("n{n}-L4-p9-s{scenarios}-{policy}"),
                    group: "v3 grid: store L = 4, p = 9, correlation 0.5".into(),
                    setting: "transshipment_backlogged".into(),
                    policy: policy.into(),
                    overrides: vec![
                        ("setting.network.n_stores".into(), n.to_string()),
                        ("setting.stores.lead_time".into(), "4".into()),
                        ("setting.stores.underage_cost".into(), "9".into()),
                    ],
                    scenarios: Some(scenarios),
                    labels: vec![("stores".into(), n.to_string())],
                    row_key: format!("n{n}-L4-p9"),
                    published: published::transshipment_grid(n, scenarios, policy),
                });
            }
        }
    }
    for &(n, l, p, ..) in published::TRANSSHIPMENT_TABLE11 {
        cells.push(Cell {
            id: format!("n{n}-L{l}-p{p}-vanilla_warehouse"),
            group: "published vanilla rows (32,768 scenarios, correlation 0.5)".into(),
            setting: "transshipment_backlogged".into(),
            policy: "vanilla_warehouse".into(),
            overrides: vec![
                ("setting.network.n_stores".into(), n.to_string()),
                ("setting.stores.lead_time".into(), l.to_string()),
                ("setting.stores.underage_cost".into(), p_text(p)),
            ],
            scenarios: None,
            labels: vec![
                ("stores".into(), n.to_string()),
                ("L_s".into(), l.to_string()),
                ("p".into(), p_text(p)),
            ],
            row_key: format!("n{n}-L{l}-p{p}"),
            published: published::transshipment_table11(n, l, p),
        });
    }
    cells
}

fn many_warehouses_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for (w, n) in hdpo_sim::settings::MANY_WAREHOUSE_SIZES {
        for scenarios in SCENARIOS {
            for policy in ["gnn", "vanilla_warehouse"] {
                cells.push(Cell {
                    id: format!("w{w}-n{n}-s{scenarios}-{policy}"),
                    group: "many warehouses, lost sales, edge costs".into(),
                    setting: format!("many_warehouses_lost_{w}x{n}"),
                    policy: policy.into(),
                    overrides: Vec::new(),
                    scenarios: Some(scenarios),
                    labels: vec![
                        ("warehouses".into(), w.to_string()),
                        ("stores".into(), n.to_string()),
                    ],
                    row_key: format!("w{w}-n{n}"),
                    published: published::many_warehouses(w, n, scenarios, policy),
                });
            }
        }
    }
    cells
}

fn identical_stores_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for n in [3, 10, 20, 30, 50] {
        for scenarios in SCENARIOS {
            for policy in ["gnn", "vanilla_one_store"] {
                cells.push(Cell {
                    id: format!("n{n}-s{scenarios}-{policy}"),
                    group: "identical independent stores, Poisson(5), L = 3, p = 9".into(),
                    setting: "identical_stores_lost".into(),
                    policy: policy.into(),
                    overrides: vec![("setting.network.n_stores".into(), n.to_string())],
                    scenarios: Some(scenarios),
                    labels: vec![("stores".into(), n.to_string())],
                    row_key: format!("n{n}"),
                    published: published::identical_stores(n, scenarios, policy),
                });
            }
        }
    }
    cells
}

/// Options of a reproduction run.
#[derive(Clone, Debug)]
pub struct ReproduceOptions {
    /// Scale of every cell.
    pub scale: Scale,
    /// Output root; the experiment writes `<out>/<experiment>/`.
    pub out: PathBuf,
    /// Run only the cells whose id contains this text.
    pub filter: Option<String>,
    /// Run at most this many cells (after the filter).
    pub limit: Option<usize>,
    /// Extra `key=value` overrides applied to every cell, last.
    pub overrides: Vec<(String, String)>,
    /// Optimum cache (`None`: compute every time).
    pub cache: Option<OptimumCache>,
    /// The command line to print in `results.md`.
    pub command: String,
    /// Memory and time every cell is checked against before it trains (`--force`).
    pub limits: Limits,
}

/// Why [`run_experiment`] stopped with an error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReproduceError {
    /// Bad options or overrides: nothing was trained.
    #[error("{0}")]
    Input(String),
    /// A file of the run could not be written (after one retry); finished cells are recorded.
    #[error("{0}")]
    Output(String),
}

/// Outcome of a cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    /// Trained and tested.
    Done,
    /// The policy cannot be built for this network (yet).
    Unavailable,
    /// Something went wrong.
    Failed,
}

/// Format tag of cell records.
pub const CELL_FORMAT: &str = "hdpo-reproduce-cell";

/// The record of a cell (`cells/<id>.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    /// Always [`CELL_FORMAT`].
    pub format: String,
    /// Experiment name.
    pub experiment: String,
    /// Cell id.
    pub id: String,
    /// Scale it ran at.
    pub scale: Scale,
    /// Fingerprint of the resolved configuration.
    pub fingerprint: String,
    /// Outcome.
    pub status: CellStatus,
    /// Why it is unavailable or failed.
    pub reason: Option<String>,
    /// Train cost of the last epoch.
    pub train_cost: Option<f64>,
    /// Dev cost of the best parameters.
    pub dev_cost: Option<f64>,
    /// Test cost of the best parameters.
    pub test_cost: Option<f64>,
    /// Exact optimum or lower bound.
    pub reference_kind: Option<ReferenceKind>,
    /// Its cost.
    pub reference_cost: Option<f64>,
    /// The reference, described (or why there is none).
    pub reference_note: String,
    /// Test gap to the reference, in percent.
    pub test_gap_pct: Option<f64>,
    /// Epochs trained.
    pub epochs: usize,
    /// Why training stopped.
    pub stop_reason: Option<StopReason>,
    /// Training wall seconds.
    pub train_seconds: f64,
    /// Test wall seconds.
    pub test_seconds: f64,
    /// Wall seconds until the dev cost was within 1 % of the reference (when it was).
    pub seconds_to_1pct_dev: Option<f64>,
    /// `(training seconds, dev cost)` at every dev evaluation, for times to a quality measured
    /// against a reference known only once the row is complete (the best of the row).
    #[serde(default)]
    pub dev_curve: Vec<(f64, f64)>,
    /// Training scenarios actually used.
    pub train_scenarios: usize,
    /// Test samples × periods (reported periods).
    pub test_size: String,
}

/// What [`run_cells`] tells its caller as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// The plan: `total` cells, `done` of them already finished.
    Start {
        /// Cells to run (after filter and limit).
        total: usize,
        /// Already finished (will be skipped).
        done: usize,
    },
    /// A cell starts training (index counts from 0 over the plan).
    CellStart {
        /// Position in the plan.
        index: usize,
        /// The cell.
        cell: &'a Cell,
    },
    /// An epoch of the running cell finished.
    Epoch {
        /// The cell.
        cell: &'a Cell,
        /// The epoch's record.
        record: &'a EpochRecord,
        /// Maximum epochs of the cell.
        max_epochs: usize,
    },
    /// A cell finished (`skipped`: it was already done).
    CellDone {
        /// Position in the plan.
        index: usize,
        /// The cell.
        cell: &'a Cell,
        /// Its record.
        record: &'a CellRecord,
        /// True when not re-run.
        skipped: bool,
    },
}

/// Counts of a finished (or interrupted) reproduction run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Cells in the plan.
    pub planned: usize,
    /// Trained now.
    pub ran: usize,
    /// Already done, not re-run.
    pub skipped: usize,
    /// Recorded unavailable.
    pub unavailable: usize,
    /// Recorded failed.
    pub failed: usize,
    /// Stopped by the stop flag (the running cell keeps its checkpoint).
    pub interrupted: bool,
    /// The experiment's output directory.
    pub dir: PathBuf,
}

/// The resolved training configuration of a cell at a scale, with extra overrides applied last.
pub fn cell_config(
    cell: &Cell,
    scale: Scale,
    extra: &[(String, String)],
) -> Result<TrainConfig, String> {
    let mut setting = hdpo_sim::settings::setting(&cell.setting).map_err(|e| e.to_string())?;
    // at full scale the cell's scenario count is part of the setting the defaults are derived
    // from (the network policies' epochs are a budget of Adam steps); it is set on the setting
    // itself, not as an override, so that the defaults' batch still applies
    if let (Scale::Full, Some(n)) = (scale, cell.scenarios) {
        let train = &mut setting.splits.train;
        train.n_samples = n;
        train.batch_size = train.batch_size.min(n);
    }
    let mut config = TrainConfig::default_with_overrides(setting, &cell.policy, &cell.overrides)
        .map_err(|e| format!("cell {}: {e}", cell.id))?;
    let single = config.setting.n_stores() == 1;
    let splits = &mut config.setting.splits;
    match scale {
        Scale::Full => {
            if let Some(n) = cell.scenarios {
                splits.train.n_samples = n;
                splits.train.batch_size = splits.train.batch_size.min(n);
            }
            // the v3 study's evaluation sets (spec §4: dev and test 4,096 scenarios) for every
            // cell of the sample-efficiency grids, whose costs are per store per period
            if cell.scenarios.is_some() {
                for split in [&mut splits.dev, &mut splits.test] {
                    split.n_samples = split.n_samples.min(V3_EVAL_SAMPLES);
                    split.batch_size = split.batch_size.min(split.n_samples);
                }
            }
        }
        Scale::Smoke => {
            // A few seconds per cell: single-store chains train for 20 epochs on 1024 scenarios,
            // networks of many stores (heavier per scenario) for 6 epochs on 128; the
            // sample-efficiency grids (128 / 1024 / 8192 scenarios) become 8 / 16 / 128.
            let (n, batch, epochs, eval_n, test_periods) = if single {
                (
                    cell.scenarios.map_or(1024, |n| (n / 64).clamp(8, 128)),
                    256,
                    20,
                    512,
                    500,
                )
            } else {
                (
                    cell.scenarios.map_or(128, |n| (n / 64).clamp(8, 128)),
                    64,
                    6,
                    256,
                    300,
                )
            };
            splits.train.n_samples = n;
            splits.train.batch_size = n.min(batch);
            splits.dev.n_samples = eval_n;
            splits.dev.batch_size = eval_n;
            splits.test.n_samples = eval_n;
            splits.test.batch_size = eval_n;
            splits.test.periods = test_periods;
            splits.test.ignore_periods = test_periods * 2 / 5;
            config.max_epochs = epochs;
            config.dev_every = if single { 4 } else { 2 };
            config.patience_epochs = 0;
            config.shard_rows = config.shard_rows.min(if single { 128 } else { 32 });
            config.eval_shard_size = 128;
            config.max_seconds = 0.0;
        }
    }
    for (k, v) in extra {
        config
            .apply_override(k, v)
            .map_err(|e| format!("--set {k}={v}: {e}"))?;
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// A fingerprint of a configuration (hash of its TOML).
pub fn fingerprint(config: &TrainConfig) -> String {
    let text = config.to_toml_string();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in text.as_bytes() {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The directory of an experiment under an output root.
pub fn experiment_dir(out: &Path, name: &str) -> PathBuf {
    out.join(name)
}

fn record_path(dir: &Path, id: &str) -> PathBuf {
    dir.join("cells").join(format!("{id}.json"))
}

/// Reads a cell record; `None` when absent or unreadable (a corrupt record is re-run).
pub fn read_record(dir: &Path, id: &str) -> Option<CellRecord> {
    let text = std::fs::read_to_string(record_path(dir, id)).ok()?;
    let record: CellRecord = serde_json::from_str(&text).ok()?;
    (record.format == CELL_FORMAT && record.id == id).then_some(record)
}

/// Runs an experiment (its cells after `filter` and `limit`), then writes the tables.
pub fn run_experiment(
    experiment: Experiment,
    options: &ReproduceOptions,
    stop: &AtomicBool,
    on_event: impl FnMut(Event<'_>),
) -> Result<Summary, ReproduceError> {
    run_cells(
        experiment.name(),
        experiment.description(),
        &experiment.cells(),
        options,
        stop,
        on_event,
    )
}

/// Runs `cells` (after `filter` and `limit`) as the experiment `name`, then writes the tables of all
/// of `cells`.
pub fn run_cells(
    name: &str,
    description: &str,
    cells: &[Cell],
    options: &ReproduceOptions,
    stop: &AtomicBool,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Summary, ReproduceError> {
    let dir = experiment_dir(&options.out, name);
    std::fs::create_dir_all(dir.join("cells"))
        .map_err(|e| ReproduceError::Input(format!("cannot create `{}`: {e}", dir.display())))?;
    remove_stale_temp_files(&dir);
    remove_stale_temp_files(&dir.join("cells"));
    let mut plan: Vec<&Cell> = cells
        .iter()
        .filter(|c| {
            options
                .filter
                .as_ref()
                .is_none_or(|f| c.id.contains(f.as_str()))
        })
        .collect();
    if let Some(limit) = options.limit {
        plan.truncate(limit);
    }
    if plan.is_empty() {
        let ids: Vec<&str> = cells.iter().take(6).map(|c| c.id.as_str()).collect();
        return Err(ReproduceError::Input(format!(
            "no cell of `{name}` matches --filter {:?} (cell ids look like: {}, …)",
            options.filter.as_deref().unwrap_or(""),
            ids.join(", ")
        )));
    }
    // Resolve every configuration first: a bad override fails before any training.
    let configs: Vec<Result<TrainConfig, String>> = plan
        .iter()
        .map(|c| cell_config(c, options.scale, &options.overrides))
        .collect();
    for (cell, config) in plan.iter().zip(&configs) {
        if let Err(e) = config
            && e.starts_with("--set")
        {
            return Err(ReproduceError::Input(format!("cell {}: {e}", cell.id)));
        }
    }
    let done_before = plan
        .iter()
        .zip(&configs)
        .filter(|(c, cfg)| is_done(&dir, c, cfg.as_ref().ok()))
        .count();
    on_event(Event::Start {
        total: plan.len(),
        done: done_before,
    });
    let mut summary = Summary {
        planned: plan.len(),
        dir: dir.clone(),
        ..Summary::default()
    };
    for (index, (cell, config)) in plan.iter().zip(configs).enumerate() {
        if let Ok(cfg) = &config
            && is_done(&dir, cell, Some(cfg))
            && let Some(record) = read_record(&dir, &cell.id)
        {
            summary.skipped += 1;
            on_event(Event::CellDone {
                index,
                cell,
                record: &record,
                skipped: true,
            });
            continue;
        }
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            summary.interrupted = true;
            break;
        }
        on_event(Event::CellStart { index, cell });
        let outcome = match config {
            Ok(config) => {
                let scale = options.scale;
                let cache = options.cache.as_ref();
                let cell_ref: &Cell = cell;
                let run_dir = dir.join("runs").join(&cell.id);
                let mut on_epoch = |record: &EpochRecord, max_epochs: usize| {
                    on_event(Event::Epoch {
                        cell: cell_ref,
                        record,
                        max_epochs,
                    })
                };
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_cell(
                        name,
                        cell_ref,
                        config.clone(),
                        scale,
                        &run_dir,
                        cache,
                        &options.limits,
                        stop,
                        &mut on_epoch,
                    )
                }));
                match result {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(output)) => {
                        // the tables still show the cells finished so far
                        let _ = write_tables(&dir, name, description, cells, options);
                        return Err(ReproduceError::Output(format!(
                            "cell {}: {output}",
                            cell.id
                        )));
                    }
                    Err(panic) => {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "unknown panic".into());
                        Some(failed_record(
                            name,
                            cell,
                            options.scale,
                            &fingerprint(&config),
                            CellStatus::Failed,
                            format!("panicked: {message}"),
                        ))
                    }
                }
            }
            Err(reason) => Some(failed_record(
                name,
                cell,
                options.scale,
                "",
                classify_config_error(&reason),
                reason,
            )),
        };
        let Some(record) = outcome else {
            summary.interrupted = true;
            break;
        };
        let text = serde_json::to_string_pretty(&record).expect("a record serialises");
        retry_once(|| write_atomic(&record_path(&dir, &cell.id), text.as_bytes()))
            .map_err(ReproduceError::Output)?;
        match record.status {
            CellStatus::Done => summary.ran += 1,
            CellStatus::Unavailable => summary.unavailable += 1,
            CellStatus::Failed => summary.failed += 1,
        }
        on_event(Event::CellDone {
            index,
            cell,
            record: &record,
            skipped: false,
        });
        retry_once(|| write_tables(&dir, name, description, cells, options))
            .map_err(ReproduceError::Output)?;
    }
    retry_once(|| write_tables(&dir, name, description, cells, options))
        .map_err(ReproduceError::Output)?;
    Ok(summary)
}

fn classify_config_error(reason: &str) -> CellStatus {
    if reason.contains("unknown policy") || reason.contains("does not support") {
        CellStatus::Unavailable
    } else {
        CellStatus::Failed
    }
}

fn is_done(dir: &Path, cell: &Cell, config: Option<&TrainConfig>) -> bool {
    let Some(config) = config else { return false };
    read_record(dir, &cell.id)
        .is_some_and(|r| r.status == CellStatus::Done && r.fingerprint == fingerprint(config))
}

fn failed_record(
    experiment: &str,
    cell: &Cell,
    scale: Scale,
    fingerprint: &str,
    status: CellStatus,
    reason: String,
) -> CellRecord {
    CellRecord {
        format: CELL_FORMAT.into(),
        experiment: experiment.into(),
        id: cell.id.clone(),
        scale,
        fingerprint: fingerprint.into(),
        status,
        reason: Some(reason),
        train_cost: None,
        dev_cost: None,
        test_cost: None,
        reference_kind: None,
        reference_cost: None,
        reference_note: String::new(),
        test_gap_pct: None,
        epochs: 0,
        stop_reason: None,
        train_seconds: 0.0,
        test_seconds: 0.0,
        seconds_to_1pct_dev: None,
        dev_curve: Vec::new(),
        train_scenarios: 0,
        test_size: String::new(),
    }
}

/// Trains and tests one cell; `Ok(None)` when interrupted (the checkpoint is kept for the next
/// run); `Err` when a file of the cell cannot be written (after one retry).
#[allow(clippy::too_many_arguments)]
fn run_cell(
    experiment: &str,
    cell: &Cell,
    config: TrainConfig,
    scale: Scale,
    run_dir: &Path,
    cache: Option<&OptimumCache>,
    limits: &Limits,
    stop: &AtomicBool,
    on_epoch: &mut dyn FnMut(&EpochRecord, usize),
) -> Result<Option<CellRecord>, String> {
    let print = fingerprint(&config);
    let fail = |status: CellStatus, reason: String| {
        Ok(Some(failed_record(
            experiment, cell, scale, &print, status, reason,
        )))
    };
    let reference = match optimum::reference_for(&config.setting, cache) {
        Ok(reference) => reference,
        Err(e) => return fail(CellStatus::Failed, e.to_string()),
    };
    let dir = match RunDir::create(run_dir) {
        Ok(dir) => dir,
        Err(e) => return fail(CellStatus::Failed, e),
    };
    let checkpoint_path = dir.file("checkpoint.json");
    let resumed = Checkpoint::load(&checkpoint_path)
        .ok()
        .filter(|c| c.config == config)
        .and_then(|c| Trainer::resume_within(c, limits).ok());
    let mut trainer = match resumed {
        Some(trainer) => trainer,
        None => match Trainer::new_within(config.clone(), limits) {
            Ok(trainer) => trainer,
            Err(TrainError::Policy(
                e @ (PolicyError::Unsupported { .. } | PolicyError::MissingFeature { .. }),
            )) => return fail(CellStatus::Unavailable, e.to_string()),
            Err(e) => return fail(CellStatus::Failed, e.to_string()),
        },
    };
    let max_epochs = trainer.config.max_epochs;
    let save = |t: &Trainer| retry_once(|| t.checkpoint().save(&checkpoint_path));
    let outcome = trainer.try_run(stop, |t, record| {
        on_epoch(record, max_epochs);
        if record.dev_cost.is_some() {
            save(t)?;
        }
        Ok(())
    });
    let reason = match outcome {
        Ok(reason) => reason,
        Err(TrainError::Output(e)) => return Err(e),
        Err(e) => return fail(CellStatus::Failed, e.to_string()),
    };
    if reason == StopReason::Interrupted {
        save(&trainer)?;
        return Ok(None);
    }
    let train_seconds = trainer.elapsed_seconds();
    let dev = match trainer.evaluate(Split::Dev, true) {
        Ok(report) => report.cost_per_store_period,
        Err(e) => return fail(CellStatus::Failed, e.to_string()),
    };
    let t0 = Instant::now();
    let test = match trainer.test() {
        Ok(report) => report,
        Err(e) => return fail(CellStatus::Failed, e.to_string()),
    };
    let test_seconds = t0.elapsed().as_secs_f64();
    let line = reference.curve_line();
    retry_once(|| dir.write_metrics(&trainer.history))?;
    retry_once(|| {
        dir.write_curve(
            &format!("{experiment} · {}", cell.id),
            &trainer.history,
            line.as_ref().map(|(v, l)| (*v, l.as_str())),
        )
    })?;
    save(&trainer)?;
    let known = reference.known();
    let seconds_to_1pct_dev = known.and_then(|(cost, _)| {
        trainer
            .history
            .iter()
            .find(|r| r.dev_cost.is_some_and(|d| d <= cost * 1.01))
            .map(|r| r.elapsed_seconds)
    });
    let sizes = trainer.config.setting.splits;
    Ok(Some(CellRecord {
        format: CELL_FORMAT.into(),
        experiment: experiment.into(),
        id: cell.id.clone(),
        scale,
        fingerprint: print.clone(),
        status: CellStatus::Done,
        reason: None,
        train_cost: trainer.history.last().map(|r| r.train_cost),
        dev_cost: Some(dev),
        test_cost: Some(test.cost_per_store_period),
        reference_kind: known.map(|k| k.1),
        reference_cost: known.map(|k| k.0),
        reference_note: reference.summary(),
        test_gap_pct: reference.gap(test.cost_per_store_period).map(|g| 100.0 * g),
        epochs: trainer.epoch,
        stop_reason: Some(reason),
        train_seconds,
        test_seconds,
        seconds_to_1pct_dev,
        dev_curve: trainer
            .history
            .iter()
            .filter_map(|r| r.dev_cost.map(|d| (r.elapsed_seconds, d)))
            .collect(),
        train_scenarios: sizes.train.n_samples,
        test_size: format!(
            "{} × {} ({} ignored)",
            sizes.test.n_samples, sizes.test.periods, sizes.test.ignore_periods
        ),
    }))
}

/// A cell with its record (when it has one at the current scale and configuration).
struct Row<'a> {
    cell: &'a Cell,
    record: Option<CellRecord>,
    /// Gap to the reference, or excess over the best of the row when no bound is known.
    gap_pct: Option<f64>,
    gap_basis: &'static str,
    reference: Option<f64>,
    reference_text: String,
    /// Training seconds until the dev cost was within 1 % of `reference` (optimum, bound or best
    /// of row).
    seconds_to_1pct: Option<f64>,
}

fn collect_rows<'a>(dir: &Path, cells: &'a [Cell], options: &ReproduceOptions) -> Vec<Row<'a>> {
    let mut rows: Vec<Row<'a>> = cells
        .iter()
        .map(|cell| {
            let record = read_record(dir, &cell.id).filter(|r| {
                r.scale == options.scale
                    && cell_config(cell, options.scale, &options.overrides)
                        .is_ok_and(|c| fingerprint(&c) == r.fingerprint || r.fingerprint.is_empty())
            });
            Row {
                cell,
                record,
                gap_pct: None,
                gap_basis: "",
                reference: None,
                reference_text: String::new(),
                seconds_to_1pct: None,
            }
        })
        .collect();
    // Best test cost per row key, for cells without a known reference.
    let mut best: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
    for row in &rows {
        if let Some(r) = &row.record
            && r.status == CellStatus::Done
            && let Some(test) = r.test_cost
        {
            let entry = best.entry(row.cell.row_key.clone()).or_insert(test);
            *entry = entry.min(test);
        }
    }
    for row in &mut rows {
        let Some(record) = &row.record else { continue };
        if record.status != CellStatus::Done {
            continue;
        }
        match (record.reference_kind, record.reference_cost) {
            (Some(kind), Some(cost)) => {
                row.gap_pct = record.test_gap_pct;
                row.gap_basis = match kind {
                    ReferenceKind::Exact => "optimum",
                    ReferenceKind::LowerBound => "bound",
                };
                row.reference = Some(cost);
                row.reference_text = format!(
                    "{cost:.4} ({})",
                    match kind {
                        ReferenceKind::Exact => "opt",
                        ReferenceKind::LowerBound => "LB",
                    }
                );
            }
            _ => {
                if let (Some(test), Some(&b)) = (record.test_cost, best.get(&row.cell.row_key)) {
                    row.gap_pct = Some(100.0 * (test / b - 1.0));
                    row.gap_basis = "best of row";
                    row.reference = Some(b);
                    row.reference_text = format!("{b:.4} (best of row)");
                }
            }
        }
    }
    for row in &mut rows {
        let (Some(record), Some(reference)) = (&row.record, row.reference) else {
            continue;
        };
        row.seconds_to_1pct = record
            .dev_curve
            .iter()
            .find(|(_, dev)| *dev <= reference * 1.01)
            .map(|(t, _)| *t)
            .or(record.seconds_to_1pct_dev);
    }
    rows
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or(String::new(), |x| format!("{x:.digits$}"))
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn status_text(record: &Option<CellRecord>) -> String {
    match record {
        None => "not run".into(),
        Some(r) => match r.status {
            CellStatus::Done => "done".into(),
            CellStatus::Unavailable => format!(
                "unavailable: {}",
                r.reason.as_deref().unwrap_or("policy not available")
            ),
            CellStatus::Failed => format!("failed: {}", r.reason.as_deref().unwrap_or("unknown")),
        },
    }
}

/// Writes `results.csv`, `results.md` and `gaps.svg` for every cell that has a record at the current
/// scale and configuration.
pub fn write_tables(
    dir: &Path,
    name: &str,
    description: &str,
    cells: &[Cell],
    options: &ReproduceOptions,
) -> Result<(), String> {
    let rows = collect_rows(dir, cells, options);
    // CSV.
    let mut csv = String::from(
        "experiment,scale,group,id,setting,policy,instance,train_scenarios,status,train_cost,dev_cost,\
         test_cost,reference_kind,reference_cost,gap_pct,gap_basis,published_cost,published_gap_pct,\
         published_reference,published_note,epochs,train_seconds,test_seconds,seconds_to_1pct_dev,test_size\n",
    );
    for row in &rows {
        let c = row.cell;
        let r = row.record.as_ref();
        let instance: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let fields = [
            name.to_string(),
            options.scale.name().to_string(),
            c.group.clone(),
            c.id.clone(),
            c.setting.clone(),
            c.policy.clone(),
            instance.join(";"),
            r.map_or(String::new(), |r| r.train_scenarios.to_string()),
            status_text(&row.record),
            opt(r.and_then(|r| r.train_cost), 6),
            opt(r.and_then(|r| r.dev_cost), 6),
            opt(r.and_then(|r| r.test_cost), 6),
            r.and_then(|r| r.reference_kind)
                .map_or(String::new(), |k| k.short().to_string()),
            opt(r.and_then(|r| r.reference_cost), 6),
            opt(row.gap_pct, 4),
            row.gap_basis.to_string(),
            opt(c.published.cost, 4),
            opt(c.published.gap_pct, 2),
            opt(c.published.reference, 6),
            c.published.note.clone(),
            r.map_or(String::new(), |r| r.epochs.to_string()),
            opt(r.map(|r| r.train_seconds), 2),
            opt(r.map(|r| r.test_seconds), 2),
            opt(row.seconds_to_1pct, 2),
            r.map_or(String::new(), |r| r.test_size.clone()),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        let _ = writeln!(csv, "{}", line.join(","));
    }
    write_atomic(&dir.join("results.csv"), csv.as_bytes())?;

    // Markdown.
    let mut md = String::new();
    let scale_note = match options.scale {
        Scale::Smoke => " — smoke scale (tiny sizes; NOT comparable to published)",
        Scale::Full => " — full scale",
    };
    let _ = writeln!(md, "# Reproduction: `{name}`{scale_note}\n");
    let _ = writeln!(md, "{description}.\n");
    let _ = writeln!(md, "Command: `{}`\n", options.command);
    let count = |f: &dyn Fn(&Row) -> bool| rows.iter().filter(|r| f(r)).count();
    let _ = writeln!(
        md,
        "Cells: {} · done {} · unavailable {} · failed {} · not run {}\n",
        rows.len(),
        count(&|r| r
            .record
            .as_ref()
            .is_some_and(|x| x.status == CellStatus::Done)),
        count(&|r| r
            .record
            .as_ref()
            .is_some_and(|x| x.status == CellStatus::Unavailable)),
        count(&|r| r
            .record
            .as_ref()
            .is_some_and(|x| x.status == CellStatus::Failed)),
        count(&|r| r.record.is_none()),
    );
    let _ = writeln!(
        md,
        "Costs are per store per period on the test split (best-on-dev parameters). \"reference\" is our \
         exact optimum (opt) or lower bound (LB) from `hdpo optimum`, or — where no bound is known — the \
         best test cost among the cells of the same instance (best of row). gap = test / reference − 1 \
         (to a bound: an upper bound on the optimality gap). Published numbers are from \
         `published-results.md` (source per table).\n"
    );
    let mut groups: Vec<&str> = Vec::new();
    for row in &rows {
        if !groups.contains(&row.cell.group.as_str()) {
            groups.push(&row.cell.group);
        }
    }
    for group in groups {
        let group_rows: Vec<&Row> = rows.iter().filter(|r| r.cell.group == group).collect();
        let first = group_rows[0].cell;
        let _ = writeln!(md, "## {group}\n");
        let _ = writeln!(md, "Published: {}.\n", first.published.source);
        let mut header: Vec<String> = first.labels.iter().map(|(k, _)| k.clone()).collect();
        header.extend(
            [
                "policy",
                "train scen.",
                "test cost",
                "reference",
                "gap %",
                "published cost",
                "published gap %",
                "published ref.",
                "epochs",
                "train s",
                "test s",
                "s to 1 % dev",
                "status",
            ]
            .map(String::from),
        );
        let _ = writeln!(md, "| {} |", header.join(" | "));
        let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
        for row in group_rows {
            let c = row.cell;
            let r = row.record.as_ref();
            let mut cols: Vec<String> = c.labels.iter().map(|(_, v)| v.clone()).collect();
            let published_gap = match (c.published.gap_pct, c.published.note.is_empty()) {
                (Some(g), true) => format!("{g:.2}"),
                (Some(g), false) => format!("{g:.2} ({})", c.published.note),
                (None, _) => c.published.note.clone(),
            };
            cols.extend([
                c.policy.clone(),
                match (c.scenarios, r.map(|r| r.train_scenarios)) {
                    (Some(grid), Some(ran)) if grid != ran => format!("{grid} (ran {ran})"),
                    (_, Some(ran)) => ran.to_string(),
                    (Some(grid), None) => grid.to_string(),
                    (None, None) => String::new(),
                },
                opt(r.and_then(|r| r.test_cost), 4),
                row.reference_text.clone(),
                opt(row.gap_pct, 2),
                opt(c.published.cost, 2),
                published_gap,
                c.published
                    .reference
                    .map_or(String::new(), |x| x.to_string()),
                r.map_or(String::new(), |r| r.epochs.to_string()),
                opt(r.map(|r| r.train_seconds), 1),
                opt(r.map(|r| r.test_seconds), 1),
                opt(row.seconds_to_1pct, 1),
                status_text(&row.record).replace('|', "/"),
            ]);
            let _ = writeln!(md, "| {} |", cols.join(" | "));
        }
        let _ = writeln!(md);
    }
    write_atomic(&dir.join("results.md"), md.as_bytes())?;

    // Plots.
    let svg = render_gaps(name, options.scale, &rows)
        .map_err(|e| format!("cannot draw the gap plot: {e}"))?;
    write_atomic(&dir.join("gaps.svg"), svg.as_bytes())?;
    if rows.iter().any(|r| r.cell.scenarios.is_some()) {
        let svg = render_sample_efficiency(name, options.scale, &rows)
            .map_err(|e| format!("cannot draw the sample-efficiency plot: {e}"))?;
        write_atomic(&dir.join("sample_efficiency.svg"), svg.as_bytes())?;
    }
    Ok(())
}

/// One panel per instance (row key) of the sample-efficiency cells: test cost against training
/// scenarios (log scale), one line per policy (ours solid with dots, published dashed with
/// crosses, same colour), and the reference (optimum, bound, or the best of the row) as a black
/// line — like the paper's figures.
fn render_sample_efficiency(
    name: &str,
    scale: Scale,
    rows: &[Row],
) -> Result<String, Box<dyn std::error::Error>> {
    let grid: Vec<&Row> = rows.iter().filter(|r| r.cell.scenarios.is_some()).collect();
    let mut keys: Vec<&str> = Vec::new();
    let mut policies: Vec<&str> = Vec::new();
    for r in &grid {
        if !keys.contains(&r.cell.row_key.as_str()) {
            keys.push(&r.cell.row_key);
        }
        if !policies.contains(&r.cell.policy.as_str()) {
            policies.push(&r.cell.policy);
        }
    }
    let colours = [BLUE, RED, GREEN, MAGENTA, CYAN];
    let columns = keys.len().clamp(1, 3);
    let panel_rows = keys.len().div_ceil(columns);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(
            &mut svg,
            (420 * columns as u32, 60 + 300 * panel_rows as u32),
        )
        .into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(
            &format!(
                "{name} ({} scale): test cost per store and period vs training scenarios",
                scale.name()
            ),
            ("sans-serif", 18),
        )?;
        for (index, (panel, key)) in root
            .split_evenly((panel_rows, columns))
            .iter()
            .zip(&keys)
            .enumerate()
        {
            let cells: Vec<&&Row> = grid.iter().filter(|r| r.cell.row_key == *key).collect();
            let x = |r: &Row| (r.cell.scenarios.unwrap_or(1) as f64).log2();
            let ours = |r: &Row| r.record.as_ref().and_then(|x| x.test_cost);
            let reference = cells.iter().find_map(|r| r.reference);
            let values: Vec<f64> = cells
                .iter()
                .flat_map(|r| [ours(r), r.cell.published.cost])
                .flatten()
                .chain(reference)
                .collect();
            if values.is_empty() {
                continue;
            }
            let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let pad = 0.08 * (hi - lo).max(0.01 * hi.abs().max(1e-3));
            let (x_lo, x_hi) = cells
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| {
                    (a.min(x(r)), b.max(x(r)))
                });
            let label = cells[0]
                .cell
                .labels
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut chart = ChartBuilder::on(panel)
                .caption(label, ("sans-serif", 15))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d((x_lo - 0.5)..(x_hi + 0.5), (lo - pad)..(hi + pad))?;
            chart
                .configure_mesh()
                .x_desc("training scenarios")
                .x_labels(8)
                .x_label_formatter(&|v| format!("{}", 2f64.powf(*v).round()))
                .y_label_formatter(&|v| format!("{v:.2}"))
                .draw()?;
            if let Some(reference) =
                reference.or_else(|| cells.iter().filter_map(|r| ours(r)).reduce(f64::min))
            {
                chart.draw_series(LineSeries::new(
                    vec![(x_lo - 0.5, reference), (x_hi + 0.5, reference)],
                    BLACK.stroke_width(1),
                ))?;
            }
            for (k, policy) in policies.iter().enumerate() {
                let colour = colours[k % colours.len()];
                let mut mine: Vec<(f64, f64)> = cells
                    .iter()
                    .filter(|r| r.cell.policy == *policy)
                    .filter_map(|r| ours(r).map(|c| (x(r), c)))
                    .collect();
                mine.sort_by(|a, b| a.0.total_cmp(&b.0));
                let mut published: Vec<(f64, f64)> = cells
                    .iter()
                    .filter(|r| r.cell.policy == *policy)
                    .filter_map(|r| r.cell.published.cost.map(|c| (x(r), c)))
                    .collect();
                published.sort_by(|a, b| a.0.total_cmp(&b.0));
                let series =
                    chart.draw_series(LineSeries::new(mine.clone(), colour.stroke_width(2)))?;
                if index == 0 {
                    series
                        .label(format!("{policy} (ours)"))
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                        });
                }
                chart.draw_series(mine.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
                chart.draw_series(DashedLineSeries::new(
                    published.clone(),
                    4,
                    3,
                    colour.stroke_width(1),
                ))?;
                chart.draw_series(published.iter().map(|&p| Cross::new(p, 4, colour)))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()?;
    }
    Ok(svg)
}

fn render_gaps(
    name: &str,
    scale: Scale,
    rows: &[Row],
) -> Result<String, Box<dyn std::error::Error>> {
    let ours: Vec<(f64, f64)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.gap_pct.map(|g| (i as f64, g)))
        .collect();
    let theirs: Vec<(f64, f64)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.cell.published.gap_pct.map(|g| (i as f64, g)))
        .collect();
    let values: Vec<f64> = ours.iter().chain(&theirs).map(|p| p.1).collect();
    let hi = values.iter().cloned().fold(1.0f64, f64::max);
    let lo = values.iter().cloned().fold(0.0f64, f64::min);
    let pad = 0.05 * (hi - lo).max(0.1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let n = rows.len().max(1) as f64;
        let labels: Vec<String> = rows.iter().map(|r| r.cell.id.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{name} ({} scale): test gap per cell, %", scale.name()),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..n - 0.5, (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .x_desc("cell (index in results.md order)")
            .y_desc("gap % (to optimum / bound / best of row)")
            .x_labels(rows.len().clamp(2, 20))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                    format!("{}", i as usize)
                } else {
                    String::new()
                }
            })
            .draw()?;
        chart
            .draw_series(
                ours.iter()
                    .map(|&(x, y)| Circle::new((x, y), 4, BLUE.filled())),
            )?
            .label("ours")
            .legend(|(x, y)| Circle::new((x + 10, y), 4, BLUE.filled()));
        chart
            .draw_series(theirs.iter().map(|&(x, y)| Cross::new((x, y), 5, RED)))?
            .label("published")
            .legend(|(x, y)| Cross::new((x + 10, y), 5, RED));
        chart.draw_series(LineSeries::new(
            vec![(-0.5, 0.0), (n - 0.5, 0.0)],
            BLACK.stroke_width(1),
        ))?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}
