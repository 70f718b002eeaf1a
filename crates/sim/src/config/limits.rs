//! Size limits, checked by [`Setting::validate`](super::Setting::validate) before anything is
//! allocated: past them a setting is refused with the field and the allowed range (within them, the
//! trainer still estimates the memory and time a run needs before it starts).

/// Largest number of stores `S`.
pub const MAX_STORES: usize = 100_000;
/// Largest number of stores with correlated normal demand: the draw keeps an `S × S` Cholesky
/// factor (16 · S² bytes while it is computed) and computing it takes `S³ / 3` operations.
pub const MAX_CORRELATED_STORES: usize = 10_000;
/// Largest number of warehouses `W`.
pub const MAX_WAREHOUSES: usize = 1_000;
/// Largest number of extra echelons `E`.
pub const MAX_ECHELONS: usize = 100;
/// Largest lead time, pipeline length, `inventory_periods` and `past_demands` (periods).
pub const MAX_LEAD_TIME: usize = 1_000;
/// Largest number of samples of a split.
pub const MAX_SAMPLES: usize = 100_000_000;
/// Largest number of periods of a split.
pub const MAX_PERIODS: usize = 1_000_000;
/// Largest number of calendar feature columns (`demand.calendar.columns`).
pub const MAX_CALENDAR_COLUMNS: usize = 64;
