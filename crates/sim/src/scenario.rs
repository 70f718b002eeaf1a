//! Scenario generation: the random part of a split — per-sample parameters, initial store
//! pipelines and demand traces — drawn from our own seeded `rand_pcg` generators (not numpy's
//! MT19937; bit-exact reference streams are not a goal).
//!
//! **Seeding.** Every random quantity of sample `i` comes from its own stream, keyed by
//! `(split seed, purpose, i)` (purpose = `"demand"`, `"initial_inventory"`, or the parameter's
//! field name). Sample `i`'s trace therefore does not depend on the number of samples, the batch
//! size, the shard size or the thread count. Demand of a sample is drawn period by period (all
//! stores of a period together), so a [`DemandStream`] that yields a few periods at a time gives
//! exactly the values of a materialised [`Scenario`].
//!
//! **Data demand** (`demand.distribution = "data"`) has no randomness: sample `i`'s demand at
//! period `t` of a split is the file's value of (sample `i`, store, period `start + past + t`),
//! where `[start, end)` is the split's `periods_range` and `past` is `demand.past_periods`; the
//! `past` periods before are the split's *history* ([`ScenarioGenerator::history`],
//! [`Scenario::history`]), observed as past demands but never simulated. Periods past the end of
//! the range continue the file (an oracle's look-ahead), and are zero past the file's end.
//!
//! [`ScenarioGenerator`] produces any range of samples on demand (statics, initial state, demand
//! stream) — the evaluator uses it shard by shard so a 32,768 × 5,000 test split never lives in
//! memory; [`Scenario`] materialises a whole split (training/dev) and gathers batches from it.

use std::ops::Range;
use std::sync::Arc;

use ndarray::{Array1, Array2, ArrayViewMut2, ShapeBuilder};
use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64;

use crate::config::{
    ConfigError, DemandDistribution, InitialInventoryRule, Instance, Setting, Split,
    StoreLeadTimes, StoreValues,
};
use crate::demand_data::DemandData;
use crate::state::{State, Statics, gather_rows};

pub use crate::rng::{keyed_rng, name_key};

const DEMAND_KEY: u64 = name_key("demand");
const INITIAL_INVENTORY_KEY: u64 = name_key("initial_inventory");
const INITIAL_UPSTREAM_KEY: u64 = name_key("initial_upstream_inventory");
const HOLDING_COST_KEY: u64 = name_key("stores.holding_cost");
const UNDERAGE_COST_KEY: u64 = name_key("stores.underage_cost");
const LEAD_TIME_KEY: u64 = name_key("stores.lead_time");

// ---------------------------------------------------------------------------------------------
// Demand model
// ---------------------------------------------------------------------------------------------

/// Draws the demand of all stores of one sample for one period.
#[derive(Clone, Debug)]
struct DemandModel {
    distribution: DemandDistribution,
    mean: Vec<f64>,
    std: Vec<f64>,
    clip: bool,
    /// Lower-triangular Cholesky factor of the covariance, row-major `S × S`; `None` when the
    /// stores are independent (then `x_s = mean_s + std_s·z_s`).
    cholesky: Option<Vec<f64>>,
    poisson: Vec<PoissonTable>,
}

impl DemandModel {
    fn new(instance: &Instance) -> Result<DemandModel, ConfigError> {
        let s = instance.n_stores;
        let mut cholesky = None;
        let mut poisson = Vec::new();
        match instance.distribution {
            DemandDistribution::Poisson => {
                for (i, &m) in instance.mean.iter().enumerate() {
                    poisson.push(PoissonTable::new(m).ok_or_else(|| ConfigError::Invalid {
                        field: "demand.mean".into(),
                        message: format!(
                            "store {i}: Poisson({m}) is invalid; allowed: 0 < mean ≤ 10000"
                        ),
                    })?);
                }
            }
            DemandDistribution::Normal if s > 1 && instance.correlation != 0.0 => {
                let sigma = &instance.std;
                let rho = instance.correlation;
                let mut cov = vec![0.0; s * s];
                for i in 0..s {
                    for j in 0..s {
                        cov[i * s + j] = if i == j {
                            sigma[i] * sigma[i]
                        } else {
                            rho * sigma[i] * sigma[j]
                        };
                    }
                }
                cholesky = Some(cholesky_lower(&cov, s).ok_or_else(|| ConfigError::Invalid {
                    field: "demand.correlation".into(),
                    message: format!(
                        "is {rho}: the covariance is not positive definite; allowed: {:.4} < \
                         correlation < 1",
                        -1.0 / (s as f64 - 1.0)
                    ),
                })?);
            }
            DemandDistribution::Normal | DemandDistribution::Data => {}
        }
        Ok(DemandModel {
            distribution: instance.distribution,
            mean: instance.mean.clone(),
            std: instance.std.clone(),
            clip: instance.clip,
            cholesky,
            poisson,
        })
    }

    /// Fills `out` (length S) with one period of demand; `z` is scratch of length S.
    fn sample_period(&self, rng: &mut Pcg64, z: &mut [f64], out: &mut [f32]) {
        match self.distribution {
            DemandDistribution::Poisson => {
                for (o, dist) in out.iter_mut().zip(&self.poisson) {
                    *o = dist.sample(rng.random::<f64>()) as f32;
                }
            }
            DemandDistribution::Normal => {
                for zi in z.iter_mut() {
                    *zi = StandardNormal.sample(rng);
                }
                let s = self.mean.len();
                for i in 0..s {
                    let x = match &self.cholesky {
                        None => self.mean[i] + self.std[i] * z[i],
                        Some(l) => {
                            let row = &l[i * s..i * s + i + 1];
                            self.mean[i] + row.iter().zip(&z[..=i]).map(|(a, b)| a * b).sum::<f64>()
                        }
                    };
                    out[i] = if self.clip { x.max(0.0) } else { x } as f32;
                }
            }
            DemandDistribution::Data => {
                unreachable!("data demand is read from its file (DataWindow), never drawn")
            }
        }
    }
}

/// Poisson sampling by inversion of a tabulated CDF: one uniform draw and a binary search per
/// sample (several times faster than multiplying uniforms, which matters for the 32,768 × 5,000
/// test streams). The table runs past the mean until a term falls below 1e-17; the mass beyond it
/// (below 1e-15 in total) is assigned to the table's last value.
///
/// A guide table (Chen and Asau's indexed search) makes the search O(1) on average: `guide[j]` is
/// the answer for `u = j / G`, the smallest possible answer for any `u ∈ [j/G, (j+1)/G)`, and a
/// short forward scan from there finds the first `k` with `cdf[k] > u` — the same `k` as a binary
/// search, so the samples do not change.
#[derive(Clone, Debug)]
struct PoissonTable {
    cdf: Vec<f64>,
    guide: Vec<u32>,
}

impl PoissonTable {
    fn new(mean: f64) -> Option<PoissonTable> {
        if !(mean > 0.0 && mean <= 10_000.0) {
            return None;
        }
        // pmf in log space so large means do not underflow e^{-mean}
        let mut cdf = Vec::new();
        let mut total = 0.0f64;
        let mut k = 0u64;
        let mut log_pmf = -mean;
        loop {
            total += log_pmf.exp();
            cdf.push(total.min(1.0));
            k += 1;
            log_pmf += mean.ln() - (k as f64).ln();
            if (k as f64) > mean && log_pmf < (1e-17f64).ln() {
                break;
            }
        }
        let buckets = 4 * cdf.len();
        let guide = (0..buckets)
            .map(|j| {
                let u = j as f64 / buckets as f64;
                cdf.partition_point(|&c| c <= u) as u32
            })
            .collect();
        Some(PoissonTable { cdf, guide })
    }

    /// The sample for a uniform `u ∈ [0, 1)`: the first `k` with `cdf[k] > u` (the last `k` when
    /// there is none).
    #[inline]
    fn sample(&self, u: f64) -> u64 {
        let bucket = ((u * self.guide.len() as f64) as usize).min(self.guide.len() - 1);
        let mut k = self.guide[bucket] as usize;
        while k < self.cdf.len() && self.cdf[k] <= u {
            k += 1;
        }
        k.min(self.cdf.len() - 1) as u64
    }

    /// The binary search the guide table replaces (kept for the equality test).
    #[cfg(test)]
    fn sample_by_bisection(&self, u: f64) -> u64 {
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1) as u64
    }
}

/// Cholesky factor `L` (row-major, lower triangular) of a symmetric `n × n` matrix, or `None`
/// if it is not positive definite.
fn cholesky_lower(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] - dot;
                if d <= 0.0 || !d.is_finite() {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - dot) / l[j * n + j];
            }
        }
    }
    Some(l)
}

// ---------------------------------------------------------------------------------------------
// Streaming demand
// ---------------------------------------------------------------------------------------------

/// Where a data stream reads: the series and the file period of the split's period 0.
#[derive(Clone, Debug)]
struct DataWindow {
    data: Arc<DemandData>,
    first_period: usize,
}

/// Demand of a contiguous range of samples, produced a chunk of periods at a time from the
/// per-sample streams (or read from the data file). Rows are `b·S + s` (b relative to the start
/// of the range).
#[derive(Clone, Debug)]
pub struct DemandStream {
    model: DemandModel,
    samples: Range<usize>,
    data: Option<DataWindow>,
    rngs: Vec<Pcg64>,
    next_period: usize,
    z: Vec<f64>,
    period: Vec<f32>,
}

impl DemandStream {
    /// Number of samples in the stream.
    pub fn n_samples(&self) -> usize {
        self.samples.len()
    }

    /// Rows of each chunk (`samples × stores`).
    pub fn n_rows(&self) -> usize {
        self.samples.len() * self.model.mean.len()
    }

    /// Index of the next period to be produced.
    pub fn next_period(&self) -> usize {
        self.next_period
    }

    /// The next `periods` periods as a `(B·S, periods)` array. The stream is unbounded: periods
    /// past the split's horizon continue the same per-sample sequences.
    pub fn next_chunk(&mut self, periods: usize) -> Array2<f32> {
        let mut out = Array2::zeros((self.n_rows(), periods));
        self.fill_next(out.view_mut());
        out
    }

    /// Fills `out` (`B·S` rows, any strides — e.g. a period-major buffer seen through
    /// `reversed_axes()`) with the next `out.ncols()` periods.
    ///
    /// # Panics
    /// If `out.nrows()` is not `B·S` (a programming error).
    pub fn fill_next(&mut self, mut out: ArrayViewMut2<'_, f32>) {
        assert_eq!(
            out.nrows(),
            self.n_rows(),
            "DemandStream::fill_next: output must have samples × stores rows"
        );
        let s = self.model.mean.len();
        if let Some(window) = &self.data {
            for c in 0..out.ncols() {
                let period = window.first_period + self.next_period + c;
                let mut column = out.column_mut(c);
                for (b, sample) in self.samples.clone().enumerate() {
                    for i in 0..s {
                        column[b * s + i] = window.data.value(sample, i, period);
                    }
                }
            }
            self.next_period += out.ncols();
            return;
        }
        // Period-major loop (each sample's stream still advances period by period, so the
        // values do not depend on the loop order); writes are contiguous for a period-major
        // buffer seen through `reversed_axes()`.
        for c in 0..out.ncols() {
            let mut column = out.column_mut(c);
            if let (Some(column), DemandDistribution::Poisson) =
                (column.as_slice_mut(), self.model.distribution)
            {
                // contiguous column: the same draws, without the per-period scratch copy
                let tables = &self.model.poisson;
                for (rng, row) in self.rngs.iter_mut().zip(column.chunks_exact_mut(s)) {
                    for (o, dist) in row.iter_mut().zip(tables) {
                        *o = dist.sample(rng.random::<f64>()) as f32;
                    }
                }
                continue;
            }
            for (b, rng) in self.rngs.iter_mut().enumerate() {
                self.model.sample_period(rng, &mut self.z, &mut self.period);
                for (i, &d) in self.period.iter().enumerate() {
                    column[b * s + i] = d;
                }
            }
        }
        self.next_period += out.ncols();
    }
}

// ---------------------------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------------------------

/// Produces any range of samples of one split of a setting: statics, initial state and demand.
#[derive(Clone, Debug)]
pub struct ScenarioGenerator {
    instance: Instance,
    model: DemandModel,
    split: Split,
    seed: u64,
    n_samples: usize,
    periods: usize,
    ignore_periods: usize,
    /// File period of the split's first history period (data demand; 0 otherwise).
    range_start: usize,
    /// Periods of history before period 0 (`demand.past_periods` for data demand, else 0).
    history_periods: usize,
    /// Calendar features of the split's periods `(T, C)` (`(0, 0)` without a calendar).
    calendar: Arc<Array2<f32>>,
}

impl ScenarioGenerator {
    /// Validates the setting and prepares the generator of `split`.
    pub fn new(setting: &Setting, split: Split) -> Result<ScenarioGenerator, ConfigError> {
        let instance = setting.instance()?;
        let model = DemandModel::new(&instance)?;
        let sizes = setting.split(split);
        let range_start = sizes.periods_range.map_or(0, |[start, _]| start);
        let history_periods = setting.history_periods();
        // the policy sees period t's features: file period start + past + t
        let first = range_start + history_periods;
        let calendar = Arc::new(match &instance.calendar {
            Some(c) => c.window(first..first + sizes.periods),
            None => Array2::zeros((0, 0)),
        });
        Ok(ScenarioGenerator {
            instance,
            model,
            split,
            seed: setting.seed(split),
            n_samples: sizes.n_samples,
            periods: sizes.periods,
            ignore_periods: sizes.ignore_periods,
            range_start,
            history_periods,
            calendar,
        })
    }

    /// Periods of demand observed before period 0 (`demand.past_periods` for data demand, 0
    /// otherwise).
    pub fn history_periods(&self) -> usize {
        self.history_periods
    }

    /// The demand observed before period 0 of samples `samples`: `(B·S, H)` with `H` =
    /// [`ScenarioGenerator::history_periods`], column `k` the demand of period `k − H`.
    pub fn history(&self, samples: Range<usize>) -> Array2<f32> {
        let s = self.instance.n_stores;
        let h = self.history_periods;
        let mut out = Array2::zeros((samples.len() * s, h));
        if let Some(data) = &self.instance.data {
            for (b, sample) in samples.enumerate() {
                for i in 0..s {
                    let series = data.series(sample, i);
                    let values = &series[self.range_start..self.range_start + h];
                    out.row_mut(b * s + i)
                        .assign(&ndarray::ArrayView1::from(values));
                }
            }
        }
        out
    }

    /// The resolved instance.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }

    /// The split.
    pub fn split(&self) -> Split {
        self.split
    }

    /// Samples in the split.
    pub fn n_samples(&self) -> usize {
        self.n_samples
    }

    /// Periods simulated per sample.
    pub fn periods(&self) -> usize {
        self.periods
    }

    /// Warm-up periods excluded from the reported cost.
    pub fn ignore_periods(&self) -> usize {
        self.ignore_periods
    }

    /// Statics of samples `samples` (any range; samples past `n_samples` are well defined).
    pub fn statics(&self, samples: Range<usize>) -> Statics {
        let inst = &self.instance;
        let (s, w, sources) = (inst.n_stores, inst.n_warehouses, inst.n_sources());
        let b_count = samples.len();
        let per_row = |values: &StoreValues, key: u64| -> Array1<f32> {
            let mut out = Array1::zeros(b_count * s);
            for (b, sample) in samples.clone().enumerate() {
                for i in 0..s {
                    out[b * s + i] = match values {
                        StoreValues::PerStore(v) => v[i] as f32,
                        StoreValues::PerSample { low, high, seed } => {
                            // One draw per sample, shared by its stores.
                            if i == 0 {
                                let mut rng =
                                    keyed_rng(&[seed.unwrap_or(self.seed), key, sample as u64]);
                                (low + (high - low) * rng.random::<f64>()) as f32
                            } else {
                                out[b * s]
                            }
                        }
                    };
                }
            }
            out
        };
        let holding_cost = per_row(&inst.holding_cost, HOLDING_COST_KEY);
        let underage_cost = per_row(&inst.underage_cost, UNDERAGE_COST_KEY);
        let mut lead_time = Array2::zeros((b_count * s, sources));
        for (b, sample) in samples.clone().enumerate() {
            match &inst.lead_time {
                StoreLeadTimes::PerEdge(matrix) => {
                    for i in 0..s {
                        for k in 0..sources {
                            lead_time[[b * s + i, k]] = matrix[i][k];
                        }
                    }
                }
                StoreLeadTimes::PerSample { low, high, seed } => {
                    let mut rng =
                        keyed_rng(&[seed.unwrap_or(self.seed), LEAD_TIME_KEY, sample as u64]);
                    let value = rng.random_range(*low..*high);
                    for i in 0..s {
                        for k in 0..sources {
                            let edge = w == 0 || inst.adjacency[k][i];
                            lead_time[[b * s + i, k]] = if edge { value } else { 0 };
                        }
                    }
                }
            }
        }
        let mut adjacency = Array2::from_elem((w, s), false);
        for (k, row) in inst.adjacency.iter().enumerate() {
            for (i, &edge) in row.iter().enumerate() {
                adjacency[[k, i]] = edge;
            }
        }
        let tile = |v: &[f64]| -> Array1<f32> {
            Array1::from_iter((0..b_count).flat_map(|_| v.iter().map(|&x| x as f32)))
        };
        let to_f32 = |v: &[f64]| -> Vec<f32> { v.iter().map(|&x| x as f32).collect() };
        Statics {
            n_samples: b_count,
            n_stores: s,
            n_warehouses: w,
            n_echelons: inst.n_echelons,
            unmet_demand: inst.unmet_demand,
            objective: inst.objective,
            holding_cost,
            underage_cost,
            lead_time,
            mean: tile(&inst.mean),
            std: tile(&inst.std),
            warehouse_holding_cost: to_f32(&inst.warehouse_holding_cost),
            warehouse_lead_time: inst.warehouse_lead_time.clone(),
            warehouse_edge_cost: to_f32(&inst.warehouse_edge_cost),
            echelon_holding_cost: to_f32(&inst.echelon_holding_cost),
            echelon_lead_time: inst.echelon_lead_time.clone(),
            adjacency,
            calendar: Arc::clone(&self.calendar),
        }
    }

    /// Initial state of samples `samples`: every store pipeline slot `U(range_mult)·mean_s`
    /// (distribution mean; the reference uses the empirical mean of the generated demand) or
    /// zero; warehouses and echelons empty (the reference), or with `upstream = "uniform_mean"`
    /// every slot `U(range_mult)·` the mean demand the location serves (a warehouse the means of
    /// its stores, a store shared by several warehouses split evenly; an echelon all stores'),
    /// drawn from a stream of its own so that the stores' draws do not change.
    pub fn initial_state(&self, samples: Range<usize>) -> State {
        let inst = &self.instance;
        let (s, w, e) = (inst.n_stores, inst.n_warehouses, inst.n_echelons);
        let lengths = inst.pipeline;
        let b_count = samples.len();
        let init = &inst.initial_inventory;
        let [low, high] = init.range_mult;
        let mut store = Array2::zeros((b_count * s, lengths.store));
        let mut warehouse = Array2::zeros((b_count * w, lengths.warehouse));
        let mut echelon = Array2::zeros((b_count * e, lengths.echelon));
        let served = upstream_means(inst);
        for (b, sample) in samples.enumerate() {
            if init.rule == InitialInventoryRule::UniformMean {
                let mut rng = keyed_rng(&[self.seed, INITIAL_INVENTORY_KEY, sample as u64]);
                fill_uniform_mean(&mut store, b * s, &inst.mean, [low, high], &mut rng);
            }
            if init.upstream == InitialInventoryRule::UniformMean {
                let mut rng = keyed_rng(&[self.seed, INITIAL_UPSTREAM_KEY, sample as u64]);
                fill_uniform_mean(
                    &mut warehouse,
                    b * w,
                    &served.warehouse,
                    [low, high],
                    &mut rng,
                );
                fill_uniform_mean(&mut echelon, b * e, &served.echelon, [low, high], &mut rng);
            }
        }
        State {
            store,
            warehouse,
            echelon,
        }
    }

    /// A demand stream for samples `samples`, starting at period 0.
    pub fn demand_stream(&self, samples: Range<usize>) -> DemandStream {
        let s = self.instance.n_stores;
        let data = self.instance.data.as_ref().map(|data| DataWindow {
            data: Arc::clone(data),
            first_period: self.range_start + self.history_periods,
        });
        let rngs = match data {
            Some(_) => Vec::new(),
            None => samples
                .clone()
                .map(|sample| keyed_rng(&[self.seed, DEMAND_KEY, sample as u64]))
                .collect(),
        };
        DemandStream {
            model: self.model.clone(),
            samples,
            data,
            rngs,
            next_period: 0,
            z: vec![0.0; s],
            period: vec![0.0; s],
        }
    }

    /// Materialises samples `samples` over `periods` periods.
    pub fn generate(&self, samples: Range<usize>, periods: usize) -> Scenario {
        Scenario {
            split: self.split,
            statics: self.statics(samples.clone()),
            initial: self.initial_state(samples.clone()),
            history: self.history(samples.clone()),
            demand: self.demand_stream(samples).next_chunk(periods),
            ignore_periods: self.ignore_periods.min(periods.saturating_sub(1)),
        }
    }
}

/// Fills rows `first..first + means.len()` of `pipelines`: every slot `U(range)·mean` of its
/// row, row by row and slot by slot from `rng`.
fn fill_uniform_mean(
    pipelines: &mut Array2<f32>,
    first: usize,
    means: &[f64],
    [low, high]: [f64; 2],
    rng: &mut Pcg64,
) {
    for (i, mean) in means.iter().enumerate() {
        for k in 0..pipelines.ncols() {
            let u = low + (high - low) * rng.random::<f64>();
            pipelines[[first + i, k]] = (u * mean) as f32;
        }
    }
}

/// The mean demand each warehouse and echelon serves.
struct UpstreamMeans {
    warehouse: Vec<f64>,
    echelon: Vec<f64>,
}

/// A warehouse serves the means of the stores it ships to (a store shipped to by several
/// warehouses split evenly among them); an echelon serves every store.
fn upstream_means(inst: &Instance) -> UpstreamMeans {
    let sources = |j: usize| {
        (0..inst.n_warehouses)
            .filter(|&wh| inst.adjacency[wh][j])
            .count()
            .max(1) as f64
    };
    let warehouse = (0..inst.n_warehouses)
        .map(|wh| {
            (0..inst.n_stores)
                .filter(|&j| inst.adjacency[wh][j])
                .map(|j| inst.mean[j] / sources(j))
                .sum()
        })
        .collect();
    let total: f64 = inst.mean.iter().sum();
    UpstreamMeans {
        warehouse,
        echelon: vec![total; inst.n_echelons],
    }
}

// ---------------------------------------------------------------------------------------------
// Materialised scenario
// ---------------------------------------------------------------------------------------------

/// A requested sample does not exist.
#[derive(Debug, thiserror::Error)]
#[error("sample index {index} is out of range: the scenario has {n_samples} samples")]
pub struct SampleOutOfRange {
    /// The offending index.
    pub index: usize,
    /// Samples in the scenario.
    pub n_samples: usize,
}

/// A materialised set of samples: statics, initial state and the whole demand trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The split it was drawn from.
    pub split: Split,
    /// Per-sample statics (`N` samples).
    pub statics: Statics,
    /// Initial state.
    pub initial: State,
    /// Demand, `(N·S, T)`. A [`Scenario::batch`] stores it period-major (column-major memory
    /// order): a rollout reads one period's column at a time, contiguous that way.
    pub demand: Array2<f32>,
    /// Warm-up periods excluded from the reported cost.
    pub ignore_periods: usize,
    /// Demand observed before period 0, `(N·S, H)`, column `k` the demand of period `k − H`
    /// (data demand's past periods; `H = 0` otherwise). Policies see it as past demands.
    pub history: Array2<f32>,
}

impl Scenario {
    /// Materialises a whole split (`n_samples × periods` of the setting).
    pub fn generate(setting: &Setting, split: Split) -> Result<Scenario, ConfigError> {
        let generator = ScenarioGenerator::new(setting, split)?;
        Ok(generator.generate(0..generator.n_samples(), generator.periods()))
    }

    /// Number of samples `N`.
    pub fn n_samples(&self) -> usize {
        self.statics.n_samples
    }

    /// Number of periods `T`.
    pub fn periods(&self) -> usize {
        self.demand.ncols()
    }

    /// The given samples (in the given order) as a smaller scenario — a training batch. Its
    /// demand is stored period-major: the same values, in column-major memory order, so that the
    /// period-by-period rollout copies each period's demand as one contiguous run instead of
    /// reading one float from every row (1.7 % of a one-store epoch).
    pub fn batch(&self, samples: &[usize]) -> Result<Scenario, SampleOutOfRange> {
        let n_samples = self.n_samples();
        if let Some(&index) = samples.iter().find(|&&i| i >= n_samples) {
            return Err(SampleOutOfRange { index, n_samples });
        }
        Ok(Scenario {
            split: self.split,
            statics: self.statics.gather(samples),
            initial: self.initial.gather(samples, &self.statics),
            demand: gather_rows_period_major(&self.demand, samples, self.statics.n_stores),
            ignore_periods: self.ignore_periods,
            history: gather_rows(&self.history, samples, self.statics.n_stores),
        })
    }
}

/// Rows `b·per_sample .. (b+1)·per_sample` of `array` for every `b` in `samples`, like
/// [`crate::state::gather_rows`], into a column-major array. Blocks of 64 gathered rows at a time:
/// their source rows stay in L1 while each period's 64 values are written as one contiguous run
/// of the output.
fn gather_rows_period_major(
    array: &Array2<f32>,
    samples: &[usize],
    per_sample: usize,
) -> Array2<f32> {
    const BLOCK: usize = 64;
    let cols = array.ncols();
    let source_rows: Vec<usize> = samples
        .iter()
        .flat_map(|&b| (b * per_sample)..(b * per_sample + per_sample))
        .collect();
    let n = source_rows.len();
    let mut data = vec![0.0f32; n * cols];
    match array.as_slice() {
        Some(flat) if cols > 0 => {
            // each block's rows are first copied whole (a row is a contiguous run, which the
            // hardware prefetches; read column by column straight from the source, every period
            // waited on its own cache miss), then transposed from that staging copy in L1
            let mut staged = Vec::with_capacity(BLOCK * cols);
            for (block, rows) in source_rows.chunks(BLOCK).enumerate() {
                staged.clear();
                for &r in rows {
                    staged.extend_from_slice(&flat[r * cols..(r + 1) * cols]);
                }
                let i0 = block * BLOCK;
                for t in 0..cols {
                    let out = &mut data[t * n + i0..t * n + i0 + rows.len()];
                    for (o, row) in out.iter_mut().zip(staged.chunks_exact(cols)) {
                        *o = row[t];
                    }
                }
            }
        }
        _ => {
            for t in 0..cols {
                let column = array.column(t);
                let out = &mut data[t * n..(t + 1) * n];
                for (o, &r) in out.iter_mut().zip(&source_rows) {
                    *o = column[r];
                }
            }
        }
    }
    Array2::from_shape_vec((n, cols).f(), data).expect("gathered rows have the array's width")
}

#[cfg(test)]
mod poisson_tests {
    use super::*;

    fn ln_factorial(k: u64) -> f64 {
        (1..=k).map(|i| (i as f64).ln()).sum()
    }

    #[test]
    fn tabulated_poisson_has_the_right_law() {
        for mean in [0.3, 5.0, 37.5] {
            let table = PoissonTable::new(mean).unwrap();
            // exact probabilities from the inversion: P(k) = cdf[k] − cdf[k − 1]
            let pmf = |k: u64| (-mean + k as f64 * f64::ln(mean) - ln_factorial(k)).exp();
            for k in 0..table.cdf.len().min(60) as u64 {
                let lo = if k == 0 {
                    0.0
                } else {
                    table.cdf[k as usize - 1]
                };
                assert!(
                    (table.cdf[k as usize] - lo - pmf(k)).abs() < 1e-12,
                    "mean {mean}, k {k}"
                );
                // u just inside the interval maps to k
                assert_eq!(
                    table.sample(lo + 0.5 * pmf(k)),
                    k,
                    "mean {mean} len {} lo {lo} pmf {} cdf {}",
                    table.cdf.len(),
                    pmf(k),
                    table.cdf[k as usize]
                );
            }
            // the far tail maps to the last tabulated value, which is well past the mean
            assert_eq!(table.sample(1.0 - 1e-18), table.cdf.len() as u64 - 1);
            assert!(table.cdf.len() as f64 > mean + 5.0 * mean.sqrt());
        }
        assert!(PoissonTable::new(0.0).is_none());
        assert!(PoissonTable::new(f64::NAN).is_none());
    }

    #[test]
    fn guide_table_search_equals_bisection() {
        use rand::SeedableRng;
        let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
        for mean in [0.05, 0.3, 1.0, 5.0, 37.5, 900.0] {
            let table = PoissonTable::new(mean).unwrap();
            // random points, every CDF value and its neighbours, bucket edges
            let mut points: Vec<f64> = (0..20_000).map(|_| rng.random::<f64>()).collect();
            for &c in &table.cdf {
                points.extend([c, c.next_down(), c.next_up().min(1.0 - f64::EPSILON)]);
            }
            let g = table.guide.len() as f64;
            points.extend((0..table.guide.len()).map(|j| j as f64 / g));
            points.extend([0.0, 1.0 - f64::EPSILON / 2.0]);
            for u in points.into_iter().filter(|u| (0.0..1.0).contains(u)) {
                assert_eq!(
                    table.sample(u),
                    table.sample_by_bisection(u),
                    "mean {mean}, u {u}"
                );
            }
        }
    }
}

#[cfg(test)]
mod gather_tests {
    use super::gather_rows_period_major;
    use ndarray::Array2;

    #[test]
    fn period_major_gather_handles_empty_shapes() {
        // no periods, no samples, and both: empty arrays of the right shape, no panic
        let no_periods = Array2::<f32>::zeros((6, 0));
        assert_eq!(
            gather_rows_period_major(&no_periods, &[2, 0], 2).dim(),
            (4, 0)
        );
        let some = Array2::from_shape_fn((6, 3), |(i, j)| (10 * i + j) as f32);
        assert_eq!(gather_rows_period_major(&some, &[], 2).dim(), (0, 3));
        let got = gather_rows_period_major(&some, &[2, 0], 2);
        assert_eq!(got.row(0).to_vec(), vec![40.0, 41.0, 42.0]);
        assert_eq!(got.row(3).to_vec(), vec![10.0, 11.0, 12.0]);
    }
}
