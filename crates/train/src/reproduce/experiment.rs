//! The vocabulary of a reproduction: the [`Experiment`]s (name, description; their cells are in
//! `grids.rs`), the [`Scale`] a grid runs at, a [`Cell`] — one training run of a grid — and the
//! [`ReproduceOptions`] of a run.

use crate::budget::Limits;
use crate::optimum_cache::OptimumCache;
use crate::published::Published;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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

/// Options of a reproduction run.
#[derive(Clone, Debug)]
pub struct ReproduceOptions {
    /// Scale of every cell.
    pub scale: Scale,
    /// Output root; the experiment writes `<out>/<experiment>/`.
    pub out: PathBuf,
    /// Run only the cells whose id contains this text.
    pub filter: Option<String>,
    /// Run at most this many cells (after the filter and the part).
    pub limit: Option<usize>,
    /// Run only this part of the cells (after the filter): a grid split across machines or the
    /// tasks of a job array.
    pub part: Option<Part>,
    /// Extra `key=value` overrides applied to every cell, last.
    pub overrides: Vec<(String, String)>,
    /// Optimum cache (`None`: compute every time).
    pub cache: Option<OptimumCache>,
    /// The command line to print in `results.md`.
    pub command: String,
    /// Memory and time every cell is checked against before it trains (`--force`).
    pub limits: Limits,
}

/// Part `index` of `count` disjoint parts of a grid (`--cells index/count`, `1 ≤ index ≤ count`):
/// after the filter, the cells at positions `index − 1`, `index − 1 + count`, … — every `count`-th
/// cell, so that each part gets cells of every size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Which part, from 1.
    pub index: usize,
    /// How many parts.
    pub count: usize,
}

impl Part {
    /// Parses `i/n` with `1 ≤ i ≤ n`.
    pub fn parse(text: &str) -> Result<Part, String> {
        let bad = || {
            format!(
                "`{text}`: expected i/n with whole numbers 1 ≤ i ≤ n (part i of n), e.g. 1/4; \
                 with a Slurm job array: --cells $((SLURM_ARRAY_TASK_ID + 1))/$SLURM_ARRAY_TASK_COUNT"
            )
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Part { index, count })
    }

    /// Whether the cell at `position` (after the filter) belongs to this part.
    pub fn contains(&self, position: usize) -> bool {
        position % self.count == self.index - 1
    }
}
