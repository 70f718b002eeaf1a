//! Lower bound for the transshipment-centre setting (`transshipment_backlogged`): one centre that cannot
//! hold stock (lead time L from the supplier) feeding n backlogged stores (lead time l), correlated
//! normal demands.
//!
//! The bound of the published results (`published-results.md` §5, the authors'
//! `calculate_lower_bound`) relaxes the whole network to one newsvendor on total demand over
//! L + l + 1 periods, pooling the L centre periods but not the l + 1 store periods:
//! * mean (L + l + 1)·Σμᵢ,
//! * variance (l + 1)·(Σσᵢ)² + L·Var(ΣDᵢ), with Var(ΣDᵢ) = Σσᵢ² + ρ·Σ_{i≠j} σᵢσⱼ,
//! * cost (p + h)·σ_tot·φ(z), z = Φ⁻¹(p/(p+h)), reported per store (divided by n).
//!
//! It uses common h and p for all stores (the setting's h = 1, p ∈ {4, 9}).

use super::{OptimumError, Result, check_positive, normal};

/// The relaxed newsvendor behind the transshipment lower bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransshipmentBound {
    /// The bound per store per period (the reported number).
    pub per_store_cost: f64,
    /// The bound for the whole network per period (= per-store × n).
    pub total_cost: f64,
    /// Mean of the pooled demand over L + l + 1 periods.
    pub total_mean: f64,
    /// Standard deviation σ_tot of the relaxed demand.
    pub total_std: f64,
    /// The relaxed newsvendor's order-up-to level total_mean + z·σ_tot.
    pub level: f64,
}

/// Computes the transshipment lower bound (module documentation) for stores with demand means `means`
/// and standard deviations `stds` (same length n ≥ 1), pairwise correlation `correlation` ∈ [−1, 1],
/// store lead time l = `store_lead_time`, centre lead time L = `warehouse_lead_time`, holding cost h and
/// backlog penalty p common to all stores.
pub fn transshipment_lower_bound(
    means: &[f64],
    stds: &[f64],
    correlation: f64,
    store_lead_time: usize,
    warehouse_lead_time: usize,
    holding_cost: f64,
    backlog_penalty: f64,
) -> Result<TransshipmentBound> {
    if means.is_empty() || means.len() != stds.len() {
        return Err(OptimumError::new(format!(
            "means and stds must be non-empty and of equal length, got {} and {}",
            means.len(),
            stds.len()
        )));
    }
    if means.iter().any(|m| !m.is_finite()) {
        return Err(OptimumError::new("means must be finite"));
    }
    if stds.iter().any(|s| !(s.is_finite() && *s >= 0.0)) {
        return Err(OptimumError::new("stds must be finite and >= 0"));
    }
    if !(correlation.is_finite() && (-1.0..=1.0).contains(&correlation)) {
        return Err(OptimumError::new(format!(
            "correlation must be in [-1, 1], got {correlation}"
        )));
    }
    check_positive("holding_cost", holding_cost)?;
    check_positive("backlog_penalty", backlog_penalty)?;
    let stores = means.len() as f64;
    let std_sum: f64 = stds.iter().sum();
    let squares: f64 = stds.iter().map(|s| s * s).sum();
    // Σ_{i≠j} σᵢσⱼ = (Σσᵢ)² − Σσᵢ².
    let pooled_variance = squares + correlation * (std_sum * std_sum - squares);
    let variance = (store_lead_time + 1) as f64 * std_sum * std_sum
        + warehouse_lead_time as f64 * pooled_variance;
    let total_std = variance.max(0.0).sqrt();
    let total_mean = (warehouse_lead_time + store_lead_time + 1) as f64 * means.iter().sum::<f64>();
    let z = normal::inverse_cdf(backlog_penalty / (backlog_penalty + holding_cost));
    let total_cost = (backlog_penalty + holding_cost) * total_std * normal::pdf(z);
    Ok(TransshipmentBound {
        per_store_cost: total_cost / stores,
        total_cost,
        total_mean,
        total_std,
        level: total_mean + z * total_std,
    })
}
