//! The HDPO trainer: rollouts on the tape, Adam steps, dev/test evaluation, checkpoints and the
//! experiment harness.
//!
//! Read in this order: [`train_config`] (what a run is), [`rollout`] (a policy simulated on the tape or
//! tape-free), [`trainer`] (the HDPO loop), [`record`] (what a run records), [`checkpoint`] (resume), [`budget`] (memory and time
//! estimates before a run starts), [`error`] (the one error type of training).

pub mod act;
pub mod budget;
pub mod checkpoint;
pub mod error;
pub mod memo;
pub mod optimum_cache;
pub mod policy_plot;
pub mod published;
pub mod record;
pub mod reproduce;
pub mod rollout;
pub mod run;
pub mod train_config;
pub mod trainer;

pub use budget::Limits;
pub use checkpoint::{Checkpoint, retry_once, write_atomic};
pub use error::TrainError;
pub use record::{Best, COLLAPSED_EPOCHS, COLLAPSED_GRAD_NORM, EpochRecord, StopReason};
pub use rollout::{PolicyEvaluator, RolloutPeriods, TapeRollout, rollout_on_tape};
pub use run::RunDir;
pub use train_config::{LrSchedule, TrainConfig, TrainConfigError, apply_setting_overrides};
pub use trainer::{DIVERGENCE_FACTOR, Trainer, evaluate_policy, parameter_limit};
