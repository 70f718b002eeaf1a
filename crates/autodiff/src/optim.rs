//! Optimizers, gradient clipping and parameter initialisation. Adam follows PyTorch's `torch.optim.Adam`
//! exactly (β = (0.9, 0.999), ε = 1e-8, bias correction, no weight decay) so learning-rate settings
//! carry over from the reference.

use crate::params::{Grads, ParamStore};
use ndarray::Array2;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// Adam with PyTorch's update rule:
/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `p ← p − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adam {
    /// Learning rate.
    pub lr: f32,
    /// Decay of the first moment.
    pub beta1: f32,
    /// Decay of the second moment.
    pub beta2: f32,
    /// Added to the denominator.
    pub eps: f32,
    /// Number of steps taken.
    pub step_count: u64,
    /// First moments, one per parameter.
    pub m: Vec<Array2<f32>>,
    /// Second moments, one per parameter.
    pub v: Vec<Array2<f32>>,
}

impl Adam {
    /// Adam for the parameters of `store`, moments at zero.
    pub fn new(store: &ParamStore, lr: f32) -> Self {
        let zeros: Vec<Array2<f32>> = store
            .ids()
            .map(|id| Array2::zeros(store.value(id).raw_dim()))
            .collect();
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step_count: 0,
            m: zeros.clone(),
            v: zeros,
        }
    }

    /// One update of every parameter with its gradient.
    pub fn step(&mut self, store: &mut ParamStore, grads: &Grads) {
        self.step_count += 1;
        let t = self.step_count as i32;
        let bias1 = 1.0 - (self.beta1 as f64).powi(t);
        let bias2 = 1.0 - (self.beta2 as f64).powi(t);
        let step_size = (self.lr as f64 / bias1) as f32;
        let bias2_sqrt = bias2.sqrt() as f32;
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        for (k, id) in store.ids().collect::<Vec<_>>().into_iter().enumerate() {
            let g = grads.get(id);
            let p = store.value_mut(id);
            let (m, v) = (&mut self.m[k], &mut self.v[k]);
            ndarray::Zip::from(p)
                .and(m)
                .and(v)
                .and(g)
                .for_each(|p, m, v, &g| {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    let denom = v.sqrt() / bias2_sqrt + eps;
                    *p -= step_size * *m / denom;
                });
        }
    }

    /// True when the moment shapes match the parameters of `store`.
    pub fn matches(&self, store: &ParamStore) -> bool {
        self.m.len() == store.len()
            && store
                .ids()
                .zip(&self.m)
                .all(|(id, m)| m.dim() == store.value(id).dim())
            && self.v.len() == self.m.len()
    }
}

/// Plain stochastic gradient descent: `p ← p − lr · g`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f32,
}

impl Sgd {
    /// One update of every parameter.
    pub fn step(&self, store: &mut ParamStore, grads: &Grads) {
        for id in store.ids().collect::<Vec<_>>() {
            let lr = self.lr;
            store
                .value_mut(id)
                .zip_mut_with(grads.get(id), |p, &g| *p -= lr * g);
        }
    }
}

/// Scales all gradients so that their global L2 norm is at most `max_norm` (PyTorch's
/// `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)` when below 1). Returns the norm before
/// clipping.
pub fn clip_grad_norm(grads: &mut Grads, max_norm: f32) -> f64 {
    let norm = grads.global_norm();
    let coef = max_norm as f64 / (norm + 1e-6);
    if coef < 1.0 {
        grads.scale(coef as f32);
    }
    norm
}

/// Parameter initialisation helpers.
pub mod init {
    use super::*;

    /// A `(rows, cols)` tensor with entries uniform in `[−bound, bound)`.
    pub fn uniform<R: Rng + ?Sized>(
        rows: usize,
        cols: usize,
        bound: f32,
        rng: &mut R,
    ) -> Array2<f32> {
        Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-bound..bound))
    }

    /// PyTorch's default `nn.Linear` init for a layer `fan_in → fan_out`: weight `(fan_in, fan_out)`
    /// and bias `(1, fan_out)`, both U(±1/√fan_in).
    pub fn linear<R: Rng + ?Sized>(
        fan_in: usize,
        fan_out: usize,
        rng: &mut R,
    ) -> (Array2<f32>, Array2<f32>) {
        let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
        (
            uniform(fan_in, fan_out, bound, rng),
            uniform(1, fan_out, bound, rng),
        )
    }
}
