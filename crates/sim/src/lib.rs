//! The batched inventory simulator: problem settings, scenario generation and the period dynamics,
//! on the autodiff tape (training) and tape-free (evaluation).
//!
//! Read top to bottom: [`config`] (what a setting is, TOML, overrides, validation),
//! [`demand_data`] (historical demand series read from CSV files), [`calendar`] (per-period
//! calendar features from a second CSV file), [`settings`] (the embedded settings), [`state`] (the batched data layout),
//! [`rng`] (the keyed random streams), [`scenario`] (seeded generation of parameters, initial states and demand), [`topology`] (who
//! supplies whom, built once per batch; the validation of actions), [`dynamics`] (the per-row
//! formulas with their partials, and the tape-free step), [`fused`] (the same dynamics as fused
//! ops on the autodiff tape), [`eval`] (the sharded, streaming, tape-free evaluator).
//! `docs/simulator.md` documents the semantics and every configuration key.

pub mod calendar;
pub mod config;
pub mod demand_data;
pub mod dynamics;
pub mod eval;
pub mod fused;
pub mod rng;
pub mod scenario;
pub mod settings;
pub mod state;
pub mod topology;

pub use config::{ConfigError, Objective, Setting, Split, UnmetDemand};
pub use dynamics::{StepError, step};
pub use eval::{ActionPolicy, BaseStockPolicy, EvalObservation, EvalOptions, EvalReport, evaluate};
pub use scenario::{DemandStream, Scenario, ScenarioGenerator};
pub use state::{Actions, State, Statics};
