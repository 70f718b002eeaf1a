//! The graph neural network (spec §4.8): message passing over the network topology, for any
//! network — warehouse(s) + stores (with an adjacency), a serial chain `echelons → warehouse →
//! store`, stores alone, and transshipment centers.
//!
//! Nodes per sample, in this order: echelons `0..E`, warehouses `0..W`, stores `0..S`. Edges, in
//! the spec's fixed order: internal edges sorted by `(source, destination)` (`e_i → e_{i+1}`,
//! `e_{E−1} → w`, `w → s` per adjacency), one supplier edge per node with an outside supplier
//! (echelon 0; else every warehouse; else every store), one demand edge per store, and — unless
//! the supplying node is a transshipment center — one self-loop per supplying node. Virtual
//! endpoints (outside supplier, demand sink) are zero vectors.
//!
//! Everything is batched over samples: node rows `b·n + v`, edge rows `b·K + k`. Gathers of node
//! embeddings onto edges and the degree-normalised aggregations onto nodes are gather–sums over
//! destination-sorted CSR indices ([`Csr`]) built once per batch size (cached), so one forward is
//! a fixed number of tape ops whatever `B`, `S` or `W`.
//!
//! Linear layers whose input is a concatenation containing node embeddings are split (the same
//! function and parameter count as the concatenated layer): `[h_src, h_dst, ℓ] · W` is
//! `(h·W_src)[src] + (h·W_dst)[dst] + ℓ·w_ℓ`, so node embeddings are projected once per node
//! (`B·n` rows) and the projections gathered onto the edges, instead of materialising `(B·K, 2w+1)`
//! edge inputs. See `docs/policies.md` for the algebra and the differences from the reference.
//!
//! Speed: ELU layers are fused custom ops (`DenseElu` in `dense.rs`: product, bias, gathered projections,
//! ELU and residual in one node, computed in cache-sized blocks of rows with a vectorised ELU),
//! and the aggregation is one `BlockGather` node; both have hand-written backward passes checked
//! by the gradient tests in `tests/gnn.rs`.

use crate::allocation::{PROPORTIONAL_EPS, stock_at_least_zero};
use crate::dense::{BlockIndex, DenseElu, PerBatchSize};
use crate::error::PolicyError;
use crate::mlp::{Activation, Mlp, MlpSpec, ParamNodes, mlp_tail};
use crate::observation::{DemandScales, Feature, NetworkShape, TapeObservation};
use crate::spec::PolicySpec;
use hdpo_autodiff::optim::init;
use hdpo_autodiff::{Csr, CustomOp, InputGrad, ParamId, ParamStore, Tape, Var};
use hdpo_sim::config::StaticFeature;
use hdpo_sim::fused::TapeActions;
use hdpo_sim::state::Statics;
use ndarray::{Array2, s};
use rand::Rng;
use std::sync::Arc;

/// The role of an edge in the graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    /// Between two nodes of the network (echelon → echelon, echelon → warehouse, warehouse → store).
    Internal,
    /// From the outside supplier into a node: that node's order (unbounded).
    Supplier,
    /// From a store to the demand sink (its output is unused).
    Demand,
    /// From a supplying node to itself: the share it keeps (takes part in the allocation only).
    SelfLoop,
}

/// Where an edge's lead-time feature comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeLeadTime {
    /// No lead time (demand edges, self-loops): 0.
    Zero,
    /// `echelon_lead_time[i]` (inbound lead time of echelon `i`).
    Echelon(usize),
    /// `warehouse_lead_time[w]` (inbound lead time of warehouse `w`).
    Warehouse(usize),
    /// `lead_time[b·S + store, source]`, per sample.
    Store {
        /// The store.
        store: usize,
        /// The source column (warehouse id; 0 when there is no warehouse).
        source: usize,
    },
}

/// One edge of the per-sample graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GnnEdge {
    /// Its role.
    pub kind: EdgeKind,
    /// Source node (`None` = the outside supplier).
    pub src: Option<usize>,
    /// Destination node (`None` = the demand sink).
    pub dst: Option<usize>,
    /// Its lead-time feature.
    pub lead_time: EdgeLeadTime,
}

/// The per-sample graph: nodes `[echelons, warehouses, stores]` and edges in the fixed order.
#[derive(Clone, Debug, PartialEq)]
pub struct GnnGraph {
    /// Extra echelons `E`.
    pub n_echelons: usize,
    /// Warehouses `W`.
    pub n_warehouses: usize,
    /// Stores `S`.
    pub n_stores: usize,
    /// The edges, in order.
    pub edges: Vec<GnnEdge>,
    /// In-degree of each node (internal in-edges + supplier edge + self-loop), at least 1.
    pub in_degree: Vec<usize>,
    /// Out-degree of each node (internal out-edges + demand edge + self-loop), at least 1.
    pub out_degree: Vec<usize>,
    /// The edges whose final embedding is used (all but the demand edges), in order.
    pub active: Vec<usize>,
}

impl GnnGraph {
    /// The graph of `shape`; `transshipment` drops the self-loops.
    pub fn new(shape: &NetworkShape, transshipment: bool) -> GnnGraph {
        let (e, w, s) = (shape.n_echelons, shape.n_warehouses, shape.n_stores);
        let n = e + w + s;
        let mut edges = Vec::new();
        let internal = |src, dst, lead_time| GnnEdge {
            kind: EdgeKind::Internal,
            src: Some(src),
            dst: Some(dst),
            lead_time,
        };
        // 1. internal edges, row-major over the node adjacency
        for i in 0..e.saturating_sub(1) {
            edges.push(internal(i, i + 1, EdgeLeadTime::Echelon(i + 1)));
        }
        if e > 0 {
            for wh in 0..w {
                edges.push(internal(e - 1, e + wh, EdgeLeadTime::Warehouse(wh)));
            }
        }
        for wh in 0..w {
            for st in 0..s {
                if shape.adjacency[wh][st] {
                    edges.push(internal(
                        e + wh,
                        e + w + st,
                        EdgeLeadTime::Store {
                            store: st,
                            source: wh,
                        },
                    ));
                }
            }
        }
        // 2. supplier edges
        let supplier = |dst, lead_time| GnnEdge {
            kind: EdgeKind::Supplier,
            src: None,
            dst: Some(dst),
            lead_time,
        };
        if e > 0 {
            edges.push(supplier(0, EdgeLeadTime::Echelon(0)));
        } else if w > 0 {
            for wh in 0..w {
                edges.push(supplier(wh, EdgeLeadTime::Warehouse(wh)));
            }
        } else {
            for st in 0..s {
                edges.push(supplier(
                    st,
                    EdgeLeadTime::Store {
                        store: st,
                        source: 0,
                    },
                ));
            }
        }
        // 3. demand edges
        for st in 0..s {
            edges.push(GnnEdge {
                kind: EdgeKind::Demand,
                src: Some(e + w + st),
                dst: None,
                lead_time: EdgeLeadTime::Zero,
            });
        }
        // 4. self-loops of supplying nodes
        if !transshipment {
            for v in 0..n {
                if edges
                    .iter()
                    .any(|x| x.kind == EdgeKind::Internal && x.src == Some(v))
                {
                    edges.push(GnnEdge {
                        kind: EdgeKind::SelfLoop,
                        src: Some(v),
                        dst: Some(v),
                        lead_time: EdgeLeadTime::Zero,
                    });
                }
            }
        }
        let mut in_degree = vec![0usize; n];
        let mut out_degree = vec![0usize; n];
        for x in &edges {
            if let Some(d) = x.dst {
                in_degree[d] += 1;
            }
            if let Some(v) = x.src {
                out_degree[v] += 1;
            }
        }
        in_degree
            .iter_mut()
            .chain(out_degree.iter_mut())
            .for_each(|d| *d = (*d).max(1));
        let active = (0..edges.len())
            .filter(|&k| edges[k].kind != EdgeKind::Demand)
            .collect();
        GnnGraph {
            n_echelons: e,
            n_warehouses: w,
            n_stores: s,
            edges,
            in_degree,
            out_degree,
            active,
        }
    }

    /// Nodes per sample `n = E + W + S`.
    pub fn n_nodes(&self) -> usize {
        self.n_echelons + self.n_warehouses + self.n_stores
    }

    /// Upstream (possibly supplying) nodes per sample, `E + W`: nodes `0..E+W`.
    pub fn n_upstream(&self) -> usize {
        self.n_echelons + self.n_warehouses
    }

    /// True for edges whose flow is scaled by the proportional allocation at their source.
    fn allocated(&self, k: usize) -> bool {
        matches!(self.edges[k].kind, EdgeKind::Internal | EdgeKind::SelfLoop)
    }
}

/// Index structures of the graph replicated over a batch of `B` samples.
struct BatchGraph {
    /// `(B·K, h1)` ← `(B·n, 2·h1)` node projections `[h·W_src | h·W_dst]`: each edge row gets its
    /// source's `W_src` block plus its destination's `W_dst` block (virtual endpoints: nothing).
    project_all: Arc<BlockIndex>,
    /// The same for the active edges only, `(B·Ka, h1)`.
    project_active: Arc<BlockIndex>,
    /// `(B·n, 2·w)` `[in_v | out_v]` ← `(B·K, w)` edge rows, weights `1/√degree`.
    aggregate: Arc<dyn CustomOp>,
    /// Active edge rows `b·K + active[j]`.
    active_rows: Arc<[u32]>,
    /// `(B·U)` totals asked of each upstream node ← `(B·Ka)` allocated active edges.
    alloc_total: Arc<Csr>,
    /// `(B·Ka)` ← `(B·U)`: the allocation factor of each allocated edge's source (0 elsewhere).
    alloc_factor: Arc<Csr>,
    /// `(B·Ka, 1)`: 1 on supplier edges (orders are not scaled), else 0; `None` without
    /// supplier edges.
    supplier_indicator: Option<Array2<f32>>,
    /// `(B·S·W')` store action slots ← `(B·Ka)` flows.
    store_action: Arc<Csr>,
    /// `(B·W)` warehouse orders ← flow rows.
    warehouse_action: Arc<[u32]>,
    /// `(B·E)` echelon orders ← flow rows.
    echelon_action: Arc<[u32]>,
}

impl BatchGraph {
    /// `h1`: width of the edge MLPs' first layer; `width`: embedding width.
    fn new(g: &GnnGraph, b: usize, h1: usize, width: usize) -> BatchGraph {
        let (n, k_all, ka) = (g.n_nodes(), g.edges.len(), g.active.len());
        let (e, w, s) = (g.n_echelons, g.n_warehouses, g.n_stores);
        let m = w.max(1);
        let u = g.n_upstream();
        let project = |edges: &[usize]| {
            let k = edges.len();
            let mut t = Vec::with_capacity(2 * b * k);
            for bi in 0..b {
                for (j, &edge) in edges.iter().enumerate() {
                    let row = (bi * k + j) as u32;
                    let x = &g.edges[edge];
                    if let Some(v) = x.src {
                        t.push((row, (2 * (bi * n + v)) as u32, 1.0));
                    }
                    if let Some(v) = x.dst {
                        t.push((row, (2 * (bi * n + v) + 1) as u32, 1.0));
                    }
                }
            }
            Arc::new(BlockIndex::new(Csr::from_triples(b * k, &t), h1, 2, 1))
        };
        let all: Vec<usize> = (0..k_all).collect();
        let mut agg = Vec::with_capacity(2 * b * k_all);
        for bi in 0..b {
            for (k, x) in g.edges.iter().enumerate() {
                let row = (bi * k_all + k) as u32;
                if let Some(d) = x.dst {
                    agg.push((
                        (2 * (bi * n + d)) as u32,
                        row,
                        1.0 / (g.in_degree[d] as f32).sqrt(),
                    ));
                }
                if let Some(v) = x.src {
                    agg.push((
                        (2 * (bi * n + v) + 1) as u32,
                        row,
                        1.0 / (g.out_degree[v] as f32).sqrt(),
                    ));
                }
            }
        }
        let active_rows: Vec<u32> = (0..b)
            .flat_map(|bi| g.active.iter().map(move |&k| (bi * k_all + k) as u32))
            .collect();
        let (mut total, mut factor, mut store, mut indicator) = (
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Array2::zeros((b * ka, 1)),
        );
        let mut warehouse_action = vec![0u32; b * w];
        let mut echelon_action = vec![0u32; b * e];
        for bi in 0..b {
            for (j, &k) in g.active.iter().enumerate() {
                let row = bi * ka + j;
                let x = &g.edges[k];
                if g.allocated(k) {
                    let src = x.src.expect("allocated edges leave a node");
                    total.push(((bi * u + src) as u32, row as u32, 1.0));
                    factor.push((row as u32, (bi * u + src) as u32, 1.0));
                }
                if x.kind == EdgeKind::Supplier {
                    indicator[[row, 0]] = 1.0;
                }
                if x.kind == EdgeKind::SelfLoop {
                    continue;
                }
                let Some(d) = x.dst else { continue };
                if d < e {
                    echelon_action[bi * e + d] = row as u32;
                } else if d < e + w {
                    warehouse_action[bi * w + d - e] = row as u32;
                } else {
                    // the real warehouse id is the column (§7.1 item 1 fixed); 0 without warehouses
                    let col = match x.src {
                        Some(src) => src - e,
                        None => 0,
                    };
                    let slot = (bi * s + d - e - w) * m + col;
                    store.push((slot as u32, row as u32, 1.0));
                }
            }
        }
        BatchGraph {
            project_all: project(&all),
            project_active: project(&g.active),
            aggregate: Arc::new(BlockGather(BlockIndex::new(
                Csr::from_triples(2 * b * n, &agg),
                width,
                1,
                2,
            ))),
            active_rows: active_rows.into(),
            alloc_total: Arc::new(Csr::from_triples(b * u, &total)),
            alloc_factor: Arc::new(Csr::from_triples(b * ka, &factor)),
            supplier_indicator: indicator.iter().any(|&v| v != 0.0).then_some(indicator),
            store_action: Arc::new(Csr::from_triples(b * s * m, &store)),
            warehouse_action: warehouse_action.into(),
            echelon_action: echelon_action.into(),
        }
    }
}

/// An MLP whose first layer takes `[own, h_src, h_dst]` (or `[h_src, h_dst, ℓ]`) split into parts:
/// node projections `W_sd = [W_src | W_dst]` `(w, 2·h1)`, an own-input weight, and a bias.
#[derive(Clone, Debug)]
struct EdgeMlp {
    /// `(w, 2·h1)`: `[W_src | W_dst]`, applied to node embeddings.
    nodes: ParamId,
    /// The weight of the edge's own input: `(1, h1)` lead time, or `(w, h1)` edge embedding.
    own: ParamId,
    /// `(1, h1)`.
    bias: ParamId,
    /// `h1`.
    first_width: usize,
    /// The remaining layers (`h1 → … → w`, ELU output), if any.
    tail: Option<Mlp>,
}

impl EdgeMlp {
    /// One `nn.Linear(fan_in → h1)` split into the parts (PyTorch init with the full fan-in).
    /// Row layout of the unsplit weight: `own` first when `own_first`, else last.
    #[allow(clippy::too_many_arguments)]
    fn new<R: Rng + ?Sized>(
        params: &mut ParamStore,
        name: &str,
        width: usize,
        own_width: usize,
        own_first: bool,
        hidden: &[usize],
        rng: &mut R,
    ) -> EdgeMlp {
        let h1 = hidden.first().copied().unwrap_or(width);
        let (weight, bias) = init::linear(2 * width + own_width, h1, rng);
        let (own_rows, node_start) = if own_first {
            (0..own_width, own_width)
        } else {
            (2 * width..2 * width + own_width, 0)
        };
        let own = weight.slice(s![own_rows, ..]).to_owned();
        let mut nodes = Array2::zeros((width, 2 * h1));
        nodes
            .slice_mut(s![.., ..h1])
            .assign(&weight.slice(s![node_start..node_start + width, ..]));
        nodes
            .slice_mut(s![.., h1..])
            .assign(&weight.slice(s![node_start + width..node_start + 2 * width, ..]));
        let nodes = params.add(format!("{name}.0.weight_nodes"), nodes);
        let own = params.add(format!("{name}.0.weight_own"), own);
        let bias = params.add(format!("{name}.0.bias"), bias);
        let mut widths = hidden.to_vec();
        widths.push(width);
        let tail = mlp_tail(
            params,
            name,
            1,
            &widths,
            Activation::Elu,
            Activation::Elu,
            rng,
        );
        EdgeMlp {
            nodes,
            own,
            bias,
            first_width: h1,
            tail,
        }
    }

    /// Multiply-adds of the per-edge part (own input and the layers after the first).
    fn edge_macs(&self, own_width: usize) -> usize {
        own_width * self.first_width + self.tail.as_ref().map_or(0, |t| t.spec.macs_per_sample())
    }

    /// `elu(own · W_own + bias + gathered node projections)` then the tail, plus `residual`
    /// (added to the output) if given.
    fn forward(
        &self,
        tape: &mut Tape,
        param: &mut ParamNodes<'_>,
        h: Var,
        own: Var,
        project: &Arc<BlockIndex>,
        residual: Option<Var>,
    ) -> Var {
        let (wn, wo, bias) = (
            param(tape, self.nodes),
            param(tape, self.own),
            param(tape, self.bias),
        );
        let p = tape.matmul(h, wn); // (B·n, 2·h1): [h·W_src | h·W_dst], once per node
        // elu(own · W_own + bias + gathered projections), one fused node
        let first_residual = residual.filter(|_| self.tail.is_none());
        let op = DenseElu {
            residual: first_residual.is_some(),
            gather: Some(project.clone()),
        };
        let mut inputs = vec![own, wo, bias, p];
        inputs.extend(first_residual);
        let z = tape.custom(Arc::new(op), &inputs);
        match &self.tail {
            Some(tail) => mlp_forward_fused(tape, tail, param, z, residual),
            None => z,
        }
    }
}

/// `mlp(x)` (+ `residual` on the output), ELU layers as fused [`DenseElu`] nodes; other
/// activations (the softplus head) through the engine's `linear` and activation.
fn mlp_forward_fused(
    tape: &mut Tape,
    mlp: &Mlp,
    param: &mut ParamNodes<'_>,
    x: Var,
    residual: Option<Var>,
) -> Var {
    let last = mlp.layers.len() - 1;
    let mut h = x;
    for (k, &(w, b)) in mlp.layers.iter().enumerate() {
        let (wv, bv) = (param(tape, w), param(tape, b));
        let act = if k == last {
            mlp.spec.output_activation
        } else {
            mlp.spec.hidden_activation
        };
        let res = residual.filter(|_| k == last);
        h = match (act, res) {
            (Activation::Elu, None) => tape.custom(
                Arc::new(DenseElu {
                    residual: false,
                    gather: None,
                }),
                &[h, wv, bv],
            ),
            (Activation::Elu, Some(r)) => tape.custom(
                Arc::new(DenseElu {
                    residual: true,
                    gather: None,
                }),
                &[h, wv, bv, r],
            ),
            (act, res) => {
                let z = tape.linear(h, wv, bv);
                let y = act.apply(tape, z);
                match res {
                    Some(r) => tape.add(y, r),
                    None => y,
                }
            }
        };
    }
    h
}

/// The built graph neural network.
#[derive(Clone, Debug)]
pub struct GnnNet {
    graph: GnnGraph,
    width: usize,
    rounds: usize,
    transshipment: bool,
    store_pipeline: usize,
    warehouse_pipeline: usize,
    echelon_pipeline: usize,
    /// Past demands shown to the store nodes instead of mean/std (`P > 0`).
    past_demands: usize,
    /// Calendar features of the current period appended to the store state after the past
    /// demands (`C`, only with `P > 0`: the reference's `days_from_christmas`).
    calendar_features: usize,
    /// Inventory part width (max pipeline length over node types).
    inventory_width: usize,
    /// State part width (max state length over node types).
    state_width: usize,
    /// Nodes measured in units of the mean demand they serve (see [`PolicySpec::Gnn`]).
    demand_scaling: bool,
    initial_node: Mlp,
    initial_edge: EdgeMlp,
    node_update: Mlp,
    edge_update: EdgeMlp,
    output: Mlp,
    /// Batch graphs by batch size (they depend only on the topology and `B`).
    cache: PerBatchSize<BatchGraph>,
}

impl GnnNet {
    /// Builds the network for `shape`, adding its parameters to `params`.
    pub fn build<R: Rng + ?Sized>(
        spec: &PolicySpec,
        shape: &NetworkShape,
        params: &mut ParamStore,
        rng: &mut R,
    ) -> Result<GnnNet, PolicyError> {
        let PolicySpec::Gnn {
            width,
            hidden,
            rounds,
            transshipment,
            output_bias,
            demand_scaling,
        } = spec
        else {
            unreachable!("GnnNet::build is only called with a gnn spec")
        };
        let kind = spec.kind();
        let (e, w) = (shape.n_echelons, shape.n_warehouses);
        if shape.n_stores == 0 || (e > 0 && w == 0) {
            return Err(PolicyError::Unsupported {
                policy: kind,
                reason: "needs stores, and a warehouse when there are extra echelons".into(),
            });
        }
        if *width == 0 {
            return Err(PolicyError::Invalid {
                policy: kind,
                field: "width",
                message: "is 0; allowed: ≥ 1".into(),
            });
        }
        if hidden.contains(&0) {
            return Err(PolicyError::Invalid {
                policy: kind,
                field: "hidden",
                message: "must contain widths ≥ 1".into(),
            });
        }
        let rounds = rounds.unwrap_or(if e > 0 { e + 1 } else { 1 });
        if rounds == 0 {
            return Err(PolicyError::Invalid {
                policy: kind,
                field: "rounds",
                message: "is 0; allowed: ≥ 1".into(),
            });
        }
        if !output_bias.is_finite() {
            return Err(PolicyError::Invalid {
                policy: kind,
                field: "output_bias",
                message: "must be finite".into(),
            });
        }
        let graph = GnnGraph::new(shape, *transshipment);
        let p = shape.past_demands;
        let mut inventory_width = shape.store_pipeline;
        if w > 0 {
            inventory_width = inventory_width.max(shape.warehouse_pipeline);
        }
        if e > 0 {
            inventory_width = inventory_width.max(shape.echelon_pipeline);
        }
        // store state [h, p, mean, std] or [h, p, past demands, calendar]; warehouse [h, edge
        // cost]; echelon [h]
        let calendar_features = if p > 0 { shape.calendar_features } else { 0 };
        let state_width = 2 + if p > 0 { p + calendar_features } else { 2 };
        let width = *width;
        let mlp = |input, output, out_act| MlpSpec {
            input,
            hidden: hidden.clone(),
            output,
            hidden_activation: Activation::Elu,
            output_activation: out_act,
        };
        let initial_node = Mlp::new(
            params,
            "gnn.initial_node",
            mlp(inventory_width + state_width, width, Activation::Elu),
            rng,
        );
        let initial_edge = EdgeMlp::new(params, "gnn.initial_edge", width, 1, false, hidden, rng);
        let node_update = Mlp::new(
            params,
            "gnn.node_update",
            mlp(3 * width, width, Activation::Elu),
            rng,
        );
        let edge_update = EdgeMlp::new(params, "gnn.edge_update", width, width, true, hidden, rng);
        let output = Mlp::new(
            params,
            "gnn.output",
            mlp(width, 1, Activation::Softplus),
            rng,
        );
        output.set_output_bias(params, *output_bias);
        Ok(GnnNet {
            graph,
            width,
            rounds,
            transshipment: *transshipment,
            store_pipeline: shape.store_pipeline,
            warehouse_pipeline: shape.warehouse_pipeline,
            echelon_pipeline: shape.echelon_pipeline,
            past_demands: p,
            calendar_features,
            inventory_width,
            state_width,
            demand_scaling: *demand_scaling,
            initial_node,
            initial_edge,
            node_update,
            edge_update,
            output,
            cache: PerBatchSize::default(),
        })
    }

    /// Features it reads.
    pub fn features(&self) -> Vec<Feature> {
        let g = &self.graph;
        let mut f = vec![Feature::StorePipeline];
        if g.n_warehouses > 0 {
            f.push(Feature::WarehousePipeline);
        }
        if g.n_echelons > 0 {
            f.push(Feature::EchelonPipeline);
        }
        f.extend(
            [
                StaticFeature::HoldingCost,
                StaticFeature::UnderageCost,
                StaticFeature::LeadTime,
            ]
            .into_iter()
            .map(Feature::Static),
        );
        if self.past_demands > 0 {
            f.push(Feature::PastDemands);
            if self.calendar_features > 0 {
                f.push(Feature::Calendar);
            }
        } else {
            f.extend(
                [StaticFeature::Mean, StaticFeature::Std]
                    .into_iter()
                    .map(Feature::Static),
            );
        }
        if g.n_upstream() > 0 {
            f.push(Feature::NetworkConstants);
        }
        f
    }

    /// The per-sample graph (nodes, edges in order, degrees).
    pub fn graph(&self) -> &GnnGraph {
        &self.graph
    }

    /// Message-passing rounds.
    pub fn rounds(&self) -> usize {
        self.rounds
    }

    /// Multiply-adds per sample of one forward pass (matrix products only; the gathers and
    /// aggregations add `O(K·w)` additions).
    pub fn macs_per_sample(&self) -> usize {
        let g = &self.graph;
        let (n, k, ka, w) = (g.n_nodes(), g.edges.len(), g.active.len(), self.width);
        let projection = |m: &EdgeMlp| n * w * 2 * m.first_width;
        let node = n * self.node_update.spec.macs_per_sample();
        let mut total = n * self.initial_node.spec.macs_per_sample()
            + projection(&self.initial_edge)
            + k * self.initial_edge.edge_macs(1);
        for r in 0..self.rounds {
            let edges = if r + 1 == self.rounds { ka } else { k };
            total += node + projection(&self.edge_update) + edges * self.edge_update.edge_macs(w);
        }
        total + ka * self.output.spec.macs_per_sample()
    }

    /// Its actions on the tape.
    pub fn act(&self, tape: &mut Tape, params: &ParamStore, obs: &TapeObservation) -> TapeActions {
        self.act_with(tape, &mut |t: &mut Tape, id| t.param(params, id), obs)
    }

    /// [`GnnNet::act`] with the parameter nodes supplied by `param` (gradient checks w.r.t. the
    /// parameters pass tape variables).
    pub fn act_with(
        &self,
        tape: &mut Tape,
        param: &mut ParamNodes<'_>,
        obs: &TapeObservation,
    ) -> TapeActions {
        let g = &self.graph;
        let b = obs.n_samples();
        let (e, w, s) = (g.n_echelons, g.n_warehouses, g.n_stores);
        let bg = self.cache.get_or_build(b, || {
            BatchGraph::new(g, b, self.edge_update.first_width, self.width)
        });
        debug_assert_eq!(self.initial_edge.first_width, self.edge_update.first_width);

        // node features (B·n, F), rows b·n + v
        let x = self.node_features(tape, obs);
        let mut h = mlp_forward_fused(tape, &self.initial_node, param, x, None);

        // initial edge embeddings (B·K, w)
        let lead = self.edge_lead_times(tape, obs.statics);
        let mut edges = self
            .initial_edge
            .forward(tape, param, h, lead, &bg.project_all, None);

        // message passing; the last round updates only the edges whose output is used
        let mut active = None;
        for r in 0..self.rounds {
            let agg = tape.custom(bg.aggregate.clone(), &[edges]); // (B·n, 2w): [in_v | out_v]
            let node_in = tape.concat_cols(&[h, agg]);
            h = mlp_forward_fused(tape, &self.node_update, param, node_in, Some(h)); // h + update
            if r + 1 < self.rounds {
                edges =
                    self.edge_update
                        .forward(tape, param, h, edges, &bg.project_all, Some(edges));
            } else {
                let ea = tape.gather_rows(edges, bg.active_rows.clone());
                active = Some(self.edge_update.forward(
                    tape,
                    param,
                    h,
                    ea,
                    &bg.project_active,
                    Some(ea),
                ));
            }
        }
        let active = active.expect("rounds ≥ 1");

        // desired flow on every active edge, then the proportional allocation at each supplying node
        let q = mlp_forward_fused(tape, &self.output, param, active, None); // (B·Ka, 1), softplus
        let q = if self.demand_scaling {
            let scales = self.node_scales(obs.statics);
            let mut col = tape.take_buffer(b * g.active.len(), 1);
            for bi in 0..b {
                for (j, &k) in g.active.iter().enumerate() {
                    let x = &g.edges[k];
                    let node = match x.kind {
                        EdgeKind::SelfLoop => x.src,
                        _ => x.dst,
                    }
                    .expect("active edges other than self-loops end at a node");
                    col[[bi * g.active.len() + j, 0]] = scales[bi * g.n_nodes() + node];
                }
            }
            let col = tape.constant(col);
            tape.mul(q, col)
        } else {
            q
        };
        let flows = if g.edges.iter().any(|x| x.kind == EdgeKind::Internal) {
            let total = tape.segment_sum(q, bg.alloc_total.clone()); // (B·U, 1)
            let total = tape.add_scalar(total, PROPORTIONAL_EPS);
            let on_hand = self.upstream_on_hand(tape, obs);
            // a stock rounding left a few ulps below 0 allocates nothing (see the allocation module)
            let on_hand = stock_at_least_zero(tape, on_hand);
            let k = tape.div(on_hand, total);
            let k = if self.transshipment {
                k
            } else {
                tape.clamp_max(k, 1.0)
            };
            let factor = tape.segment_sum(k, bg.alloc_factor.clone()); // (B·Ka, 1); 0 off allocated edges
            let factor = match &bg.supplier_indicator {
                Some(ind) => {
                    let ind = tape.constant_from(ind.view());
                    tape.add(factor, ind) // supplier edges: factor 1
                }
                None => factor,
            };
            tape.mul(q, factor)
        } else {
            q
        };

        // actions: store column = real warehouse id, exact zeros on non-edges
        let m = w.max(1);
        let store = tape.segment_sum(flows, bg.store_action.clone());
        let store = tape.reshape(store, b * s, m);
        let warehouse = (w > 0).then(|| tape.gather_rows(flows, bg.warehouse_action.clone()));
        let echelon = (e > 0).then(|| tape.gather_rows(flows, bg.echelon_action.clone()));
        TapeActions {
            store,
            warehouse,
            echelon,
        }
    }

    /// The mean demand each node serves ([`DemandScales`]), `(B·n)` rows `b·n + v`.
    fn node_scales(&self, st: &Statics) -> Vec<f32> {
        let g = &self.graph;
        let (e, w, s) = (g.n_echelons, g.n_warehouses, g.n_stores);
        let scales = DemandScales::new(st);
        let mut out = Vec::with_capacity(st.n_samples * g.n_nodes());
        for bi in 0..st.n_samples {
            out.extend_from_slice(&scales.echelon[bi * e..(bi + 1) * e]);
            out.extend_from_slice(&scales.warehouse[bi * w..(bi + 1) * w]);
            out.extend_from_slice(&scales.store[bi * s..(bi + 1) * s]);
        }
        out
    }

    /// `(B·U, 1)` on-hand of the upstream nodes `[echelons, warehouses]`, rows `b·U + u`.
    fn upstream_on_hand(&self, tape: &mut Tape, obs: &TapeObservation) -> Var {
        let g = &self.graph;
        let b = obs.n_samples();
        let (e, w) = (g.n_echelons, g.n_warehouses);
        let mut parts = Vec::new();
        if let Some(ech) = obs.state.echelon {
            let on = tape.column(ech, 0);
            parts.push(tape.reshape(on, b, e));
        }
        if let Some(wh) = obs.state.warehouse {
            let on = tape.column(wh, 0);
            parts.push(tape.reshape(on, b, w));
        }
        if parts.len() == 1 {
            tape.reshape(parts[0], b * (e + w), 1)
        } else {
            let all = tape.concat_cols(&parts);
            tape.reshape(all, b * (e + w), 1)
        }
    }

    /// `(B·n, F)` node features `[pipeline zero-padded to the max length, state zero-padded]`.
    fn node_features(&self, tape: &mut Tape, obs: &TapeObservation) -> Var {
        let g = &self.graph;
        let st = obs.statics;
        let b = obs.n_samples();
        let (e, w, s) = (g.n_echelons, g.n_warehouses, g.n_stores);
        let (li, ls) = (self.inventory_width, self.state_width);
        let f = li + ls;
        // constant block of a node type: zero padding of the pipeline, then the state
        let constant_block =
            |tape: &mut Tape, rows: usize, pipeline: usize, state: &dyn Fn(usize, &mut [f32])| {
                let pad = li - pipeline;
                let mut a = tape.take_buffer(rows, pad + ls);
                a.fill(0.0);
                for (r, mut row) in a.rows_mut().into_iter().enumerate() {
                    state(r, &mut row.as_slice_mut().expect("standard layout")[pad..]);
                }
                tape.constant(a)
            };
        let mut parts = Vec::with_capacity(3);
        // in demand units: every pipeline divided by its node's scale; a store shows its mean
        // relative to the sample's average store mean and its coefficient of variation
        let scales = self.demand_scaling.then(|| DemandScales::new(st));
        let scaled = |tape: &mut Tape, pipeline: Var, of: fn(&DemandScales) -> &[f32]| match &scales
        {
            Some(sc) => DemandScales::divide(tape, pipeline, of(sc)),
            None => pipeline,
        };
        let store_pipeline = scaled(tape, obs.state.store, |sc| &sc.store);
        let warehouse_pipeline = obs
            .state
            .warehouse
            .map(|p| scaled(tape, p, |sc| &sc.warehouse));
        let echelon_pipeline = obs.state.echelon.map(|p| scaled(tape, p, |sc| &sc.echelon));
        let store_mean = |r: usize| -> (f32, f32) {
            match &scales {
                Some(sc) => {
                    let row = &sc.store[r / s * s..(r / s + 1) * s];
                    let own = sc.store[r];
                    (own * s as f32 / row.iter().sum::<f32>(), st.std[r] / own)
                }
                None => (st.mean[r], st.std[r]),
            }
        };
        if let Some(ech) = echelon_pipeline {
            let c = constant_block(tape, b * e, self.echelon_pipeline, &|r, out| {
                out[0] = st.echelon_holding_cost[r % e]
            });
            let block = tape.concat_cols(&[ech, c]);
            parts.push(tape.reshape(block, b, e * f));
        }
        if let Some(wh) = warehouse_pipeline {
            let c = constant_block(tape, b * w, self.warehouse_pipeline, &|r, out| {
                out[0] = st.warehouse_holding_cost[r % w];
                out[1] = st.warehouse_edge_cost.get(r % w).copied().unwrap_or(0.0);
            });
            let block = tape.concat_cols(&[wh, c]);
            parts.push(tape.reshape(block, b, w * f));
        }
        let store_block = if self.past_demands > 0 {
            let pad = li - self.store_pipeline;
            let mut c = tape.take_buffer(b * s, pad + 2);
            c.fill(0.0);
            for (r, mut row) in c.rows_mut().into_iter().enumerate() {
                row[pad] = st.holding_cost[r];
                row[pad + 1] = st.underage_cost[r];
            }
            let c = tape.constant(c);
            let past = obs
                .past_demands
                .expect("gnn: the setting shows past demands, the observation must carry them");
            let past = scaled(tape, past, |sc| &sc.store);
            match self.calendar_features {
                0 => tape.concat_cols(&[store_pipeline, c, past]),
                // the current period's calendar features, raw, the same for every store
                n => {
                    let row = st
                        .calendar_at(obs.period)
                        .expect("gnn: the setting has a calendar, the statics must carry it");
                    let mut cal = tape.take_buffer(b * s, n);
                    for mut line in cal.rows_mut() {
                        line.assign(&row);
                    }
                    let cal = tape.constant(cal);
                    tape.concat_cols(&[store_pipeline, c, past, cal])
                }
            }
        } else {
            let c = constant_block(tape, b * s, self.store_pipeline, &|r, out| {
                let (mean, std) = store_mean(r);
                out[0] = st.holding_cost[r];
                out[1] = st.underage_cost[r];
                out[2] = mean;
                out[3] = std;
            });
            tape.concat_cols(&[store_pipeline, c])
        };
        if parts.is_empty() {
            return store_block;
        }
        parts.push(tape.reshape(store_block, b, s * f));
        let all = tape.concat_cols(&parts);
        tape.reshape(all, b * g.n_nodes(), f)
    }

    /// `(B·K, 1)` raw lead time of every edge, rows `b·K + k` (store edges per sample), as a
    /// constant on the tape.
    fn edge_lead_times(&self, tape: &mut Tape, st: &Statics) -> Var {
        let g = &self.graph;
        let (b, s, k) = (st.n_samples, g.n_stores, g.edges.len());
        let mut out = tape.take_buffer(b * k, 1);
        for bi in 0..b {
            for (j, x) in g.edges.iter().enumerate() {
                out[[bi * k + j, 0]] = match x.lead_time {
                    EdgeLeadTime::Zero => 0.0,
                    EdgeLeadTime::Echelon(i) => st.echelon_lead_time[i] as f32,
                    EdgeLeadTime::Warehouse(wh) => st.warehouse_lead_time[wh] as f32,
                    EdgeLeadTime::Store { store, source } => {
                        st.lead_time[[bi * s + store, source]] as f32
                    }
                };
            }
        }
        tape.constant(out)
    }
}

/// The block gather as a tape op (the degree-normalised aggregation `[in_v | out_v]`).
struct BlockGather(BlockIndex);

impl CustomOp for BlockGather {
    fn name(&self) -> &str {
        "gnn_block_gather"
    }

    fn output_shape(&self, inputs: &[(usize, usize)]) -> (usize, usize) {
        assert_eq!(inputs.len(), 1, "block gather: one input");
        self.0.output_shape(inputs[0])
    }

    fn forward(&self, inputs: &[&Array2<f32>], output: &mut Array2<f32>) {
        let out = output.as_slice_mut().expect("standard layout");
        let zeros = vec![0.0; self.0.block_width()];
        self.0.gather_into(
            inputs[0].as_slice().expect("standard layout"),
            out,
            0,
            &zeros,
        );
    }

    fn backward(
        &self,
        _inputs: &[&Array2<f32>],
        _output: &Array2<f32>,
        grad_output: &Array2<f32>,
        grad_inputs: &mut [Option<InputGrad>],
    ) {
        // the scatter adds several output rows into one input row: it only adds
        if let Some(dx) = grad_inputs[0].as_mut() {
            let dx = dx.zeroed_for_adding();
            let g = grad_output.as_slice().expect("standard layout");
            self.0
                .scatter_from(g, 0, dx.as_slice_mut().expect("standard layout"));
        }
    }
}
