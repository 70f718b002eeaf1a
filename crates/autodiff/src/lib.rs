//! A hand-written, tape-based reverse-mode automatic differentiation engine over batched f32
//! matrices, built for HDPO: differentiating the simulated cost of an inventory network through the
//! policy and the dynamics.
//!
//! * [`Tape`] records every operation as a node in a `Vec` (a Wengert list) and hands out `Copy`
//!   handles ([`Var`]); [`Tape::backward`] sweeps the nodes in reverse.
//! * [`ops`] holds every operation, forward and backward side by side, in one closed enum [`Op`].
//! * [`CustomOp`] lets another crate add a fused op with a hand-written vector–Jacobian product;
//!   each input's adjoint comes as an [`InputGrad`], which says whether to write or add.
//! * [`ParamStore`] / [`Grads`] keep parameters and their gradients outside the tape.
//! * [`optim`] has Adam (PyTorch's), SGD, gradient clipping and initialisation.
//! * [`gradcheck`] compares every gradient with finite differences.
//! * [`ShardedTapes`] runs batch shards on rayon with a deterministic reduction.
//!
//! `docs/autodiff.md` walks from a 100-line scalar tape to this engine.

pub mod custom;
mod dot;
pub mod gemm;
pub mod gradcheck;
pub mod kernels;
pub mod ops;
pub mod optim;
pub mod params;
pub mod shard;
pub mod tape;

pub use custom::{CustomOp, InputGrad, WriteOrAdd};
pub use ops::{BinaryKind, Csr, Op, Reduce, Unary};
pub use optim::{Adam, Sgd, clip_grad_norm};
pub use params::{Grads, ParamId, ParamStore};
pub use shard::ShardedTapes;
pub use tape::{BufferPool, GradSink, Tape, Var};

pub use ndarray;
