//! The period dynamics, tape-free: the per-row formulas with their partial derivatives, and the
//! batched step built on them and on the batch's [`Topology`].
//!
//! Each per-row formula is a [`Formula`]: its value `f` and its partials `df`, declared together.
//! The tape-free step calls `f`; the fused tape ops ([`crate::fused`]) call the same `f` forward
//! and `df` in their hand-written vector–Jacobian products, so values on and off the tape come
//! from one definition. Only rationing, which couples the requests on one supplier, keeps a
//! hand-written derivative (the fused `Ration` op).
//!
//! Order of events in period `t` (spec §1.3, with our fixes):
//! 1. *Rationing factors.* Each warehouse compares the shipments its stores ask for with its
//!    on-hand; each echelon compares the order of the node it feeds with its on-hand. If more is
//!    asked than is on hand, every request is scaled by `k = min(1, on_hand / requested)` —
//!    upstream stock never goes negative, and downstream receives the rationed quantity.
//! 2. *Stores.* `on = pipeline[0]`; cost on `(on, d)`; leftover `on − d` (backlog) or
//!    `max(on − d, 0)` (lost); the pipeline advances and every (rationed) shipment with lead time
//!    `ℓ` is added to slot `ℓ − 1`.
//! 3. *Warehouses.* leftover = on − shipped; cost `h_w·max(leftover, 0)` + edge cost per unit
//!    received; pipeline advances, the (rationed) order lands `ℓ_w` periods later.
//! 4. *Echelons.* Echelon `i` ships echelon `i + 1`'s order (the last one ships the warehouses'
//!    orders); same cost and pipeline rule; echelon 0 orders from the unlimited outside supplier.
//!
//! The step validates its inputs and returns a [`StepError`] instead of writing out of place:
//! a non-zero shipment on a (store, warehouse) pair that is not an edge is an error
//! ([`Topology::validate_actions`], the one validation of both paths).

use ndarray::Array2;

use crate::config::{Objective, UnmetDemand};
use crate::state::{Actions, State, Statics};
use crate::topology::{OUTSIDE_SUPPLIER, Requests, Topology};

// ---------------------------------------------------------------------------------------------
// Scalar formulas, each with its partial derivatives
// ---------------------------------------------------------------------------------------------

/// A per-row formula of two scalars declared together with its partial derivatives (dfdx's
/// `f` / `df` pairs). The tape-free step calls `f`; the fused ops call `f` forward and `df` in
/// their vector–Jacobian products. Implementors are small `Copy` values holding the row's
/// parameters (or nothing), so loops generic over them are monomorphised: no dispatch per row.
///
/// At a kink `df` follows the engine: `max(x, 0)` passes no gradient at `x = 0`; `min(x, y)`
/// splits a tie half and half. Partials that depend on a comparison are computed by masking
/// ([`select_or_zero`]) rather than branching.
pub trait Formula: Copy {
    /// The value at `(x, y)`.
    fn f(self, x: f32, y: f32) -> f32;
    /// `(∂f/∂x, ∂f/∂y)` at `(x, y)`.
    fn df(self, x: f32, y: f32) -> (f32, f32);
}

/// A store-cost formula of `(on_hand, demand)`, one per [`Objective`], built from a row's holding
/// and underage (or margin) cost.
pub trait StoreCostFormula: Formula {
    /// The formula of a row with these costs.
    fn new(holding: f32, underage: f32) -> Self;
}

/// A leftover formula of `(on_hand, demand)`, one per [`UnmetDemand`] rule.
pub trait LeftoverFormula: Formula + Default {}

/// Store cost in cost mode (lost and backlogged alike): `p·max(d − on, 0) + h·max(on − d, 0)`.
/// With backlog, `on` may be negative and the carried backlog is charged again.
#[derive(Clone, Copy, Debug)]
pub struct CostMode {
    /// `h`.
    pub holding: f32,
    /// `p`.
    pub underage: f32,
}

impl Formula for CostMode {
    #[inline(always)]
    fn f(self, on_hand: f32, demand: f32) -> f32 {
        let post = on_hand - demand;
        self.underage * (-post).max(0.0) + self.holding * post.max(0.0)
    }
    /// `(h·[on > d] − p·[on < d], p·[on < d] − h·[on > d])`: 0 at the kink `on == d`.
    #[inline(always)]
    fn df(self, on: f32, d: f32) -> (f32, f32) {
        let over = select_or_zero(on > d, self.holding);
        let under = select_or_zero(on < d, self.underage);
        (over - under, under - over)
    }
}

impl StoreCostFormula for CostMode {
    #[inline(always)]
    fn new(holding: f32, underage: f32) -> CostMode {
        CostMode { holding, underage }
    }
}

/// Store cost in profit mode: `−p·min(on, d) + h·max(on − d, 0)` (`p` is the unit margin).
#[derive(Clone, Copy, Debug)]
pub struct ProfitMode {
    /// `h`.
    pub holding: f32,
    /// `p`.
    pub margin: f32,
}

impl Formula for ProfitMode {
    #[inline(always)]
    fn f(self, on_hand: f32, demand: f32) -> f32 {
        -self.margin * on_hand.min(demand) + self.holding * (on_hand - demand).max(0.0)
    }
    /// `−p·min(on, d)`: the smaller argument gets the gradient, a tie (or NaN) splits it.
    #[inline(always)]
    fn df(self, on: f32, d: f32) -> (f32, f32) {
        let over = select_or_zero(on > d, self.holding);
        let (below, above) = (on < d, on > d);
        let tie = !below && !above;
        let sales_on = select_or_zero(below, 1.0) + select_or_zero(tie, 0.5);
        let sales_d = select_or_zero(above, 1.0) + select_or_zero(tie, 0.5);
        (over - self.margin * sales_on, -over - self.margin * sales_d)
    }
}

impl StoreCostFormula for ProfitMode {
    #[inline(always)]
    fn new(holding: f32, margin: f32) -> ProfitMode {
        ProfitMode { holding, margin }
    }
}

/// Leftover on-hand with lost sales: `max(on − d, 0)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LostSales;

impl Formula for LostSales {
    #[inline(always)]
    fn f(self, on_hand: f32, demand: f32) -> f32 {
        (on_hand - demand).max(0.0)
    }
    /// `([on > d], −[on > d])`: 0 at the kink.
    #[inline(always)]
    fn df(self, on: f32, d: f32) -> (f32, f32) {
        (select_or_zero(on > d, 1.0), select_or_zero(on > d, -1.0))
    }
}

impl LeftoverFormula for LostSales {}

/// Leftover on-hand with backlogging: `on − d` (negative = backlog).
#[derive(Clone, Copy, Debug, Default)]
pub struct Backlogging;

impl Formula for Backlogging {
    #[inline(always)]
    fn f(self, on_hand: f32, demand: f32) -> f32 {
        on_hand - demand
    }
    #[inline(always)]
    fn df(self, _: f32, _: f32) -> (f32, f32) {
        (1.0, -1.0)
    }
}

impl LeftoverFormula for Backlogging {}

/// Leftover of an upstream node: `on − shipped`, where `shipped` is what left it this period
/// (tape-free: [`shipped`] of the request; on the tape: the sum of the rationed shipments).
#[derive(Clone, Copy, Debug, Default)]
pub struct UpstreamLeftover;

impl Formula for UpstreamLeftover {
    #[inline(always)]
    fn f(self, on_hand: f32, shipped: f32) -> f32 {
        on_hand - shipped
    }
    #[inline(always)]
    fn df(self, _: f32, _: f32) -> (f32, f32) {
        (1.0, -1.0)
    }
}

/// Cost of an upstream node of `(leftover, order)`: `h·max(leftover, 0) + c·order`
/// ([`holding_cost`] plus [`edge_cost`]).
#[derive(Clone, Copy, Debug)]
pub struct UpstreamCostRate {
    /// `h`.
    pub holding: f32,
    /// `c`, per unit ordered.
    pub edge_cost: f32,
}

impl Formula for UpstreamCostRate {
    #[inline(always)]
    fn f(self, leftover: f32, order: f32) -> f32 {
        holding_cost(self.holding, leftover) + edge_cost(self.edge_cost, order)
    }
    /// `(h·[leftover > 0], c)`: 0 at the kink.
    #[inline(always)]
    fn df(self, leftover: f32, _: f32) -> (f32, f32) {
        (select_or_zero(leftover > 0.0, self.holding), self.edge_cost)
    }
}

/// `v` if `take`, else `+0.0`, by masking the bits rather than branching: the comparisons in the
/// partials depend on the data (on-hand against demand), so a branch would be mispredicted about
/// as often as taken, and the loops over them run once per row and period.
#[inline(always)]
pub fn select_or_zero(take: bool, v: f32) -> f32 {
    f32::from_bits(v.to_bits() & u32::from(take).wrapping_neg())
}

/// [`CostMode`]'s `f`: `p·max(d − on, 0) + h·max(on − d, 0)`.
#[inline]
pub fn store_cost(on_hand: f32, demand: f32, holding: f32, underage: f32) -> f32 {
    CostMode::new(holding, underage).f(on_hand, demand)
}

/// [`ProfitMode`]'s `f`: `−p·min(on, d) + h·max(on − d, 0)`.
#[inline]
pub fn store_profit_cost(on_hand: f32, demand: f32, holding: f32, margin: f32) -> f32 {
    ProfitMode::new(holding, margin).f(on_hand, demand)
}

/// [`LostSales`]' `f`: `max(on − d, 0)`.
#[inline]
pub fn leftover_lost(on_hand: f32, demand: f32) -> f32 {
    LostSales.f(on_hand, demand)
}

/// [`Backlogging`]'s `f`: `on − d`.
#[inline]
pub fn leftover_backlogged(on_hand: f32, demand: f32) -> f32 {
    Backlogging.f(on_hand, demand)
}

/// Proportional rationing factor of an upstream node: `k = min(1, max(on, 0) / requested)`, and
/// `k = 1` when nothing (or a non-positive amount) is requested. Each request is multiplied by `k`.
/// Its derivative couples the requests on one supplier: the fused `Ration` op's hand-written VJP.
#[inline]
pub fn rationing_factor(on_hand: f32, requested: f32) -> f32 {
    if requested > 0.0 {
        (on_hand.max(0.0) / requested).min(1.0)
    } else {
        1.0
    }
}

/// What an upstream node ships when `requested` is asked of it under rationing:
/// `min(requested, max(on, 0))`.
#[inline]
pub fn shipped(on_hand: f32, requested: f32) -> f32 {
    requested.min(on_hand.max(0.0))
}

/// Leftover of an upstream node after shipping `requested` under rationing:
/// `on − min(requested, max(on, 0))` — exactly 0 when rationing binds, never below `min(on, 0)`.
#[inline]
pub fn upstream_leftover(on_hand: f32, requested: f32) -> f32 {
    UpstreamLeftover.f(on_hand, shipped(on_hand, requested))
}

/// Holding cost on a leftover: `h·max(leftover, 0)`.
#[inline]
pub fn holding_cost(holding: f32, leftover: f32) -> f32 {
    holding * leftover.max(0.0)
}

/// Edge (procurement) cost: `c·quantity`.
#[inline]
pub fn edge_cost(cost_per_unit: f32, quantity: f32) -> f32 {
    cost_per_unit * quantity
}

/// Advances a pipeline row by one period in place: `new[0] = leftover + row[1]`,
/// `new[j] = row[j + 1]`, `new[L − 1] = 0`. Requires `row.len() ≥ 2`.
#[inline]
pub fn advance_pipeline(row: &mut [f32], leftover: f32) {
    // An explicit element loop: pipelines are short, and a `memmove` call would cost more.
    let last = row.len() - 1;
    let mut next = row[last];
    for j in (0..last).rev() {
        std::mem::swap(&mut row[j], &mut next);
    }
    row[0] += leftover;
    row[last] = 0.0;
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a step was refused. The state is left unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StepError {
    /// An array has the wrong shape or is not in standard (row-major) layout.
    #[error("{what} has shape {found:?}, expected {expected:?} (standard row-major layout)")]
    Shape {
        /// Which array.
        what: &'static str,
        /// Expected `(rows, cols)`.
        expected: (usize, usize),
        /// Actual `(rows, cols)`.
        found: (usize, usize),
    },
    /// A lead time is 0 where an edge needs one, or longer than the pipeline.
    #[error(
        "{what} {index}: lead time {lead_time} is not allowed; allowed: 1 ≤ lead time ≤ pipeline length {pipeline}"
    )]
    LeadTime {
        /// Which lead time.
        what: &'static str,
        /// Row or node index.
        index: usize,
        /// The lead time.
        lead_time: u32,
        /// Pipeline length.
        pipeline: usize,
    },
    /// A pipeline is shorter than 2.
    #[error("{what} pipeline length is {length}; allowed: ≥ 2")]
    PipelineTooShort {
        /// Which pipeline.
        what: &'static str,
        /// Its length.
        length: usize,
    },
    /// A store shipment on a (store, warehouse) pair that is not an edge.
    #[error(
        "sample {sample}: store {store} asks {quantity} from warehouse {warehouse}, which does \
         not ship to it; shipments on non-edges must be exactly 0"
    )]
    NonEdgeShipment {
        /// Sample within the batch.
        sample: usize,
        /// Store.
        store: usize,
        /// Warehouse.
        warehouse: usize,
        /// The offending quantity.
        quantity: f32,
    },
    /// A negative quantity requested from an upstream node (warehouse or echelon).
    #[error(
        "sample {sample}: {what} {node} has a negative quantity {quantity}; requests from a \
         warehouse or echelon must be ≥ 0"
    )]
    NegativeShipment {
        /// `store action` / `warehouse order` / `echelon order`.
        what: &'static str,
        /// Sample within the batch.
        sample: usize,
        /// Row within the sample (store, warehouse or echelon index).
        node: usize,
        /// The offending quantity.
        quantity: f32,
    },
    /// An action is NaN or infinite.
    #[error("{what} row {row}: action {value} is not finite")]
    NonFinite {
        /// Which action array.
        what: &'static str,
        /// Row.
        row: usize,
        /// Value.
        value: f32,
    },
}

// ---------------------------------------------------------------------------------------------
// Step
// ---------------------------------------------------------------------------------------------

/// The tape-free dynamics of one batch: its [`Topology`] built once from the statics, then
/// stepped period by period (the evaluator builds one per shard).
#[derive(Debug)]
pub struct Dynamics<'a> {
    statics: &'a Statics,
    topology: Topology,
}

impl<'a> Dynamics<'a> {
    /// Builds the topology of the batch `statics` describes (never panics; malformed statics are
    /// reported by [`Dynamics::step`]).
    pub fn new(statics: &'a Statics) -> Dynamics<'a> {
        Dynamics {
            statics,
            topology: Topology::new(statics),
        }
    }

    /// The supply network the steps use.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// Simulates one period for every sample of the batch: updates `state` in place and writes
    /// each sample's cost of the period (stores + warehouses + echelons) into `cost_per_sample`
    /// (length `B`). `demand` is this period's demand, one entry per store row (`b·S + s`).
    pub fn step(
        &self,
        state: &mut State,
        actions: &Actions,
        demand: &[f32],
        cost_per_sample: &mut [f32],
    ) -> Result<(), StepError> {
        let (statics, topology) = (self.statics, &self.topology);
        check_inputs(state, actions, demand, statics, cost_per_sample.len())?;
        // standard layout: checked by `check_inputs`
        fn flat(a: &Array2<f32>) -> &[f32] {
            a.as_slice().expect("actions are in standard layout")
        }
        let (ship, orders, echelon_orders) = (
            flat(&actions.store),
            flat(&actions.warehouse),
            flat(&actions.echelon),
        );
        topology.validate_actions(ship, orders, echelon_orders)?;
        let (w, e) = (statics.n_warehouses, statics.n_echelons);

        // 1. Requests and rationing factors (from the on-hand at the start of the period).
        let warehouse_requested = topology.warehouse_requests(ship);
        let warehouse_factor = rationing_factors(&state.warehouse, &warehouse_requested);
        let echelon_requested = topology.echelon_requests(orders, echelon_orders);
        let echelon_factor = rationing_factors(&state.echelon, &echelon_requested);

        // 2. Stores: one loop per objective and unmet-demand rule.
        let stores = StoreRows {
            requests: &topology.store,
            factor: (w > 0).then_some(warehouse_factor.as_slice()),
            ship,
            demand,
            statics,
        };
        let pipeline = &mut state.store;
        match (statics.objective, statics.unmet_demand) {
            (Objective::Cost, UnmetDemand::Lost) => {
                stores.step::<CostMode, LostSales>(pipeline, cost_per_sample)
            }
            (Objective::Cost, UnmetDemand::Backlogged) => {
                stores.step::<CostMode, Backlogging>(pipeline, cost_per_sample)
            }
            (Objective::Profit, UnmetDemand::Lost) => {
                stores.step::<ProfitMode, LostSales>(pipeline, cost_per_sample)
            }
            (Objective::Profit, UnmetDemand::Backlogged) => {
                stores.step::<ProfitMode, Backlogging>(pipeline, cost_per_sample)
            }
        }

        // 3. Warehouses: their orders are rationed by the last echelon, if any.
        if w > 0 {
            step_upstream(
                &mut state.warehouse,
                &warehouse_requested,
                orders,
                &topology.warehouse,
                &echelon_factor,
                &statics.warehouse_holding_cost,
                Some(&statics.warehouse_edge_cost),
                cost_per_sample,
            );
        }

        // 4. Echelons: echelon i > 0 is supplied by echelon i − 1.
        if e > 0 {
            step_upstream(
                &mut state.echelon,
                &echelon_requested,
                echelon_orders,
                &topology.echelon,
                &echelon_factor,
                &statics.echelon_holding_cost,
                None,
                cost_per_sample,
            );
        }
        Ok(())
    }
}

/// Simulates one period for every sample of the batch ([`Dynamics::step`] on a topology built
/// for this call; a rollout builds its [`Dynamics`] once).
pub fn step(
    state: &mut State,
    actions: &Actions,
    demand: &[f32],
    statics: &Statics,
    cost_per_sample: &mut [f32],
) -> Result<(), StepError> {
    Dynamics::new(statics).step(state, actions, demand, cost_per_sample)
}

/// Rationing factor of every upstream row: `rationing_factor(pipeline[r, 0], requested[r])`.
/// Empty when there are no rows (the pipeline may then have no columns).
pub fn rationing_factors(pipeline: &Array2<f32>, requested: &[f32]) -> Vec<f32> {
    pipeline
        .rows()
        .into_iter()
        .zip(requested)
        .map(|(row, &req)| rationing_factor(row[0], req))
        .collect()
}

/// Total shipment requested from each warehouse, `(B·W)`: `Σ_s actions.store[b·S + s, w]`
/// ([`Topology::warehouse_requests`] on a topology built for this call).
pub fn warehouse_requests(actions: &Actions, statics: &Statics) -> Vec<f32> {
    let ship = actions.store.as_standard_layout();
    Topology::new(statics).warehouse_requests(ship.as_slice().expect("standard layout"))
}

/// The store rows of a step: what they ship and sell, and on what supply.
struct StoreRows<'s> {
    requests: &'s Requests,
    /// The rationing factor of each supplier row (`None`: every request is on the outside
    /// supplier, which delivers in full).
    factor: Option<&'s [f32]>,
    ship: &'s [f32],
    demand: &'s [f32],
    statics: &'s Statics,
}

impl StoreRows<'_> {
    /// Store part of the step: per row, the cost `C` and leftover `U` of `(on-hand, demand)`,
    /// the pipeline advanced, each (rationed) shipment added at its slot. Writes each sample's
    /// store cost into `cost_per_sample` (overwriting).
    fn step<C: StoreCostFormula, U: LeftoverFormula>(
        &self,
        pipeline: &mut Array2<f32>,
        cost_per_sample: &mut [f32],
    ) {
        let (s, sources) = (self.statics.n_stores, self.requests.per_row);
        let length = pipeline.ncols();
        let pipe = pipeline
            .as_slice_mut()
            .expect("the store pipeline is in standard layout");
        let holding = self
            .statics
            .holding_cost
            .as_slice()
            .expect("standard layout");
        let underage = self
            .statics
            .underage_cost
            .as_slice()
            .expect("standard layout");
        let requests = (self.ship.chunks_exact(sources))
            .zip(self.requests.slot.chunks_exact(sources))
            .zip(self.requests.edge.chunks_exact(sources))
            .zip(self.requests.supplier.chunks_exact(sources));
        // One pass over the rows (sample-major); each sample's stores are the next `s` rows.
        let mut rows = pipe
            .chunks_exact_mut(length)
            .zip(requests)
            .zip(self.demand.iter().zip(holding.iter().zip(underage)));
        for cost_out in cost_per_sample.iter_mut() {
            let mut cost = 0.0f32;
            for ((row, (((ship_row, slot_row), edge_row), supplier_row)), (&d, (&h, &p))) in
                rows.by_ref().take(s)
            {
                let on = row[0];
                cost += C::new(h, p).f(on, d);
                let leftover = U::default().f(on, d);
                advance_pipeline(row, leftover);
                let row_requests = ship_row
                    .iter()
                    .zip(slot_row)
                    .zip(edge_row)
                    .zip(supplier_row);
                for (((&q, &slot), &edge), &supplier) in row_requests {
                    if !edge {
                        continue; // validated to carry exactly 0
                    }
                    let delivered = match self.factor {
                        None => q,
                        Some(f) => q * f[supplier as usize],
                    };
                    row[slot as usize] += delivered;
                }
            }
            *cost_out = cost;
        }
    }
}

/// Warehouse or echelon part of the step. `requested` is what each row is asked to ship (see
/// [`Topology::warehouse_requests`], [`Topology::echelon_requests`]); `factor` the rationing
/// factor of each echelon row, which delivers the orders drawing on it. Adds the holding cost —
/// and, with `edge_cost`, the cost of the delivered order — to `cost_per_sample`.
#[allow(clippy::too_many_arguments)]
fn step_upstream(
    pipeline: &mut Array2<f32>,
    requested: &[f32],
    orders: &[f32],
    requests: &Requests,
    factor: &[f32],
    holding: &[f32],
    edge_cost: Option<&[f32]>,
    cost_per_sample: &mut [f32],
) {
    let n = requests.per_sample;
    for (r, mut row) in pipeline.rows_mut().into_iter().enumerate() {
        let k = r % n;
        let row = row
            .as_slice_mut()
            .expect("upstream pipelines are in standard layout");
        let leftover = upstream_leftover(row[0], requested[r]);
        let supplier = requests.supplier[r];
        let delivered = if supplier == OUTSIDE_SUPPLIER {
            orders[r]
        } else {
            orders[r] * factor[supplier as usize]
        };
        cost_per_sample[r / n] += match edge_cost {
            Some(c) => UpstreamCostRate {
                holding: holding[k],
                edge_cost: c[k],
            }
            .f(leftover, delivered),
            None => holding_cost(holding[k], leftover),
        };
        advance_pipeline(row, leftover);
        row[requests.slot[r] as usize] += delivered;
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

fn check_shape<T>(
    what: &'static str,
    array: &Array2<T>,
    expected: (usize, usize),
) -> Result<(), StepError> {
    if array.dim() != expected || !array.is_standard_layout() {
        return Err(StepError::Shape {
            what,
            expected,
            found: array.dim(),
        });
    }
    Ok(())
}

fn check_len(what: &'static str, len: usize, expected: usize) -> Result<(), StepError> {
    if len != expected {
        return Err(StepError::Shape {
            what,
            expected: (expected, 1),
            found: (len, 1),
        });
    }
    Ok(())
}

/// Checks shapes and layouts of everything `step` reads, and that every lead time fits its
/// pipeline (1 ≤ ℓ ≤ L on edges; store lead time 0 marks a non-edge and needs `W ≥ 1`).
pub fn check_inputs(
    state: &State,
    actions: &Actions,
    demand: &[f32],
    statics: &Statics,
    n_costs: usize,
) -> Result<(), StepError> {
    let (b, s, w, e) = (
        statics.n_samples,
        statics.n_stores,
        statics.n_warehouses,
        statics.n_echelons,
    );
    let sources = statics.n_sources();
    let (ls, lw, le) = (
        state.store.ncols(),
        state.warehouse.ncols(),
        state.echelon.ncols(),
    );
    check_shape("state.store", &state.store, (b * s, ls))?;
    check_shape("state.warehouse", &state.warehouse, (b * w, lw))?;
    check_shape("state.echelon", &state.echelon, (b * e, le))?;
    check_shape("actions.store", &actions.store, (b * s, sources))?;
    check_shape("actions.warehouse", &actions.warehouse, (b * w, 1))?;
    check_shape("actions.echelon", &actions.echelon, (b * e, 1))?;
    check_shape("statics.lead_time", &statics.lead_time, (b * s, sources))?;
    check_len("demand", demand.len(), b * s)?;
    check_len("cost_per_sample", n_costs, b)?;
    for (what, array) in [
        ("statics.holding_cost", &statics.holding_cost),
        ("statics.underage_cost", &statics.underage_cost),
    ] {
        check_len(what, array.len(), b * s)?;
        if !array.is_standard_layout() {
            return Err(StepError::Shape {
                what,
                expected: (b * s, 1),
                found: (array.len(), 1),
            });
        }
    }
    check_len(
        "statics.warehouse_holding_cost",
        statics.warehouse_holding_cost.len(),
        w,
    )?;
    check_len(
        "statics.warehouse_lead_time",
        statics.warehouse_lead_time.len(),
        w,
    )?;
    check_len(
        "statics.warehouse_edge_cost",
        statics.warehouse_edge_cost.len(),
        w,
    )?;
    check_len(
        "statics.echelon_holding_cost",
        statics.echelon_holding_cost.len(),
        e,
    )?;
    check_len(
        "statics.echelon_lead_time",
        statics.echelon_lead_time.len(),
        e,
    )?;
    for (what, length, present) in [
        ("store", ls, true),
        ("warehouse", lw, w > 0),
        ("echelon", le, e > 0),
    ] {
        if present && length < 2 {
            return Err(StepError::PipelineTooShort { what, length });
        }
    }
    let min_lead = if w == 0 { 1 } else { 0 };
    let bad_lead = |lt: &u32| *lt as usize > ls || *lt < min_lead;
    if statics.lead_time.iter().any(bad_lead) {
        let position = statics.lead_time.iter().position(bad_lead).unwrap_or(0);
        return Err(StepError::LeadTime {
            what: "store row",
            index: position / sources,
            lead_time: statics.lead_time.iter().nth(position).copied().unwrap_or(0),
            pipeline: ls,
        });
    }
    for (what, lead_times, length) in [
        ("warehouse", &statics.warehouse_lead_time, lw),
        ("echelon", &statics.echelon_lead_time, le),
    ] {
        for (index, &lt) in lead_times.iter().enumerate() {
            if lt == 0 || lt as usize > length {
                return Err(StepError::LeadTime {
                    what,
                    index,
                    lead_time: lt,
                    pipeline: length,
                });
            }
        }
    }
    Ok(())
}
