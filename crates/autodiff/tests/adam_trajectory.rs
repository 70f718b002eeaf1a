//! Adam over several parameters of different shapes and several steps, with gradient clipping and a
//! learning rate that changes between steps (as the trainer's schedules do), against a trajectory
//! computed independently here in plain f64 from PyTorch's documented update rule
//! (`torch.optim.Adam`, default β = (0.9, 0.999), ε = 1e-8, bias correction, no weight decay;
//! `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)` when below 1). Our Adam has no weight decay
//! option, so none is tested.
//!
//! A step counter advanced once per parameter instead of once per step, moments shared or mixed
//! between parameters, or a bias correction with the wrong exponent all move this trajectory far
//! outside the tolerance.

use hdpo_autodiff::{Adam, ParamStore, clip_grad_norm};
use ndarray::Array2;

/// The gradient of parameter `k` at step `t`: deterministic, sign-changing, different per entry,
/// with a magnitude that differs between parameters (so clipping and per-entry normalisation both
/// matter).
fn gradient(k: usize, t: usize, shape: (usize, usize)) -> Array2<f64> {
    Array2::from_shape_fn(shape, |(i, j)| {
        let x = (1 + k) as f64 * 0.7 + t as f64 * 1.3 + i as f64 * 0.37 + j as f64 * 0.91;
        (k as f64 + 1.0) * x.sin() + 0.2 * (3.0 * x).cos()
    })
}

/// Independent f64 reference: PyTorch's Adam with global-norm clipping.
struct ReferenceAdam {
    params: Vec<Array2<f64>>,
    m: Vec<Array2<f64>>,
    v: Vec<Array2<f64>>,
    t: i32,
}

impl ReferenceAdam {
    fn step(&mut self, grads: &[Array2<f64>], lr: f64, max_norm: Option<f64>) {
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
        let mut grads = grads.to_vec();
        if let Some(max_norm) = max_norm {
            let norm = grads
                .iter()
                .map(|g| g.iter().map(|x| x * x).sum::<f64>())
                .sum::<f64>()
                .sqrt();
            let coef = max_norm / (norm + 1e-6);
            if coef < 1.0 {
                for g in &mut grads {
                    g.mapv_inplace(|x| x * coef);
                }
            }
        }
        self.t += 1;
        for (k, g) in grads.iter().enumerate() {
            for ((p, m), (v, &g)) in self.params[k]
                .iter_mut()
                .zip(self.m[k].iter_mut())
                .zip(self.v[k].iter_mut().zip(g.iter()))
            {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let m_hat = *m / (1.0 - b1.powi(self.t));
                let v_hat = *v / (1.0 - b2.powi(self.t));
                *p -= lr * m_hat / (v_hat.sqrt() + eps);
            }
        }
    }
}

#[test]
fn adam_with_clipping_and_a_changing_rate_follows_an_independent_trajectory() {
    let shapes = [(2, 3), (1, 3), (4, 1), (1, 1)];
    let mut store = ParamStore::new();
    let initial: Vec<Array2<f64>> = shapes
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            Array2::from_shape_fn(s, |(i, j)| 0.5 - 0.3 * k as f64 + 0.1 * (i + 2 * j) as f64)
        })
        .collect();
    let ids: Vec<_> = initial
        .iter()
        .enumerate()
        .map(|(k, p)| store.add(format!("p{k}"), p.mapv(|x| x as f32)))
        .collect();
    let mut adam = Adam::new(&store, 0.05);
    let mut reference = ReferenceAdam {
        m: initial.iter().map(|p| Array2::zeros(p.raw_dim())).collect(),
        v: initial.iter().map(|p| Array2::zeros(p.raw_dim())).collect(),
        params: initial.clone(),
        t: 0,
    };
    let steps = 8;
    let mut clipped_steps = 0;
    for t in 0..steps {
        // a step schedule (halve every 3 steps) and clipping that binds on some steps only
        let lr = 0.05 * 0.5f64.powi((t / 3) as i32);
        let max_norm = if t % 2 == 0 { Some(2.5) } else { None };
        let grads64: Vec<Array2<f64>> = shapes
            .iter()
            .enumerate()
            .map(|(k, &s)| gradient(k, t, s))
            .collect();
        let mut grads = store.zero_grads();
        for (id, g) in ids.iter().zip(&grads64) {
            grads.get_mut(*id).assign(&g.mapv(|x| x as f32));
        }
        if let Some(max_norm) = max_norm {
            let norm = clip_grad_norm(&mut grads, max_norm as f32);
            if norm > max_norm {
                clipped_steps += 1;
            }
        }
        adam.lr = lr as f32;
        adam.step(&mut store, &grads);
        reference.step(&grads64, lr, max_norm);
        for (k, id) in ids.iter().enumerate() {
            let ours = store.value(*id);
            for (&a, &b) in ours.iter().zip(reference.params[k].iter()) {
                // f32 arithmetic on values of order 1 with steps of order lr: a few ulps per step
                assert!(
                    (a as f64 - b).abs() <= 2e-5,
                    "step {t}, parameter {k}: ours {a}, reference {b}\n{ours}\n{}",
                    reference.params[k]
                );
            }
        }
    }
    assert_eq!(adam.step_count, steps as u64, "one count per step");
    assert!(clipped_steps >= 2, "clipping must bind in the trajectory");
    // the trajectory moved every parameter well beyond the tolerance
    for (k, id) in ids.iter().enumerate() {
        let moved = store
            .value(*id)
            .iter()
            .zip(initial[k].iter())
            .map(|(&a, &b)| (a as f64 - b).abs())
            .fold(0.0f64, f64::max);
        assert!(moved > 0.01, "parameter {k} moved only {moved}");
    }
}
