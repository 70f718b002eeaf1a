//! Checkpoints: everything needed to continue a run bit-identically — configuration, parameters,
//! Adam moments, epochs done, best-so-far and history. The per-epoch shuffling RNG is derived from
//! `(seed, epoch)`, so the epoch count is the RNG state. Files are versioned JSON, written
//! atomically and durably ([`write_atomic`]).

use crate::record::{Best, EpochRecord};
use crate::train_config::TrainConfig;
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
        checkpoint
            .check()
            .map_err(|e| format!("checkpoint `{}`: {e}", path.display()))?;
        Ok(checkpoint)
    }

    /// Checks that the checkpoint is a state a run can be in: every value finite (a number too
    /// large for `f32`, such as `1e39`, reads as infinity), Adam's moments shaped like the
    /// parameters with `v ≥ 0` and sane hyper-parameters, `epoch ≤ max_epochs`, one history
    /// record per epoch done, in order, the step count those epochs took, and a best-on-dev that
    /// is the best dev epoch of the history. (That the parameters fit the policy of the
    /// configuration is checked when the policy is built, by [`crate::Trainer::resume`].)
    pub fn check(&self) -> Result<(), String> {
        let config = &self.config;
        let finite = |what: &str, v: f64| {
            if v.is_finite() {
                Ok(())
            } else {
                Err(format!("{what} is {v}; allowed: a finite number"))
            }
        };
        let all_finite = |what: &str, store: &ParamStore| {
            for id in store.ids() {
                if let Some(v) = store.value(id).iter().find(|v| !v.is_finite()) {
                    return Err(format!(
                        "{what} `{}` holds {v}; allowed: finite numbers",
                        store.name(id)
                    ));
                }
            }
            Ok(())
        };
        if !(self.elapsed_seconds.is_finite() && self.elapsed_seconds >= 0.0) {
            return Err(format!(
                "elapsed_seconds is {}; allowed: a finite number ≥ 0",
                self.elapsed_seconds
            ));
        }
        if self.epoch > config.max_epochs {
            return Err(format!(
                "epoch is {} but the configuration's max_epochs is {}; allowed: epoch ≤ max_epochs",
                self.epoch, config.max_epochs
            ));
        }
        all_finite("parameter", &self.params)?;
        let adam = &self.adam;
        if !adam.matches(&self.params) {
            return Err("optimizer state does not match the parameters".into());
        }
        finite("adam.lr", adam.lr as f64)?;
        for (what, beta) in [("adam.beta1", adam.beta1), ("adam.beta2", adam.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(format!("{what} is {beta}; allowed: 0 ≤ β < 1"));
            }
        }
        if !(adam.eps.is_finite() && adam.eps > 0.0) {
            return Err(format!(
                "adam.eps is {}; allowed: a finite number > 0",
                adam.eps
            ));
        }
        for (k, (m, v)) in adam.m.iter().zip(&adam.v).enumerate() {
            let name = self.params.name(hdpo_autodiff::ParamId(k as u32));
            if let Some(x) = m.iter().find(|x| !x.is_finite()) {
                return Err(format!(
                    "adam first moment of `{name}` holds {x}; allowed: finite numbers"
                ));
            }
            if let Some(x) = v.iter().find(|x| !(x.is_finite() && **x >= 0.0)) {
                return Err(format!(
                    "adam second moment of `{name}` holds {x}; allowed: finite numbers ≥ 0"
                ));
            }
        }
        if self.history.len() != self.epoch {
            return Err(format!(
                "has {} history records for {} epochs done; allowed: one record per epoch",
                self.history.len(),
                self.epoch
            ));
        }
        for (i, record) in self.history.iter().enumerate() {
            if record.epoch != i {
                return Err(format!(
                    "history record {i} is for epoch {}; allowed: records in epoch order",
                    record.epoch
                ));
            }
            let what = |field: &str| format!("history[{i}].{field}");
            finite(&what("train_loss"), record.train_loss)?;
            finite(&what("train_cost"), record.train_cost)?;
            finite(&what("grad_norm"), record.grad_norm)?;
            finite(&what("elapsed_seconds"), record.elapsed_seconds)?;
            finite(&what("learning_rate"), record.learning_rate as f64)?;
            if let Some(d) = record.dev_cost {
                finite(&what("dev_cost"), d)?;
            }
            if let Some(d) = record.best_dev_cost {
                finite(&what("best_dev_cost"), d)?;
            }
        }
        let sizes = config.setting.splits.train;
        let steps =
            (self.epoch as u64).saturating_mul(sizes.n_samples.div_ceil(sizes.batch_size) as u64);
        if self.epoch > 0 && adam.step_count != steps {
            return Err(format!(
                "adam.step_count is {} but {} epochs of {} batches take {steps} steps",
                adam.step_count,
                self.epoch,
                sizes.n_samples.div_ceil(sizes.batch_size)
            ));
        }
        let dev_epochs: Vec<(usize, f64)> = self
            .history
            .iter()
            .filter_map(|r| r.dev_cost.map(|d| (r.epoch, d)))
            .collect();
        match &self.best {
            None if dev_epochs.is_empty() => {}
            None => {
                return Err(format!(
                    "has no best-on-dev parameters but {} dev evaluations in its history",
                    dev_epochs.len()
                ));
            }
            Some(best) => {
                if !best.params.same_layout(&self.params) {
                    return Err("best parameters do not match the parameters".into());
                }
                all_finite("best parameter", &best.params)?;
                finite("best.dev_cost", best.dev_cost)?;
                let recorded = dev_epochs.iter().find(|(e, _)| *e == best.epoch);
                if recorded.is_none_or(|(_, d)| d.to_bits() != best.dev_cost.to_bits()) {
                    return Err(format!(
                        "best.epoch {} with dev cost {} is not a dev evaluation of the history",
                        best.epoch, best.dev_cost
                    ));
                }
                if let Some((e, d)) = dev_epochs.iter().find(|(_, d)| *d < best.dev_cost) {
                    return Err(format!(
                        "best.dev_cost {} is not the best: epoch {e} has dev cost {d}",
                        best.dev_cost
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Runs `write`, and once more after a second when it fails (a transient error: a full disk
/// being cleaned, a network file system's hiccup). The error of the second attempt names both.
pub fn retry_once<T>(mut write: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    write().or_else(|first| {
        std::thread::sleep(std::time::Duration::from_secs(1));
        write().map_err(|second| {
            if second == first {
                format!("{second} (also when retried after 1 s)")
            } else {
                format!("{second} (retried after 1 s; the first attempt: {first})")
            }
        })
    })
}

/// Atomic, durable file writes (temporary file, flush, rename, flush of the directory) and the
/// removal of the temporary files a killed writer left, shared with policy files.
pub use hdpo_policy::saved::{remove_stale_temp_files, write_atomic};
