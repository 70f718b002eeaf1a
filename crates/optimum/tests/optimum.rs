//! Integration tests of the exact optimal-cost solvers and bounds (`optimum` module).
//!
//! Every check compares against an independently known number (published tables, closed forms) or an
//! independent computation written here (brute force over policies, exact Markov-chain evaluation of the
//! simulator's dynamics, Monte-Carlo simulation with the simulator's timing). The tables of
//! `docs/optimality.md` are printed by `cargo run --release -p hdpo-optimum --example optimum_tables`.

use std::collections::HashMap;

use hdpo_optimum as opt;
use opt::backlog::{
    backlog_clipped_normal, backlog_normal, backlog_normal_cost, backlog_poisson,
    backlog_poisson_cost,
};
use opt::discrete::{LatticeDistribution, clipped_normal_lattice};
use opt::lost_sales::{
    DiscreteDemand, DpSettings, LostSalesInstance, base_stock_cost, best_base_stock,
    best_capped_base_stock, capped_base_stock_cost, evaluate_lost_sales_policy, solve_lost_sales,
};
use opt::normal;
use opt::serial::{
    SerialLocation, SerialSystem, evaluate_echelon_base_stock, solve_serial,
    solve_serial_clipped_normal,
};
use opt::transshipment::transshipment_lower_bound;

// ---------------------------------------------------------------------------------------------------
// Small deterministic random number generator for the Monte-Carlo checks (SplitMix64).

struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal by Box–Muller (one draw per call, the second value discarded for simplicity).
    fn standard_normal(&mut self) -> f64 {
        let u1 = self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Draw from an integer law given by its cumulative distribution.
    fn sample_from_cdf(&mut self, cdf: &[f64]) -> usize {
        let u = self.uniform();
        cdf.iter().position(|&c| u <= c).unwrap_or(cdf.len() - 1)
    }
}

/// Mean and standard error of a series by batch means (50 batches).
fn batch_mean_and_error(costs: &[f64]) -> (f64, f64) {
    let batches = 50;
    let size = costs.len() / batches;
    let means: Vec<f64> = (0..batches)
        .map(|b| costs[b * size..(b + 1) * size].iter().sum::<f64>() / size as f64)
        .collect();
    let mean = means.iter().sum::<f64>() / batches as f64;
    let variance = means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (batches as f64 - 1.0);
    (mean, (variance / batches as f64).sqrt())
}

fn poisson_pmf_direct(mean: f64, k_max: usize) -> Vec<f64> {
    // Independent of the crate: P(k) = e^{−λ} λ^k / k! by the product formula.
    (0..=k_max)
        .map(|k| {
            let mut p = (-mean).exp();
            for i in 1..=k {
                p *= mean / i as f64;
            }
            p
        })
        .collect()
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

// ---------------------------------------------------------------------------------------------------
// Normal helpers.

#[test]
fn normal_functions_match_reference_values() {
    assert!((normal::cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-15);
    assert!((normal::pdf(0.0) - 0.398_942_280_401_432_7).abs() < 1e-16);
    assert!((normal::inverse_cdf(0.9) - 1.281_551_565_544_600_4).abs() < 1e-13);
    let tail = normal::cdf(-8.0);
    assert!((tail / 6.220_960_574_271_785e-16 - 1.0).abs() < 1e-12);
    for &p in &[1e-12, 0.01, 0.25, 0.5, 0.8, 0.999] {
        assert!((normal::cdf(normal::inverse_cdf(p)) / p - 1.0).abs() < 1e-12);
    }
}

// ---------------------------------------------------------------------------------------------------
// Lost sales.

#[test]
fn lost_sales_dp_reproduces_zipkin_lead_times_1_and_2() {
    // Zipkin (2008), Table 3 (published-results.md §1).
    let table = [(1, [4.04, 5.44, 6.68, 7.84]), (2, [4.40, 6.09, 7.66, 9.11])];
    for (lead_time, row) in table {
        for (penalty, want) in [4.0, 9.0, 19.0, 39.0].into_iter().zip(row) {
            let instance = LostSalesInstance::reference(lead_time, penalty);
            let solution = solve_lost_sales(&instance, &DpSettings::default()).unwrap();
            assert!(solution.converged);
            assert!(solution.span_gap < 1e-8);
            assert!(
                (round_to(solution.average_cost, 2) - want).abs() < 1e-9,
                "L={lead_time} p={penalty}: {} vs Zipkin {want}",
                solution.average_cost
            );
        }
    }
}

#[test]
fn lost_sales_dp_reproduces_lead_time_4_and_3_known_values() {
    let solution = solve_lost_sales(
        &LostSalesInstance::reference(4, 9.0),
        &DpSettings::default(),
    )
    .unwrap();
    assert!(solution.converged);
    // Zipkin 6.84; exact DP value quoted in hdpo-reference.md §9.2: 6.8359.
    assert!((round_to(solution.average_cost, 2) - 6.84).abs() < 1e-9);
    assert!(
        (solution.average_cost - 6.8359).abs() < 3e-4,
        "{}",
        solution.average_cost
    );
    // L = 3, p = 9: 6.53 (published-results.md §4, "the optimum is 6.53 per store (Zipkin)").
    let three = solve_lost_sales(
        &LostSalesInstance::reference(3, 9.0),
        &DpSettings::default(),
    )
    .unwrap();
    assert!((round_to(three.average_cost, 2) - 6.53).abs() < 1e-9);
}

#[test]
fn lost_sales_state_space_bound_does_not_move_the_optimum() {
    let instance = LostSalesInstance::reference(3, 19.0);
    let default = solve_lost_sales(&instance, &DpSettings::default()).unwrap();
    let larger = DpSettings {
        max_inventory_position: Some(default.max_inventory_position + 8),
        ..DpSettings::default()
    };
    let wide = solve_lost_sales(&instance, &larger).unwrap();
    assert!((wide.average_cost - default.average_cost).abs() < 1e-8);
    // A far too small bound must cost more (the bound is active), so the check has teeth.
    let tight = DpSettings {
        max_inventory_position: Some(default.max_inventory_position - 12),
        ..DpSettings::default()
    };
    let cramped = solve_lost_sales(&instance, &tight).unwrap();
    assert!(cramped.average_cost > default.average_cost + 1e-3);
}

#[test]
fn lost_sales_policy_families_are_ordered_and_match_published_gap_ranges() {
    // Published (published-results.md §1): best capped base stock 0.08–1.47 % above optimal, best base
    // stock 0.3–9.9 %, over L ∈ 1..4 × p ∈ {4, 9, 19, 39}. The extremes are L = 1, p = 39 (smallest)
    // and L = 4, p = 4 (largest).
    let cases = [(1, 39.0, 0.3, 0.08), (4, 4.0, 9.9, 1.47)];
    for (lead_time, penalty, base_gap, capped_gap) in cases {
        let instance = LostSalesInstance::reference(lead_time, penalty);
        let optimum = solve_lost_sales(&instance, &DpSettings::default()).unwrap();
        let base = best_base_stock(&instance).unwrap();
        let capped = best_capped_base_stock(&instance).unwrap();
        assert!(base.average_cost >= capped.average_cost - 1e-9);
        assert!(capped.average_cost >= optimum.cost_lower_bound - 1e-9);
        let base_percent = 100.0 * (base.average_cost / optimum.average_cost - 1.0);
        let capped_percent = 100.0 * (capped.average_cost / optimum.average_cost - 1.0);
        assert!(
            (round_to(base_percent, 1) - base_gap).abs() < 1e-9,
            "L={lead_time} p={penalty}: base-stock gap {base_percent}%"
        );
        assert!(
            (round_to(capped_percent, 2) - capped_gap).abs() < 1e-9,
            "L={lead_time} p={penalty}: capped gap {capped_percent}%"
        );
        // Neighbouring parameters are not better (the searches found local optima at least).
        let level = base.level;
        for other in [level - 1, level + 1] {
            assert!(base_stock_cost(&instance, other).unwrap().average_cost >= base.average_cost);
        }
        let cap = capped.cap.unwrap();
        for (s, c) in [
            (capped.level - 1, cap),
            (capped.level + 1, cap),
            (capped.level, cap - 1),
            (capped.level, cap + 1),
        ] {
            let cost = capped_base_stock_cost(&instance, s, c)
                .unwrap()
                .average_cost;
            assert!(cost >= capped.average_cost - 1e-12);
        }
    }
}

#[test]
fn lost_sales_greedy_policy_evaluates_to_the_optimum() {
    // The DP's greedy policy, evaluated by the independent policy-evaluation code path (direct sums,
    // no partial-sum trick), must cost the optimum.
    for (lead_time, penalty) in [(1, 9.0), (2, 19.0), (3, 4.0)] {
        let instance = LostSalesInstance::reference(lead_time, penalty);
        let solution = solve_lost_sales(&instance, &DpSettings::default()).unwrap();
        let evaluation = evaluate_lost_sales_policy(
            &instance,
            solution.max_inventory_position,
            solution.max_order,
            |pipeline| solution.order(pipeline).unwrap(),
            1e-11,
        )
        .unwrap();
        assert!(
            (evaluation.average_cost - solution.average_cost).abs() < 1e-7,
            "L={lead_time}: {} vs {}",
            evaluation.average_cost,
            solution.average_cost
        );
    }
}

/// Long-run average cost of a stationary policy on the L = 1 lost-sales chain (on-hand 0..=max),
/// started from on-hand 0: the average over periods T/2..T of the exactly propagated state distribution
/// (dropping the first half removes the transient; periodic chains are averaged over many cycles).
fn brute_force_average_cost(
    policy: &[usize],
    pmf: &[f64],
    holding: f64,
    penalty: f64,
    periods: usize,
) -> f64 {
    let states = policy.len();
    let mut distribution = vec![0.0; states];
    distribution[0] = 1.0;
    let mut total = 0.0;
    for period in 0..periods {
        let counted = if period >= periods / 2 { 1.0 } else { 0.0 };
        let mut next = vec![0.0; states];
        for (x0, &mass) in distribution.iter().enumerate() {
            if mass == 0.0 {
                continue;
            }
            for (d, &pd) in pmf.iter().enumerate() {
                let leftover = x0.saturating_sub(d);
                let cost = holding * leftover as f64 + penalty * d.saturating_sub(x0) as f64;
                total += counted * mass * pd * cost;
                next[leftover + policy[x0]] += mass * pd;
            }
        }
        distribution = next;
    }
    total / (periods - periods / 2) as f64
}

#[test]
fn lost_sales_tiny_case_matches_brute_force_over_all_stationary_policies() {
    // L = 1, demand 0 or 2 with probability 1/2 each, h = 1, p = 3, on-hand ≤ 4.
    let pmf = vec![0.5, 0.0, 0.5];
    let (holding, penalty, max_position) = (1.0, 3.0, 4usize);
    let mut best = f64::INFINITY;
    let mut policy = vec![0usize; max_position + 1];
    // Enumerate every map x0 ↦ q with x0 + q ≤ max_position.
    loop {
        best = best.min(brute_force_average_cost(
            &policy, &pmf, holding, penalty, 20_000,
        ));
        let mut digit = 0;
        loop {
            if digit > max_position {
                break;
            }
            if policy[digit] < max_position - digit {
                policy[digit] += 1;
                break;
            }
            policy[digit] = 0;
            digit += 1;
        }
        if digit > max_position {
            break;
        }
    }
    let instance = LostSalesInstance {
        lead_time: 1,
        demand: DiscreteDemand::Pmf(pmf),
        holding_cost: holding,
        lost_sale_penalty: penalty,
    };
    let settings = DpSettings {
        max_inventory_position: Some(max_position),
        ..DpSettings::default()
    };
    let solution = solve_lost_sales(&instance, &settings).unwrap();
    assert!(
        (solution.average_cost - best).abs() < 1e-6,
        "DP {} vs brute force {best}",
        solution.average_cost
    );
    // By hand: order up to 2 (q(0) = 2, q(2) = 0). From on-hand 2 the period costs 1 on average
    // (hold 2 or sell 2) and leads to 2 or 0; from 0 it costs 3 on average (p·2·½) and leads to 2.
    // Stationary π(2) = 2/3, π(0) = 1/3, so the cost is 2/3·1 + 1/3·3 = 5/3.
    assert!((solution.average_cost - 5.0 / 3.0).abs() < 1e-8);
    assert_eq!(solution.order(&[0]), Some(2));
    assert_eq!(solution.order(&[2]), Some(0));
}

#[test]
fn lost_sales_optimal_policy_simulated_with_simulator_timing() {
    // Independent Monte-Carlo of the pipeline dynamics of hdpo-reference.md §1.3–1.4 under the DP's
    // optimal policy (L = 4, p = 9): pipeline [on-hand, in 1, in 2, in 3], order lands in slot L−1.
    let instance = LostSalesInstance::reference(4, 9.0);
    let solution = solve_lost_sales(&instance, &DpSettings::default()).unwrap();
    let pmf = poisson_pmf_direct(5.0, 60);
    let cdf: Vec<f64> = pmf
        .iter()
        .scan(0.0, |acc, p| {
            *acc += p;
            Some(*acc)
        })
        .collect();
    let mut rng = SplitMix64(7);
    let mut pipeline = [5usize, 5, 5, 5];
    let (warm_up, periods) = (1_000, 1_000_000);
    let mut costs = Vec::with_capacity(periods);
    for t in 0..warm_up + periods {
        let order = solution.order(&pipeline).unwrap();
        let demand = rng.sample_from_cdf(&cdf);
        let on_hand = pipeline[0];
        let cost = 9.0 * demand.saturating_sub(on_hand) as f64
            + 1.0 * on_hand.saturating_sub(demand) as f64;
        let post = on_hand.saturating_sub(demand);
        pipeline = [post + pipeline[1], pipeline[2], pipeline[3], order];
        if t >= warm_up {
            costs.push(cost);
        }
    }
    let (mean, error) = batch_mean_and_error(&costs);
    assert!(error < 0.02, "standard error {error}");
    assert!(
        (mean - solution.average_cost).abs() < 4.0 * error,
        "simulated {mean} ± {error} vs DP {}",
        solution.average_cost
    );
}

#[test]
fn lost_sales_rejects_bad_input_with_the_parameter_name() {
    let mut instance = LostSalesInstance::reference(0, 9.0);
    let error = solve_lost_sales(&instance, &DpSettings::default()).unwrap_err();
    assert!(error.message().contains("lead_time"), "{error}");
    instance.lead_time = 2;
    instance.lost_sale_penalty = -1.0;
    let error = solve_lost_sales(&instance, &DpSettings::default()).unwrap_err();
    assert!(error.message().contains("lost_sale_penalty"), "{error}");
    instance.lost_sale_penalty = 9.0;
    instance.demand = DiscreteDemand::Pmf(vec![0.5, 0.6]);
    let error = solve_lost_sales(&instance, &DpSettings::default()).unwrap_err();
    assert!(error.message().contains("pmf"), "{error}");
}

// ---------------------------------------------------------------------------------------------------
// Backlog.

#[test]
fn backlog_normal_reproduces_the_published_table() {
    // published-results.md §2 (N(5, 1.6), h = 1), to 4 decimals.
    let table = [
        (1, [3.1674, 3.9711, 4.6674, 5.2898]),
        (4, [5.0081, 6.2788, 7.3798, 8.3640]),
        (7, [6.3348, 7.9421, 9.3348, 10.5797]),
        (10, [7.4282, 9.3130, 10.9460, 12.4058]),
        (15, [8.9588, 11.2319, 13.2014, 14.9619]),
        (20, [10.2636, 12.8678, 15.1241, 17.1411]),
    ];
    for (lead_time, row) in table {
        for (penalty, want) in [4.0, 9.0, 19.0, 39.0].into_iter().zip(row) {
            let optimum = backlog_normal(5.0, 1.6, lead_time, 1.0, penalty).unwrap();
            assert!(
                (round_to(optimum.average_cost, 4) - want).abs() < 1e-9,
                "L={lead_time} p={penalty}: {}",
                optimum.average_cost
            );
            // The level is a minimiser of the cost function.
            let at = |s: f64| backlog_normal_cost(s, 5.0, 1.6, lead_time, 1.0, penalty).unwrap();
            assert!((at(optimum.level) - optimum.average_cost).abs() < 1e-10);
            assert!(at(optimum.level - 0.05) > optimum.average_cost);
            assert!(at(optimum.level + 0.05) > optimum.average_cost);
        }
    }
    // hdpo-reference.md §9.2: S* = 29.585 for L = 4, p = 9.
    let reference = backlog_normal(5.0, 1.6, 4, 1.0, 9.0).unwrap();
    assert!((reference.level - 29.585).abs() < 5e-4);
}

#[test]
fn backlog_poisson_matches_brute_force_over_levels() {
    for (lead_time, penalty) in [(0, 4.0), (1, 9.0), (4, 9.0), (6, 39.0)] {
        let total_mean = 5.0 * (lead_time + 1) as f64;
        let pmf = poisson_pmf_direct(total_mean, 200);
        let cost_at = |s: usize| -> f64 {
            pmf.iter()
                .enumerate()
                .map(|(d, p)| {
                    p * if d <= s {
                        (s - d) as f64
                    } else {
                        penalty * (d - s) as f64
                    }
                })
                .sum()
        };
        let (best_level, best_cost) = (0..150)
            .map(|s| (s, cost_at(s)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        let optimum = backlog_poisson(5.0, lead_time, 1.0, penalty).unwrap();
        assert_eq!(
            optimum.level, best_level as f64,
            "L={lead_time} p={penalty}"
        );
        assert!((optimum.average_cost - best_cost).abs() < 1e-10);
        let other = backlog_poisson_cost(best_level + 3, 5.0, lead_time, 1.0, penalty).unwrap();
        assert!((other - cost_at(best_level + 3)).abs() < 1e-10);
    }
}

#[test]
fn backlog_clipped_normal_is_close_to_unclipped() {
    // σ/μ = 0.16: clipping never happens in practice, the lattice computation must match the closed form.
    let unclipped = backlog_normal(5.0, 0.8, 4, 1.0, 9.0).unwrap();
    let lattice = backlog_clipped_normal(5.0, 0.8, 4, 1.0, 9.0, 0.01).unwrap();
    assert!((lattice.average_cost - unclipped.average_cost).abs() < 5e-5);
    // σ/μ = 0.32 (the reference setting): clipping lowers the cost by a few 1e-4 relative only.
    let unclipped = backlog_normal(5.0, 1.6, 4, 1.0, 9.0).unwrap();
    let clipped = backlog_clipped_normal(5.0, 1.6, 4, 1.0, 9.0, 0.02).unwrap();
    let relative = clipped.average_cost / unclipped.average_cost - 1.0;
    assert!(relative < 0.0 && relative > -1e-3, "{relative}");
}

// ---------------------------------------------------------------------------------------------------
// Serial systems.

#[test]
fn serial_recursion_matches_published_optima() {
    // published-results.md §3: 4 locations (L_s = 4, p = 9) ≈ 10.73–10.74, 3 locations ≈ 9.87,
    // 5 locations ≈ 10.98 (GNN 10.99 at 0.09 % gap).
    let cost = |locations: usize| {
        let system = SerialSystem::reference(locations, 4, 9.0).unwrap();
        solve_serial_clipped_normal(&system, 5.0, 2.0, 0.02)
            .unwrap()
            .average_cost
    };
    let four = cost(4);
    assert!((10.725..=10.745).contains(&four), "{four}");
    let three = cost(3);
    assert!((three - 9.87).abs() < 0.006, "{three}");
    let five = cost(5);
    assert!((five - 10.98).abs() < 0.011, "{five}");
    // HDPO table (test loss / (1 + gap)) for the 4-location grid: the implied optima are known to
    // about ±0.006 (two-decimal rounding); allow 0.012.
    let implied = [
        (1, 4.0, 6.93 / 1.0050),
        (1, 39.0, 10.95 / 1.0232),
        (2, 9.0, 9.32 / 1.0068),
        (3, 19.0, 11.69 / 1.0082),
        (4, 39.0, 14.84 / 1.0669),
    ];
    for (store_lead_time, penalty, want) in implied {
        let system = SerialSystem::reference(4, store_lead_time, penalty).unwrap();
        let got = solve_serial_clipped_normal(&system, 5.0, 2.0, 0.02)
            .unwrap()
            .average_cost;
        assert!(
            (got - want).abs() < 0.012,
            "L_s={store_lead_time} p={penalty}: {got} vs {want}"
        );
    }
}

#[test]
fn serial_lattice_step_converges() {
    let system = SerialSystem::reference(4, 4, 9.0).unwrap();
    let coarse = solve_serial_clipped_normal(&system, 5.0, 2.0, 0.05).unwrap();
    let fine = solve_serial_clipped_normal(&system, 5.0, 2.0, 0.02).unwrap();
    assert!((coarse.average_cost - fine.average_cost).abs() < 5e-4);
    // The optimum's own evaluation and a perturbed policy.
    let demand = clipped_normal_lattice(5.0, 2.0, 0.02).unwrap();
    let at_optimum = evaluate_echelon_base_stock(&system, &demand, &fine.echelon_levels).unwrap();
    assert!((at_optimum - fine.average_cost).abs() < 1e-9);
    for j in 0..4 {
        for delta in [-1.0, 1.0] {
            let mut levels = fine.echelon_levels.clone();
            levels[j] += delta;
            let cost = evaluate_echelon_base_stock(&system, &demand, &levels).unwrap();
            assert!(cost > fine.average_cost, "location {j} {delta}");
        }
    }
}

/// State of the serial chain in the simulator's representation: one pipeline per location
/// (slot 0 = on-hand, slot k = arriving in k periods).
type ChainState = Vec<Vec<i64>>;

/// One period of the simulator's serial dynamics under the echelon-stock policy
/// (hdpo-reference.md §1.3 and §4.4). Returns (next state, period cost).
fn serial_step(
    state: &ChainState,
    levels: &[i64],
    lead_times: &[usize],
    holding: &[f64],
    penalty: f64,
    demand: i64,
) -> (ChainState, f64) {
    let n = state.len();
    // Orders from the start-of-period state: order_k = min(max(S_k − EIP_k, 0), on-hand(k−1)).
    let mut orders = vec![0i64; n];
    let mut echelon_position = 0;
    for k in (0..n).rev() {
        echelon_position += state[k].iter().sum::<i64>();
        let wanted = (levels[k] - echelon_position).max(0);
        orders[k] = if k == 0 {
            wanted
        } else {
            wanted.min(state[k - 1][0])
        };
    }
    let mut cost = 0.0;
    let mut next = state.clone();
    for k in 0..n {
        let outflow = if k == n - 1 { demand } else { orders[k + 1] };
        let post = state[k][0] - outflow;
        cost += holding[k] * post.max(0) as f64;
        if k == n - 1 {
            cost += penalty * (-post).max(0) as f64;
        }
        let length = state[k].len();
        for slot in 0..length {
            let incoming = if slot + 1 < length {
                state[k][slot + 1]
            } else {
                0
            };
            next[k][slot] = if slot == 0 { post + incoming } else { incoming };
        }
        next[k][lead_times[k] - 1] += orders[k];
    }
    (next, cost)
}

/// Exact long-run average cost of echelon base stock `levels` on a chain with integer demand `pmf`,
/// by enumerating the reachable states of the simulator dynamics and iterating the state distribution.
fn exact_chain_cost(
    levels: &[i64],
    lead_times: &[usize],
    holding: &[f64],
    penalty: f64,
    pmf: &[f64],
) -> f64 {
    let start: ChainState = lead_times.iter().map(|&l| vec![0i64; l]).collect();
    let mut index: HashMap<ChainState, usize> = HashMap::new();
    let mut states = vec![start.clone()];
    index.insert(start, 0);
    // transitions[i] = list of (next index, probability, cost)
    let mut transitions: Vec<Vec<(usize, f64, f64)>> = Vec::new();
    let mut cursor = 0;
    while cursor < states.len() {
        let state = states[cursor].clone();
        let mut out = Vec::new();
        for (d, &p) in pmf.iter().enumerate() {
            if p == 0.0 {
                continue;
            }
            let (next, cost) = serial_step(&state, levels, lead_times, holding, penalty, d as i64);
            let next_index = match index.get(&next) {
                Some(&i) => i,
                None => {
                    states.push(next.clone());
                    index.insert(next, states.len() - 1);
                    states.len() - 1
                }
            };
            out.push((next_index, p, cost));
        }
        transitions.push(out);
        cursor += 1;
        assert!(states.len() < 200_000, "state space too large");
    }
    let mut distribution = vec![0.0; states.len()];
    distribution[0] = 1.0;
    let mut last_cost = 0.0;
    for iteration in 0..100_000 {
        let mut next = vec![0.0; states.len()];
        let mut cost = 0.0;
        for (i, &mass) in distribution.iter().enumerate() {
            if mass == 0.0 {
                continue;
            }
            for &(j, p, c) in &transitions[i] {
                next[j] += mass * p;
                cost += mass * p * c;
            }
        }
        distribution = next;
        if iteration > 50 && (cost - last_cost).abs() < 1e-13 {
            return cost;
        }
        last_cost = cost;
    }
    last_cost
}

#[test]
fn serial_recursion_matches_brute_force_on_two_locations() {
    // Integer demand {0, 1, 2} w.p. {0.3, 0.4, 0.3}; exact Markov-chain costs of the simulator's
    // dynamics over a grid of echelon base-stock levels, against the recursion (lattice step 1).
    let pmf = vec![0.3, 0.4, 0.3];
    let demand = LatticeDistribution::new(1.0, pmf.clone()).unwrap();
    for (lead_times, holding, penalty) in [
        ([2usize, 1usize], [0.4, 1.0], 5.0),
        ([1, 2], [0.3, 1.0], 9.0),
        ([3, 2], [0.5, 1.2], 4.0),
    ] {
        let system = SerialSystem {
            locations: vec![
                SerialLocation {
                    lead_time: lead_times[0],
                    holding_cost: holding[0],
                },
                SerialLocation {
                    lead_time: lead_times[1],
                    holding_cost: holding[1],
                },
            ],
            backlog_penalty: penalty,
        };
        let optimum = solve_serial(&system, &demand).unwrap();
        let mut best = (f64::INFINITY, 0, 0);
        for upstream in 0..=12i64 {
            for store in 0..=8i64 {
                let exact =
                    exact_chain_cost(&[upstream, store], &lead_times, &holding, penalty, &pmf);
                let formula =
                    evaluate_echelon_base_stock(&system, &demand, &[upstream as f64, store as f64])
                        .unwrap();
                assert!(
                    (exact - formula).abs() < 1e-8,
                    "levels ({upstream}, {store}): chain {exact} vs recursion {formula}"
                );
                if exact < best.0 - 1e-12 {
                    best = (exact, upstream, store);
                }
            }
        }
        assert!(
            (optimum.average_cost - best.0).abs() < 1e-8,
            "{lead_times:?}: recursion {} vs brute force {}",
            optimum.average_cost,
            best.0
        );
        assert_eq!(
            optimum.echelon_levels,
            vec![best.1 as f64, best.2 as f64],
            "{lead_times:?}"
        );
    }
}

/// Monte-Carlo simulation of the serial chain with continuous demand N(mean, std) clipped at 0, with
/// the simulator's timing and the echelon-stock policy. Returns (mean cost, standard error).
fn simulate_serial_chain(
    system: &SerialSystem,
    levels: &[f64],
    mean: f64,
    std: f64,
    periods: usize,
    seed: u64,
) -> (f64, f64) {
    let n = system.locations.len();
    let lead_times: Vec<usize> = system.locations.iter().map(|l| l.lead_time).collect();
    let mut pipelines: Vec<Vec<f64>> = lead_times.iter().map(|&l| vec![0.0; l.max(2)]).collect();
    let mut rng = SplitMix64(seed);
    let warm_up = 2_000;
    let mut costs = Vec::with_capacity(periods);
    let mut orders = vec![0.0; n];
    for t in 0..warm_up + periods {
        let mut echelon_position = 0.0;
        for k in (0..n).rev() {
            echelon_position += pipelines[k].iter().sum::<f64>();
            let wanted = (levels[k] - echelon_position).max(0.0);
            orders[k] = if k == 0 {
                wanted
            } else {
                wanted.min(pipelines[k - 1][0])
            };
        }
        let demand = (mean + std * rng.standard_normal()).max(0.0);
        let mut cost = 0.0;
        for k in 0..n {
            let outflow = if k == n - 1 { demand } else { orders[k + 1] };
            let post = pipelines[k][0] - outflow;
            cost += system.locations[k].holding_cost * post.max(0.0);
            if k == n - 1 {
                cost += system.backlog_penalty * (-post).max(0.0);
            }
            let pipe = &mut pipelines[k];
            let length = pipe.len();
            pipe[0] = post + pipe[1];
            for slot in 1..length - 1 {
                pipe[slot] = pipe[slot + 1];
            }
            pipe[length - 1] = 0.0;
            pipe[lead_times[k] - 1] += orders[k];
        }
        if t >= warm_up {
            costs.push(cost);
        }
    }
    batch_mean_and_error(&costs)
}

#[test]
fn serial_recursion_matches_monte_carlo_simulation() {
    for (locations, store_lead_time, penalty, seed) in
        [(4, 4, 9.0, 11), (7, 4, 9.0, 12), (3, 1, 39.0, 13)]
    {
        let system = SerialSystem::reference(locations, store_lead_time, penalty).unwrap();
        let optimum = solve_serial_clipped_normal(&system, 5.0, 2.0, 0.02).unwrap();
        let (mean, error) =
            simulate_serial_chain(&system, &optimum.echelon_levels, 5.0, 2.0, 2_000_000, seed);
        println!(
            "{locations} locations L_s={store_lead_time} p={penalty}: simulated {mean:.4} ± {error:.4}, \
             recursion {:.4}",
            optimum.average_cost
        );
        assert!(error < 0.03, "standard error {error}");
        assert!(
            (mean - optimum.average_cost).abs() < 4.0 * error + 1e-3,
            "{locations} locations: simulated {mean} ± {error} vs recursion {}",
            optimum.average_cost
        );
    }
}

#[test]
fn serial_rejects_bad_input_with_the_parameter_name() {
    let error = SerialSystem::reference(8, 4, 9.0).unwrap_err();
    assert!(error.message().contains("locations"), "{error}");
    let mut system = SerialSystem::reference(4, 4, 9.0).unwrap();
    system.locations[2].lead_time = 0;
    let error = solve_serial_clipped_normal(&system, 5.0, 2.0, 0.02).unwrap_err();
    assert!(
        error.message().contains("locations[2].lead_time"),
        "{error}"
    );
    let system = SerialSystem::reference(4, 4, 9.0).unwrap();
    let error = solve_serial_clipped_normal(&system, 5.0, -2.0, 0.02).unwrap_err();
    assert!(error.message().contains("std"), "{error}");
}

// ---------------------------------------------------------------------------------------------------
// Transshipment lower bound.

/// First `stores` means and stds of `data/instances/multi_store_parameters.json`.
fn multi_store_parameters(stores: usize) -> (Vec<f64>, Vec<f64>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/instances/multi_store_parameters.json"
    );
    let text = std::fs::read_to_string(path).expect("multi_store_parameters.json");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let read = |key: &str| -> Vec<f64> {
        json["stores_50"][key].as_array().unwrap()[..stores]
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    (read("mean"), read("std"))
}

#[test]
fn transshipment_bound_reproduces_published_values() {
    // published-results.md §5 (correlation 0.5, h = 1, warehouse lead time 3).
    let table = [
        (3, [5.753735, 7.213631, 7.717182, 9.675263]),
        (5, [5.296388, 6.640241, 7.169472, 8.988583]),
        (10, [5.535855, 6.940467, 7.546230, 9.460935]),
    ];
    let columns = [(2, 4.0), (2, 9.0), (6, 4.0), (6, 9.0)];
    for (stores, row) in table {
        let (means, stds) = multi_store_parameters(stores);
        for ((store_lead_time, penalty), want) in columns.into_iter().zip(row) {
            let bound =
                transshipment_lower_bound(&means, &stds, 0.5, store_lead_time, 3, 1.0, penalty)
                    .unwrap();
            assert!(
                (bound.per_store_cost - want).abs() < 1e-5,
                "{stores} stores L={store_lead_time} p={penalty}: {}",
                bound.per_store_cost
            );
        }
    }
    let row = [
        (3, 8.533674),
        (5, 7.902133),
        (10, 8.296968),
        (20, 8.731082),
        (30, 8.377328),
        (50, 8.118102),
    ];
    for (stores, want) in row {
        let (means, stds) = multi_store_parameters(stores);
        let bound = transshipment_lower_bound(&means, &stds, 0.5, 4, 3, 1.0, 9.0).unwrap();
        assert!(
            (bound.per_store_cost - want).abs() < 1e-5,
            "{stores}: {}",
            bound.per_store_cost
        );
    }
    let error = transshipment_lower_bound(&[1.0], &[1.0, 2.0], 0.5, 2, 3, 1.0, 4.0).unwrap_err();
    assert!(error.message().contains("stds"), "{error}");
}

// ---------------------------------------------------------------------------------------------------
// The CLI-facing summary values.

#[test]
fn optimum_values_carry_cost_and_description() {
    let exact = opt::lost_sales_optimum(&LostSalesInstance::reference(2, 9.0)).unwrap();
    assert!(!exact.is_lower_bound());
    assert!((round_to(exact.cost(), 2) - 6.09).abs() < 1e-9);
    assert!(exact.what().contains("relative value iteration"));
    assert!((exact.gap(exact.cost() * 1.01) - 0.01).abs() < 1e-12);
    let backlog = opt::backlog_normal_optimum(5.0, 1.6, 4, 1.0, 9.0).unwrap();
    assert!((round_to(backlog.cost(), 4) - 6.2788).abs() < 1e-9);
    let system = SerialSystem::reference(4, 4, 9.0).unwrap();
    let serial = opt::serial_optimum(&system, 5.0, 2.0).unwrap();
    assert!((10.72..10.75).contains(&serial.cost()));
    let (means, stds) = multi_store_parameters(5);
    let bound = opt::transshipment_bound(&means, &stds, 0.5, 2, 3, 1.0, 4.0).unwrap();
    assert!(bound.is_lower_bound());
    assert!((bound.cost() - 5.296388).abs() < 1e-5);
    assert!(opt::backlog_normal_optimum(5.0, 0.0, 4, 1.0, 9.0).is_err());
}

// ---------------------------------------------------------------------------------------------------
// (The documentation tables are printed by the `optimum_tables` example.)
