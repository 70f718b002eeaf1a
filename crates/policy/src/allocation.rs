//! Allocation rules at a supplying node: turn the quantities (or logits) asked for by the nodes it
//! supplies into shipments it can actually make. Shared by the warehouse MLP, the symmetry-aware net
//! and the GNN; both are differentiable compositions of tape ops.

use hdpo_autodiff::{Tape, Var};

/// The reference's ε in the proportional rule.
pub const PROPORTIONAL_EPS: f32 = 1e-10;

/// Proportional allocation: `desired: (B, n)` non-negative quantities, `available: (B, 1)` stock.
/// `k = available / (Σ desired + 1e-10)`; without transshipment `k = min(k, 1)` (ship what is asked
/// if there is enough, else scale down); with transshipment `k` is not capped, so the whole stock is
/// shipped. Returns `desired · k`.
pub fn proportional(tape: &mut Tape, desired: Var, available: Var, transshipment: bool) -> Var {
    let total = tape.row_sums(desired);
    let total = tape.add_scalar(total, PROPORTIONAL_EPS);
    let k = tape.div(available, total);
    let k = if transshipment {
        k
    } else {
        tape.clamp_max(k, 1.0)
    };
    tape.mul(desired, k)
}

/// Softmax allocation: `logits: (B, n)`, `available: (B, 1)`. Without transshipment a constant
/// logit 1.0 is appended (the share kept at the supplying node); the softmax shares of the `n`
/// receivers times the stock are the shipments. With transshipment all stock is shipped.
pub fn softmax_keep(tape: &mut Tape, logits: Var, available: Var, transshipment: bool) -> Var {
    let (b, n) = tape.shape(logits);
    let shares = if transshipment {
        tape.softmax_rows(logits)
    } else {
        let keep = tape.full(b, 1, 1.0);
        let all = tape.concat_cols(&[logits, keep]);
        let all = tape.softmax_rows(all);
        tape.slice_cols(all, 0, n)
    };
    tape.mul(shares, available)
}
