//! The fused simulator ops, the differentiable path: one period of the dynamics recorded on the
//! autodiff tape as a handful of fused [`CustomOp`] nodes with vector–Jacobian products (VJPs),
//! instead of a dozen primitive nodes per node type. Nothing here restates the dynamics: the
//! supplier rows, slots and edges come from the batch's [`Topology`], the actions are checked by
//! its one validation, and every per-row formula is a [`Formula`] of [`crate::dynamics`] whose `f`
//! the forward passes call and whose partials `df` the VJPs chain. Only rationing, which couples
//! the requests on one supplier, has its derivative written here ([`Ration`]). Each op is checked
//! against finite differences and against the same step composed from primitive tape ops (tests
//! in `crates/sim/tests/fused.rs`).
//!
//! Per period, in the order of events of the spec:
//! 1. [`Ration`]: shipments asked of each warehouse / echelon are scaled down proportionally when
//!    they exceed its on-hand, so upstream stock never goes negative;
//! 2. [`StoreCost`] and [`StoreAdvance`]: store cost, demand served (lost or backlogged), pipelines
//!    advanced and the (rationed) shipments placed in their lead-time slots;
//! 3. [`Outflow`], [`UpstreamCost`] and [`UpstreamAdvance`] for warehouses, then for echelons.
//!
//! Conventions at kinks follow the engine (`hdpo_autodiff::ops`): `max(x, 0)` passes no gradient at
//! `x = 0`; rationing uses the unscaled branch when the request equals the stock exactly.

use crate::config::{Objective, UnmetDemand};
use crate::dynamics::{
    self, Backlogging, CostMode, Formula, LeftoverFormula, LostSales, ProfitMode, StepError,
    StoreCostFormula, UpstreamCostRate, UpstreamLeftover,
};
use crate::state::{State, Statics};
use crate::topology::{OUTSIDE_SUPPLIER, Requests, Topology, add_to_suppliers};
use hdpo_autodiff::{CustomOp, InputGrad, Tape, Var, WriteOrAdd};
use ndarray::Array2;
use std::sync::Arc;

/// The pipelines of a batch on the tape (same layout as [`State`]).
#[derive(Clone, Copy, Debug)]
pub struct TapeState {
    /// Store pipelines `(B·S, Ls)`.
    pub store: Var,
    /// Warehouse pipelines `(B·W, Lw)`, if `W > 0`.
    pub warehouse: Option<Var>,
    /// Echelon pipelines `(B·E, Le)`, if `E > 0`.
    pub echelon: Option<Var>,
}

impl TapeState {
    /// Puts a tape-free state on the tape as constants (the start of a rollout).
    pub fn from_state(tape: &mut Tape, state: &State) -> TapeState {
        let store = tape.constant_from(state.store.view());
        let warehouse =
            (state.warehouse.nrows() > 0).then(|| tape.constant_from(state.warehouse.view()));
        let echelon = (state.echelon.nrows() > 0).then(|| tape.constant_from(state.echelon.view()));
        TapeState {
            store,
            warehouse,
            echelon,
        }
    }

    /// Copies the values back into a tape-free state.
    pub fn to_state(&self, tape: &Tape) -> State {
        let empty = |cols: usize| Array2::zeros((0, cols));
        State {
            store: tape.value(self.store).clone(),
            warehouse: self
                .warehouse
                .map_or_else(|| empty(2), |v| tape.value(v).clone()),
            echelon: self
                .echelon
                .map_or_else(|| empty(2), |v| tape.value(v).clone()),
        }
    }
}

/// A policy's decisions on the tape (same layout as [`crate::state::Actions`]).
#[derive(Clone, Copy, Debug)]
pub struct TapeActions {
    /// `(B·S, W')` shipments to each store from each source.
    pub store: Var,
    /// `(B·W, 1)` warehouse orders, if `W > 0`.
    pub warehouse: Option<Var>,
    /// `(B·E, 1)` echelon orders, if `E > 0`.
    pub echelon: Option<Var>,
}

impl TapeActions {
    /// All-zero actions for the batch `statics` describes, as tape constants (the actions of a
    /// period whose orders cannot reach a cost, see [`Statics::periods_with_effective_actions`]).
    pub fn zeros(tape: &mut Tape, statics: &Statics) -> TapeActions {
        let b = statics.n_samples;
        let store = tape.constant(Array2::zeros((b * statics.n_stores, statics.n_sources())));
        let mut column = |rows: usize| (rows > 0).then(|| tape.constant(Array2::zeros((rows, 1))));
        TapeActions {
            store,
            warehouse: column(b * statics.n_warehouses),
            echelon: column(b * statics.n_echelons),
        }
    }
}

/// Cost of one period on the tape: per store row, and per warehouse / echelon row.
#[derive(Clone, Copy, Debug)]
pub struct PeriodCost {
    /// `(B·S, 1)`.
    pub store: Var,
    /// `(B·W, 1)` holding + edge costs, if `W > 0`.
    pub warehouse: Option<Var>,
    /// `(B·E, 1)` holding costs, if `E > 0`.
    pub echelon: Option<Var>,
}

impl PeriodCost {
    /// The total cost of the period over the whole batch, `(1, 1)`.
    pub fn total(&self, tape: &mut Tape) -> Var {
        let mut total = tape.sum_all(self.store);
        for v in [self.warehouse, self.echelon].into_iter().flatten() {
            let part = tape.sum_all(v);
            total = tape.add(total, part);
        }
        total
    }
}

/// Everything about a batch the fused ops need, prepared once per rollout from the batch's
/// [`Topology`] (supplier rows, slots, edges) and its cost columns.
pub struct TapeDynamics {
    n_samples: usize,
    n_stores: usize,
    n_sources: usize,
    n_warehouses: usize,
    n_echelons: usize,
    topology: Topology,
    store_cost: Arc<StoreCost>,
    store_advance: Arc<StoreAdvance>,
    store_ration: Arc<Ration>,
    warehouse_outflow: Option<Arc<Outflow>>,
    warehouse_cost: Option<Arc<UpstreamCost>>,
    warehouse_advance: Option<Arc<UpstreamAdvance>>,
    warehouse_ration: Option<Arc<Ration>>,
    echelon_outflow: Option<Arc<Outflow>>,
    echelon_cost: Option<Arc<UpstreamCost>>,
    echelon_advance: Option<Arc<UpstreamAdvance>>,
    echelon_ration: Option<Arc<Ration>>,
}

impl TapeDynamics {
    /// Prepares the fused ops for a batch described by `statics`.
    pub fn new(statics: &Statics) -> TapeDynamics {
        let (b, n_w, n_e) = (statics.n_samples, statics.n_warehouses, statics.n_echelons);
        let topology = Topology::new(statics);
        let (store, warehouse, echelon) = (&topology.store, &topology.warehouse, &topology.echelon);
        let ration = |requests: &Requests| {
            Arc::new(Ration {
                supplier_row: requests.supplier.clone(),
                n_suppliers: requests.n_suppliers,
            })
        };
        let store_cost = Arc::new(StoreCost {
            underage: statics.underage_cost.to_vec(),
            holding: statics.holding_cost.to_vec(),
            objective: statics.objective,
        });
        let store_advance = Arc::new(StoreAdvance::new(
            statics.unmet_demand,
            store.slot.clone(),
            store.edge.clone(),
            store.per_row,
        ));
        let store_ration = ration(store);
        let advance = |requests: &Requests| {
            Arc::new(UpstreamAdvance {
                slot: requests.slot.clone(),
            })
        };

        let (
            mut warehouse_outflow,
            mut warehouse_cost,
            mut warehouse_advance,
            mut warehouse_ration,
        ) = (None, None, None, None);
        if n_w > 0 {
            let wrows = b * n_w;
            // units leave a warehouse row as the store requests on it are shipped
            warehouse_outflow = Some(Arc::new(Outflow {
                maps: vec![store.supplier.clone()],
                n_rows: wrows,
            }));
            warehouse_cost = Some(Arc::new(UpstreamCost {
                holding: (0..wrows)
                    .map(|r| statics.warehouse_holding_cost[r % n_w])
                    .collect(),
                edge_cost: (0..wrows)
                    .map(|r| {
                        statics
                            .warehouse_edge_cost
                            .get(r % n_w)
                            .copied()
                            .unwrap_or(0.0)
                    })
                    .collect(),
            }));
            warehouse_advance = Some(advance(warehouse));
            if n_e > 0 {
                warehouse_ration = Some(ration(warehouse));
            }
        }
        let (mut echelon_outflow, mut echelon_cost, mut echelon_advance, mut echelon_ration) =
            (None, None, None, None);
        if n_e > 0 {
            let erows = b * n_e;
            // units leave an echelon row as the echelon and warehouse orders on it are shipped
            echelon_outflow = Some(Arc::new(Outflow {
                maps: vec![echelon.supplier.clone(), warehouse.supplier.clone()],
                n_rows: erows,
            }));
            echelon_cost = Some(Arc::new(UpstreamCost {
                holding: (0..erows)
                    .map(|r| statics.echelon_holding_cost[r % n_e])
                    .collect(),
                edge_cost: vec![0.0; erows],
            }));
            echelon_advance = Some(advance(echelon));
            echelon_ration = Some(ration(echelon));
        }
        TapeDynamics {
            n_samples: b,
            n_stores: statics.n_stores,
            n_sources: statics.n_sources(),
            n_warehouses: n_w,
            n_echelons: n_e,
            topology,
            store_cost,
            store_advance,
            store_ration,
            warehouse_outflow,
            warehouse_cost,
            warehouse_advance,
            warehouse_ration,
            echelon_outflow,
            echelon_cost,
            echelon_advance,
            echelon_ration,
        }
    }

    /// Checks action shapes, then the actions themselves with [`Topology::validate_actions`]
    /// (the errors of the tape-free step).
    pub fn validate(&self, tape: &Tape, actions: &TapeActions) -> Result<(), StepError> {
        let specs = [
            (
                "actions.store",
                Some(actions.store),
                self.n_samples * self.n_stores,
                self.n_sources,
            ),
            (
                "actions.warehouse",
                actions.warehouse,
                self.n_samples * self.n_warehouses,
                1,
            ),
            (
                "actions.echelon",
                actions.echelon,
                self.n_samples * self.n_echelons,
                1,
            ),
        ];
        let mut values: [&[f32]; 3] = [&[]; 3];
        for ((what, var, rows, cols), values) in specs.into_iter().zip(&mut values) {
            let Some(var) = var else {
                if rows == 0 {
                    continue;
                }
                return Err(StepError::Shape {
                    what,
                    expected: (rows, cols),
                    found: (0, 0),
                });
            };
            let found = tape.shape(var);
            if found != (rows, cols) {
                return Err(StepError::Shape {
                    what,
                    expected: (rows, cols),
                    found,
                });
            }
            *values = flat(tape.value(var));
        }
        let [store, warehouse, echelon] = values;
        self.topology.validate_actions(store, warehouse, echelon)
    }

    /// Records one period: `demand` is the `(B·S, 1)` demand of this period. Returns the next state
    /// and the period's costs.
    pub fn step(
        &self,
        tape: &mut Tape,
        state: &TapeState,
        actions: &TapeActions,
        demand: Var,
    ) -> Result<(TapeState, PeriodCost), StepError> {
        self.validate(tape, actions)?;
        // 1. rationing at every supplying node, on its on-hand at the start of the period
        let store_received = match state.warehouse {
            Some(wh) => tape.custom(self.store_ration.clone(), &[actions.store, wh]),
            None => actions.store,
        };
        let warehouse_received = match (actions.warehouse, state.echelon, &self.warehouse_ration) {
            (Some(order), Some(ech), Some(op)) => Some(tape.custom(op.clone(), &[order, ech])),
            (order, _, _) => order,
        };
        let echelon_received = match (actions.echelon, state.echelon, &self.echelon_ration) {
            (Some(order), Some(ech), Some(op)) => Some(tape.custom(op.clone(), &[order, ech])),
            _ => None,
        };
        // 2. stores
        let store_cost = tape.custom(self.store_cost.clone(), &[state.store, demand]);
        let store = tape.custom(
            self.store_advance.clone(),
            &[state.store, demand, store_received],
        );
        // 3. warehouses
        let (mut warehouse, mut warehouse_cost) = (None, None);
        if let (Some(wh), Some(order)) = (state.warehouse, warehouse_received) {
            let outflow = tape.custom(
                self.warehouse_outflow.clone().expect("W > 0"),
                &[store_received],
            );
            warehouse_cost = Some(tape.custom(
                self.warehouse_cost.clone().expect("W > 0"),
                &[wh, outflow, order],
            ));
            warehouse = Some(tape.custom(
                self.warehouse_advance.clone().expect("W > 0"),
                &[wh, outflow, order],
            ));
        }
        // 4. echelons
        let (mut echelon, mut echelon_cost) = (None, None);
        if let (Some(ech), Some(order), Some(wh_order)) =
            (state.echelon, echelon_received, warehouse_received)
        {
            let outflow = tape.custom(
                self.echelon_outflow.clone().expect("E > 0"),
                &[order, wh_order],
            );
            echelon_cost = Some(tape.custom(
                self.echelon_cost.clone().expect("E > 0"),
                &[ech, outflow, order],
            ));
            echelon = Some(tape.custom(
                self.echelon_advance.clone().expect("E > 0"),
                &[ech, outflow, order],
            ));
        }
        Ok((
            TapeState {
                store,
                warehouse,
                echelon,
            },
            PeriodCost {
                store: store_cost,
                warehouse: warehouse_cost,
                echelon: echelon_cost,
            },
        ))
    }
}

// =================================================================================================
// The fused ops. Each: the forward formula (from `dynamics`) and its VJP side by side.
// =================================================================================================

/// The elements of a tape value, row-major. Tape values are always in standard layout; the fused
/// ops index these flat slices (no per-element bounds checks of 2-D indexing).
fn flat(x: &Array2<f32>) -> &[f32] {
    x.as_slice().expect("tape values are in standard layout")
}

/// [`flat`] for an output or gradient buffer.
fn flat_mut(x: &mut Array2<f32>) -> &mut [f32] {
    x.as_slice_mut()
        .expect("tape values are in standard layout")
}

/// The pipeline shift of an advance, on whole `(R, L)` arrays: `next[r, j] = pipe[r, j + 1]` for
/// `j < L − 1` and `next[r, L − 1] = 0`. One flat copy (shifted by one element), then the last
/// slot of every row (which the flat copy filled with the next row's first) set to 0.
fn shift_rows_left(next: &mut [f32], pipe: &[f32], l: usize) {
    let n = pipe.len();
    if n == 0 {
        return;
    }
    next[..n - 1].copy_from_slice(&pipe[1..]);
    for row in next.chunks_exact_mut(l) {
        row[l - 1] = 0.0;
    }
}

/// The adjoint of [`shift_rows_left`] except slot 0: `gp[r, j + 1] (+)= g[r, j]` for `j < L − 1`.
/// When written, slot 0 of each row is left with an unspecified value for the caller to write.
fn shift_rows_left_adjoint(gp: &mut [f32], mode: WriteOrAdd, g: &[f32], l: usize) {
    if mode.is_write() {
        let n = g.len();
        if n > 0 {
            gp[1..].copy_from_slice(&g[..n - 1]);
        }
        return;
    }
    for (gp_row, g_row) in gp.chunks_exact_mut(l).zip(g.chunks_exact(l)) {
        for (dst, &v) in gp_row[1..].iter_mut().zip(&g_row[..l - 1]) {
            *dst += v;
        }
    }
}

/// Store cost of one period: input `[pipeline (R, Ls), demand (R, 1)]`, output `(R, 1)`: the
/// objective's [`StoreCostFormula`] of `(on-hand, demand)` per row ([`CostMode`], [`ProfitMode`]).
#[derive(Debug)]
pub struct StoreCost {
    underage: Vec<f32>,
    holding: Vec<f32>,
    objective: Objective,
}

impl StoreCost {
    /// `out[r] = C(h_r, p_r).f(on_r, d_r)`.
    fn forward_with<C: StoreCostFormula>(
        &self,
        (pipe, demand, l): (&[f32], &[f32], usize),
        out: &mut [f32],
    ) {
        let rows = (pipe.chunks_exact(l).zip(demand)).zip(self.holding.iter().zip(&self.underage));
        for (o, ((row, &d), (&h, &p))) in out.iter_mut().zip(rows) {
            *o = C::new(h, p).f(row[0], d);
        }
    }

    /// The VJP through `C`'s partials, in one pass over the rows, each row's partials computed
    /// once: `gp[r, 0] += g_r·∂f/∂on` (only the on-hand has a gradient; `gp` holds the adjoint so
    /// far), `gd[r] (+)= g_r·∂f/∂d`.
    fn backward_with<C: StoreCostFormula>(
        &self,
        (pipe, demand, l): (&[f32], &[f32], usize),
        g: &[f32],
        mut gp: Option<&mut [f32]>,
        mut gd: Option<(&mut [f32], WriteOrAdd)>,
    ) {
        let rows = (pipe.chunks_exact(l).zip(demand)).zip(self.holding.iter().zip(&self.underage));
        for (r, (((row, &d), (&h, &p)), &gr)) in rows.zip(g).enumerate() {
            let (d_on, d_demand) = C::new(h, p).df(row[0], d);
            if let Some(gp) = gp.as_deref_mut() {
                gp[r * l] += gr * d_on;
            }
            if let Some((gd, mode)) = gd.as_mut() {
                mode.put(&mut gd[r], gr * d_demand);
            }
        }
    }
}

impl CustomOp for StoreCost {
    fn name(&self) -> &str {
        "store_cost"
    }
    fn output_shape(&self, inputs: &[(usize, usize)]) -> (usize, usize) {
        assert_eq!(
            inputs[1],
            (inputs[0].0, 1),
            "store_cost: demand must be (R, 1)"
        );
        (inputs[0].0, 1)
    }
    fn forward(&self, inputs: &[&Array2<f32>], output: &mut Array2<f32>) {
        let x = (flat(inputs[0]), flat(inputs[1]), inputs[0].ncols());
        let out = flat_mut(output);
        // one loop per objective (no per-row `match`), iterators (no bounds checks)
        match self.objective {
            Objective::Cost => self.forward_with::<CostMode>(x, out),
            Objective::Profit => self.forward_with::<ProfitMode>(x, out),
        }
    }
    fn backward(
        &self,
        inputs: &[&Array2<f32>],
        _: &Array2<f32>,
        g: &Array2<f32>,
        grads: &mut [Option<InputGrad>],
    ) {
        let x = (flat(inputs[0]), flat(inputs[1]), inputs[0].ncols());
        let [gp, gd] = grads else {
            unreachable!("store_cost has two inputs")
        };
        // only the on-hand (slot 0) has a gradient: a pipeline adjoint to be written is zeroed
        let gp = gp.as_mut().map(|gp| flat_mut(gp.zeroed_for_adding()));
        let gd = gd.as_mut().map(InputGrad::parts);
        match self.objective {
            Objective::Cost => self.backward_with::<CostMode>(x, flat(g), gp, gd),
            Objective::Profit => self.backward_with::<ProfitMode>(x, flat(g), gp, gd),
        }
    }
}

/// Store pipeline advance: input `[pipeline (R, Ls), demand (R, 1), received (R, W')]`, output the
/// next pipeline `(R, Ls)`: the unmet-demand rule's [`LeftoverFormula`] of `(on-hand, demand)`
/// ([`LostSales`], [`Backlogging`]) plus the next arrival in slot 0, slots shifted left, each
/// received shipment added in slot `lead_time − 1`.
#[derive(Debug)]
pub struct StoreAdvance {
    unmet: UnmetDemand,
    /// `(R·W')` target slot of each (row, source).
    slot: Vec<u32>,
    /// `(R·W')` whether the pair is an edge.
    edge: Vec<bool>,
    n_sources: usize,
    /// `Some(slot)` when every row has one source, on an edge, with the same slot (stores without a
    /// warehouse and one lead time for the batch, e.g. every one-store setting): the loops then
    /// skip the per-row edge and slot look-ups. The same additions in the same order either way.
    uniform_slot: Option<usize>,
}

impl StoreAdvance {
    fn new(unmet: UnmetDemand, slot: Vec<u32>, edge: Vec<bool>, n_sources: usize) -> StoreAdvance {
        let uniform_slot = (n_sources == 1 && edge.iter().all(|&e| e))
            .then(|| slot.first().copied())
            .flatten()
            .filter(|&first| slot.iter().all(|&s| s == first))
            .map(|first| first as usize);
        StoreAdvance {
            unmet,
            slot,
            edge,
            n_sources,
            uniform_slot,
        }
    }

    /// The forward pass with the leftover formula `U`.
    fn forward_with<U: LeftoverFormula>(&self, inputs: &[&Array2<f32>], out: &mut [f32]) {
        let l = inputs[0].ncols();
        let ns = self.n_sources;
        let (pipe, demand, received) = (flat(inputs[0]), flat(inputs[1]), flat(inputs[2]));
        shift_rows_left(out, pipe, l);
        let rows = out.chunks_exact_mut(l).zip(pipe.chunks_exact(l));
        if let Some(slot) = self.uniform_slot {
            for ((next, row), (&d, &q)) in rows.zip(demand.iter().zip(received)) {
                next[0] += U::default().f(row[0], d);
                next[slot] += q;
            }
            return;
        }
        for (r, (next, row)) in rows.enumerate() {
            next[0] += U::default().f(row[0], demand[r]);
            for k in r * ns..(r + 1) * ns {
                if self.edge[k] {
                    next[self.slot[k] as usize] += received[k];
                }
            }
        }
    }

    /// The pipeline and demand adjoints through `U`'s partials.
    fn backward_with<U: LeftoverFormula>(
        &self,
        (pipe, demand, l): (&[f32], &[f32], usize),
        g: &[f32],
        gp: Option<&mut InputGrad>,
        gd: Option<&mut InputGrad>,
    ) {
        let partials = |r: usize| U::default().df(pipe[r * l], demand[r]);
        if let Some(gp) = gp {
            // next[j] = pipe[j + 1] for j ≥ 0, plus the leftover in slot 0
            let (gp, mode) = gp.parts();
            shift_rows_left_adjoint(gp, mode, g, l);
            for (r, (gp_row, g_row)) in gp.chunks_exact_mut(l).zip(g.chunks_exact(l)).enumerate() {
                mode.put(&mut gp_row[0], g_row[0] * partials(r).0);
            }
        }
        if let Some(gd) = gd {
            let (gd, mode) = gd.parts();
            for (r, (d, g_row)) in gd.iter_mut().zip(g.chunks_exact(l)).enumerate() {
                mode.put(d, g_row[0] * partials(r).1);
            }
        }
    }
}

impl CustomOp for StoreAdvance {
    fn name(&self) -> &str {
        "store_advance"
    }
    fn output_shape(&self, inputs: &[(usize, usize)]) -> (usize, usize) {
        assert_eq!(
            inputs[2],
            (inputs[0].0, self.n_sources),
            "store_advance: received must be (R, W')"
        );
        inputs[0]
    }
    fn forward(&self, inputs: &[&Array2<f32>], out: &mut Array2<f32>) {
        let out = flat_mut(out);
        match self.unmet {
            UnmetDemand::Lost => self.forward_with::<LostSales>(inputs, out),
            UnmetDemand::Backlogged => self.forward_with::<Backlogging>(inputs, out),
        }
    }
    fn backward(
        &self,
        inputs: &[&Array2<f32>],
        _: &Array2<f32>,
        g: &Array2<f32>,
        grads: &mut [Option<InputGrad>],
    ) {
        let l = inputs[0].ncols();
        let ns = self.n_sources;
        let x = (flat(inputs[0]), flat(inputs[1]), l);
        let g = flat(g);
        let [gp, gd, gr] = grads else {
            unreachable!("store_advance has three inputs")
        };
        match self.unmet {
            UnmetDemand::Lost => self.backward_with::<LostSales>(x, g, gp.as_mut(), gd.as_mut()),
            UnmetDemand::Backlogged => {
                self.backward_with::<Backlogging>(x, g, gp.as_mut(), gd.as_mut())
            }
        }
        // each received shipment from its slot
        if let (Some(gr), Some(slot)) = (gr.as_mut(), self.uniform_slot) {
            let (gr, mode) = gr.parts();
            for (d, g_row) in gr.iter_mut().zip(g.chunks_exact(l)) {
                mode.put(d, g_row[slot]);
            }
        } else if let Some(gr) = gr.as_mut() {
            let (gr, mode) = gr.parts();
            for (r, g_row) in g.chunks_exact(l).enumerate() {
                for k in r * ns..(r + 1) * ns {
                    let v = if self.edge[k] {
                        g_row[self.slot[k] as usize]
                    } else {
                        0.0
                    };
                    mode.put(&mut gr[k], v);
                }
            }
        }
    }
}

/// Proportional rationing: input `[requests (R, m), supplier pipelines (Rs, L)]`, output the
/// shipments actually made `(R, m)`. Request `(r, w)` draws on supplier row `supplier_row[r·m + w]`
/// ([`OUTSIDE_SUPPLIER`]: unlimited). When the requests on a supplier exceed its on-hand `A`, each
/// is scaled by `k = A / Σ requests`.
#[derive(Debug)]
pub struct Ration {
    supplier_row: Vec<u32>,
    n_suppliers: usize,
}

impl Ration {
    /// Requested total per supplier row.
    fn totals(&self, requests: &[f32]) -> Vec<f32> {
        let mut total = vec![0.0f32; self.n_suppliers];
        add_to_suppliers(requests, &self.supplier_row, &mut total);
        total
    }
}

impl CustomOp for Ration {
    fn name(&self) -> &str {
        "ration"
    }
    fn output_shape(&self, inputs: &[(usize, usize)]) -> (usize, usize) {
        assert_eq!(
            inputs[0].0 * inputs[0].1,
            self.supplier_row.len(),
            "ration: request shape"
        );
        assert_eq!(inputs[1].0, self.n_suppliers, "ration: supplier rows");
        inputs[0]
    }
    fn forward(&self, inputs: &[&Array2<f32>], out: &mut Array2<f32>) {
        let q = flat(inputs[0]);
        let (supply, l) = (flat(inputs[1]), inputs[1].ncols());
        let total = self.totals(q);
        for ((o, &q), &s) in flat_mut(out).iter_mut().zip(q).zip(&self.supplier_row) {
            *o = if s == OUTSIDE_SUPPLIER {
                q
            } else {
                let s = s as usize;
                q * dynamics::rationing_factor(supply[s * l], total[s])
            };
        }
    }
    fn backward(
        &self,
        inputs: &[&Array2<f32>],
        _: &Array2<f32>,
        g: &Array2<f32>,
        grads: &mut [Option<InputGrad>],
    ) {
        // Where k < 1: out_i = q_i·A/T ⇒ ∂/∂q_j = k·δ_ij − q_i·A/T², ∂/∂A = q_i/T.
        let q = flat(inputs[0]);
        let (supply, l) = (flat(inputs[1]), inputs[1].ncols());
        let gs = flat(g);
        // per supplier, in one pass: the requested total and Σ_i g_i q_i
        let mut total = vec![0.0f32; self.n_suppliers];
        let mut gq_dot = vec![0.0f32; self.n_suppliers];
        for ((&gi, &qi), &s) in gs.iter().zip(q).zip(&self.supplier_row) {
            if s != OUTSIDE_SUPPLIER {
                total[s as usize] += qi;
                gq_dot[s as usize] += gi * qi;
            }
        }
        // the unscaled branch of `rationing_factor` (k = 1) applies when total ≤ max(on-hand, 0)
        let binds = |s: usize| total[s] > 0.0 && total[s] > supply[s * l].max(0.0);
        if let Some(gr) = grads[0].as_mut() {
            let (gr, mode) = gr.parts();
            for ((d, &gi), &s) in gr.iter_mut().zip(gs).zip(&self.supplier_row) {
                let v = if s == OUTSIDE_SUPPLIER || !binds(s as usize) {
                    gi
                } else {
                    let s = s as usize;
                    let (a, t) = (supply[s * l], total[s]);
                    // a / t² — as (a / t) / t when t² falls below f32's normal range (a total
                    // of a few ulps of stock, e.g. 1e-25, left by rounding): a / (t·t) would be
                    // a / 0 = ∞ there; elsewhere the same expression as ever, bit for bit
                    let t2 = t * t;
                    let a_over_t2 = if t2.is_normal() { a / t2 } else { (a / t) / t };
                    (a / t) * gi - a_over_t2 * gq_dot[s]
                };
                mode.put(d, v);
            }
        }
        if let Some(gs_supply) = grads[1].as_mut() {
            // only the on-hand (slot 0) has a gradient
            let (gs_supply, mode) = gs_supply.parts();
            for (s, gs_row) in gs_supply.chunks_exact_mut(l).enumerate() {
                if mode.is_write() {
                    gs_row.fill(0.0);
                }
                if binds(s) && supply[s * l] > 0.0 {
                    gs_row[0] += gq_dot[s] / total[s];
                }
            }
        }
    }
}

/// Units leaving each upstream row: input one or more `(R_k, 1)`/`(R_k, m_k)` shipment tensors,
/// output `(n_rows, 1)` = the sum of the shipments mapped to each row (`maps[k]`, one entry per
/// element of input `k`; [`OUTSIDE_SUPPLIER`] entries are not counted).
#[derive(Debug)]
pub struct Outflow {
    maps: Vec<Vec<u32>>,
    n_rows: usize,
}

impl CustomOp for Outflow {
    fn name(&self) -> &str {
        "outflow"
    }
    fn output_shape(&self, inputs: &[(usize, usize)]) -> (usize, usize) {
        for (shape, map) in inputs.iter().zip(&self.maps) {
            assert_eq!(shape.0 * shape.1, map.len(), "outflow: input size");
        }
        (self.n_rows, 1)
    }
    fn forward(&self, inputs: &[&Array2<f32>], out: &mut Array2<f32>) {
        let out = flat_mut(out);
        out.fill(0.0);
        for (x, map) in inputs.iter().zip(&self.maps) {
            add_to_suppliers(flat(x), map, out);
        }
    }
    fn backward(
        &self,
        _: &[&Array2<f32>],
        _: &Array2<f32>,
        g: &Array2<f32>,
        grads: &mut [Option<InputGrad>],
    ) {
        let g = flat(g);
        for (gx, map) in grads.iter_mut().zip(&self.maps) {
            if let Some(gx) = gx.as_mut() {
                let (gx, mode) = gx.parts();
                for (d, &s) in gx.iter_mut().zip(map) {
                    let v = if s == OUTSIDE_SUPPLIER {
                        0.0
                    } else {
                        g[s as usize]
                    };
                    mode.put(d, v);
                }
            }
        }
    }
}

/// Warehouse / echelon cost: input `[pipeline (R, L), outflow (R, 1), order (R, 1)]`, output
/// `(R, 1)` = [`UpstreamCostRate`] of ([`UpstreamLeftover`] of `(on, outflow)`, order):
/// `h·max(on − outflow, 0) + edge_cost·order`.
#[derive(Debug)]
pub struct UpstreamCost {
    holding: Vec<f32>,
    edge_cost: Vec<f32>,
}

impl UpstreamCost {
    /// Row `r`'s cost formula.
    #[inline(always)]
    fn rate(&self, r: usize) -> UpstreamCostRate {
        UpstreamCostRate {
            holding: self.holding[r],
            edge_cost: self.edge_cost[r],
        }
    }
}

impl CustomOp for UpstreamCost {
    fn name(&self) -> &str {
        "upstream_cost"
    }
    fn output_shape(&self, inputs: &[(usize, usize)]) -> (usize, usize) {
        (inputs[0].0, 1)
    }
    fn forward(&self, inputs: &[&Array2<f32>], out: &mut Array2<f32>) {
        let l = inputs[0].ncols();
        let (pipe, outflow, order) = (flat(inputs[0]), flat(inputs[1]), flat(inputs[2]));
        let out = flat_mut(out);
        for (r, o) in out.iter_mut().enumerate() {
            let leftover = UpstreamLeftover.f(pipe[r * l], outflow[r]);
            *o = self.rate(r).f(leftover, order[r]);
        }
    }
    fn backward(
        &self,
        inputs: &[&Array2<f32>],
        _: &Array2<f32>,
        g: &Array2<f32>,
        grads: &mut [Option<InputGrad>],
    ) {
        let l = inputs[0].ncols();
        let (pipe, outflow, order, g) =
            (flat(inputs[0]), flat(inputs[1]), flat(inputs[2]), flat(g));
        let [gp, go, gq] = grads else {
            unreachable!("upstream_cost has three inputs")
        };
        // one pass per input gradient over flat slices (no per-element bounds checks or branches
        // on which gradients are wanted); the same operations per element. The chain rule through
        // the leftover multiplies by its partials ±1, which is exact.
        let partials = |r: usize| {
            let (on, out) = (pipe[r * l], outflow[r]);
            let (d_on, d_out) = UpstreamLeftover.df(on, out);
            let d_leftover = self.rate(r).df(UpstreamLeftover.f(on, out), order[r]).0;
            (d_leftover * d_on, d_leftover * d_out)
        };
        if let Some(gp) = gp.as_mut() {
            // only the on-hand (slot 0) has a gradient
            let (gp, mode) = gp.parts();
            for (r, gp_row) in gp.chunks_exact_mut(l).enumerate() {
                if mode.is_write() {
                    gp_row.fill(0.0);
                }
                gp_row[0] += g[r] * partials(r).0;
            }
        }
        if let Some(go) = go.as_mut() {
            let (go, mode) = go.parts();
            for (r, d) in go.iter_mut().enumerate() {
                mode.put(d, g[r] * partials(r).1);
            }
        }
        if let Some(gq) = gq.as_mut() {
            let (gq, mode) = gq.parts();
            for (r, (d, &g_r)) in gq.iter_mut().zip(g).enumerate() {
                let d_order = self.rate(r).df(0.0, order[r]).1;
                mode.put(d, g_r * d_order);
            }
        }
    }
}

/// Warehouse / echelon pipeline advance: input `[pipeline (R, L), outflow (R, 1), order (R, 1)]`,
/// output the next pipeline: [`UpstreamLeftover`] of `(on, outflow)` plus the next arrival in slot
/// 0, shift left, the order in slot `lead_time − 1`.
#[derive(Debug)]
pub struct UpstreamAdvance {
    slot: Vec<u32>,
}

impl CustomOp for UpstreamAdvance {
    fn name(&self) -> &str {
        "upstream_advance"
    }
    fn output_shape(&self, inputs: &[(usize, usize)]) -> (usize, usize) {
        inputs[0]
    }
    fn forward(&self, inputs: &[&Array2<f32>], out: &mut Array2<f32>) {
        let l = inputs[0].ncols();
        let (pipe, outflow, order) = (flat(inputs[0]), flat(inputs[1]), flat(inputs[2]));
        let out = flat_mut(out);
        shift_rows_left(out, pipe, l);
        for (r, (next, row)) in out
            .chunks_exact_mut(l)
            .zip(pipe.chunks_exact(l))
            .enumerate()
        {
            next[0] += UpstreamLeftover.f(row[0], outflow[r]);
            next[self.slot[r] as usize] += order[r];
        }
    }
    fn backward(
        &self,
        inputs: &[&Array2<f32>],
        _: &Array2<f32>,
        g: &Array2<f32>,
        grads: &mut [Option<InputGrad>],
    ) {
        let l = inputs[0].ncols();
        let (pipe, outflow, g) = (flat(inputs[0]), flat(inputs[1]), flat(g));
        let [gp, go, gq] = grads else {
            unreachable!("upstream_advance has three inputs")
        };
        // slot 0 of the next pipeline holds the leftover; multiplying by its partials ±1 is exact
        let partials = |r: usize| UpstreamLeftover.df(pipe[r * l], outflow[r]);
        if let Some(gp) = gp.as_mut() {
            // next[j] = pipe[j + 1], plus the leftover in slot 0
            let (gp, mode) = gp.parts();
            shift_rows_left_adjoint(gp, mode, g, l);
            for (r, (gp_row, g_row)) in gp.chunks_exact_mut(l).zip(g.chunks_exact(l)).enumerate() {
                mode.put(&mut gp_row[0], g_row[0] * partials(r).0);
            }
        }
        if let Some(go) = go.as_mut() {
            let (go, mode) = go.parts();
            for (r, (d, g_row)) in go.iter_mut().zip(g.chunks_exact(l)).enumerate() {
                mode.put(d, g_row[0] * partials(r).1);
            }
        }
        if let Some(gq) = gq.as_mut() {
            let rows = g.chunks_exact(l).zip(&self.slot);
            let (gq, mode) = gq.parts();
            for (d, (g_row, &slot)) in gq.iter_mut().zip(rows) {
                mode.put(d, g_row[slot as usize]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Split;
    use crate::scenario::ScenarioGenerator;
    use crate::settings::{list_settings, setting};
    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    /// The branch-free partials, on each side of the kink, at the kink and at NaN: the cost mode
    /// gives the kink 0, the profit mode's `min(on, d)` splits it (and NaN) half and half, lost
    /// sales pass the gradient only while stock is left over, and the masks give `+0`, never `−0`
    /// (the zeros the branches gave before).
    #[test]
    fn store_partials_on_each_side_of_the_kink() {
        let (h, p) = (1.5, 9.0);
        let cost = |on, d| CostMode::new(h, p).df(on, d);
        let profit = |on, d| ProfitMode::new(h, p).df(on, d);
        assert_eq!(cost(5.0, 3.0), (h, -h));
        assert_eq!(cost(3.0, 5.0), (-p, p));
        assert_eq!(cost(4.0, 4.0), (0.0, 0.0));
        assert_eq!(cost(f32::NAN, 4.0), (0.0, 0.0));
        assert_eq!(profit(5.0, 3.0), (h, -h - p));
        assert_eq!(profit(3.0, 5.0), (-p, 0.0));
        assert_eq!(profit(4.0, 4.0), (-0.5 * p, -0.5 * p));
        assert_eq!(profit(4.0, f32::NAN), (-0.5 * p, -0.5 * p));
        let lost = |on, d| LostSales.df(on, d);
        assert_eq!(lost(5.0, 3.0), (1.0, -1.0));
        assert_eq!(lost(3.0, 5.0), (0.0, 0.0));
        assert_eq!(lost(4.0, 4.0), (0.0, 0.0));
        assert_eq!(Backlogging.df(3.0, 5.0), (1.0, -1.0));
        for (a, b) in [
            cost(4.0, 4.0),
            cost(5.0, 3.0),
            lost(3.0, 5.0),
            lost(4.0, 4.0),
        ] {
            assert!(a.is_sign_positive() || a != 0.0, "−0 in {a}");
            assert!(b.is_sign_positive() || b != 0.0, "−0 in {b}");
        }
    }

    /// Writing against adding: buffers to be written, full of NaN, must come out equal to a
    /// backward pass added into zeros, and existing adjoints must come out equal to
    /// `adjoint + that pass`.
    fn check_write_and_add(op: &dyn CustomOp, inputs: &[Array2<f32>], rng: &mut Pcg64Mcg) {
        let views: Vec<&Array2<f32>> = inputs.iter().collect();
        let shapes: Vec<(usize, usize)> = inputs.iter().map(|a| a.dim()).collect();
        let mut output = Array2::zeros(op.output_shape(&shapes));
        op.forward(&views, &mut output);
        let g = output.mapv(|_| rng.random_range(-1.0..1.0f32));
        let mut reference: Vec<Option<InputGrad>> = shapes
            .iter()
            .map(|&s| Some(InputGrad::add(Array2::zeros(s))))
            .collect();
        op.backward(&views, &output, &g, &mut reference);
        let existing: Vec<Array2<f32>> = shapes
            .iter()
            .map(|&s| Array2::from_shape_simple_fn(s, || rng.random_range(-1.0..1.0f32)))
            .collect();
        for fresh in [true, false] {
            let mut grads: Vec<Option<InputGrad>> = existing
                .iter()
                .map(|e| {
                    Some(if fresh {
                        InputGrad::write(e.mapv(|_| f32::NAN))
                    } else {
                        InputGrad::add(e.clone())
                    })
                })
                .collect();
            op.backward(&views, &output, &g, &mut grads);
            for (k, (got, want)) in grads.iter().zip(&reference).enumerate() {
                let (got, want) = (got.as_ref().unwrap(), want.as_ref().unwrap());
                let (got, want) = (got.buffer(), want.buffer());
                let want = if fresh {
                    want.clone()
                } else {
                    want + &existing[k]
                };
                assert_eq!(got, &want, "{}: input {k}, fresh {fresh}", op.name());
            }
        }
    }

    /// The uniform-slot loops of `StoreAdvance` give the bits of the general ones, forward and
    /// backward (fresh and accumulated adjoints), for both unmet-demand rules and every slot.
    #[test]
    fn store_advance_uniform_slot_has_the_bits_of_the_general_loops() {
        let mut rng = Pcg64Mcg::seed_from_u64(11);
        let (rows, l) = (37, 4);
        let mut random = |cols: usize| {
            Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-2.0..8.0f32))
        };
        let (pipe, demand, received, g) = (random(l), random(1), random(1), random(l));
        let starts = [random(l), random(1), random(1)];
        let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for unmet in [UnmetDemand::Lost, UnmetDemand::Backlogged] {
            for slot in 0..l as u32 {
                let fast = StoreAdvance::new(unmet, vec![slot; rows], vec![true; rows], 1);
                assert_eq!(fast.uniform_slot, Some(slot as usize));
                let general = StoreAdvance {
                    uniform_slot: None,
                    ..StoreAdvance::new(unmet, vec![slot; rows], vec![true; rows], 1)
                };
                let inputs = [&pipe, &demand, &received];
                let (mut a, mut b) = (Array2::zeros((rows, l)), Array2::zeros((rows, l)));
                fast.forward(&inputs, &mut a);
                general.forward(&inputs, &mut b);
                assert_eq!(bits(&a), bits(&b), "forward, {unmet:?}, slot {slot}");
                for fresh in [true, false] {
                    let grads = || -> Vec<Option<InputGrad>> {
                        let grad = if fresh {
                            InputGrad::write
                        } else {
                            InputGrad::add
                        };
                        starts.iter().map(|x| Some(grad(x.clone()))).collect()
                    };
                    let (mut ga, mut gb) = (grads(), grads());
                    fast.backward(&inputs, &a, &g, &mut ga);
                    general.backward(&inputs, &b, &g, &mut gb);
                    for (x, y) in ga.iter().zip(&gb) {
                        let (x, y) = (x.as_ref().unwrap(), y.as_ref().unwrap());
                        let (x, y) = (x.buffer(), y.buffer());
                        assert_eq!(bits(x), bits(y), "backward, {unmet:?}, slot {slot}");
                    }
                }
            }
        }
        // a lead time that differs between rows, or a non-edge, takes the general loops
        let mixed = StoreAdvance::new(UnmetDemand::Lost, vec![3, 2], vec![true; 2], 1);
        assert_eq!(mixed.uniform_slot, None);
        let gap = StoreAdvance::new(UnmetDemand::Lost, vec![3, 3], vec![true, false], 1);
        assert_eq!(gap.uniform_slot, None);
        let two = StoreAdvance::new(UnmetDemand::Lost, vec![3; 4], vec![true; 4], 2);
        assert_eq!(two.uniform_slot, None);
    }

    #[test]
    fn writing_matches_adding_on_every_setting() {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        for info in list_settings() {
            let setting = setting(info.name).unwrap();
            let sc = ScenarioGenerator::new(&setting, Split::Train)
                .unwrap()
                .generate(0..3, 2);
            let st = &sc.statics;
            let d = TapeDynamics::new(st);
            let mut random = |rows: usize, cols: usize| {
                Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-2.0..8.0f32))
            };
            let (rs, rw, re) = (
                st.n_samples * st.n_stores,
                st.n_samples * st.n_warehouses,
                st.n_samples * st.n_echelons,
            );
            let m = st.n_sources();
            let store = random(rs, sc.initial.store.ncols());
            let demand = random(rs, 1);
            // shipments only on edges, as the step requires
            let received = random(rs, m) * &st.lead_time.mapv(|lt| (lt > 0) as u8 as f32);
            let mut cases: Vec<(&dyn CustomOp, Vec<Array2<f32>>)> = vec![
                (&*d.store_cost, vec![store.clone(), demand.clone()]),
                (&*d.store_advance, vec![store, demand, received.clone()]),
            ];
            let warehouse = (rw > 0).then(|| random(rw, sc.initial.warehouse.ncols()));
            let echelon = (re > 0).then(|| random(re, sc.initial.echelon.ncols()));
            if let Some(wh) = &warehouse {
                let requests = random(rs, m).mapv(f32::abs) * 3.0;
                cases.push((&*d.store_ration, vec![requests, wh.clone()]));
                let outflow = random(rw, 1);
                let order = random(rw, 1);
                let op = d.warehouse_outflow.as_deref().unwrap();
                cases.push((op, vec![received.clone()]));
                let parts = vec![wh.clone(), outflow, order];
                cases.push((d.warehouse_cost.as_deref().unwrap(), parts.clone()));
                cases.push((d.warehouse_advance.as_deref().unwrap(), parts));
            }
            if let (Some(ech), Some(_)) = (&echelon, &warehouse) {
                let wh_order = random(rw, 1).mapv(f32::abs);
                let ech_order = random(re, 1).mapv(f32::abs);
                let op = d.warehouse_ration.as_deref().unwrap();
                cases.push((op, vec![wh_order.clone(), ech.clone()]));
                let op = d.echelon_ration.as_deref().unwrap();
                cases.push((op, vec![ech_order.clone(), ech.clone()]));
                let op = d.echelon_outflow.as_deref().unwrap();
                cases.push((op, vec![ech_order.clone(), wh_order]));
                let parts = vec![ech.clone(), random(re, 1), ech_order];
                cases.push((d.echelon_cost.as_deref().unwrap(), parts.clone()));
                cases.push((d.echelon_advance.as_deref().unwrap(), parts));
            }
            for (op, inputs) in &cases {
                check_write_and_add(*op, inputs, &mut rng);
            }
        }
    }
}
