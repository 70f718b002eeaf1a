//! Discrete distributions used by the solvers: the Poisson law and distributions on an equally spaced
//! lattice {0, Δ, 2Δ, …} (sums of several periods' demand by convolution, loss functions, discretisation of
//! a normal law clipped at zero).

use super::{OptimumError, Result, normal};

/// Probability mass function of a Poisson law with mean `mean`, P(D = k) for k = 0..=`k_max`.
///
/// Computed in log space (log P(k) = log P(k−1) + ln λ − ln k, log P(0) = −λ), so it neither overflows
/// nor underflows prematurely for large means. `mean` must be finite and ≥ 0 (mean 0 is a point mass at 0).
pub fn poisson_pmf(mean: f64, k_max: usize) -> Result<Vec<f64>> {
    if !mean.is_finite() || mean < 0.0 {
        return Err(OptimumError::new(format!(
            "poisson mean must be finite and >= 0, got {mean}"
        )));
    }
    let mut pmf = vec![0.0; k_max + 1];
    if mean == 0.0 {
        pmf[0] = 1.0;
        return Ok(pmf);
    }
    let log_mean = mean.ln();
    let mut log_p = -mean;
    pmf[0] = log_p.exp();
    for (k, p) in pmf.iter_mut().enumerate().skip(1) {
        log_p += log_mean - (k as f64).ln();
        *p = log_p.exp();
    }
    Ok(pmf)
}

/// A point `k_max` beyond which a Poisson law with mean `mean` has mass far below 1e-17:
/// `mean + 12·√mean + 30`, rounded up.
pub fn poisson_support_bound(mean: f64) -> usize {
    (mean + 12.0 * mean.sqrt() + 30.0).ceil() as usize
}

/// Tail probabilities P(D ≥ k) for k = 0..pmf.len(), by backward summation (no cancellation);
/// the mass beyond the last pmf entry is taken as zero.
pub fn tail_at_least(pmf: &[f64]) -> Vec<f64> {
    let mut tail = vec![0.0; pmf.len() + 1];
    for k in (0..pmf.len()).rev() {
        tail[k] = tail[k + 1] + pmf[k];
    }
    tail.truncate(pmf.len());
    tail
}

/// A probability distribution on the lattice {0, Δ, 2Δ, …}: `pmf[k]` = P(X = k·Δ).
#[derive(Debug, Clone, PartialEq)]
pub struct LatticeDistribution {
    /// Lattice spacing Δ > 0.
    pub step: f64,
    /// Point masses on 0, Δ, 2Δ, …; non-negative, summing to 1 (up to rounding and trimmed tails).
    pub pmf: Vec<f64>,
}

impl LatticeDistribution {
    /// Builds a lattice distribution, checking that `step` is positive and `pmf` is a non-empty vector of
    /// non-negative masses whose sum is within 1e-9 of 1.
    pub fn new(step: f64, pmf: Vec<f64>) -> Result<Self> {
        if !(step.is_finite() && step > 0.0) {
            return Err(OptimumError::new(format!(
                "lattice step must be finite and > 0, got {step}"
            )));
        }
        if pmf.is_empty() || pmf.iter().any(|&p| !(p.is_finite() && p >= 0.0)) {
            return Err(OptimumError::new(
                "demand pmf must be non-empty with finite non-negative masses",
            ));
        }
        let total: f64 = pmf.iter().sum();
        if (total - 1.0).abs() > 1e-9 {
            return Err(OptimumError::new(format!(
                "demand pmf must sum to 1, sums to {total}"
            )));
        }
        Ok(Self { step, pmf })
    }

    /// Mean E\[X\] = Σ k·Δ·P(k).
    pub fn mean(&self) -> f64 {
        self.step
            * self
                .pmf
                .iter()
                .enumerate()
                .map(|(k, p)| k as f64 * p)
                .sum::<f64>()
    }

    /// Variance of X.
    pub fn variance(&self) -> f64 {
        let mean_units = self.mean() / self.step;
        self.step
            * self.step
            * self
                .pmf
                .iter()
                .enumerate()
                .map(|(k, p)| (k as f64 - mean_units).powi(2) * p)
                .sum::<f64>()
    }

    /// Distribution of the sum of `periods` independent copies (convolution power; `periods` = 0 gives
    /// the point mass at 0). After every convolution each tail with total mass below 1e-16 is cut: the
    /// upper one is dropped and the lower one zeroed, their mass moved onto the nearest kept point (so
    /// the total stays 1 and the zeros cost nothing in later convolutions).
    pub fn sum_of_periods(&self, periods: usize) -> LatticeDistribution {
        let mut result = vec![1.0];
        for _ in 0..periods {
            result = convolve(&result, &self.pmf);
            trim_upper_tail(&mut result, 1e-16);
            zero_lower_tail(&mut result, 1e-16);
        }
        LatticeDistribution {
            step: self.step,
            pmf: result,
        }
    }

    /// Expected shortfall E[(X − k·Δ)⁺] in lattice units for every integer k in `0..=k_max`
    /// (multiply by Δ to get quantities). For k ≤ 0 the value is E\[X\]/Δ − k.
    pub fn loss_units(&self, k_max: usize) -> Vec<f64> {
        // E[(X−k)⁺] = Σ_{j>k} (j−k) P(j), computed from suffix sums of P(j) and j·P(j).
        let n = self.pmf.len();
        let mut suffix_mass = vec![0.0; n + 1];
        let mut suffix_first_moment = vec![0.0; n + 1];
        for j in (0..n).rev() {
            suffix_mass[j] = suffix_mass[j + 1] + self.pmf[j];
            suffix_first_moment[j] = suffix_first_moment[j + 1] + j as f64 * self.pmf[j];
        }
        (0..=k_max)
            .map(|k| {
                if k + 1 >= n {
                    0.0
                } else {
                    suffix_first_moment[k + 1] - k as f64 * suffix_mass[k + 1]
                }
            })
            .collect()
    }
}

/// Full discrete convolution of two mass vectors.
pub fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; a.len() + b.len() - 1];
    for (i, &ai) in a.iter().enumerate() {
        if ai == 0.0 {
            continue;
        }
        for (o, &bj) in out[i..].iter_mut().zip(b) {
            *o += ai * bj;
        }
    }
    out
}

/// Drops upper-tail points whose cumulative mass is below `tail_mass`, moving that mass onto the last
/// kept point.
fn trim_upper_tail(pmf: &mut Vec<f64>, tail_mass: f64) {
    let mut dropped = 0.0;
    while pmf.len() > 1 {
        let last = pmf[pmf.len() - 1];
        if dropped + last >= tail_mass {
            break;
        }
        dropped += last;
        pmf.pop();
    }
    if let Some(last) = pmf.last_mut() {
        *last += dropped;
    }
}

/// Zeroes lower-tail points whose cumulative mass is below `tail_mass`, moving that mass onto the
/// first kept point.
fn zero_lower_tail(pmf: &mut [f64], tail_mass: f64) {
    let mut moved = 0.0;
    let mut first_kept = 0;
    while first_kept + 1 < pmf.len() && moved + pmf[first_kept] < tail_mass {
        moved += pmf[first_kept];
        pmf[first_kept] = 0.0;
        first_kept += 1;
    }
    pmf[first_kept] += moved;
}

/// Discretises a normal law N(`mean`, `std`²) clipped at 0 (X = max(N, 0)) onto the lattice
/// {0, Δ, 2Δ, …} by rounding to the nearest lattice point: P(k) = P((k−½)Δ < X ≤ (k+½)Δ), with all
/// of the mass of X ≤ Δ/2 (including the atom at 0) on k = 0. The upper tail beyond mean + 12·std is
/// dropped (mass < 1e-32). Rounding keeps the mean to O(Δ²) and adds Δ²/12 to the variance.
pub fn clipped_normal_lattice(mean: f64, std: f64, step: f64) -> Result<LatticeDistribution> {
    if !mean.is_finite() {
        return Err(OptimumError::new(format!(
            "demand mean must be finite, got {mean}"
        )));
    }
    if !(std.is_finite() && std > 0.0) {
        return Err(OptimumError::new(format!(
            "demand std must be finite and > 0, got {std}"
        )));
    }
    if !(step.is_finite() && step > 0.0) {
        return Err(OptimumError::new(format!(
            "lattice step must be finite and > 0, got {step}"
        )));
    }
    let top = mean + 12.0 * std;
    if top <= 0.0 {
        return LatticeDistribution::new(step, vec![1.0]);
    }
    let k_max = (top / step).ceil() as usize + 1;
    if k_max > 50_000_000 {
        return Err(OptimumError::new(format!(
            "lattice step {step} is too fine for demand mean {mean} and std {std}"
        )));
    }
    let cdf_at = |x: f64| normal::cdf((x - mean) / std);
    let mut pmf = Vec::with_capacity(k_max + 1);
    let mut previous = cdf_at(0.5 * step);
    pmf.push(previous);
    for k in 1..=k_max {
        let upper = cdf_at((k as f64 + 0.5) * step);
        pmf.push((upper - previous).max(0.0));
        previous = upper;
    }
    let total: f64 = pmf.iter().sum();
    for p in &mut pmf {
        *p /= total;
    }
    LatticeDistribution::new(step, pmf)
}

/// Mean of a normal law N(`mean`, `std`²) clipped at 0: E[max(N, 0)] = μ·Φ(μ/σ) + σ·φ(μ/σ).
pub fn clipped_normal_mean(mean: f64, std: f64) -> f64 {
    if std <= 0.0 {
        return mean.max(0.0);
    }
    let z = mean / std;
    mean * normal::cdf(z) + std * normal::pdf(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_pmf_sums_to_one_and_has_the_right_mean() {
        let pmf = poisson_pmf(5.0, poisson_support_bound(5.0)).unwrap();
        let total: f64 = pmf.iter().sum();
        let mean: f64 = pmf.iter().enumerate().map(|(k, p)| k as f64 * p).sum();
        assert!((total - 1.0).abs() < 1e-14);
        assert!((mean - 5.0).abs() < 1e-13);
        let big = poisson_pmf(900.0, poisson_support_bound(900.0)).unwrap();
        assert!((big.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn clipped_normal_lattice_moments() {
        let lattice = clipped_normal_lattice(5.0, 2.0, 0.01).unwrap();
        assert!((lattice.mean() - clipped_normal_mean(5.0, 2.0)).abs() < 1e-5);
        let three = lattice.sum_of_periods(3);
        assert!((three.mean() - 3.0 * lattice.mean()).abs() < 1e-10);
        assert!((three.variance() - 3.0 * lattice.variance()).abs() < 1e-8);
    }

    #[test]
    fn loss_function_of_a_two_point_law() {
        let d = LatticeDistribution::new(1.0, vec![0.5, 0.0, 0.5]).unwrap();
        let loss = d.loss_units(3);
        assert_eq!(loss, vec![1.0, 0.5, 0.0, 0.0]);
    }
}
