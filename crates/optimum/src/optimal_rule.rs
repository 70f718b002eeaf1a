//! The optimal policy itself, not only its cost, for one store: the order it places in a given
//! pipeline state, so that a learned policy can be compared with it state by state (the policy
//! picture of a run, `policy.svg`).
//!
//! Backlogged stores: base stock at the optimal level S*, `max(S* − inventory position, 0)`.
//! Lost-sales stores with Poisson demand: the order of the relative-value-iteration solution in
//! that exact pipeline state ([`LostSalesOptimum::order`]), defined on integer states.

use crate::backlog;
use crate::lost_sales::{self, DpSettings, LostSalesInstance, LostSalesOptimum};
use crate::problem::{Problem, StoreProblem};

/// An optimal stationary policy of one store.
#[derive(Clone, Debug)]
pub enum OptimalRule {
    /// Order up to `level`.
    BaseStock {
        /// The optimal base-stock level S*.
        level: f64,
    },
    /// The lost-sales dynamic programme's order per pipeline state.
    LostSales {
        /// The solved programme.
        optimum: Box<LostSalesOptimum>,
        /// Its lead time (the pipeline length it reads).
        lead_time: usize,
    },
}

impl OptimalRule {
    /// The optimal rule of a one-store problem (`None` for networks, several stores, or problems
    /// whose optimal policy is not a rule of one store's pipeline).
    pub fn for_problem(problem: &Problem) -> Result<Option<OptimalRule>, String> {
        let one = |stores: &[StoreProblem]| (stores.len() == 1).then(|| stores[0].clone());
        let rule = match problem {
            Problem::LostSalesPoisson { stores } => {
                let Some(s) = one(stores) else {
                    return Ok(None);
                };
                let instance = LostSalesInstance {
                    lead_time: s.lead_time,
                    demand: lost_sales::DiscreteDemand::Poisson { mean: s.mean },
                    holding_cost: s.holding_cost,
                    lost_sale_penalty: s.penalty,
                };
                let optimum = lost_sales::solve_lost_sales(&instance, &DpSettings::default())
                    .map_err(|e| e.to_string())?;
                OptimalRule::LostSales {
                    optimum: Box::new(optimum),
                    lead_time: s.lead_time,
                }
            }
            Problem::BacklogNormal {
                stores,
                clipped,
                lattice_step,
            } => {
                let Some(s) = one(stores) else {
                    return Ok(None);
                };
                let level = if *clipped {
                    backlog::backlog_clipped_normal(
                        s.mean,
                        s.std,
                        s.lead_time,
                        s.holding_cost,
                        s.penalty,
                        *lattice_step,
                    )
                } else {
                    backlog::backlog_normal(s.mean, s.std, s.lead_time, s.holding_cost, s.penalty)
                }
                .map_err(|e| e.to_string())?
                .level;
                OptimalRule::BaseStock { level }
            }
            Problem::BacklogPoisson { stores } => {
                let Some(s) = one(stores) else {
                    return Ok(None);
                };
                let level =
                    backlog::backlog_poisson(s.mean, s.lead_time, s.holding_cost, s.penalty)
                        .map_err(|e| e.to_string())?
                        .level;
                OptimalRule::BaseStock { level }
            }
            _ => return Ok(None),
        };
        Ok(Some(rule))
    }

    /// The optimal order in `pipeline` (on hand, then arriving in 1, 2, … periods). `None` where
    /// the rule is not defined: a lost-sales state that is not integer or lies outside the solved
    /// state space.
    pub fn order(&self, pipeline: &[f64]) -> Option<f64> {
        match self {
            OptimalRule::BaseStock { level } => {
                let position: f64 = pipeline.iter().sum();
                Some((level - position).max(0.0))
            }
            OptimalRule::LostSales { optimum, lead_time } => {
                // slots past the lead time are empty in a one-store pipeline
                if pipeline.iter().skip(*lead_time).any(|&x| x != 0.0) {
                    return None;
                }
                let state: Option<Vec<usize>> = pipeline
                    .iter()
                    .take(*lead_time)
                    .map(|&x| {
                        let r = x.round();
                        ((x - r).abs() < 1e-4 && r >= 0.0).then_some(r as usize)
                    })
                    .collect();
                optimum.order(&state?).map(|q| q as f64)
            }
        }
    }

    /// A short description for a legend, e.g. `optimal base stock S* = 26.5`.
    pub fn describe(&self) -> String {
        match self {
            OptimalRule::BaseStock { level } => format!("optimal base stock S* = {level:.2}"),
            OptimalRule::LostSales { .. } => "optimal (lost-sales dynamic programme)".into(),
        }
    }
}
