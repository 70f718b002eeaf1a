//! The one-store MLP's level output: a net whose output ignores the state is exactly a base-stock
//! policy, its gradients match finite differences, and the order output (the reference) still
//! reads and writes the configuration text it did before the level output existed.

use hdpo_autodiff::{ParamStore, Tape};
use hdpo_policy::{Activation, NetworkShape, OneStoreOutput, Policy, PolicySpec, TapeObservation};
use hdpo_sim::config::{Setting, Split};
use hdpo_sim::fused::TapeState;
use hdpo_sim::scenario::{Scenario, ScenarioGenerator};
use hdpo_sim::settings::setting;
use ndarray::Array2;
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

fn level_spec(input_scale: f32, initial_level: f32) -> PolicySpec {
    PolicySpec::VanillaOneStore {
        hidden: vec![6, 5],
        activation: Activation::Elu,
        input_scale,
        output: OneStoreOutput::Level,
        initial_level,
    }
}

fn backlogged() -> Setting {
    setting("one_store_backlogged").expect("embedded setting")
}

fn build(spec: PolicySpec, st: &Setting) -> (Policy, ParamStore) {
    let shape = NetworkShape::from_setting(st).expect("shape");
    let mut params = ParamStore::new();
    let mut rng = Pcg64Mcg::seed_from_u64(3);
    let policy = Policy::build(spec, &shape, &mut params, &mut rng).expect("builds");
    (policy, params)
}

fn scenario(st: &Setting, b: usize) -> Scenario {
    ScenarioGenerator::new(st, Split::Train)
        .expect("generator")
        .generate(0..b, 1)
}

/// The store orders for `store` pipelines, `(B, 1)`.
fn orders(policy: &Policy, params: &ParamStore, sc: &Scenario, store: &Array2<f32>) -> Vec<f32> {
    let mut tape = Tape::no_grad();
    let mut state = sc.initial.clone();
    state.store = store.clone();
    let ts = TapeState::from_state(&mut tape, &state);
    let obs = TapeObservation {
        statics: &sc.statics,
        state: ts,
        period: 0,
        past_demands: None,
        future_demand: None,
    };
    let a = policy.act(&mut tape, params, &obs);
    tape.value(a.store).iter().copied().collect()
}

#[test]
fn a_level_net_whose_output_ignores_the_state_is_base_stock() {
    let st = backlogged();
    let (policy, mut params) = build(level_spec(0.2, 30.0), &st);
    // zero the last layer's weights: the output is its bias, 0.2 × 30 (the level in scaled units)
    let last = params
        .ids()
        .filter(|&id| params.name(id).ends_with(".weight"))
        .last()
        .expect("a weight");
    params.value_mut(last).fill(0.0);
    let sc = scenario(&st, 4);
    // inventory positions 46 (over the level), 30, 12 and −40 (a backlog)
    let mut store = Array2::<f32>::zeros(sc.initial.store.dim());
    for (row, position) in [46.0f32, 30.0, 12.0, -40.0].into_iter().enumerate() {
        store[[row, 0]] = position - 3.0;
        store[[row, 1]] = 3.0;
    }
    let got = orders(&policy, &params, &sc, &store);
    for (order, want) in got.iter().zip([0.0f32, 0.0, 18.0, 70.0]) {
        assert!((order - want).abs() <= 1e-4 * (1.0 + want), "{got:?}");
    }
}

#[test]
fn an_untrained_level_net_orders_near_its_initial_level() {
    // the random hidden layers move the level by a few units at most, not by tens
    let st = backlogged();
    let (policy, params) = build(level_spec(0.2, 25.0), &st);
    let sc = scenario(&st, 64);
    let store = Array2::<f32>::zeros(sc.initial.store.dim());
    for order in orders(&policy, &params, &sc, &store) {
        assert!((order - 25.0).abs() < 10.0, "{order}");
    }
}

#[test]
fn level_output_gradients_match_finite_differences() {
    // `gradcheck::check` feeds the policy no parameter gradients (`Policy::act` reads its weights
    // from the store), so the check is spelled out: the tape's gradient of Σ w·orders with respect
    // to the pipelines against central differences of the tape-free forward
    let st = backlogged();
    let (policy, params) = build(level_spec(0.2, 40.0), &st);
    let sc = scenario(&st, 3);
    // positions well below the level (away from the kink of max(·, 0)) and one above it (order 0)
    let mut store = sc.initial.store.clone();
    store.row_mut(2).fill(30.0);
    let weights = [0.7f32, -1.3, 1.1];
    let loss = |x: &Array2<f32>| -> f64 {
        orders(&policy, &params, &sc, x)
            .iter()
            .zip(weights)
            .map(|(&o, w)| f64::from(o) * f64::from(w))
            .sum()
    };
    let mut tape = Tape::new();
    let x = tape.variable(store.clone());
    let obs = TapeObservation {
        statics: &sc.statics,
        state: TapeState {
            store: x,
            warehouse: None,
            echelon: None,
        },
        period: 0,
        past_demands: None,
        future_demand: None,
    };
    let y = policy.act(&mut tape, &params, &obs).store;
    let w = tape.constant(Array2::from_shape_vec((3, 1), weights.to_vec()).unwrap());
    let weighted = tape.mul(y, w);
    let total = tape.sum_all(weighted);
    let mut grads = params.zero_grads();
    tape.backward(total, &mut grads);
    let analytic = tape.grad(x).expect("the pipelines get a gradient").clone();
    let mut moved = store.clone();
    let mut nonzero = 0;
    for ((row, col), &x0) in store.indexed_iter() {
        let h = 1e-2 * x0.abs().max(1.0);
        moved[[row, col]] = x0 + h;
        let plus = loss(&moved);
        moved[[row, col]] = x0 - h;
        let minus = loss(&moved);
        moved[[row, col]] = x0;
        let numeric = (plus - minus) / (f64::from(x0 + h) - f64::from(x0 - h));
        let got = f64::from(analytic[[row, col]]);
        assert!(
            (got - numeric).abs() <= 2e-3 + 1e-2 * numeric.abs(),
            "({row}, {col}): analytic {got}, numeric {numeric}"
        );
        nonzero += usize::from(got.abs() > 1e-3);
    }
    // the sample above its level orders nothing: no gradient through it; the others have one
    assert!(analytic.row(2).iter().all(|&g| g == 0.0), "{analytic}");
    assert!(nonzero >= store.ncols(), "{analytic}");
}

#[test]
fn order_output_specs_read_and_write_the_text_they_did_before() {
    let old =
        "kind = \"vanilla_one_store\"\nhidden = [4]\nactivation = \"elu\"\ninput_scale = 0.2\n";
    let spec: PolicySpec = toml::from_str(old).unwrap();
    assert!(matches!(
        spec,
        PolicySpec::VanillaOneStore {
            output: OneStoreOutput::Order,
            initial_level: 0.0,
            ..
        }
    ));
    assert_eq!(toml::to_string(&spec).unwrap(), old);
    let level = level_spec(0.2, 25.0);
    let text = toml::to_string(&level).unwrap();
    assert!(
        text.contains("output = \"level\"") && text.contains("initial_level = 25"),
        "{text}"
    );
    assert_eq!(toml::from_str::<PolicySpec>(&text).unwrap(), level);
}

#[test]
fn a_negative_or_infinite_initial_level_is_refused_with_the_field() {
    for bad in [-1.0f32, f32::INFINITY, f32::NAN] {
        let err = level_spec(0.2, bad).validate().unwrap_err().to_string();
        assert!(err.contains("initial_level"), "{err}");
    }
}
