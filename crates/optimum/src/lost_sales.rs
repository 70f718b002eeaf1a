//! Single store, lost sales, Poisson (or any integer) demand: the exact optimal long-run average cost
//! by relative value iteration, and the exact costs of the best base-stock and best capped base-stock
//! policies.
//!
//! # Model (simulator timing, `hdpo-reference.md` §1.3–§1.4)
//! The state at the start of a period is the pipeline x = (x₀, x₁, …, x_{L−1}): x₀ is the on-hand stock
//! (this period's arrival included) and x_k the quantity arriving k periods from now. The policy orders
//! q ≥ 0, then demand d (Poisson(λ), or any law on a finite set of integers) occurs; the period costs
//! h·(x₀ − d)⁺ + p·(d − x₀)⁺ and the next state is (max(x₀ − d, 0) + x₁, x₂, …, x_{L−1}, q) (for L = 1:
//! (max(x₀ − d, 0) + q)). The expected period cost c(x₀) = h·E(x₀ − D)⁺ + p·E(D − x₀)⁺ is computed
//! exactly.
//!
//! # State space
//! Integer states with inventory position IP = Σ x_k ≤ S̄ and outstanding orders x_k ≤ Q̄ (k ≥ 1); orders
//! are restricted to q ≤ Q̄ and IP + q ≤ S̄, which makes the set closed. By default S̄ is the backlog
//! newsvendor level over L + 1 periods (smallest s with P(D₁ + … + D_{L+1} ≤ s) ≥ p/(p+h); Morton 1969
//! bounds the optimal lost-sales order-up-to position by it) plus a margin of 3, and Q̄ = S̄ (no extra
//! restriction). We do not rely on the bound: `docs/optimality.md` shows that S̄ + 8 gives the same
//! optimum to 3e-10 on all 16 reference instances. The demand tail needs no truncation: every d ≥ x₀
//! leads to the same next state, so the transition uses P(D ≥ x₀) exactly.
//!
//! # Relative value iteration
//! V_{n+1}(x) = c(x₀) + min_q Σ_d P(d)·V_n(next(x, q, d)), then V_{n+1} −= V_{n+1}(0). With
//! Δ_n = V_{n+1} − V_n (before normalisation), min Δ_n ≤ g* ≤ max Δ_n for the optimal gain g*, and the
//! iteration stops when the span max Δ_n − min Δ_n is below the tolerance. The expectation over d for all
//! (x₀, x₁) at a fixed (x₂, …, x_{L−1}, q) reduces to partial sums R_z(a) = Σ_{i=a}^{z} P(z−i)·V(i, …), so
//! one iteration costs O(S̄²) per slice instead of O(S̄³). Values are flat `Vec<f64>` indexed by the
//! mixed-radix code x₀ + (S̄+1)·(x₁ + (Q̄+1)·(x₂ + …)); slices are processed in parallel with rayon.

use rayon::prelude::*;

use super::discrete::{convolve, poisson_pmf, poisson_support_bound, tail_at_least};
use super::{OptimumError, Result, check_cost, check_positive};

/// Demand law of the lost-sales model: integer demand per period, i.i.d.
#[derive(Debug, Clone, PartialEq)]
pub enum DiscreteDemand {
    /// Poisson with the given mean λ > 0 (the reference setting uses λ = 5).
    Poisson {
        /// Mean λ.
        mean: f64,
    },
    /// A general law on {0, 1, …, K}: `pmf[k]` = P(D = k), non-negative, summing to 1.
    Pmf(Vec<f64>),
}

/// A single-store lost-sales instance (the reference setting `one_store_lost` has lead time 4,
/// Poisson(5) demand, h = 1, p = 9).
#[derive(Debug, Clone, PartialEq)]
pub struct LostSalesInstance {
    /// Lead time L ≥ 1 (an order placed in period t serves demand from period t + L on).
    pub lead_time: usize,
    /// Demand law per period.
    pub demand: DiscreteDemand,
    /// Holding cost h ≥ 0 per unit of end-of-period on-hand stock.
    pub holding_cost: f64,
    /// Penalty p ≥ 0 per unit of lost demand.
    pub lost_sale_penalty: f64,
}

impl LostSalesInstance {
    /// The reference instance: Poisson(5) demand, h = 1, and the given lead time and penalty.
    pub fn reference(lead_time: usize, lost_sale_penalty: f64) -> Self {
        Self {
            lead_time,
            demand: DiscreteDemand::Poisson { mean: 5.0 },
            holding_cost: 1.0,
            lost_sale_penalty,
        }
    }

    fn validate(&self) -> Result<()> {
        if !(1..=12).contains(&self.lead_time) {
            return Err(OptimumError::new(format!(
                "lead_time must be in 1..=12, got {}",
                self.lead_time
            )));
        }
        match &self.demand {
            DiscreteDemand::Poisson { mean } => {
                check_positive("demand mean", *mean)?;
                if *mean > 1000.0 {
                    return Err(OptimumError::new(format!(
                        "demand mean must be <= 1000 for an exact solve, got {mean}"
                    )));
                }
            }
            DiscreteDemand::Pmf(pmf) => {
                if pmf.is_empty() || pmf.len() > 10_000 {
                    return Err(OptimumError::new(format!(
                        "demand pmf must have 1..=10000 entries, has {}",
                        pmf.len()
                    )));
                }
                if pmf.iter().any(|&p| !(p.is_finite() && p >= 0.0)) {
                    return Err(OptimumError::new(
                        "demand pmf entries must be finite and >= 0",
                    ));
                }
                let total: f64 = pmf.iter().sum();
                if (total - 1.0).abs() > 1e-9 {
                    return Err(OptimumError::new(format!(
                        "demand pmf must sum to 1, sums to {total}"
                    )));
                }
            }
        }
        check_cost("holding_cost", self.holding_cost)?;
        check_cost("lost_sale_penalty", self.lost_sale_penalty)?;
        if self.holding_cost + self.lost_sale_penalty <= 0.0 {
            return Err(OptimumError::new(
                "holding_cost + lost_sale_penalty must be > 0",
            ));
        }
        Ok(())
    }

    /// Mean demand per period.
    pub fn demand_mean(&self) -> f64 {
        match &self.demand {
            DiscreteDemand::Poisson { mean } => *mean,
            DiscreteDemand::Pmf(pmf) => pmf.iter().enumerate().map(|(k, p)| k as f64 * p).sum(),
        }
    }

    /// P(D = k) for k = 0..=`k_max` (zero beyond a given pmf's support; for Poisson, exact masses).
    fn demand_pmf(&self, k_max: usize) -> Result<Vec<f64>> {
        match &self.demand {
            DiscreteDemand::Poisson { mean } => poisson_pmf(*mean, k_max),
            DiscreteDemand::Pmf(pmf) => {
                let mut out = vec![0.0; k_max + 1];
                for (o, &p) in out.iter_mut().zip(pmf) {
                    *o = p;
                }
                Ok(out)
            }
        }
    }

    /// A point beyond which one period's demand has (numerically) no mass.
    fn demand_support_bound(&self) -> usize {
        match &self.demand {
            DiscreteDemand::Poisson { mean } => poisson_support_bound(*mean),
            DiscreteDemand::Pmf(pmf) => pmf.len() - 1,
        }
    }

    /// Backlog newsvendor level over L + 1 periods: smallest s with P(D₁ + … + D_{L+1} ≤ s) ≥ p/(p+h)
    /// (for Poisson demand the sum is Poisson((L+1)λ)). Used as the default bound on the inventory
    /// position.
    pub fn newsvendor_position(&self) -> Result<usize> {
        self.validate()?;
        let periods = self.lead_time + 1;
        let lead_time_pmf = match &self.demand {
            DiscreteDemand::Poisson { mean } => {
                let total = periods as f64 * mean;
                poisson_pmf(total, poisson_support_bound(total))?
            }
            DiscreteDemand::Pmf(pmf) => {
                let mut sum = vec![1.0];
                for _ in 0..periods {
                    sum = convolve(&sum, pmf);
                }
                sum
            }
        };
        let ratio = self.lost_sale_penalty / (self.lost_sale_penalty + self.holding_cost);
        let mut cumulative = 0.0;
        for (s, p) in lead_time_pmf.iter().enumerate() {
            cumulative += p;
            if cumulative >= ratio - 1e-15 {
                return Ok(s);
            }
        }
        Ok(lead_time_pmf.len() - 1)
    }
}

/// Numerical settings of the value iterations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpSettings {
    /// Bound S̄ on the inventory position; `None` = newsvendor position + 3 (see the module docs).
    pub max_inventory_position: Option<usize>,
    /// Bound Q̄ on a single order (and so on every outstanding order); `None` = S̄.
    pub max_order: Option<usize>,
    /// Stop when the span of V_{n+1} − V_n is below this (absolute, cost units per period).
    pub tolerance: f64,
    /// Give up (returning the current bounds, flagged as not converged) after this many iterations.
    pub max_iterations: usize,
    /// Refuse state boxes larger than this many entries (memory guard).
    pub max_states: usize,
}

impl Default for DpSettings {
    fn default() -> Self {
        Self {
            max_inventory_position: None,
            max_order: None,
            tolerance: 1e-9,
            max_iterations: 100_000,
            max_states: 40_000_000,
        }
    }
}

/// Result of [`solve_lost_sales`].
#[derive(Debug, Clone, PartialEq)]
pub struct LostSalesOptimum {
    /// Optimal long-run average cost per period (midpoint of the bounds).
    pub average_cost: f64,
    /// Lower bound min(V_{n+1} − V_n) on the optimal average cost of the bounded problem.
    pub cost_lower_bound: f64,
    /// Upper bound max(V_{n+1} − V_n).
    pub cost_upper_bound: f64,
    /// Span of the last value difference (= upper − lower bound): the convergence gap.
    pub span_gap: f64,
    /// Number of value-iteration sweeps.
    pub iterations: usize,
    /// Whether the span fell below the tolerance.
    pub converged: bool,
    /// The bound S̄ on the inventory position that was used.
    pub max_inventory_position: usize,
    /// The bound Q̄ on a single order that was used.
    pub max_order: usize,
    lead_time: usize,
    orders: Vec<u16>,
}

impl LostSalesOptimum {
    /// The optimal order in the pipeline state `pipeline` = [on-hand, arriving in 1, …, arriving in L−1]
    /// (greedy with respect to the final value function). `None` if the state has the wrong length or is
    /// outside the solved state space (inventory position above S̄ or an outstanding order above Q̄).
    pub fn order(&self, pipeline: &[usize]) -> Option<usize> {
        if pipeline.len() != self.lead_time {
            return None;
        }
        let position: usize = pipeline.iter().sum();
        if position > self.max_inventory_position
            || pipeline.iter().skip(1).any(|&x| x > self.max_order)
        {
            return None;
        }
        let radix0 = self.max_inventory_position + 1;
        let radix_order = self.max_order + 1;
        let mut code = 0;
        for &x in pipeline.iter().skip(1).rev() {
            code = code * radix_order + x;
        }
        code = code * radix0 + pipeline[0];
        self.orders.get(code).map(|&q| q as usize)
    }
}

/// Exact long-run average cost of one stationary policy (see [`evaluate_lost_sales_policy`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyEvaluation {
    /// Average cost per period (midpoint of the bounds).
    pub average_cost: f64,
    /// Lower bound on the policy's average cost.
    pub cost_lower_bound: f64,
    /// Upper bound on the policy's average cost.
    pub cost_upper_bound: f64,
    /// Value-iteration sweeps used.
    pub iterations: usize,
}

/// A best policy of a parametric family and its exact cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BestPolicy {
    /// Base-stock (order-up-to) level S.
    pub level: usize,
    /// Order cap (`None` for plain base stock).
    pub cap: Option<usize>,
    /// Exact average cost per period of that policy.
    pub average_cost: f64,
    /// Number of policies evaluated during the search.
    pub evaluations: usize,
}

/// Problem data shared by the solvers: bounds, Poisson masses and expected period costs.
struct Model {
    lead_time: usize,
    max_position: usize,
    max_order: usize,
    radix0: usize,
    radix_order: usize,
    /// P(D = k), k = 0..=max_position.
    pmf: Vec<f64>,
    /// P(D ≥ k), k = 0..=max_position.
    tail: Vec<f64>,
    /// c(x₀), x₀ = 0..=max_position.
    period_cost: Vec<f64>,
    /// Number of entries of the full mixed-radix box.
    box_len: usize,
}

impl Model {
    fn new(
        instance: &LostSalesInstance,
        max_position: usize,
        max_order: usize,
        max_states: usize,
    ) -> Result<Self> {
        instance.validate()?;
        let max_order = max_order.min(max_position);
        if max_position > u16::MAX as usize {
            return Err(OptimumError::new(format!(
                "max_inventory_position must be <= {}, got {max_position}",
                u16::MAX
            )));
        }
        let radix0 = max_position + 1;
        let radix_order = max_order + 1;
        let mut box_len = radix0 as u128;
        for _ in 1..instance.lead_time {
            box_len *= radix_order as u128;
        }
        if box_len > max_states as u128 {
            return Err(OptimumError::new(format!(
                "state box of {box_len} entries exceeds max_states = {max_states}; lower \
                 max_order or max_inventory_position (lead_time = {}, S = {max_position}, Q = {max_order})",
                instance.lead_time
            )));
        }
        let mean = instance.demand_mean();
        let support = instance.demand_support_bound().max(max_position + 1);
        let full_pmf = instance.demand_pmf(support)?;
        let full_tail = tail_at_least(&full_pmf);
        let (h, p) = (instance.holding_cost, instance.lost_sale_penalty);
        let period_cost = (0..=max_position)
            .map(|x0| {
                // E(x0 − D)⁺ from the finite sum, E(D − x0)⁺ = E D − x0 + E(x0 − D)⁺.
                let leftover: f64 = (0..x0).map(|d| (x0 - d) as f64 * full_pmf[d]).sum();
                let shortage = (mean - x0 as f64 + leftover).max(0.0);
                h * leftover + p * shortage
            })
            .collect();
        Ok(Self {
            lead_time: instance.lead_time,
            max_position,
            max_order,
            radix0,
            radix_order,
            pmf: full_pmf[..=max_position].to_vec(),
            tail: full_tail[..=max_position].to_vec(),
            period_cost,
            box_len: box_len as usize,
        })
    }

    /// Number of (x₀, x₁) planes ("blocks") in the box and the length of one, for L ≥ 2.
    fn block_len(&self) -> usize {
        self.radix0 * self.radix_order
    }

    /// Sum of the digits x₂…x_{L−1} of a block index.
    fn block_digit_sum(&self, mut block: usize) -> usize {
        let mut sum = 0;
        for _ in 2..self.lead_time {
            sum += block % self.radix_order;
            block /= self.radix_order;
        }
        sum
    }

    /// radix_order^(L−2): multiplier of the order digit in the next state's block index.
    fn order_digit_weight(&self) -> usize {
        self.radix_order
            .pow(self.lead_time.saturating_sub(2) as u32)
    }
}

/// Fills `partial[z·stride + a]` = `R_z(a) = Σ_{i=a}^{z} P(z−i)·v[i]` for 1 ≤ a ≤ z ≤ `top`.
fn fill_partial_sums(pmf: &[f64], v: &[f64], top: usize, partial: &mut Vec<f64>) -> usize {
    let stride = top + 2;
    partial.clear();
    partial.resize((top + 1) * stride, 0.0);
    for z in 1..=top {
        let row = &mut partial[z * stride..(z + 1) * stride];
        let mut running = 0.0;
        for a in (1..=z).rev() {
            running += pmf[z - a] * v[a];
            row[a] = running;
        }
    }
    stride
}

/// Solves the lost-sales problem exactly by relative value iteration (see the module documentation).
///
/// Returns the optimal average cost with rigorous bounds for the bounded state space, the iteration
/// count, the final span and the greedy policy. Errors name the offending parameter.
pub fn solve_lost_sales(
    instance: &LostSalesInstance,
    settings: &DpSettings,
) -> Result<LostSalesOptimum> {
    instance.validate()?;
    check_positive("tolerance", settings.tolerance)?;
    let max_position = match settings.max_inventory_position {
        Some(s) => s,
        None => instance.newsvendor_position()? + 3,
    };
    let max_order = settings.max_order.unwrap_or(max_position);
    let model = Model::new(instance, max_position, max_order, settings.max_states)?;
    let mut values = vec![0.0; model.box_len];
    let mut next_values = vec![f64::INFINITY; model.box_len];
    let mut orders = vec![0u16; model.box_len];
    let mut lower = f64::NEG_INFINITY;
    let mut upper = f64::INFINITY;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < settings.max_iterations {
        iterations += 1;
        let (low, high) = if model.lead_time == 1 {
            bellman_sweep_lead_time_one(&model, &values, &mut next_values, &mut orders)
        } else {
            bellman_sweep(&model, &values, &mut next_values, &mut orders)
        };
        lower = low;
        upper = high;
        // Normalise by the value of the empty state (code 0).
        let reference = next_values[0];
        next_values.par_iter_mut().for_each(|v| *v -= reference);
        std::mem::swap(&mut values, &mut next_values);
        if upper - lower < settings.tolerance {
            converged = true;
            break;
        }
    }
    Ok(LostSalesOptimum {
        average_cost: 0.5 * (lower + upper),
        cost_lower_bound: lower,
        cost_upper_bound: upper,
        span_gap: upper - lower,
        iterations,
        converged,
        max_inventory_position: model.max_position,
        max_order: model.max_order,
        lead_time: model.lead_time,
        orders,
    })
}

/// One Bellman sweep for L = 1 (state = on-hand x₀, next on-hand max(x₀ − d, 0) + q).
/// Returns (min, max) of the new values minus the old ones.
fn bellman_sweep_lead_time_one(
    model: &Model,
    values: &[f64],
    next_values: &mut [f64],
    orders: &mut [u16],
) -> (f64, f64) {
    let top = model.max_position;
    let mut partial = Vec::new();
    let stride = fill_partial_sums(&model.pmf, values, top, &mut partial);
    let mut low = f64::INFINITY;
    let mut high = f64::NEG_INFINITY;
    for x0 in 0..=top {
        let mut best = f64::INFINITY;
        let mut best_order = 0;
        for q in 0..=model.max_order.min(top - x0) {
            // E V(max(x0 − D, 0) + q) = Σ_{d<x0} P(d) V(x0 − d + q) + P(D ≥ x0) V(q).
            let z = x0 + q;
            let sold_part = if x0 > 0 {
                partial[z * stride + q + 1]
            } else {
                0.0
            };
            let expected = sold_part + model.tail[x0] * values[q];
            if expected < best {
                best = expected;
                best_order = q;
            }
        }
        let new_value = model.period_cost[x0] + best;
        let difference = new_value - values[x0];
        low = low.min(difference);
        high = high.max(difference);
        next_values[x0] = new_value;
        orders[x0] = best_order as u16;
    }
    (low, high)
}

/// One Bellman sweep for L ≥ 2, in parallel over the blocks (x₂, …, x_{L−1}).
/// Returns (min, max) over valid states of the new values minus the old ones.
fn bellman_sweep(
    model: &Model,
    values: &[f64],
    next_values: &mut [f64],
    orders: &mut [u16],
) -> (f64, f64) {
    let block_len = model.block_len();
    let order_weight = model.order_digit_weight();
    next_values
        .par_chunks_mut(block_len)
        .zip(orders.par_chunks_mut(block_len))
        .enumerate()
        .map_init(Vec::new, |partial, (block, (out, out_orders))| {
            let digit_sum = model.block_digit_sum(block);
            if digit_sum > model.max_position {
                return (f64::INFINITY, f64::NEG_INFINITY);
            }
            let room = model.max_position - digit_sum;
            out.fill(f64::INFINITY);
            for q in 0..=model.max_order.min(room) {
                // Next state (y, x₂, …, x_{L−1}, q): its block index is (block + weight·q) and y ≤ top.
                let top = room - q;
                let base = model.radix0 * (block + order_weight * q);
                let slice = &values[base..base + top + 1];
                let stride = fill_partial_sums(&model.pmf, slice, top, partial);
                for x1 in 0..=model.max_order.min(top) {
                    let row = &mut out[model.radix0 * x1..model.radix0 * (x1 + 1)];
                    let row_orders = &mut out_orders[model.radix0 * x1..model.radix0 * (x1 + 1)];
                    for x0 in 0..=top - x1 {
                        let sold_part = if x0 > 0 {
                            partial[(x0 + x1) * stride + x1 + 1]
                        } else {
                            0.0
                        };
                        let expected = sold_part + model.tail[x0] * slice[x1];
                        if expected < row[x0] {
                            row[x0] = expected;
                            row_orders[x0] = q as u16;
                        }
                    }
                }
            }
            let old = &values[block * block_len..(block + 1) * block_len];
            let mut low = f64::INFINITY;
            let mut high = f64::NEG_INFINITY;
            for x1 in 0..=model.max_order.min(room) {
                for x0 in 0..=room - x1 {
                    let index = x0 + model.radix0 * x1;
                    out[index] += model.period_cost[x0];
                    let difference = out[index] - old[index];
                    low = low.min(difference);
                    high = high.max(difference);
                }
            }
            (low, high)
        })
        .reduce(
            || (f64::INFINITY, f64::NEG_INFINITY),
            |a, b| (a.0.min(b.0), a.1.max(b.1)),
        )
}

/// Exact long-run average cost of the stationary policy `order(pipeline)` by value iteration restricted
/// to the policy (span bounds as in [`solve_lost_sales`]).
///
/// The policy must keep the state space closed: for every pipeline with inventory position ≤
/// `max_inventory_position` and outstanding orders ≤ `max_order`, it must return q ≤ `max_order` with
/// position + q ≤ `max_inventory_position` (otherwise an error names the offending state). The chain must
/// be unichain (true for the base-stock families).
pub fn evaluate_lost_sales_policy(
    instance: &LostSalesInstance,
    max_inventory_position: usize,
    max_order: usize,
    order: impl Fn(&[usize]) -> usize,
    tolerance: f64,
) -> Result<PolicyEvaluation> {
    check_positive("tolerance", tolerance)?;
    let model = Model::new(
        instance,
        max_inventory_position,
        max_order,
        DpSettings::default().max_states,
    )?;
    let states = enumerate_policy_states(&model, order)?;
    let mut values = vec![0.0; model.box_len];
    let mut next_values = vec![0.0; model.box_len];
    let max_iterations = 1_000_000;
    let mut iterations = 0;
    loop {
        iterations += 1;
        let mut low = f64::INFINITY;
        let mut high = f64::NEG_INFINITY;
        for state in &states {
            let x0 = state.on_hand;
            let landing = state.next_base + state.arriving;
            // Σ_{d<x0} P(d) V(x0 − d + a) + P(D ≥ x0) V(a), next on-hand offsets from `landing`.
            let mut expected = model.tail[x0] * values[landing];
            for d in 0..x0 {
                expected += model.pmf[d] * values[landing + x0 - d];
            }
            let new_value = model.period_cost[x0] + expected;
            let difference = new_value - values[state.code];
            low = low.min(difference);
            high = high.max(difference);
            next_values[state.code] = new_value;
        }
        let reference = next_values[states[0].code];
        for state in &states {
            next_values[state.code] -= reference;
        }
        std::mem::swap(&mut values, &mut next_values);
        if high - low < tolerance || iterations >= max_iterations {
            return Ok(PolicyEvaluation {
                average_cost: 0.5 * (low + high),
                cost_lower_bound: low,
                cost_upper_bound: high,
                iterations,
            });
        }
    }
}

/// A state of the policy chain with precomputed indices.
struct PolicyState {
    /// Mixed-radix code of the state.
    code: usize,
    /// On-hand x₀.
    on_hand: usize,
    /// x₁ (L ≥ 2) or the order q (L = 1): added to the leftover to form the next on-hand.
    arriving: usize,
    /// Code of the next state with next on-hand 0.
    next_base: usize,
}

/// Lists every valid state (position ≤ S̄, outstanding orders ≤ Q̄) with the policy's transition data.
fn enumerate_policy_states(
    model: &Model,
    order: impl Fn(&[usize]) -> usize,
) -> Result<Vec<PolicyState>> {
    let lead_time = model.lead_time;
    let mut states = Vec::new();
    let mut pipeline = vec![0usize; lead_time];
    let order_weight = model.order_digit_weight();
    for code in 0..model.box_len {
        let mut rest = code;
        pipeline[0] = rest % model.radix0;
        rest /= model.radix0;
        for slot in pipeline.iter_mut().skip(1) {
            *slot = rest % model.radix_order;
            rest /= model.radix_order;
        }
        let position: usize = pipeline.iter().sum();
        if position > model.max_position {
            continue;
        }
        let q = order(&pipeline);
        if q > model.max_order || position + q > model.max_position {
            return Err(OptimumError::new(format!(
                "policy orders {q} in state {pipeline:?}, leaving the state space \
                 (max_inventory_position = {}, max_order = {})",
                model.max_position, model.max_order
            )));
        }
        let (arriving, next_base) = if lead_time == 1 {
            (q, 0)
        } else {
            // Block index of (x₂, …, x_{L−1}) is code / (radix0·radix_order).
            let block = code / model.block_len();
            (pipeline[1], model.radix0 * (block + order_weight * q))
        };
        states.push(PolicyState {
            code,
            on_hand: pipeline[0],
            arriving,
            next_base,
        });
    }
    Ok(states)
}

/// Exact average cost of the base-stock policy q = max(S − IP, 0) (IP = Σ pipeline, integer S).
pub fn base_stock_cost(instance: &LostSalesInstance, level: usize) -> Result<PolicyEvaluation> {
    capped_base_stock_cost(instance, level, level)
}

/// Exact average cost of the capped base-stock policy q = min(max(S − IP, 0), cap).
pub fn capped_base_stock_cost(
    instance: &LostSalesInstance,
    level: usize,
    cap: usize,
) -> Result<PolicyEvaluation> {
    let cap = cap.min(level);
    evaluate_lost_sales_policy(
        instance,
        level,
        cap,
        |pipeline| {
            let position: usize = pipeline.iter().sum();
            level.saturating_sub(position).min(cap)
        },
        1e-10,
    )
}

/// Best base-stock policy: integer S minimising the exact average cost, found by descent from the
/// newsvendor position (the cost is unimodal in S on every instance tried; `docs/optimality.md` checks
/// it against a full scan). Each candidate is evaluated exactly.
pub fn best_base_stock(instance: &LostSalesInstance) -> Result<BestPolicy> {
    let start = instance.newsvendor_position()?;
    let mut evaluations = 0;
    let mut cost_of = |level: usize| -> Result<f64> {
        evaluations += 1;
        Ok(base_stock_cost(instance, level)?.average_cost)
    };
    let (level, average_cost) = descend_one_dimension(start, &mut cost_of)?;
    Ok(BestPolicy {
        level,
        cap: None,
        average_cost,
        evaluations,
    })
}

/// Integer descent: from `start`, move to the cheaper neighbour until both neighbours are not cheaper.
fn descend_one_dimension(
    start: usize,
    cost_of: &mut impl FnMut(usize) -> Result<f64>,
) -> Result<(usize, f64)> {
    let mut best = start;
    let mut best_cost = cost_of(start)?;
    // Try upwards first, then downwards.
    for direction in [1i64, -1] {
        loop {
            let candidate = best as i64 + direction;
            if candidate < 0 {
                break;
            }
            let cost = cost_of(candidate as usize)?;
            if cost < best_cost {
                best = candidate as usize;
                best_cost = cost;
            } else {
                break;
            }
        }
    }
    Ok((best, best_cost))
}

/// Best capped base-stock policy over integer (S, cap): for every cap from the smallest one that can beat
/// plain base stock (p·(λ − cap) below its cost) upward, the best S is found by descent (warm-started at the previous cap's best S); the cap search stops once the cap is at least
/// the best base-stock level or three consecutive caps did not improve. Every candidate is evaluated
/// exactly; `docs/optimality.md` checks the result against a full grid.
pub fn best_capped_base_stock(instance: &LostSalesInstance) -> Result<BestPolicy> {
    let plain = best_base_stock(instance)?;
    let mut evaluations = plain.evaluations;
    let mut best = BestPolicy {
        level: plain.level,
        cap: Some(plain.level),
        average_cost: plain.average_cost,
        evaluations: 0,
    };
    let mut start_level = plain.level;
    let mut caps_without_improvement = 0;
    // Long-run sales equal long-run orders ≤ cap, so a cap c < λ loses at least λ − c units per period
    // and costs at least p·(λ − c): such caps cannot beat the plain base-stock policy.
    let first_cap = (1..=plain.level)
        .find(|&cap| {
            instance.lost_sale_penalty * (instance.demand_mean() - cap as f64) < plain.average_cost
        })
        .unwrap_or(plain.level);
    for cap in first_cap..=plain.level {
        let mut cost_of = |level: usize| -> Result<f64> {
            evaluations += 1;
            Ok(capped_base_stock_cost(instance, level, cap)?.average_cost)
        };
        let (level, cost) = descend_one_dimension(start_level.max(cap), &mut cost_of)?;
        start_level = level;
        if cost < best.average_cost {
            best.level = level;
            best.cap = Some(cap);
            best.average_cost = cost;
            caps_without_improvement = 0;
        } else if best.cap != Some(plain.level) {
            caps_without_improvement += 1;
            if caps_without_improvement >= 3 {
                break;
            }
        }
    }
    best.evaluations = evaluations;
    Ok(best)
}
