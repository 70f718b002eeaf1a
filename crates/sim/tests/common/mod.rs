//! Helpers shared by the simulator tests: building statics/states by hand.
#![allow(dead_code)]

use hdpo_sim::config::{Objective, PipelineLengths, UnmetDemand};
use hdpo_sim::state::{Actions, State, Statics};
use ndarray::{Array1, Array2};

/// Statics with per-store values tiled over `n_samples` samples.
pub struct Net {
    pub n_samples: usize,
    pub n_stores: usize,
    pub n_warehouses: usize,
    pub n_echelons: usize,
    pub unmet: UnmetDemand,
    pub objective: Objective,
    pub holding: Vec<f32>,
    pub underage: Vec<f32>,
    /// S × W' lead times (0 = non-edge).
    pub lead: Vec<Vec<u32>>,
    pub warehouse_holding: Vec<f32>,
    pub warehouse_lead: Vec<u32>,
    pub warehouse_edge: Vec<f32>,
    pub echelon_holding: Vec<f32>,
    pub echelon_lead: Vec<u32>,
}

impl Net {
    pub fn one_store(n_samples: usize, unmet: UnmetDemand, lead: u32) -> Net {
        Net {
            n_samples,
            n_stores: 1,
            n_warehouses: 0,
            n_echelons: 0,
            unmet,
            objective: Objective::Cost,
            holding: vec![1.0],
            underage: vec![9.0],
            lead: vec![vec![lead]],
            warehouse_holding: vec![],
            warehouse_lead: vec![],
            warehouse_edge: vec![],
            echelon_holding: vec![],
            echelon_lead: vec![],
        }
    }

    pub fn statics(&self) -> Statics {
        let (b, s, w) = (self.n_samples, self.n_stores, self.n_warehouses);
        let sources = w.max(1);
        let tile = |v: &[f32]| Array1::from_iter((0..b).flat_map(|_| v.iter().copied()));
        let mut lead_time = Array2::zeros((b * s, sources));
        for bi in 0..b {
            for si in 0..s {
                for k in 0..sources {
                    lead_time[[bi * s + si, k]] = self.lead[si][k];
                }
            }
        }
        let mut adjacency = Array2::from_elem((w, s), false);
        for k in 0..w {
            for si in 0..s {
                adjacency[[k, si]] = self.lead[si][k] > 0;
            }
        }
        Statics {
            n_samples: b,
            n_stores: s,
            n_warehouses: w,
            n_echelons: self.n_echelons,
            unmet_demand: self.unmet,
            objective: self.objective,
            holding_cost: tile(&self.holding),
            underage_cost: tile(&self.underage),
            lead_time,
            mean: Array1::from_elem(b * s, 5.0),
            std: Array1::from_elem(b * s, 1.0),
            warehouse_holding_cost: self.warehouse_holding.clone(),
            warehouse_lead_time: self.warehouse_lead.clone(),
            warehouse_edge_cost: self.warehouse_edge.clone(),
            echelon_holding_cost: self.echelon_holding.clone(),
            echelon_lead_time: self.echelon_lead.clone(),
            adjacency,
            calendar: Default::default(),
        }
    }
}

pub fn zeros_state(statics: &Statics, lengths: PipelineLengths) -> State {
    State::zeros(statics.n_samples, statics, lengths)
}

pub fn zeros_actions(statics: &Statics) -> Actions {
    Actions::zeros(statics.n_samples, statics)
}

/// `|a − b| ≤ tol · max(1, |b|)`.
pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}
