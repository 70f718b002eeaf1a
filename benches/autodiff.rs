//! Benchmarks of the autodiff engine (`hdpo-autodiff`); the figures are in `docs/performance.md`.
//!
//! Run: `cargo bench --bench autodiff` (a few minutes on 2 cores).
//!
//! Throughput is reported as `Throughput::Elements(FLOP)`: the element count of every benchmark is
//! its number of floating-point operations, counted as `2·m·k·n` per matrix product (bias adds,
//! activations and the loss are not counted), so criterion's `Gelem/s` reads as GFLOP/s.
//!
//! * `gemm_1024_rows`: the raw `gemm::matmul` and `gemm::matmul_at_b` kernels at the shapes of one
//!   1,024-row shard of a narrow MLP (hidden, first and output layer, and width 64), and a layer's
//!   weight and bias gradients computed apart and in one pass (`matmul_at_b_and_column_sums`).
//! * `matmul_8192x64x64`, `matmul_8192x32x32`: one `(8192, k) · (k, n)` product, as a tape op in
//!   no-grad mode (the engine's `gemm` kernels) and as a raw `ndarray::linalg::general_mat_mul`
//!   (`matrixmultiply`) into a preallocated output.
//! * `mlp_4-32-32-32-1_b8192`: an ELU MLP with a squared-error loss on a batch of 8192, forward only
//!   on a no-grad tape and forward + backward on a recording tape (tape reset every iteration).
//! * `mlp_sharded_b8192`: the same forward + backward through `ShardedTapes`, the batch cut in 1, 2
//!   or 8 shards run on rayon's global pool (one thread per core).
//! * `elu_8192x32`: one ELU activation of the MLP's size, forward as a tape op, forward + backward
//!   on a recording tape, and a raw loop with `f32::exp_m1` for comparison (throughput in
//!   elements).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hdpo_autodiff::ndarray::{Array2, linalg::general_mat_mul, s};
use hdpo_autodiff::optim::init;
use hdpo_autodiff::{ParamId, ParamStore, ShardedTapes, Tape, Var, gemm};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::hint::black_box;
use std::ops::Range;
use std::time::{Duration, Instant};

const BATCH: usize = 8192;
const WIDTHS: [usize; 5] = [4, 32, 32, 32, 1];
/// `(m, k, n)` of the products benchmarked alone: the brief's 64-wide case and the MLP's 32.
const MATMULS: [(usize, usize, usize); 2] = [(8192, 64, 64), (8192, 32, 32)];

fn random(rows: usize, cols: usize, rng: &mut Pcg64Mcg) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-1.0f32..1.0))
}

/// FLOP of the matrix products of one forward pass of the MLP: `Σ 2·batch·in·out`.
fn mlp_forward_flop() -> u64 {
    WIDTHS
        .windows(2)
        .map(|w| 2 * (BATCH * w[0] * w[1]) as u64)
        .sum()
}

/// Forward + backward: the backward of a linear layer is two products of the forward's size
/// (`dW = xᵀ·g`, `dx = g·Wᵀ`), except the first layer, whose input needs no gradient (`dW` only).
fn mlp_forward_backward_flop() -> u64 {
    let first = 2 * (BATCH * WIDTHS[0] * WIDTHS[1]) as u64;
    3 * mlp_forward_flop() - first
}

struct Mlp {
    store: ParamStore,
    layers: Vec<(ParamId, ParamId)>,
    x: Array2<f32>,
    y: Array2<f32>,
}

impl Mlp {
    fn new() -> Self {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let mut store = ParamStore::new();
        let layers = WIDTHS
            .windows(2)
            .enumerate()
            .map(|(k, w)| {
                let (weight, bias) = init::linear(w[0], w[1], &mut rng);
                (
                    store.add(format!("w{k}"), weight),
                    store.add(format!("b{k}"), bias),
                )
            })
            .collect();
        let x = random(BATCH, WIDTHS[0], &mut rng);
        let y = random(BATCH, 1, &mut rng);
        Mlp {
            store,
            layers,
            x,
            y,
        }
    }

    /// Squared error summed over `rows`, divided by the whole batch (so shard losses add up).
    fn loss(&self, t: &mut Tape, store: &ParamStore, rows: Range<usize>) -> Var {
        let mut h = t.constant_from(self.x.slice(s![rows.clone(), ..]));
        let y = t.constant_from(self.y.slice(s![rows, ..]));
        for (k, &(w, b)) in self.layers.iter().enumerate() {
            let (w, b) = (t.param(store, w), t.param(store, b));
            h = t.linear(h, w, b);
            if k + 1 < self.layers.len() {
                h = t.elu(h);
            }
        }
        let e = t.sub(h, y);
        let e2 = t.square(e);
        let total = t.sum_all(e2);
        t.scale(total, 1.0 / BATCH as f32)
    }
}

/// The wide products (the 3×512 warehouse MLP, the symmetry-aware context net) at one shard of
/// 512 rows: this crate's path (the `gemm` crate) against `ndarray`'s `general_mat_mul`
/// (`matrixmultiply`), for `a·b`, `a·bᵀ` (input gradient) and `aᵀ·g` (weight gradient).
fn gemm_wide(c: &mut Criterion) {
    let mut rng = Pcg64Mcg::seed_from_u64(2);
    let m = 512;
    let mut group = c.benchmark_group("gemm_wide_512_rows");
    for w in [256, 512] {
        let (a, b, g) = (
            random(m, w, &mut rng),
            random(w, w, &mut rng),
            random(m, w, &mut rng),
        );
        group.throughput(Throughput::Elements(2 * (m * w * w) as u64));
        let (sa, sb, sg) = (
            a.as_slice().unwrap(),
            b.as_slice().unwrap(),
            g.as_slice().unwrap(),
        );
        let mut out = vec![0.0f32; m * w];
        group.bench_function(format!("hdpo_a_b_{w}"), |bench| {
            bench.iter(|| gemm::matmul(&mut out, false, black_box(sa), black_box(sb), m, w, w))
        });
        group.bench_function(format!("hdpo_a_bt_{w}"), |bench| {
            bench.iter(|| gemm::matmul_a_bt(&mut out, false, black_box(sg), black_box(sb), m, w, w))
        });
        let mut grad = vec![0.0f32; w * w];
        group.bench_function(format!("hdpo_at_b_{w}"), |bench| {
            bench
                .iter(|| gemm::matmul_at_b(&mut grad, false, black_box(sa), black_box(sg), m, w, w))
        });
        let mut out2 = Array2::<f32>::zeros((m, w));
        group.bench_function(format!("ndarray_a_b_{w}"), |bench| {
            bench.iter(|| general_mat_mul(1.0, black_box(&a), black_box(&b), 0.0, &mut out2))
        });
        group.bench_function(format!("ndarray_a_bt_{w}"), |bench| {
            bench.iter(|| general_mat_mul(1.0, black_box(&g), &black_box(&b).t(), 0.0, &mut out2))
        });
        let mut grad2 = Array2::<f32>::zeros((w, w));
        group.bench_function(format!("ndarray_at_b_{w}"), |bench| {
            bench.iter(|| general_mat_mul(1.0, &black_box(&a).t(), black_box(&g), 0.0, &mut grad2))
        });
    }
    group.finish();
}

fn matmul(c: &mut Criterion) {
    for shape in MATMULS {
        matmul_shape(c, shape);
    }
}

/// The raw product kernels of `gemm.rs` at the shapes of one shard of a narrow MLP (1,024 rows):
/// `a·b` (forward and input gradient), the forward with bias and ELU, and `aᵀ·g` (weight
/// gradient), for the hidden layer (k = n = 32), the first layer (k = 4) and the output layer
/// (n = 1).
fn gemm_kernels(c: &mut Criterion) {
    let mut rng = Pcg64Mcg::seed_from_u64(1);
    let m = 1024;
    let mut group = c.benchmark_group("gemm_1024_rows");
    for (k, n) in [(32, 32), (4, 32), (32, 1), (64, 64)] {
        let (a, b, g) = (
            random(m, k, &mut rng),
            random(k, n, &mut rng),
            random(m, n, &mut rng),
        );
        let (a, b, g) = (
            a.as_slice().unwrap(),
            b.as_slice().unwrap(),
            g.as_slice().unwrap(),
        );
        group.throughput(Throughput::Elements(2 * (m * k * n) as u64));
        let mut out = vec![0.0f32; m * n];
        group.bench_function(format!("matmul_k{k}_n{n}"), |bench| {
            bench.iter(|| gemm::matmul(&mut out, false, black_box(a), black_box(b), m, k, n))
        });
        // a hidden layer's forward: bias, product and ELU in one pass (what the dev pass runs)
        let bias = vec![0.1f32; n];
        group.bench_function(format!("matmul_bias_elu_k{k}_n{n}"), |bench| {
            bench.iter(|| {
                gemm::matmul_bias_map(
                    &mut out,
                    &bias,
                    (black_box(a), black_box(b)),
                    (m, k, n),
                    gemm::Elu,
                )
            })
        });
        let mut grad = vec![0.0f32; k * n];
        group.bench_function(format!("at_b_k{k}_n{n}"), |bench| {
            bench.iter(|| gemm::matmul_at_b(&mut grad, false, black_box(a), black_box(g), m, k, n))
        });
        // a layer's weight and bias gradients: the two apart, and in one pass over `g`
        let mut sums = vec![0.0f32; n];
        group.bench_function(format!("at_b_then_column_sums_k{k}_n{n}"), |bench| {
            bench.iter(|| {
                gemm::matmul_at_b(&mut grad, false, black_box(a), black_box(g), m, k, n);
                hdpo_autodiff::kernels::column_sums_into(&mut sums, true, black_box(g));
            })
        });
        group.bench_function(format!("at_b_and_column_sums_k{k}_n{n}"), |bench| {
            bench.iter(|| {
                gemm::matmul_at_b_and_column_sums(
                    &mut grad,
                    false,
                    &mut sums,
                    false,
                    black_box(a),
                    black_box(g),
                    (m, k, n),
                )
            })
        });
    }
    group.finish();
}

fn matmul_shape(c: &mut Criterion, (m, k, n): (usize, usize, usize)) {
    let mut rng = Pcg64Mcg::seed_from_u64(0);
    let (a, b) = (random(m, k, &mut rng), random(k, n, &mut rng));
    let mut group = c.benchmark_group(format!("matmul_{m}x{k}x{n}"));
    group.throughput(Throughput::Elements(2 * (m * k * n) as u64));

    // Only the op is timed: the inputs are copied onto the tape (reset every iteration) outside
    // the timed region. The output buffer comes from the tape's pool, so nothing is allocated.
    group.bench_function("tape_matmul_no_grad", |bench| {
        let mut tape = Tape::no_grad();
        bench.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                tape.reset();
                let (av, bv) = (tape.constant_from(a.view()), tape.constant_from(b.view()));
                let start = Instant::now();
                let out = tape.matmul(av, bv);
                black_box(tape.value(out));
                total += start.elapsed();
            }
            total
        })
    });

    group.bench_function("ndarray_general_mat_mul", |bench| {
        let mut out = Array2::<f32>::zeros((m, n));
        bench.iter(|| {
            general_mat_mul(1.0, black_box(&a), black_box(&b), 0.0, &mut out);
            black_box(&out);
        })
    });
    group.finish();
}

fn mlp(c: &mut Criterion) {
    let model = Mlp::new();
    let mut group = c.benchmark_group(format!("mlp_4-32-32-32-1_b{BATCH}"));

    group.throughput(Throughput::Elements(mlp_forward_flop()));
    group.bench_function("forward_no_grad", |bench| {
        let mut tape = Tape::no_grad();
        bench.iter(|| {
            tape.reset();
            let loss = model.loss(&mut tape, &model.store, 0..BATCH);
            black_box(tape.scalar(loss))
        })
    });

    group.throughput(Throughput::Elements(mlp_forward_backward_flop()));
    group.bench_function("forward_backward", |bench| {
        let mut tape = Tape::new();
        let mut grads = model.store.zero_grads();
        bench.iter(|| {
            tape.reset();
            grads.zero();
            let loss = model.loss(&mut tape, &model.store, 0..BATCH);
            tape.backward(loss, &mut grads);
            black_box(&grads);
        })
    });
    group.finish();
}

fn mlp_sharded(c: &mut Criterion) {
    let model = Mlp::new();
    let mut group = c.benchmark_group(format!("mlp_sharded_b{BATCH}"));
    group.throughput(Throughput::Elements(mlp_forward_backward_flop()));
    for n_shards in [1, 2, 8] {
        let rows = BATCH / n_shards;
        group.bench_with_input(
            BenchmarkId::new("forward_backward", n_shards),
            &n_shards,
            |bench, &n_shards| {
                let mut shards = ShardedTapes::new(n_shards);
                bench.iter(|| {
                    let (losses, grads) = shards.gradients(&model.store, |k, t, store| {
                        model.loss(t, store, k * rows..(k + 1) * rows)
                    });
                    black_box((losses, grads))
                })
            },
        );
    }
    group.finish();
}

fn elu(c: &mut Criterion) {
    let mut rng = Pcg64Mcg::seed_from_u64(2);
    let x = random(BATCH, 32, &mut rng);
    let mut group = c.benchmark_group(format!("elu_{BATCH}x32"));
    group.throughput(Throughput::Elements(x.len() as u64));

    group.bench_function("tape_forward_no_grad", |bench| {
        let mut tape = Tape::no_grad();
        bench.iter(|| {
            tape.reset();
            let xv = tape.constant_from(x.view());
            let y = tape.elu(xv);
            black_box(tape.value(y));
        })
    });

    group.bench_function("tape_forward_backward", |bench| {
        let mut tape = Tape::new();
        let mut none = ParamStore::new().zero_grads();
        bench.iter(|| {
            tape.reset();
            // A pooled buffer: `variable(x.clone())` would allocate every iteration and, since
            // reset() keeps every buffer, grow the pool by one buffer per iteration.
            let mut buf = tape.take_buffer(BATCH, 32);
            buf.assign(&x);
            let xv = tape.variable(buf);
            let y = tape.elu(xv);
            let l = tape.sum_all(y);
            tape.backward(l, &mut none);
            black_box(tape.grad(xv));
        })
    });

    group.bench_function("raw_loop_exp_m1", |bench| {
        let mut out = x.clone();
        bench.iter(|| {
            out.zip_mut_with(black_box(&x), |o, &v| {
                *o = if v > 0.0 { v } else { v.exp_m1() }
            });
            black_box(&out);
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = gemm_kernels, gemm_wide, matmul, mlp, mlp_sharded, elu
}
criterion_main!(benches);
