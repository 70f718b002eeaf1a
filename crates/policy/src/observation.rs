//! What a policy sees at the start of a period, on the tape, and the network shape it is built for.
//!
//! The same observation type serves training (a recording tape: gradients flow back through the
//! pipelines into earlier periods) and evaluation (a no-grad tape reset every period).

use hdpo_autodiff::{Tape, Var};
use hdpo_sim::config::{Objective, Setting, StaticFeature, UnmetDemand};
use hdpo_sim::fused::TapeState;
use hdpo_sim::state::Statics;
use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

/// The observation of a batch at the start of period `t`, on the tape (what a [`crate::Policy`]
/// acts on; the tape-free evaluator's view of a batch is `hdpo_sim::eval::EvalObservation`).
#[derive(Clone, Copy, Debug)]
pub struct TapeObservation<'a> {
    /// Costs, lead times, demand statistics and topology of the batch.
    pub statics: &'a Statics,
    /// Pipelines on the tape.
    pub state: TapeState,
    /// Period index `t`.
    pub period: usize,
    /// Past demands `(B·S, P)` on the tape (oldest first), when the setting shows them.
    pub past_demands: Option<Var>,
    /// Demand of periods `t ..= t + h`, `(B·S, h + 1)` — given **only** to non-admissible oracles.
    pub future_demand: Option<ArrayView2<'a, f32>>,
}

impl TapeObservation<'_> {
    /// Number of samples `B`.
    pub fn n_samples(&self) -> usize {
        self.statics.n_samples
    }

    /// A per-store-row static as a `(B·S, 1)` constant on the tape.
    pub fn store_column(&self, tape: &mut Tape, feature: StaticFeature) -> Var {
        let s = self.statics;
        let col = match feature {
            StaticFeature::HoldingCost => s.holding_cost.view(),
            StaticFeature::UnderageCost => s.underage_cost.view(),
            StaticFeature::Mean => s.mean.view(),
            StaticFeature::Std => s.std.view(),
            StaticFeature::LeadTime => {
                let lt = s.lead_time.mapv(|v| v as f32);
                return tape.constant(lt);
            }
        };
        tape.constant_from(col.insert_axis(Axis(1)))
    }

    /// The calendar features of the current period repeated for every store, `(B, S·C)` (row
    /// `b`: store 0's `C` features, then store 1's, …), or `None` without a calendar.
    pub fn calendar_per_store(&self, tape: &mut Tape) -> Option<Var> {
        let row = self.statics.calendar_at(self.period)?;
        let (b, s, c) = (self.n_samples(), self.statics.n_stores, row.len());
        let mut out = tape.take_buffer(b, s * c);
        for mut line in out.rows_mut() {
            for (k, x) in line.iter_mut().enumerate() {
                *x = row[k % c];
            }
        }
        Some(tape.constant(out))
    }

    /// On-hand of each warehouse, `(B·W, 1)`.
    pub fn warehouse_on_hand(&self, tape: &mut Tape) -> Option<Var> {
        self.state.warehouse.map(|w| tape.column(w, 0))
    }
}

/// The mean demand each location of a batch serves, the unit in which demand-scaled policies
/// measure stock and orders: a store its own mean; a warehouse the means of the stores it ships
/// to (a store served by several warehouses split evenly between them); an extra echelon the
/// means of all stores. A non-positive or non-finite value (no demand statistics) becomes 1,
/// i.e. raw units.
#[derive(Clone, Debug, PartialEq)]
pub struct DemandScales {
    /// `(B·S)`, rows `b·S + s`.
    pub store: Vec<f32>,
    /// `(B·W)`, rows `b·W + w`.
    pub warehouse: Vec<f32>,
    /// `(B·E)`, rows `b·E + e`.
    pub echelon: Vec<f32>,
}

impl DemandScales {
    /// The scales of a batch.
    pub fn new(st: &Statics) -> DemandScales {
        let (b, s, w, e) = (st.n_samples, st.n_stores, st.n_warehouses, st.n_echelons);
        let positive = |x: f32| if x.is_finite() && x > 0.0 { x } else { 1.0 };
        let store: Vec<f32> = st.mean.iter().map(|&m| positive(m)).collect();
        let shared_by: Vec<f32> = (0..s)
            .map(|j| (0..w).filter(|&wh| st.adjacency[[wh, j]]).count().max(1) as f32)
            .collect();
        let mut warehouse = Vec::with_capacity(b * w);
        let mut echelon = Vec::with_capacity(b * e);
        for bi in 0..b {
            let means = &store[bi * s..(bi + 1) * s];
            for wh in 0..w {
                let served: f32 = (0..s)
                    .filter(|&j| st.adjacency[[wh, j]])
                    .map(|j| means[j] / shared_by[j])
                    .sum();
                warehouse.push(positive(served));
            }
            let total = positive(means.iter().sum());
            echelon.extend(std::iter::repeat_n(total, e));
        }
        DemandScales {
            store,
            warehouse,
            echelon,
        }
    }

    /// `x / scale` row by row: `x` has one row per entry of `scales`.
    pub fn divide(tape: &mut Tape, x: Var, scales: &[f32]) -> Var {
        let mut inverse = tape.take_buffer(scales.len(), 1);
        for (out, &v) in inverse.iter_mut().zip(scales) {
            *out = 1.0 / v;
        }
        let inverse = tape.constant(inverse);
        tape.mul(x, inverse)
    }
}

/// TapeObservation features a policy may read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Store pipelines (on-hand and in transit).
    StorePipeline,
    /// Warehouse pipelines.
    WarehousePipeline,
    /// Echelon pipelines.
    EchelonPipeline,
    /// A static per-store feature; must be exposed by the setting's `observation.static_features`.
    Static(StaticFeature),
    /// Warehouse/echelon constants (holding costs, lead times, edge costs) — part of the network.
    NetworkConstants,
    /// The last `P` demands.
    PastDemands,
    /// The calendar features of the current period (`demand.calendar`).
    Calendar,
    /// Future demand: non-admissible.
    FutureDemand,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The shape of the network a policy is built for, derived from a [`Setting`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkShape {
    /// Stores `S`.
    pub n_stores: usize,
    /// Warehouses `W`.
    pub n_warehouses: usize,
    /// Extra echelons `E`.
    pub n_echelons: usize,
    /// Store pipeline length `Ls`.
    pub store_pipeline: usize,
    /// Warehouse pipeline length `Lw` (0 if none).
    pub warehouse_pipeline: usize,
    /// Echelon pipeline length `Le` (0 if none).
    pub echelon_pipeline: usize,
    /// `W × S`: warehouse `w` ships to store `s`.
    pub adjacency: Vec<Vec<bool>>,
    /// Warehouse upper bound `U` (scales sigmoid outputs to order sizes).
    pub upper_bound: f32,
    /// Past demands shown, `P`.
    pub past_demands: usize,
    /// Calendar features per period `C` (`demand.calendar`; 0 without a calendar).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub calendar_features: usize,
    /// Static features the setting exposes.
    pub static_features: Vec<StaticFeature>,
    /// Lost or backlogged demand.
    pub unmet_demand: UnmetDemand,
    /// Cost or profit.
    pub objective: Objective,
}

impl NetworkShape {
    /// Derives the shape from a setting.
    pub fn from_setting(setting: &Setting) -> Result<NetworkShape, hdpo_sim::ConfigError> {
        let instance = setting.instance()?;
        Ok(NetworkShape {
            n_stores: instance.n_stores,
            n_warehouses: instance.n_warehouses,
            n_echelons: instance.n_echelons,
            store_pipeline: instance.pipeline.store,
            warehouse_pipeline: instance.pipeline.warehouse,
            echelon_pipeline: instance.pipeline.echelon,
            adjacency: instance.adjacency.clone(),
            upper_bound: setting.warehouse_upper_bound()? as f32,
            past_demands: setting.observation.past_demands,
            calendar_features: instance.calendar.as_ref().map_or(0, |c| c.columns().len()),
            static_features: setting.observation.static_features.clone(),
            unmet_demand: instance.unmet_demand,
            objective: instance.objective,
        })
    }

    /// `W' = max(W, 1)`.
    pub fn n_sources(&self) -> usize {
        self.n_warehouses.max(1)
    }

    /// The stores warehouse `w` ships to.
    pub fn stores_of(&self, w: usize) -> Vec<usize> {
        (0..self.n_stores)
            .filter(|&s| self.adjacency[w][s])
            .collect()
    }

    /// `(W, S)` adjacency as a 0/1 matrix.
    pub fn adjacency_matrix(&self) -> Array2<f32> {
        Array2::from_shape_fn((self.n_warehouses, self.n_stores), |(w, s)| {
            if self.adjacency[w][s] { 1.0 } else { 0.0 }
        })
    }
}
