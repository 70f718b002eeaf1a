//! Step 2 of `docs/autodiff.md`: fit a small MLP with the real engine.
//!
//! Regression of `y = sin(3x) + noise` on `x ∈ [−1, 1]` with a 1 → 32 → 32 → 1 ELU network, full
//! batch, Adam. One `Tape` is reused for every step: `reset()` recycles its buffers, so after the
//! first step training allocates nothing on the tape.
//!
//! Run: `cargo run --release -p hdpo-autodiff --example fit_mlp [-- --dot step.dot]`
//! (`--dot` writes the graph of one training step; render with `dot -Tsvg step.dot > step.svg`).

use hdpo_autodiff::optim::init;
use hdpo_autodiff::{Adam, ParamId, ParamStore, Tape, Var};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::time::Instant;

const N: usize = 1024; // training points
const WIDTHS: [usize; 4] = [1, 32, 32, 1];
const STEPS: usize = 2000;
const NOISE: f32 = 0.1;

/// The weights and biases of each layer, as ids into the store.
struct Mlp {
    layers: Vec<(ParamId, ParamId)>,
}

impl Mlp {
    fn new(store: &mut ParamStore, rng: &mut Pcg64Mcg) -> Self {
        let layers = WIDTHS
            .windows(2)
            .enumerate()
            .map(|(k, w)| {
                let (weight, bias) = init::linear(w[0], w[1], rng);
                (
                    store.add(format!("w{k}"), weight),
                    store.add(format!("b{k}"), bias),
                )
            })
            .collect();
        Mlp { layers }
    }

    /// `x: (batch, 1)` → `(batch, 1)`: linear layers with ELU in between.
    fn forward(&self, t: &mut Tape, store: &ParamStore, x: Var) -> Var {
        let mut h = x;
        for (k, &(w, b)) in self.layers.iter().enumerate() {
            let (w, b) = (t.param(store, w), t.param(store, b));
            h = t.linear(h, w, b);
            if k + 1 < self.layers.len() {
                h = t.elu(h);
            }
        }
        h
    }
}

/// Mean squared error of the network on `(x, y)`, recorded on `t`.
fn mse(t: &mut Tape, store: &ParamStore, mlp: &Mlp, x: &Array2<f32>, y: &Array2<f32>) -> Var {
    let xv = t.constant_from(x.view()); // copied into a pooled buffer: no allocation after step 1
    let yv = t.constant_from(y.view());
    let pred = mlp.forward(t, store, xv);
    let err = t.sub(pred, yv);
    let sq = t.square(err);
    t.mean_all(sq)
}

fn main() {
    let dot_path = std::env::args().skip_while(|a| a != "--dot").nth(1);

    let mut rng = Pcg64Mcg::seed_from_u64(42);
    let x = Array2::from_shape_simple_fn((N, 1), || rng.random_range(-1.0f32..1.0));
    let y = x.mapv(|v| {
        let noise: f32 = rng.random_range(-1.0f32..1.0) * NOISE * 3f32.sqrt(); // std = NOISE
        (3.0 * v).sin() + noise
    });

    let mut store = ParamStore::new();
    let mlp = Mlp::new(&mut store, &mut rng);
    let mut adam = Adam::new(&store, 5e-3);
    let mut tape = Tape::new();
    let mut grads = store.zero_grads();
    println!(
        "MLP {WIDTHS:?}: {} parameters, {N} points, noise variance {:.4}",
        store.num_scalars(),
        NOISE * NOISE
    );

    let start = Instant::now();
    for step in 0..=STEPS {
        tape.reset(); // forget last step's graph, keep its buffers
        grads.zero();
        let loss = mse(&mut tape, &store, &mlp, &x, &y);
        tape.backward(loss, &mut grads);
        if step % 200 == 0 {
            println!("step {step:5}  mse {:.5}", tape.scalar(loss));
        }
        if let (0, Some(path)) = (step, &dot_path) {
            std::fs::write(path, tape.to_dot()).expect("write the DOT file");
            println!("graph of one step ({} nodes) written to {path}", tape.len());
        }
        adam.step(&mut store, &grads);
    }
    println!("{STEPS} steps in {:.2?}", start.elapsed());

    // Evaluate on a grid with a no-grad tape: the same model code, no graph recorded.
    let grid = Array2::from_shape_fn((9, 1), |(i, _)| -1.0 + 0.25 * i as f32);
    let mut eval = Tape::no_grad();
    let gv = eval.constant_from(grid.view());
    let pred = mlp.forward(&mut eval, &store, gv);
    println!("     x   sin(3x)  network");
    for (xi, pi) in grid.iter().zip(eval.value(pred).iter()) {
        println!("{xi:+.2}  {:+.4}  {pi:+.4}", (3.0 * xi).sin());
    }
}
