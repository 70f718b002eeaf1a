//! Fused dense layers shared by the graph network and the symmetry-aware network: a
//! destination-sorted block gather ([`BlockIndex`]) and [`DenseElu`], one tape node for
//! `elu(x·W + b [+ gathered rows]) [+ r]` with a hand-written backward pass, computed in blocks
//! of rows so each block's product, activation and gradient run while it is in cache; and
//! [`PerBatchSize`], the cache of the gather indices a network builds for a batch size.

use hdpo_autodiff::{Csr, CustomOp, InputGrad};
use ndarray::{Array2, s};
use std::sync::{Arc, Mutex};

/// Values a network builds once per batch size (gather indices, batch graphs) and shares with its
/// clones: their content depends only on the network and `B`, and rebuilding one on every call
/// (every period of every shard) costs a sort of `B·S` or `B·K` entries.
pub(crate) struct PerBatchSize<T>(Arc<Mutex<BySize<T>>>);

/// `(batch size, value)` pairs.
type BySize<T> = Vec<(usize, Arc<T>)>;

impl<T> PerBatchSize<T> {
    /// Batch sizes kept at most (train, dev, test and a few partial batches).
    const CAPACITY: usize = 8;

    /// The value for batch size `b`, built by `build` the first time.
    pub(crate) fn get_or_build(&self, b: usize, build: impl FnOnce() -> T) -> Arc<T> {
        let mut cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, value)) = cache.iter().find(|(size, _)| *size == b) {
            return value.clone();
        }
        let value = Arc::new(build());
        if cache.len() >= Self::CAPACITY {
            cache.remove(0);
        }
        cache.push((b, value.clone()));
        value
    }
}

impl<T> Default for PerBatchSize<T> {
    fn default() -> Self {
        PerBatchSize(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T> Clone for PerBatchSize<T> {
    fn clone(&self) -> Self {
        PerBatchSize(self.0.clone())
    }
}

impl<T> std::fmt::Debug for PerBatchSize<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sizes: Vec<usize> = self
            .0
            .lock()
            .map(|c| c.iter().map(|(b, _)| *b).collect())
            .unwrap_or_default();
        write!(f, "PerBatchSize(batch sizes {sizes:?})")
    }
}

/// A destination-sorted gather over column blocks: the input `x: (rows, in_blocks·bw)` is read as
/// blocks `x[i] = x[i / in_blocks, (i % in_blocks)·bw ..][..bw]` and the output `(n, out_blocks·bw)`
/// likewise; output block `o` receives `Σ_{entries of o} weight · x[source]`, the entries given by
/// a [`Csr`] over output blocks. It is `reshape → segment_sum → reshape` in one pass, with a fixed
/// summation order (deterministic).
pub(crate) struct BlockIndex {
    csr: Csr,
    block: usize,
    in_blocks: usize,
    out_blocks: usize,
    /// One past the largest source block (checked against the input's shape).
    source_blocks: usize,
}

impl BlockIndex {
    /// A gather of `block`-wide blocks, `in_blocks` per input row and `out_blocks` per output
    /// row, with the entries of each output block in `csr`.
    pub(crate) fn new(csr: Csr, block: usize, in_blocks: usize, out_blocks: usize) -> BlockIndex {
        assert_eq!(
            csr.n_out() % out_blocks,
            0,
            "block gather: output blocks must fill whole rows"
        );
        let source_blocks = csr.sources.iter().max().map_or(0, |&m| m as usize + 1);
        BlockIndex {
            csr,
            block,
            in_blocks,
            out_blocks,
            source_blocks,
        }
    }

    /// Output shape for an input of shape `x`.
    pub(crate) fn output_shape(&self, x: (usize, usize)) -> (usize, usize) {
        assert_eq!(
            x.1,
            self.in_blocks * self.block,
            "block gather: input width"
        );
        assert!(
            self.source_blocks <= x.0 * self.in_blocks,
            "block gather: source block out of range"
        );
        (
            self.csr.n_out() / self.out_blocks,
            self.out_blocks * self.block,
        )
    }

    /// Floats per block.
    pub(crate) fn block_width(&self) -> usize {
        self.block
    }

    #[inline]
    fn weight(&self, k: usize) -> f32 {
        self.csr.weights.as_ref().map_or(1.0, |w| w[k])
    }

    /// Writes output blocks `first ..` into `out`: each is `start` (a block-wide row) plus its
    /// gathered blocks, added in entry order — the bits of filling `out` with `start` and then
    /// adding, without the separate fill pass (a `memcpy` call per row for a bias).
    pub(crate) fn gather_into(&self, x: &[f32], out: &mut [f32], first: usize, start: &[f32]) {
        let bw = self.block;
        assert_eq!(start.len(), bw, "block gather: start row width");
        for (i, dst) in out.chunks_exact_mut(bw).enumerate() {
            let o = first + i;
            let entries = self.csr.offsets[o] as usize..self.csr.offsets[o + 1] as usize;
            let mut entries = entries.map(|k| (self.weight(k), self.csr.sources[k] as usize * bw));
            match entries.next() {
                // the first entry writes start + w·x, the others add
                Some((w, src)) => {
                    for ((d, &s0), &v) in dst.iter_mut().zip(start).zip(&x[src..src + bw]) {
                        *d = s0 + w * v;
                    }
                }
                None => {
                    for (d, &s0) in dst.iter_mut().zip(start) {
                        *d = s0;
                    }
                }
            }
            for (w, src) in entries {
                for (d, &v) in dst.iter_mut().zip(&x[src..src + bw]) {
                    *d += w * v;
                }
            }
        }
    }

    /// The transpose: `dx[source] += weight · g[o]` for the output blocks `first ..` held in `g`.
    pub(crate) fn scatter_from(&self, g: &[f32], first: usize, dx: &mut [f32]) {
        let bw = self.block;
        for (i, go) in g.chunks_exact(bw).enumerate() {
            let o = first + i;
            for k in self.csr.offsets[o] as usize..self.csr.offsets[o + 1] as usize {
                let w = self.weight(k);
                let src = self.csr.sources[k] as usize * bw;
                for (d, &v) in dx[src..src + bw].iter_mut().zip(go) {
                    *d += w * v;
                }
            }
        }
    }
}

/// A dense layer with ELU, fused: `y = elu(x·W + b [+ gathered node projections]) [+ r]`.
/// One node and one output buffer instead of `linear`, (`segment_sum`, `add`,) `elu` (and `add`),
/// computed in blocks of rows so the activation runs on the product while it is in cache; the
/// bias gradient is a plain column sum. Inputs `x (R, i)`, `W (i, o)`, `b (1, o)`, then
/// `P (B·n, 2·o)` with `gather`, then `r (R, o)` with `residual`.
pub(crate) struct DenseElu {
    /// A last input `r` is added to the output.
    pub(crate) residual: bool,
    /// Gathers blocks of `P` onto the output rows (one output block per row).
    pub(crate) gather: Option<Arc<BlockIndex>>,
}

impl DenseElu {
    fn n_inputs(&self) -> usize {
        3 + usize::from(self.gather.is_some()) + usize::from(self.residual)
    }
}

/// One block of rows of a [`DenseElu`] forward: `x · w + bias` (+ the gathered projections).
struct DenseBlock<'a> {
    /// The gather index and the projections it reads, for edge layers.
    gathered: Option<(&'a BlockIndex, &'a [f32])>,
    /// The block's first row.
    first_row: usize,
    /// The block's rows of the input.
    x: &'a [f32],
    /// The weight.
    w: &'a [f32],
    /// The bias row.
    bias: &'a [f32],
    /// `(rows, inner, out)`.
    shape: (usize, usize, usize),
}

impl DenseBlock<'_> {
    /// `out = f(x · w + bias [+ gathered])`, `f` applied to each output as the product finishes it.
    fn product_into(&self, out: &mut [f32], f: impl hdpo_autodiff::gemm::OutputMap) {
        match self.gathered {
            Some((index, p)) => {
                index.gather_into(p, out, self.first_row, self.bias);
                hdpo_autodiff::gemm::matmul_map(out, true, self.x, self.w, self.shape, f);
            }
            None => hdpo_autodiff::gemm::matmul_bias_map(
                out,
                self.bias,
                (self.x, self.w),
                self.shape,
                f,
            ),
        }
    }
}

impl CustomOp for DenseElu {
    fn name(&self) -> &str {
        match (self.gather.is_some(), self.residual) {
            (false, false) => "gnn_dense_elu",
            (false, true) => "gnn_dense_elu_residual",
            (true, false) => "gnn_edge_dense_elu",
            (true, true) => "gnn_edge_dense_elu_residual",
        }
    }

    fn output_shape(&self, inputs: &[(usize, usize)]) -> (usize, usize) {
        assert_eq!(inputs.len(), self.n_inputs(), "dense_elu: inputs");
        let ((r, i), (i2, o), b) = (inputs[0], inputs[1], inputs[2]);
        assert_eq!(i, i2, "dense_elu: input width {i} but weight has {i2} rows");
        assert_eq!(b, (1, o), "dense_elu: bias must be (1, {o})");
        if let Some(index) = &self.gather {
            assert_eq!(
                index.output_shape(inputs[3]),
                (r, o),
                "dense_elu: gathered shape"
            );
        }
        if self.residual {
            assert_eq!(
                inputs[inputs.len() - 1],
                (r, o),
                "dense_elu: residual shape"
            );
        }
        (r, o)
    }

    fn forward(&self, inputs: &[&Array2<f32>], output: &mut Array2<f32>) {
        let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
        let (rows, o) = output.dim();
        let bias = b.as_slice().expect("standard layout");
        let gathered = self
            .gather
            .as_ref()
            .map(|index| (&**index, inputs[3].as_slice().expect("standard layout")));
        let residual = self.residual.then(|| {
            inputs[inputs.len() - 1]
                .as_slice()
                .expect("standard layout")
        });
        for start in (0..rows).step_by(fast::CHUNK_ROWS) {
            let end = (start + fast::CHUNK_ROWS).min(rows);
            let mut out = output.slice_mut(s![start..end, ..]);
            let flat = out
                .as_slice_mut()
                .expect("row blocks of a standard-layout array are contiguous");
            let inner = x.ncols();
            let block = DenseBlock {
                gathered,
                first_row: start,
                x: &x.as_slice().expect("standard layout")[start * inner..end * inner],
                w: w.as_slice().expect("standard layout"),
                bias,
                shape: (end - start, inner, o),
            };
            // without a residual the ELU is applied as the product finishes each output (to the
            // accumulators, in registers, on the register kernels); with one, in a pass that
            // also adds it
            match residual {
                Some(_) => block.product_into(flat, |v| v),
                None => block.product_into(flat, hdpo_autodiff::gemm::Elu),
            }
            if let Some(r) = residual {
                fast::elu_in_place_plus(flat, &r[start * o..end * o]);
            }
        }
    }

    /// Writes the buffers to be written (no zero fill: each is overwritten, block by block) and
    /// adds into existing adjoints directly.
    fn backward(
        &self,
        inputs: &[&Array2<f32>],
        output: &Array2<f32>,
        grad_output: &Array2<f32>,
        grad_inputs: &mut [Option<InputGrad>],
    ) {
        let (x, w) = (inputs[0], inputs[1]);
        let (rows, o) = output.dim();
        let g = grad_output.as_slice().expect("standard layout");
        let y = output.as_slice().expect("standard layout");
        let n = inputs.len();
        let r = self
            .residual
            .then(|| inputs[n - 1].as_slice().expect("standard layout"));
        let written = |k: usize| {
            grad_inputs[k]
                .as_ref()
                .is_some_and(|gi| gi.write_or_add().is_write())
        };
        let (dx_fresh, dw_fresh, db_fresh) = (written(0), written(1), written(2));
        let (head, tail) = grad_inputs.split_at_mut(3);
        let [dx, dw, db] = head else {
            unreachable!("three leading inputs")
        };
        let (dp, dr) = match (self.gather.is_some(), self.residual) {
            (true, true) => {
                let (p, r) = tail.split_at_mut(1);
                (p[0].as_mut(), r[0].as_mut())
            }
            (true, false) => (tail[0].as_mut(), None),
            (false, true) => (None, tail[0].as_mut()),
            (false, false) => (None, None),
        };
        // the scatter adds several output rows into one projection row: it only adds
        let mut dp = dp.map(InputGrad::zeroed_for_adding);
        let (mut dx, mut dw, mut db) = (
            dx.as_mut().map(|d| d.parts().0),
            dw.as_mut().map(|d| d.parts().0),
            db.as_mut().map(|d| d.parts().0),
        );
        // no rows: the weight and bias gradients are sums over nothing
        if rows == 0 {
            for (d, is_fresh) in [(dw.as_deref_mut(), dw_fresh), (db.as_deref_mut(), db_fresh)] {
                if let (Some(d), true) = (d, is_fresh) {
                    d.fill(0.0);
                }
            }
        }
        let inner = x.ncols();
        // wᵀ once (weights are small) so dx runs on the row kernels of `hdpo_autodiff::gemm`
        let wt = w.t().as_standard_layout().into_owned();
        let wt = wt.as_slice().expect("standard layout");
        let xs = x.as_slice().expect("standard layout");
        fast::with_scratch(fast::CHUNK_ROWS * o, |scratch| {
            for start in (0..rows).step_by(fast::CHUNK_ROWS) {
                let end = (start + fast::CHUNK_ROWS).min(rows);
                let (a, z) = (start * o, end * o);
                let gz = &mut scratch[..z - a];
                // gz = g · elu'(·), from the output
                fast::elu_grad(gz, &g[a..z], &y[a..z], r.map(|r| &r[a..z]));
                if let (Some(index), Some(dp)) = (&self.gather, dp.as_mut()) {
                    index.scatter_from(gz, start, dp.as_slice_mut().expect("standard layout"));
                }
                let gz = &*gz;
                let chunk = end - start;
                // each block of rows of dx is written once: overwrite when fresh
                if let Some(dx) = dx.as_deref_mut() {
                    let d = &mut dx[start * inner..end * inner];
                    hdpo_autodiff::gemm::matmul(d, !dx_fresh, gz, wt, chunk, o, inner);
                }
                // dW and db sum over all blocks: the first block overwrites when fresh
                let first = start == 0;
                if let Some(dw) = dw.as_deref_mut() {
                    hdpo_autodiff::gemm::matmul_at_b(
                        dw,
                        !(first && dw_fresh),
                        &xs[start * inner..end * inner],
                        gz,
                        chunk,
                        inner,
                        o,
                    );
                }
                if let Some(db) = db.as_deref_mut() {
                    hdpo_autodiff::kernels::column_sums_into(db, first && db_fresh, gz);
                }
            }
        });
        if let Some(dr) = dr {
            let (dr, mode) = dr.parts();
            if mode.is_write() {
                dr.copy_from_slice(g);
            } else {
                dr.iter_mut().zip(g).for_each(|(d, &e)| *d += e);
            }
        }
    }
}

/// Vectorisable ELU kernels for the fused ops (branch-free, no float→int casts), with a run-time
/// switch to an AVX2+FMA build of the same loops, and a per-thread scratch buffer for backward
/// passes.
mod fast {
    use hdpo_autodiff::kernels::{elu, elu_derivative};
    use std::cell::RefCell;

    /// Rows per block in the fused ops: a block of 32-wide rows stays in L1/L2 between the
    /// product and the activation.
    pub(super) const CHUNK_ROWS: usize = 256;

    /// Runs `body` through an AVX2+FMA build when the CPU has it.
    macro_rules! dispatch {
        ($plain:ident, $avx:ident, ($($arg:ident: $ty:ty),*)) => {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn $avx($($arg: $ty),*) {
                $plain($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports the features the function is compiled for.
                unsafe { $avx($($arg),*) };
                return;
            }
            $plain($($arg),*)
        };
    }

    /// `y ← elu(y) + r`.
    pub(super) fn elu_in_place_plus(y: &mut [f32], r: &[f32]) {
        #[inline(always)]
        fn plain(y: &mut [f32], r: &[f32]) {
            assert_eq!(y.len(), r.len());
            y.iter_mut().zip(r).for_each(|(v, &ri)| *v = elu(*v) + ri);
        }
        dispatch!(plain, avx, (y: &mut [f32], r: &[f32]));
    }

    /// `gz = g · elu'(z)` from the output `y = elu(z)` (`+ r` when a residual was added), by the
    /// engine's [`elu_derivative`].
    pub(super) fn elu_grad(gz: &mut [f32], g: &[f32], y: &[f32], r: Option<&[f32]>) {
        #[inline(always)]
        fn plain(gz: &mut [f32], g: &[f32], y: &[f32]) {
            assert!(gz.len() == g.len() && g.len() == y.len());
            for ((d, &gi), &a) in gz.iter_mut().zip(g).zip(y) {
                *d = gi * elu_derivative(a);
            }
        }
        #[inline(always)]
        fn plain_residual(gz: &mut [f32], g: &[f32], y: &[f32], r: &[f32]) {
            assert!(gz.len() == g.len() && g.len() == y.len() && y.len() == r.len());
            for (((d, &gi), &yi), &ri) in gz.iter_mut().zip(g).zip(y).zip(r) {
                *d = gi * elu_derivative(yi - ri);
            }
        }
        match r {
            None => {
                dispatch!(plain, avx, (gz: &mut [f32], g: &[f32], y: &[f32]));
            }
            Some(r) => {
                dispatch!(plain_residual, avx_residual, (gz: &mut [f32], g: &[f32], y: &[f32], r: &[f32]));
            }
        }
    }

    thread_local! {
        static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    }

    /// Runs `f` on a per-thread scratch buffer of length `len` (contents unspecified), reused
    /// across calls so backward passes do not allocate.
    pub(super) fn with_scratch<T>(len: usize, f: impl FnOnce(&mut [f32]) -> T) -> T {
        SCRATCH.with(|cell| {
            let mut buf = cell.borrow_mut();
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{BlockIndex, DenseElu};
    use hdpo_autodiff::{Csr, CustomOp, InputGrad};
    use ndarray::Array2;
    use std::sync::Arc;

    fn filled(rows: usize, cols: usize, seed: u32) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            let h = (i as u32 * 7919 + j as u32 * 104_729 + seed).wrapping_mul(2_654_435_761);
            (h >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
    }

    /// Starting each output block from a row inside the gather has the bits of filling the
    /// output with that row and then adding the gathered blocks, also for blocks with no entry.
    #[test]
    fn gather_from_a_start_row_equals_fill_then_add() {
        let (bw, n_out, n_src) = (16, 9, 5);
        // output 3 has no entry; others one to three, with weights
        let triples: Vec<(u32, u32, f32)> = (0..n_out as u32)
            .filter(|&o| o != 3)
            .flat_map(|o| (0..1 + o % 3).map(move |e| (o, (o + e) % n_src as u32, 0.5 + e as f32)))
            .collect();
        let index = BlockIndex::new(Csr::from_triples(n_out, &triples), bw, 1, 1);
        let x = filled(n_src, bw, 1);
        let start = filled(1, bw, 2);
        let (xs, ss) = (x.as_slice().unwrap(), start.as_slice().unwrap());
        let mut want = ss.repeat(n_out);
        for &(o, src, w) in &triples {
            for j in 0..bw {
                want[o as usize * bw + j] += w * xs[src as usize * bw + j];
            }
        }
        let mut got = vec![f32::NAN; n_out * bw];
        index.gather_into(xs, &mut got, 0, ss);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want));
    }

    /// `backward` overwrites buffers to be written (here full of NaN) with exactly what it adds
    /// adds into zeroed ones, and adds into existing adjoints — for every variant of the op,
    /// over more rows than one block.
    #[test]
    fn dense_elu_overwrites_fresh_buffers_and_adds_into_existing_ones() {
        let (rows, inner, o, proj_rows) = (300, 24, 16, 10);
        for (residual, gathered) in [(false, false), (true, false), (false, true), (true, true)] {
            let gather = gathered.then(|| {
                let triples: Vec<(u32, u32, f32)> = (0..rows as u32)
                    .flat_map(|r| {
                        [
                            (r, (r % proj_rows) * 2, 1.0),
                            (r, ((r * 3) % proj_rows) * 2 + 1, 0.5),
                        ]
                    })
                    .collect();
                Arc::new(BlockIndex::new(Csr::from_triples(rows, &triples), o, 2, 1))
            });
            let op = DenseElu { residual, gather };
            let mut inputs = vec![filled(rows, inner, 1), filled(inner, o, 2), filled(1, o, 3)];
            if gathered {
                inputs.push(filled(proj_rows as usize, 2 * o, 4));
            }
            if residual {
                inputs.push(filled(rows, o, 5));
            }
            let views: Vec<&Array2<f32>> = inputs.iter().collect();
            let mut output = Array2::zeros((rows, o));
            op.forward(&views, &mut output);
            let g = filled(rows, o, 6);

            let zeros = |a: &Array2<f32>| Some(InputGrad::add(Array2::zeros(a.dim())));
            let mut want: Vec<Option<InputGrad>> = inputs.iter().map(zeros).collect();
            op.backward(&views, &output, &g, &mut want);

            let nans =
                |a: &Array2<f32>| Some(InputGrad::write(Array2::from_elem(a.dim(), f32::NAN)));
            let mut fresh: Vec<Option<InputGrad>> = inputs.iter().map(nans).collect();
            op.backward(&views, &output, &g, &mut fresh);
            for (k, (got, want)) in fresh.iter().zip(&want).enumerate() {
                let (got, want) = (got.as_ref().unwrap(), want.as_ref().unwrap());
                let (got, want) = (got.buffer(), want.buffer());
                let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(got),
                    bits(want),
                    "fresh input {k} (residual {residual}, gathered {gathered})"
                );
            }

            let existing: Vec<Array2<f32>> = inputs
                .iter()
                .enumerate()
                .map(|(k, a)| filled(a.nrows(), a.ncols(), 10 + k as u32))
                .collect();
            let mut added: Vec<Option<InputGrad>> = existing
                .iter()
                .map(|e| Some(InputGrad::add(e.clone())))
                .collect();
            op.backward(&views, &output, &g, &mut added);
            for (k, ((got, before), want)) in added.iter().zip(&existing).zip(&want).enumerate() {
                let expected = before + want.as_ref().unwrap().buffer();
                for (x, y) in got.as_ref().unwrap().buffer().iter().zip(&expected) {
                    assert!(
                        (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                        "existing input {k}: {x} vs {y}"
                    );
                }
            }
        }
    }
}
