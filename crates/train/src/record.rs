//! The records of a run: plain data that the trainer produces and the checkpoint, the run directory
//! and the experiment harness store or read — what happened in an epoch ([`EpochRecord`]), the
//! best parameters on dev ([`Best`]) and why training stopped ([`StopReason`]). They depend on
//! nothing else in the crate, so [`crate::checkpoint`] does not import [`crate::trainer`].

use hdpo_autodiff::ParamStore;
use serde::{Deserialize, Serialize};

/// What happened in one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochRecord {
    /// Epoch index (0-based).
    pub epoch: usize,
    /// Mean HDPO loss over the epoch's batches (all periods).
    pub train_loss: f64,
    /// Average train cost per store per period over the reported periods (the reference's print).
    pub train_cost: f64,
    /// Dev cost per store per period, on dev epochs.
    pub dev_cost: Option<f64>,
    /// Best dev cost so far.
    pub best_dev_cost: Option<f64>,
    /// Learning rate used.
    pub learning_rate: f32,
    /// Mean global gradient norm (before clipping).
    pub grad_norm: f64,
    /// Wall seconds since the start of training (including time before a resume).
    pub elapsed_seconds: f64,
}

/// The best parameters seen on dev.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Best {
    /// Epoch at which they were evaluated.
    pub epoch: usize,
    /// Their dev cost.
    pub dev_cost: f64,
    /// The parameters.
    pub params: ParamStore,
}

/// Why [`Trainer::run`](crate::Trainer::run) returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `max_epochs` reached.
    MaxEpochs,
    /// No dev improvement for `patience_epochs`.
    EarlyStopping,
    /// `max_seconds` reached.
    TimeBudget,
    /// Interrupted (Ctrl-C).
    Interrupted,
    /// Nothing to train (the policy has no parameters).
    NotTrainable,
    /// The gradient norm stayed below [`COLLAPSED_GRAD_NORM`] for [`COLLAPSED_EPOCHS`] epochs in a
    /// row: every output of the policy is saturated (e.g. nothing is ordered anywhere), so no
    /// further step can change it.
    Collapsed,
}

/// Consecutive epochs of a vanishing gradient after which a run stops as [`StopReason::Collapsed`]
/// (by then Adam's momentum has decayed too: 0.9 per step).
pub const COLLAPSED_EPOCHS: usize = 2;

/// A mean global gradient norm below which Adam (ε = 1e-8) moves no parameter by more than
/// `learning_rate × 1e-6` per step: the policy is stuck.
pub const COLLAPSED_GRAD_NORM: f64 = 1e-14;
