//! The one error type of training ([`TrainError`]): why a run could not start, or stopped with an
//! error — configuration, setting, policy, a refused step, evaluation, a non-finite or diverging
//! loss, a checkpoint, the size budget, or the run's files.

use hdpo_policy::PolicyError;
use hdpo_sim::dynamics::StepError;
use hdpo_sim::eval::EvalError;

/// Why training stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] crate::train_config::TrainConfigError),
    /// The setting is invalid.
    #[error(transparent)]
    Setting(#[from] hdpo_sim::ConfigError),
    /// The policy cannot be built for this setting.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A policy produced invalid actions during training.
    #[error("epoch {epoch}: {source}")]
    Step {
        /// Epoch of the failure.
        epoch: usize,
        /// What was wrong.
        #[source]
        source: StepError,
    },
    /// Evaluation failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// The loss or its gradient is NaN or infinite; parameters were not updated.
    #[error(
        "epoch {epoch}: the training loss or its gradient is not finite (loss {loss}); the last good parameters are kept"
    )]
    NonFinite {
        /// Epoch of the failure.
        epoch: usize,
        /// The loss value.
        loss: f64,
    },
    /// A checkpoint could not be used.
    #[error("{0}")]
    Checkpoint(String),
    /// The run would need more memory or time than allowed ([`crate::budget`]); nothing large
    /// was allocated.
    #[error("{0}")]
    TooLarge(String),
    /// The run diverged: its loss grew past [`DIVERGENCE_FACTOR`](crate::DIVERGENCE_FACTOR) × its first epoch's, or a
    /// parameter left the sane range ([`parameter_limit`](crate::parameter_limit)). The parameters of the failing epoch
    /// are not kept anywhere.
    #[error("epoch {epoch}: training diverged: {reason}")]
    Diverged {
        /// Epoch of the failure.
        epoch: usize,
        /// What left its range.
        reason: String,
    },
    /// Writing the run's files (checkpoint, metrics, policy) failed; reported by the `on_epoch`
    /// callback of [`Trainer::try_run`](crate::Trainer::try_run).
    #[error("{0}")]
    Output(String),
}
