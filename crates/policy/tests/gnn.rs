//! The GNN policy: graph construction, a per-sample reference forward pass (the spec's
//! concatenated-input formulation, written independently of the batched code), gradients,
//! permutation equivariance, the multi-warehouse column mapping and feasibility of every action.

// the reference forward pass is written with explicit node and edge indices, as in the spec
#![allow(clippy::needless_range_loop)]

use hdpo_autodiff::gradcheck::{GradcheckOptions, check, check_directional};
use hdpo_autodiff::{ParamId, ParamStore, Tape, Var};
use hdpo_policy::gnn::{EdgeKind, GnnNet};
use hdpo_policy::{NetworkShape, Policy, PolicyError, PolicySpec, TapeObservation};
use hdpo_sim::config::{Setting, Split, StaticFeature};
use hdpo_sim::fused::{TapeActions, TapeDynamics, TapeState};
use hdpo_sim::scenario::{Scenario, ScenarioGenerator};
use hdpo_sim::settings::setting;
use hdpo_sim::state::{State, Statics};
use ndarray::{Array2, Axis, s};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/// Statics the GNN reads; the trainer adds them by default for this policy.
const GNN_STATICS: [StaticFeature; 5] = [
    StaticFeature::HoldingCost,
    StaticFeature::UnderageCost,
    StaticFeature::LeadTime,
    StaticFeature::Mean,
    StaticFeature::Std,
];

fn setting_for_gnn(name: &str) -> Setting {
    let mut st = setting(name).expect("embedded setting");
    for f in GNN_STATICS {
        if !st.observation.static_features.contains(&f) {
            st.observation.static_features.push(f);
        }
    }
    st
}

fn gnn_spec(width: usize, hidden: &[usize], transshipment: bool) -> PolicySpec {
    PolicySpec::Gnn {
        width,
        hidden: hidden.to_vec(),
        rounds: None,
        transshipment,
        output_bias: 5.0,
        demand_scaling: false,
    }
}

/// The spec with every node in units of its mean demand and an output bias of `ln(e − 1)`.
fn demand_scaled(spec: PolicySpec) -> PolicySpec {
    match spec {
        PolicySpec::Gnn {
            width,
            hidden,
            rounds,
            transshipment,
            ..
        } => PolicySpec::Gnn {
            width,
            hidden,
            rounds,
            transshipment,
            output_bias: 0.5413,
            demand_scaling: true,
        },
        other => other,
    }
}

fn build(spec: PolicySpec, shape: &NetworkShape, seed: u64) -> (Policy, ParamStore) {
    let mut params = ParamStore::new();
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let policy = Policy::build(spec, shape, &mut params, &mut rng).expect("gnn builds");
    (policy, params)
}

/// `B` samples of the train split with positive upstream stock (warehouses start empty).
fn scenario(st: &Setting, b: usize) -> Scenario {
    let mut sc = ScenarioGenerator::new(st, Split::Train)
        .expect("generator")
        .generate(0..b, 3);
    let mut rng = Pcg64Mcg::seed_from_u64(99);
    use rand::RngExt;
    for v in sc
        .initial
        .warehouse
        .iter_mut()
        .chain(sc.initial.echelon.iter_mut())
    {
        *v = rng.random_range(2.0..40.0);
    }
    sc
}

struct Out {
    store: Array2<f32>,
    warehouse: Option<Array2<f32>>,
    echelon: Option<Array2<f32>>,
}

fn act(policy: &Policy, params: &ParamStore, statics: &Statics, state: &State) -> Out {
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
    Out {
        store: tape.value(a.store).clone(),
        warehouse: a.warehouse.map(|v| tape.value(v).clone()),
        echelon: a.echelon.map(|v| tape.value(v).clone()),
    }
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

fn gnn_of(policy: &Policy) -> GnnNet {
    // rebuild the same network to inspect its graph (parameters are not needed)
    let mut p = ParamStore::new();
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    GnnNet::build(&policy.spec, &policy.shape, &mut p, &mut rng).expect("builds")
}

// ---------------------------------------------------------------------------------------------
// per-sample reference forward (spec §4.8 as written, with our fixes)
// ---------------------------------------------------------------------------------------------

fn elu(x: f32) -> f32 {
    if x > 0.0 { x } else { x.exp_m1() }
}
fn softplus(x: f32) -> f32 {
    if x > 20.0 { x } else { x.exp().ln_1p() }
}

/// `(weight (in, out), bias (1, out))` of every layer of `name`; the first layer of the two edge
/// MLPs is reassembled from its split parts into the concatenated-input layout of the reference.
fn layers(params: &ParamStore, name: &str) -> Vec<(Array2<f32>, Array2<f32>)> {
    let get = |n: String| {
        params
            .value(
                params
                    .find(&n)
                    .unwrap_or_else(|| panic!("no parameter {n}")),
            )
            .clone()
    };
    let mut out = Vec::new();
    if params.find(&format!("{name}.0.weight")).is_none() {
        let nodes = get(format!("{name}.0.weight_nodes"));
        let own = get(format!("{name}.0.weight_own"));
        let h1 = nodes.ncols() / 2;
        let (src, dst) = (
            nodes.slice(s![.., ..h1]).to_owned(),
            nodes.slice(s![.., h1..]).to_owned(),
        );
        let full = if name.ends_with("initial_edge") {
            ndarray::concatenate![Axis(0), src, dst, own] // [h_src, h_dst, ℓ]
        } else {
            ndarray::concatenate![Axis(0), own, src, dst] // [e, h_src, h_dst]
        };
        out.push((full, get(format!("{name}.0.bias"))));
    } else {
        out.push((
            get(format!("{name}.0.weight")),
            get(format!("{name}.0.bias")),
        ));
    }
    let mut k = 1;
    while params.find(&format!("{name}.{k}.weight")).is_some() {
        out.push((
            get(format!("{name}.{k}.weight")),
            get(format!("{name}.{k}.bias")),
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

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Internal,
    Supplier,
    Demand,
    SelfLoop,
}

/// Graph of one sample: nodes `[echelons, warehouses, stores]`, edges in the spec's order.
fn reference_edges(
    shape: &NetworkShape,
    st: &Statics,
    b: usize,
    trans: bool,
) -> Vec<(Kind, Option<usize>, Option<usize>, f32)> {
    let (e, w, s) = (shape.n_echelons, shape.n_warehouses, shape.n_stores);
    let n = e + w + s;
    // node adjacency matrix with lead times
    let mut lt = vec![vec![None; n]; n];
    for i in 1..e {
        lt[i - 1][i] = Some(st.echelon_lead_time[i] as f32);
    }
    for wh in 0..w {
        if e > 0 {
            lt[e - 1][e + wh] = Some(st.warehouse_lead_time[wh] as f32);
        }
        for j in 0..s {
            if shape.adjacency[wh][j] {
                lt[e + wh][e + w + j] = Some(st.lead_time[[b * s + j, wh]] as f32);
            }
        }
    }
    let mut edges = Vec::new();
    for i in 0..n {
        for j in 0..n {
            if let Some(l) = lt[i][j] {
                edges.push((Kind::Internal, Some(i), Some(j), l));
            }
        }
    }
    if e > 0 {
        edges.push((
            Kind::Supplier,
            None,
            Some(0),
            st.echelon_lead_time[0] as f32,
        ));
    } else if w > 0 {
        for wh in 0..w {
            edges.push((
                Kind::Supplier,
                None,
                Some(wh),
                st.warehouse_lead_time[wh] as f32,
            ));
        }
    } else {
        for j in 0..s {
            edges.push((
                Kind::Supplier,
                None,
                Some(j),
                st.lead_time[[b * s + j, 0]] as f32,
            ));
        }
    }
    for j in 0..s {
        edges.push((Kind::Demand, Some(e + w + j), None, 0.0));
    }
    if !trans {
        for v in 0..n {
            if lt[v].iter().any(|x| x.is_some()) {
                edges.push((Kind::SelfLoop, Some(v), Some(v), 0.0));
            }
        }
    }
    edges
}

/// Straightforward per-sample, per-node, per-edge forward pass of the GNN.
fn reference_forward(
    policy: &Policy,
    params: &ParamStore,
    st: &Statics,
    state: &State,
    trans: bool,
    rounds: usize,
) -> Out {
    let shape = &policy.shape;
    let (e, w, s) = (shape.n_echelons, shape.n_warehouses, shape.n_stores);
    let n = e + w + s;
    let m = w.max(1);
    let bsz = st.n_samples;
    let init_node = layers(params, "gnn.initial_node");
    let init_edge = layers(params, "gnn.initial_edge");
    let node_up = layers(params, "gnn.node_update");
    let edge_up = layers(params, "gnn.edge_update");
    let output = layers(params, "gnn.output");
    let width = init_node.last().unwrap().0.ncols();
    let mut lmax = shape.store_pipeline;
    if w > 0 {
        lmax = lmax.max(shape.warehouse_pipeline);
    }
    if e > 0 {
        lmax = lmax.max(shape.echelon_pipeline);
    }
    let smax = 4;
    let mut store = Array2::zeros((bsz * s, m));
    let mut wh_out = Array2::zeros((bsz * w, 1));
    let mut ech_out = Array2::zeros((bsz * e, 1));
    for b in 0..bsz {
        // features
        let mut x = vec![vec![0.0f32; lmax + smax]; n];
        for i in 0..e {
            let row = state.echelon.row(b * e + i);
            x[i][..row.len()].copy_from_slice(row.as_slice().unwrap());
            x[i][lmax] = st.echelon_holding_cost[i];
        }
        for wh in 0..w {
            let row = state.warehouse.row(b * w + wh);
            x[e + wh][..row.len()].copy_from_slice(row.as_slice().unwrap());
            x[e + wh][lmax] = st.warehouse_holding_cost[wh];
            x[e + wh][lmax + 1] = st.warehouse_edge_cost[wh];
        }
        for j in 0..s {
            let r = b * s + j;
            let row = state.store.row(r);
            let v = e + w + j;
            x[v][..row.len()].copy_from_slice(row.as_slice().unwrap());
            x[v][lmax..].copy_from_slice(&[
                st.holding_cost[r],
                st.underage_cost[r],
                st.mean[r],
                st.std[r],
            ]);
        }
        let edges = reference_edges(shape, st, b, trans);
        let mut h: Vec<Vec<f32>> = x.iter().map(|xv| mlp(&init_node, xv, elu)).collect();
        let zero = vec![0.0f32; width];
        let emb = |h: &Vec<Vec<f32>>, v: Option<usize>| v.map_or(zero.clone(), |v| h[v].clone());
        let mut emb_e: Vec<Vec<f32>> = edges
            .iter()
            .map(|&(_, a, z, l)| {
                let mut input = emb(&h, a);
                input.extend(emb(&h, z));
                input.push(l);
                mlp(&init_edge, &input, elu)
            })
            .collect();
        let mut indeg = vec![0usize; n];
        let mut outdeg = vec![0usize; n];
        for &(_, a, z, _) in &edges {
            if let Some(z) = z {
                indeg[z] += 1;
            }
            if let Some(a) = a {
                outdeg[a] += 1;
            }
        }
        for _ in 0..rounds {
            let mut new_h = h.clone();
            for v in 0..n {
                let mut inp = vec![0.0f32; width];
                let mut outp = vec![0.0f32; width];
                for (k, &(_, a, z, _)) in edges.iter().enumerate() {
                    if z == Some(v) {
                        let d = (indeg[v].max(1) as f32).sqrt();
                        inp.iter_mut().zip(&emb_e[k]).for_each(|(x, y)| *x += y / d);
                    }
                    if a == Some(v) {
                        let d = (outdeg[v].max(1) as f32).sqrt();
                        outp.iter_mut()
                            .zip(&emb_e[k])
                            .for_each(|(x, y)| *x += y / d);
                    }
                }
                let mut input = h[v].clone();
                input.extend(inp);
                input.extend(outp);
                let dh = mlp(&node_up, &input, elu);
                new_h[v].iter_mut().zip(dh).for_each(|(x, y)| *x += y);
            }
            h = new_h;
            for (k, &(_, a, z, _)) in edges.iter().enumerate() {
                let mut input = emb_e[k].clone();
                input.extend(emb(&h, a));
                input.extend(emb(&h, z));
                let de = mlp(&edge_up, &input, elu);
                emb_e[k].iter_mut().zip(de).for_each(|(x, y)| *x += y);
            }
        }
        let q: Vec<f32> = emb_e
            .iter()
            .map(|ek| mlp(&output, ek, softplus)[0])
            .collect();
        // allocation at every supplying node
        let mut flow = q.clone();
        for v in 0..e + w {
            let members: Vec<usize> = (0..edges.len())
                .filter(|&k| {
                    edges[k].1 == Some(v) && matches!(edges[k].0, Kind::Internal | Kind::SelfLoop)
                })
                .collect();
            if members.is_empty() {
                continue;
            }
            let on_hand = if v < e {
                state.echelon[[b * e + v, 0]]
            } else {
                state.warehouse[[b * w + v - e, 0]]
            };
            let total: f32 = members.iter().map(|&k| q[k]).sum();
            let mut kf = on_hand / (total + 1e-10);
            if !trans {
                kf = kf.min(1.0);
            }
            for &k in &members {
                flow[k] = q[k] * kf;
            }
        }
        for (k, &(kind, a, z, _)) in edges.iter().enumerate() {
            let Some(z) = z else { continue };
            if kind == Kind::SelfLoop || kind == Kind::Demand {
                continue;
            }
            if z < e {
                ech_out[[b * e + z, 0]] = flow[k];
            } else if z < e + w {
                wh_out[[b * w + z - e, 0]] = flow[k];
            } else {
                let col = a.map_or(0, |a| a - e);
                store[[b * s + z - e - w, col]] = flow[k];
            }
        }
    }
    Out {
        store,
        warehouse: (w > 0).then_some(wh_out),
        echelon: (e > 0).then_some(ech_out),
    }
}

fn check_against_reference(name: &str, trans: bool) {
    let st = setting_for_gnn(name);
    let shape = NetworkShape::from_setting(&st).unwrap();
    let (policy, params) = build(gnn_spec(32, &[32, 32], trans), &shape, 11);
    let sc = scenario(&st, 3);
    let got = act(&policy, &params, &sc.statics, &sc.initial);
    let rounds = gnn_of(&policy).rounds();
    let want = reference_forward(&policy, &params, &sc.statics, &sc.initial, trans, rounds);
    assert_close(&got.store, &want.store, 2e-5, &format!("{name} store"));
    if let (Some(a), Some(b)) = (&got.warehouse, &want.warehouse) {
        assert_close(a, b, 2e-5, &format!("{name} warehouse"));
    }
    if let (Some(a), Some(b)) = (&got.echelon, &want.echelon) {
        assert_close(a, b, 2e-5, &format!("{name} echelon"));
    }
    assert_eq!(got.warehouse.is_some(), want.warehouse.is_some());
    assert_eq!(got.echelon.is_some(), want.echelon.is_some());
}

// ---------------------------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------------------------

#[test]
fn graph_has_the_spec_edge_order() {
    use EdgeKind::*;
    let kinds = |name: &str, trans: bool| {
        let st = setting_for_gnn(name);
        let shape = NetworkShape::from_setting(&st).unwrap();
        let (policy, _) = build(gnn_spec(4, &[4], trans), &shape, 1);
        let net = gnn_of(&policy);
        let g = net.graph().clone();
        (
            g.edges
                .iter()
                .map(|e| (e.kind, e.src, e.dst))
                .collect::<Vec<_>>(),
            net.rounds(),
            g,
        )
    };
    // one warehouse (node 0) + 5 stores (nodes 1..=5)
    let (edges, rounds, g) = kinds("one_warehouse_lost", false);
    let mut want: Vec<_> = (1..=5).map(|v| (Internal, Some(0), Some(v))).collect();
    want.push((Supplier, None, Some(0)));
    want.extend((1..=5).map(|v| (Demand, Some(v), None)));
    want.push((SelfLoop, Some(0), Some(0)));
    assert_eq!(edges, want);
    assert_eq!(rounds, 1);
    assert_eq!(g.in_degree, vec![2, 1, 1, 1, 1, 1]); // supplier + self-loop; one warehouse edge each
    assert_eq!(g.out_degree, vec![6, 1, 1, 1, 1, 1]); // 5 stores + self-loop; demand edge each
    // transshipment: no self-loop
    let (edges, _, _) = kinds("transshipment_backlogged", true);
    assert_eq!(edges.len(), 11);
    assert!(edges.iter().all(|e| e.0 != SelfLoop));
    // serial: echelons 0, 1, warehouse 2, store 3; E + 1 rounds
    let (edges, rounds, _) = kinds("serial_system", false);
    assert_eq!(
        edges,
        vec![
            (Internal, Some(0), Some(1)),
            (Internal, Some(1), Some(2)),
            (Internal, Some(2), Some(3)),
            (Supplier, None, Some(0)),
            (Demand, Some(3), None),
            (SelfLoop, Some(0), Some(0)),
            (SelfLoop, Some(1), Some(1)),
            (SelfLoop, Some(2), Some(2)),
        ]
    );
    assert_eq!(rounds, 3);
    // two warehouses: internal edges row-major over the adjacency
    let (edges, _, _) = kinds("many_warehouses_lost", false);
    let internal: Vec<(usize, usize)> = edges
        .iter()
        .filter(|e| e.0 == Internal)
        .map(|e| (e.1.unwrap(), e.2.unwrap() - 2))
        .collect();
    assert_eq!(
        internal,
        vec![
            (0, 2),
            (0, 3),
            (0, 4),
            (0, 6),
            (0, 7),
            (0, 8),
            (1, 0),
            (1, 1),
            (1, 2),
            (1, 3),
            (1, 4),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9)
        ]
    );
    assert_eq!(edges.iter().filter(|e| e.0 == Supplier).count(), 2);
    assert_eq!(edges.iter().filter(|e| e.0 == SelfLoop).count(), 2);
}

#[test]
fn batched_forward_matches_per_sample_reference() {
    check_against_reference("one_warehouse_lost", false);
    check_against_reference("many_warehouses_lost", false);
    check_against_reference("serial_system", false);
    check_against_reference("transshipment_backlogged", true);
}

/// Store actions (flattened per sample) followed by warehouse and echelon orders: `(B, ·)`.
fn flat_actions(tape: &mut Tape, a: &TapeActions, b: usize) -> Var {
    let (r, c) = tape.shape(a.store);
    let mut parts = vec![tape.reshape(a.store, b, r * c / b)];
    for v in [a.warehouse, a.echelon].into_iter().flatten() {
        let rows = tape.shape(v).0;
        parts.push(tape.reshape(v, b, rows / b));
    }
    tape.concat_cols(&parts)
}

/// Warehouse stock chosen so that one sample is rationed (k < 1) and the other is not (k > 1):
/// desired flows start near softplus(5) ≈ 5 per edge.
fn gradcheck_state(sc: &Scenario) -> State {
    let mut state = sc.initial.clone();
    let w_per = state.warehouse.nrows() / 2;
    for (r, mut row) in state.warehouse.rows_mut().into_iter().enumerate() {
        row[0] = if r / w_per.max(1) == 0 { 6.0 } else { 90.0 };
    }
    let half = state.echelon.nrows() / 2;
    for (r, mut row) in state.echelon.rows_mut().into_iter().enumerate() {
        row[0] = if r < half { 2.5 } else { 70.0 };
    }
    state
}

fn input_gradcheck(name: &str, trans: bool, scaling: bool) {
    let mut st = setting_for_gnn(name);
    if st.network.n_warehouses == 1 && st.echelons.is_none() {
        st.apply_override("network.n_stores", "3").unwrap();
    }
    let shape = NetworkShape::from_setting(&st).unwrap();
    let spec = gnn_spec(5, &[6], trans);
    let spec = if scaling { demand_scaled(spec) } else { spec };
    let (policy, params) = build(spec, &shape, 3);
    let net = gnn_of(&policy);
    let sc = scenario(&st, 2);
    let state = gradcheck_state(&sc);
    let mut inputs = vec![state.store.clone(), state.warehouse.clone()];
    let has_echelons = state.echelon.nrows() > 0;
    if has_echelons {
        inputs.push(state.echelon.clone());
    }
    let f = |tape: &mut Tape, v: &[Var]| {
        let ts = TapeState {
            store: v[0],
            warehouse: Some(v[1]),
            echelon: has_echelons.then(|| v[2]),
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
    assert!(report.passed, "{name} (demand scaling {scaling}): {report}");
}

#[test]
fn gradcheck_wrt_input_pipelines() {
    for scaling in [false, true] {
        input_gradcheck("one_warehouse_lost", false, scaling);
        input_gradcheck("many_warehouses_lost", false, scaling);
        input_gradcheck("serial_system", false, scaling);
        input_gradcheck("transshipment_backlogged", true, scaling);
    }
}

#[test]
fn gradcheck_wrt_parameters() {
    for (name, trans, scaling) in [
        ("many_warehouses_lost", false, false),
        ("serial_system", false, false),
        ("transshipment_backlogged", true, false),
        ("many_warehouses_lost", false, true),
        ("transshipment_backlogged", true, true),
    ] {
        let st = setting_for_gnn(name);
        let shape = NetworkShape::from_setting(&st).unwrap();
        let spec = gnn_spec(5, &[6, 4], trans);
        let spec = if scaling { demand_scaled(spec) } else { spec };
        let (policy, params) = build(spec, &shape, 5);
        let net = gnn_of(&policy);
        let sc = scenario(&st, 2);
        let state = gradcheck_state(&sc);
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

/// Statics and state with the stores of every sample permuted: new store `j` = old store `perm[j]`.
fn permute_stores(st: &Statics, state: &State, perm: &[usize]) -> (Statics, State) {
    let s = st.n_stores;
    let rows: Vec<usize> = (0..st.n_samples)
        .flat_map(|b| perm.iter().map(move |&p| b * s + p))
        .collect();
    let mut st2 = st.clone();
    st2.holding_cost = st.holding_cost.select(Axis(0), &rows);
    st2.underage_cost = st.underage_cost.select(Axis(0), &rows);
    st2.mean = st.mean.select(Axis(0), &rows);
    st2.std = st.std.select(Axis(0), &rows);
    st2.lead_time = st.lead_time.select(Axis(0), &rows);
    st2.adjacency = st.adjacency.select(Axis(1), perm);
    let mut state2 = state.clone();
    state2.store = state.store.select(Axis(0), &rows);
    (st2, state2)
}

fn check_equivariance(name: &str, perm: &[usize]) {
    let st = setting_for_gnn(name);
    let shape = NetworkShape::from_setting(&st).unwrap();
    let mut shape2 = shape.clone();
    for row in shape2.adjacency.iter_mut() {
        *row = perm.iter().map(|&p| row[p]).collect();
    }
    let (policy, params) = build(gnn_spec(32, &[32, 32], false), &shape, 21);
    let (policy2, params2) = build(gnn_spec(32, &[32, 32], false), &shape2, 21);
    for id in params.ids() {
        assert_eq!(
            params.value(id),
            params2.value(id),
            "same seed, same parameters"
        );
    }
    let sc = scenario(&st, 4);
    let (statics2, state2) = permute_stores(&sc.statics, &sc.initial, perm);
    let a = act(&policy, &params, &sc.statics, &sc.initial);
    let b = act(&policy2, &params2, &statics2, &state2);
    let s = shape.n_stores;
    let rows: Vec<usize> = (0..4)
        .flat_map(|bi| perm.iter().map(move |&p| bi * s + p))
        .collect();
    assert_close(
        &b.store,
        &a.store.select(Axis(0), &rows),
        1e-5,
        &format!("{name}: permuted store actions"),
    );
    assert_close(
        b.warehouse.as_ref().unwrap(),
        a.warehouse.as_ref().unwrap(),
        1e-5,
        "warehouse orders unchanged",
    );
    // the network is not trivially constant across stores
    let col = a.store.column(0).to_owned();
    assert!(
        col.iter().any(|&x| (x - col[0]).abs() > 1e-3),
        "store actions differ across stores"
    );
}

#[test]
fn permuting_sibling_stores_permutes_actions() {
    check_equivariance("one_warehouse_lost", &[3, 0, 4, 1, 2]);
    // two warehouses: the adjacency and per-edge lead times are permuted with the stores
    check_equivariance("many_warehouses_lost", &[9, 2, 0, 5, 7, 1, 3, 8, 6, 4]);
}

/// Demand scaling measures every node in units of its mean demand, so multiplying every mean,
/// std and stock level by `c` multiplies every action by `c`; without it the actions change shape.
fn check_demand_units(name: &str, trans: bool) {
    let st = setting_for_gnn(name);
    let shape = NetworkShape::from_setting(&st).unwrap();
    let c = 7.5f32;
    let sc = scenario(&st, 3);
    let mut statics = sc.statics.clone();
    statics.mean.mapv_inplace(|m| m * c);
    statics.std.mapv_inplace(|m| m * c);
    let mut state = sc.initial.clone();
    for v in state
        .store
        .iter_mut()
        .chain(state.warehouse.iter_mut())
        .chain(state.echelon.iter_mut())
    {
        *v *= c;
    }
    let scaled_by_c = |a: &Array2<f32>| a.mapv(|v| v * c);
    for scaling in [true, false] {
        let spec = gnn_spec(8, &[8, 8], trans);
        let spec = if scaling { demand_scaled(spec) } else { spec };
        let (policy, params) = build(spec, &shape, 11);
        let a = act(&policy, &params, &sc.statics, &sc.initial);
        let b = act(&policy, &params, &statics, &state);
        let pairs = [
            (Some(&a.store), Some(&b.store)),
            (a.warehouse.as_ref(), b.warehouse.as_ref()),
            (a.echelon.as_ref(), b.echelon.as_ref()),
        ];
        let mut worst = 0.0f32;
        for (x, y) in pairs.into_iter().filter_map(|(x, y)| x.zip(y)) {
            for (&u, &v) in scaled_by_c(x).iter().zip(y.iter()) {
                worst = worst.max((u - v).abs() / (1.0 + u.abs()));
            }
        }
        if scaling {
            assert!(
                worst < 1e-4,
                "{name}: actions in demand units, relative error {worst}"
            );
        } else {
            assert!(
                worst > 1e-2,
                "{name}: raw units are not scale-free ({worst})"
            );
        }
    }
}

#[test]
fn demand_scaled_actions_scale_with_demand() {
    check_demand_units("one_warehouse_lost", false);
    check_demand_units("many_warehouses_lost", false);
    check_demand_units("serial_system", false);
    check_demand_units("transshipment_backlogged", true);
}

#[test]
fn demand_scaled_untrained_net_asks_for_about_one_period_of_demand() {
    // with output bias ln(e − 1), softplus gives ≈ 1 before training: every supplier order is
    // near the mean demand its node serves (the reference's bias 5 orders ≈ 5 units everywhere)
    let st = setting_for_gnn("one_warehouse_lost");
    let shape = NetworkShape::from_setting(&st).unwrap();
    let (policy, params) = build(demand_scaled(gnn_spec(32, &[32, 32], false)), &shape, 2);
    let sc = scenario(&st, 4);
    let a = act(&policy, &params, &sc.statics, &sc.initial);
    let total_mean: f32 = sc.statics.mean.iter().take(shape.n_stores).sum();
    for &order in a.warehouse.as_ref().unwrap().iter() {
        let ratio = order / total_mean;
        assert!(
            (0.3..3.0).contains(&ratio),
            "warehouse order {order} vs mean demand {total_mean}"
        );
    }
}

#[test]
fn multi_warehouse_shipments_use_the_real_warehouse_column() {
    let st = setting_for_gnn("many_warehouses_lost");
    let shape = NetworkShape::from_setting(&st).unwrap();
    let (policy, params) = build(gnn_spec(32, &[32, 32], false), &shape, 4);
    let sc = scenario(&st, 4);
    let out = act(&policy, &params, &sc.statics, &sc.initial);
    let s = shape.n_stores;
    for b in 0..4 {
        for j in 0..s {
            for w in 0..2 {
                let q = out.store[[b * s + j, w]];
                if shape.adjacency[w][j] {
                    assert!(
                        q > 0.0,
                        "store {j} gets a positive shipment from its warehouse {w}"
                    );
                } else {
                    assert_eq!(q, 0.0, "store {j} is not served by warehouse {w}");
                }
            }
        }
        // stores 0, 1, 5, 9 are served by warehouse 1 only: their shipment is in column 1
        for j in [0, 1, 5, 9] {
            assert_eq!(out.store[[b * s + j, 0]], 0.0);
            assert!(out.store[[b * s + j, 1]] > 0.0);
        }
    }
}

/// One recorded period on `name`: feasibility of every action, a simulator step, finite gradients.
fn feasible_step(name: &str, trans: bool) {
    let st = setting_for_gnn(name);
    let shape = NetworkShape::from_setting(&st).unwrap();
    let (policy, params) = build(gnn_spec(32, &[32, 32], trans), &shape, 8);
    let b = 16;
    let sc = scenario(&st, b);
    let mut state = sc.initial.clone();
    // one sample with empty upstream stock, one with plenty
    for mut row in state
        .warehouse
        .rows_mut()
        .into_iter()
        .take(shape.n_warehouses)
    {
        row[0] = 0.0;
    }
    for mut row in state
        .warehouse
        .rows_mut()
        .into_iter()
        .skip(shape.n_warehouses)
        .take(shape.n_warehouses)
    {
        row[0] = 1e4;
    }
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
    let (s, w, e) = (shape.n_stores, shape.n_warehouses, shape.n_echelons);
    let store = tape.value(a.store).clone();
    assert_eq!(store.dim(), (b * s, w.max(1)));
    for ((r, c), &q) in store.indexed_iter() {
        assert!(q.is_finite() && q >= 0.0, "{name}: store action {q}");
        if sc.statics.lead_time[[r, c]] == 0 {
            assert_eq!(q, 0.0, "{name}: non-edge ({r}, {c})");
        }
    }
    for bi in 0..b {
        for wh in 0..w {
            let shipped: f32 = (0..s).map(|j| store[[bi * s + j, wh]]).sum();
            let on_hand = state.warehouse[[bi * w + wh, 0]];
            let tol = 1e-4 * (1.0 + on_hand);
            assert!(
                shipped <= on_hand + tol,
                "{name}: sample {bi} warehouse {wh} ships {shipped} > {on_hand}"
            );
            if trans {
                assert!(
                    (shipped - on_hand).abs() <= tol,
                    "{name}: transshipment ships all: {shipped} vs {on_hand}"
                );
            }
        }
    }
    let orders = tape.value(a.warehouse.expect("W ≥ 1")).clone();
    assert!(orders.iter().all(|&q| q.is_finite() && q >= 0.0));
    if let Some(ev) = a.echelon {
        let ech = tape.value(ev).clone();
        assert!(ech.iter().all(|&q| q.is_finite() && q >= 0.0));
        for bi in 0..b {
            for i in 1..e {
                let on = state.echelon[[bi * e + i - 1, 0]];
                assert!(
                    ech[[bi * e + i, 0]] <= on + 1e-4 * (1.0 + on),
                    "echelon {i} order within echelon {} stock",
                    i - 1
                );
            }
            let last = state.echelon[[bi * e + e - 1, 0]];
            assert!(
                orders[[bi, 0]] <= last + 1e-4 * (1.0 + last),
                "warehouse order within the last echelon's stock"
            );
        }
    }
    let dynamics = TapeDynamics::new(&sc.statics);
    let demand = tape.constant(sc.demand.slice(s![.., 0..1]).to_owned());
    let (_, cost) = dynamics
        .step(&mut tape, &ts, &a, demand)
        .unwrap_or_else(|err| panic!("{name}: step failed: {err}"));
    let total = cost.total(&mut tape);
    let mut grads = params.zero_grads();
    tape.backward(total, &mut grads);
    assert!(grads.all_finite(), "{name}: finite gradients");
    if !trans {
        // (a transshipment center keeps nothing, so its holding cost has no gradient)
        assert!(
            grads.global_norm() > 0.0,
            "{name}: the cost depends on the parameters"
        );
    }
}

#[test]
fn actions_are_feasible_and_step_on_every_network() {
    feasible_step("one_warehouse_lost", false);
    feasible_step("many_warehouses_lost", false);
    feasible_step("serial_system", false);
    feasible_step("transshipment_backlogged", true);
}

#[test]
fn stores_without_warehouses_order_on_their_supplier_edges() {
    let st = setting_for_gnn("one_store_lost");
    let shape = NetworkShape::from_setting(&st).unwrap();
    let (policy, params) = build(gnn_spec(16, &[16], false), &shape, 2);
    let net = gnn_of(&policy);
    let kinds: Vec<EdgeKind> = net.graph().edges.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EdgeKind::Supplier, EdgeKind::Demand]);
    let sc = scenario(&st, 8);
    let out = act(&policy, &params, &sc.statics, &sc.initial);
    assert_eq!(out.store.dim(), (8, 1));
    assert!(out.warehouse.is_none() && out.echelon.is_none());
    assert!(out.store.iter().all(|&q| q.is_finite() && q > 0.0));
    let want = reference_forward(
        &policy,
        &params,
        &sc.statics,
        &sc.initial,
        false,
        net.rounds(),
    );
    assert_close(&out.store, &want.store, 2e-5, "one store");
    let mut tape = Tape::new();
    let ts = TapeState::from_state(&mut tape, &sc.initial);
    let obs = TapeObservation {
        statics: &sc.statics,
        state: ts,
        period: 0,
        past_demands: None,
        future_demand: None,
    };
    let a = policy.act(&mut tape, &params, &obs);
    let demand = tape.constant(sc.demand.slice(s![.., 0..1]).to_owned());
    TapeDynamics::new(&sc.statics)
        .step(&mut tape, &ts, &a, demand)
        .expect("step");
}

#[test]
fn past_demands_replace_mean_and_std_when_shown() {
    let mut st = setting_for_gnn("one_warehouse_lost");
    st.observation.past_demands = 4;
    let shape = NetworkShape::from_setting(&st).unwrap();
    let (policy, params) = build(gnn_spec(16, &[16], false), &shape, 2);
    let f = policy.features();
    assert!(f.contains(&hdpo_policy::Feature::PastDemands));
    assert!(!f.contains(&hdpo_policy::Feature::Static(StaticFeature::Mean)));
    let sc = scenario(&st, 3);
    let run = |scale: f32| {
        let mut tape = Tape::no_grad();
        let ts = TapeState::from_state(&mut tape, &sc.initial);
        let past = tape.constant(Array2::from_shape_fn((3 * shape.n_stores, 4), |(r, c)| {
            scale * (1.0 + (r + c) as f32)
        }));
        let obs = TapeObservation {
            statics: &sc.statics,
            state: ts,
            period: 0,
            past_demands: Some(past),
            future_demand: None,
        };
        let a = policy.act(&mut tape, &params, &obs);
        tape.value(a.store).clone()
    };
    let (a, b) = (run(1.0), run(2.0));
    assert!(a.iter().all(|q| q.is_finite()));
    assert!(
        a.iter().zip(b.iter()).any(|(x, y)| (x - y).abs() > 1e-4),
        "past demands are read"
    );
}

#[test]
fn settings_without_mean_std_get_a_clear_error() {
    let st = setting("serial_system").unwrap();
    let shape = NetworkShape::from_setting(&st).unwrap();
    let mut params = ParamStore::new();
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let err = Policy::build(gnn_spec(8, &[8], false), &shape, &mut params, &mut rng).unwrap_err();
    assert!(matches!(err, PolicyError::MissingFeature { .. }), "{err}");
    assert!(err.to_string().contains("static_features"), "{err}");
}

#[test]
fn feature_list_follows_the_network() {
    let st = setting_for_gnn("serial_system");
    let shape = NetworkShape::from_setting(&st).unwrap();
    let (policy, _) = build(gnn_spec(8, &[8], false), &shape, 0);
    use hdpo_policy::Feature::*;
    let f = policy.features();
    for want in [
        StorePipeline,
        WarehousePipeline,
        EchelonPipeline,
        NetworkConstants,
        Static(StaticFeature::Mean),
    ] {
        assert!(f.contains(&want), "{want:?} in {f:?}");
    }
}

#[test]
fn multiply_adds_per_sample() {
    // (n, F, K, Ka, R) of each network, and the count by the formula of docs/policies.md
    // (width 32, hidden [32, 32])
    let formula = |n: usize, f: usize, k: usize, ka: usize, r: usize| {
        n * (f * 32 + 2048)
            + 2048 * n
            + 2080 * k
            + r * 7168 * n
            + 3072 * (k * (r - 1) + ka)
            + 2080 * ka
    };
    for (name, trans, want) in [
        ("one_warehouse_lost", false, formula(6, 7, 12, 7, 1)),
        ("many_warehouses_lost", false, formula(12, 10, 29, 19, 1)),
        ("serial_system", false, formula(4, 8, 8, 7, 3)),
        ("transshipment_backlogged", true, formula(6, 7, 11, 6, 1)),
    ] {
        let st = setting_for_gnn(name);
        let shape = NetworkShape::from_setting(&st).unwrap();
        let (policy, _) = build(gnn_spec(32, &[32, 32], trans), &shape, 0);
        let got = gnn_of(&policy).macs_per_sample();
        println!("{name}: {got} MACs per sample and period");
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn built_policies_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policy>();
    assert_send_sync::<GnnNet>();
}
