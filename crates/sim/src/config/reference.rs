//! The reference instance: the per-store parameters of the reference's multi-store instances
//! (`data/instances/multi_store_parameters.json`, embedded at compile time; the first `S` entries
//! are the instance with `S` stores), parsed once.

use std::sync::OnceLock;

use serde::Deserialize;

/// Per-store parameters of the reference's multi-store instances (50 stores).
const REFERENCE_PARAMETERS_JSON: &str =
    include_str!("../../../../data/instances/multi_store_parameters.json");

/// Number of stores in the embedded reference instance.
pub const REFERENCE_MAX_STORES: usize = 50;

/// Per-store parameters of the reference's multi-store instances (first `S` entries = instance
/// with `S` stores).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ReferenceStores {
    /// Demand means (3 decimals).
    pub mean: Vec<f64>,
    /// Demand standard deviations (3 decimals).
    pub std: Vec<f64>,
    /// Underage costs.
    pub underage_cost: Vec<f64>,
    /// Holding costs.
    pub holding_cost: Vec<f64>,
    /// Lead times (periods).
    pub lead_time: Vec<f64>,
}

#[derive(Deserialize)]
struct ReferenceFile {
    stores_50: ReferenceStores,
}

/// The full 50-store reference parameter table, parsed once from the embedded JSON.
pub fn reference_stores() -> &'static ReferenceStores {
    static PARSED: OnceLock<ReferenceStores> = OnceLock::new();
    PARSED.get_or_init(|| {
        let file: ReferenceFile = serde_json::from_str(REFERENCE_PARAMETERS_JSON)
            .expect("embedded multi_store_parameters.json is valid (checked by a test)");
        file.stores_50
    })
}
