//! Data-parallel gradients: the sum of shard gradients equals the whole-batch gradient, and a sharded
//! step is bit-identical with 1 and 2 threads.

use hdpo_autodiff::optim::init;
use hdpo_autodiff::{Adam, ParamStore, ShardedTapes, Tape, Var};
use ndarray::{Array2, s};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

fn model() -> (ParamStore, Array2<f32>, Array2<f32>) {
    let mut rng = Pcg64Mcg::seed_from_u64(3);
    let mut store = ParamStore::new();
    let (w1, b1) = init::linear(4, 16, &mut rng);
    let (w2, b2) = init::linear(16, 1, &mut rng);
    store.add("w1", w1);
    store.add("b1", b1);
    store.add("w2", w2);
    store.add("b2", b2);
    let x = Array2::from_shape_simple_fn((512, 4), || rng.random_range(-2.0..2.0));
    let y = Array2::from_shape_simple_fn((512, 1), || rng.random_range(-1.0..1.0));
    (store, x, y)
}

/// Squared error summed over `rows`, divided by the whole batch size (so shard losses add up).
fn loss(
    t: &mut Tape,
    store: &ParamStore,
    x: &Array2<f32>,
    y: &Array2<f32>,
    rows: std::ops::Range<usize>,
) -> Var {
    let n = x.nrows() as f32;
    let xv = t.constant_from(x.slice(s![rows.clone(), ..]));
    let yv = t.constant_from(y.slice(s![rows, ..]));
    let ids: Vec<_> = store.ids().collect();
    let (w1, b1, w2, b2) = (
        t.param(store, ids[0]),
        t.param(store, ids[1]),
        t.param(store, ids[2]),
        t.param(store, ids[3]),
    );
    let h = t.linear(xv, w1, b1);
    let h = t.elu(h);
    let o = t.linear(h, w2, b2);
    let e = t.sub(o, yv);
    let e2 = t.square(e);
    let total = t.sum_all(e2);
    t.scale(total, 1.0 / n)
}

#[test]
fn shard_gradients_sum_to_the_batch_gradient() {
    let (store, x, y) = model();
    let mut whole = Tape::new();
    let l = loss(&mut whole, &store, &x, &y, 0..512);
    let mut g_whole = store.zero_grads();
    whole.backward(l, &mut g_whole);

    let mut shards = ShardedTapes::new(4);
    let (losses, g_sharded) =
        shards.gradients(&store, |k, t, s| loss(t, s, &x, &y, k * 128..(k + 1) * 128));
    let total: f32 = losses.iter().sum();
    assert!((total - whole.scalar(l)).abs() < 1e-5 * whole.scalar(l).abs().max(1.0));
    for id in store.ids() {
        let (a, b) = (g_whole.get(id), g_sharded.get(id));
        for (u, v) in a.iter().zip(b.iter()) {
            assert!(
                (u - v).abs() <= 1e-5 + 1e-4 * u.abs(),
                "param {}: {u} vs {v}",
                store.name(id)
            );
        }
    }
}

fn train_with_threads(threads: usize) -> ParamStore {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let (mut store, x, y) = model();
        let mut adam = Adam::new(&store, 0.01);
        let mut shards = ShardedTapes::new(4);
        for _ in 0..20 {
            let (_, grads) =
                shards.gradients(&store, |k, t, s| loss(t, s, &x, &y, k * 128..(k + 1) * 128));
            adam.step(&mut store, &grads);
        }
        store
    })
}

#[test]
fn sharded_training_is_bit_identical_across_thread_counts() {
    let one = train_with_threads(1);
    let two = train_with_threads(2);
    for id in one.ids() {
        let (a, b) = (one.value(id), two.value(id));
        assert!(
            a.iter()
                .zip(b.iter())
                .all(|(u, v)| u.to_bits() == v.to_bits()),
            "param {} differs",
            one.name(id)
        );
    }
    // and training actually moved the parameters
    let (start, _, _) = model();
    assert_ne!(
        start.value(start.ids().next().unwrap()),
        one.value(one.ids().next().unwrap())
    );
}
