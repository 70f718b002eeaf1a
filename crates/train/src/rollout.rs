//! Rollouts: a policy simulated over a batch of scenarios, either recorded on the tape (the HDPO
//! loss and its gradient) or tape-free through the streaming evaluator of `hdpo_sim::eval` (dev and
//! test costs). Both run the *same* policy code: evaluation uses a no-grad tape that is reset every
//! period, so memory stays flat however long the horizon.

use crate::memo::ActionMemo;
use hdpo_autodiff::{ParamStore, Tape, Var};
use hdpo_policy::{Feature, Policy, TapeObservation};
use hdpo_sim::dynamics::StepError;
use hdpo_sim::eval::{ActionPolicy, EvalObservation};
use hdpo_sim::fused::{TapeActions, TapeDynamics, TapeState};
use hdpo_sim::scenario::Scenario;
use hdpo_sim::state::{Actions, State, Statics};
use ndarray::{Array2, s};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Past demands `(B·S, P)` before period `t` from a materialised trace and its `history` (the
/// demand observed before period 0, column `j` period `j − H`; zeros before the history).
pub fn past_demand_window(
    demand: &Array2<f32>,
    history: &Array2<f32>,
    t: usize,
    p: usize,
) -> Array2<f32> {
    let rows = demand.nrows();
    let h = history.ncols();
    let mut out = Array2::zeros((rows, p));
    for k in 0..p {
        // column k holds period t − p + k
        if let Some(period) = (t + k).checked_sub(p) {
            out.column_mut(k).assign(&demand.column(period));
        } else if let Some(j) = (t + k + h).checked_sub(p) {
            out.column_mut(k).assign(&history.column(j));
        }
    }
    out
}

/// Which periods a tape rollout simulates, reports and puts in the loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RolloutPeriods {
    /// Periods simulated.
    pub periods: usize,
    /// Warm-up periods left out of the reported cost.
    pub ignore: usize,
    /// First period whose cost enters the loss (0: all periods, the reference's loss).
    pub loss_from: usize,
}

/// Records `periods` periods of `policy` on `scenario` (a batch or a shard of one) and returns the
/// loss `Σ costs of periods ≥ loss_from / normaliser`. The gradient flows through the policy, the
/// dynamics and the policy's inputs (full back-propagation through time). Periods whose orders
/// cannot reach a cost of the horizon ([`Statics::periods_with_effective_actions`]) record zero
/// actions instead of the policy: the loss and its gradient are the same.
pub fn rollout_on_tape(
    tape: &mut Tape,
    policy: &Policy,
    params: &ParamStore,
    scenario: &Scenario,
    RolloutPeriods {
        periods,
        ignore: ignore_periods,
        loss_from,
    }: RolloutPeriods,
    normaliser: f32,
) -> Result<TapeRollout, StepError> {
    assert!(
        loss_from < periods,
        "loss from period {loss_from} of {periods}"
    );
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
    // the orders of the last periods may never reach a cost: those periods skip the policy
    let acting = scenario.statics.periods_with_effective_actions(periods);
    let mut total: Option<Var> = None;
    let (mut reported_cost, mut total_cost) = (0.0f64, 0.0f64);
    for t in 0..periods {
        let actions = if t < acting {
            let past_demands = (p > 0).then(|| {
                let window = past_demand_window(&scenario.demand, &scenario.history, t, p);
                tape.constant(window)
            });
            let future_demand = lookahead.map(|h| {
                let end = (t + h + 1).min(scenario.periods());
                scenario.demand.slice(s![.., t..end])
            });
            let obs = TapeObservation {
                statics: &scenario.statics,
                state,
                period: t,
                past_demands,
                future_demand,
            };
            policy.act(tape, params, &obs)
        } else {
            TapeActions::zeros(tape, &scenario.statics)
        };
        let demand = tape.constant_from(scenario.demand.slice(s![.., t..t + 1]));
        let (next, cost) = dynamics.step(tape, &state, &actions, demand)?;
        state = next;
        let period_cost = cost.total(tape);
        let value = tape.scalar(period_cost) as f64;
        total_cost += value;
        if t >= ignore_periods {
            reported_cost += value;
        }
        if t >= loss_from {
            total = Some(match total {
                None => period_cost,
                Some(acc) => tape.add(acc, period_cost),
            });
        }
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
    /// One action memo per evaluation thread (see [`crate::memo`]).
    static MEMO: RefCell<ThreadMemo> = RefCell::new(ThreadMemo::default());
}

/// Source of the evaluator ids that tag memo tables (a new evaluator never reads an old one's).
static NEXT_EVALUATOR_ID: AtomicU64 = AtomicU64::new(1);

/// Runs a [`Policy`] inside the tape-free evaluator: every period the state is put on a no-grad
/// tape (reset each time, buffers recycled), the policy acts, and the action values are copied out.
///
/// With [`PolicyEvaluator::with_memo`], actions are memoised by the exact state and static features
/// of each sample ([`crate::memo`]): same results, far less work when states recur (rounded orders
/// and discrete demand).
pub struct PolicyEvaluator<'a> {
    /// The policy.
    pub policy: &'a Policy,
    /// Its parameters.
    pub params: &'a ParamStore,
    /// Largest store lead time (the oracle's look-ahead).
    pub max_lead_time: usize,
    /// Tags this evaluator's memo tables.
    id: u64,
    /// Whether actions are memoised.
    memo: bool,
}

impl<'a> PolicyEvaluator<'a> {
    /// An evaluator without memo.
    pub fn new(policy: &'a Policy, params: &'a ParamStore, max_lead_time: usize) -> Self {
        PolicyEvaluator {
            policy,
            params,
            max_lead_time,
            id: NEXT_EVALUATOR_ID.fetch_add(1, Ordering::Relaxed),
            memo: false,
        }
    }

    /// Turns memoised actions on (when `on` and the policy allows it: see
    /// [`PolicyEvaluator::memo_applies`]) or off.
    pub fn with_memo(mut self, on: bool) -> Self {
        self.memo = on && Self::memo_applies(self.policy);
        self
    }

    /// True when the policy's actions for a sample depend only on that sample's pipelines and
    /// static features — not on past or future demand or the calendar (which the memo key does not
    /// hold).
    pub fn memo_applies(policy: &Policy) -> bool {
        !policy.features().iter().any(|f| {
            matches!(
                f,
                Feature::PastDemands | Feature::FutureDemand | Feature::Calendar
            )
        })
    }

    /// Whether this evaluator memoises actions.
    pub fn memoised(&self) -> bool {
        self.memo
    }

    /// Hits and lookups of the memo table of the calling thread for this evaluator (`(0, 0)` if
    /// it has not evaluated on this thread).
    pub fn memo_stats(&self) -> (u64, u64) {
        MEMO.with(|cell| {
            let memo = &cell.borrow().table;
            if memo.owner() == self.id {
                (memo.hits, memo.lookups)
            } else {
                (0, 0)
            }
        })
    }

    /// The policy's actions for every sample of `obs`, computed on the thread's no-grad tape.
    fn act_on_tape(
        &self,
        statics: &Statics,
        state: &State,
        obs: &EvalObservation<'_>,
        actions: &mut Actions,
    ) {
        EVAL_TAPE.with(|cell| {
            let mut tape = cell.borrow_mut();
            tape.reset();
            let state = TapeState::from_state(&mut tape, state);
            let past_demands = obs.past_demands().map(|p| tape.constant_from(p.view()));
            let future_demand = obs.oracle().map(|o| o.future_demand);
            let observation = TapeObservation {
                statics,
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

    /// [`ActionPolicy::act`] through the memo: look every sample up, run the policy on the
    /// samples not found (gathered into a smaller batch), store their actions.
    fn act_memoised(&self, obs: &EvalObservation<'_>, actions: &mut Actions) {
        let (state, statics) = (obs.state(), obs.statics());
        let n = obs.n_samples();
        let layout = SampleLayout::new(state, statics, actions);
        let (kl, vl) = (layout.key_len, layout.value_len);
        MEMO.with(|cell| {
            let memo = &mut *cell.borrow_mut();
            if memo.table.owner() != self.id {
                memo.statics_ids.clear();
            }
            memo.table.prepare(self.id, kl, vl);
            layout.statics_ids(statics, &mut memo.statics_ids, &mut memo.ids);
            memo.values.clear();
            memo.values.resize(n * vl, 0.0);
            memo.missed.clear();
            memo.missed_keys.clear();
            // keys of a fixed width are built and compared as arrays (no calls per sample)
            macro_rules! lookup {
                ($($width:literal)*) => {
                    match kl {
                        $($width => layout.lookup::<$width>(state, memo),)*
                        _ => layout.lookup_any(state, memo),
                    }
                };
            }
            lookup!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24);
            let missed = &memo.missed;
            if missed.len() == n {
                self.act_on_tape(statics, state, obs, actions);
                layout.gather_values(actions, &mut memo.values);
            } else if !missed.is_empty() {
                let sub_statics = statics.gather(missed);
                let sub_state = state.gather(missed, statics);
                let mut sub_actions = Actions::zeros(missed.len(), &sub_statics);
                self.act_on_tape(&sub_statics, &sub_state, obs, &mut sub_actions);
                let mut sub_values = Vec::new();
                layout.gather_values(&sub_actions, &mut sub_values);
                for (j, &b) in missed.iter().enumerate() {
                    memo.values[b * vl..(b + 1) * vl]
                        .copy_from_slice(&sub_values[j * vl..(j + 1) * vl]);
                }
            }
            for (j, &b) in missed.iter().enumerate() {
                memo.table.insert(
                    &memo.missed_keys[j * kl..(j + 1) * kl],
                    &memo.values[b * vl..(b + 1) * vl],
                );
            }
            if missed.len() != n {
                layout.scatter_values(&memo.values, actions);
            }
        });
    }
}

/// The memo table of a thread and its per-period scratch buffers (kept to avoid allocations).
#[derive(Default)]
struct ThreadMemo {
    table: ActionMemo,
    /// Distinct per-sample static features seen by this evaluator (bit patterns) → their id,
    /// the last word of every key.
    statics_ids: HashMap<Vec<u32>, u32>,
    /// The statics id of each sample of the current batch.
    ids: Vec<u32>,
    /// Actions of the current batch, `n × value_len`.
    values: Vec<f32>,
    /// Samples not found, and their keys (`missed.len() × key_len`).
    missed: Vec<usize>,
    missed_keys: Vec<u32>,
}

/// Where one sample's key and values (actions) sit in the batch arrays: every array is
/// sample-major, a fixed number of consecutive rows per sample. A key is the bit patterns of the
/// sample's pipelines followed by the id of its per-store static features.
struct SampleLayout {
    key_len: usize,
    value_len: usize,
    stores: usize,
    warehouses: usize,
    echelons: usize,
}

impl SampleLayout {
    fn new(state: &State, statics: &Statics, actions: &Actions) -> SampleLayout {
        let (s, w, e) = (statics.n_stores, statics.n_warehouses, statics.n_echelons);
        let key_len =
            s * state.store.ncols() + w * state.warehouse.ncols() + e * state.echelon.ncols() + 1;
        let value_len =
            s * actions.store.ncols() + w * actions.warehouse.ncols() + e * actions.echelon.ncols();
        SampleLayout {
            key_len,
            value_len,
            stores: s,
            warehouses: w,
            echelons: e,
        }
    }

    /// The id of each sample's per-store statics (holding and underage costs, mean, std, lead
    /// times) in `registry`, into `ids`. Usually every sample of a batch has the same statics:
    /// that is checked first, and then only one registry lookup is made.
    fn statics_ids(
        &self,
        statics: &Statics,
        registry: &mut HashMap<Vec<u32>, u32>,
        ids: &mut Vec<u32>,
    ) {
        let n = statics.n_samples;
        let s = self.stores;
        let per_store = [
            statics.holding_cost.as_slice().expect("contiguous statics"),
            statics
                .underage_cost
                .as_slice()
                .expect("contiguous statics"),
            statics.mean.as_slice().expect("contiguous statics"),
            statics.std.as_slice().expect("contiguous statics"),
        ];
        let lead = statics.lead_time.as_slice().expect("contiguous statics");
        let lw = s * statics.lead_time.ncols();
        let sample_statics = |b: usize| {
            let mut v: Vec<u32> = per_store
                .iter()
                .flat_map(|a| a[b * s..(b + 1) * s].iter().map(|x| x.to_bits()))
                .collect();
            v.extend_from_slice(&lead[b * lw..(b + 1) * lw]);
            v
        };
        let mut id_of = |v: Vec<u32>| {
            let next = registry.len() as u32;
            *registry.entry(v).or_insert(next)
        };
        // element-wise comparisons with the first sample (no `memcmp` call per sample)
        let uniform = per_store.iter().all(|a| {
            a.iter()
                .enumerate()
                .all(|(i, x)| x.to_bits() == a[i % s].to_bits())
        }) && lead
            .iter()
            .enumerate()
            .all(|(i, x)| *x == lead[i % lw.max(1)]);
        ids.clear();
        if uniform {
            let id = id_of(sample_statics(0));
            ids.resize(n, id);
        } else {
            ids.extend((0..n).map(|b| id_of(sample_statics(b))));
        }
    }

    /// Looks every sample up with keys of the fixed width `N` (= `key_len`): found actions go to
    /// `memo.values`, the others to `memo.missed` and `memo.missed_keys`.
    fn lookup<const N: usize>(&self, state: &State, memo: &mut ThreadMemo) {
        debug_assert_eq!(N, self.key_len);
        let vl = self.value_len;
        let parts = self.state_parts(state);
        for b in 0..memo.ids.len() {
            let mut key = [0u32; N];
            let mut at = 0;
            for (data, width) in parts {
                for (k, x) in key[at..at + width]
                    .iter_mut()
                    .zip(&data[b * width..(b + 1) * width])
                {
                    *k = x.to_bits();
                }
                at += width;
            }
            key[N - 1] = memo.ids[b];
            match memo.table.get(&key) {
                Some(found) if vl == 1 => memo.values[b] = found[0],
                Some(found) => memo.values[b * vl..(b + 1) * vl].copy_from_slice(found),
                None => {
                    memo.missed.push(b);
                    memo.missed_keys.extend_from_slice(&key);
                }
            }
        }
    }

    /// [`SampleLayout::lookup`] for any key width.
    fn lookup_any(&self, state: &State, memo: &mut ThreadMemo) {
        let vl = self.value_len;
        let parts = self.state_parts(state);
        let mut key = Vec::with_capacity(self.key_len);
        for b in 0..memo.ids.len() {
            key.clear();
            for (data, width) in parts {
                key.extend(data[b * width..(b + 1) * width].iter().map(|x| x.to_bits()));
            }
            key.push(memo.ids[b]);
            match memo.table.get(&key) {
                Some(found) => memo.values[b * vl..(b + 1) * vl].copy_from_slice(found),
                None => {
                    memo.missed.push(b);
                    memo.missed_keys.extend_from_slice(&key);
                }
            }
        }
    }

    /// The three pipeline arrays as slices with the width of one sample's rows.
    fn state_parts<'s>(&self, state: &'s State) -> [(&'s [f32], usize); 3] {
        let part = |a: &'s Array2<f32>, per_sample: usize| {
            (
                a.as_slice().expect("contiguous batch array"),
                per_sample * a.ncols(),
            )
        };
        [
            part(&state.store, self.stores),
            part(&state.warehouse, self.warehouses),
            part(&state.echelon, self.echelons),
        ]
    }

    /// The actions of every sample into `values`, `n × value_len`.
    fn gather_values(&self, actions: &Actions, values: &mut Vec<f32>) {
        let n = actions.store.nrows() / self.stores.max(1);
        let vl = self.value_len;
        values.clear();
        values.resize(n * vl, 0.0);
        let mut at = 0;
        for (array, per_sample) in [
            (&actions.store, self.stores),
            (&actions.warehouse, self.warehouses),
            (&actions.echelon, self.echelons),
        ] {
            let width = array.ncols() * per_sample;
            if width == 0 {
                continue;
            }
            let data = array.as_slice().expect("actions are contiguous");
            for (b, chunk) in data.chunks_exact(width).enumerate() {
                values[b * vl + at..b * vl + at + width].copy_from_slice(chunk);
            }
            at += width;
        }
    }

    /// Writes `values` (`n × value_len`) as the actions of every sample.
    fn scatter_values(&self, values: &[f32], actions: &mut Actions) {
        let vl = self.value_len;
        if self.warehouses == 0 && self.echelons == 0 {
            // store actions only: `values` is their layout already
            actions
                .store
                .as_slice_mut()
                .expect("actions are contiguous")
                .copy_from_slice(values);
            return;
        }
        let mut at = 0;
        for (array, per_sample) in [
            (&mut actions.store, self.stores),
            (&mut actions.warehouse, self.warehouses),
            (&mut actions.echelon, self.echelons),
        ] {
            let width = array.ncols() * per_sample;
            if width == 0 {
                continue;
            }
            let data = array.as_slice_mut().expect("actions are contiguous");
            for (b, chunk) in data.chunks_exact_mut(width).enumerate() {
                chunk.copy_from_slice(&values[b * vl + at..b * vl + at + width]);
            }
            at += width;
        }
    }
}

impl ActionPolicy for PolicyEvaluator<'_> {
    fn act(&self, obs: &EvalObservation<'_>, actions: &mut Actions) {
        if self.memo {
            self.act_memoised(obs, actions);
        } else {
            self.act_on_tape(obs.statics(), obs.state(), obs, actions);
        }
    }

    fn oracle_lookahead(&self) -> Option<usize> {
        self.policy.oracle_lookahead(self.max_lead_time)
    }
}
