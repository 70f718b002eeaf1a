//! What a trained policy orders now: the orders of a saved policy for network states a planner
//! supplies (`hdpo act`), outside any simulation.
//!
//! A state says, for every store, warehouse and extra echelon, what is on hand now and what
//! arrives in each of the next periods ([`LocationState`]); a [`NetworkState`] gathers them (plus
//! the past demand, for policies that observe it). [`act`] turns a batch of states into the
//! [`Orders`] the policy places this period, with the network's static parameters (costs, lead
//! times, demand means) of one sample of the policy's setting. States are read from JSON
//! ([`states_from_json`]) or CSV ([`states_from_csv`]); every shape and value is checked first,
//! and a wrong one is an [`ActError`] that names the state, the location and what was expected.
//!
//! Orders are the policy's raw output: not rounded (the test split of a setting with integer
//! demand rounds them) and already feasible (a store's shipment from a warehouse is allocated from
//! what the warehouse holds, as in the simulator).

use crate::rollout::PolicyEvaluator;
use hdpo_policy::saved::SavedPolicy;
use hdpo_sim::config::{Split, UnmetDemand};
use hdpo_sim::eval::{ActionPolicy, EvalObservation};
use hdpo_sim::scenario::ScenarioGenerator;
use hdpo_sim::state::{Actions, State, Statics};
use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

/// One location's inventory: on hand now and the quantities arriving in the next periods.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocationState {
    /// On hand now, after this period's arrivals (a backlogged store may be negative).
    pub on_hand: f64,
    /// `arriving[k]` arrives in `k + 1` periods (missing trailing entries are 0).
    #[serde(default)]
    pub arriving: Vec<f64>,
}

/// The state of one network: its locations in the policy's order, plus what the policy observes
/// besides the pipelines.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkState {
    /// One entry per store.
    pub stores: Vec<LocationState>,
    /// One entry per warehouse (none when the network has none).
    #[serde(default)]
    pub warehouses: Vec<LocationState>,
    /// One entry per extra echelon of a serial chain, the most upstream first.
    #[serde(default)]
    pub echelons: Vec<LocationState>,
    /// The period index (0 unless the policy reads time).
    #[serde(default)]
    pub period: usize,
    /// Per store, the demand of the last periods, oldest first (for policies that observe past
    /// demand; as many periods as the policy's setting shows, `observation.past_demands`).
    #[serde(default)]
    pub past_demand: Vec<Vec<f64>>,
}

/// The orders of one network this period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Orders {
    /// Per store, the quantity shipped from each of its sources: one entry per warehouse (0 where
    /// the warehouse does not supply the store), or one entry (the outside supplier) when the
    /// network has no warehouse.
    pub stores: Vec<Vec<f32>>,
    /// Per warehouse, the quantity it orders from its source.
    pub warehouses: Vec<f32>,
    /// Per extra echelon, the quantity it orders from its source.
    pub echelons: Vec<f32>,
}

/// A state or a policy that [`act`] cannot use; the message names what and where.
#[derive(Debug, thiserror::Error)]
pub enum ActError {
    /// A state has the wrong shape or a value out of its range.
    #[error("{0}")]
    State(String),
    /// The state file cannot be read as JSON or CSV.
    #[error("{0}")]
    Format(String),
    /// The policy cannot act on a state alone (an oracle), or its setting is unusable.
    #[error("{0}")]
    Policy(String),
}

/// Options of [`act`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ActOptions {
    /// Which sample of the setting's test split gives the static parameters (costs, lead times,
    /// demand means); they differ between samples only where the setting samples them.
    pub sample: usize,
}

/// The orders `saved` places for each of `states`.
pub fn act(
    saved: &SavedPolicy,
    states: &[NetworkState],
    options: ActOptions,
) -> Result<Vec<Orders>, ActError> {
    if !saved.admissible {
        return Err(ActError::Policy(format!(
            "policy `{}` is a non-admissible oracle: it reads future demand, so it cannot act on \
             a state alone",
            saved.spec.kind()
        )));
    }
    if states.is_empty() {
        return Ok(Vec::new());
    }
    let setting = &saved.setting;
    let policy = saved
        .check_setting(setting)
        .map_err(|e| ActError::Policy(e.to_string()))?;
    let generator = ScenarioGenerator::new(setting, Split::Test)
        .map_err(|e| ActError::Policy(format!("the policy's setting: {e}")))?;
    let one = generator.statics(options.sample..options.sample + 1);
    let lengths = generator.instance().pipeline;
    let past = setting.observation.past_demands;
    let n = states.len();
    let statics = repeat_sample(&one, n);
    let mut state = State::zeros(n, &statics, lengths);
    let mut past_demands = Array2::zeros((n * statics.n_stores, past));
    for (b, s) in states.iter().enumerate() {
        check_counts(b, s, &statics)?;
        let lost = statics.unmet_demand == UnmetDemand::Lost;
        fill_rows(&mut state.store, b, &s.stores, "stores", lost)?;
        fill_rows(&mut state.warehouse, b, &s.warehouses, "warehouses", true)?;
        fill_rows(&mut state.echelon, b, &s.echelons, "echelons", true)?;
        fill_past(&mut past_demands, b, s, past)?;
    }
    let periods = setting.split(Split::Test).periods;
    let max_lead_time = lengths.store;
    let evaluator = PolicyEvaluator::new(&policy, &saved.params, max_lead_time);
    let mut actions = Actions::zeros(n, &statics);
    // states with different periods are acted on one period at a time
    let mut by_period: Vec<usize> = states.iter().map(|s| s.period).collect();
    by_period.sort_unstable();
    by_period.dedup();
    for period in by_period {
        let obs = EvalObservation::new(&state, &statics, &setting.observation, period, periods);
        let obs = if past > 0 {
            obs.with_past_demands(&past_demands)
        } else {
            obs
        };
        let mut out = Actions::zeros(n, &statics);
        evaluator.act(&obs, &mut out);
        for (b, s) in states.iter().enumerate() {
            if s.period == period {
                copy_sample(&out, &mut actions, b, &statics);
            }
        }
    }
    Ok((0..n).map(|b| orders_of(&actions, b, &statics)).collect())
}

/// Reads states from JSON: one [`NetworkState`] object or a list of them.
pub fn states_from_json(text: &str) -> Result<Vec<NetworkState>, ActError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ActError::Format(format!("the state is not valid JSON: {e}")))?;
    let one = |v: serde_json::Value, at: String| {
        serde_json::from_value::<NetworkState>(v).map_err(|e| {
            ActError::Format(format!(
                "{at}: {e} (a state is {{\"stores\": [{{\"on_hand\": 3, \"arriving\": [5, 4]}}, \
                 …], \"warehouses\": […], \"echelons\": […], \"period\": 0, \"past_demand\": \
                 [[…], …]}}; only `stores` is required)"
            ))
        })
    };
    match value {
        serde_json::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| one(v, format!("state {i}")))
            .collect(),
        v => Ok(vec![one(v, "the state".into())?]),
    }
}

/// Reads states from CSV with the header `state,location,index,on_hand,arriving_1,…,arriving_k`:
/// one row per location, `location` one of `store`, `warehouse`, `echelon`, `state` and `index`
/// counting from 0 (every state's locations in order, states in order). Past demand cannot be
/// given in CSV (use JSON).
pub fn states_from_csv(text: &str) -> Result<Vec<NetworkState>, ActError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ActError::Format(format!("cannot read the CSV header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let fixed = ["state", "location", "index", "on_hand"];
    let arriving_ok = header
        .iter()
        .skip(4)
        .enumerate()
        .all(|(k, h)| *h == format!("arriving_{}", k + 1));
    if header.len() < 4 || header[..4] != fixed || !arriving_ok {
        return Err(ActError::Format(format!(
            "the CSV header is `{}`; expected `state,location,index,on_hand` followed by \
             `arriving_1`, `arriving_2`, … (as many as needed)",
            header.join(",")
        )));
    }
    let mut states: Vec<NetworkState> = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let line = row + 2;
        let record = record.map_err(|e| ActError::Format(format!("CSV line {line}: {e}")))?;
        let number = |col: usize| -> Result<f64, ActError> {
            let cell = record.get(col).unwrap_or("");
            cell.parse::<f64>().map_err(|_| {
                ActError::Format(format!(
                    "CSV line {line}, column `{}`: `{cell}` is not a number",
                    header[col]
                ))
            })
        };
        let index_of = |col: usize| -> Result<usize, ActError> {
            let cell = record.get(col).unwrap_or("");
            cell.parse::<usize>().map_err(|_| {
                ActError::Format(format!(
                    "CSV line {line}, column `{}`: `{cell}` is not a whole number ≥ 0",
                    header[col]
                ))
            })
        };
        let state = index_of(0)?;
        let index = index_of(2)?;
        if state > states.len() {
            return Err(ActError::Format(format!(
                "CSV line {line}: state {state} comes before state {}; number the states 0, 1, \
                 … in order",
                states.len()
            )));
        }
        if state == states.len() {
            states.push(NetworkState::default());
        }
        let location = LocationState {
            on_hand: number(3)?,
            arriving: (4..record.len()).map(number).collect::<Result<_, _>>()?,
        };
        let target = &mut states[state];
        let list = match record.get(1).unwrap_or("") {
            "store" => &mut target.stores,
            "warehouse" => &mut target.warehouses,
            "echelon" => &mut target.echelons,
            other => {
                return Err(ActError::Format(format!(
                    "CSV line {line}, column `location`: `{other}`; allowed: store, warehouse, \
                     echelon"
                )));
            }
        };
        if index != list.len() {
            return Err(ActError::Format(format!(
                "CSV line {line}: {} {index} of state {state} comes after {} of them; number \
                 each kind of location 0, 1, … in order",
                record.get(1).unwrap_or(""),
                list.len()
            )));
        }
        list.push(location);
    }
    if states.is_empty() {
        return Err(ActError::Format("the CSV has no state rows".into()));
    }
    Ok(states)
}

/// Orders as CSV: `state,location,index,source,order`, one row per order (`source` is the
/// warehouse a store is supplied from, or 0 for the outside supplier or a warehouse's / echelon's
/// own source).
pub fn orders_to_csv(orders: &[Orders]) -> String {
    let mut out = String::from("state,location,index,source,order\n");
    for (b, o) in orders.iter().enumerate() {
        for (i, sources) in o.stores.iter().enumerate() {
            for (w, q) in sources.iter().enumerate() {
                out.push_str(&format!("{b},store,{i},{w},{q}\n"));
            }
        }
        for (i, q) in o.warehouses.iter().enumerate() {
            out.push_str(&format!("{b},warehouse,{i},0,{q}\n"));
        }
        for (i, q) in o.echelons.iter().enumerate() {
            out.push_str(&format!("{b},echelon,{i},0,{q}\n"));
        }
    }
    out
}

/// Every per-store array of a one-sample `one` repeated for `n` samples.
fn repeat_sample(one: &Statics, n: usize) -> Statics {
    let repeat1 = |a: &Array1<f32>| {
        let views = vec![a.view(); n];
        ndarray::concatenate(Axis(0), &views).expect("same shapes")
    };
    let lead_views = vec![one.lead_time.view(); n];
    Statics {
        n_samples: n,
        holding_cost: repeat1(&one.holding_cost),
        underage_cost: repeat1(&one.underage_cost),
        lead_time: ndarray::concatenate(Axis(0), &lead_views).expect("same shapes"),
        mean: repeat1(&one.mean),
        std: repeat1(&one.std),
        ..one.clone()
    }
}

/// State `b` has as many locations of each kind as the network.
fn check_counts(b: usize, s: &NetworkState, statics: &Statics) -> Result<(), ActError> {
    for (what, given, expected) in [
        ("stores", s.stores.len(), statics.n_stores),
        ("warehouses", s.warehouses.len(), statics.n_warehouses),
        ("echelons", s.echelons.len(), statics.n_echelons),
    ] {
        if given != expected {
            return Err(ActError::State(format!(
                "state {b}: `{what}` has {given} entries; expected {expected}, one per {} of the \
                 policy's network",
                what.trim_end_matches('s')
            )));
        }
    }
    Ok(())
}

/// Writes the locations of state `b` into rows `b·n …` of `pipelines` (`n` = locations per
/// state): on hand in slot 0, `arriving[k]` in slot `k + 1`.
fn fill_rows(
    pipelines: &mut Array2<f32>,
    b: usize,
    locations: &[LocationState],
    what: &str,
    non_negative_on_hand: bool,
) -> Result<(), ActError> {
    let slots = pipelines.ncols();
    for (i, loc) in locations.iter().enumerate() {
        let at = format!("state {b}: `{what}[{i}]`");
        let valid = loc.on_hand.is_finite() && (loc.on_hand >= 0.0 || !non_negative_on_hand);
        if !valid {
            return Err(ActError::State(format!(
                "{at}.on_hand = {}: expected a finite number{}",
                loc.on_hand,
                if non_negative_on_hand {
                    " ≥ 0 (only a backlogged store can be negative)"
                } else {
                    ""
                }
            )));
        }
        if loc.arriving.len() > slots.saturating_sub(1) {
            return Err(ActError::State(format!(
                "{at}.arriving has {} entries; at most {} (arrivals in 1 … {} periods: the \
                 pipeline of the policy's setting holds {slots} slots including on hand)",
                loc.arriving.len(),
                slots - 1,
                slots - 1
            )));
        }
        if let Some((k, q)) = loc
            .arriving
            .iter()
            .enumerate()
            .find(|(_, q)| !(q.is_finite() && **q >= 0.0))
        {
            return Err(ActError::State(format!(
                "{at}.arriving[{k}] = {q}: expected a finite number ≥ 0"
            )));
        }
        let row = b * locations.len() + i;
        pipelines[[row, 0]] = loc.on_hand as f32;
        for (k, q) in loc.arriving.iter().enumerate() {
            pipelines[[row, k + 1]] = *q as f32;
        }
    }
    Ok(())
}

/// Writes state `b`'s past demand into rows `b·S …` of `past` (`(B·S, P)`).
fn fill_past(
    past: &mut Array2<f32>,
    b: usize,
    s: &NetworkState,
    periods: usize,
) -> Result<(), ActError> {
    if periods == 0 {
        if !s.past_demand.is_empty() {
            return Err(ActError::State(format!(
                "state {b}: `past_demand` is given, but the policy does not observe past demand \
                 (its setting's observation.past_demands = 0)"
            )));
        }
        return Ok(());
    }
    let stores = s.stores.len();
    if s.past_demand.len() != stores {
        return Err(ActError::State(format!(
            "state {b}: the policy observes the last {periods} periods of demand of every store: \
             `past_demand` needs {stores} rows (one per store) of {periods} numbers, oldest \
             first; it has {} rows",
            s.past_demand.len()
        )));
    }
    for (i, row) in s.past_demand.iter().enumerate() {
        if row.len() != periods {
            return Err(ActError::State(format!(
                "state {b}: `past_demand[{i}]` has {} numbers; expected {periods} (oldest first)",
                row.len()
            )));
        }
        if let Some((k, d)) = row.iter().enumerate().find(|(_, d)| !d.is_finite()) {
            return Err(ActError::State(format!(
                "state {b}: `past_demand[{i}][{k}]` = {d}: expected a finite number"
            )));
        }
        for (k, d) in row.iter().enumerate() {
            past[[b * stores + i, k]] = *d as f32;
        }
    }
    Ok(())
}

/// Copies sample `b`'s actions from `from` to `to`.
fn copy_sample(from: &Actions, to: &mut Actions, b: usize, statics: &Statics) {
    for (src, dst, per) in [
        (&from.store, &mut to.store, statics.n_stores),
        (&from.warehouse, &mut to.warehouse, statics.n_warehouses),
        (&from.echelon, &mut to.echelon, statics.n_echelons),
    ] {
        for r in b * per..(b + 1) * per {
            dst.row_mut(r).assign(&src.row(r));
        }
    }
}

/// Sample `b`'s orders.
fn orders_of(actions: &Actions, b: usize, statics: &Statics) -> Orders {
    let rows = |a: &Array2<f32>, per: usize| -> Vec<Vec<f32>> {
        (b * per..(b + 1) * per)
            .map(|r| a.row(r).to_vec())
            .collect()
    };
    let first = |v: Vec<Vec<f32>>| v.into_iter().map(|r| r[0]).collect();
    Orders {
        stores: rows(&actions.store, statics.n_stores),
        warehouses: first(rows(&actions.warehouse, statics.n_warehouses)),
        echelons: first(rows(&actions.echelon, statics.n_echelons)),
    }
}
