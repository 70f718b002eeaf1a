//! Policies: neural networks (MLP, symmetry-aware, GNN) and parametric heuristics that map an
//! observation of the inventory network to orders and shipments.

pub mod allocation;
pub mod mlp;

pub use mlp::{Activation, Mlp, MlpSpec};
