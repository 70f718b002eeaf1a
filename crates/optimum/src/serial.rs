//! Serial systems (Clark–Scarf): optimal echelon base-stock levels and the optimal long-run average
//! cost of a chain supplier → location 0 → … → location N−1 (the store), with backlogged i.i.d. demand
//! at the store only and an unlimited outside supplier.
//!
//! # Simulator accounting
//! Location j has inbound lead time ℓⱼ and pays hⱼ per unit of its own end-of-period on-hand stock; the
//! store pays p per unit backlogged per period. In-transit stock costs nothing. The echelon-stock policy
//! of the reference (`order_j = min(max(S_j − EIP_j, 0), on-hand of j−1)`, EIP_j = everything in the
//! pipelines of j and downstream) raises echelon j's inventory position to
//! yⱼ(t) = min(Sⱼ, ILᵉ_{j−1}(t)), ILᵉ the echelon inventory level, exactly as in Clark–Scarf.
//!
//! # Recursion (Chen–Zheng form), derived in `docs/optimality.md`
//! With echelon holding costs eⱼ = hⱼ − h_{j−1} (h₋₁ = 0), Dₙ the demand of n periods and μ = E D₁:
//! * store: G_{N−1}(y) = e_{N−1}·(y − (ℓ_{N−1}+1)μ) + (p + h_{N−1})·E(D_{ℓ_{N−1}+1} − y)⁺,
//! * j < N−1: Gⱼ(y) = eⱼ·(y − (ℓⱼ+1)μ) + E G_{j+1}(min(S_{j+1}, y − D_{ℓⱼ})),
//! * Sⱼ = argmin Gⱼ, and the optimal average cost in the simulator's accounting is
//!   G₀(S₀) − μ·Σ_{k≥1} h_{k−1}·ℓ_k: the echelon accounting also charges in-transit stock to location k
//!   at h_{k−1}, on average ℓ_k·μ units, which the simulator does not charge.
//!
//! The same recursion with given levels instead of the argmins evaluates any echelon base-stock policy
//! exactly ([`evaluate_echelon_base_stock`]).
//!
//! # Discretisation
//! Demand lives on a lattice {0, Δ, 2Δ, …} ([`LatticeDistribution`]); a normal law clipped at 0 is
//! rounded onto it ([`solve_serial_clipped_normal`]). Every Gⱼ is tabulated on the integer lattice
//! units; G₀ on [0, Y] with Y = n·m + 20·s·√n + 10 (n the total number of periods, m and s the mean and
//! standard deviation of one period in lattice units), and each downstream table extends further down by
//! the support of the upstream stage's lead-time demand, so no extrapolation is needed. All Gⱼ decrease
//! for y < 0, so the argmins are searched on [0, Y].

use rayon::prelude::*;

use super::discrete::{LatticeDistribution, clipped_normal_lattice};
use super::{OptimumError, Result, check_cost, check_positive};

/// One location of a serial chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SerialLocation {
    /// Lead time ℓ ≥ 1 of the location's inbound shipments.
    pub lead_time: usize,
    /// Holding cost h ≥ 0 per unit of the location's end-of-period on-hand stock.
    pub holding_cost: f64,
}

/// A serial system: locations ordered upstream → downstream, the last one is the store (which faces
/// the demand and pays `backlog_penalty` per unit backlogged per period).
#[derive(Debug, Clone, PartialEq)]
pub struct SerialSystem {
    /// Locations, upstream first: `[echelon 0, …, echelon E−1, warehouse, store]`.
    pub locations: Vec<SerialLocation>,
    /// Backlog penalty p > 0 at the store.
    pub backlog_penalty: f64,
}

impl SerialSystem {
    /// The reference serial instances (`serial_system*.yml`): `locations` ∈ 2..=7; extra echelons (the
    /// first `locations − 2` of lead times [2, 4, 1, 3, 2], holding costs [0.1, 0.2, 0.25, 0.3, 0.4]),
    /// a warehouse (lead time 3, h 0.5) and the store (lead time `store_lead_time`, h 1, penalty
    /// `backlog_penalty`). Demand N(5, 2) clipped at 0 is supplied separately.
    pub fn reference(
        locations: usize,
        store_lead_time: usize,
        backlog_penalty: f64,
    ) -> Result<Self> {
        const ECHELON_LEAD_TIMES: [usize; 5] = [2, 4, 1, 3, 2];
        const ECHELON_HOLDING: [f64; 5] = [0.1, 0.2, 0.25, 0.3, 0.4];
        if !(2..=7).contains(&locations) {
            return Err(OptimumError::new(format!(
                "locations must be in 2..=7 for the reference serial system, got {locations}"
            )));
        }
        let mut chain: Vec<SerialLocation> = (0..locations - 2)
            .map(|k| SerialLocation {
                lead_time: ECHELON_LEAD_TIMES[k],
                holding_cost: ECHELON_HOLDING[k],
            })
            .collect();
        chain.push(SerialLocation {
            lead_time: 3,
            holding_cost: 0.5,
        });
        chain.push(SerialLocation {
            lead_time: store_lead_time,
            holding_cost: 1.0,
        });
        let system = Self {
            locations: chain,
            backlog_penalty,
        };
        system.validate()?;
        Ok(system)
    }

    fn validate(&self) -> Result<()> {
        if self.locations.is_empty() || self.locations.len() > 12 {
            return Err(OptimumError::new(format!(
                "locations must have 1..=12 entries, has {}",
                self.locations.len()
            )));
        }
        for (index, location) in self.locations.iter().enumerate() {
            if !(1..=50).contains(&location.lead_time) {
                return Err(OptimumError::new(format!(
                    "locations[{index}].lead_time must be in 1..=50, got {}",
                    location.lead_time
                )));
            }
            check_cost(
                &format!("locations[{index}].holding_cost"),
                location.holding_cost,
            )?;
        }
        check_positive("backlog_penalty", self.backlog_penalty)
    }

    /// Echelon holding costs eⱼ = hⱼ − h_{j−1} (e₀ = h₀).
    pub fn echelon_holding_costs(&self) -> Vec<f64> {
        let mut upstream = 0.0;
        self.locations
            .iter()
            .map(|location| {
                let e = location.holding_cost - upstream;
                upstream = location.holding_cost;
                e
            })
            .collect()
    }

    /// Average in-transit holding cost μ·Σ_{k≥1} h_{k−1}·ℓ_k that the echelon accounting charges and
    /// the simulator does not, for mean demand `mean_demand` per period.
    pub fn in_transit_holding(&self, mean_demand: f64) -> f64 {
        self.locations
            .windows(2)
            .map(|pair| pair[0].holding_cost * pair[1].lead_time as f64 * mean_demand)
            .sum()
    }
}

/// Optimal echelon base-stock policy of a serial system and its cost.
#[derive(Debug, Clone, PartialEq)]
pub struct SerialOptimum {
    /// Optimal echelon base-stock levels Sⱼ, upstream → downstream (quantities, multiples of the step).
    pub echelon_levels: Vec<f64>,
    /// Optimal long-run average cost per period of the whole chain in the simulator's accounting.
    pub average_cost: f64,
    /// G₀(S₀): the same cost in the echelon accounting (includes in-transit holding).
    pub echelon_accounting_cost: f64,
    /// The in-transit holding constant subtracted from the echelon accounting.
    pub in_transit_holding: f64,
    /// Mean demand per period of the lattice law used.
    pub demand_mean: f64,
    /// Lattice step Δ used.
    pub lattice_step: f64,
}

impl SerialOptimum {
    /// Local increments of the echelon levels, downstream first: [S_store, S_warehouse − S_store, …],
    /// the quantities the reference `EchelonStock` policy parameterises (its x₀, x₁, …).
    pub fn level_increments_downstream_first(&self) -> Vec<f64> {
        let levels = &self.echelon_levels;
        let n = levels.len();
        (0..n)
            .map(|k| {
                let j = n - 1 - k;
                if j + 1 < n {
                    levels[j] - levels[j + 1]
                } else {
                    levels[j]
                }
            })
            .collect()
    }
}

/// Optimal echelon base-stock levels and optimal average cost for `system` with i.i.d. store demand
/// `demand` (a lattice law), by the Clark–Scarf recursion of the module documentation.
pub fn solve_serial(system: &SerialSystem, demand: &LatticeDistribution) -> Result<SerialOptimum> {
    run_recursion(system, demand, None)
}

/// Exact long-run average cost (simulator accounting) of the echelon base-stock policy with levels
/// `levels` (upstream → downstream, quantities ≥ 0; rounded to the nearest lattice point).
pub fn evaluate_echelon_base_stock(
    system: &SerialSystem,
    demand: &LatticeDistribution,
    levels: &[f64],
) -> Result<f64> {
    if levels.len() != system.locations.len() {
        return Err(OptimumError::new(format!(
            "levels must have one entry per location ({}), has {}",
            system.locations.len(),
            levels.len()
        )));
    }
    if levels.iter().any(|l| !(l.is_finite() && *l >= 0.0)) {
        return Err(OptimumError::new("levels must be finite and >= 0"));
    }
    let units: Vec<i64> = levels
        .iter()
        .map(|l| (l / demand.step).round() as i64)
        .collect();
    Ok(run_recursion(system, demand, Some(&units))?.average_cost)
}

/// [`solve_serial`] for demand N(`mean`, `std`²) clipped at 0, rounded onto the lattice of spacing
/// `step` (`docs/optimality.md`: Δ = 0.02 is within 1e-4 of the Δ → 0 limit on the reference chains).
pub fn solve_serial_clipped_normal(
    system: &SerialSystem,
    mean: f64,
    std: f64,
    step: f64,
) -> Result<SerialOptimum> {
    let demand = clipped_normal_lattice(mean, std, step)?;
    solve_serial(system, &demand)
}

/// A cost-to-go table Gⱼ on the integer lattice units [low, low + values.len()).
struct StageTable {
    low: i64,
    values: Vec<f64>,
}

impl StageTable {
    fn at(&self, y: i64) -> f64 {
        self.values[(y - self.low) as usize]
    }

    /// argmin over y ∈ [0, high] (smallest on ties).
    fn argmin_nonnegative(&self) -> i64 {
        let start = (-self.low) as usize;
        let mut best = start;
        for index in start..self.values.len() {
            if self.values[index] < self.values[best] {
                best = index;
            }
        }
        best as i64 + self.low
    }
}

fn run_recursion(
    system: &SerialSystem,
    demand: &LatticeDistribution,
    fixed_levels: Option<&[i64]>,
) -> Result<SerialOptimum> {
    system.validate()?;
    let demand = LatticeDistribution::new(demand.step, demand.pmf.clone())?;
    let step = demand.step;
    let count = system.locations.len();
    let mean_units = demand.mean() / step;
    let std_units = demand.variance().sqrt() / step;
    let single_top = (demand.pmf.len() - 1) as f64;
    let total_periods = system.locations.iter().map(|l| l.lead_time).sum::<usize>() + 1;
    let n = total_periods as f64;
    let mut high = (n * mean_units + 20.0 * std_units * n.sqrt() + 10.0)
        .min(n * single_top + 1.0)
        .ceil() as i64;
    if let Some(levels) = fixed_levels {
        high = high.max(levels.iter().copied().max().unwrap_or(0) + 1);
    }
    if high > 20_000_000 {
        return Err(OptimumError::new(format!(
            "lattice step {step} is too fine for this chain (grid of {high} points)"
        )));
    }
    let echelon_holding = system.echelon_holding_costs();

    // Lead-time demand laws: D_{ℓⱼ} for the upstream stages, D_{ℓ+1} for the store.
    let stage_demands: Vec<LatticeDistribution> = system.locations[..count - 1]
        .iter()
        .map(|location| demand.sum_of_periods(location.lead_time))
        .collect();
    // Lower ends of the tables: stage 0 starts at 0; each stage further down needs the upstream
    // stage's lower end minus its lead-time demand support.
    let mut lows = vec![0i64; count];
    for j in 1..count {
        lows[j] = lows[j - 1] - (stage_demands[j - 1].pmf.len() as i64 - 1);
    }

    // Store table.
    let store = system.locations[count - 1];
    let store_demand = demand.sum_of_periods(store.lead_time + 1);
    let store_top = store_demand.pmf.len() as i64 - 1;
    let store_loss = store_demand.loss_units(store_top.max(0) as usize);
    let store_mean_units = store_demand.mean() / step;
    let shortage_rate = system.backlog_penalty + store.holding_cost;
    let store_e = echelon_holding[count - 1];
    let store_center = (store.lead_time + 1) as f64 * mean_units;
    let store_low = lows[count - 1];
    let mut table = StageTable {
        low: store_low,
        values: (store_low..=high)
            .map(|y| {
                let expected_shortfall = if y < 0 {
                    store_mean_units - y as f64
                } else if y > store_top {
                    0.0
                } else {
                    store_loss[y as usize]
                };
                step * (store_e * (y as f64 - store_center) + shortage_rate * expected_shortfall)
            })
            .collect(),
    };
    let mut levels_units = vec![0i64; count];
    levels_units[count - 1] = match fixed_levels {
        Some(levels) => levels[count - 1],
        None => table.argmin_nonnegative(),
    };

    // Upstream stages, from the warehouse up to location 0.
    for j in (0..count - 1).rev() {
        let downstream_level = levels_units[j + 1];
        let stage_demand = &stage_demands[j].pmf;
        let support = stage_demand.len() as i64 - 1;
        let low = lows[j];
        // Capped downstream table H(x) = G_{j+1}(min(S_{j+1}, x)) on [low − support, high].
        let capped: Vec<f64> = (low - support..=high)
            .map(|x| table.at(x.min(downstream_level)))
            .collect();
        let center = (system.locations[j].lead_time + 1) as f64 * mean_units;
        let e = echelon_holding[j];
        let length = (high - low + 1) as usize;
        let mut values = vec![0.0; length];
        // values[a] = e·Δ·(y − center) + Σ_k P(k)·H(y − k), y = low + a, H index a + support − k.
        values
            .par_chunks_mut(2048)
            .enumerate()
            .for_each(|(chunk_index, chunk)| {
                let first = chunk_index * 2048;
                for (offset, value) in chunk.iter_mut().enumerate() {
                    let y = low + (first + offset) as i64;
                    *value = step * e * (y as f64 - center);
                }
                for (k, &mass) in stage_demand.iter().enumerate() {
                    if mass == 0.0 {
                        continue;
                    }
                    let start = first + support as usize - k;
                    let source = &capped[start..start + chunk.len()];
                    for (value, &h) in chunk.iter_mut().zip(source) {
                        *value += mass * h;
                    }
                }
            });
        table = StageTable { low, values };
        levels_units[j] = match fixed_levels {
            Some(levels) => levels[j],
            None => table.argmin_nonnegative(),
        };
    }

    let echelon_accounting_cost = table.at(levels_units[0]);
    let demand_mean = demand.mean();
    let in_transit_holding = system.in_transit_holding(demand_mean);
    let echelon_levels: Vec<f64> = levels_units.iter().map(|&u| u as f64 * step).collect();
    if fixed_levels.is_none() && levels_units[0] >= high {
        return Err(OptimumError::new(
            "the optimal upstream level hit the top of the grid; demand law too heavy-tailed",
        ));
    }
    Ok(SerialOptimum {
        echelon_levels,
        average_cost: echelon_accounting_cost - in_transit_holding,
        echelon_accounting_cost,
        in_transit_holding,
        demand_mean,
        lattice_step: step,
    })
}
