//! `hdpo reproduce`: the paper's experiment grids, one training run per cell, each next to the
//! published number and our optimum / bound.
//!
//! An [`Experiment`] is a list of [`Cell`]s (setting, policy, overrides, training scenarios, the
//! published values of `crate::published`). [`run_experiment`] trains every cell
//! ([`TrainConfig::default_for`](crate::TrainConfig::default_for) + the cell's overrides + the [`Scale`]'s sizes + the caller's
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
//! A grid splits into disjoint parts for several machines or a job array (`--cells i/n`,
//! [`Part`]: every n-th cell after the filter), each part writing to its own `--out`;
//! [`merge_parts`] gathers the parts' records into one output and writes the whole grid's tables.
//!
//! A cell is skipped when its record exists, says "done", and was produced by the same resolved
//! configuration (a fingerprint of the configuration TOML is stored in the record; so changing the
//! scale or an override re-runs it). Policies that cannot be built (`PolicyError::Unsupported`,
//! unknown kinds) are recorded as "unavailable: \<reason\>"; any other error (a diverging cell, a
//! cell too large for the machine's memory) or a panic as "failed: \<reason\>"; both are retried
//! by the next run. A file that cannot be written (checkpoint, record, tables; after one retry)
//! stops the whole run at once with [`ReproduceError::Output`]: the next cells would fail alike.
//!
//! One file per concept, every public item re-exported here (`hdpo_train::reproduce::cell_config`, …):
//! `experiment.rs` ([`Experiment`], [`Scale`], [`Cell`]), `grids.rs` (the cells of each
//! experiment), `cell_config.rs` ([`cell_config`], [`fingerprint`]), `cell_record.rs`
//! ([`CellRecord`], [`read_record`]), `runner.rs` ([`run_experiment`], [`run_cells`], [`Event`]),
//! `tables.rs` ([`write_tables`]: `results.csv`, `results.md`) and `plots.rs` (the SVG plots).
//! The published numbers are in [`crate::published`].

mod cell_config;
mod cell_record;
mod experiment;
mod grids;
mod plots;
mod runner;
mod tables;

pub use cell_config::{cell_config, fingerprint};
pub use cell_record::{CELL_FORMAT, CellRecord, CellStatus, experiment_dir, read_record};
pub use experiment::{Cell, Experiment, Part, ReproduceOptions, Scale};
pub use runner::{
    Event, MergeSummary, ReproduceError, Summary, merge_parts, run_cells, run_experiment,
};
pub use tables::write_tables;
