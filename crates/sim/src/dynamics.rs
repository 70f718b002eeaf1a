//! The period dynamics, tape-free: one set of scalar formulas and the batched step built on them.
//!
//! The scalar formulas (`store_cost`, `leftover_lost`, `rationing_factor`, …) are small pure
//! `#[inline]` functions; the on-tape fused ops reuse exactly these in their hand-written
//! vector–Jacobian products, so forward values on and off the tape agree by construction.
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
//! a non-zero shipment on a (store, warehouse) pair that is not an edge is an error.

use ndarray::Array2;

use crate::config::{Objective, UnmetDemand};
use crate::state::{Actions, State, Statics};

// ---------------------------------------------------------------------------------------------
// Scalar formulas
// ---------------------------------------------------------------------------------------------

/// Store cost in cost mode (lost and backlogged alike): `p·max(d − on, 0) + h·max(on − d, 0)`.
/// With backlog, `on` may be negative and the carried backlog is charged again.
#[inline]
pub fn store_cost(on_hand: f32, demand: f32, holding: f32, underage: f32) -> f32 {
    let post = on_hand - demand;
    underage * (-post).max(0.0) + holding * post.max(0.0)
}

/// Store cost in profit mode: `−p·min(on, d) + h·max(on − d, 0)` (`p` is the unit margin).
#[inline]
pub fn store_profit_cost(on_hand: f32, demand: f32, holding: f32, margin: f32) -> f32 {
    -margin * on_hand.min(demand) + holding * (on_hand - demand).max(0.0)
}

/// Leftover on-hand with lost sales: `max(on − d, 0)`.
#[inline]
pub fn leftover_lost(on_hand: f32, demand: f32) -> f32 {
    (on_hand - demand).max(0.0)
}

/// Leftover on-hand with backlogging: `on − d` (negative = backlog).
#[inline]
pub fn leftover_backlogged(on_hand: f32, demand: f32) -> f32 {
    on_hand - demand
}

/// Proportional rationing factor of an upstream node: `k = min(1, max(on, 0) / requested)`, and
/// `k = 1` when nothing (or a non-positive amount) is requested. Each request is multiplied by `k`.
#[inline]
pub fn rationing_factor(on_hand: f32, requested: f32) -> f32 {
    if requested > 0.0 {
        (on_hand.max(0.0) / requested).min(1.0)
    } else {
        1.0
    }
}

/// Leftover of an upstream node after shipping `requested` under rationing:
/// `on − min(requested, max(on, 0))` — exactly 0 when rationing binds, never below `min(on, 0)`.
#[inline]
pub fn upstream_leftover(on_hand: f32, requested: f32) -> f32 {
    on_hand - requested.min(on_hand.max(0.0))
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

/// Adds `quantity` ordered with lead time `lead_time ≥ 1` to an advanced pipeline row: it lands
/// in slot `lead_time − 1`, i.e. it is on hand `lead_time` periods after the order.
#[inline]
pub fn place_order(row: &mut [f32], lead_time: u32, quantity: f32) {
    row[lead_time as usize - 1] += quantity;
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

/// Simulates one period for every sample of the batch: updates `state` in place and writes each
/// sample's cost of the period (stores + warehouses + echelons) into `cost_per_sample` (length
/// `B`). `demand` is this period's demand, one entry per store row (`b·S + s`).
pub fn step(
    state: &mut State,
    actions: &Actions,
    demand: &[f32],
    statics: &Statics,
    cost_per_sample: &mut [f32],
) -> Result<(), StepError> {
    check_inputs(state, actions, demand, statics, cost_per_sample.len())?;
    validate_actions(actions, statics)?;
    let (w, e) = (statics.n_warehouses, statics.n_echelons);

    // 1. Rationing factors (from the on-hand at the start of the period).
    let warehouse_requested = warehouse_requests(actions, statics);
    let warehouse_factor = rationing_factors(&state.warehouse, &warehouse_requested);
    let echelon_requested = echelon_requests(actions, statics);
    let echelon_factor = rationing_factors(&state.echelon, &echelon_requested);

    // 2. Stores.
    let store_supply = (w > 0).then_some(warehouse_factor.as_slice());
    step_stores(
        &mut state.store,
        &actions.store,
        store_supply,
        demand,
        statics,
        cost_per_sample,
    );

    // 3. Warehouses: their orders are rationed by the last echelon, if any.
    if w > 0 {
        let supply: Option<Vec<f32>> = (e > 0).then(|| {
            (0..statics.n_samples * w)
                .map(|r| echelon_factor[(r / w) * e + e - 1])
                .collect()
        });
        step_warehouses(
            &mut state.warehouse,
            &warehouse_requested,
            &actions.warehouse,
            supply.as_deref(),
            statics,
            cost_per_sample,
        );
    }

    // 4. Echelons: echelon i > 0 is supplied by echelon i − 1.
    if e > 0 {
        let supply: Vec<f32> = (0..statics.n_samples * e)
            .map(|r| {
                if r % e == 0 {
                    1.0
                } else {
                    echelon_factor[r - 1]
                }
            })
            .collect();
        step_echelons(
            &mut state.echelon,
            &echelon_requested,
            &actions.echelon,
            &supply,
            statics,
            cost_per_sample,
        );
    }
    Ok(())
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

/// Total shipment requested from each warehouse, `(B·W)`: `Σ_s actions.store[b·S + s, w]`.
pub fn warehouse_requests(actions: &Actions, statics: &Statics) -> Vec<f32> {
    let (s, w) = (statics.n_stores, statics.n_warehouses);
    let mut requested = vec![0.0f32; statics.n_samples * w];
    if w == 0 || s == 0 {
        return requested;
    }
    let Some(ship) = actions.store.as_slice() else {
        // Non-standard layout (rejected by `check_inputs`); slow but correct.
        for (row_index, row) in actions.store.rows().into_iter().enumerate() {
            for (k, &q) in row.iter().enumerate() {
                requested[(row_index / s) * w + k] += q;
            }
        }
        return requested;
    };
    let mut rows = ship.chunks_exact(w);
    for req_b in requested.chunks_exact_mut(w) {
        for row in rows.by_ref().take(s) {
            for (r, &q) in req_b.iter_mut().zip(row) {
                *r += q;
            }
        }
    }
    requested
}

/// Quantity requested from each echelon, `(B·E)`: echelon `i < E − 1` ships echelon `i + 1`'s
/// order; the last echelon ships the sum of the warehouses' orders.
pub fn echelon_requests(actions: &Actions, statics: &Statics) -> Vec<f32> {
    let (w, e) = (statics.n_warehouses, statics.n_echelons);
    let mut requested = vec![0.0f32; statics.n_samples * e];
    if e == 0 {
        return requested;
    }
    for (b, req_b) in requested.chunks_exact_mut(e).enumerate() {
        for (i, req) in req_b[..e - 1].iter_mut().enumerate() {
            *req = actions.echelon[[b * e + i + 1, 0]];
        }
        req_b[e - 1] = (0..w).map(|k| actions.warehouse[[b * w + k, 0]]).sum();
    }
    requested
}

/// Store part of the step. `supply` gives, per `(sample, source)` (`B·W'`), the fraction of each
/// shipment that is delivered (the source's rationing factor); `None` = fully delivered (no
/// warehouse: the outside supplier is unlimited). Writes each sample's store cost into
/// `cost_per_sample` (overwriting).
///
/// # Panics
/// If an array is not in standard layout or shapes disagree; [`step`] checks all of this first
/// (see [`check_inputs`]).
pub fn step_stores(
    pipeline: &mut Array2<f32>,
    shipments: &Array2<f32>,
    supply: Option<&[f32]>,
    demand: &[f32],
    statics: &Statics,
    cost_per_sample: &mut [f32],
) {
    let s = statics.n_stores;
    let sources = statics.n_sources();
    let length = pipeline.ncols();
    let lost = statics.unmet_demand == UnmetDemand::Lost;
    let profit = statics.objective == Objective::Profit;
    let pipe = pipeline
        .as_slice_mut()
        .expect("step_stores: store pipeline must be in standard layout");
    let ship = shipments
        .as_slice()
        .expect("step_stores: store actions must be in standard layout");
    let lead = statics
        .lead_time
        .as_slice()
        .expect("step_stores: lead times must be in standard layout");
    let holding = statics.holding_cost.as_slice().expect("standard layout");
    let underage = statics.underage_cost.as_slice().expect("standard layout");

    // One pass over the rows (sample-major); each sample's stores are the next `s` rows.
    let mut rows = pipe
        .chunks_exact_mut(length)
        .zip(ship.chunks_exact(sources))
        .zip(lead.chunks_exact(sources))
        .zip(demand.iter().zip(holding.iter().zip(underage)));
    for (b, cost_out) in cost_per_sample.iter_mut().enumerate() {
        let mut cost = 0.0f32;
        for (((row, ship_row), lead_row), (&d, (&h, &p))) in rows.by_ref().take(s) {
            let on = row[0];
            cost += if profit {
                store_profit_cost(on, d, h, p)
            } else {
                store_cost(on, d, h, p)
            };
            let leftover = if lost {
                leftover_lost(on, d)
            } else {
                leftover_backlogged(on, d)
            };
            advance_pipeline(row, leftover);
            for (k, (&q, &lt)) in ship_row.iter().zip(lead_row).enumerate() {
                if lt == 0 {
                    continue; // not an edge; validated to carry exactly 0
                }
                let delivered = match supply {
                    None => q,
                    Some(f) => q * f[b * sources + k],
                };
                place_order(row, lt, delivered);
            }
        }
        *cost_out = cost;
    }
}

/// Warehouse part of the step. `requested` is the total shipment asked of each warehouse
/// (`B·W`, see [`warehouse_requests`]); `supply` the fraction of each warehouse's order that is
/// delivered (`None` = outside supplier). Adds holding and edge costs to `cost_per_sample`.
pub fn step_warehouses(
    pipeline: &mut Array2<f32>,
    requested: &[f32],
    orders: &Array2<f32>,
    supply: Option<&[f32]>,
    statics: &Statics,
    cost_per_sample: &mut [f32],
) {
    let w = statics.n_warehouses;
    for (r, mut row) in pipeline.rows_mut().into_iter().enumerate() {
        let k = r % w;
        let row = row
            .as_slice_mut()
            .expect("step_warehouses: pipeline must be in standard layout");
        let leftover = upstream_leftover(row[0], requested[r]);
        let delivered = orders[[r, 0]] * supply.map_or(1.0, |f| f[r]);
        cost_per_sample[r / w] += holding_cost(statics.warehouse_holding_cost[k], leftover)
            + edge_cost(statics.warehouse_edge_cost[k], delivered);
        advance_pipeline(row, leftover);
        place_order(row, statics.warehouse_lead_time[k], delivered);
    }
}

/// Echelon part of the step. `requested` is what each echelon is asked to ship (`B·E`, see
/// [`echelon_requests`]); `supply` the fraction of each echelon's order that is delivered (1 for
/// echelon 0). Adds holding costs to `cost_per_sample`.
pub fn step_echelons(
    pipeline: &mut Array2<f32>,
    requested: &[f32],
    orders: &Array2<f32>,
    supply: &[f32],
    statics: &Statics,
    cost_per_sample: &mut [f32],
) {
    let e = statics.n_echelons;
    for (r, mut row) in pipeline.rows_mut().into_iter().enumerate() {
        let i = r % e;
        let row = row
            .as_slice_mut()
            .expect("step_echelons: pipeline must be in standard layout");
        let leftover = upstream_leftover(row[0], requested[r]);
        cost_per_sample[r / e] += holding_cost(statics.echelon_holding_cost[i], leftover);
        advance_pipeline(row, leftover);
        place_order(
            row,
            statics.echelon_lead_time[i],
            orders[[r, 0]] * supply[r],
        );
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

/// Checks the actions against the network: finite; exactly 0 on non-edges; non-negative where
/// they draw on a warehouse or an echelon (orders from the outside supplier may be negative).
pub fn validate_actions(actions: &Actions, statics: &Statics) -> Result<(), StepError> {
    let (s, w, e) = (statics.n_stores, statics.n_warehouses, statics.n_echelons);
    let sources = statics.n_sources();
    for (what, array) in [
        ("actions.store", &actions.store),
        ("actions.warehouse", &actions.warehouse),
        ("actions.echelon", &actions.echelon),
    ] {
        if !array.iter().all(|v| v.is_finite()) {
            let position = array.iter().position(|v| !v.is_finite()).unwrap_or(0);
            let value = array.iter().nth(position).copied().unwrap_or(f32::NAN);
            let row = position / array.ncols().max(1);
            return Err(StepError::NonFinite { what, row, value });
        }
    }
    if w > 0 {
        // Same shapes (checked by `check_inputs`): the flat sequences line up element by element.
        let ok = |(&q, &lt): (&f32, &u32)| q >= 0.0 && (lt != 0 || q == 0.0);
        let bad = match (actions.store.as_slice(), statics.lead_time.as_slice()) {
            (Some(ship), Some(lead)) => ship.iter().zip(lead).position(|x| !ok(x)),
            _ => actions
                .store
                .iter()
                .zip(statics.lead_time.iter())
                .position(|x| !ok(x)),
        };
        if let Some(position) = bad {
            let (row, k) = (position / sources, position % sources);
            let q = actions.store[[row, k]];
            if q >= 0.0 {
                return Err(StepError::NonEdgeShipment {
                    sample: row / s,
                    store: row % s,
                    warehouse: k,
                    quantity: q,
                });
            }
            return Err(StepError::NegativeShipment {
                what: "store action",
                sample: row / s,
                node: row % s,
                quantity: q,
            });
        }
    }
    if e > 0 {
        for (r, &q) in actions.warehouse.iter().enumerate() {
            if q < 0.0 {
                return Err(StepError::NegativeShipment {
                    what: "warehouse order",
                    sample: r / w,
                    node: r % w,
                    quantity: q,
                });
            }
        }
        for (r, &q) in actions.echelon.iter().enumerate() {
            if r % e != 0 && q < 0.0 {
                return Err(StepError::NegativeShipment {
                    what: "echelon order",
                    sample: r / e,
                    node: r % e,
                    quantity: q,
                });
            }
        }
    }
    Ok(())
}
