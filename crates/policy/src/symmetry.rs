//! The symmetry-aware network (spec §4.7): one warehouse, `S` stores, weights shared by all stores.
//!
//! ```text
//! c      = sigmoid(MLP_ctx([store pipelines (S·Ls), warehouse pipeline (Lw)]))        (B, C)
//! order  = U · sigmoid(MLP_wh([warehouse pipeline, c]))                                 (B, 1)
//! q_s    = softplus(MLP_store([pipeline_s, mean_s, std_s, p_s, L_s, c]))  per store     (B·S, 1)
//! ship   = proportional(q, warehouse on-hand, transshipment)                           (B·S, 1)
//! ```
//!
//! **First store layer, split.** The context block of the store MLP's input is the same for the
//! `S` stores of a sample, so the first layer `[x_s, c] · [W_loc; W_ctx] + b` is computed as
//! `(x_s · W_loc + b) + (c · W_ctx)[b]`: `c · W_ctx` once per sample `(B, h1)`, repeated to the
//! store rows with a row gather (index `b·S + s → b`), plus the local part `(B·S, Ls+4) · W_loc`.
//! This is the same function (and the same parameters, split in two) as the concatenated layer,
//! for `B·C·h1` instead of `B·S·C·h1` multiply-adds (see `docs/policies.md`). With an ELU after
//! it, the layer is one fused node (the GNN's `DenseElu`: product, bias, the gathered context
//! rows and the ELU in blocks of rows, with a hand-written backward pass).

use crate::allocation::proportional;
use crate::dense::{BlockIndex, DenseElu, PerBatchSize};
use crate::error::PolicyError;
/// Re-exported from [`crate::mlp`], its home (the path `symmetry::ParamNodes` keeps working).
pub use crate::mlp::ParamNodes;
use crate::mlp::{Activation, Mlp, MlpSpec, mlp_tail};
use crate::observation::{DemandScales, Feature, NetworkShape, TapeObservation};
use crate::spec::PolicySpec;
use hdpo_autodiff::optim::init;
use hdpo_autodiff::{Csr, ParamId, ParamStore, Tape};
use hdpo_sim::config::StaticFeature;
use hdpo_sim::fused::TapeActions;
use ndarray::{Array2, s};
use rand::Rng;
use std::sync::Arc;

/// Number of per-store static inputs of the store MLP: mean, std, underage cost, lead time.
const STORE_STATICS: usize = 4;

/// The built symmetry-aware network.
#[derive(Clone, Debug)]
pub struct SymmetryAwareNet {
    n_stores: usize,
    store_pipeline: usize,
    warehouse_pipeline: usize,
    upper_bound: f32,
    transshipment: bool,
    /// Stores and warehouse in units of mean demand (see [`PolicySpec::SymmetryAware`]).
    demand_scaling: bool,
    /// `[store pipelines, warehouse pipeline]` → context, sigmoid output.
    context: Mlp,
    /// `[warehouse pipeline, context]` → 1, sigmoid output (times `U`).
    warehouse: Mlp,
    /// First store layer, local part: `(Ls + 4, h1)` for `[pipeline, mean, std, p, L]`.
    store_local: ParamId,
    /// First store layer, context part: `(C, h1)`.
    store_context: ParamId,
    /// First store layer bias `(1, h1)`.
    store_bias: ParamId,
    /// Activation after the first store layer (ELU, or softplus when it is the output layer).
    store_first_activation: Activation,
    /// Store layers after the first (`h1 → … → 1`, softplus output), if any.
    store_tail: Option<Mlp>,
    /// The repeat-rows gather of the fused first store layer, by batch size.
    repeat_index: PerBatchSize<BlockIndex>,
}

impl SymmetryAwareNet {
    /// Builds the network for `shape`, adding its parameters to `params`.
    pub fn build<R: Rng + ?Sized>(
        spec: &PolicySpec,
        shape: &NetworkShape,
        params: &mut ParamStore,
        rng: &mut R,
    ) -> Result<SymmetryAwareNet, PolicyError> {
        let PolicySpec::SymmetryAware {
            context_hidden,
            context_size,
            store_hidden,
            warehouse_hidden,
            transshipment,
            demand_scaling,
        } = spec
        else {
            unreachable!("SymmetryAwareNet::build is only called with a symmetry_aware spec")
        };
        let kind = spec.kind();
        if shape.n_warehouses != 1 || shape.n_echelons != 0 {
            return Err(PolicyError::Unsupported {
                policy: kind,
                reason: format!(
                    "needs exactly one warehouse and no extra echelons (this network has W = {}, E = {})",
                    shape.n_warehouses, shape.n_echelons
                ),
            });
        }
        let widths_ok = |v: &[usize]| v.iter().all(|&h| h > 0);
        for (field, ok) in [
            ("context_size", *context_size > 0),
            ("context_hidden", widths_ok(context_hidden)),
            ("store_hidden", widths_ok(store_hidden)),
            ("warehouse_hidden", widths_ok(warehouse_hidden)),
        ] {
            if !ok {
                return Err(PolicyError::Invalid {
                    policy: kind,
                    field,
                    message: "must contain widths ≥ 1".into(),
                });
            }
        }
        let (s, ls, lw, c) = (
            shape.n_stores,
            shape.store_pipeline,
            shape.warehouse_pipeline,
            *context_size,
        );
        let mlp = |input, hidden: &[usize], output, out_act| MlpSpec {
            input,
            hidden: hidden.to_vec(),
            output,
            hidden_activation: Activation::Elu,
            output_activation: out_act,
        };
        let context = Mlp::new(
            params,
            "symmetry_aware.context",
            mlp(s * ls + lw, context_hidden, c, Activation::Sigmoid),
            rng,
        );
        let warehouse = Mlp::new(
            params,
            "symmetry_aware.warehouse",
            mlp(lw + c, warehouse_hidden, 1, Activation::Sigmoid),
            rng,
        );

        // First store layer: one nn.Linear(Ls + 4 + C → h1) (PyTorch init with the full fan-in),
        // stored as its local rows and its context rows.
        let local_in = ls + STORE_STATICS;
        let h1 = store_hidden.first().copied().unwrap_or(1);
        let (weight, bias) = init::linear(local_in + c, h1, rng);
        let store_local = params.add(
            "symmetry_aware.store.0.weight_local",
            weight.slice(s![..local_in, ..]).to_owned(),
        );
        let store_context = params.add(
            "symmetry_aware.store.0.weight_context",
            weight.slice(s![local_in.., ..]).to_owned(),
        );
        let store_bias = params.add("symmetry_aware.store.0.bias", bias);
        let store_first_activation = if store_hidden.is_empty() {
            Activation::Softplus
        } else {
            Activation::Elu
        };
        let mut tail_widths = store_hidden.clone();
        tail_widths.push(1);
        let store_tail = mlp_tail(
            params,
            "symmetry_aware.store",
            1,
            &tail_widths,
            Activation::Elu,
            Activation::Softplus,
            rng,
        );
        Ok(SymmetryAwareNet {
            n_stores: s,
            store_pipeline: ls,
            warehouse_pipeline: lw,
            upper_bound: shape.upper_bound,
            transshipment: *transshipment,
            demand_scaling: *demand_scaling,
            context,
            warehouse,
            store_local,
            store_context,
            store_bias,
            store_first_activation,
            store_tail,
            repeat_index: PerBatchSize::default(),
        })
    }

    /// Features it reads.
    pub fn features(&self) -> Vec<Feature> {
        vec![
            Feature::StorePipeline,
            Feature::WarehousePipeline,
            Feature::Static(StaticFeature::Mean),
            Feature::Static(StaticFeature::Std),
            Feature::Static(StaticFeature::UnderageCost),
            Feature::Static(StaticFeature::LeadTime),
        ]
    }

    /// Multiply-adds per sample of one forward pass (with the split first store layer).
    pub fn macs_per_sample(&self) -> usize {
        let h1 = self.store_tail.as_ref().map_or(1, |m| m.spec.input);
        let c = self.context.spec.output;
        let tail = self
            .store_tail
            .as_ref()
            .map_or(0, |m| m.spec.macs_per_sample());
        self.context.spec.macs_per_sample()
            + self.warehouse.spec.macs_per_sample()
            + c * h1
            + self.n_stores * ((self.store_pipeline + STORE_STATICS) * h1 + tail)
    }

    /// Its actions on the tape.
    pub fn act(&self, tape: &mut Tape, params: &ParamStore, obs: &TapeObservation) -> TapeActions {
        self.act_with(tape, &mut |t: &mut Tape, id| t.param(params, id), obs)
    }

    /// [`SymmetryAwareNet::act`] with the parameter nodes supplied by `param` (gradient checks
    /// w.r.t. the parameters pass tape variables).
    pub fn act_with(
        &self,
        tape: &mut Tape,
        param: &mut ParamNodes<'_>,
        obs: &TapeObservation,
    ) -> TapeActions {
        let b = obs.n_samples();
        let (s, ls, lw) = (self.n_stores, self.store_pipeline, self.warehouse_pipeline);
        let wh = obs
            .state
            .warehouse
            .expect("symmetry_aware: the observation has a warehouse pipeline");
        assert_eq!(
            tape.shape(wh),
            (b, lw),
            "symmetry_aware: warehouse pipeline must be (B, Lw)"
        );
        assert_eq!(
            tape.shape(obs.state.store),
            (b * s, ls),
            "symmetry_aware: store pipeline must be (B·S, Ls)"
        );

        // in demand units: pipelines divided by the mean demand their location serves
        let scales = self.demand_scaling.then(|| DemandScales::new(obs.statics));
        let (store_pipeline, wh) = match &scales {
            Some(sc) => (
                DemandScales::divide(tape, obs.state.store, &sc.store),
                DemandScales::divide(tape, wh, &sc.warehouse),
            ),
            None => (obs.state.store, wh),
        };

        // context (B, C) and warehouse order (B, 1)
        let stores_flat = tape.reshape(store_pipeline, b, s * ls);
        let ctx_in = tape.concat_cols(&[stores_flat, wh]);
        let c = self.context.forward_with(tape, param, ctx_in);
        let wh_in = tape.concat_cols(&[wh, c]);
        let share = self.warehouse.forward_with(tape, param, wh_in);
        let order = tape.scale(share, self.upper_bound);

        // first store layer: (x_s · W_loc + bias) + (c · W_ctx) repeated to the store rows
        let statics = store_statics(obs, scales.as_ref());
        let statics = tape.constant(statics);
        let local = tape.concat_cols(&[store_pipeline, statics]);
        let (w_loc, w_ctx, bias) = (
            param(tape, self.store_local),
            param(tape, self.store_context),
            param(tape, self.store_bias),
        );
        let ctx = tape.matmul(c, w_ctx); // (B, h1): once per sample
        let mut q = if self.store_first_activation == Activation::Elu {
            // one fused node: elu(bias + ctx[b] + x_s · W_loc) over the store rows
            let op = DenseElu {
                residual: false,
                gather: Some(
                    self.repeat_index
                        .get_or_build(b, || repeat_rows_blocks(b, s, tape.shape(ctx).1)),
                ),
            };
            tape.custom(Arc::new(op), &[local, w_loc, bias, ctx])
        } else {
            let local = tape.linear(local, w_loc, bias); // (B·S, h1)
            let ctx = tape.gather_rows(ctx, repeat_rows_index(b, s)); // (B·S, h1)
            let pre = tape.add(local, ctx);
            self.store_first_activation.apply(tape, pre)
        };
        if let Some(tail) = &self.store_tail {
            q = tail.forward_with(tape, param, q);
        }
        if let Some(sc) = &scales {
            let mut mean = tape.take_buffer(b * s, 1);
            mean.iter_mut().zip(&sc.store).for_each(|(m, &v)| *m = v);
            let mean = tape.constant(mean);
            q = tape.mul(q, mean);
        }

        // shipments: proportional to the desired quantities, from the warehouse's on-hand
        let q = tape.reshape(q, b, s);
        let on_hand = tape.column(wh, 0); // (B·W, 1) = (B, 1)
        let ship = proportional(tape, q, on_hand, self.transshipment);
        TapeActions {
            store: tape.reshape(ship, b * s, 1),
            warehouse: Some(order),
            echelon: None,
        }
    }
}

/// Row `b·S + s` ← row `b` of a `(B, width)` input, as a [`BlockIndex`] for [`DenseElu`].
fn repeat_rows_blocks(n_samples: usize, times: usize, width: usize) -> BlockIndex {
    let triples: Vec<(u32, u32, f32)> = (0..n_samples * times)
        .map(|row| (row as u32, (row / times) as u32, 1.0))
        .collect();
    BlockIndex::new(Csr::from_triples(n_samples * times, &triples), width, 1, 1)
}

/// `(B·S, 4)`: `[mean, std, underage cost, lead time]` of every store row; with demand scales
/// `[mean / average store mean of the sample, std / mean, …]`.
fn store_statics(obs: &TapeObservation, scales: Option<&DemandScales>) -> Array2<f32> {
    let st = obs.statics;
    let rows = st.mean.len();
    let s = st.n_stores;
    let mut out = Array2::zeros((rows, STORE_STATICS));
    for (r, mut row) in out.rows_mut().into_iter().enumerate() {
        (row[0], row[1]) = match scales {
            Some(sc) => {
                let sample = &sc.store[r / s * s..(r / s + 1) * s];
                let average = sample.iter().sum::<f32>() / s as f32;
                (sc.store[r] / average, st.std[r] / sc.store[r])
            }
            None => (st.mean[r], st.std[r]),
        };
        row[2] = st.underage_cost[r];
        row[3] = st.lead_time[[r, 0]] as f32;
    }
    out
}

/// The row index `b·S + s → b` map as a gather index that repeats each sample's row `S` times.
fn repeat_rows_index(n_samples: usize, times: usize) -> Arc<[u32]> {
    (0..n_samples)
        .flat_map(|b| std::iter::repeat_n(b as u32, times))
        .collect::<Vec<_>>()
        .into()
}
