//! What a trained policy does: each location's order against its own inventory position in the
//! states it visits on test scenarios — one panel per kind of location (stores, warehouses,
//! echelons) — and, for one store, the optimal policy's order in the same states where one is
//! known ([`OptimalRule`]: base stock for a backlogged store, the dynamic programme for lost
//! sales): `policy.svg` of a run, and the agreement figures of its report.

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

/// A kind of location, in the order of the picture's panels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LocationKind {
    /// A store (its order: the total it is shipped from all its sources).
    Store,
    /// A warehouse (its order from its own source).
    Warehouse,
    /// An extra echelon of a serial chain.
    Echelon,
}

impl LocationKind {
    fn plural(self) -> &'static str {
        match self {
            LocationKind::Store => "stores",
            LocationKind::Warehouse => "warehouses",
            LocationKind::Echelon => "echelons",
        }
    }
}

/// One location in one visited state, and the orders there.
#[derive(Clone, Debug, PartialEq)]
pub struct VisitedState {
    /// Which kind of location.
    pub kind: LocationKind,
    /// Its index among the locations of its kind.
    pub index: usize,
    /// Its pipeline: on hand, then arriving in 1, 2, … periods.
    pub pipeline: Vec<f32>,
    /// The learned policy's order (rounded as in the test split where it rounds).
    pub order: f32,
    /// The optimal order in this state, where known.
    pub optimal_order: Option<f64>,
}

/// The picture's data: the visited states and the optimal rule they were compared with.
#[derive(Clone, Debug)]
pub struct PolicyPicture {
    /// Visited locations, sorted by kind, index and pipeline (so the picture does not depend on
    /// thread timing).
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

/// A recorded location: kind, index, pipeline, order.
type Seen = (LocationKind, usize, Vec<f32>, f32);

/// Points of a series: `(inventory position, order)`.
type Points = Vec<(f64, f64)>;

/// Records the states a policy is asked about and its orders.
struct Recorder<'a> {
    inner: &'a PolicyEvaluator<'a>,
    round: bool,
    /// Locations of each kind per sample.
    counts: [usize; 3],
    seen: Mutex<Vec<Seen>>,
}

impl ActionPolicy for Recorder<'_> {
    fn act(&self, obs: &EvalObservation<'_>, actions: &mut Actions) {
        self.inner.act(obs, actions);
        if obs.period() < PICTURE_WARM_UP {
            return;
        }
        let round = |q: f32| if self.round { q.round_ties_even() } else { q };
        let state = obs.state();
        let mut seen = self.seen.lock().expect("no panic while recording");
        for (kind, pipelines, orders, per_sample) in [
            (
                LocationKind::Store,
                &state.store,
                &actions.store,
                self.counts[0],
            ),
            (
                LocationKind::Warehouse,
                &state.warehouse,
                &actions.warehouse,
                self.counts[1],
            ),
            (
                LocationKind::Echelon,
                &state.echelon,
                &actions.echelon,
                self.counts[2],
            ),
        ] {
            for (r, (row, order)) in pipelines.rows().into_iter().zip(orders.rows()).enumerate() {
                let total: f32 = order.iter().map(|&q| round(q)).sum();
                seen.push((kind, r % per_sample.max(1), row.to_vec(), total));
            }
        }
    }
}

/// The picture of a policy (`None` for an oracle, which does not act on states alone).
pub fn policy_picture(
    setting: &Setting,
    policy: &Policy,
    params: &ParamStore,
) -> Result<Option<PolicyPicture>, String> {
    if !policy.admissible() {
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
        counts: [
            instance.n_stores,
            instance.n_warehouses,
            instance.n_echelons,
        ],
        seen: Mutex::new(Vec::new()),
    };
    evaluate(&small, Split::Test, &recorder, &options).map_err(|e| e.to_string())?;
    let mut seen = recorder
        .seen
        .into_inner()
        .expect("no panic while recording");
    seen.sort_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| {
                a.2.iter()
                    .zip(&b.2)
                    .map(|(x, y)| x.total_cmp(y))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .then(a.3.total_cmp(&b.3))
    });
    let one_store = instance.n_stores == 1 && instance.n_warehouses == 0;
    let rule = match Problem::from_setting(&small).map_err(|e| e.to_string())? {
        // a solver that cannot solve this instance (e.g. a lost-sales state space too large)
        // leaves the picture without the optimal policy
        Classification::Solvable(problem) if one_store => {
            OptimalRule::for_problem(&problem).ok().flatten()
        }
        _ => None,
    };
    let states = seen
        .into_iter()
        .map(|(kind, index, pipeline, order)| {
            let as_f64: Vec<f64> = pipeline.iter().map(|&x| f64::from(x)).collect();
            VisitedState {
                kind,
                index,
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

/// Most points drawn per panel (the file stays small; the picture is the same).
const MAX_DRAWN_POINTS: usize = 1500;

/// The points worth drawing: one per distinct position (to 0.01), then every k-th of them if
/// there are more than `max`.
fn drawn_points(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    let key = |(x, y): &(f64, f64)| ((x * 100.0).round() as i64, (y * 100.0).round() as i64);
    let mut unique: Vec<(f64, f64)> = points.to_vec();
    unique.sort_by_key(key);
    unique.dedup_by_key(|p| key(p));
    let stride = unique.len().div_ceil(max.max(1)).max(1);
    unique.into_iter().step_by(stride).collect()
}

/// Locations of one kind drawn in their own colour when there are at most this many.
const MAX_COLOURED_LOCATIONS: usize = 10;

/// `policy.svg`: order against own inventory position, one panel per kind of location; the
/// learned policy's dots, coloured by location where there are few, and the optimal policy's
/// crosses in the same states where known.
pub fn render_policy_picture(title: &str, picture: &PolicyPicture) -> Result<String, String> {
    let mut kinds: Vec<LocationKind> = picture.states.iter().map(|s| s.kind).collect();
    kinds.dedup();
    let panel = 460u32;
    let draw = || -> Result<String, Box<dyn std::error::Error>> {
        let mut svg = String::new();
        {
            let height = panel * kinds.len().max(1) as u32;
            let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
            root.fill(&WHITE)?;
            let areas = root.split_evenly((kinds.len().max(1), 1));
            for (kind, area) in kinds.iter().zip(&areas) {
                let states: Vec<&VisitedState> =
                    picture.states.iter().filter(|s| s.kind == *kind).collect();
                draw_panel(area, title, *kind, &states, picture.optimal.as_deref())?;
            }
            root.present()?;
        }
        Ok(svg)
    };
    draw().map_err(|e| format!("cannot draw the policy picture: {e}"))
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    kind: LocationKind,
    states: &[&VisitedState],
    optimal_name: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let point = |s: &VisitedState| {
        let position: f32 = s.pipeline.iter().sum();
        (f64::from(position), f64::from(s.order))
    };
    let locations = states.iter().map(|s| s.index).max().map_or(0, |m| m + 1);
    let coloured = locations > 1 && locations <= MAX_COLOURED_LOCATIONS;
    // one series per location when coloured, else one for all
    let series: Vec<(Option<usize>, Points)> = if coloured {
        (0..locations)
            .map(|i| {
                let points: Vec<(f64, f64)> = states
                    .iter()
                    .filter(|s| s.index == i)
                    .map(|s| point(s))
                    .collect();
                (Some(i), drawn_points(&points, MAX_DRAWN_POINTS / locations))
            })
            .collect()
    } else {
        let points: Vec<(f64, f64)> = states.iter().map(|s| point(s)).collect();
        vec![(None, drawn_points(&points, MAX_DRAWN_POINTS))]
    };
    let optimal: Vec<(f64, f64)> = states
        .iter()
        .filter_map(|s| s.optimal_order.map(|o| (point(s).0, o)))
        .collect();
    let optimal = drawn_points(&optimal, MAX_DRAWN_POINTS);
    let (mut x_lo, mut x_hi, mut y_hi) = (f64::INFINITY, f64::NEG_INFINITY, 1.0f64);
    for (x, y) in series.iter().flat_map(|(_, p)| p).chain(&optimal) {
        x_lo = x_lo.min(*x);
        x_hi = x_hi.max(*x);
        y_hi = y_hi.max(*y);
    }
    if !x_lo.is_finite() || x_hi <= x_lo {
        (x_lo, x_hi) = (0.0, 1.0);
    }
    let pad = (x_hi - x_lo) * 0.05 + 0.5;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "{title}: orders of the {} against their inventory position (visited test states)",
                kind.plural()
            ),
            ("sans-serif", 16),
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
    for (index, points) in &series {
        let colour = match index {
            Some(i) => Palette99::pick(*i).to_rgba(),
            None => BLUE.to_rgba(),
        };
        let label = match index {
            Some(i) => format!("{} {i}", kind.plural().trim_end_matches('s')),
            None => "learned policy".to_string(),
        };
        chart
            .draw_series(
                points
                    .iter()
                    .map(move |&p| Circle::new(p, 3, colour.mix(0.35).filled())),
            )?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, colour.filled()));
    }
    if let Some(name) = optimal_name.filter(|_| !optimal.is_empty()) {
        chart
            .draw_series(optimal.iter().map(|&p| Cross::new(p, 4, RED.mix(0.6))))?
            .label(name.to_string())
            .legend(|(x, y)| Cross::new((x + 10, y), 4, RED));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
