//! Matrix products for the skinny shapes of HDPO policies: many rows (batch × entities), few columns
//! (a hidden width of 8–64). A general GEMM (`matrixmultiply`, behind `ndarray`) packs both operands
//! into panels first, which costs as much as the arithmetic when `k` and `n` are 32. These kernels
//! skip packing: the small matrix stays in L1, each output row is held in registers while the inner
//! dimension streams past, and the loops are written so that an AVX2+FMA build (chosen at run time)
//! keeps 8-lane accumulators in `ymm` registers. Other shapes fall back to `matrixmultiply`.
//!
//! Row-major, contiguous slices throughout:
//! * [`matmul`]: `c (m×n) = a (m×k) · b (k×n)`, or `+=`;
//! * [`matmul_at_b`]: `c (k×n) = aᵀ · g` with `a (m×k)`, `g (m×n)`, or `+=` (a weight gradient).

use ndarray::{ArrayView2, ArrayViewMut2, linalg::general_mat_mul};

/// Widest `n` the register kernels handle (8 lanes × 8 accumulators).
pub const MAX_N: usize = 64;

fn use_kernels(n: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        n.is_multiple_of(8)
            && n <= MAX_N
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = n;
        false
    }
}

/// Where a product's accumulators start: at zero (`c = a·b`), at `c` (`c += a·b`), or at a bias
/// row repeated to every row (`c = bias + a·b`, a linear layer).
#[derive(Clone, Copy)]
enum Start<'a> {
    Zero,
    C,
    Bias(&'a [f32]),
}

/// `c = a · b` (or `c += a · b` when `accumulate`), `a: m×k`, `b: k×n`, `c: m×n`.
pub fn matmul(c: &mut [f32], accumulate: bool, a: &[f32], b: &[f32], m: usize, k: usize, n: usize) {
    let start = if accumulate { Start::C } else { Start::Zero };
    matmul_from(c, start, a, b, m, k, n);
}

/// `c = bias + a · b` with the `1×n` row `bias` added to every row: a linear layer. Equal to the
/// bit to filling each row of `c` with `bias` and calling [`matmul`] with `accumulate` (the
/// register kernels start their accumulators at the bias instead of reading it back from `c`).
pub fn matmul_bias(
    c: &mut [f32],
    bias: &[f32],
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
) {
    assert_eq!(bias.len(), n, "matmul_bias: bias length");
    matmul_from(c, Start::Bias(bias), a, b, m, k, n);
}

fn matmul_from(c: &mut [f32], start: Start, a: &[f32], b: &[f32], m: usize, k: usize, n: usize) {
    assert!(
        a.len() == m * k && b.len() == k * n && c.len() == m * n,
        "matmul: slice sizes"
    );
    if m == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if use_kernels(n) {
        // SAFETY: AVX2 and FMA were detected at run time.
        unsafe { avx2::matmul(c, start, a, b, m, k, n) };
        return;
    }
    if let Start::Bias(bias) = start {
        for row in c.chunks_exact_mut(n) {
            row.copy_from_slice(bias);
        }
    }
    let accumulate = !matches!(start, Start::Zero);
    if n < 8 && k <= 1024 {
        small_n(c, accumulate, a, b, k, n);
        return;
    }
    let av = ArrayView2::from_shape((m, k), a).expect("shape");
    let bv = ArrayView2::from_shape((k, n), b).expect("shape");
    let mut cv = ArrayViewMut2::from_shape((m, n), c).expect("shape");
    general_mat_mul(1.0, &av, &bv, if accumulate { 1.0 } else { 0.0 }, &mut cv);
}

/// `c = aᵀ · g` (or `+=`), `a: m×k`, `g: m×n`, `c: k×n` — summing over the `m` rows.
pub fn matmul_at_b(
    c: &mut [f32],
    accumulate: bool,
    a: &[f32],
    g: &[f32],
    m: usize,
    k: usize,
    n: usize,
) {
    assert!(
        a.len() == m * k && g.len() == m * n && c.len() == k * n,
        "matmul_at_b: slice sizes"
    );
    if k == 0 || n == 0 {
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if use_kernels(n) {
        // SAFETY: AVX2 and FMA were detected at run time.
        unsafe { avx2::matmul_at_b(c, accumulate, a, g, m, k, n) };
        return;
    }
    if n < 8 && k <= 1024 {
        small_n_at_b(c, accumulate, a, g, m, k, n);
        return;
    }
    let av = ArrayView2::from_shape((m, k), a).expect("shape");
    let gv = ArrayView2::from_shape((m, n), g).expect("shape");
    let mut cv = ArrayViewMut2::from_shape((k, n), c).expect("shape");
    general_mat_mul(
        1.0,
        &av.t(),
        &gv,
        if accumulate { 1.0 } else { 0.0 },
        &mut cv,
    );
}

thread_local! {
    /// Scratch for the small-`n` paths (a transposed operand of at most 1024 × 7 values).
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with the AVX2+FMA build when available (the body is the same code).
#[inline(always)]
fn dispatch(f: impl FnOnce()) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        fn with_avx2(f: impl FnOnce()) {
            f()
        }
        // SAFETY: AVX2 and FMA were detected at run time.
        unsafe { with_avx2(f) };
        return;
    }
    f()
}

/// `c = a · b` for `n < 8` outputs (e.g. an output layer): one dot product of length `k` per output,
/// against the rows of `bᵀ`.
fn small_n(c: &mut [f32], accumulate: bool, a: &[f32], b: &[f32], k: usize, n: usize) {
    SCRATCH.with(|cell| {
        let mut bt = cell.borrow_mut();
        bt.clear();
        bt.extend((0..n * k).map(|idx| b[(idx % k) * n + idx / k]));
        let bt = &bt[..];
        dispatch(|| {
            for (arow, crow) in a.chunks_exact(k).zip(c.chunks_exact_mut(n)) {
                for (j, cj) in crow.iter_mut().enumerate() {
                    let v = dot(arow, &bt[j * k..(j + 1) * k]);
                    *cj = if accumulate { *cj + v } else { v };
                }
            }
        });
    });
}

/// `c = aᵀ · g` for `n < 8`: `cᵀ[j, :] += g[i, j] · a[i, :]` row by row, then transposed into `c`.
fn small_n_at_b(
    c: &mut [f32],
    accumulate: bool,
    a: &[f32],
    g: &[f32],
    m: usize,
    k: usize,
    n: usize,
) {
    SCRATCH.with(|cell| {
        let mut ct = cell.borrow_mut();
        ct.clear();
        ct.resize(n * k, 0.0);
        let ct = &mut ct[..];
        dispatch(|| {
            for (arow, grow) in a.chunks_exact(k).zip(g.chunks_exact(n)).take(m) {
                for (j, &gj) in grow.iter().enumerate() {
                    for (t, &x) in ct[j * k..(j + 1) * k].iter_mut().zip(arow) {
                        *t += gj * x;
                    }
                }
            }
        });
        for kk in 0..k {
            for j in 0..n {
                let v = ct[j * k + kk];
                c[kk * n + j] = if accumulate { c[kk * n + j] + v } else { v };
            }
        }
    });
}

/// Dot product with 8 independent partial sums (vectorises).
#[inline(always)]
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    let tail: f32 = xr.iter().zip(yr).map(|(a, b)| a * b).sum();
    acc.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Start;

    /// Dispatches on the number of 8-lane blocks `n / 8` so each kernel has a fixed register layout.
    #[target_feature(enable = "avx2,fma")]
    pub fn matmul(c: &mut [f32], start: Start, a: &[f32], b: &[f32], m: usize, k: usize, n: usize) {
        match n / 8 {
            1 => rows::<1, true>(c, start, a, b, m, k),
            2 => rows::<2, true>(c, start, a, b, m, k),
            3 => rows::<3, true>(c, start, a, b, m, k),
            4 => rows::<4, true>(c, start, a, b, m, k),
            // two rows of 5–8 blocks would need more than the 16 ymm registers: one row at a time
            5 => rows::<5, false>(c, start, a, b, m, k),
            6 => rows::<6, false>(c, start, a, b, m, k),
            7 => rows::<7, false>(c, start, a, b, m, k),
            8 => rows::<8, false>(c, start, a, b, m, k),
            _ => unreachable!("n ≤ 64 and a multiple of 8"),
        }
    }

    /// Each output row in `NB` 8-lane accumulators; two rows at a time share each load of `b`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn rows<const NB: usize, const TWO_ROWS: bool>(
        c: &mut [f32],
        start: Start,
        a: &[f32],
        b: &[f32],
        m: usize,
        k: usize,
    ) {
        let n = NB * 8;
        let mut i = 0;
        while TWO_ROWS && i + 2 <= m {
            let mut acc0 = [[0.0f32; 8]; NB];
            let mut acc1 = [[0.0f32; 8]; NB];
            match start {
                Start::Zero => {}
                Start::C => {
                    load(&mut acc0, &c[i * n..]);
                    load(&mut acc1, &c[(i + 1) * n..]);
                }
                Start::Bias(bias) => {
                    load(&mut acc0, bias);
                    load(&mut acc1, bias);
                }
            }
            let (a0, a1) = (&a[i * k..(i + 1) * k], &a[(i + 1) * k..(i + 2) * k]);
            for kk in 0..k {
                let (x0, x1) = (a0[kk], a1[kk]);
                let brow = &b[kk * n..(kk + 1) * n];
                for blk in 0..NB {
                    for l in 0..8 {
                        let w = brow[blk * 8 + l];
                        acc0[blk][l] = x0.mul_add(w, acc0[blk][l]);
                        acc1[blk][l] = x1.mul_add(w, acc1[blk][l]);
                    }
                }
            }
            store(&acc0, &mut c[i * n..]);
            store(&acc1, &mut c[(i + 1) * n..]);
            i += 2;
        }
        while i < m {
            let mut acc = [[0.0f32; 8]; NB];
            match start {
                Start::Zero => {}
                Start::C => load(&mut acc, &c[i * n..]),
                Start::Bias(bias) => load(&mut acc, bias),
            }
            let a0 = &a[i * k..(i + 1) * k];
            for kk in 0..k {
                let x0 = a0[kk];
                let brow = &b[kk * n..(kk + 1) * n];
                for blk in 0..NB {
                    for l in 0..8 {
                        acc[blk][l] = x0.mul_add(brow[blk * 8 + l], acc[blk][l]);
                    }
                }
            }
            store(&acc, &mut c[i * n..]);
            i += 1;
        }
    }

    #[inline(always)]
    fn load<const NB: usize>(acc: &mut [[f32; 8]; NB], src: &[f32]) {
        for blk in 0..NB {
            acc[blk].copy_from_slice(&src[blk * 8..blk * 8 + 8]);
        }
    }

    #[inline(always)]
    fn store<const NB: usize>(acc: &[[f32; 8]; NB], dst: &mut [f32]) {
        for blk in 0..NB {
            dst[blk * 8..blk * 8 + 8].copy_from_slice(&acc[blk]);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub fn matmul_at_b(
        c: &mut [f32],
        accumulate: bool,
        a: &[f32],
        g: &[f32],
        m: usize,
        k: usize,
        n: usize,
    ) {
        match n / 8 {
            1 => at_b::<1, 8>(c, accumulate, a, g, m, k),
            2 => at_b::<2, 6>(c, accumulate, a, g, m, k),
            3 => at_b::<3, 4>(c, accumulate, a, g, m, k),
            4 => at_b::<4, 3>(c, accumulate, a, g, m, k),
            5 => at_b::<5, 2>(c, accumulate, a, g, m, k),
            6 => at_b::<6, 2>(c, accumulate, a, g, m, k),
            7 => at_b::<7, 1>(c, accumulate, a, g, m, k),
            8 => at_b::<8, 1>(c, accumulate, a, g, m, k),
            _ => unreachable!("n ≤ 64 and a multiple of 8"),
        }
    }

    /// Rows of `a` and `g` per block: a block of `g` (64 × n ≤ 16 KiB) stays in L1 while every
    /// `KB`-row strip of `c` passes over it, instead of streaming all of `g` from L2 once per strip.
    const ROW_BLOCK: usize = 64;

    /// `KB` rows of `c` (`KB × NB` accumulators) stay in registers while a block of rows of `a`
    /// and `g` streams past; then the next `KB` rows of `c`, then the next block of rows. Each
    /// element of `c` is still summed over `i = 0, 1, …, m − 1` in order (the partial sums go
    /// through `c` between blocks exactly), so the blocking does not change the result.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn at_b<const NB: usize, const KB: usize>(
        c: &mut [f32],
        accumulate: bool,
        a: &[f32],
        g: &[f32],
        m: usize,
        k: usize,
    ) {
        let n = NB * 8;
        let mut i0 = 0;
        while i0 < m || (i0 == 0 && m == 0) {
            let i1 = (i0 + ROW_BLOCK).min(m);
            // the first block starts from 0 (or from `c` when accumulating), later ones from `c`
            let from_c = accumulate || i0 > 0;
            let mut k0 = 0;
            while k0 < k {
                let kb = KB.min(k - k0);
                let mut acc = [[[0.0f32; 8]; NB]; KB];
                if from_c {
                    for (r, acc_r) in acc.iter_mut().enumerate().take(kb) {
                        load(acc_r, &c[(k0 + r) * n..]);
                    }
                }
                if kb == KB {
                    for i in i0..i1 {
                        let grow = &g[i * n..(i + 1) * n];
                        let arow = &a[i * k + k0..i * k + k0 + KB];
                        for r in 0..KB {
                            let x = arow[r];
                            for blk in 0..NB {
                                for l in 0..8 {
                                    acc[r][blk][l] = x.mul_add(grow[blk * 8 + l], acc[r][blk][l]);
                                }
                            }
                        }
                    }
                } else {
                    for i in i0..i1 {
                        let grow = &g[i * n..(i + 1) * n];
                        for r in 0..kb {
                            let x = a[i * k + k0 + r];
                            for blk in 0..NB {
                                for l in 0..8 {
                                    acc[r][blk][l] = x.mul_add(grow[blk * 8 + l], acc[r][blk][l]);
                                }
                            }
                        }
                    }
                }
                for (r, acc_r) in acc.iter().enumerate().take(kb) {
                    store(acc_r, &mut c[(k0 + r) * n..]);
                }
                k0 += kb;
            }
            if m == 0 {
                break;
            }
            i0 = i1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k)
                    .map(|t| a[i * k + t] as f64 * b[t * n + j] as f64)
                    .sum::<f64>() as f32;
            }
        }
        c
    }

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| {
                (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32
                    / 500.0
                    - 1.0
            })
            .collect()
    }

    #[test]
    fn row_blocked_weight_gradient_sums_rows_in_order() {
        // each element of aᵀ·g is Σ_i a[i, r]·g[i, j] accumulated with FMA for i = 0, 1, … in
        // order, whatever the row blocking — equal to the bit to that sequential sum
        #[cfg(target_arch = "x86_64")]
        if use_kernels(32) {
            let (m, k, n) = (300, 5, 32);
            let (a, g) = (data(m * k, 4), data(m * n, 5));
            let mut c = vec![0.0; k * n];
            matmul_at_b(&mut c, false, &a, &g, m, k, n);
            for r in 0..k {
                for j in 0..n {
                    let sequential =
                        (0..m).fold(0.0f32, |acc, i| a[i * k + r].mul_add(g[i * n + j], acc));
                    assert_eq!(c[r * n + j].to_bits(), sequential.to_bits(), "r {r} j {j}");
                }
            }
        }
    }

    #[test]
    fn bias_start_equals_copying_the_bias_then_accumulating() {
        for &(m, k) in &[(1, 1), (5, 3), (17, 4), (130, 32)] {
            for n in [8, 16, 24, 32, 40, 48, 56, 64, 12, 1, 100] {
                let (a, b, bias) = (data(m * k, 1), data(k * n, 2), data(n, 7));
                let mut want = bias.repeat(m);
                matmul(&mut want, true, &a, &b, m, k, n);
                let mut got = vec![f32::NAN; m * n];
                matmul_bias(&mut got, &bias, &a, &b, m, k, n);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "m{m} k{k} n{n}");
            }
        }
    }

    #[test]
    fn kernels_match_a_naive_product_for_every_width() {
        for &(m, k) in &[
            (1, 1),
            (5, 3),
            (8, 32),
            (17, 4),
            (64, 33),
            (200, 7),
            (130, 32),
        ] {
            for n in [8, 16, 24, 32, 40, 48, 56, 64, 12, 1] {
                let a = data(m * k, 1);
                let b = data(k * n, 2);
                let want = reference(&a, &b, m, k, n);
                let mut c = vec![0.0; m * n];
                matmul(&mut c, false, &a, &b, m, k, n);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-4, "matmul m{m} k{k} n{n}: {x} vs {y}");
                }
                matmul(&mut c, true, &a, &b, m, k, n);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - 2.0 * y).abs() < 2e-4, "accumulate m{m} k{k} n{n}");
                }
                // aᵀ·g with a: m×k, g: m×n
                let g = data(m * n, 3);
                let at: Vec<f32> = (0..k * m).map(|idx| a[(idx % m) * k + idx / m]).collect();
                let want = reference(&at, &g, k, m, n);
                let mut c = vec![0.0; k * n];
                matmul_at_b(&mut c, false, &a, &g, m, k, n);
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-3, "at_b m{m} k{k} n{n}: {x} vs {y}");
                }
            }
        }
    }
}
