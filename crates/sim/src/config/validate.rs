//! Validation: the checks of a setting's values against their allowed ranges and [`super::limits`],
//! each naming the field and what is allowed. [`Setting::validate`] runs them all by resolving the
//! setting (`instance.rs` checks each value where it resolves it, with the helpers here); the
//! checks that need no resolution — sizes first, since resolution allocates in proportion to them —
//! are the functions of this module.

use super::error::{ConfigError, invalid};
use super::limits::*;
use super::schema::{Objective, Setting, Split, UnmetDemand};

impl Setting {
    /// Checks every field; the error names the field and the allowed values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.instance().map(|_| ())
    }

    /// The node counts, the split sizes, the observation window, `upper_bound_mult` and the
    /// objective: everything that is checked before anything is resolved (the sizes first:
    /// resolution allocates in proportion to them).
    pub(super) fn check_top_level(&self) -> Result<(), ConfigError> {
        let s = self.network.n_stores;
        let w = self.network.n_warehouses;
        if s == 0 || s > MAX_STORES {
            return Err(invalid(
                "network.n_stores",
                format!("is {s}; allowed: an integer 1 … {MAX_STORES}"),
            ));
        }
        if w > MAX_WAREHOUSES {
            return Err(invalid(
                "network.n_warehouses",
                format!("is {w}; allowed: an integer 0 … {MAX_WAREHOUSES}"),
            ));
        }
        let n_echelons = self.n_echelons();
        if n_echelons > MAX_ECHELONS {
            return Err(invalid(
                "echelons.lead_time",
                format!(
                    "has {n_echelons} entries (one per extra echelon); allowed: 1 … {MAX_ECHELONS}"
                ),
            ));
        }
        // sizes first: everything below allocates in proportion to them
        self.check_split_sizes()?;
        let observation = &self.observation;
        if observation.past_demands > MAX_LEAD_TIME {
            return Err(invalid(
                "observation.past_demands",
                format!(
                    "is {}; allowed: an integer 0 … {MAX_LEAD_TIME}",
                    observation.past_demands
                ),
            ));
        }
        check_finite_positive("upper_bound_mult", self.upper_bound_mult, false)?;
        if self.objective == Objective::Profit && self.unmet_demand != UnmetDemand::Lost {
            return Err(invalid(
                "objective",
                "\"profit\" requires unmet_demand = \"lost\"; allowed with \"backlogged\": \"cost\"",
            ));
        }
        Ok(())
    }

    /// Sizes of the three splits: counts ≥ 1 and within [`limits`], `batch_size ≤ n_samples`,
    /// `ignore_periods < periods`.
    fn check_split_sizes(&self) -> Result<(), ConfigError> {
        for split in Split::ALL {
            let sizes = self.split(split);
            let field = |k: &str| format!("splits.{split}.{k}");
            if sizes.n_samples == 0 || sizes.n_samples > MAX_SAMPLES {
                return Err(invalid(
                    field("n_samples"),
                    format!(
                        "is {}; allowed: an integer 1 … {MAX_SAMPLES}",
                        sizes.n_samples
                    ),
                ));
            }
            if sizes.batch_size == 0 || sizes.batch_size > sizes.n_samples {
                return Err(invalid(
                    field("batch_size"),
                    format!(
                        "is {}; allowed: 1 ≤ batch_size ≤ n_samples = {}",
                        sizes.batch_size, sizes.n_samples
                    ),
                ));
            }
            if sizes.periods == 0 || sizes.periods > MAX_PERIODS {
                return Err(invalid(
                    field("periods"),
                    format!(
                        "is {}; allowed: an integer 1 … {MAX_PERIODS}",
                        sizes.periods
                    ),
                ));
            }
            if sizes.ignore_periods >= sizes.periods {
                return Err(invalid(
                    field("ignore_periods"),
                    format!(
                        "is {}; allowed: 0 ≤ ignore_periods < periods = {}",
                        sizes.ignore_periods, sizes.periods
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `initial_inventory`: the range multipliers and the minimum store pipeline length.
    pub(super) fn check_initial_inventory(&self) -> Result<(), ConfigError> {
        let init = &self.initial_inventory;
        let [lo, hi] = init.range_mult;
        if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
            return Err(invalid(
                "initial_inventory.range_mult",
                format!("is [{lo}, {hi}]; allowed: [low, high] with 0 ≤ low ≤ high"),
            ));
        }
        if init.inventory_periods == 0 || init.inventory_periods > MAX_LEAD_TIME {
            return Err(invalid(
                "initial_inventory.inventory_periods",
                format!(
                    "is {}; allowed: an integer 1 … {MAX_LEAD_TIME}",
                    init.inventory_periods
                ),
            ));
        }
        Ok(())
    }
}

/// A lead time: an integer `1 ≤ x ≤` [`MAX_LEAD_TIME`].
pub(super) fn lead_time_value(field: &str, x: f64) -> Result<u32, ConfigError> {
    if x.fract() == 0.0 && x >= 1.0 && x <= MAX_LEAD_TIME as f64 {
        Ok(x as u32)
    } else {
        Err(invalid(
            field,
            format!("is {x}; allowed: an integer 1 … {MAX_LEAD_TIME} (periods)"),
        ))
    }
}

/// A non-negative (or strictly positive) finite number.
pub(super) fn check_finite_positive(
    field: &str,
    x: f64,
    allow_zero: bool,
) -> Result<(), ConfigError> {
    let ok = x.is_finite() && if allow_zero { x >= 0.0 } else { x > 0.0 };
    if ok {
        Ok(())
    } else {
        let allowed = if allow_zero { "≥ 0" } else { "> 0" };
        Err(invalid(
            field,
            format!("is {x}; allowed: a finite number {allowed}"),
        ))
    }
}

/// An explicit pipeline length (checked) or the derived one.
pub(super) fn pipeline_length(
    field: &str,
    explicit: Option<usize>,
    derived: usize,
    max_lead_time: u32,
) -> Result<usize, ConfigError> {
    match explicit {
        None => Ok(derived),
        Some(length)
            if length >= 2 && length >= max_lead_time as usize && length <= MAX_LEAD_TIME =>
        {
            Ok(length)
        }
        Some(length) => Err(invalid(
            field,
            format!(
                "is {length}; allowed: an integer ≥ 2, ≥ the largest lead time ({max_lead_time}) \
                 and ≤ {MAX_LEAD_TIME}"
            ),
        )),
    }
}
