//! The tape-free evaluator: rolls a policy over a split and reports the average cost per store
//! per period.
//!
//! The samples of the split are cut into fixed-size shards (`EvalOptions::shard_size`) that run
//! in parallel on rayon. A shard generates its own statics and initial state, streams its demand
//! a chunk of periods at a time, keeps only its current state, and sums its cost in `f64`. The
//! shard sums are then added **in shard order**, so the result does not depend on the number of
//! threads. Memory is `O(shard_size × S × (chunk_periods + L))` per running shard, whatever the
//! number of samples and periods (a 32,768 × 5,000 test split never exists as a whole).
//!
//! A split evaluated again and again (the dev split, every few training epochs) can have its demand
//! generated once and kept ([`SplitDemand`], [`evaluate_with_demand`]): the same values in the
//! layout the shards read, so the same results to the bit.
//!
//! Policies implement [`ActionPolicy`] and see an [`EvalObservation`]: the state, the period, the
//! network, the static features the setting allows, past demands if the setting asks for them,
//! and — only for policies that declare themselves non-admissible oracles — a window of future
//! demand. In the last periods of a network of stores alone, whose orders cannot arrive within the
//! horizon, the policy is not asked: those periods run with zero actions (the same costs; see
//! [`Statics::periods_with_effective_actions`]).

use ndarray::{Array1, Array2, ArrayView2, s};
use rayon::prelude::*;

use crate::config::{
    ConfigError, Objective, ObservationConfig, Setting, Split, StaticFeature, UnmetDemand,
};
use crate::dynamics::{Dynamics, StepError};
use crate::scenario::{DemandStream, ScenarioGenerator};
use crate::state::{Actions, State, Statics};

// ---------------------------------------------------------------------------------------------
// Policy interface
// ---------------------------------------------------------------------------------------------

/// A policy that maps an observation to actions, without the tape.
pub trait ActionPolicy: Sync {
    /// Writes this period's actions for every sample of the batch. `actions` arrives zeroed with
    /// the right shapes ([`Actions`]).
    fn act(&self, obs: &EvalObservation<'_>, actions: &mut Actions);

    /// Non-admissible oracles return `Some(h)`: they are then shown the demand of periods
    /// `t ..= t + h` (including the current, not yet realised period) through
    /// [`EvalObservation::oracle`]. Admissible policies keep the default `None`.
    fn oracle_lookahead(&self) -> Option<usize> {
        None
    }
}

/// What a tape-free policy ([`ActionPolicy`]) sees at the start of period `t` for a batch of
/// samples (policies on the tape see `hdpo_policy::TapeObservation` instead).
#[derive(Clone, Copy, Debug)]
pub struct EvalObservation<'a> {
    state: &'a State,
    statics: &'a Statics,
    features: &'a ObservationConfig,
    period: usize,
    periods: usize,
    past_demands: Option<&'a Array2<f32>>,
    future_demand: Option<ArrayView2<'a, f32>>,
}

/// The extra view of a non-admissible oracle.
#[derive(Clone, Copy, Debug)]
pub struct OracleView<'a> {
    /// Demand of periods `t ..= t + h`, `(B·S, h + 1)`; column 0 is the current period.
    /// Periods past the horizon continue the sample's demand stream.
    pub future_demand: ArrayView2<'a, f32>,
    /// All statics, whatever the setting's observation features.
    pub statics: &'a Statics,
}

impl<'a> EvalObservation<'a> {
    /// An observation of `state` at period `period` of `periods`, with the features allowed by
    /// `features` and no past demands or oracle view (add them with the `with_*` methods).
    pub fn new(
        state: &'a State,
        statics: &'a Statics,
        features: &'a ObservationConfig,
        period: usize,
        periods: usize,
    ) -> EvalObservation<'a> {
        EvalObservation {
            state,
            statics,
            features,
            period,
            periods,
            past_demands: None,
            future_demand: None,
        }
    }

    /// Adds the past-demand window `(B·S, P)` (oldest first).
    pub fn with_past_demands(mut self, past_demands: &'a Array2<f32>) -> EvalObservation<'a> {
        self.past_demands = Some(past_demands);
        self
    }

    /// Adds the oracle's future-demand window `(B·S, h + 1)` (column 0 = current period).
    pub fn with_future_demand(mut self, future_demand: ArrayView2<'a, f32>) -> EvalObservation<'a> {
        self.future_demand = Some(future_demand);
        self
    }

    /// The pipelines.
    pub fn state(&self) -> &'a State {
        self.state
    }

    /// All statics of the batch, whatever the setting's observation features. For adapters that
    /// run a policy whose features were checked against the setting when it was built (as
    /// `hdpo_policy::Policy::build` does); hand-written policies should use the gated accessors.
    pub fn statics(&self) -> &'a Statics {
        self.statics
    }

    /// Current period `t` (0-based).
    pub fn period(&self) -> usize {
        self.period
    }

    /// Horizon `T`.
    pub fn periods(&self) -> usize {
        self.periods
    }

    /// Samples in the batch.
    pub fn n_samples(&self) -> usize {
        self.statics.n_samples
    }

    /// Stores per sample.
    pub fn n_stores(&self) -> usize {
        self.statics.n_stores
    }

    /// Warehouses per sample.
    pub fn n_warehouses(&self) -> usize {
        self.statics.n_warehouses
    }

    /// Extra echelons per sample.
    pub fn n_echelons(&self) -> usize {
        self.statics.n_echelons
    }

    /// `(W, S)`: warehouse `w` ships to store `s`.
    pub fn adjacency(&self) -> &'a Array2<bool> {
        &self.statics.adjacency
    }

    /// Lost sales or backlog.
    pub fn unmet_demand(&self) -> UnmetDemand {
        self.statics.unmet_demand
    }

    /// Cost or profit.
    pub fn objective(&self) -> Objective {
        self.statics.objective
    }

    /// Warehouse holding costs (length `W`).
    pub fn warehouse_holding_cost(&self) -> &'a [f32] {
        &self.statics.warehouse_holding_cost
    }

    /// Warehouse lead times (length `W`).
    pub fn warehouse_lead_time(&self) -> &'a [u32] {
        &self.statics.warehouse_lead_time
    }

    /// Warehouse edge costs (length `W`).
    pub fn warehouse_edge_cost(&self) -> &'a [f32] {
        &self.statics.warehouse_edge_cost
    }

    /// Echelon holding costs (length `E`).
    pub fn echelon_holding_cost(&self) -> &'a [f32] {
        &self.statics.echelon_holding_cost
    }

    /// Echelon lead times (length `E`).
    pub fn echelon_lead_time(&self) -> &'a [u32] {
        &self.statics.echelon_lead_time
    }

    fn allowed(&self, feature: StaticFeature) -> bool {
        self.features.static_features.contains(&feature)
    }

    /// Store holding costs `(B·S)`, if the setting lets policies observe them.
    pub fn holding_cost(&self) -> Option<&'a Array1<f32>> {
        self.allowed(StaticFeature::HoldingCost)
            .then_some(&self.statics.holding_cost)
    }

    /// Store underage costs `(B·S)`, if observable.
    pub fn underage_cost(&self) -> Option<&'a Array1<f32>> {
        self.allowed(StaticFeature::UnderageCost)
            .then_some(&self.statics.underage_cost)
    }

    /// Store lead times `(B·S, W')`, if observable.
    pub fn lead_time(&self) -> Option<&'a Array2<u32>> {
        self.allowed(StaticFeature::LeadTime)
            .then_some(&self.statics.lead_time)
    }

    /// Demand means `(B·S)`, if observable.
    pub fn mean(&self) -> Option<&'a Array1<f32>> {
        self.allowed(StaticFeature::Mean)
            .then_some(&self.statics.mean)
    }

    /// Demand standard deviations `(B·S)`, if observable.
    pub fn std(&self) -> Option<&'a Array1<f32>> {
        self.allowed(StaticFeature::Std)
            .then_some(&self.statics.std)
    }

    /// Past demands `(B·S, P)`, oldest first, last column = period `t − 1` (zeros before
    /// period 0), if the setting has `observation.past_demands = P > 0`.
    pub fn past_demands(&self) -> Option<&'a Array2<f32>> {
        self.past_demands
    }

    /// The oracle view (future demand and all statics); `Some` only for policies whose
    /// [`ActionPolicy::oracle_lookahead`] is `Some`.
    pub fn oracle(&self) -> Option<OracleView<'a>> {
        self.future_demand.map(|future_demand| OracleView {
            future_demand,
            statics: self.statics,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// A reference policy
// ---------------------------------------------------------------------------------------------

/// Base-stock policy for settings without warehouses: every store orders
/// `max(level − inventory position, 0)` from the outside supplier, where the inventory position
/// is the sum of its pipeline (on-hand, possibly negative, plus everything in transit).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BaseStockPolicy {
    /// The base-stock level `S`.
    pub level: f32,
}

impl ActionPolicy for BaseStockPolicy {
    fn act(&self, obs: &EvalObservation<'_>, actions: &mut Actions) {
        for (pipeline, mut order) in obs
            .state()
            .store
            .rows()
            .into_iter()
            .zip(actions.store.rows_mut())
        {
            let position: f32 = pipeline.iter().sum();
            order[0] = (self.level - position).max(0.0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluator
// ---------------------------------------------------------------------------------------------

/// How to run an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvalOptions {
    /// Samples per shard (the unit of parallel work); results do not depend on it except through
    /// `f64` summation order. Default 1024.
    pub shard_size: usize,
    /// Periods of demand generated at a time per shard. Default 128.
    pub chunk_periods: usize,
    /// Round every action to an integer (half to even) before the step. Default: on for
    /// Poisson demand, as the reference does at test time.
    pub round_actions: bool,
}

impl EvalOptions {
    /// Defaults for a setting (rounding on for discrete demand).
    pub fn for_setting(setting: &Setting) -> EvalOptions {
        EvalOptions {
            shard_size: 1024,
            chunk_periods: 128,
            round_actions: setting.discrete_demand(),
        }
    }
}

/// Result of an evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalReport {
    /// The split evaluated.
    pub split: Split,
    /// Samples simulated.
    pub n_samples: usize,
    /// Stores per sample (the divisor of the per-store costs).
    pub n_stores: usize,
    /// Periods simulated per sample.
    pub periods: usize,
    /// Warm-up periods excluded from the reported cost.
    pub ignore_periods: usize,
    /// Average cost per store per period over periods `ignore_periods .. periods` — the number
    /// the reference reports (warehouse/echelon costs included, divided by `S` only).
    pub cost_per_store_period: f64,
    /// Average cost per store per period over all periods.
    pub cost_per_store_period_all: f64,
    /// Standard error of `cost_per_store_period` across the split's samples (independent
    /// scenarios): the standard deviation of the samples' own reported costs per store per period
    /// over √`n_samples`. `None` with fewer than two samples or no reported period.
    pub cost_std_error: Option<f64>,
    /// Total cost over the reported periods, all samples.
    pub total_cost_reported: f64,
    /// Total cost over all periods, all samples.
    pub total_cost_all: f64,
}

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The policy produced invalid actions.
    #[error("period {period}, samples {first_sample}..: {source}")]
    Step {
        /// Period of the failing step.
        period: usize,
        /// First sample of the failing shard (sample indices in the error are relative to it).
        first_sample: usize,
        /// What was wrong.
        #[source]
        source: StepError,
    },
    /// An option is out of range.
    #[error("`{field}` is 0; allowed: an integer ≥ 1")]
    Options {
        /// The option.
        field: &'static str,
    },
}

/// Sums of one shard.
#[derive(Clone, Copy, Debug, Default)]
struct ShardTotals {
    reported: f64,
    all: f64,
    /// Σ over the shard's samples of (the sample's total reported cost)².
    reported_squares: f64,
}

/// The standard error of the mean of `n` per-sample values `x_i = total_i / per_sample`, from the
/// sum of the totals and the sum of their squares; `None` when `n < 2` or `per_sample` is 0.
fn standard_error(n: usize, sum: f64, squares: f64, per_sample: f64) -> Option<f64> {
    if n < 2 || per_sample <= 0.0 {
        return None;
    }
    let nf = n as f64;
    let mean = sum / nf;
    // sample variance of the totals, clamped at 0 against rounding
    let variance = ((squares - nf * mean * mean) / (nf - 1.0)).max(0.0);
    Some((variance / nf).sqrt() / per_sample)
}

/// Rolls `policy` over the whole `split` of `setting` (its `n_samples × periods`) and reports
/// the average cost per store per period. Runs on the current rayon pool; the result is the same
/// for any number of threads.
pub fn evaluate<P: ActionPolicy + ?Sized>(
    setting: &Setting,
    split: Split,
    policy: &P,
    options: &EvalOptions,
) -> Result<EvalReport, EvalError> {
    evaluate_with_demand(setting, split, policy, options, None)
}

/// The demand of a whole split, generated once: for each shard of `shard_size` samples, a
/// period-major block `(periods + extra, samples × stores)` — the layout the evaluator's window
/// has — for repeated evaluations of the same split. `extra` periods past the horizon serve an
/// oracle's look-ahead. The values are those the evaluator would generate on the fly.
#[derive(Clone, Debug)]
pub struct SplitDemand {
    split: Split,
    shard_size: usize,
    extra: usize,
    shards: Vec<Array2<f32>>,
}

impl SplitDemand {
    /// Generates the demand of `split` for shards of `shard_size` samples and `extra` periods of
    /// look-ahead, in parallel (each shard's stream is independent of the others).
    pub fn generate(
        setting: &Setting,
        split: Split,
        shard_size: usize,
        extra: usize,
    ) -> Result<SplitDemand, EvalError> {
        if shard_size == 0 {
            return Err(EvalError::Options {
                field: "shard_size",
            });
        }
        let generator = ScenarioGenerator::new(setting, split)?;
        let periods = generator.periods() + extra;
        let shards = shard_ranges(generator.n_samples(), shard_size)
            .into_par_iter()
            .map(|range| {
                let mut stream = generator.demand_stream(range);
                let mut block = Array2::<f32>::zeros((periods, stream.n_rows()));
                stream.fill_next(block.view_mut().reversed_axes());
                block
            })
            .collect();
        Ok(SplitDemand {
            split,
            shard_size,
            extra,
            shards,
        })
    }

    /// Bytes it would take for `split` of `setting` with `extra` periods of look-ahead: to decide
    /// whether to keep it before generating it.
    pub fn bytes_for(setting: &Setting, split: Split, extra: usize) -> Result<usize, EvalError> {
        let generator = ScenarioGenerator::new(setting, split)?;
        let rows = generator.n_samples() * generator.instance().n_stores;
        // saturating: the sizes are bounded (`config::limits`), their product need not fit
        Ok(rows
            .saturating_mul(generator.periods().saturating_add(extra))
            .saturating_mul(std::mem::size_of::<f32>()))
    }

    /// The split it holds.
    pub fn split(&self) -> Split {
        self.split
    }

    /// True when an evaluation of `split` with shards of `shard_size` and a look-ahead of `extra`
    /// periods can read it.
    fn serves(&self, split: Split, shard_size: usize, extra: usize) -> bool {
        self.split == split && self.shard_size == shard_size && self.extra >= extra
    }
}

/// The sample ranges of the shards of `n_samples` samples.
fn shard_ranges(n_samples: usize, shard_size: usize) -> Vec<std::ops::Range<usize>> {
    (0..n_samples)
        .step_by(shard_size)
        .map(|start| start..(start + shard_size).min(n_samples))
        .collect()
}

/// [`evaluate`], reading the demand from `demand` when it holds this split for these shards
/// (otherwise generating it on the fly, as `evaluate`). Same results either way.
pub fn evaluate_with_demand<P: ActionPolicy + ?Sized>(
    setting: &Setting,
    split: Split,
    policy: &P,
    options: &EvalOptions,
    demand: Option<&SplitDemand>,
) -> Result<EvalReport, EvalError> {
    if options.shard_size == 0 {
        return Err(EvalError::Options {
            field: "shard_size",
        });
    }
    if options.chunk_periods == 0 {
        return Err(EvalError::Options {
            field: "chunk_periods",
        });
    }
    let generator = ScenarioGenerator::new(setting, split)?;
    let n_samples = generator.n_samples();
    let extra = policy.oracle_lookahead().unwrap_or(0);
    let cached = demand.filter(|d| d.serves(split, options.shard_size, extra));
    let totals: Vec<ShardTotals> = shard_ranges(n_samples, options.shard_size)
        .into_par_iter()
        .enumerate()
        .map(|(k, range)| {
            let block = cached.map(|d| d.shards[k].view());
            run_shard(&generator, setting, range, policy, options, block)
        })
        .collect::<Result<_, _>>()?;
    // Reduce in shard order: independent of the thread count.
    let mut sum = ShardTotals::default();
    for t in &totals {
        sum.reported += t.reported;
        sum.all += t.all;
        sum.reported_squares += t.reported_squares;
    }
    let (periods, ignore) = (generator.periods(), generator.ignore_periods());
    let n_stores = generator.instance().n_stores;
    let denominator = |p: usize| (n_samples * p * n_stores) as f64;
    let per_sample = ((periods - ignore) * n_stores) as f64;
    Ok(EvalReport {
        split,
        n_samples,
        n_stores,
        periods,
        ignore_periods: ignore,
        cost_per_store_period: sum.reported / denominator(periods - ignore),
        cost_per_store_period_all: sum.all / denominator(periods),
        cost_std_error: standard_error(n_samples, sum.reported, sum.reported_squares, per_sample),
        total_cost_reported: sum.reported,
        total_cost_all: sum.all,
    })
}

/// A shard's demand: generated a chunk of periods at a time into a sliding window, or read from a
/// [`SplitDemand`] block that holds the whole horizon. Both are period-major: row `j` of the
/// window is period `start + j`, contiguous over the shard's `B·S` rows.
enum ShardDemand<'a> {
    Stream {
        stream: Box<DemandStream>,
        window: Array2<f32>,
        start: usize,
    },
    Cached(ArrayView2<'a, f32>),
}

impl ShardDemand<'_> {
    /// Makes periods `t ..= t + extra` available (periods are visited in order) and returns the
    /// window with the row of period `t` in it.
    fn at(&mut self, t: usize, extra: usize) -> (ArrayView2<'_, f32>, usize) {
        match self {
            ShardDemand::Cached(block) => (block.view(), t),
            ShardDemand::Stream {
                stream,
                window,
                start,
            } => {
                let (width, rows) = window.dim();
                if t + extra >= *start + width {
                    // Slide: keep periods t.. already generated, generate the rest.
                    let keep_from = t - *start;
                    let kept = width - keep_from;
                    let data = window.as_slice_mut().expect("window is in standard layout");
                    data.copy_within(keep_from * rows.., 0);
                    stream.fill_next(window.slice_mut(s![kept.., ..]).reversed_axes());
                    *start = t;
                }
                (window.view(), t - *start)
            }
        }
    }
}

/// Simulates one shard over the whole horizon (its demand from `cached`, the whole horizon
/// period-major, when given; otherwise generated chunk by chunk).
fn run_shard<P: ActionPolicy + ?Sized>(
    generator: &ScenarioGenerator,
    setting: &Setting,
    samples: std::ops::Range<usize>,
    policy: &P,
    options: &EvalOptions,
    cached: Option<ArrayView2<'_, f32>>,
) -> Result<ShardTotals, EvalError> {
    let first_sample = samples.start;
    let n = samples.len();
    let statics = generator.statics(samples.clone());
    let mut state = generator.initial_state(samples.clone());
    let samples_for_history = samples.clone();
    let (periods, ignore) = (generator.periods(), generator.ignore_periods());
    let lookahead = policy.oracle_lookahead();
    let extra = lookahead.unwrap_or(0);
    let features = &setting.observation;

    let mut demand = match cached {
        Some(block) => ShardDemand::Cached(block),
        None => {
            let mut stream = generator.demand_stream(samples);
            let mut window = Array2::<f32>::zeros((options.chunk_periods + extra, stream.n_rows()));
            stream.fill_next(window.view_mut().reversed_axes());
            ShardDemand::Stream {
                stream: Box::new(stream),
                window,
                start: 0,
            }
        }
    };
    let rows = statics.n_samples * statics.n_stores;

    let n_past = features.past_demands;
    // the window before period 0: the split's history (data demand), zeros before it
    let mut past = Array2::<f32>::zeros((rows, n_past));
    if n_past > 0 {
        let history = generator.history(samples_for_history);
        let h = history.ncols();
        for k in 0..n_past.min(h) {
            past.column_mut(n_past - 1 - k)
                .assign(&history.column(h - 1 - k));
        }
    }
    let mut actions = Actions::zeros(n, &statics);
    let mut cost = vec![0.0f32; n];
    let mut sample_reported = vec![0.0f64; n];
    let mut totals = ShardTotals::default();
    let dynamics = Dynamics::new(&statics);
    // the orders of the last periods may never reach a cost: those periods keep zero actions
    let acting = statics.periods_with_effective_actions(periods);

    for t in 0..periods {
        let (window, offset) = demand.at(t, extra);
        let mut obs = EvalObservation::new(&state, &statics, features, t, periods);
        if n_past > 0 {
            obs = obs.with_past_demands(&past);
        }
        if let Some(h) = lookahead {
            obs = obs.with_future_demand(window.slice(s![offset..=offset + h, ..]).reversed_axes());
        }
        actions.clear();
        if t < acting {
            policy.act(&obs, &mut actions);
            if options.round_actions {
                actions.round_half_even();
            }
        }
        let demand_now = window.row(offset);
        let demand_now = demand_now.as_slice().expect("window rows are contiguous");
        dynamics
            .step(&mut state, &actions, demand_now, &mut cost)
            .map_err(|source| EvalError::Step {
                period: t,
                first_sample,
                source,
            })?;
        let period_cost: f64 = cost.iter().map(|&c| f64::from(c)).sum();
        totals.all += period_cost;
        if t >= ignore {
            totals.reported += period_cost;
            for (acc, &c) in sample_reported.iter_mut().zip(&cost) {
                *acc += f64::from(c);
            }
        }
        if n_past > 0 {
            for (mut row, &d) in past.rows_mut().into_iter().zip(demand_now) {
                let row = row.as_slice_mut().expect("past demands are contiguous");
                row.copy_within(1.., 0);
                row[n_past - 1] = d;
            }
        }
    }
    totals.reported_squares = sample_reported.iter().map(|x| x * x).sum();
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::setting;

    #[test]
    fn a_matching_split_demand_is_what_the_shards_read() {
        // the same demand gives the streamed result; a doctored copy changes it, so it was read
        let mut s = setting("one_store_lost").unwrap();
        s.apply_overrides([
            "splits.dev.n_samples=300",
            "splits.dev.batch_size=300",
            "splits.dev.periods=30",
            "splits.dev.ignore_periods=0",
        ])
        .unwrap();
        let policy = BaseStockPolicy { level: 20.0 };
        let options = EvalOptions {
            shard_size: 128,
            ..EvalOptions::for_setting(&s)
        };
        let streamed = evaluate(&s, Split::Dev, &policy, &options).unwrap();
        let mut demand = SplitDemand::generate(&s, Split::Dev, 128, 0).unwrap();
        assert_eq!(demand.shards.len(), 3);
        let same = evaluate_with_demand(&s, Split::Dev, &policy, &options, Some(&demand));
        assert_eq!(same.unwrap(), streamed);
        for block in &mut demand.shards {
            block.fill(0.0);
        }
        let none = evaluate_with_demand(&s, Split::Dev, &policy, &options, Some(&demand));
        let none = none.unwrap();
        assert_ne!(none, streamed);
        // no demand: nothing is lost, only holding costs
        assert!(none.cost_per_store_period_all > 0.0);
        assert!(none.total_cost_all != streamed.total_cost_all);
    }
    #[test]
    fn the_standard_error_is_that_of_the_samples_own_costs() {
        let mut s = setting("one_store_backlogged").unwrap();
        s.apply_overrides([
            "splits.dev.n_samples=300",
            "splits.dev.batch_size=300",
            "splits.dev.periods=40",
            "splits.dev.ignore_periods=10",
        ])
        .unwrap();
        let policy = BaseStockPolicy { level: 25.0 };
        let options = EvalOptions {
            shard_size: 128,
            ..EvalOptions::for_setting(&s)
        };
        let report = evaluate(&s, Split::Dev, &policy, &options).unwrap();
        let se = report.cost_std_error.expect("300 samples");
        // by hand: each sample simulated alone, its own reported cost per period, two passes
        let generator = ScenarioGenerator::new(&s, Split::Dev).unwrap();
        let costs: Vec<f64> = (0..300)
            .map(|i| {
                let t = run_shard(&generator, &s, i..i + 1, &policy, &options, None).unwrap();
                t.reported / 30.0
            })
            .collect();
        let n = costs.len() as f64;
        let mean = costs.iter().sum::<f64>() / n;
        let variance = costs.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let want = (variance / n).sqrt();
        assert!((mean / report.cost_per_store_period - 1.0).abs() < 1e-6);
        assert!(
            want > 0.0 && (se / want - 1.0).abs() < 1e-6,
            "{se} vs {want}"
        );
        // the shards only change the summation order
        let other = EvalOptions {
            shard_size: 7,
            ..options
        };
        let again = evaluate(&s, Split::Dev, &policy, &other).unwrap();
        assert!((again.cost_std_error.unwrap() / se - 1.0).abs() < 1e-9);
        // one sample has no standard error
        s.apply_overrides(["splits.dev.n_samples=1", "splits.dev.batch_size=1"])
            .unwrap();
        let one = evaluate(&s, Split::Dev, &policy, &options).unwrap();
        assert_eq!(one.cost_std_error, None);
    }

    #[test]
    fn standard_error_of_known_values() {
        // totals 2, 4, 6, 8 over 2 periods each: values 1 … 4, variance 5/3, s.e. √(5/12)
        let se = standard_error(4, 20.0, 4.0 + 16.0 + 36.0 + 64.0, 2.0).unwrap();
        assert!((se - (5.0f64 / 12.0).sqrt()).abs() < 1e-12);
        assert_eq!(standard_error(1, 2.0, 4.0, 2.0), None);
        assert_eq!(standard_error(4, 20.0, 120.0, 0.0), None);
    }
}
