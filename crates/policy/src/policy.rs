//! [`Policy`]: a [`PolicySpec`] built for a [`NetworkShape`], with its parameters in a
//! [`ParamStore`]. One closed enum of built networks and one `match` in [`Policy::act`] — every
//! policy maps an [`TapeObservation`] to [`TapeActions`] on the tape, so the same code trains (recording
//! tape) and evaluates (no-grad tape).

use crate::allocation::{proportional, softmax_keep};
use crate::error::PolicyError;
use crate::gnn::GnnNet;
use crate::mlp::{Activation, Mlp, MlpSpec};
use crate::observation::{DemandScales, Feature, NetworkShape, TapeObservation};
use crate::spec::{OneStoreOutput, PolicySpec};
use crate::symmetry::SymmetryAwareNet;
use hdpo_autodiff::{ParamId, ParamStore, Tape, Unary, Var};
use hdpo_sim::config::StaticFeature;
use hdpo_sim::fused::TapeActions;
use ndarray::Array2;
use rand::Rng;

/// `softplus⁻¹(y) = ln(eʸ − 1)`, for initial values given as levels.
pub fn inverse_softplus(y: f32) -> f32 {
    assert!(y > 0.0, "inverse_softplus of a non-positive value {y}");
    if y > 20.0 {
        y
    } else {
        (y as f64).exp_m1().ln() as f32
    }
}

/// The built network of each policy kind.
#[derive(Clone, Debug)]
enum Net {
    OneStore {
        mlp: Mlp,
        input_scale: f32,
        output: OneStoreOutput,
    },
    BaseStock {
        raw_level: ParamId,
    },
    CappedBaseStock {
        raw: ParamId,
    },
    EchelonStock {
        raw: ParamId,
    },
    Serial {
        mlp: Mlp,
        demand_scaling: bool,
    },
    Warehouse {
        mlp: Mlp,
        transshipment: bool,
        demand_scaling: bool,
    },
    Symmetry(Box<SymmetryAwareNet>),
    Gnn(Box<GnnNet>),
    DataDriven(Mlp),
    JustInTime,
}

/// A policy ready to act: spec, the network shape it was built for, and its layers' parameter ids.
#[derive(Clone, Debug)]
pub struct Policy {
    /// What it is.
    pub spec: PolicySpec,
    /// The network it was built for.
    pub shape: NetworkShape,
    net: Net,
}

fn unsupported(policy: &'static str, reason: impl Into<String>) -> PolicyError {
    PolicyError::Unsupported {
        policy,
        reason: reason.into(),
    }
}

impl Policy {
    /// Builds `spec` for `shape`, adding its parameters to `params` (initialised from `rng`).
    pub fn build<R: Rng + ?Sized>(
        spec: PolicySpec,
        shape: &NetworkShape,
        params: &mut ParamStore,
        rng: &mut R,
    ) -> Result<Policy, PolicyError> {
        // sizes and initial values first: a zero-width layer would panic in the kernels
        spec.validate()?;
        let kind = spec.kind();
        let (s, w, e) = (shape.n_stores, shape.n_warehouses, shape.n_echelons);
        let elu_mlp = |input: usize, hidden: &[usize], output: usize, act: Activation| MlpSpec {
            input,
            hidden: hidden.to_vec(),
            output,
            hidden_activation: act,
            output_activation: Activation::Identity,
        };
        let net = match &spec {
            PolicySpec::VanillaOneStore {
                hidden,
                activation,
                input_scale,
                output,
                initial_level,
            } => {
                positive(kind, "input_scale", *input_scale)?;
                if w > 0 || e > 0 {
                    return Err(unsupported(kind, "needs stores without warehouses (W = 0)"));
                }
                let spec = elu_mlp(s * shape.store_pipeline, hidden, s, *activation);
                let mlp = Mlp::new(params, "vanilla_one_store", spec, rng);
                if *output == OneStoreOutput::Level {
                    // the level is measured like the inputs
                    mlp.set_output_bias(params, input_scale * initial_level);
                }
                Net::OneStore {
                    mlp,
                    input_scale: *input_scale,
                    output: *output,
                }
            }
            PolicySpec::BaseStock { initial_level } => {
                if w > 0 {
                    return Err(unsupported(kind, "needs stores without warehouses (W = 0)"));
                }
                positive(kind, "initial_level", *initial_level)?;
                let raw = Array2::from_elem((1, 1), inverse_softplus(*initial_level));
                Net::BaseStock {
                    raw_level: params.add("base_stock.level", raw),
                }
            }
            PolicySpec::CappedBaseStock {
                initial_level,
                initial_cap,
            } => {
                if w > 0 {
                    return Err(unsupported(kind, "needs stores without warehouses (W = 0)"));
                }
                positive(kind, "initial_level", *initial_level)?;
                positive(kind, "initial_cap", *initial_cap)?;
                let raw = Array2::from_shape_vec(
                    (1, 2),
                    vec![
                        inverse_softplus(*initial_level),
                        inverse_softplus(*initial_cap),
                    ],
                )
                .expect("two values");
                Net::CappedBaseStock {
                    raw: params.add("capped_base_stock.level_cap", raw),
                }
            }
            PolicySpec::EchelonStock { initial_increments } => {
                if s != 1 || w != 1 {
                    return Err(unsupported(
                        kind,
                        "needs a serial chain: one store, one warehouse, E ≥ 0 echelons",
                    ));
                }
                let k = e + 2;
                let init = match initial_increments {
                    None => vec![10.0; k],
                    Some(v) if v.len() == k => v.clone(),
                    Some(v) => {
                        return Err(PolicyError::Invalid {
                            policy: kind,
                            field: "initial_increments",
                            message: format!(
                                "has {} values; this chain has {k} locations",
                                v.len()
                            ),
                        });
                    }
                };
                for &x in &init {
                    positive(kind, "initial_increments", x)?;
                }
                let raw = Array2::from_shape_vec(
                    (1, k),
                    init.iter().map(|&x| inverse_softplus(x)).collect(),
                )
                .expect("k values");
                Net::EchelonStock {
                    raw: params.add("echelon_stock.increments", raw),
                }
            }
            PolicySpec::VanillaSerial {
                hidden,
                activation,
                demand_scaling,
            } => {
                if s != 1 || w != 1 {
                    return Err(unsupported(
                        kind,
                        "needs a serial chain: one store, one warehouse",
                    ));
                }
                let input =
                    shape.store_pipeline + shape.warehouse_pipeline + e * shape.echelon_pipeline;
                // the sigmoid of the shares is the output layer's activation: one fused node
                let spec = MlpSpec {
                    output_activation: Activation::Sigmoid,
                    ..elu_mlp(input, hidden, e + 2, *activation)
                };
                Net::Serial {
                    mlp: Mlp::new(params, "vanilla_serial", spec, rng),
                    demand_scaling: *demand_scaling,
                }
            }
            PolicySpec::VanillaWarehouse {
                hidden,
                activation,
                transshipment,
                demand_scaling,
            } => {
                if w == 0 || e > 0 {
                    return Err(unsupported(
                        kind,
                        "needs warehouses and stores (W ≥ 1, no extra echelons)",
                    ));
                }
                let input = s * shape.store_pipeline + w * shape.warehouse_pipeline;
                let output = s * shape.n_sources() + w;
                let mlp = Mlp::new(
                    params,
                    "vanilla_warehouse",
                    elu_mlp(input, hidden, output, *activation),
                    rng,
                );
                Net::Warehouse {
                    mlp,
                    transshipment: *transshipment,
                    demand_scaling: *demand_scaling,
                }
            }
            PolicySpec::SymmetryAware { .. } => Net::Symmetry(Box::new(SymmetryAwareNet::build(
                &spec, shape, params, rng,
            )?)),
            PolicySpec::Gnn { .. } => Net::Gnn(Box::new(GnnNet::build(&spec, shape, params, rng)?)),
            PolicySpec::DataDriven { hidden, activation } => {
                if e > 0 {
                    return Err(unsupported(kind, "does not support extra echelons"));
                }
                let m = shape.n_sources();
                let input = s * shape.store_pipeline
                    + w * shape.warehouse_pipeline
                    + s * shape.past_demands
                    + 2 * s
                    + s * shape.calendar_features
                    + s * m;
                let output = if w == 0 { s } else { w + s * w };
                let mut spec = elu_mlp(input, hidden, output, *activation);
                spec.output_activation = Activation::Relu;
                let mlp = Mlp::new(params, "data_driven", spec, rng);
                mlp.set_output_bias(params, 1.0);
                Net::DataDriven(mlp)
            }
            PolicySpec::JustInTime { .. } => {
                if w > 0 {
                    return Err(unsupported(
                        kind,
                        "is implemented for stores without warehouses (W = 0)",
                    ));
                }
                Net::JustInTime
            }
        };
        let policy = Policy {
            spec,
            shape: shape.clone(),
            net,
        };
        policy.check_features()?;
        Ok(policy)
    }

    /// The observation features this policy reads.
    pub fn features(&self) -> Vec<Feature> {
        use Feature::*;
        let statics = |fs: &[StaticFeature]| fs.iter().map(|&f| Static(f)).collect::<Vec<_>>();
        match &self.net {
            Net::OneStore { .. } | Net::BaseStock { .. } | Net::CappedBaseStock { .. } => {
                vec![StorePipeline]
            }
            Net::EchelonStock { .. } | Net::Serial { .. } => {
                vec![StorePipeline, WarehousePipeline, EchelonPipeline]
            }
            Net::Warehouse { .. } => vec![StorePipeline, WarehousePipeline],
            Net::Symmetry(net) => net.features(),
            Net::Gnn(net) => net.features(),
            Net::DataDriven(_) => {
                let mut f = vec![StorePipeline, PastDemands];
                if self.shape.n_warehouses > 0 {
                    f.push(WarehousePipeline);
                }
                f.extend(statics(&[
                    StaticFeature::UnderageCost,
                    StaticFeature::HoldingCost,
                    StaticFeature::LeadTime,
                ]));
                if self.shape.calendar_features > 0 {
                    f.push(Calendar);
                }
                f
            }
            Net::JustInTime => {
                let mut f = vec![FutureDemand];
                f.extend(statics(&[StaticFeature::LeadTime]));
                f
            }
        }
    }

    /// False for oracles that read future demand: their costs are bounds, not achievable policies.
    pub fn admissible(&self) -> bool {
        !self.features().contains(&Feature::FutureDemand)
    }

    /// For non-admissible oracles, how many periods ahead (beyond the current one) they look.
    pub fn oracle_lookahead(&self, max_lead_time: usize) -> Option<usize> {
        (!self.admissible()).then_some(max_lead_time)
    }

    /// True when the policy has parameters that HDPO trains.
    pub fn trainable(&self) -> bool {
        !matches!(self.net, Net::JustInTime)
    }

    fn check_features(&self) -> Result<(), PolicyError> {
        for f in self.features() {
            match f {
                Feature::Static(sf)
                    if !self.shape.static_features.contains(&sf) && self.admissible() =>
                {
                    return Err(PolicyError::MissingFeature {
                        policy: self.spec.kind(),
                        feature: format!("{sf:?}"),
                        exposed: format!("{:?}", self.shape.static_features),
                    });
                }
                Feature::PastDemands if self.shape.past_demands == 0 => {
                    return Err(unsupported(
                        self.spec.kind(),
                        "needs past demands (observation.past_demands > 0)",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The policy's actions for the observed batch, recorded on `tape`.
    pub fn act(&self, tape: &mut Tape, params: &ParamStore, obs: &TapeObservation) -> TapeActions {
        let shape = &self.shape;
        let b = obs.n_samples();
        let (s, w, e) = (shape.n_stores, shape.n_warehouses, shape.n_echelons);
        match &self.net {
            Net::OneStore {
                mlp,
                input_scale,
                output,
            } => {
                let x = tape.reshape(obs.state.store, b, s * shape.store_pipeline);
                let x = if *input_scale == 1.0 {
                    x
                } else {
                    tape.scale(x, *input_scale)
                };
                let out = mlp.forward(tape, params, x);
                let store = match output {
                    // order = softplus(MLP(u · pipelines) + 1), one output per store
                    OneStoreOutput::Order => {
                        let order = tape.unary_shifted(Unary::Softplus, out, 1.0);
                        tape.reshape(order, b * s, 1)
                    }
                    // order = max(MLP(u · pipelines) − u · IP, 0) / u
                    OneStoreOutput::Level => {
                        let level = tape.reshape(out, b * s, 1);
                        let position = tape.row_sums(obs.state.store);
                        let position = tape.scale(position, *input_scale);
                        let gap = tape.sub(level, position);
                        let order = tape.relu(gap);
                        tape.scale(order, 1.0 / input_scale)
                    }
                };
                TapeActions {
                    store,
                    warehouse: None,
                    echelon: None,
                }
            }
            Net::BaseStock { raw_level } => {
                let raw = tape.param(params, *raw_level);
                let level = tape.softplus(raw);
                let position = tape.row_sums(obs.state.store);
                let gap = tape.sub(level, position);
                TapeActions {
                    store: tape.relu(gap),
                    warehouse: None,
                    echelon: None,
                }
            }
            Net::CappedBaseStock { raw } => {
                let raw = tape.param(params, *raw);
                let both = tape.softplus(raw);
                let level = tape.slice_cols(both, 0, 1);
                let cap = tape.slice_cols(both, 1, 1);
                let position = tape.row_sums(obs.state.store);
                let gap = tape.sub(level, position);
                let order = tape.relu(gap);
                TapeActions {
                    store: tape.minimum(order, cap),
                    warehouse: None,
                    echelon: None,
                }
            }
            Net::EchelonStock { raw } => self.echelon_stock(tape, params, obs, *raw),
            Net::Serial {
                mlp,
                demand_scaling,
            } => self.vanilla_serial(tape, params, obs, mlp, *demand_scaling),
            Net::Warehouse {
                mlp,
                transshipment,
                demand_scaling,
            } => self.vanilla_warehouse(tape, params, obs, mlp, *transshipment, *demand_scaling),
            Net::Symmetry(net) => net.act(tape, params, obs),
            Net::Gnn(net) => net.act(tape, params, obs),
            Net::DataDriven(mlp) => self.data_driven(tape, params, obs, mlp),
            Net::JustInTime => {
                let future = obs
                    .future_demand
                    .expect("just_in_time is an oracle: the caller must pass future demand");
                let lt = &obs.statics.lead_time;
                let orders = Array2::from_shape_fn((b * s, 1), |(r, _)| {
                    future[[r, lt[[r, 0]] as usize]].max(0.0)
                });
                let _ = (w, e);
                TapeActions {
                    store: tape.constant(orders),
                    warehouse: None,
                    echelon: None,
                }
            }
        }
    }

    /// Inventory positions of the chain `[echelon 0..E−1, warehouse, store]`, `(B, K)`.
    fn chain_positions(&self, tape: &mut Tape, obs: &TapeObservation) -> Var {
        let b = obs.n_samples();
        let mut parts = Vec::new();
        if let Some(ech) = obs.state.echelon {
            parts.push(tape.row_sums(ech)); // (B·E, 1): E columns of the sample's row
        }
        let wh = obs.state.warehouse.expect("serial chain has a warehouse");
        parts.push(tape.row_sums(wh));
        parts.push(tape.row_sums(obs.state.store));
        tape.pack_cols(&parts, b)
    }

    /// On-hand of the supplier of each location of the chain, `(B, K)`; the outside supplier is
    /// `outside` (unlimited: 10⁶ as the reference, or `U` for the vanilla serial net).
    fn chain_supplier_on_hand(&self, tape: &mut Tape, obs: &TapeObservation, outside: f32) -> Var {
        let b = obs.n_samples();
        let mut parts = vec![tape.full(b, 1, outside)];
        if let Some(ech) = obs.state.echelon {
            parts.push(tape.column(ech, 0)); // (B·E, 1): E columns of the sample's row
        }
        let wh = obs.state.warehouse.expect("serial chain has a warehouse");
        parts.push(tape.column(wh, 0));
        tape.pack_cols(&parts, b)
    }

    /// Splits `(B, K)` chain orders into the action tensors.
    fn chain_actions(&self, tape: &mut Tape, obs: &TapeObservation, orders: Var) -> TapeActions {
        let b = obs.n_samples();
        let e = self.shape.n_echelons;
        let echelon = (e > 0).then(|| {
            let x = tape.slice_cols(orders, 0, e);
            tape.reshape(x, b * e, 1)
        });
        TapeActions {
            store: tape.slice_cols(orders, e + 1, 1),
            warehouse: Some(tape.slice_cols(orders, e, 1)),
            echelon,
        }
    }

    fn echelon_stock(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        obs: &TapeObservation,
        raw: ParamId,
    ) -> TapeActions {
        // x = softplus(raw) (store first); level of location k = Σ_{j ≤ K−1−k} x_j;
        // echelon position EIP_k = Σ_{j ≥ k} IP_j; order_k = min(max(S_k − EIP_k, 0), on-hand upstream)
        let k = self.shape.n_echelons + 2;
        let raw = tape.param(params, raw);
        let x = tape.softplus(raw);
        let levels_matrix = tape.constant(Array2::from_shape_fn((k, k), |(j, loc)| {
            if j + loc < k { 1.0 } else { 0.0 }
        }));
        let levels = tape.matmul(x, levels_matrix); // (1, K)
        let ip = self.chain_positions(tape, obs);
        let suffix = tape.constant(Array2::from_shape_fn((k, k), |(j, loc)| {
            if j >= loc { 1.0 } else { 0.0 }
        }));
        let eip = tape.matmul(ip, suffix); // (B, K)
        let gap = tape.sub(levels, eip);
        let wanted = tape.relu(gap);
        let available = self.chain_supplier_on_hand(tape, obs, 1e6);
        let orders = tape.minimum(wanted, available);
        self.chain_actions(tape, obs, orders)
    }

    fn vanilla_serial(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        obs: &TapeObservation,
        mlp: &Mlp,
        demand_scaling: bool,
    ) -> TapeActions {
        let b = obs.n_samples();
        // one row per sample: store pipeline, warehouse pipeline, the echelons' pipelines
        let mut inputs = vec![obs.state.store, obs.state.warehouse.expect("serial")];
        inputs.extend(obs.state.echelon);
        if demand_scaling {
            let scales = DemandScales::new(obs.statics);
            for (x, of) in
                inputs
                    .iter_mut()
                    .zip([&scales.store, &scales.warehouse, &scales.echelon])
            {
                *x = DemandScales::divide(tape, *x, of);
            }
        }
        let x = tape.pack_cols(&inputs, b);
        // the MLP's output activation is the sigmoid (see `Policy::new`)
        let share = mlp.forward(tape, params, x);
        let available = self.chain_supplier_on_hand(tape, obs, self.shape.upper_bound);
        let orders = tape.mul(share, available);
        self.chain_actions(tape, obs, orders)
    }

    /// `(B, W)` on-hand of each warehouse.
    fn warehouse_on_hand_by_sample(&self, tape: &mut Tape, obs: &TapeObservation) -> Var {
        let on = obs.warehouse_on_hand(tape).expect("W ≥ 1");
        tape.reshape(on, obs.n_samples(), self.shape.n_warehouses)
    }

    /// Assembles per-warehouse shipment blocks `(B, |C_w|)` into the `(B·S, W)` store action,
    /// with exact zeros on non-edges.
    fn assemble_store_actions(&self, tape: &mut Tape, b: usize, blocks: &[Var]) -> Var {
        let (s, w) = (self.shape.n_stores, self.shape.n_warehouses);
        if w == 1 {
            return tape.reshape(blocks[0], b * s, 1);
        }
        let zero = tape.full(b, 1, 0.0);
        let mut columns = Vec::with_capacity(s * w);
        let stores_of: Vec<Vec<usize>> = (0..w).map(|wh| self.shape.stores_of(wh)).collect();
        for st in 0..s {
            for (block, stores) in blocks.iter().zip(&stores_of) {
                // column of store `st` inside this warehouse's block, if it is an edge
                columns.push(match stores.iter().position(|&x| x == st) {
                    Some(j) => tape.slice_cols(*block, j, 1),
                    None => zero,
                });
            }
        }
        let all = tape.concat_cols(&columns);
        tape.reshape(all, b * s, w)
    }

    /// Columns `cols` of `x` (a column gather by slices).
    fn select_columns(tape: &mut Tape, x: Var, cols: &[usize]) -> Var {
        let parts: Vec<Var> = cols.iter().map(|&c| tape.slice_cols(x, c, 1)).collect();
        tape.concat_cols(&parts)
    }

    fn vanilla_warehouse(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        obs: &TapeObservation,
        mlp: &Mlp,
        transshipment: bool,
        demand_scaling: bool,
    ) -> TapeActions {
        let b = obs.n_samples();
        let sh = &self.shape;
        let (s, w) = (sh.n_stores, sh.n_warehouses);
        let (mut store_pipeline, mut warehouse_pipeline) =
            (obs.state.store, obs.state.warehouse.expect("W ≥ 1"));
        if demand_scaling {
            let scales = DemandScales::new(obs.statics);
            store_pipeline = DemandScales::divide(tape, store_pipeline, &scales.store);
            warehouse_pipeline = DemandScales::divide(tape, warehouse_pipeline, &scales.warehouse);
        }
        let store_in = tape.reshape(store_pipeline, b, s * sh.store_pipeline);
        let wh_in = tape.reshape(warehouse_pipeline, b, w * sh.warehouse_pipeline);
        let x = tape.concat_cols(&[store_in, wh_in]);
        let out = mlp.forward(tape, params, x);
        let on_hand = self.warehouse_on_hand_by_sample(tape, obs);
        let mut blocks = Vec::with_capacity(w);
        for wh in 0..w {
            let cols: Vec<usize> = sh.stores_of(wh).iter().map(|&st| st * w + wh).collect();
            let logits = if w == 1 {
                tape.slice_cols(out, 0, s)
            } else {
                Self::select_columns(tape, out, &cols)
            };
            let available = if w == 1 {
                on_hand
            } else {
                tape.column(on_hand, wh)
            };
            blocks.push(softmax_keep(tape, logits, available, transshipment));
        }
        let store = self.assemble_store_actions(tape, b, &blocks);
        let wh_logits = tape.slice_cols(out, s * w, w);
        let share = tape.sigmoid(wh_logits);
        let orders = tape.scale(share, sh.upper_bound);
        TapeActions {
            store,
            warehouse: Some(tape.reshape(orders, b * w, 1)),
            echelon: None,
        }
    }

    fn data_driven(
        &self,
        tape: &mut Tape,
        params: &ParamStore,
        obs: &TapeObservation,
        mlp: &Mlp,
    ) -> TapeActions {
        let b = obs.n_samples();
        let sh = &self.shape;
        let (s, w) = (sh.n_stores, sh.n_warehouses);
        let mut inputs = vec![tape.reshape(obs.state.store, b, s * sh.store_pipeline)];
        if let Some(wh) = obs.state.warehouse {
            inputs.push(tape.reshape(wh, b, w * sh.warehouse_pipeline));
        }
        let past = obs.past_demands.expect("data_driven needs past demands");
        inputs.push(tape.reshape(past, b, s * sh.past_demands));
        for f in [StaticFeature::UnderageCost, StaticFeature::HoldingCost] {
            let col = obs.store_column(tape, f);
            inputs.push(tape.reshape(col, b, s));
        }
        // the calendar of the current period (raw, as the reference's days from Christmas), in
        // the reference's place: after the costs, before the lead times
        if sh.calendar_features > 0
            && let Some(calendar) = obs.calendar_per_store(tape)
        {
            inputs.push(calendar);
        }
        let lt = obs.store_column(tape, StaticFeature::LeadTime);
        inputs.push(tape.reshape(lt, b, s * sh.n_sources()));
        let x = tape.concat_cols(&inputs);
        let out = mlp.forward(tape, params, x); // ReLU output
        if w == 0 {
            return TapeActions {
                store: tape.reshape(out, b * s, 1),
                warehouse: None,
                echelon: None,
            };
        }
        // first W outputs: warehouse orders; then store quantities laid out s·W + w, masked by the
        // adjacency and allocated proportionally from each warehouse's **on-hand** (the reference
        // passed on-hand + in-transit, §7.1 item 2)
        let orders = tape.slice_cols(out, 0, w);
        let on_hand = self.warehouse_on_hand_by_sample(tape, obs);
        let mut blocks = Vec::with_capacity(w);
        for wh in 0..w {
            let cols: Vec<usize> = sh.stores_of(wh).iter().map(|&st| w + st * w + wh).collect();
            let desired = Self::select_columns(tape, out, &cols);
            let available = tape.column(on_hand, wh);
            blocks.push(proportional(tape, desired, available, false));
        }
        let store = self.assemble_store_actions(tape, b, &blocks);
        TapeActions {
            store,
            warehouse: Some(tape.reshape(orders, b * w, 1)),
            echelon: None,
        }
    }
}

fn positive(policy: &'static str, field: &'static str, v: f32) -> Result<(), PolicyError> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(PolicyError::Invalid {
            policy,
            field,
            message: format!("is {v}; allowed: a finite value > 0"),
        })
    }
}
