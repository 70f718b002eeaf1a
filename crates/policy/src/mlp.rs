//! Multi-layer perceptrons on the tape: the building block of every neural policy. Layers are
//! `x · w + b` with `w: (in, out)` (PyTorch stores `(out, in)`; fixtures are transposed on import),
//! initialised like PyTorch's `nn.Linear` (U(±1/√fan_in)). This module also owns the MLP helpers the
//! bigger networks share: [`ParamNodes`] (where a layer takes its parameter nodes from) and the
//! layers after a hand-built first layer (`mlp_tail`, used by [`crate::symmetry`] and [`crate::gnn`]).

use hdpo_autodiff::optim::init;
use hdpo_autodiff::{ParamId, ParamStore, Tape, Unary, Var};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// An elementwise activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// No activation.
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// ELU with α = 1.
    Elu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// Softplus (threshold 20).
    Softplus,
}

impl Activation {
    /// Applies the activation on the tape.
    pub fn apply(self, tape: &mut Tape, x: Var) -> Var {
        match self {
            Activation::Identity => x,
            Activation::Relu => tape.relu(x),
            Activation::Elu => tape.elu(x),
            Activation::Tanh => tape.tanh(x),
            Activation::Sigmoid => tape.sigmoid(x),
            Activation::Softplus => tape.softplus(x),
        }
    }
}

impl Activation {
    /// The elementwise function [`Tape::linear_act`] can fuse into the layer, if any.
    pub fn fusable(self) -> Option<Unary> {
        match self {
            Activation::Relu => Some(Unary::Relu),
            Activation::Elu => Some(Unary::Elu),
            Activation::Tanh => Some(Unary::Tanh),
            Activation::Sigmoid => Some(Unary::Sigmoid),
            Activation::Identity | Activation::Softplus => None,
        }
    }
}

/// The shape of an MLP: input width, hidden widths, output width and activations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpSpec {
    /// Number of input features.
    pub input: usize,
    /// Width of each hidden layer (may be empty: a single linear layer).
    pub hidden: Vec<usize>,
    /// Number of outputs.
    pub output: usize,
    /// Activation after each hidden layer.
    pub hidden_activation: Activation,
    /// Activation after the output layer.
    pub output_activation: Activation,
}

impl MlpSpec {
    /// Multiply-adds per sample of one forward pass.
    pub fn macs_per_sample(&self) -> usize {
        let mut widths = vec![self.input];
        widths.extend(&self.hidden);
        widths.push(self.output);
        widths.windows(2).map(|w| w[0] * w[1]).sum()
    }
}

/// Supplies the tape node of a parameter. [`Mlp::forward`],
/// [`SymmetryAwareNet::act`](crate::symmetry::SymmetryAwareNet::act) and
/// [`GnnNet::act`](crate::gnn::GnnNet::act) use `tape.param(store, id)`; gradient checks map
/// parameters to tape variables instead (see the `act_with` methods).
pub type ParamNodes<'a> = dyn FnMut(&mut Tape, ParamId) -> Var + 'a;

/// An MLP whose weights live in a [`ParamStore`] under `"{name}.{layer}.weight"` / `".bias"`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// Its shape.
    pub spec: MlpSpec,
    /// `(weight, bias)` of each layer, input to output.
    pub layers: Vec<(ParamId, ParamId)>,
}

impl Mlp {
    /// Adds the layers to `store`, initialised like PyTorch's `nn.Linear`.
    pub fn new<R: Rng + ?Sized>(
        store: &mut ParamStore,
        name: &str,
        spec: MlpSpec,
        rng: &mut R,
    ) -> Mlp {
        let mut widths = vec![spec.input];
        widths.extend(&spec.hidden);
        widths.push(spec.output);
        let layers = add_layers(store, name, 0, &widths, rng);
        Mlp { spec, layers }
    }

    /// Sets every bias of the output layer to `value` (the reference's `initial_bias`).
    pub fn set_output_bias(&self, store: &mut ParamStore, value: f32) {
        let (_, bias) = *self.layers.last().expect("an MLP has at least one layer");
        store.value_mut(bias).fill(value);
    }

    /// `x: (rows, input)` → `(rows, output)`.
    pub fn forward(&self, tape: &mut Tape, store: &ParamStore, x: Var) -> Var {
        self.forward_with(tape, &mut |t: &mut Tape, id| t.param(store, id), x)
    }

    /// [`Mlp::forward`] with the tape node of each parameter supplied by `param` (gradient checks
    /// pass tape variables instead of the stored parameters).
    pub fn forward_with(&self, tape: &mut Tape, param: &mut ParamNodes<'_>, x: Var) -> Var {
        let last = self.layers.len() - 1;
        let mut h = x;
        for (k, &(w, b)) in self.layers.iter().enumerate() {
            let (wv, bv) = (param(tape, w), param(tape, b));
            let act = if k == last {
                self.spec.output_activation
            } else {
                self.spec.hidden_activation
            };
            // one fused op where the activation allows it (same bits as the two ops)
            h = match act.fusable() {
                Some(unary) => tape.linear_act(h, wv, bv, unary),
                None => {
                    let pre = tape.linear(h, wv, bv);
                    act.apply(tape, pre)
                }
            };
        }
        h
    }
}

/// Adds the layers `widths[0] → widths[1] → …` to `store`, named `"{name}.{k}.weight"` /
/// `".bias"` with `k` counted from `first_index`, initialised like PyTorch's `nn.Linear` (layer by
/// layer, weight then bias, from `rng`).
fn add_layers<R: Rng + ?Sized>(
    store: &mut ParamStore,
    name: &str,
    first_index: usize,
    widths: &[usize],
    rng: &mut R,
) -> Vec<(ParamId, ParamId)> {
    widths
        .windows(2)
        .enumerate()
        .map(|(k, w)| {
            let (weight, bias) = init::linear(w[0], w[1], rng);
            let k = k + first_index;
            (
                store.add(format!("{name}.{k}.weight"), weight),
                store.add(format!("{name}.{k}.bias"), bias),
            )
        })
        .collect()
}

/// Layers `first_index ..` of an MLP whose first layer is built by hand (the symmetry-aware and
/// GNN store networks): widths `widths[0] → widths[1] → …`, named and initialised like
/// [`Mlp::new`]'s layers with `k` counted from `first_index`. `None` when there is no layer left
/// (`widths.len() < 2`).
pub(crate) fn mlp_tail<R: Rng + ?Sized>(
    params: &mut ParamStore,
    name: &str,
    first_index: usize,
    widths: &[usize],
    hidden_activation: Activation,
    output_activation: Activation,
    rng: &mut R,
) -> Option<Mlp> {
    if widths.len() < 2 {
        return None;
    }
    let layers = add_layers(params, name, first_index, widths, rng);
    let spec = MlpSpec {
        input: widths[0],
        hidden: widths[1..widths.len() - 1].to_vec(),
        output: widths[widths.len() - 1],
        hidden_activation,
        output_activation,
    };
    Some(Mlp { spec, layers })
}
