//! Rollouts: a policy simulated over a batch of scenarios, either recorded on the tape (the HDPO
//! loss and its gradient) or tape-free through the streaming evaluator of `hdpo_sim::eval` (dev and
//! test costs). Both run the *same* policy code: evaluation uses a no-grad tape that is reset every
//! period, so memory stays flat however long the horizon.

use hdpo_autodiff::{ParamStore, Tape, Var};
use hdpo_policy::{Observation, Policy};
use hdpo_sim::dynamics::StepError;
use hdpo_sim::eval::{ActionPolicy, Observation as EvalObservation};
use hdpo_sim::scenario::Scenario;
use hdpo_sim::state::Actions;
use hdpo_sim::tape::{TapeDynamics, TapeState};
use ndarray::{Array2, s};
use std::cell::RefCell;

/// The result of a rollout on the tape.
#[derive(Clone, Copy, Debug)]
pub struct TapeRollout {
    /// `(1, 1)`: total cost over all periods divided by `normaliser` (the HDPO loss of this shard).
    pub loss: Var,
    /// Sum of costs over the reported periods (`t ≥ ignore`), all samples and nodes.
    pub reported_cost: f64,
    /// Sum of costs over all periods.
    pub total_cost: f64,
}

/// Past demands `(B·S, P)` before period `t` from a materialised trace (zeros before period 0).
pub fn past_demand_window(demand: &Array2<f32>, t: usize, p: usize) -> Array2<f32> {
    let rows = demand.nrows();
    let mut out = Array2::zeros((rows, p));
    for k in 0..p {
        // column k holds period t − p + k
        if let Some(period) = (t + k).checked_sub(p) {
            out.column_mut(k).assign(&demand.column(period));
        }
    }
    out
}

/// Records `periods` periods of `policy` on `scenario` (a batch or a shard of one) and returns the
/// loss `Σ costs / normaliser`. The gradient flows through the policy, the dynamics and the policy's
/// inputs (full back-propagation through time).
pub fn rollout_on_tape(
    tape: &mut Tape,
    policy: &Policy,
    params: &ParamStore,
    scenario: &Scenario,
    periods: usize,
    ignore_periods: usize,
    normaliser: f32,
) -> Result<TapeRollout, StepError> {
    assert!(
        periods <= scenario.periods(),
        "rollout of {periods} periods on a {}-period scenario",
        scenario.periods()
    );
    let dynamics = TapeDynamics::new(&scenario.statics);
    let mut state = TapeState::from_state(tape, &scenario.initial);
    let p = policy.shape.past_demands;
    let lookahead = policy.oracle_lookahead(
        scenario
            .statics
            .lead_time
            .iter()
            .copied()
            .max()
            .unwrap_or(1) as usize,
    );
    let mut total: Option<Var> = None;
    let (mut reported_cost, mut total_cost) = (0.0f64, 0.0f64);
    for t in 0..periods {
        let past_demands = (p > 0).then(|| {
            let window = past_demand_window(&scenario.demand, t, p);
            tape.constant(window)
        });
        let future_demand = lookahead.map(|h| {
            let end = (t + h + 1).min(scenario.periods());
            scenario.demand.slice(s![.., t..end])
        });
        let obs = Observation {
            statics: &scenario.statics,
            state,
            period: t,
            past_demands,
            future_demand,
        };
        let actions = policy.act(tape, params, &obs);
        let demand = tape.constant_from(scenario.demand.slice(s![.., t..t + 1]));
        let (next, cost) = dynamics.step(tape, &state, &actions, demand)?;
        state = next;
        let period_cost = cost.total(tape);
        let value = tape.scalar(period_cost) as f64;
        total_cost += value;
        if t >= ignore_periods {
            reported_cost += value;
        }
        total = Some(match total {
            None => period_cost,
            Some(acc) => tape.add(acc, period_cost),
        });
    }
    let total = total.expect("at least one period");
    let loss = tape.scale(total, 1.0 / normaliser);
    Ok(TapeRollout {
        loss,
        reported_cost,
        total_cost,
    })
}

thread_local! {
    /// One no-grad tape per evaluation thread, reused period after period.
    static EVAL_TAPE: RefCell<Tape> = RefCell::new(Tape::no_grad());
}

/// Runs a [`Policy`] inside the tape-free evaluator: every period the state is put on a no-grad
/// tape (reset each time, buffers recycled), the policy acts, and the action values are copied out.
pub struct PolicyEvaluator<'a> {
    /// The policy.
    pub policy: &'a Policy,
    /// Its parameters.
    pub params: &'a ParamStore,
    /// Largest store lead time (the oracle's look-ahead).
    pub max_lead_time: usize,
}

impl ActionPolicy for PolicyEvaluator<'_> {
    fn act(&self, obs: &EvalObservation<'_>, actions: &mut Actions) {
        EVAL_TAPE.with(|cell| {
            let mut tape = cell.borrow_mut();
            tape.reset();
            let state = TapeState::from_state(&mut tape, obs.state());
            let past_demands = obs.past_demands().map(|p| tape.constant_from(p.view()));
            let future_demand = obs.oracle().map(|o| o.future_demand);
            let observation = Observation {
                statics: obs.statics(),
                state,
                period: obs.period(),
                past_demands,
                future_demand,
            };
            let out = self.policy.act(&mut tape, self.params, &observation);
            actions.store.assign(tape.value(out.store));
            if let Some(w) = out.warehouse {
                actions.warehouse.assign(tape.value(w));
            }
            if let Some(e) = out.echelon {
                actions.echelon.assign(tape.value(e));
            }
        });
    }

    fn oracle_lookahead(&self) -> Option<usize> {
        self.policy.oracle_lookahead(self.max_lead_time)
    }
}
