//! The symmetry-aware policy: the split first store layer against the concatenated layer of the
//! reference, gradients, equivariance of the shared store network, feasibility of the actions.

use hdpo_autodiff::gradcheck::{GradcheckOptions, check, check_directional};
use hdpo_autodiff::{ParamId, ParamStore, Tape, Var};
use hdpo_policy::symmetry::SymmetryAwareNet;
use hdpo_policy::{NetworkShape, Policy, PolicyError, PolicySpec, TapeObservation};
use hdpo_sim::config::{Setting, Split, StaticFeature};
use hdpo_sim::fused::{TapeActions, TapeDynamics, TapeState};
use hdpo_sim::scenario::{Scenario, ScenarioGenerator};
use hdpo_sim::settings::setting;
use hdpo_sim::state::{State, Statics};
use ndarray::{Array2, Axis, s};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/// Statics the symmetry-aware net reads; the trainer adds them by default for this policy.
const STATICS: [StaticFeature; 4] = [
    StaticFeature::Mean,
    StaticFeature::Std,
    StaticFeature::UnderageCost,
    StaticFeature::LeadTime,
];

fn setting_for(name: &str) -> Setting {
    let mut st = setting(name).expect("embedded setting");
    for f in STATICS {
        if !st.observation.static_features.contains(&f) {
            st.observation.static_features.push(f);
        }
    }
    st
}

fn spec(
    ctx_hidden: &[usize],
    ctx: usize,
    store: &[usize],
    wh: &[usize],
    transshipment: bool,
) -> PolicySpec {
    PolicySpec::SymmetryAware {
        context_hidden: ctx_hidden.to_vec(),
        context_size: ctx,
        store_hidden: store.to_vec(),
        warehouse_hidden: wh.to_vec(),
        transshipment,
        demand_scaling: false,
    }
}

fn default_spec(transshipment: bool) -> PolicySpec {
    spec(&[256], 256, &[32, 32], &[16, 16], transshipment)
}

fn build(spec: PolicySpec, shape: &NetworkShape, seed: u64) -> (Policy, ParamStore) {
    let mut params = ParamStore::new();
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let policy = Policy::build(spec, shape, &mut params, &mut rng).expect("symmetry_aware builds");
    (policy, params)
}

fn net_of(policy: &Policy) -> SymmetryAwareNet {
    let mut p = ParamStore::new();
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    SymmetryAwareNet::build(&policy.spec, &policy.shape, &mut p, &mut rng).expect("builds")
}

/// `B` samples of the train split with random positive warehouse stock (warehouses start empty).
fn scenario(st: &Setting, b: usize) -> Scenario {
    let mut sc = ScenarioGenerator::new(st, Split::Train)
        .expect("generator")
        .generate(0..b, 3);
    let mut rng = Pcg64Mcg::seed_from_u64(17);
    for v in sc.initial.warehouse.iter_mut() {
        *v = rng.random_range(2.0..40.0);
    }
    sc
}

fn act(
    policy: &Policy,
    params: &ParamStore,
    statics: &Statics,
    state: &State,
) -> (Array2<f32>, Array2<f32>) {
    let mut tape = Tape::no_grad();
    let ts = TapeState::from_state(&mut tape, state);
    let obs = TapeObservation {
        statics,
        state: ts,
        period: 0,
        past_demands: None,
        future_demand: None,
    };
    let a = policy.act(&mut tape, params, &obs);
    (
        tape.value(a.store).clone(),
        tape.value(a.warehouse.expect("W = 1")).clone(),
    )
}

fn assert_close(a: &Array2<f32>, b: &Array2<f32>, tol: f32, what: &str) {
    assert_eq!(a.dim(), b.dim(), "{what}: shapes");
    for ((idx, &x), &y) in a.indexed_iter().zip(b.iter()) {
        assert!(
            (x - y).abs() <= tol * (1.0 + x.abs().max(y.abs())),
            "{what} at {idx:?}: {x} vs {y}"
        );
    }
}

/// Store actions reshaped to `(B, S)` followed by the warehouse order: `(B, S + 1)`.
fn flat_actions(tape: &mut Tape, a: &TapeActions, b: usize) -> Var {
    let (r, c) = tape.shape(a.store);
    let store = tape.reshape(a.store, b, r * c / b);
    tape.concat_cols(&[store, a.warehouse.expect("W = 1")])
}

// ---------------------------------------------------------------------------------------------
// reference forward: the store MLP on the concatenated input [pipeline, mean, std, p, L, c]
// ---------------------------------------------------------------------------------------------

fn elu(x: f32) -> f32 {
    if x > 0.0 { x } else { x.exp_m1() }
}
fn softplus(x: f32) -> f32 {
    if x > 20.0 { x } else { x.exp().ln_1p() }
}
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn param(params: &ParamStore, name: &str) -> Array2<f32> {
    params
        .value(
            params
                .find(name)
                .unwrap_or_else(|| panic!("no parameter {name}")),
        )
        .clone()
}

/// Layers `first ..` of `name` that exist.
fn layers_from(params: &ParamStore, name: &str, first: usize) -> Vec<(Array2<f32>, Array2<f32>)> {
    let mut out = Vec::new();
    let mut k = first;
    while params.find(&format!("{name}.{k}.weight")).is_some() {
        out.push((
            param(params, &format!("{name}.{k}.weight")),
            param(params, &format!("{name}.{k}.bias")),
        ));
        k += 1;
    }
    out
}

fn mlp(layers: &[(Array2<f32>, Array2<f32>)], x: &[f32], out_act: fn(f32) -> f32) -> Vec<f32> {
    let mut h = x.to_vec();
    for (k, (w, b)) in layers.iter().enumerate() {
        assert_eq!(w.nrows(), h.len(), "layer {k} input width");
        let mut y: Vec<f32> = b.row(0).to_vec();
        for (i, &xi) in h.iter().enumerate() {
            for (j, yj) in y.iter_mut().enumerate() {
                *yj += xi * w[[i, j]];
            }
        }
        let act = if k + 1 == layers.len() { out_act } else { elu };
        h = y.into_iter().map(act).collect();
    }
    h
}

fn reference_forward(
    policy: &Policy,
    params: &ParamStore,
    st: &Statics,
    state: &State,
    trans: bool,
) -> (Array2<f32>, Array2<f32>) {
    let shape = &policy.shape;
    let (s, b) = (shape.n_stores, st.n_samples);
    let context = layers_from(params, "symmetry_aware.context", 0);
    let warehouse = layers_from(params, "symmetry_aware.warehouse", 0);
    // the unsplit first store layer: rows [local (Ls + 4); context (C)]
    let first = ndarray::concatenate![
        Axis(0),
        param(params, "symmetry_aware.store.0.weight_local"),
        param(params, "symmetry_aware.store.0.weight_context")
    ];
    let mut store_layers = vec![(first, param(params, "symmetry_aware.store.0.bias"))];
    store_layers.extend(layers_from(params, "symmetry_aware.store", 1));
    let mut ships = Array2::zeros((b * s, 1));
    let mut orders = Array2::zeros((b, 1));
    for bi in 0..b {
        let mut ctx_in: Vec<f32> = state
            .store
            .slice(s![bi * s..(bi + 1) * s, ..])
            .iter()
            .copied()
            .collect();
        ctx_in.extend(state.warehouse.row(bi).iter());
        let c = mlp(&context, &ctx_in, sigmoid);
        let mut wh_in: Vec<f32> = state.warehouse.row(bi).to_vec();
        wh_in.extend(&c);
        orders[[bi, 0]] = mlp(&warehouse, &wh_in, sigmoid)[0] * shape.upper_bound;
        let q: Vec<f32> = (0..s)
            .map(|j| {
                let r = bi * s + j;
                let mut x: Vec<f32> = state.store.row(r).to_vec();
                x.extend([
                    st.mean[r],
                    st.std[r],
                    st.underage_cost[r],
                    st.lead_time[[r, 0]] as f32,
                ]);
                x.extend(&c);
                mlp(&store_layers, &x, softplus)[0]
            })
            .collect();
        let total: f32 = q.iter().sum();
        let mut k = state.warehouse[[bi, 0]] / (total + 1e-10);
        if !trans {
            k = k.min(1.0);
        }
        for j in 0..s {
            ships[[bi * s + j, 0]] = q[j] * k;
        }
    }
    (ships, orders)
}

// ---------------------------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------------------------

#[test]
fn split_first_layer_matches_the_concatenated_reference() {
    for (name, trans) in [
        ("one_warehouse_lost", false),
        ("transshipment_backlogged", true),
    ] {
        let st = setting_for(name);
        let shape = NetworkShape::from_setting(&st).unwrap();
        let (policy, params) = build(default_spec(trans), &shape, 3);
        let sc = scenario(&st, 5);
        let (ships, orders) = act(&policy, &params, &sc.statics, &sc.initial);
        let (want_ships, want_orders) =
            reference_forward(&policy, &params, &sc.statics, &sc.initial, trans);
        assert_close(&ships, &want_ships, 2e-5, &format!("{name}: shipments"));
        assert_close(
            &orders,
            &want_orders,
            2e-5,
            &format!("{name}: warehouse orders"),
        );
    }
    // a store MLP without hidden layers (the first layer is the output layer)
    let st = setting_for("one_warehouse_lost");
    let shape = NetworkShape::from_setting(&st).unwrap();
    let (policy, params) = build(spec(&[8], 4, &[], &[], false), &shape, 4);
    let sc = scenario(&st, 3);
    let (ships, orders) = act(&policy, &params, &sc.statics, &sc.initial);
    let (want_ships, want_orders) =
        reference_forward(&policy, &params, &sc.statics, &sc.initial, false);
    assert_close(&ships, &want_ships, 2e-5, "no store hidden layers");
    assert_close(&orders, &want_orders, 2e-5, "no warehouse hidden layers");
}

/// Warehouse stock chosen so that one sample is rationed (k < 1) and the other is not.
fn gradcheck_state(sc: &Scenario, low: f32, high: f32) -> State {
    let mut state = sc.initial.clone();
    state.warehouse[[0, 0]] = low;
    state.warehouse[[1, 0]] = high;
    state
}

#[test]
fn gradcheck_wrt_input_pipelines() {
    for (name, trans) in [
        ("one_warehouse_lost", false),
        ("transshipment_backlogged", true),
    ] {
        let mut st = setting_for(name);
        st.apply_override("network.n_stores", "3").unwrap();
        let shape = NetworkShape::from_setting(&st).unwrap();
        let (policy, params) = build(spec(&[6], 5, &[4, 3], &[3], trans), &shape, 5);
        let net = net_of(&policy);
        let sc = scenario(&st, 2);
        // desired quantities start near softplus(·) ≈ 0.3–1 per store
        let state = gradcheck_state(&sc, 0.6, 12.0);
        let inputs = vec![state.store.clone(), state.warehouse.clone()];
        let f = |tape: &mut Tape, v: &[Var]| {
            let ts = TapeState {
                store: v[0],
                warehouse: Some(v[1]),
                echelon: None,
            };
            let obs = TapeObservation {
                statics: &sc.statics,
                state: ts,
                period: 0,
                past_demands: None,
                future_demand: None,
            };
            // parameters as constants: the gradcheck's backward pass has no parameter gradients
            let a = net.act_with(
                tape,
                &mut |t: &mut Tape, id: ParamId| t.constant(params.value(id).clone()),
                &obs,
            );
            flat_actions(tape, &a, 2)
        };
        let report = check(&inputs, f, &GradcheckOptions::default());
        assert!(report.passed, "{name}: {report}");
    }
}

#[test]
fn gradcheck_wrt_parameters() {
    for (name, trans) in [
        ("one_warehouse_lost", false),
        ("transshipment_backlogged", true),
    ] {
        let st = setting_for(name);
        let shape = NetworkShape::from_setting(&st).unwrap();
        let (policy, params) = build(spec(&[6], 5, &[4, 3], &[3], trans), &shape, 6);
        let net = net_of(&policy);
        let sc = scenario(&st, 2);
        let state = gradcheck_state(&sc, 0.8, 30.0);
        let ids: Vec<ParamId> = params.ids().collect();
        let inputs: Vec<Array2<f32>> = ids.iter().map(|&id| params.value(id).clone()).collect();
        let position = |id: ParamId| ids.iter().position(|&x| x == id).expect("known parameter");
        let f = |tape: &mut Tape, v: &[Var]| {
            let ts = TapeState::from_state(tape, &state);
            let obs = TapeObservation {
                statics: &sc.statics,
                state: ts,
                period: 0,
                past_demands: None,
                future_demand: None,
            };
            let a = net.act_with(tape, &mut |_: &mut Tape, id: ParamId| v[position(id)], &obs);
            flat_actions(tape, &a, 2)
        };
        let opts = GradcheckOptions {
            eps: 1e-3,
            ..GradcheckOptions::default()
        };
        let report = check_directional(&inputs, f, 12, &opts);
        assert!(report.passed, "{name}: {report}");
    }
}

/// The context MLP reads the store pipelines in store order (as the reference), so the network is
/// equivariant when that first layer treats the stores alike: with the weight rows of every
/// store's pipeline block tied, permuting the stores permutes the shipments and leaves the
/// warehouse order unchanged (this checks the shared store network, the broadcast of the context
/// to the store rows and the allocation).
#[test]
fn permuting_stores_permutes_shipments_when_the_context_is_symmetric() {
    let st = setting_for("one_warehouse_lost");
    let shape = NetworkShape::from_setting(&st).unwrap();
    let (s, ls) = (shape.n_stores, shape.store_pipeline);
    let (policy, mut params) = build(default_spec(false), &shape, 7);
    let id = params.find("symmetry_aware.context.0.weight").unwrap();
    let w = params.value_mut(id);
    let block = w.slice(s![0..ls, ..]).to_owned();
    for j in 1..s {
        w.slice_mut(s![j * ls..(j + 1) * ls, ..]).assign(&block);
    }
    let b = 4;
    let sc = scenario(&st, b);
    let perm = [3usize, 0, 4, 1, 2];
    let rows: Vec<usize> = (0..b)
        .flat_map(|bi| perm.iter().map(move |&p| bi * s + p))
        .collect();
    let mut st2 = sc.statics.clone();
    st2.holding_cost = sc.statics.holding_cost.select(Axis(0), &rows);
    st2.underage_cost = sc.statics.underage_cost.select(Axis(0), &rows);
    st2.mean = sc.statics.mean.select(Axis(0), &rows);
    st2.std = sc.statics.std.select(Axis(0), &rows);
    st2.lead_time = sc.statics.lead_time.select(Axis(0), &rows);
    let mut state2 = sc.initial.clone();
    state2.store = sc.initial.store.select(Axis(0), &rows);
    let (ships, orders) = act(&policy, &params, &sc.statics, &sc.initial);
    let (ships2, orders2) = act(&policy, &params, &st2, &state2);
    assert_close(
        &ships2,
        &ships.select(Axis(0), &rows),
        1e-5,
        "permuted shipments",
    );
    assert_close(&orders2, &orders, 1e-5, "warehouse order unchanged");
    let col = ships.column(0).to_owned();
    assert!(
        col.iter().any(|&x| (x - col[0]).abs() > 1e-4),
        "shipments differ across stores"
    );
}

fn feasible_step(name: &str, trans: bool) {
    let st = setting_for(name);
    let shape = NetworkShape::from_setting(&st).unwrap();
    let (policy, params) = build(default_spec(trans), &shape, 8);
    let b = 16;
    let sc = scenario(&st, b);
    let mut state = sc.initial.clone();
    state.warehouse[[0, 0]] = 0.0;
    state.warehouse[[1, 0]] = 1e4;
    let mut tape = Tape::new();
    let ts = TapeState::from_state(&mut tape, &state);
    let obs = TapeObservation {
        statics: &sc.statics,
        state: ts,
        period: 0,
        past_demands: None,
        future_demand: None,
    };
    let a = policy.act(&mut tape, &params, &obs);
    let s = shape.n_stores;
    let store = tape.value(a.store).clone();
    assert_eq!(store.dim(), (b * s, 1));
    assert!(
        store.iter().all(|&q| q.is_finite() && q >= 0.0),
        "{name}: shipments finite and ≥ 0"
    );
    for bi in 0..b {
        let shipped: f32 = (0..s).map(|j| store[[bi * s + j, 0]]).sum();
        let on_hand = state.warehouse[[bi, 0]];
        let tol = 1e-4 * (1.0 + on_hand);
        assert!(
            shipped <= on_hand + tol,
            "{name}: sample {bi} ships {shipped} > {on_hand}"
        );
        if trans {
            assert!(
                (shipped - on_hand).abs() <= tol,
                "{name}: transshipment ships all: {shipped} vs {on_hand}"
            );
        }
    }
    let orders = tape.value(a.warehouse.expect("W = 1")).clone();
    assert!(
        orders
            .iter()
            .all(|&q| q.is_finite() && (0.0..=shape.upper_bound).contains(&q)),
        "orders in [0, U]"
    );
    let dynamics = TapeDynamics::new(&sc.statics);
    let demand = tape.constant(sc.demand.slice(s![.., 0..1]).to_owned());
    let (_, cost) = dynamics
        .step(&mut tape, &ts, &a, demand)
        .unwrap_or_else(|err| panic!("{name}: step failed: {err}"));
    let total = cost.total(&mut tape);
    let mut grads = params.zero_grads();
    tape.backward(total, &mut grads);
    assert!(grads.all_finite(), "{name}: finite gradients");
}

#[test]
fn actions_are_feasible_and_step() {
    feasible_step("one_warehouse_lost", false);
    feasible_step("transshipment_backlogged", true);
}

#[test]
fn needs_one_warehouse_and_its_features() {
    let mut params = ParamStore::new();
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    for name in ["many_warehouses_lost", "serial_system", "one_store_lost"] {
        let shape = NetworkShape::from_setting(&setting_for(name)).unwrap();
        let err = Policy::build(default_spec(false), &shape, &mut params, &mut rng).unwrap_err();
        assert!(
            matches!(err, PolicyError::Unsupported { .. }),
            "{name}: {err}"
        );
    }
    // one_warehouse_lost shows mean and std but not underage costs and lead times
    let shape = NetworkShape::from_setting(&setting("one_warehouse_lost").unwrap()).unwrap();
    let err = Policy::build(default_spec(false), &shape, &mut params, &mut rng).unwrap_err();
    assert!(matches!(err, PolicyError::MissingFeature { .. }), "{err}");
}

#[test]
fn multiply_adds_count_the_context_once_per_sample() {
    let shape = NetworkShape::from_setting(&setting_for("one_warehouse_lost")).unwrap();
    let (policy, _) = build(default_spec(false), &shape, 0);
    let net = net_of(&policy);
    let (s, ls, lw) = (
        shape.n_stores,
        shape.store_pipeline,
        shape.warehouse_pipeline,
    );
    let context = (s * ls + lw) * 256 + 256 * 256;
    let warehouse = (lw + 256) * 16 + 16 * 16 + 16;
    let stores = 256 * 32 + s * ((ls + 4) * 32 + 32 * 32 + 32);
    assert_eq!(net.macs_per_sample(), context + warehouse + stores);
}
