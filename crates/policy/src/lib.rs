//! Policies: neural networks (MLP, symmetry-aware, GNN) and parametric heuristics that map an
//! observation of the inventory network to orders and shipments.
//!
//! Read in this order: [`observation`] (what a policy sees, on the tape), [`spec`] (every policy's
//! architecture and hyper-parameters as serde data), [`policy`] (building a spec for a network and
//! acting), [`mlp`] and [`allocation`] (the shared building blocks), then the bigger networks
//! [`symmetry`] and [`gnn`], [`saved`] (policy files), [`limits`] (size checks before
//! building) and [`error`] (the one error type).

pub mod allocation;
mod dense;
pub mod error;
pub mod gnn;
pub mod limits;
pub mod mlp;
pub mod observation;
pub mod policy;
pub mod saved;
pub mod spec;
pub mod symmetry;

pub use error::PolicyError;
pub use mlp::{Activation, Mlp, MlpSpec};
pub use observation::{DemandScales, Feature, NetworkShape, TapeObservation};
pub use policy::Policy;
pub use saved::SavedPolicy;
pub use spec::{OneStoreOutput, POLICY_KINDS, PolicySpec};
