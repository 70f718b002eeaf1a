//! The HDPO trainer: rollouts on the tape, Adam steps, dev/test evaluation, checkpoints and the
//! experiment harness.
//!
//! Read in this order: [`train_config`] (what a run is), [`rollout`] (a policy simulated on the tape or
//! tape-free), [`trainer`] (the HDPO loop), [`record`] (what a run records), [`checkpoint`] (resume), [`budget`] (memory and time
//! estimates before a run starts), [`error`] (the one error type of training).
//!
//! Training a built-in policy through the library, in a few lines (here on a small train split so
//! that it runs in seconds; `hdpo train` does the same with the setting's sizes):
//!
//! ```
//! use hdpo_sim::config::Split;
//! use hdpo_train::{TrainConfig, Trainer};
//! use std::sync::atomic::AtomicBool;
//!
//! let setting = hdpo_sim::settings::setting("one_store_lost")?;
//! let mut config = TrainConfig::default_for(setting, "vanilla_one_store")?;
//! for (key, value) in [
//!     ("setting.splits.train.batch_size", "256"),
//!     ("setting.splits.train.n_samples", "1024"),
//!     ("setting.splits.dev.batch_size", "1024"),
//!     ("setting.splits.dev.n_samples", "1024"),
//!     ("max_epochs", "10"),
//! ] {
//!     config.apply_override(key, value)?;
//! }
//! let mut trainer = Trainer::new(config)?;
//! trainer.run(&AtomicBool::new(false), |_, epoch| println!("{epoch:?}"))?;
//! let dev = trainer.evaluate(Split::Dev, true)?.cost_per_store_period;
//! assert!(dev < 7.5, "dev cost {dev} (the optimum is 6.8359)");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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
