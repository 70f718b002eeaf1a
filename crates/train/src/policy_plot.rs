//! What a trained one-store policy does: its order against the inventory position in the states
//! it visits on test scenarios, next to the optimal policy's order in the same states where one is
//! known ([`OptimalRule`]: base stock for a backlogged store, the dynamic programme for lost
//! sales) — `policy.svg` of a run, and the agreement figures of its report.

use crate::rollout::PolicyEvaluator;
use hdpo_autodiff::ParamStore;
use hdpo_optimum::optimal_rule::OptimalRule;
use hdpo_optimum::{Classification, Problem};
use hdpo_policy::Policy;
use hdpo_sim::config::{Setting, Split};
use hdpo_sim::eval::{ActionPolicy, EvalObservation, EvalOptions, evaluate};
use hdpo_sim::state::Actions;
use plotters::prelude::*;
use std::sync::Mutex;

/// Test scenarios simulated for the picture.
pub const PICTURE_SAMPLES: usize = 64;
/// Periods simulated per scenario; the states of the last [`PICTURE_PERIODS`] − [`PICTURE_WARM_UP`]
/// are recorded.
pub const PICTURE_PERIODS: usize = 160;
/// Periods simulated before states are recorded (the start is not stationary).
pub const PICTURE_WARM_UP: usize = 100;

/// One visited state and the orders in it.
#[derive(Clone, Debug, PartialEq)]
pub struct VisitedState {
    /// The store's pipeline: on hand, then arriving in 1, 2, … periods.
    pub pipeline: Vec<f32>,
    /// The learned policy's order (rounded as in the test split where it rounds).
    pub order: f32,
    /// The optimal order in this state, where known.
    pub optimal_order: Option<f64>,
}

/// The picture's data: the visited states and the optimal rule they were compared with.
#[derive(Clone, Debug)]
pub struct PolicyPicture {
    /// Visited states, sorted by pipeline (so the picture does not depend on thread timing).
    pub states: Vec<VisitedState>,
    /// The optimal rule's legend, when one is known.
    pub optimal: Option<String>,
}

impl PolicyPicture {
    /// Share of the states with a known optimal order where the learned order is within `0.5`
    /// of it (the same integer order after rounding), and the mean absolute difference.
    pub fn agreement(&self) -> Option<(f64, f64)> {
        let pairs: Vec<(f64, f64)> = self
            .states
            .iter()
            .filter_map(|s| s.optimal_order.map(|o| (f64::from(s.order), o)))
            .collect();
        if pairs.is_empty() {
            return None;
        }
        let n = pairs.len() as f64;
        let same = pairs.iter().filter(|(a, b)| (a - b).abs() < 0.5).count() as f64;
        let mean_abs = pairs.iter().map(|(a, b)| (a - b).abs()).sum::<f64>() / n;
        Some((same / n, mean_abs))
    }
}

/// Records the states a policy is asked about and its orders.
struct Recorder<'a> {
    inner: &'a PolicyEvaluator<'a>,
    round: bool,
    seen: Mutex<Vec<(Vec<f32>, f32)>>,
}

impl ActionPolicy for Recorder<'_> {
    fn act(&self, obs: &EvalObservation<'_>, actions: &mut Actions) {
        self.inner.act(obs, actions);
        if obs.period() < PICTURE_WARM_UP {
            return;
        }
        let state = obs.state();
        let mut seen = self.seen.lock().expect("no panic while recording");
        for (row, order) in state.store.rows().into_iter().zip(actions.store.column(0)) {
            let order = if self.round {
                order.round_ties_even()
            } else {
                *order
            };
            seen.push((row.to_vec(), order));
        }
    }
}

/// The picture of a one-store policy (`None` for networks: several stores or any warehouse).
pub fn policy_picture(
    setting: &Setting,
    policy: &Policy,
    params: &ParamStore,
) -> Result<Option<PolicyPicture>, String> {
    if setting.n_stores() != 1 || setting.network.n_warehouses > 0 || !policy.admissible() {
        return Ok(None);
    }
    let mut small = setting.clone();
    let test = &mut small.splits.test;
    test.n_samples = test.n_samples.min(PICTURE_SAMPLES);
    test.batch_size = test.n_samples;
    test.periods = PICTURE_PERIODS;
    test.ignore_periods = PICTURE_WARM_UP;
    let instance = small.instance().map_err(|e| e.to_string())?;
    let evaluator = PolicyEvaluator::new(policy, params, instance.pipeline.store);
    let options = EvalOptions::for_setting(&small);
    let recorder = Recorder {
        inner: &evaluator,
        round: options.round_actions,
        seen: Mutex::new(Vec::new()),
    };
    evaluate(&small, Split::Test, &recorder, &options).map_err(|e| e.to_string())?;
    let mut seen = recorder
        .seen
        .into_inner()
        .expect("no panic while recording");
    seen.sort_by(|a, b| {
        a.0.iter()
            .zip(&b.0)
            .map(|(x, y)| x.total_cmp(y))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.1.total_cmp(&b.1))
    });
    let rule = match Problem::from_setting(&small).map_err(|e| e.to_string())? {
        // a solver that cannot solve this instance (e.g. a lost-sales state space too large)
        // leaves the picture without the optimal policy
        Classification::Solvable(problem) => optimal_rule(&problem).ok().flatten(),
        _ => None,
    };
    let states = seen
        .into_iter()
        .map(|(pipeline, order)| {
            let as_f64: Vec<f64> = pipeline.iter().map(|&x| f64::from(x)).collect();
            VisitedState {
                optimal_order: rule.as_ref().and_then(|r| r.order(&as_f64)),
                pipeline,
                order,
            }
        })
        .collect();
    Ok(Some(PolicyPicture {
        states,
        optimal: rule.map(|r| r.describe()),
    }))
}

fn optimal_rule(problem: &Problem) -> Result<Option<OptimalRule>, String> {
    OptimalRule::for_problem(problem)
}

/// Most points drawn per series (the file stays small; the picture is the same).
const MAX_DRAWN_POINTS: usize = 1500;

/// The points worth drawing: one per distinct position (to 0.01), then every k-th of them if
/// there are more than [`MAX_DRAWN_POINTS`].
fn drawn_points(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let key = |(x, y): &(f64, f64)| ((x * 100.0).round() as i64, (y * 100.0).round() as i64);
    let mut unique: Vec<(f64, f64)> = points.to_vec();
    unique.sort_by_key(key);
    unique.dedup_by_key(|p| key(p));
    let stride = unique.len().div_ceil(MAX_DRAWN_POINTS).max(1);
    unique.into_iter().step_by(stride).collect()
}

/// `policy.svg`: order against inventory position, the learned policy's dots and the optimal
/// policy's crosses in the same states.
pub fn render_policy_picture(title: &str, picture: &PolicyPicture) -> Result<String, String> {
    let draw = || -> Result<String, Box<dyn std::error::Error>> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
            root.fill(&WHITE)?;
            let learned: Vec<(f64, f64)> = picture
                .states
                .iter()
                .map(|s| {
                    let position: f32 = s.pipeline.iter().sum();
                    (f64::from(position), f64::from(s.order))
                })
                .collect();
            let optimal: Vec<(f64, f64)> = picture
                .states
                .iter()
                .zip(&learned)
                .filter_map(|(s, (x, _))| s.optimal_order.map(|o| (*x, o)))
                .collect();
            let (learned, optimal) = (drawn_points(&learned), drawn_points(&optimal));
            let (mut x_lo, mut x_hi, mut y_hi) = (f64::INFINITY, f64::NEG_INFINITY, 1.0f64);
            for (x, y) in learned.iter().chain(&optimal) {
                x_lo = x_lo.min(*x);
                x_hi = x_hi.max(*x);
                y_hi = y_hi.max(*y);
            }
            if !x_lo.is_finite() || x_hi <= x_lo {
                (x_lo, x_hi) = (0.0, 1.0);
            }
            let pad = (x_hi - x_lo) * 0.05 + 0.5;
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    format!("{title}: order against inventory position (visited test states)"),
                    ("sans-serif", 18),
                )
                .margin(15)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d((x_lo - pad)..(x_hi + pad), -0.5..(y_hi * 1.1 + 0.5))?;
            chart
                .configure_mesh()
                .x_desc("inventory position (on hand + arriving)")
                .y_desc("order")
                .draw()?;
            chart
                .draw_series(
                    learned
                        .iter()
                        .map(|&p| Circle::new(p, 3, BLUE.mix(0.35).filled())),
                )?
                .label("learned policy")
                .legend(|(x, y)| Circle::new((x + 10, y), 3, BLUE.filled()));
            if let Some(name) = &picture.optimal {
                chart
                    .draw_series(optimal.iter().map(|&p| Cross::new(p, 4, RED.mix(0.6))))?
                    .label(name.clone())
                    .legend(|(x, y)| Cross::new((x + 10, y), 4, RED));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
            root.present()?;
        }
        Ok(svg)
    };
    draw().map_err(|e| format!("cannot draw the policy picture: {e}"))
}
