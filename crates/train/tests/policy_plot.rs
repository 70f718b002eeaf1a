//! The policy picture: the optimal rule it compares against is the optimal policy (run in our
//! simulator it costs the solvers' optimum, within sampling error), the visited states are those
//! of the test split's dynamics, and the agreement figures count what they say.

use hdpo_optimum::optimal_rule::OptimalRule;
use hdpo_optimum::{Classification, Problem};
use hdpo_sim::config::{Setting, Split};
use hdpo_sim::eval::{ActionPolicy, EvalObservation, EvalOptions, evaluate};
use hdpo_sim::settings::setting;
use hdpo_sim::state::Actions;
use hdpo_train::policy_plot::{
    LocationKind, PICTURE_PERIODS, PICTURE_SAMPLES, PICTURE_WARM_UP, PolicyPicture, VisitedState,
    policy_picture, render_policy_picture,
};
use hdpo_train::{TrainConfig, Trainer};

struct RulePolicy(OptimalRule);

impl ActionPolicy for RulePolicy {
    fn act(&self, obs: &EvalObservation<'_>, actions: &mut Actions) {
        for (row, mut order) in obs
            .state()
            .store
            .rows()
            .into_iter()
            .zip(actions.store.rows_mut())
        {
            let pipeline: Vec<f64> = row.iter().map(|&x| f64::from(x)).collect();
            order[0] = self_order(&self.0, &pipeline) as f32;
        }
    }
}

/// The rule's order. In the first periods a lost-sales store still holds its fractional initial
/// stock (`U(0, 1) ×` mean in every slot, also past the lead time), where the programme (integer
/// states of L slots) has no order: it orders nothing there, which ends with the first stock-out;
/// the reported periods start long after.
fn self_order(rule: &OptimalRule, pipeline: &[f64]) -> f64 {
    rule.order(pipeline).unwrap_or(0.0)
}

fn rule_and_optimum(s: &Setting) -> (OptimalRule, f64) {
    let Classification::Solvable(problem) = Problem::from_setting(s).unwrap() else {
        panic!("{}: a solver applies", s.name)
    };
    let optimum = problem.solve().unwrap().cost;
    let rule = OptimalRule::for_problem(&problem)
        .unwrap()
        .expect("one store");
    (rule, optimum)
}

#[test]
fn the_optimal_rule_run_in_our_simulator_costs_the_optimum() {
    for (name, overrides) in [
        ("one_store_lost", vec![]),
        (
            "one_store_lost",
            vec!["setting.stores.lead_time=2", "setting.underage_cost=19"],
        ),
        ("one_store_backlogged", vec![]),
    ] {
        let mut s = setting(name).unwrap();
        for kv in &overrides {
            let (k, v) = kv.split_once('=').unwrap();
            hdpo_train::apply_setting_overrides(&mut s, &[(k.to_string(), v.to_string())]).unwrap();
        }
        let test = &mut s.splits.test;
        test.n_samples = 2048;
        test.batch_size = 2048;
        test.periods = 1200;
        test.ignore_periods = 200;
        let (rule, optimum) = rule_and_optimum(&s);
        let report = evaluate(
            &s,
            Split::Test,
            &RulePolicy(rule),
            &EvalOptions::for_setting(&s),
        )
        .unwrap();
        let se = report.cost_std_error.unwrap();
        let cost = report.cost_per_store_period;
        assert!(
            (cost - optimum).abs() < 4.0 * se,
            "{name} {overrides:?}: the optimal rule costs {cost:.4} ± {se:.4}, the optimum is {optimum:.4}"
        );
        // a wrong rule is told apart at this precision: base stock one unit off
        if let Some(OptimalRule::BaseStock { level }) = match name {
            "one_store_backlogged" => Some(rule_and_optimum(&s).0),
            _ => None,
        } {
            let off = evaluate(
                &s,
                Split::Test,
                &RulePolicy(OptimalRule::BaseStock { level: level + 1.0 }),
                &EvalOptions::for_setting(&s),
            )
            .unwrap();
            assert!(
                off.cost_per_store_period - optimum > 4.0 * se,
                "one unit over S* costs {:.4}",
                off.cost_per_store_period
            );
        }
    }
}

#[test]
fn the_picture_records_the_visited_test_states() {
    let config =
        TrainConfig::default_for(setting("one_store_lost").unwrap(), "vanilla_one_store").unwrap();
    let t = Trainer::new(config).unwrap();
    let picture = policy_picture(&t.config.setting, &t.policy, &t.params)
        .unwrap()
        .expect("a one-store policy has a picture");
    // every sample, every period after the warm-up in which an order can still arrive (L = 4)
    let lead_time = 4;
    assert_eq!(
        picture.states.len(),
        PICTURE_SAMPLES * (PICTURE_PERIODS - PICTURE_WARM_UP - lead_time)
    );
    assert_eq!(
        picture.optimal.as_deref(),
        Some("optimal (lost-sales dynamic programme)")
    );
    let (rule, _) = rule_and_optimum(&t.config.setting);
    for s in &picture.states {
        assert_eq!(s.pipeline.len(), lead_time);
        // Poisson demand and rounded orders: integer states and orders, all inside the
        // programme's state space
        assert!(
            s.pipeline.iter().all(|x| x.fract() == 0.0 && *x >= 0.0),
            "{s:?}"
        );
        assert_eq!(s.order.fract(), 0.0);
        let pipeline: Vec<f64> = s.pipeline.iter().map(|&x| f64::from(x)).collect();
        assert_eq!(s.optimal_order, rule.order(&pipeline));
        assert!(s.optimal_order.is_some());
    }
    // sorted: the picture does not depend on the order threads recorded in
    assert!(
        picture
            .states
            .windows(2)
            .all(|w| w[0].pipeline <= w[1].pipeline)
    );
    // a network: every store and the warehouse, each period after the warm-up, no optimal rule
    let network = TrainConfig::default_for(setting("one_warehouse_lost").unwrap(), "gnn").unwrap();
    let stores = network.setting.n_stores();
    let t = Trainer::new(network).unwrap();
    let picture = policy_picture(&t.config.setting, &t.policy, &t.params)
        .unwrap()
        .expect("networks have a picture too");
    let count = |kind| picture.states.iter().filter(|s| s.kind == kind).count();
    let visited = PICTURE_SAMPLES * (PICTURE_PERIODS - PICTURE_WARM_UP);
    assert_eq!(count(LocationKind::Store), visited * stores);
    assert_eq!(count(LocationKind::Warehouse), visited);
    assert_eq!(count(LocationKind::Echelon), 0);
    assert!(picture.optimal.is_none() && picture.agreement().is_none());
    for i in 0..stores {
        assert_eq!(
            picture
                .states
                .iter()
                .filter(|s| s.kind == LocationKind::Store && s.index == i)
                .count(),
            visited
        );
    }
    assert!(picture.states.iter().all(|s| s.order >= 0.0));
    let svg = render_policy_picture("t", &picture).unwrap();
    assert!(svg.contains("orders of the stores") && svg.contains("orders of the warehouses"));
    assert!(svg.len() < 1_500_000, "{} bytes", svg.len());
}

#[test]
fn agreement_counts_orders_within_half_a_unit_of_the_optimal() {
    let state = |order: f32, optimal: Option<f64>| VisitedState {
        kind: LocationKind::Store,
        index: 0,
        pipeline: vec![1.0, 2.0],
        order,
        optimal_order: optimal,
    };
    let picture = PolicyPicture {
        states: vec![
            state(3.0, Some(3.0)),
            state(3.4, Some(3.0)),
            state(5.0, Some(3.0)),
            state(1.0, None),
        ],
        optimal: Some("x".into()),
    };
    let (same, mean_abs) = picture.agreement().unwrap();
    assert!((same - 2.0 / 3.0).abs() < 1e-12);
    assert!((mean_abs - 2.4 / 3.0).abs() < 1e-6);
    let none = PolicyPicture {
        states: vec![state(1.0, None)],
        optimal: None,
    };
    assert!(none.agreement().is_none());
}
