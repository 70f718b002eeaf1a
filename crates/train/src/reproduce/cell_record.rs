//! Cell records: the outcome of a cell as stored in `cells/<id>.json` ([`CellRecord`]), where it
//! lives under an experiment's directory, and whether a cell is done (a record that says "done" and
//! carries the fingerprint of the current configuration).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::record::StopReason;
use crate::train_config::TrainConfig;
use hdpo_optimum::ReferenceKind;

use super::cell_config::fingerprint;
use super::experiment::{Cell, Scale};

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
    /// Standard error of the test cost across the test scenarios (absent in records written
    /// before it was measured).
    #[serde(default)]
    pub test_std_error: Option<f64>,
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

/// The directory of an experiment under an output root.
pub fn experiment_dir(out: &Path, name: &str) -> PathBuf {
    out.join(name)
}

pub(super) fn record_path(dir: &Path, id: &str) -> PathBuf {
    dir.join("cells").join(format!("{id}.json"))
}

/// Reads a cell record; `None` when absent or unreadable (a corrupt record is re-run).
pub fn read_record(dir: &Path, id: &str) -> Option<CellRecord> {
    let text = std::fs::read_to_string(record_path(dir, id)).ok()?;
    let record: CellRecord = serde_json::from_str(&text).ok()?;
    (record.format == CELL_FORMAT && record.id == id).then_some(record)
}

pub(super) fn is_done(dir: &Path, cell: &Cell, config: Option<&TrainConfig>) -> bool {
    let Some(config) = config else { return false };
    read_record(dir, &cell.id)
        .is_some_and(|r| r.status == CellStatus::Done && r.fingerprint == fingerprint(config))
}

pub(super) fn failed_record(
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
        test_std_error: None,
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
