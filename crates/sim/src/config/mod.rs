//! Problem settings: what network is simulated, with which costs, lead times and demand, over
//! which dataset sizes and seeds. A [`Setting`] is plain serde data read from TOML
//! ([`Setting::from_toml_str`], [`Setting::from_file`]), changed with dotted `key=value`
//! overrides ([`Setting::apply_override`]) and checked by [`Setting::validate`], which names the
//! offending field and the allowed values. [`Setting::instance`] resolves it into concrete
//! per-store parameters (an [`Instance`]) — including "the reference instance", the first `S`
//! entries of `data/instances/multi_store_parameters.json`, embedded at compile time.
//!
//! One file per concept, every public item re-exported here (`hdpo_sim::config::Setting`, …):
//!
//! | file | owns |
//! |---|---|
//! | `schema.rs` | [`Setting`] and its tables, the enums, the value forms, defaults, accessors |
//! | `parse.rs` | TOML text and files ↔ [`Setting`], the hand-written serde forms |
//! | `overrides.rs` | `key=value` overrides and [`OVERRIDE_SHORTCUTS`] |
//! | `validate.rs` | [`Setting::validate`] and the value checks; [`limits`] (`limits.rs`) |
//! | `instance.rs` | [`Setting::instance`]: resolution into an [`Instance`] |
//! | `reference.rs` | the embedded reference instance ([`reference_stores`]) |
//! | `error.rs` | [`ConfigError`] |
//!
//! The full schema is documented in `docs/simulator.md`.

mod error;
mod instance;
pub mod limits;
mod overrides;
mod parse;
mod reference;
mod schema;
mod validate;

pub use crate::demand_data::{DataFormat, DataStores, NegativeDemand};
pub use error::ConfigError;
pub use instance::{Instance, StoreLeadTimes, StoreValues};
pub use overrides::OVERRIDE_SHORTCUTS;
pub use parse::normalize_lexically;
pub use reference::{REFERENCE_MAX_STORES, ReferenceStores, reference_stores};
pub use schema::{
    CalendarConfig, DemandConfig, DemandDistribution, EchelonParams, InitialInventory,
    InitialInventoryRule, Network, NodeValues, Objective, ObservationConfig, ParamSource,
    PipelineLengths, SampleLevel, SampledRange, Seeds, Setting, Split, SplitSizes, Splits,
    StaticFeature, StoreParams, UnmetDemand, WarehouseParams,
};
