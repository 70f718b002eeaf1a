//! Exact optimal costs and lower bounds for the benchmark inventory problems, used to report optimality
//! gaps of trained policies: the solvers, and the mapping from a simulator setting to the problem a
//! solver takes.
//!
//! The solvers are pure mathematics and depend on nothing else in the workspace: standard normal
//! functions ([`normal`]), Poisson and lattice distributions ([`discrete`]), the single-store lost-sales
//! optimum by relative value iteration together with the best base-stock and capped base-stock policies
//! ([`lost_sales`]), the single-store backlog optimum ([`backlog`]), the Clark–Scarf optimum of serial
//! systems ([`serial`]) and the transshipment-centre lower bound ([`transshipment`]). Every cost is a
//! long-run average per period in the simulator's accounting: the order of events of
//! `hdpo-reference.md` §1.3 (costs on end-of-period on-hand, an order with lead time L serves the demand of
//! period t + L) and, for networks, the total of all locations' costs per period. The derivations, the
//! numbers they produce and the commands that produced them are in `docs/optimality.md`.
//!
//! [`problem`] maps a `hdpo_sim` [`Setting`](hdpo_sim::Setting) (its resolved instance) to the
//! [`Problem`] a solver takes, or says why none applies, and reports the result as a [`Reference`]. It
//! is the only part that reads the simulator's types, so the crate sits above `hdpo-sim` and below
//! `hdpo-train` (which keeps the on-disk cache of solved problems with the run's other files).
//!
//! Functions never panic on bad input: they return [`OptimumError`] naming the offending parameter.
//! [`Optimum`] is the small value type a caller (e.g. the CLI) reports.

pub mod backlog;
pub mod discrete;
pub mod lost_sales;
pub mod normal;
pub mod optimal_rule;
pub mod problem;
pub mod serial;
pub mod transshipment;

use std::fmt;

pub use problem::{
    ChainDemand, ChainLocation, Classification, LATTICE_STEP, Problem, Reference, ReferenceKind,
    SOLVER_VERSION, Solved, Source, StoreProblem, lost_sales_heuristics,
};

/// Error returned when a solver's input is invalid or a solve cannot be carried out; the message names
/// the offending parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptimumError {
    message: String,
}

impl OptimumError {
    /// Creates an error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for OptimumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OptimumError {}

/// Result type of the solvers.
pub type Result<T> = std::result::Result<T, OptimumError>;

/// A reference cost for an instance, as reported next to a trained policy's cost.
///
/// `cost` is a long-run average cost per period, per store (the reference implementation's reporting
/// unit; for a serial system, the whole chain's cost per period). `what` is a short human-readable
/// description of how the number was obtained (method and optimal parameters).
#[derive(Debug, Clone, PartialEq)]
pub enum Optimum {
    /// The optimal cost over all admissible policies (up to the stated numerical tolerance).
    Exact {
        /// Optimal average cost per period (per store).
        cost: f64,
        /// How it was computed, e.g. "relative value iteration, gap 3e-10".
        what: String,
    },
    /// A lower bound on the optimal cost (gaps against it are upper bounds on the optimality gap).
    LowerBound {
        /// The bound, average cost per period per store.
        cost: f64,
        /// How it was computed.
        what: String,
    },
}

impl Optimum {
    /// The cost value, whichever the variant.
    pub fn cost(&self) -> f64 {
        match self {
            Optimum::Exact { cost, .. } | Optimum::LowerBound { cost, .. } => *cost,
        }
    }

    /// The description of how the cost was obtained.
    pub fn what(&self) -> &str {
        match self {
            Optimum::Exact { what, .. } | Optimum::LowerBound { what, .. } => what,
        }
    }

    /// True for a bound, false for an exact optimum.
    pub fn is_lower_bound(&self) -> bool {
        matches!(self, Optimum::LowerBound { .. })
    }

    /// Relative gap `policy_cost / cost − 1` of a policy's cost against this reference.
    pub fn gap(&self, policy_cost: f64) -> f64 {
        policy_cost / self.cost() - 1.0
    }
}

/// Exact optimum of a single-store lost-sales instance by relative value iteration with the default
/// settings ([`lost_sales::solve_lost_sales`]).
pub fn lost_sales_optimum(instance: &lost_sales::LostSalesInstance) -> Result<Optimum> {
    let solution = lost_sales::solve_lost_sales(instance, &lost_sales::DpSettings::default())?;
    if !solution.converged {
        return Err(OptimumError::new(format!(
            "relative value iteration did not converge (span {:.1e} after {} iterations)",
            solution.span_gap, solution.iterations
        )));
    }
    Ok(Optimum::Exact {
        cost: solution.average_cost,
        what: format!(
            "lost sales, relative value iteration on the pipeline state (inventory position <= {}), \
             span {:.0e} after {} iterations",
            solution.max_inventory_position, solution.span_gap, solution.iterations
        ),
    })
}

/// Exact optimum of a single store with backlogged N(`mean`, `std`²) demand (unclipped closed form,
/// [`backlog::backlog_normal`]).
pub fn backlog_normal_optimum(
    mean: f64,
    std: f64,
    lead_time: usize,
    holding_cost: f64,
    backlog_penalty: f64,
) -> Result<Optimum> {
    let optimum = backlog::backlog_normal(mean, std, lead_time, holding_cost, backlog_penalty)?;
    Ok(Optimum::Exact {
        cost: optimum.average_cost,
        what: format!(
            "backlog, optimal base stock S* = {:.4} (normal demand, closed form)",
            optimum.level
        ),
    })
}

/// Exact optimum of a serial system with N(`mean`, `std`²) demand clipped at 0 (Clark–Scarf recursion on
/// a lattice of step 0.02, [`serial::solve_serial_clipped_normal`]).
pub fn serial_optimum(system: &serial::SerialSystem, mean: f64, std: f64) -> Result<Optimum> {
    let optimum = serial::solve_serial_clipped_normal(system, mean, std, 0.02)?;
    Ok(Optimum::Exact {
        cost: optimum.average_cost,
        what: format!(
            "serial system, Clark-Scarf echelon base stock {:?} (lattice step 0.02)",
            optimum
                .echelon_levels
                .iter()
                .map(|level| (level * 100.0).round() / 100.0)
                .collect::<Vec<_>>()
        ),
    })
}

/// The transshipment-centre lower bound per store ([`transshipment::transshipment_lower_bound`]).
pub fn transshipment_bound(
    means: &[f64],
    stds: &[f64],
    correlation: f64,
    store_lead_time: usize,
    warehouse_lead_time: usize,
    holding_cost: f64,
    backlog_penalty: f64,
) -> Result<Optimum> {
    let bound = transshipment::transshipment_lower_bound(
        means,
        stds,
        correlation,
        store_lead_time,
        warehouse_lead_time,
        holding_cost,
        backlog_penalty,
    )?;
    Ok(Optimum::LowerBound {
        cost: bound.per_store_cost,
        what: "transshipment centre relaxed to one newsvendor on total demand".to_string(),
    })
}

/// Checks that a cost parameter is finite and ≥ 0.
pub(crate) fn check_cost(name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(OptimumError::new(format!(
            "{name} must be finite and >= 0, got {value}"
        )))
    }
}

/// Checks that a parameter is finite and > 0.
pub(crate) fn check_positive(name: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(OptimumError::new(format!(
            "{name} must be finite and > 0, got {value}"
        )))
    }
}
