//! The batched inventory simulator: problem settings, scenario generation and the period dynamics,
//! on the autodiff tape (training) and tape-free (evaluation).
//!
//! Read top to bottom: [`config`] (what a setting is, TOML, overrides, validation),
//! [`settings`] (the embedded synthetic settings), [`state`] (the batched data layout),
//! [`rng`] (the keyed random streams), [`scenario`] (seeded generation of parameters, initial states and demand), [`dynamics`]
//! (the scalar formulas and the step), [`eval`] (the sharded, streaming, tape-free evaluator).
//! `docs/simulator.md` documents the semantics and every configuration key.

pub mod config;
pub mod dynamics;
pub mod eval;
pub mod rng;
pub mod scenario;
pub mod settings;
pub mod state;
pub mod tape;

pub use config::{ConfigError, Objective, Setting, Split, UnmetDemand};
pub use dynamics::{StepError, step};
pub use eval::{ActionPolicy, BaseStockPolicy, EvalObservation, EvalOptions, EvalReport, evaluate};
pub use scenario::{DemandStream, Scenario, ScenarioGenerator};
pub use state::{Actions, State, Statics};
