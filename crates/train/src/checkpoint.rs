//! Checkpoints: everything needed to continue a run bit-identically — configuration, parameters,
//! Adam moments, epochs done, best-so-far and history. The per-epoch shuffling RNG is derived from
//! `(seed, epoch)`, so the epoch count is the RNG state. Files are versioned JSON, written
//! atomically and durably ([`write_atomic`]).

use crate::config::TrainConfig;
use crate::trainer::{Best, EpochRecord};
use hdpo_autodiff::{Adam, ParamStore};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Format tag of checkpoint files.
pub const CHECKPOINT_FORMAT: &str = "hdpo-checkpoint";
/// Current checkpoint version.
pub const CHECKPOINT_VERSION: u32 = 1;

/// A resumable training state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// [`CHECKPOINT_VERSION`].
    pub version: u32,
    /// Epochs completed.
    pub epoch: usize,
    /// Wall seconds spent so far.
    pub elapsed_seconds: f64,
    /// The run's configuration.
    pub config: TrainConfig,
    /// Current parameters.
    pub params: ParamStore,
    /// Optimizer state.
    pub adam: Adam,
    /// Best on dev so far.
    pub best: Option<Best>,
    /// Per-epoch records.
    pub history: Vec<EpochRecord>,
}

impl Checkpoint {
    /// Assembles a checkpoint.
    pub fn new(
        config: TrainConfig,
        params: ParamStore,
        adam: Adam,
        epoch: usize,
        best: Option<Best>,
        history: Vec<EpochRecord>,
        elapsed_seconds: f64,
    ) -> Checkpoint {
        Checkpoint {
            format: CHECKPOINT_FORMAT.into(),
            version: CHECKPOINT_VERSION,
            epoch,
            elapsed_seconds,
            config,
            params,
            adam,
            best,
            history,
        }
    }

    /// Writes the checkpoint atomically.
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let text =
            serde_json::to_string(self).map_err(|e| format!("cannot serialise checkpoint: {e}"))?;
        write_atomic(path, text.as_bytes())
    }

    /// Reads and checks a checkpoint: a clear error for a missing, corrupt, foreign or
    /// inconsistent file.
    pub fn load(path: &Path) -> Result<Checkpoint, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read checkpoint `{}`: {e}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            format!(
                "checkpoint `{}` is not valid JSON (corrupt or truncated?): {e}",
                path.display()
            )
        })?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(CHECKPOINT_FORMAT) => {}
            other => {
                return Err(format!(
                    "`{}` is not an hdpo checkpoint (format {:?}, expected \"{CHECKPOINT_FORMAT}\")",
                    path.display(),
                    other
                ));
            }
        }
        let version = value.get("version").and_then(|v| v.as_u64());
        if version != Some(CHECKPOINT_VERSION as u64) {
            return Err(format!(
                "checkpoint `{}` has version {version:?}; this hdpo reads version {CHECKPOINT_VERSION}",
                path.display()
            ));
        }
        let checkpoint: Checkpoint = serde_json::from_value(value)
            .map_err(|e| format!("checkpoint `{}` is malformed: {e}", path.display()))?;
        checkpoint
            .config
            .validate()
            .map_err(|e| format!("checkpoint `{}`: {e}", path.display()))?;
        if !checkpoint.adam.matches(&checkpoint.params) {
            return Err(format!(
                "checkpoint `{}`: optimizer state does not match the parameters",
                path.display()
            ));
        }
        if checkpoint
            .best
            .as_ref()
            .is_some_and(|b| !b.params.same_layout(&checkpoint.params))
        {
            return Err(format!(
                "checkpoint `{}`: best parameters do not match the parameters",
                path.display()
            ));
        }
        Ok(checkpoint)
    }
}

/// Atomic, durable file writes (temporary file, flush, rename, flush of the directory) and the
/// removal of the temporary files a killed writer left, shared with policy files.
pub use hdpo_policy::saved::{remove_stale_temp_files, write_atomic};
