//! The setting → problem mapping: the reference cost of a setting — its exact optimum or a lower
//! bound — as reported next to every trained policy (`hdpo optimum`, the gap in `hdpo train` / `hdpo eval` reports, `hdpo reproduce`).
//!
//! [`Problem::from_setting`] reads the **resolved instance** (`Setting::instance()`) and picks the
//! solver of this crate that applies (derivations in `docs/optimality.md`):
//!
//! | instance | solver | result |
//! |---|---|---|
//! | stores without warehouse, lost sales, Poisson demand | relative value iteration | exact optimum |
//! | stores without warehouse, backlogged, normal (clipped or not) or Poisson demand | optimal base stock | exact optimum |
//! | one store ← one warehouse ← E ≥ 0 echelons, backlogged, clipped normal or Poisson | Clark–Scarf recursion | exact optimum |
//! | `transshipment_*` settings (one centre, backlogged stores, unclipped normal) | newsvendor relaxation | lower bound |
//! | one warehouse with many stores, several warehouses, serial lost sales | — | no known bound |
//!
//! Stores without a warehouse are independent, so the per-store optimum is the average of every
//! store's own optimum (identical stores are solved once). Anything else (random per-sample costs or
//! lead times, the profit objective, lost sales with normal demand, …) is
//! [`Classification::Unsupported`] with a message that says why.
//!
//! A [`Problem`] holds exactly the numbers its solver reads; [`Problem::cache_key`] names it in the
//! trainer's on-disk cache (`hdpo_train::optimum_cache`).

use hdpo_sim::config::{
    DemandDistribution, Instance, Objective, Setting, StoreLeadTimes, StoreValues, UnmetDemand,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

use crate::{backlog, lost_sales, serial};

/// Bumped whenever a solver or its numerical settings change, so old cache entries are not reused.
pub const SOLVER_VERSION: u32 = 1;
/// Lattice step of the clipped-normal backlog and serial solvers (`docs/optimality.md`: within 3e-5 of
/// the step → 0 limit on the reference instances).
pub const LATTICE_STEP: f64 = 0.02;

/// One store of a single-echelon problem (no warehouse).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreProblem {
    /// Lead time L (periods).
    pub lead_time: usize,
    /// Holding cost h per unit of end-of-period on-hand.
    pub holding_cost: f64,
    /// Penalty p per unit lost (lost sales) or backlogged per period (backlog).
    pub penalty: f64,
    /// Demand mean per period.
    pub mean: f64,
    /// Demand standard deviation (normal demand; ignored — and set to 0 — for Poisson).
    pub std: f64,
}

/// One location of a serial chain (upstream first).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainLocation {
    /// Inbound lead time.
    pub lead_time: usize,
    /// Holding cost on end-of-period on-hand.
    pub holding_cost: f64,
}

/// Store demand of a serial chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "law", rename_all = "snake_case")]
pub enum ChainDemand {
    /// max(N(mean, std²), 0) on a lattice of step `lattice_step`.
    ClippedNormal {
        /// Mean of the underlying normal.
        mean: f64,
        /// Standard deviation of the underlying normal.
        std: f64,
        /// Lattice step.
        lattice_step: f64,
    },
    /// Poisson(mean) (integer lattice).
    Poisson {
        /// Mean.
        mean: f64,
    },
}

/// Exactly the inputs of one solver: what is solved and the cache key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "solver", rename_all = "snake_case")]
pub enum Problem {
    /// Independent lost-sales stores with Poisson demand: relative value iteration per store.
    LostSalesPoisson {
        /// The stores (per-store optimum = their average).
        stores: Vec<StoreProblem>,
    },
    /// Independent backlogged stores with normal demand: optimal base stock per store.
    BacklogNormal {
        /// The stores.
        stores: Vec<StoreProblem>,
        /// Demand clipped at 0 (then computed on a lattice).
        clipped: bool,
        /// Lattice step (clipped demand only; 0 otherwise).
        lattice_step: f64,
    },
    /// Independent backlogged stores with Poisson demand: optimal integer base stock per store.
    BacklogPoisson {
        /// The stores.
        stores: Vec<StoreProblem>,
    },
    /// A serial chain (echelons, warehouse, store), backlogged: Clark–Scarf recursion.
    Serial {
        /// Locations upstream → downstream, the store last.
        locations: Vec<ChainLocation>,
        /// Store backlog penalty.
        backlog_penalty: f64,
        /// Store demand.
        demand: ChainDemand,
    },
    /// The transshipment-centre newsvendor relaxation (a lower bound).
    Transshipment {
        /// Store demand means.
        means: Vec<f64>,
        /// Store demand standard deviations.
        stds: Vec<f64>,
        /// Pairwise correlation.
        correlation: f64,
        /// Store lead time l.
        store_lead_time: usize,
        /// Centre lead time L.
        warehouse_lead_time: usize,
        /// Store holding cost (common).
        holding_cost: f64,
        /// Store backlog penalty (common).
        backlog_penalty: f64,
    },
}

/// What can be said about a setting's optimum.
#[derive(Clone, Debug, PartialEq)]
pub enum Classification {
    /// A solver applies.
    Solvable(Problem),
    /// No bound is known for this network (say so and compare against the best policy found).
    NoKnownBound {
        /// Why, for the user.
        reason: String,
    },
    /// A bound would exist for a related instance but not for this variant.
    Unsupported {
        /// Why, for the user.
        reason: String,
    },
}

/// Exact optimum or lower bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceKind {
    /// The optimal cost over all admissible policies.
    Exact,
    /// A lower bound on it.
    LowerBound,
}

impl ReferenceKind {
    /// "exact optimum" / "lower bound".
    pub fn label(self) -> &'static str {
        match self {
            ReferenceKind::Exact => "exact optimum",
            ReferenceKind::LowerBound => "lower bound",
        }
    }

    /// How a gap against it is called.
    pub fn gap_label(self) -> &'static str {
        match self {
            ReferenceKind::Exact => "gap to optimum",
            ReferenceKind::LowerBound => "gap to bound (upper bound on the optimality gap)",
        }
    }

    /// Short label of a reference line in a plot.
    pub fn short(self) -> &'static str {
        match self {
            ReferenceKind::Exact => "optimum",
            ReferenceKind::LowerBound => "lower bound",
        }
    }
}

/// A solved problem: the reference cost per store per period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Solved {
    /// Exact or bound.
    pub kind: ReferenceKind,
    /// Cost per store per period (serial chains: the chain's cost per period).
    pub cost: f64,
    /// How it was obtained (method and optimal parameters).
    pub what: String,
    /// Seconds the solve took when it was computed.
    pub solve_seconds: f64,
}

/// Where a [`Solved`] came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Computed now (and written to the cache file, when there is a cache).
    Computed,
    /// Read from this cache file.
    Cache(PathBuf),
}

/// The reference of a setting, ready to report.
#[derive(Clone, Debug, PartialEq)]
pub enum Reference {
    /// An exact optimum or a lower bound.
    Known {
        /// The solver inputs.
        problem: Problem,
        /// The result.
        solved: Solved,
        /// Where it came from.
        source: Source,
        /// Cache problems that did not stop the computation (corrupt entry, unwritable directory).
        warnings: Vec<String>,
    },
    /// No bound is known for this network.
    NoKnownBound {
        /// Why.
        reason: String,
    },
    /// This variant is not supported by the solvers.
    Unsupported {
        /// Why.
        reason: String,
    },
    /// A solver applies but failed (e.g. the lost-sales state space is too large).
    Failed {
        /// The solver inputs.
        problem: Problem,
        /// The solver's message.
        reason: String,
    },
}

impl Reference {
    /// The cost and kind, when known.
    pub fn known(&self) -> Option<(f64, ReferenceKind)> {
        match self {
            Reference::Known { solved, .. } => Some((solved.cost, solved.kind)),
            _ => None,
        }
    }

    /// `policy_cost / reference − 1`, when a reference is known.
    pub fn gap(&self, policy_cost: f64) -> Option<f64> {
        self.known().map(|(cost, _)| policy_cost / cost - 1.0)
    }

    /// A horizontal line for `RunDir::write_curve`: `(cost, "optimum 6.8359")`.
    pub fn curve_line(&self) -> Option<(f64, String)> {
        self.known()
            .map(|(cost, kind)| (cost, format!("{} {cost:.4}", kind.short())))
    }

    /// One line describing the reference: "exact optimum 6.8359 (…)", "no known bound: …".
    pub fn summary(&self) -> String {
        match self {
            Reference::Known { solved, .. } => format!(
                "{} {:.4} per store per period ({})",
                solved.kind.label(),
                solved.cost,
                solved.what
            ),
            Reference::NoKnownBound { reason } => {
                format!("no known bound ({reason}): report against the best policy found")
            }
            Reference::Unsupported { reason } => format!("not available: {reason}"),
            Reference::Failed { reason, .. } => format!("the solver failed: {reason}"),
        }
    }

    /// "gap to optimum +0.52 %" for a policy cost, or `None` without a reference.
    pub fn gap_text(&self, policy_cost: f64) -> Option<String> {
        let (_, kind) = self.known()?;
        let gap = self.gap(policy_cost)?;
        Some(format!("{} {:+.2} %", kind.gap_label(), 100.0 * gap))
    }
}

fn unsupported(reason: impl Into<String>) -> Classification {
    Classification::Unsupported {
        reason: reason.into(),
    }
}

/// The per-store values of a cost, or why they are not fixed numbers.
fn per_store(values: &StoreValues, field: &str) -> Result<Vec<f64>, Classification> {
    match values {
        StoreValues::PerStore(v) => Ok(v.clone()),
        StoreValues::PerSample { low, high, .. } => Err(unsupported(format!(
            "`{field}` is drawn per sample from U[{low}, {high}); the solvers need one fixed value per store"
        ))),
    }
}

/// Store lead times from `source` (column of the per-edge matrix), or why not.
fn store_lead_times(instance: &Instance, source: usize) -> Result<Vec<usize>, Classification> {
    match &instance.lead_time {
        StoreLeadTimes::PerEdge(matrix) => Ok(matrix
            .iter()
            .map(|row| row.get(source).copied().unwrap_or(0) as usize)
            .collect()),
        StoreLeadTimes::PerSample { low, high, .. } => Err(unsupported(format!(
            "store lead times are drawn per sample from {{{low}, …, {}}}; the solvers need fixed lead times",
            high.saturating_sub(1)
        ))),
    }
}

fn all_equal(values: &[f64]) -> bool {
    values.windows(2).all(|w| w[0] == w[1])
}

impl Problem {
    /// Classifies a setting: which solver applies to its resolved instance, or why none does.
    /// Errors only when the setting itself is invalid.
    pub fn from_setting(setting: &Setting) -> Result<Classification, hdpo_sim::ConfigError> {
        let instance = setting.instance()?;
        let transshipment = setting.name.starts_with("transshipment");
        Ok(classify(&instance, transshipment).unwrap_or_else(|c| c))
    }

    /// Solves the problem (no cache).
    pub fn solve(&self) -> Result<Solved, String> {
        let t0 = Instant::now();
        let (kind, cost, what) = self.solve_inner().map_err(|e| e.to_string())?;
        Ok(Solved {
            kind,
            cost,
            what,
            solve_seconds: t0.elapsed().as_secs_f64(),
        })
    }

    fn solve_inner(&self) -> Result<(ReferenceKind, f64, String), crate::OptimumError> {
        match self {
            Problem::LostSalesPoisson { stores } => {
                let (cost, whats) = average_over_stores(stores, |s| {
                    let instance = lost_sales::LostSalesInstance {
                        lead_time: s.lead_time,
                        demand: lost_sales::DiscreteDemand::Poisson { mean: s.mean },
                        holding_cost: s.holding_cost,
                        lost_sale_penalty: s.penalty,
                    };
                    let opt = crate::lost_sales_optimum(&instance)?;
                    Ok((opt.cost(), opt.what().to_string()))
                })?;
                Ok((ReferenceKind::Exact, cost, describe(stores.len(), whats)))
            }
            Problem::BacklogNormal {
                stores,
                clipped,
                lattice_step,
            } => {
                let (cost, whats) = average_over_stores(stores, |s| {
                    if *clipped {
                        let b = backlog::backlog_clipped_normal(
                            s.mean,
                            s.std,
                            s.lead_time,
                            s.holding_cost,
                            s.penalty,
                            *lattice_step,
                        )?;
                        Ok((
                            b.average_cost,
                            format!(
                                "backlog, optimal base stock S* = {:.2} (normal demand clipped at 0, \
                                 lattice step {lattice_step})",
                                b.level
                            ),
                        ))
                    } else {
                        let opt = crate::backlog_normal_optimum(
                            s.mean,
                            s.std,
                            s.lead_time,
                            s.holding_cost,
                            s.penalty,
                        )?;
                        Ok((opt.cost(), opt.what().to_string()))
                    }
                })?;
                Ok((ReferenceKind::Exact, cost, describe(stores.len(), whats)))
            }
            Problem::BacklogPoisson { stores } => {
                let (cost, whats) = average_over_stores(stores, |s| {
                    let b =
                        backlog::backlog_poisson(s.mean, s.lead_time, s.holding_cost, s.penalty)?;
                    Ok((
                        b.average_cost,
                        format!(
                            "backlog, optimal base stock S* = {} (Poisson demand, exact)",
                            b.level
                        ),
                    ))
                })?;
                Ok((ReferenceKind::Exact, cost, describe(stores.len(), whats)))
            }
            Problem::Serial {
                locations,
                backlog_penalty,
                demand,
            } => {
                let system = serial::SerialSystem {
                    locations: locations
                        .iter()
                        .map(|l| serial::SerialLocation {
                            lead_time: l.lead_time,
                            holding_cost: l.holding_cost,
                        })
                        .collect(),
                    backlog_penalty: *backlog_penalty,
                };
                match demand {
                    ChainDemand::ClippedNormal {
                        mean,
                        std,
                        lattice_step,
                    } => {
                        let opt = serial::solve_serial_clipped_normal(
                            &system,
                            *mean,
                            *std,
                            *lattice_step,
                        )?;
                        Ok((
                            ReferenceKind::Exact,
                            opt.average_cost,
                            format!(
                                "serial system, Clark-Scarf echelon base stock {} \
                                 (normal demand clipped at 0, lattice step {lattice_step})",
                                levels_text(&opt.echelon_levels)
                            ),
                        ))
                    }
                    ChainDemand::Poisson { mean } => {
                        let pmf = crate::discrete::poisson_pmf(
                            *mean,
                            crate::discrete::poisson_support_bound(*mean),
                        )?;
                        let lattice = crate::discrete::LatticeDistribution::new(1.0, pmf)?;
                        let opt = serial::solve_serial(&system, &lattice)?;
                        Ok((
                            ReferenceKind::Exact,
                            opt.average_cost,
                            format!(
                                "serial system, Clark-Scarf echelon base stock {} (Poisson demand)",
                                levels_text(&opt.echelon_levels)
                            ),
                        ))
                    }
                }
            }
            Problem::Transshipment {
                means,
                stds,
                correlation,
                store_lead_time,
                warehouse_lead_time,
                holding_cost,
                backlog_penalty,
            } => {
                let bound = crate::transshipment_bound(
                    means,
                    stds,
                    *correlation,
                    *store_lead_time,
                    *warehouse_lead_time,
                    *holding_cost,
                    *backlog_penalty,
                )?;
                Ok((
                    ReferenceKind::LowerBound,
                    bound.cost(),
                    format!(
                        "{} ({} stores, correlation {correlation}, store lead time {store_lead_time}, \
                         centre lead time {warehouse_lead_time})",
                        bound.what(),
                        means.len()
                    ),
                ))
            }
        }
    }

    /// A short name of the solver.
    pub fn solver_name(&self) -> &'static str {
        match self {
            Problem::LostSalesPoisson { .. } => "lost_sales_poisson",
            Problem::BacklogNormal { .. } => "backlog_normal",
            Problem::BacklogPoisson { .. } => "backlog_poisson",
            Problem::Serial { .. } => "serial",
            Problem::Transshipment { .. } => "transshipment",
        }
    }

    /// The cache key: a hash of the solver version and the problem's canonical JSON.
    pub fn cache_key(&self) -> String {
        let json = serde_json::to_string(self).expect("a problem serialises");
        let text = format!("v{SOLVER_VERSION}:{json}");
        let a = fnv1a64(text.as_bytes(), 0xcbf2_9ce4_8422_2325);
        let b = fnv1a64(text.as_bytes(), 0x6c62_272e_07bb_0142);
        format!("{}-{a:016x}{b:016x}", self.solver_name())
    }
}

fn fnv1a64(bytes: &[u8], offset: u64) -> u64 {
    let mut hash = offset;
    for &byte in bytes {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

fn levels_text(levels: &[f64]) -> String {
    let parts: Vec<String> = levels.iter().map(|l| format!("{l:.2}")).collect();
    format!("[{}] (upstream → store)", parts.join(", "))
}

/// Solves every distinct store once and averages over all stores.
fn average_over_stores(
    stores: &[StoreProblem],
    mut solve: impl FnMut(&StoreProblem) -> Result<(f64, String), crate::OptimumError>,
) -> Result<(f64, Vec<String>), crate::OptimumError> {
    let mut distinct: Vec<(&StoreProblem, f64, String)> = Vec::new();
    let mut total = 0.0;
    for store in stores {
        let cost = match distinct.iter().find(|(s, _, _)| *s == store) {
            Some((_, cost, _)) => *cost,
            None => {
                let (cost, what) = solve(store)?;
                distinct.push((store, cost, what));
                cost
            }
        };
        total += cost;
    }
    let whats = distinct.into_iter().map(|(_, _, w)| w).collect();
    Ok((total / stores.len() as f64, whats))
}

fn describe(n_stores: usize, whats: Vec<String>) -> String {
    if n_stores == 1 {
        whats.into_iter().next().unwrap_or_default()
    } else if whats.len() == 1 {
        format!(
            "{n_stores} identical independent stores, each: {}",
            whats[0]
        )
    } else {
        format!(
            "average over {n_stores} independent stores ({} distinct), e.g. {}",
            whats.len(),
            whats[0]
        )
    }
}

fn classify(instance: &Instance, transshipment: bool) -> Result<Classification, Classification> {
    let (s, w, e) = (
        instance.n_stores,
        instance.n_warehouses,
        instance.n_echelons,
    );
    if instance.distribution == DemandDistribution::Data {
        return Err(unsupported(
            "demand from a data file has no distribution for the solvers to optimise against",
        ));
    }
    if instance.objective == Objective::Profit {
        return Err(unsupported(
            "the profit objective (real-data setting) has no optimum solver",
        ));
    }
    let holding = per_store(&instance.holding_cost, "stores.holding_cost")?;
    let penalty = per_store(&instance.underage_cost, "stores.underage_cost")?;
    let lost = instance.unmet_demand == UnmetDemand::Lost;
    let poisson = instance.distribution == DemandDistribution::Poisson;

    if w == 0 {
        let lead = store_lead_times(instance, 0)?;
        let stores: Vec<StoreProblem> = (0..s)
            .map(|i| StoreProblem {
                lead_time: lead[i],
                holding_cost: holding[i],
                penalty: penalty[i],
                mean: instance.mean[i],
                std: if poisson { 0.0 } else { instance.std[i] },
            })
            .collect();
        return Ok(Classification::Solvable(match (lost, poisson) {
            (true, true) => Problem::LostSalesPoisson { stores },
            (true, false) => {
                return Err(unsupported(
                    "lost sales with normal demand: the exact dynamic program needs integer demand \
                     (set demand.distribution = \"poisson\")",
                ));
            }
            (false, true) => Problem::BacklogPoisson { stores },
            (false, false) => Problem::BacklogNormal {
                stores,
                clipped: instance.clip,
                lattice_step: if instance.clip { LATTICE_STEP } else { 0.0 },
            },
        }));
    }

    let edge_costs = instance.warehouse_edge_cost.iter().any(|&c| c != 0.0);
    if transshipment {
        if edge_costs {
            return Err(unsupported(
                "the transshipment bound has no per-unit ordering (edge) costs; set warehouses.edge_cost = 0",
            ));
        }
        if w != 1 || e != 0 {
            return Err(unsupported(format!(
                "the transshipment bound needs one centre and no extra echelons (has {w} warehouses, {e} echelons)"
            )));
        }
        if lost {
            return Err(unsupported(
                "the transshipment bound is for backlogged demand (unmet_demand = \"backlogged\")",
            ));
        }
        if poisson || instance.clip {
            return Err(unsupported(
                "the transshipment bound is for unclipped normal demand (demand.distribution = \
                 \"normal\", demand.clip = false)",
            ));
        }
        let lead = store_lead_times(instance, 0)?;
        let lead_f: Vec<f64> = lead.iter().map(|&l| l as f64).collect();
        if !all_equal(&holding) || !all_equal(&penalty) || !all_equal(&lead_f) {
            return Err(unsupported(
                "the transshipment bound needs the same holding cost, underage cost and lead time at every store",
            ));
        }
        return Ok(Classification::Solvable(Problem::Transshipment {
            means: instance.mean.clone(),
            stds: instance.std.clone(),
            correlation: instance.correlation,
            store_lead_time: lead[0],
            warehouse_lead_time: instance.warehouse_lead_time[0] as usize,
            holding_cost: holding[0],
            backlog_penalty: penalty[0],
        }));
    }

    if w == 1 && s == 1 {
        if edge_costs {
            return Err(unsupported(
                "the serial recursion has no per-unit ordering (edge) costs; set warehouses.edge_cost = 0",
            ));
        }
        if lost {
            return Err(Classification::NoKnownBound {
                reason: "a serial chain with lost sales has no known bound (the Clark–Scarf \
                         recursion needs backlogged demand)"
                    .to_string(),
            });
        }
        let lead = store_lead_times(instance, 0)?;
        let mut locations: Vec<ChainLocation> = instance
            .echelon_lead_time
            .iter()
            .zip(&instance.echelon_holding_cost)
            .map(|(&l, &h)| ChainLocation {
                lead_time: l as usize,
                holding_cost: h,
            })
            .collect();
        locations.push(ChainLocation {
            lead_time: instance.warehouse_lead_time[0] as usize,
            holding_cost: instance.warehouse_holding_cost[0],
        });
        locations.push(ChainLocation {
            lead_time: lead[0],
            holding_cost: holding[0],
        });
        let demand = if poisson {
            ChainDemand::Poisson {
                mean: instance.mean[0],
            }
        } else if instance.clip {
            ChainDemand::ClippedNormal {
                mean: instance.mean[0],
                std: instance.std[0],
                lattice_step: LATTICE_STEP,
            }
        } else {
            return Err(unsupported(
                "the serial recursion needs non-negative demand: set demand.clip = true",
            ));
        };
        return Ok(Classification::Solvable(Problem::Serial {
            locations,
            backlog_penalty: penalty[0],
            demand,
        }));
    }

    let reason = if w == 1 {
        format!("one warehouse with {s} stores: no bound is known")
    } else {
        format!("{w} warehouses and {s} stores: no bound is known")
    };
    Err(Classification::NoKnownBound { reason })
}

/// Best base-stock and best capped base-stock costs of a single lost-sales store (the published
/// heuristics of `docs/optimality.md` §2), for `hdpo optimum --heuristics`.
pub fn lost_sales_heuristics(store: &StoreProblem) -> Result<Vec<(String, f64)>, String> {
    let instance = lost_sales::LostSalesInstance {
        lead_time: store.lead_time,
        demand: lost_sales::DiscreteDemand::Poisson { mean: store.mean },
        holding_cost: store.holding_cost,
        lost_sale_penalty: store.penalty,
    };
    let base = lost_sales::best_base_stock(&instance).map_err(|e| e.to_string())?;
    let capped = lost_sales::best_capped_base_stock(&instance).map_err(|e| e.to_string())?;
    Ok(vec![
        (
            format!("best base stock (S = {})", base.level),
            base.average_cost,
        ),
        (
            format!(
                "best capped base stock (S = {}, cap = {})",
                capped.level,
                capped.cap.unwrap_or(0)
            ),
            capped.average_cost,
        ),
    ])
}
