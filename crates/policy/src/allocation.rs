//! Allocation rules at a supplying node: turn the quantities (or logits) asked for by the nodes it
//! supplies into shipments it can actually make. Shared by the warehouse MLP, the symmetry-aware net
//! and the GNN; both are differentiable compositions of tape ops.
//!
//! Both rules read the supplying node's stock through [`stock_at_least_zero`]: on the tape a
//! warehouse that ships everything it has is left with `on − Σ shipped`, which rounding can make a
//! few ulps negative (e.g. −6.8e-9); a negative stock times non-negative shares would ask for
//! negative shipments, which the simulator rejects. The clamp changes nothing (values or
//! gradients) where the stock is ≥ 0.

use hdpo_autodiff::{Tape, Var};

/// The reference's ε in the proportional rule.
pub const PROPORTIONAL_EPS: f32 = 1e-10;

/// `max(available, 0)` written as `available + relu(−available)`: the value is `available`
/// itself wherever it is ≥ 0 (adding `relu(−a) = 0` is exact) and the gradient there is exactly
/// the identity's (the relu passes no gradient at 0, so an empty warehouse — stock exactly 0 —
/// keeps its gradient, unlike `max(a, 0)`, which would split it at the tie). Below 0 the value is
/// 0 and no gradient flows. So a stock that rounding left slightly negative allocates nothing,
/// and every allocation of a non-negative stock is bit for bit what it was without the clamp.
pub fn stock_at_least_zero(tape: &mut Tape, available: Var) -> Var {
    let negated = tape.neg(available);
    let deficit = tape.relu(negated);
    tape.add(available, deficit)
}

/// Proportional allocation: `desired: (B, n)` non-negative quantities, `available: (B, 1)` stock.
/// `k = available / (Σ desired + 1e-10)`; without transshipment `k = min(k, 1)` (ship what is asked
/// if there is enough, else scale down); with transshipment `k` is not capped, so the whole stock is
/// shipped. Returns `desired · k`, with the stock read as [`stock_at_least_zero`] (so
/// non-negative `desired` give non-negative shipments).
pub fn proportional(tape: &mut Tape, desired: Var, available: Var, transshipment: bool) -> Var {
    let available = stock_at_least_zero(tape, available);
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
/// receivers times the stock are the shipments. With transshipment all stock is shipped. The stock
/// is read as [`stock_at_least_zero`], so the shipments are never negative.
pub fn softmax_keep(tape: &mut Tape, logits: Var, available: Var, transshipment: bool) -> Var {
    let available = stock_at_least_zero(tape, available);
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
