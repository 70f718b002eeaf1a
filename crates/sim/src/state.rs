//! The batched data the dynamics work on: the inventory [`State`], the [`Actions`] a policy
//! takes in one period, and the per-batch [`Statics`] (costs, lead times, topology).
//!
//! Layout (fixed; the tape code and the policies build on it): every batched array is 2-D with
//! **rows = sample × entity, sample-major** — row `b·S + s` for stores, `b·W + w` for warehouses,
//! `b·E + e` for extra echelons — and columns = pipeline slots (state) or sources (actions).
//! Pipeline column 0 is the on-hand quantity now (it already contains this period's arrival);
//! column `k ≥ 1` is what arrives `k` periods from now. All quantities are `f32`.

use ndarray::{Array1, Array2, ArrayView1, Axis};
use std::sync::Arc;

use crate::config::{Objective, PipelineLengths, UnmetDemand};

/// Inventory pipelines of every node of every sample in a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// Store pipelines, `(B·S, Ls)`.
    pub store: Array2<f32>,
    /// Warehouse pipelines, `(B·W, Lw)`; zero rows when there is no warehouse.
    pub warehouse: Array2<f32>,
    /// Extra-echelon pipelines, `(B·E, Le)`; echelon 0 is the most upstream. Zero rows when `E = 0`.
    pub echelon: Array2<f32>,
}

impl State {
    /// All-zero pipelines for `n_samples` samples of the network described by `statics`
    /// (only its node counts are used) with the given pipeline lengths.
    pub fn zeros(n_samples: usize, statics: &Statics, lengths: PipelineLengths) -> State {
        State {
            store: Array2::zeros((n_samples * statics.n_stores, lengths.store)),
            warehouse: Array2::zeros((n_samples * statics.n_warehouses, lengths.warehouse)),
            echelon: Array2::zeros((n_samples * statics.n_echelons, lengths.echelon)),
        }
    }

    /// Pipeline lengths of this state (`Ls`, `Lw`, `Le`).
    pub fn pipeline_lengths(&self) -> PipelineLengths {
        PipelineLengths {
            store: self.store.ncols(),
            warehouse: self.warehouse.ncols(),
            echelon: self.echelon.ncols(),
        }
    }

    /// The rows of the given samples, in the given order (a batch gather). `dims` gives the node
    /// counts; every index must be below the number of samples in `self`.
    pub fn gather(&self, samples: &[usize], dims: &Statics) -> State {
        State {
            store: gather_rows(&self.store, samples, dims.n_stores),
            warehouse: gather_rows(&self.warehouse, samples, dims.n_warehouses),
            echelon: gather_rows(&self.echelon, samples, dims.n_echelons),
        }
    }

    /// Total units held anywhere (on hand or in transit, all nodes) per sample; backlog counts
    /// as negative stock. Used by conservation checks.
    pub fn total_units_per_sample(&self, dims: &Statics) -> Vec<f64> {
        let n_samples = self.store.nrows().checked_div(dims.n_stores).unwrap_or(0);
        let mut totals = vec![0.0f64; n_samples];
        for (array, per_sample) in [
            (&self.store, dims.n_stores),
            (&self.warehouse, dims.n_warehouses),
            (&self.echelon, dims.n_echelons),
        ] {
            if per_sample == 0 {
                continue;
            }
            for (row_index, row) in array.rows().into_iter().enumerate() {
                totals[row_index / per_sample] += row.iter().map(|&x| f64::from(x)).sum::<f64>();
            }
        }
        totals
    }
}

/// What a policy decides in one period for every sample of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Actions {
    /// `(B·S, W')` with `W' = max(W, 1)`: quantity shipped to store `s` from its source `w`
    /// (the outside supplier when `W = 0`). Must be exactly 0 where `(s, w)` is not an edge.
    pub store: Array2<f32>,
    /// `(B·W, 1)`: quantity each warehouse orders from its source (the outside supplier, or the
    /// last extra echelon in a serial chain).
    pub warehouse: Array2<f32>,
    /// `(B·E, 1)`: echelon 0 orders from the outside supplier, echelon `i > 0` from echelon `i − 1`.
    pub echelon: Array2<f32>,
}

impl Actions {
    /// All-zero actions of the right shapes for `n_samples` samples.
    pub fn zeros(n_samples: usize, dims: &Statics) -> Actions {
        Actions {
            store: Array2::zeros((n_samples * dims.n_stores, dims.n_sources())),
            warehouse: Array2::zeros((n_samples * dims.n_warehouses, 1)),
            echelon: Array2::zeros((n_samples * dims.n_echelons, 1)),
        }
    }

    /// Sets every action to 0 (keeps the shapes).
    pub fn clear(&mut self) {
        self.store.fill(0.0);
        self.warehouse.fill(0.0);
        self.echelon.fill(0.0);
    }

    /// Rounds every action to the nearest integer, ties to even (as `torch.round`); used at test
    /// time for discrete (Poisson) demand.
    pub fn round_half_even(&mut self) {
        for array in [&mut self.store, &mut self.warehouse, &mut self.echelon] {
            array.mapv_inplace(round_ties_even);
        }
    }
}

/// `x.round_ties_even()` without the `rintf` call that baseline x86-64 makes of it: for
/// `|x| < 2²²`, adding and subtracting `1.5 · 2²³` rounds to an integer in the default
/// round-to-nearest-even mode; larger values are already integers or take the library path.
/// The sign is copied back so that, e.g., −0.3 gives −0, exactly as `round_ties_even`.
#[inline(always)]
pub fn round_ties_even(x: f32) -> f32 {
    const SHIFT: f32 = 12_582_912.0; // 1.5 · 2²³
    let a = x.abs();
    if a < 4_194_304.0 {
        ((a + SHIFT) - SHIFT).copysign(x)
    } else {
        x.round_ties_even()
    }
}

/// Everything about a batch that does not change over time: topology, costs, lead times and the
/// demand distribution's mean/std per store. Per-store quantities are per row (`b·S + s`), so
/// they may differ across samples; warehouse and echelon quantities are per node, shared by all
/// samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Statics {
    /// Number of samples `B` in the batch.
    pub n_samples: usize,
    /// Stores per sample, `S ≥ 1`.
    pub n_stores: usize,
    /// Warehouses per sample, `W ≥ 0`.
    pub n_warehouses: usize,
    /// Extra echelons per sample, `E ≥ 0` (serial chains; requires `W ≥ 1`).
    pub n_echelons: usize,
    /// Lost sales or backlogging at the stores.
    pub unmet_demand: UnmetDemand,
    /// Minimise cost or maximise profit.
    pub objective: Objective,
    /// Store holding cost per unit left at the end of a period, `(B·S)`.
    pub holding_cost: Array1<f32>,
    /// Store underage cost per unit short (cost mode) or unit margin (profit mode), `(B·S)`.
    pub underage_cost: Array1<f32>,
    /// Lead time of shipments to store `s` from source `w`, `(B·S, W')`; `0` = no edge.
    pub lead_time: Array2<u32>,
    /// Mean of the demand distribution per store, `(B·S)`.
    pub mean: Array1<f32>,
    /// Standard deviation of the demand distribution per store, `(B·S)` (`√mean` for Poisson).
    pub std: Array1<f32>,
    /// Holding cost per unit of each warehouse, length `W`.
    pub warehouse_holding_cost: Vec<f32>,
    /// Lead time of each warehouse's inbound orders, length `W`.
    pub warehouse_lead_time: Vec<u32>,
    /// Cost per unit each warehouse orders (edge / procurement cost), length `W` (0 if none).
    pub warehouse_edge_cost: Vec<f32>,
    /// Holding cost per unit of each extra echelon, length `E`.
    pub echelon_holding_cost: Vec<f32>,
    /// Lead time of each extra echelon's inbound orders, length `E`.
    pub echelon_lead_time: Vec<u32>,
    /// `(W, S)`: `true` where warehouse `w` can ship to store `s`.
    pub adjacency: Array2<bool>,
    /// Calendar features of the split's periods, `(T, C)`: row `t` = period `t` (shared by all
    /// samples); `(0, 0)` without a calendar (`demand.calendar`). See [`Statics::calendar_at`].
    pub calendar: Arc<Array2<f32>>,
}

impl Statics {
    /// `W' = max(W, 1)`: number of source columns in the store actions and lead times.
    pub fn n_sources(&self) -> usize {
        self.n_warehouses.max(1)
    }

    /// How many leading periods of a `periods`-period rollout have actions that can change a
    /// cost of the rollout. The rest get zero actions and skip the policy: same costs, same
    /// gradients, less work.
    ///
    /// When stores order from the outside supplier and nothing else (`W = E = 0`), an order placed
    /// in period `t` with lead time `ℓ` does nothing until it reaches on-hand in period `t + ℓ`
    /// (spec §1.4). Store orders have no cost of their own (spec §1.3). So an order placed at
    /// `t ≥ periods − min ℓ` cannot reach any cost in the horizon. With warehouses or echelons,
    /// every order moves upstream stock in the period it is placed, so every period counts.
    pub fn periods_with_effective_actions(&self, periods: usize) -> usize {
        if self.n_warehouses > 0 || self.n_echelons > 0 {
            return periods;
        }
        // lead time 0 marks "no edge" and never occurs without warehouses; it would skip nothing
        match self.lead_time.iter().copied().min() {
            Some(shortest) => periods.saturating_sub(shortest as usize),
            None => periods,
        }
    }

    /// Calendar features `C` per period (0 without a calendar).
    pub fn n_calendar_features(&self) -> usize {
        self.calendar.ncols()
    }

    /// The calendar features of period `t` (`C` values; periods past the table read its last
    /// row); `None` without a calendar.
    pub fn calendar_at(&self, t: usize) -> Option<ArrayView1<'_, f32>> {
        let rows = self.calendar.nrows();
        (self.calendar.ncols() > 0 && rows > 0).then(|| self.calendar.row(t.min(rows - 1)))
    }

    /// The statics of the given samples, in the given order (a batch gather).
    pub fn gather(&self, samples: &[usize]) -> Statics {
        let s = self.n_stores;
        let rows: Vec<usize> = samples.iter().flat_map(|&b| (b * s)..(b * s + s)).collect();
        Statics {
            n_samples: samples.len(),
            holding_cost: self.holding_cost.select(Axis(0), &rows),
            underage_cost: self.underage_cost.select(Axis(0), &rows),
            lead_time: gather_rows(&self.lead_time, samples, s),
            mean: self.mean.select(Axis(0), &rows),
            std: self.std.select(Axis(0), &rows),
            ..self.clone_constants()
        }
    }

    /// A copy with the per-row arrays emptied (used by `gather` to avoid copying them twice).
    fn clone_constants(&self) -> Statics {
        Statics {
            n_samples: 0,
            n_stores: self.n_stores,
            n_warehouses: self.n_warehouses,
            n_echelons: self.n_echelons,
            unmet_demand: self.unmet_demand,
            objective: self.objective,
            holding_cost: Array1::zeros(0),
            underage_cost: Array1::zeros(0),
            lead_time: Array2::zeros((0, self.n_sources())),
            mean: Array1::zeros(0),
            std: Array1::zeros(0),
            warehouse_holding_cost: self.warehouse_holding_cost.clone(),
            warehouse_lead_time: self.warehouse_lead_time.clone(),
            warehouse_edge_cost: self.warehouse_edge_cost.clone(),
            echelon_holding_cost: self.echelon_holding_cost.clone(),
            echelon_lead_time: self.echelon_lead_time.clone(),
            adjacency: self.adjacency.clone(),
            calendar: Arc::clone(&self.calendar),
        }
    }
}

/// Rows `b·per_sample .. (b+1)·per_sample` of `array` for every `b` in `samples`.
pub(crate) fn gather_rows<T: Clone>(
    array: &Array2<T>,
    samples: &[usize],
    per_sample: usize,
) -> Array2<T> {
    let cols = array.ncols();
    let Some(flat) = array.as_slice() else {
        let rows: Vec<usize> = samples
            .iter()
            .flat_map(|&b| (b * per_sample)..(b * per_sample + per_sample))
            .collect();
        return array.select(Axis(0), &rows);
    };
    // a sample's rows are contiguous: one slice copy per sample (ndarray's `select` copies
    // element by element)
    let block = per_sample * cols;
    let mut data = Vec::with_capacity(samples.len() * block);
    for &b in samples {
        data.extend_from_slice(&flat[b * block..(b + 1) * block]);
    }
    Array2::from_shape_vec((samples.len() * per_sample, cols), data)
        .expect("gathered rows have the array's width")
}

#[cfg(test)]
mod tests {
    use super::{gather_rows, round_ties_even};
    use ndarray::{Array2, Axis, ShapeBuilder};

    #[test]
    fn gather_rows_equals_select_of_each_samples_rows() {
        let array = Array2::from_shape_fn((12, 5), |(i, j)| (i * 10 + j) as f32);
        let samples = [3, 0, 3, 5];
        // 2 rows per sample
        let rows: Vec<usize> = samples.iter().flat_map(|&b| [2 * b, 2 * b + 1]).collect();
        assert_eq!(
            gather_rows(&array, &samples, 2),
            array.select(Axis(0), &rows)
        );
        // a column-major array goes through `select`, with the same result
        let column_major = Array2::from_shape_fn((12, 5).f(), |(i, j)| (i * 10 + j) as f32);
        assert!(column_major.as_slice().is_none());
        assert_eq!(
            gather_rows(&column_major, &samples, 2),
            array.select(Axis(0), &rows)
        );
        // no rows per sample (no warehouses)
        assert_eq!(gather_rows(&array, &samples, 0).dim(), (0, 5));
    }

    #[test]
    fn fast_rounding_equals_the_library_bit_for_bit() {
        let mut values = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            2.5,
            -2.5,
            0.49999997,
            4_194_303.5,
            4_194_304.5,
            8_388_607.5,
            8_388_609.0,
            1e30,
            f32::MAX,
            f32::MIN_POSITIVE,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ];
        // every half-integer and its neighbours up to 3000, and a sweep of small fractions
        for k in 0..6000 {
            let h = k as f32 * 0.5;
            values.extend([h, h.next_up(), h.next_down(), -h, -h.next_up()]);
        }
        values.extend((0..100_000).map(|i| i as f32 * 0.0137 - 600.0));
        for x in values {
            assert_eq!(
                round_ties_even(x).to_bits(),
                x.round_ties_even().to_bits(),
                "{x}"
            );
        }
        assert!(round_ties_even(f32::NAN).is_nan());
    }
}
