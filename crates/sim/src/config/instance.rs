//! Resolution: a validated [`Setting`] turned into an [`Instance`], the concrete numbers the
//! simulator is built from — the adjacency, per-store costs and lead times (constants, lists,
//! per-edge matrices, the reference instance, or per-store draws from the keyed parameter streams),
//! demand means and deviations, warehouse and echelon parameters and pipeline lengths. Everything
//! random per sample stays a range here and is drawn by [`crate::scenario`].

use std::sync::Arc;

use rand::RngExt;
use rand_pcg::Pcg64;

use super::error::{ConfigError, invalid};
use super::limits::*;
use super::reference::{ReferenceStores, reference_stores};
use super::schema::{
    DemandDistribution, InitialInventory, Objective, ParamSource, PipelineLengths, SampleLevel,
    Setting, Split, UnmetDemand,
};
use super::validate::{check_finite_positive, lead_time_value, pipeline_length};
use crate::calendar::Calendar;
use crate::demand_data::{DataStores, DemandData, NegativeDemand};
use crate::rng::parameter_rng;

/// A per-store quantity after resolution.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreValues {
    /// One value per store, shared by all samples.
    PerStore(Vec<f64>),
    /// Drawn per sample from `U[low, high)`, shared by the sample's stores; `stream` selects the
    /// per-sample random stream.
    PerSample {
        /// Lower end.
        low: f64,
        /// Upper end.
        high: f64,
        /// Seed mixed into the per-sample stream (`None` = the split seed).
        seed: Option<u64>,
    },
}

/// Store lead times after resolution.
#[derive(Clone, Debug, PartialEq)]
pub enum StoreLeadTimes {
    /// `S × W'` matrix, `0` on non-edges, shared by all samples.
    PerEdge(Vec<Vec<u32>>),
    /// One lead time per sample, uniform on `{low, …, high−1}`, on every edge.
    PerSample {
        /// Smallest lead time.
        low: u32,
        /// One past the largest lead time.
        high: u32,
        /// Seed mixed into the per-sample stream (`None` = the split seed).
        seed: Option<u64>,
    },
}

/// A setting resolved into concrete numbers (everything but the per-sample random draws).
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// Stores `S`.
    pub n_stores: usize,
    /// Warehouses `W`.
    pub n_warehouses: usize,
    /// Extra echelons `E`.
    pub n_echelons: usize,
    /// `W × S`: warehouse `w` ships to store `s`.
    pub adjacency: Vec<Vec<bool>>,
    /// Store holding costs.
    pub holding_cost: StoreValues,
    /// Store underage costs (margins in profit mode).
    pub underage_cost: StoreValues,
    /// Store lead times.
    pub lead_time: StoreLeadTimes,
    /// Demand distribution.
    pub distribution: DemandDistribution,
    /// Demand mean per store.
    pub mean: Vec<f64>,
    /// Demand standard deviation per store (`√mean` for Poisson).
    pub std: Vec<f64>,
    /// Pairwise demand correlation (normal, `S > 1`).
    pub correlation: f64,
    /// Clip normal demand at 0.
    pub clip: bool,
    /// The series of data demand (`None` for Poisson and normal demand), as the network sees
    /// them (after `demand.stores`).
    pub data: Option<Arc<DemandData>>,
    /// The calendar features of data demand (`demand.calendar`), if any.
    pub calendar: Option<Arc<Calendar>>,
    /// Warehouse holding costs, length `W`.
    pub warehouse_holding_cost: Vec<f64>,
    /// Warehouse lead times, length `W`.
    pub warehouse_lead_time: Vec<u32>,
    /// Warehouse edge costs per unit ordered, length `W`.
    pub warehouse_edge_cost: Vec<f64>,
    /// Echelon holding costs, length `E`.
    pub echelon_holding_cost: Vec<f64>,
    /// Echelon lead times, length `E`.
    pub echelon_lead_time: Vec<u32>,
    /// Pipeline lengths.
    pub pipeline: PipelineLengths,
    /// Lost sales or backlog.
    pub unmet_demand: UnmetDemand,
    /// Cost or profit.
    pub objective: Objective,
    /// Initial inventory rule.
    pub initial_inventory: InitialInventory,
}

impl Instance {
    /// `W' = max(W, 1)`.
    pub fn n_sources(&self) -> usize {
        self.n_warehouses.max(1)
    }
}

/// Data demand resolved: per-store mean and deviation, the series and the calendar.
type DataDemand = (Vec<f64>, Vec<f64>, Arc<DemandData>, Option<Arc<Calendar>>);

/// Warehouse holding costs, lead times and edge costs, one each per warehouse.
type WarehouseValues = (Vec<f64>, Vec<u32>, Vec<f64>);

impl Setting {
    /// Pipeline lengths: explicit `pipeline_length`s, else store `max(inventory_periods, max
    /// store lead time, 2)`, warehouse `max(2, max warehouse lead time)`, echelon `max(2, max
    /// echelon lead time)` (0 when there is no such node).
    pub fn pipeline_lengths(&self) -> Result<PipelineLengths, ConfigError> {
        Ok(self.instance()?.pipeline)
    }

    /// Warehouse upper bound `U = upper_bound_mult × Σ_s mean_s`.
    pub fn warehouse_upper_bound(&self) -> Result<f64, ConfigError> {
        let instance = self.instance()?;
        Ok(self.upper_bound_mult * instance.mean.iter().sum::<f64>())
    }

    /// Validates the setting and resolves it into concrete per-store parameters. The checks run
    /// in a fixed order (sizes, network, stores, demand, warehouses, echelons, initial inventory,
    /// pipelines); the first failing one is reported.
    pub fn instance(&self) -> Result<Instance, ConfigError> {
        let s = self.network.n_stores;
        let w = self.network.n_warehouses;
        self.check_top_level()?;
        let adjacency = self.resolve_adjacency()?;

        // Stores.
        let holding_cost = self.resolve_store_values(
            "stores.holding_cost",
            &self.stores.holding_cost,
            |r| &r.holding_cost,
            true,
        )?;
        let underage_cost = self.resolve_store_values(
            "stores.underage_cost",
            &self.stores.underage_cost,
            |r| &r.underage_cost,
            true,
        )?;
        let lead_time = self.resolve_store_lead_times(&adjacency)?;
        let max_store_lead_time = match &lead_time {
            StoreLeadTimes::PerEdge(m) => m.iter().flatten().copied().max().unwrap_or(1),
            StoreLeadTimes::PerSample { high, .. } => high - 1,
        };

        // Demand.
        let (mean, std, data, calendar) = match self.demand.distribution {
            DemandDistribution::Data => {
                let (mean, std, data, calendar) = self.resolve_data_demand()?;
                (mean, std, Some(data), calendar)
            }
            _ => {
                self.check_no_data_keys()?;
                let (mean, std) = self.resolve_demand()?;
                (mean, std, None, None)
            }
        };

        // Warehouses and echelons.
        let (warehouse_holding_cost, warehouse_lead_time, warehouse_edge_cost) =
            self.resolve_warehouses(w)?;
        let (echelon_holding_cost, echelon_lead_time) = self.resolve_echelons(w)?;
        let e = echelon_lead_time.len();

        // Initial inventory and pipelines.
        self.check_initial_inventory()?;
        let pipeline = self.resolve_pipelines(
            max_store_lead_time,
            &warehouse_lead_time,
            &echelon_lead_time,
        )?;

        Ok(Instance {
            n_stores: s,
            n_warehouses: w,
            n_echelons: e,
            adjacency,
            holding_cost,
            underage_cost,
            lead_time,
            distribution: self.demand.distribution,
            mean,
            std,
            correlation: self.demand.correlation,
            clip: self.demand.clip,
            data,
            calendar,
            warehouse_holding_cost,
            warehouse_lead_time,
            warehouse_edge_cost,
            echelon_holding_cost,
            echelon_lead_time,
            pipeline,
            unmet_demand: self.unmet_demand,
            objective: self.objective,
            initial_inventory: self.initial_inventory.clone(),
        })
    }

    /// Warehouse holding costs, lead times and edge costs, one each per warehouse (`W = w`).
    fn resolve_warehouses(&self, w: usize) -> Result<WarehouseValues, ConfigError> {
        Ok(match (&self.warehouses, w) {
            (None, 0) => (Vec::new(), Vec::new(), Vec::new()),
            (Some(_), 0) => {
                return Err(invalid(
                    "warehouses",
                    "is given but network.n_warehouses = 0; remove the table or set \
                     network.n_warehouses ≥ 1",
                ));
            }
            (None, _) => {
                return Err(invalid(
                    "warehouses",
                    format!(
                        "is required when network.n_warehouses = {w} (keys: holding_cost, \
                         lead_time, edge_cost, pipeline_length)"
                    ),
                ));
            }
            (Some(params), _) => {
                let h = params
                    .holding_cost
                    .expand(w)
                    .map_err(|m| invalid("warehouses.holding_cost", m))?;
                for &x in &h {
                    check_finite_positive("warehouses.holding_cost", x, true)?;
                }
                let lt = params
                    .lead_time
                    .expand(w)
                    .map_err(|m| invalid("warehouses.lead_time", m))?
                    .into_iter()
                    .map(|x| lead_time_value("warehouses.lead_time", x))
                    .collect::<Result<Vec<u32>, _>>()?;
                let edge = match &params.edge_cost {
                    None => vec![0.0; w],
                    Some(values) => values
                        .expand(w)
                        .map_err(|m| invalid("warehouses.edge_cost", m))?,
                };
                for &x in &edge {
                    check_finite_positive("warehouses.edge_cost", x, true)?;
                }
                (h, lt, edge)
            }
        })
    }

    /// Echelon holding costs and lead times, one each per extra echelon (`W = w` warehouses).
    fn resolve_echelons(&self, w: usize) -> Result<(Vec<f64>, Vec<u32>), ConfigError> {
        Ok(match &self.echelons {
            None => (Vec::new(), Vec::new()),
            Some(params) => {
                if params.lead_time.is_empty() {
                    return Err(invalid(
                        "echelons.lead_time",
                        "is empty; give one lead time per extra echelon or remove the table",
                    ));
                }
                if params.holding_cost.len() != params.lead_time.len() {
                    return Err(invalid(
                        "echelons.holding_cost",
                        format!(
                            "has {} entries but echelons.lead_time has {}; give one per echelon",
                            params.holding_cost.len(),
                            params.lead_time.len()
                        ),
                    ));
                }
                if w == 0 {
                    return Err(invalid(
                        "echelons",
                        "extra echelons feed a warehouse; set network.n_warehouses ≥ 1",
                    ));
                }
                for &x in &params.holding_cost {
                    check_finite_positive("echelons.holding_cost", x, true)?;
                }
                let lt = params
                    .lead_time
                    .iter()
                    .map(|&x| lead_time_value("echelons.lead_time", x))
                    .collect::<Result<Vec<u32>, _>>()?;
                (params.holding_cost.clone(), lt)
            }
        })
    }

    /// Store, warehouse and echelon pipeline lengths: explicit ones checked, else derived.
    fn resolve_pipelines(
        &self,
        max_store_lead_time: u32,
        warehouse_lead_time: &[u32],
        echelon_lead_time: &[u32],
    ) -> Result<PipelineLengths, ConfigError> {
        let w = self.network.n_warehouses;
        let init = &self.initial_inventory;
        let store_pipeline = pipeline_length(
            "stores.pipeline_length",
            self.stores.pipeline_length,
            init.inventory_periods
                .max(max_store_lead_time as usize)
                .max(2),
            max_store_lead_time,
        )?;
        let warehouse_pipeline = match &self.warehouses {
            Some(p) if w > 0 => {
                let max_lt = warehouse_lead_time.iter().copied().max().unwrap_or(1);
                pipeline_length(
                    "warehouses.pipeline_length",
                    p.pipeline_length,
                    (max_lt as usize).max(2),
                    max_lt,
                )?
            }
            _ => 0,
        };
        let echelon_pipeline = match &self.echelons {
            Some(p) => {
                let max_lt = echelon_lead_time.iter().copied().max().unwrap_or(1);
                pipeline_length(
                    "echelons.pipeline_length",
                    p.pipeline_length,
                    (max_lt as usize).max(2),
                    max_lt,
                )?
            }
            None => 0,
        };
        Ok(PipelineLengths {
            store: store_pipeline,
            warehouse: warehouse_pipeline,
            echelon: echelon_pipeline,
        })
    }

    /// `W × S` adjacency as booleans, validated.
    fn resolve_adjacency(&self) -> Result<Vec<Vec<bool>>, ConfigError> {
        let s = self.network.n_stores;
        let w = self.network.n_warehouses;
        let field = "network.adjacency";
        let Some(matrix) = &self.network.adjacency else {
            return match w {
                0 => Ok(Vec::new()),
                1 => Ok(vec![vec![true; s]]),
                _ => Err(invalid(
                    field,
                    format!(
                        "is required when network.n_warehouses = {w} > 1: a {w} × {s} matrix of 0/1"
                    ),
                )),
            };
        };
        if w == 0 {
            return Err(invalid(
                field,
                "is given but network.n_warehouses = 0; remove it",
            ));
        }
        if matrix.len() != w || matrix.iter().any(|row| row.len() != s) {
            let shape: Vec<usize> = matrix.iter().map(Vec::len).collect();
            return Err(invalid(
                field,
                format!(
                    "must be W × S = {w} × {s} (one row per warehouse, one column per store); \
                     got {} rows with lengths {shape:?}",
                    matrix.len()
                ),
            ));
        }
        let mut out = vec![vec![false; s]; w];
        for (wi, row) in matrix.iter().enumerate() {
            for (si, &x) in row.iter().enumerate() {
                match x {
                    0 => {}
                    1 => out[wi][si] = true,
                    other => {
                        return Err(invalid(
                            format!("{field}[{wi}][{si}]"),
                            format!("is {other}; allowed: 0 or 1"),
                        ));
                    }
                }
            }
        }
        for si in 0..s {
            if !out.iter().any(|row| row[si]) {
                return Err(invalid(
                    field,
                    format!("store {si} has no warehouse; every store needs at least one source"),
                ));
            }
        }
        Ok(out)
    }

    /// Resolves a per-store cost or demand quantity.
    fn resolve_store_values(
        &self,
        field: &str,
        source: &ParamSource,
        reference: fn(&ReferenceStores) -> &Vec<f64>,
        allow_per_sample: bool,
    ) -> Result<StoreValues, ConfigError> {
        let s = self.network.n_stores;
        let values = match source {
            ParamSource::Constant(v) => vec![*v; s],
            ParamSource::PerStore(values) => {
                if values.len() != s {
                    return Err(invalid(
                        field,
                        format!(
                            "the list has {} entries but network.n_stores = {s}; give one per store",
                            values.len()
                        ),
                    ));
                }
                values.clone()
            }
            ParamSource::PerEdge(_) => {
                return Err(invalid(
                    field,
                    "a per-edge matrix is only allowed for stores.lead_time; allowed here: a \
                     number, a list with one number per store, \"reference\" or a sampled range",
                ));
            }
            ParamSource::Reference => reference_prefix(field, s, reference)?,
            ParamSource::Sampled(range) => {
                let [low, high] = range.range;
                if !(low.is_finite() && high.is_finite() && 0.0 <= low && low <= high) {
                    return Err(invalid(
                        format!("{field}.range"),
                        format!("is [{low}, {high}]; allowed: [low, high] with 0 ≤ low ≤ high"),
                    ));
                }
                match range.sample {
                    SampleLevel::PerSample if !allow_per_sample => {
                        return Err(invalid(
                            format!("{field}.sample"),
                            "\"per_sample\" is not supported for demand parameters; allowed: \
                             \"per_store\"",
                        ));
                    }
                    SampleLevel::PerSample => {
                        return Ok(StoreValues::PerSample {
                            low,
                            high,
                            seed: range.seed,
                        });
                    }
                    SampleLevel::PerStore => {
                        let mut rng =
                            parameter_rng(range.seed.unwrap_or(self.seeds.parameters), field);
                        (0..s).map(|_| uniform(&mut rng, low, high)).collect()
                    }
                }
            }
        };
        for &x in &values {
            check_finite_positive(field, x, true)?;
        }
        Ok(StoreValues::PerStore(values))
    }

    /// Resolves store lead times into a per-edge matrix or a per-sample range.
    fn resolve_store_lead_times(
        &self,
        adjacency: &[Vec<bool>],
    ) -> Result<StoreLeadTimes, ConfigError> {
        let field = "stores.lead_time";
        let s = self.network.n_stores;
        let w = self.network.n_warehouses;
        let sources = w.max(1);
        let is_edge = |si: usize, wi: usize| w == 0 || adjacency[wi][si];
        let per_store: Vec<u32> = match &self.stores.lead_time {
            ParamSource::PerEdge(rows) => {
                if rows.len() != s || rows.iter().any(|r| r.len() != sources) {
                    let shape: Vec<usize> = rows.iter().map(Vec::len).collect();
                    return Err(invalid(
                        field,
                        format!(
                            "a per-edge matrix must be S × max(W, 1) = {s} × {sources} (one row \
                             per store, one column per source); got {} rows with lengths {shape:?}",
                            rows.len()
                        ),
                    ));
                }
                let mut matrix = vec![vec![0u32; sources]; s];
                for (si, row) in rows.iter().enumerate() {
                    for (wi, &x) in row.iter().enumerate() {
                        let cell = format!("{field}[{si}][{wi}]");
                        if is_edge(si, wi) {
                            matrix[si][wi] = lead_time_value(&cell, x).map_err(|_| {
                                invalid(
                                    &cell,
                                    format!(
                                        "is {x} but warehouse {wi} ships to store {si}; allowed: \
                                         an integer ≥ 1 on every edge"
                                    ),
                                )
                            })?;
                        } else if x != 0.0 {
                            return Err(invalid(
                                &cell,
                                format!(
                                    "is {x} but warehouse {wi} does not ship to store {si} \
                                     (network.adjacency); allowed: 0 on non-edges"
                                ),
                            ));
                        }
                    }
                }
                return Ok(StoreLeadTimes::PerEdge(matrix));
            }
            ParamSource::Constant(x) => vec![lead_time_value(field, *x)?; s],
            ParamSource::PerStore(values) => {
                if values.len() != s {
                    return Err(invalid(
                        field,
                        format!(
                            "the list has {} entries but network.n_stores = {s}; give one per store",
                            values.len()
                        ),
                    ));
                }
                values
                    .iter()
                    .map(|&x| lead_time_value(field, x))
                    .collect::<Result<_, _>>()?
            }
            ParamSource::Reference => reference_prefix(field, s, |r| &r.lead_time)?
                .into_iter()
                .map(|x| lead_time_value(field, x))
                .collect::<Result<_, _>>()?,
            ParamSource::Sampled(range) => {
                let [low, high] = range.range;
                let ok = low.fract() == 0.0 && high.fract() == 0.0 && low >= 1.0 && high > low;
                if !ok || high > (MAX_LEAD_TIME + 1) as f64 {
                    return Err(invalid(
                        format!("{field}.range"),
                        format!(
                            "is [{low}, {high}]; allowed: integers [low, high] with 1 ≤ low < \
                             high ≤ {} (lead times are drawn from low, …, high − 1)",
                            MAX_LEAD_TIME + 1
                        ),
                    ));
                }
                let (low, high) = (low as u32, high as u32);
                match range.sample {
                    SampleLevel::PerSample => {
                        return Ok(StoreLeadTimes::PerSample {
                            low,
                            high,
                            seed: range.seed,
                        });
                    }
                    SampleLevel::PerStore => {
                        let mut rng =
                            parameter_rng(range.seed.unwrap_or(self.seeds.parameters), field);
                        (0..s).map(|_| rng.random_range(low..high)).collect()
                    }
                }
            }
        };
        let matrix = (0..s)
            .map(|si| {
                (0..sources)
                    .map(|wi| if is_edge(si, wi) { per_store[si] } else { 0 })
                    .collect()
            })
            .collect();
        Ok(StoreLeadTimes::PerEdge(matrix))
    }

    /// Per-store demand means and standard deviations.
    fn resolve_demand(&self) -> Result<(Vec<f64>, Vec<f64>), ConfigError> {
        let s = self.network.n_stores;
        let demand = &self.demand;
        let Some(mean) = &demand.mean else {
            return Err(invalid(
                "demand.mean",
                "is required for Poisson and normal demand",
            ));
        };
        let StoreValues::PerStore(mean) =
            self.resolve_store_values("demand.mean", mean, |r| &r.mean, false)?
        else {
            unreachable!("per-sample demand parameters are rejected above")
        };
        let c = demand.correlation;
        match demand.distribution {
            DemandDistribution::Poisson => {
                if let Some(i) = mean.iter().position(|&m| m <= 0.0) {
                    return Err(invalid(
                        "demand.mean",
                        format!("store {i} has mean {}; allowed for Poisson: > 0", mean[i]),
                    ));
                }
                if c != 0.0 {
                    return Err(invalid(
                        "demand.correlation",
                        format!("is {c}; allowed for Poisson demand: 0 (independent stores)"),
                    ));
                }
                let std = mean.iter().map(|m| m.sqrt()).collect();
                Ok((mean, std))
            }
            DemandDistribution::Normal => {
                let std = match (&demand.std, &demand.coef_of_var) {
                    (Some(std), None) => {
                        let StoreValues::PerStore(std) =
                            self.resolve_store_values("demand.std", std, |r| &r.std, false)?
                        else {
                            unreachable!("per-sample demand parameters are rejected above")
                        };
                        std
                    }
                    (None, Some(cv)) => {
                        let StoreValues::PerStore(cv) =
                            self.resolve_store_values("demand.coef_of_var", cv, |_| &EMPTY, false)?
                        else {
                            unreachable!("per-sample demand parameters are rejected above")
                        };
                        mean.iter().zip(&cv).map(|(m, c)| m * c).collect()
                    }
                    (None, None) => {
                        return Err(invalid(
                            "demand.std",
                            "is required for normal demand (or give demand.coef_of_var)",
                        ));
                    }
                    (Some(_), Some(_)) => {
                        return Err(invalid(
                            "demand.coef_of_var",
                            "give either demand.std or demand.coef_of_var, not both",
                        ));
                    }
                };
                if let Some(i) = std.iter().position(|&x| x <= 0.0) {
                    return Err(invalid(
                        "demand.std",
                        format!("store {i} has std {}; allowed: > 0", std[i]),
                    ));
                }
                if c != 0.0 && s > MAX_CORRELATED_STORES {
                    return Err(invalid(
                        "demand.correlation",
                        format!(
                            "is {c} with network.n_stores = {s}; correlated demand is drawn \
                             through an S × S Cholesky factor ({:.1} GB to compute here); \
                             allowed: correlation = 0, or n_stores ≤ {MAX_CORRELATED_STORES}",
                            16.0 * (s as f64).powi(2) / 1e9
                        ),
                    ));
                }
                let lower = if s > 1 { -1.0 / (s as f64 - 1.0) } else { -1.0 };
                let ok = if s > 1 {
                    c > lower && c < 1.0
                } else {
                    (-1.0..=1.0).contains(&c)
                };
                if !ok {
                    return Err(invalid(
                        "demand.correlation",
                        format!(
                            "is {c}; allowed with {s} stores: {lower:.4} < correlation < 1 (the \
                             covariance must be positive definite)"
                        ),
                    ));
                }
                Ok((mean, std))
            }
            DemandDistribution::Data => {
                unreachable!("data demand is resolved by resolve_data_demand")
            }
        }
    }

    /// Poisson and normal demand: none of the keys of data demand.
    fn check_no_data_keys(&self) -> Result<(), ConfigError> {
        let d = &self.demand;
        let only_data = |field: &str| {
            invalid(
                field,
                "is only used with demand.distribution = \"data\"; remove it",
            )
        };
        if d.file.is_some() {
            return Err(only_data("demand.file"));
        }
        if d.format.is_some() {
            return Err(only_data("demand.format"));
        }
        if d.past_periods != 0 {
            return Err(only_data("demand.past_periods"));
        }
        if d.negative != NegativeDemand::default() {
            return Err(only_data("demand.negative"));
        }
        if d.stores != DataStores::default() {
            return Err(only_data("demand.stores"));
        }
        if d.calendar.is_some() {
            return Err(only_data("demand.calendar"));
        }
        for split in Split::ALL {
            if self.split(split).periods_range.is_some() {
                return Err(only_data(&format!("splits.{split}.periods_range")));
            }
        }
        Ok(())
    }

    /// Data demand: reads the file (once per process, see [`DemandData::load`]), checks it
    /// against the network and every split's `periods_range`, and returns the per-store mean and
    /// standard deviation of the training split's cells (its samples, all periods of its range).
    fn resolve_data_demand(&self) -> Result<DataDemand, ConfigError> {
        let d = &self.demand;
        let not_with_data = |field: &str| {
            invalid(
                field,
                "is not used with data demand (the data give the demand); remove it",
            )
        };
        if d.mean.is_some() {
            return Err(not_with_data("demand.mean"));
        }
        if d.std.is_some() {
            return Err(not_with_data("demand.std"));
        }
        if d.coef_of_var.is_some() {
            return Err(not_with_data("demand.coef_of_var"));
        }
        if d.correlation != 0.0 {
            return Err(not_with_data("demand.correlation"));
        }
        let Some(file) = &d.file else {
            return Err(invalid(
                "demand.file",
                "is required for demand.distribution = \"data\": the path of a CSV file",
            ));
        };
        let Some(format) = d.format else {
            return Err(invalid(
                "demand.format",
                "is required with demand.file; allowed: \"long\" (sample,store,period,demand) \
                 or \"wide\" (sample,store, then one column per period)",
            ));
        };
        let s = self.network.n_stores;
        let file_data = DemandData::load(file, format, d.negative)
            .map_err(|e| invalid("demand.file", e.to_string()))?;
        let Some(data) = DemandData::load_selected(file, format, d.negative, d.stores, s)
            .map_err(|e| invalid("demand.file", e.to_string()))?
        else {
            let in_file = file_data.n_stores();
            return Err(invalid(
                "network.n_stores",
                match d.stores {
                    DataStores::All => format!(
                        "is {s} but demand file `{}` has {in_file} stores; they must agree (or \
                         set demand.stores = \"first\" to use the file's first n_stores stores)",
                        file.display()
                    ),
                    DataStores::First => format!(
                        "is {s} but demand file `{}` has {in_file} stores; allowed with \
                         demand.stores = \"first\": 1 … {in_file}",
                        file.display()
                    ),
                    DataStores::AsSamples => format!(
                        "is {s}; allowed with demand.stores = \"as_samples\": 1 (every series \
                         of `{}` is a one-store sample)",
                        file.display()
                    ),
                },
            ));
        };
        let past = d.past_periods;
        for split in Split::ALL {
            let sizes = self.split(split);
            let field = format!("splits.{split}.periods_range");
            let Some([start, end]) = sizes.periods_range else {
                return Err(invalid(
                    field,
                    format!(
                        "is required with data demand: [start, end) of the file's periods \
                         (the file has {}: 0 … {})",
                        data.n_periods(),
                        data.n_periods().saturating_sub(1)
                    ),
                ));
            };
            if start >= end || end > data.n_periods() {
                return Err(invalid(
                    field,
                    format!(
                        "is [{start}, {end}]; allowed: start < end ≤ {} (the file's periods)",
                        data.n_periods()
                    ),
                ));
            }
            if end - start != past + sizes.periods {
                return Err(invalid(
                    field,
                    format!(
                        "is [{start}, {end}] ({} periods) but demand.past_periods = {past} and \
                         splits.{split}.periods = {} need end − start = {}; e.g. [{start}, {}]",
                        end - start,
                        sizes.periods,
                        past + sizes.periods,
                        start + past + sizes.periods
                    ),
                ));
            }
            if sizes.n_samples > data.n_samples() {
                return Err(invalid(
                    format!("splits.{split}.n_samples"),
                    format!(
                        "is {} but demand file `{}` has {} samples; allowed: 1 … {}",
                        sizes.n_samples,
                        file.display(),
                        data.n_samples(),
                        data.n_samples()
                    ),
                ));
            }
        }
        let calendar = self.resolve_calendar()?;
        let train = &self.splits.train;
        let [start, end] = train.periods_range.unwrap_or_default();
        let (mean, std) = data.store_moments(0..train.n_samples, start..end);
        Ok((mean, std, data, calendar))
    }

    /// The calendar of data demand, if any: its columns named once each, its file read, and a
    /// row for every period of every split's `periods_range` (checked after the ranges).
    fn resolve_calendar(&self) -> Result<Option<Arc<Calendar>>, ConfigError> {
        let Some(config) = &self.demand.calendar else {
            return Ok(None);
        };
        let columns = &config.columns;
        if columns.is_empty() {
            return Err(invalid(
                "demand.calendar.columns",
                "is empty; name at least one column of the calendar file, e.g. \
                 [\"days_from_christmas\"]",
            ));
        }
        if columns.len() > MAX_CALENDAR_COLUMNS {
            return Err(invalid(
                "demand.calendar.columns",
                format!(
                    "has {} columns; allowed: 1 … {MAX_CALENDAR_COLUMNS}",
                    columns.len()
                ),
            ));
        }
        for (i, name) in columns.iter().enumerate() {
            if name == "period" || columns[..i].contains(name) {
                return Err(invalid(
                    "demand.calendar.columns",
                    format!(
                        "names `{name}` {}; allowed: feature columns other than `period`, each once",
                        if name == "period" {
                            "(the period index)"
                        } else {
                            "twice"
                        }
                    ),
                ));
            }
        }
        let calendar = Calendar::load(&config.file, columns)
            .map_err(|e| invalid("demand.calendar.file", e.to_string()))?;
        for split in Split::ALL {
            let [start, end] = self.split(split).periods_range.unwrap_or_default();
            if let Some(p) = calendar.first_missing(start..end) {
                return Err(invalid(
                    "demand.calendar.file",
                    format!(
                        "calendar file `{}` has no row for period {p}, which \
                         splits.{split}.periods_range [{start}, {end}) reads; the calendar must \
                         have a row for every period of every split's range",
                        config.file.display()
                    ),
                ));
            }
        }
        Ok(Some(calendar))
    }
}

static EMPTY: Vec<f64> = Vec::new();

/// The first `s` reference values of a quantity, or an error if there are fewer.
fn reference_prefix(
    field: &str,
    s: usize,
    quantity: fn(&ReferenceStores) -> &Vec<f64>,
) -> Result<Vec<f64>, ConfigError> {
    let values = quantity(reference_stores());
    if values.is_empty() {
        return Err(invalid(
            field,
            "\"reference\" is not available for this quantity; allowed: a number, a list or a \
             sampled range",
        ));
    }
    if s > values.len() {
        return Err(invalid(
            field,
            format!(
                "\"reference\" has {} stores but network.n_stores = {s}; allowed: n_stores ≤ {}",
                values.len(),
                values.len()
            ),
        ));
    }
    Ok(values[..s].to_vec())
}

/// `U[low, high)`.
fn uniform(rng: &mut Pcg64, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.random::<f64>()
}
