//! The supply network of a batch, built once from its [`Statics`] and shared by both paths of the
//! dynamics — the tape-free step ([`crate::dynamics`]) and the fused tape ops ([`crate::fused`]):
//! which supplier row every request draws on, the pipeline slot where it lands, which
//! (store, source) pairs are edges; and the one validation of a period's actions against it.
//!
//! A request is one element of the actions, flat and row-major like them, in three tiers:
//! * store requests `(B·S, W')`: row `b·S + s`, source `w` draws on warehouse row `b·W + w`
//!   (the outside supplier when `W = 0`); it is an edge when its lead time is `> 0`;
//! * warehouse orders `(B·W)`: each draws on the last echelon of its sample (the outside supplier
//!   when `E = 0`);
//! * echelon orders `(B·E)`: echelon `i > 0` draws on echelon `i − 1`, echelon 0 on the outside
//!   supplier.
//!
//! An order lands in slot `lead time − 1` of its node's next pipeline.

use crate::dynamics::StepError;
use crate::state::Statics;

/// Marks a request served by the outside supplier (unlimited, never rationed).
pub const OUTSIDE_SUPPLIER: u32 = u32::MAX;

/// Adds each `values[i]` onto `totals[supplier[i]]`, in index order, skipping
/// [`OUTSIDE_SUPPLIER`] entries: the requested total per supplier, or the units leaving it.
#[inline]
pub fn add_to_suppliers(values: &[f32], supplier: &[u32], totals: &mut [f32]) {
    for (&q, &s) in values.iter().zip(supplier) {
        if s != OUTSIDE_SUPPLIER {
            totals[s as usize] += q;
        }
    }
}

/// The requests of one tier (stores, warehouses or echelons), one entry per request.
#[derive(Clone, Debug)]
pub struct Requests {
    /// The supplier row each request draws on (a row of the next tier up), or
    /// [`OUTSIDE_SUPPLIER`]. Non-edges draw on nothing: [`OUTSIDE_SUPPLIER`].
    pub supplier: Vec<u32>,
    /// The pipeline slot where each request lands (`lead time − 1`; 0 on a non-edge).
    pub slot: Vec<u32>,
    /// Whether each request is on an edge (always, upstream).
    pub edge: Vec<bool>,
    /// Rows of the supplying tier: the length of a per-supplier vector of totals.
    pub n_suppliers: usize,
    /// Requests per row of the requesting tier (`W'` for stores, 1 upstream).
    pub per_row: usize,
    /// Rows per sample of the requesting tier (`S`, `W` or `E`).
    pub per_sample: usize,
    /// How an error names one of these requests.
    what: &'static str,
    /// Whether any request draws on a supplier (which makes a negative request an error).
    rationed: bool,
}

impl Requests {
    /// Adds every request drawing on a supplier onto that supplier's entry of `totals`
    /// (`n_suppliers` long), in request order. Requests on the outside supplier are skipped.
    #[inline]
    pub fn add_to_suppliers(&self, values: &[f32], totals: &mut [f32]) {
        add_to_suppliers(values, &self.supplier, totals);
    }

    /// Checks one tier's quantities: exactly 0 on a non-edge; non-negative where they draw on a
    /// supplier (orders from the outside supplier may be negative, e.g. returns). A non-zero
    /// quantity on a non-edge is a [`StepError::NonEdgeShipment`] whatever its sign.
    fn validate(&self, values: &[f32]) -> Result<(), StepError> {
        debug_assert_eq!(values.len(), self.edge.len(), "shapes are checked first");
        // one branch-free pass (it vectorises) that may flag too much — a negative order on the
        // outside supplier — then the exact search only when something was flagged
        let rationed = self.rationed;
        let flagged = values
            .iter()
            .zip(&self.edge)
            .fold(false, |bad, (&q, &edge)| {
                bad | (!edge & (q != 0.0)) | (rationed & (q < 0.0))
            });
        if !flagged {
            return Ok(());
        }
        for (k, (&q, &edge)) in values.iter().zip(&self.edge).enumerate() {
            let non_edge = !edge && q != 0.0;
            let negative = self.supplier[k] != OUTSIDE_SUPPLIER && q < 0.0;
            if !(non_edge || negative) {
                continue;
            }
            // an error: only now work out where it is (divisions per element cost 2 % of a
            // serial training epoch)
            let (row, source) = (k / self.per_row, k % self.per_row);
            let (sample, node) = (row / self.per_sample, row % self.per_sample);
            return Err(if non_edge {
                StepError::NonEdgeShipment {
                    sample,
                    store: node,
                    warehouse: source,
                    quantity: q,
                }
            } else {
                StepError::NegativeShipment {
                    what: self.what,
                    sample,
                    node,
                    quantity: q,
                }
            });
        }
        Ok(())
    }
}

/// The supply network of a batch: every request's supplier row, landing slot and edge flag.
#[derive(Clone, Debug)]
pub struct Topology {
    /// Store requests `(B·S·W')`.
    pub store: Requests,
    /// Warehouse orders `(B·W)`.
    pub warehouse: Requests,
    /// Echelon orders `(B·E)`.
    pub echelon: Requests,
}

impl Topology {
    /// Builds the network of the batch `statics` describes. Never panics: on statics whose
    /// arrays disagree with their counts the result is meaningless, and the step's input checks
    /// ([`crate::dynamics::check_inputs`]) report the disagreement before it is used.
    pub fn new(statics: &Statics) -> Topology {
        let (b, n_s, n_w, n_e) = (
            statics.n_samples,
            statics.n_stores,
            statics.n_warehouses,
            statics.n_echelons,
        );
        let m = statics.n_sources();
        let n = statics.lead_time.len();
        let mut store = Requests {
            supplier: Vec::with_capacity(n),
            slot: Vec::with_capacity(n),
            edge: Vec::with_capacity(n),
            n_suppliers: b * n_w,
            per_row: m,
            per_sample: n_s,
            what: "store action",
            rationed: n_w > 0,
        };
        for ((r, w), &lt) in statics.lead_time.indexed_iter() {
            let edge = lt > 0;
            store.edge.push(edge);
            store.slot.push(lt.saturating_sub(1));
            store.supplier.push(if n_w > 0 && edge {
                ((r / n_s.max(1)) * n_w + w) as u32
            } else {
                OUTSIDE_SUPPLIER
            });
        }
        let upstream = |what,
                        rows: usize,
                        per_sample: usize,
                        lead: &[u32],
                        supplier: &dyn Fn(usize) -> u32| {
            let supplier: Vec<u32> = (0..rows).map(supplier).collect();
            Requests {
                rationed: supplier.iter().any(|&s| s != OUTSIDE_SUPPLIER),
                supplier,
                slot: (0..rows)
                    .map(|r| {
                        lead.get(r % per_sample)
                            .map_or(0, |lt| lt.saturating_sub(1))
                    })
                    .collect(),
                edge: vec![true; rows],
                n_suppliers: b * n_e,
                per_row: 1,
                per_sample,
                what,
            }
        };
        // every warehouse orders from the last echelon of its sample
        let warehouse = upstream(
            "warehouse order",
            b * n_w,
            n_w,
            &statics.warehouse_lead_time,
            &|r| {
                if n_e > 0 {
                    ((r / n_w) * n_e + n_e - 1) as u32
                } else {
                    OUTSIDE_SUPPLIER
                }
            },
        );
        // echelon i > 0 orders from echelon i − 1; echelon 0 from the outside supplier
        let echelon = upstream(
            "echelon order",
            b * n_e,
            n_e,
            &statics.echelon_lead_time,
            &|r| {
                if r % n_e == 0 {
                    OUTSIDE_SUPPLIER
                } else {
                    (r - 1) as u32
                }
            },
        );
        Topology {
            store,
            warehouse,
            echelon,
        }
    }

    /// Total requested of each warehouse row `(B·W)`: the sum of the store requests drawing on it,
    /// in store order, from `+0`.
    pub fn warehouse_requests(&self, store: &[f32]) -> Vec<f32> {
        let mut requested = vec![0.0f32; self.store.n_suppliers];
        self.store.add_to_suppliers(store, &mut requested);
        requested
    }

    /// Quantity asked of each echelon row `(B·E)`: echelon `i < E − 1` is asked echelon
    /// `i + 1`'s order, the last echelon the sum of its sample's warehouse orders. The sums start
    /// from `−0`, the identity of addition, so a single order is asked exactly.
    pub fn echelon_requests(&self, warehouse: &[f32], echelon: &[f32]) -> Vec<f32> {
        let mut requested = vec![-0.0f32; self.echelon.supplier.len()];
        self.echelon.add_to_suppliers(echelon, &mut requested);
        self.warehouse.add_to_suppliers(warehouse, &mut requested);
        requested
    }

    /// Checks a period's actions (flat, row-major, shapes already checked): every quantity
    /// finite; exactly 0 on non-edges; non-negative where it draws on a warehouse or an echelon.
    /// The one validation of both paths.
    pub fn validate_actions(
        &self,
        store: &[f32],
        warehouse: &[f32],
        echelon: &[f32],
    ) -> Result<(), StepError> {
        let tiers = [
            ("actions.store", store, &self.store),
            ("actions.warehouse", warehouse, &self.warehouse),
            ("actions.echelon", echelon, &self.echelon),
        ];
        for (what, values, requests) in tiers {
            // a pass without early exit (it vectorises); the position only on an error
            if !values.iter().fold(true, |ok, v| ok & v.is_finite()) {
                let k = values
                    .iter()
                    .position(|v| !v.is_finite())
                    .expect("a non-finite value was seen");
                return Err(StepError::NonFinite {
                    what,
                    row: k / requests.per_row,
                    value: values[k],
                });
            }
        }
        for (_, values, requests) in tiers {
            requests.validate(values)?;
        }
        Ok(())
    }
}
