//! hdpo: Hindsight Differentiable Policy Optimization for inventory networks.
//!
//! This root crate re-exports the workspace crates so that a user depends on one crate:
//! [`autodiff`] (the tape), [`sim`] (the simulator), [`optimum`] (exact optima and bounds), [`policy`]
//! (policies) and [`train`] (the trainer).

pub use hdpo_autodiff as autodiff;
pub use hdpo_optimum as optimum;
pub use hdpo_policy as policy;
pub use hdpo_sim as sim;
pub use hdpo_train as train;

pub mod cli;
pub mod setting_file;
pub mod signals;
