//! Matrix products for the skinny shapes of HDPO policies: many rows (batch × entities), few columns
//! (a hidden width of 8–64). A general GEMM packs both operands into panels first, which costs as
//! much as the arithmetic when `k` and `n` are 32. These kernels
//! skip packing: the small matrix stays in L1, each output row is held in registers while the inner
//! dimension streams past, and the loops are written so that an AVX2+FMA build (chosen at run time)
//! keeps 8-lane accumulators in `ymm` registers: `n` a multiple of 8 up to 64 in column panels of
//! at most 32, and narrow outputs (`n < 8`, an output layer) with `k` a multiple of 8 up to 64.
//! Other shapes fall back to the `gemm` crate's general product, single-threaded (or a portable loop
//! for `n < 8`): on the wide layers (256–512) it measured 6–14 % faster than `matrixmultiply`, the
//! GEMM behind `ndarray` that this module used before (docs/performance.md).
//!
//! Row-major, contiguous slices throughout:
//! * [`matmul`]: `c (m×n) = a (m×k) · b (k×n)`, or `+=`;
//! * [`matmul_at_b`]: `c (k×n) = aᵀ · g` with `a (m×k)`, `g (m×n)`, or `+=` (a weight gradient);
//! * [`matmul_a_bt`]: `c (m×n) = a · bᵀ` with `b (n×k)`, or `+=` (an input gradient);
//! * [`matmul_bias_map`], [`matmul_map`]: a product followed by an elementwise function (a layer's
//!   activation), applied block by block while the outputs are in L1.

/// Widest hidden width (`k` of an output layer, `n` of a hidden one) the narrow and the
/// row-panel kernels are tuned for.
pub const MAX_N: usize = 64;

/// True when a product `a · b` with inner dimension `k` and `n` output columns runs on the
/// register kernels of this module: AVX2+FMA present, `n` a multiple of 8 up to 128, `b` at most
/// 32 KiB (`k·n ≤ 8192`, so it stays in L1 while the rows of `a` stream past), and `n ≥ 32` unless
/// `k ≤ 64` (a narrower panel has too few accumulators to hide the FMA latency over a long `k`).
/// Otherwise it goes to the general GEMM (`packs_operands`), which blocks `b` for the cache.
/// Measured on one core (GFLOP/s, register against general): `k = 256, n = 64` 59 against 96 and
/// `k = 256, n = 16` 51 against 95 (`m = 512`); `k = 96, n = 128` 59 against 95 and `k = 64,
/// n = 128` 96 against 94 (`m = 256`); `k = n = 32` 95 against 86 (`m = 10,240`).
pub fn register_kernels(k: usize, n: usize) -> bool {
    n.is_multiple_of(8) && n <= 2 * MAX_N && k * n <= 8192 && (n >= 32 || k <= 64) && avx2_fma()
}

/// True when the weight gradient `aᵀ · g` (`a: m×k`, `g: m×n`) runs on the register kernels: `n`
/// a multiple of 8 and either `n ≤ 64` (any `k`: the kernel walks `c` in strips of rows over
/// cache-sized blocks of `a` and `g`) or `n ≤ 128` with `k ≤ 96`. Measured on one core
/// (`m = 512`): `k = 264, n = 16` 89 GFLOP/s against 88 for the general GEMM; `k = 256, n = 32`
/// 84 against 76.
fn at_b_register_kernels(k: usize, n: usize) -> bool {
    n.is_multiple_of(8) && (n <= MAX_N || (n <= 2 * MAX_N && k <= 96)) && avx2_fma()
}

/// AVX2 and FMA are available (detected at run time, cached by the standard library).
fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
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

/// The register kernels for narrow outputs (`n < 8`, e.g. an output layer) with `k` a multiple
/// of 8 up to 64 (a hidden width): see `avx2::narrow`.
fn narrow_kernels(k: usize, n: usize) -> bool {
    n < 8 && k.is_multiple_of(8) && (8..=MAX_N).contains(&k) && avx2_fma()
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

/// `c = f(bias + a · b)` elementwise: a linear layer and its activation. On the register kernels
/// `f` runs on each block of 16 rows right after its product, while the block is in L1;
/// otherwise after the whole product. The same bits either way, and the same as
/// [`matmul_bias`] followed by `f` on every element.
pub fn matmul_bias_map(
    c: &mut [f32],
    bias: &[f32],
    (a, b): (&[f32], &[f32]),
    (m, k, n): (usize, usize, usize),
    f: impl Fn(f32) -> f32 + Copy,
) {
    assert_eq!(bias.len(), n, "matmul_bias_map: bias length");
    matmul_from_map(c, Start::Bias(bias), a, b, (m, k, n), f);
}

/// `c = f(a · b)`, or `c = f(c + a · b)` when `accumulate`, elementwise: [`matmul`] and then `f`
/// on every output, fused on the register kernels like [`matmul_bias_map`].
pub fn matmul_map(
    c: &mut [f32],
    accumulate: bool,
    a: &[f32],
    b: &[f32],
    (m, k, n): (usize, usize, usize),
    f: impl Fn(f32) -> f32 + Copy,
) {
    let start = if accumulate { Start::C } else { Start::Zero };
    matmul_from_map(c, start, a, b, (m, k, n), f);
}

/// [`matmul_from`] with `f` applied to every output.
fn matmul_from_map(
    c: &mut [f32],
    start: Start,
    a: &[f32],
    b: &[f32],
    (m, k, n): (usize, usize, usize),
    f: impl Fn(f32) -> f32 + Copy,
) {
    assert!(
        a.len() == m * k && b.len() == k * n && c.len() == m * n,
        "matmul: slice sizes"
    );
    #[cfg(target_arch = "x86_64")]
    if m > 0 && register_kernels(k, n) {
        // SAFETY: AVX2 and FMA were detected at run time.
        unsafe { avx2::matmul_map(c, start, a, b, m, k, n, f) };
        return;
    }
    matmul_from(c, start, a, b, m, k, n);
    crate::kernels::map_in_place(c, f);
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
    if register_kernels(k, n) {
        // SAFETY: AVX2 and FMA were detected at run time.
        unsafe { avx2::matmul(c, start, a, b, m, k, n) };
        return;
    }
    if let Start::Bias(bias) = start {
        fill_rows(c, bias);
    }
    let accumulate = !matches!(start, Start::Zero);
    if k == 0 {
        // an empty sum: the start value
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if narrow_kernels(k, n) {
        // SAFETY: AVX2 and FMA were detected at run time.
        unsafe { avx2::narrow(c, accumulate, a, b, m, k, n) };
        return;
    }
    if n < 8 && k <= 1024 {
        small_n(c, accumulate, a, b, k, n);
        return;
    }
    packed(c, accumulate, (m, k, n), (a, k, 1), (b, n, 1));
}

/// Sets every row of `c` to `row`: the first row, then blocks of already filled rows copied on,
/// doubling each time (a few large copies instead of a `memcpy` call per narrow row).
fn fill_rows(c: &mut [f32], row: &[f32]) {
    let n = row.len();
    if c.is_empty() {
        return;
    }
    c[..n].copy_from_slice(row);
    let mut filled = n;
    while filled < c.len() {
        let len = filled.min(c.len() - filled);
        c.copy_within(..len, filled);
        filled += len;
    }
}

/// True when [`matmul`] with inner dimension `k` and `n` outputs goes to the general GEMM, which
/// packs both operands into panels before multiplying: a strided (e.g. transposed) operand then
/// costs nothing extra.
fn packs_operands(k: usize, n: usize) -> bool {
    !(register_kernels(k, n) || narrow_kernels(k, n) || (n < 8 && k <= 1024))
}

thread_local! {
    /// `bᵀ` (zero-padded when needed) and a padded output for [`matmul_a_bt`].
    static A_BT_SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// `c = a · bᵀ` (or `+=`), `a: m×k`, `b: n×k`, `c: m×n`: the input gradient of a product with a
/// weight `b`. By shape:
/// * wide (the general GEMM, `packs_operands`): `b` is read through a transposed view and the
///   GEMM's packing step does the transposition (tested bit-identical to an explicit transpose);
/// * `n` not a multiple of 8 but the next multiple on the register kernels (e.g. 15 input
///   features): `bᵀ` zero-padded to that width, the product into a buffer, then its first `n`
///   columns;
/// * otherwise `bᵀ` is copied once per call (weights are small) and [`matmul`] runs on it.
pub fn matmul_a_bt(
    c: &mut [f32],
    accumulate: bool,
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
) {
    assert!(
        a.len() == m * k && b.len() == n * k && c.len() == m * n,
        "matmul_a_bt: slice sizes"
    );
    if m == 0 || n == 0 {
        return;
    }
    let padded = n.next_multiple_of(8);
    let pad = n > 8 && padded != n && register_kernels(k, padded);
    if !pad && packs_operands(k, n) {
        // bᵀ[t, j] = b[j, t]: row stride 1, column stride k
        packed(c, accumulate, (m, k, n), (a, k, 1), (b, 1, k));
        return;
    }
    let width = if pad { padded } else { n };
    A_BT_SCRATCH.with(|cell| {
        let (bt, out) = &mut *cell.borrow_mut();
        bt.clear();
        bt.resize(k * width, 0.0); // the padding columns stay 0
        for (j, b_row) in b.chunks_exact(k).enumerate() {
            for (t, &v) in b_row.iter().enumerate() {
                bt[t * width + j] = v;
            }
        }
        if !pad {
            matmul(c, accumulate, a, bt, m, k, n);
            return;
        }
        out.resize(m * width, 0.0);
        matmul(out, false, a, bt, m, k, width);
        // the first n columns (a plain loop per row, not a `memcpy` call per row)
        crate::kernels::copy_columns((c, n, 0), (out, width, 0), n, accumulate);
    });
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
    if at_b_register_kernels(k, n) {
        // SAFETY: AVX2 and FMA were detected at run time.
        unsafe { avx2::matmul_at_b(c, accumulate, a, g, m, k, n) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if narrow_kernels(k, n) {
        // SAFETY: AVX2 and FMA were detected at run time.
        unsafe { avx2::narrow_at_b(c, accumulate, a, g, m, k, n) };
        return;
    }
    if n < 8 && k <= 1024 {
        small_n_at_b(c, accumulate, a, g, m, k, n);
        return;
    }
    // c (k×n) = aᵀ (k×m) · g (m×n), aᵀ[r, i] = a[i, r]: row stride 1, column stride k
    packed(c, accumulate, (k, m, n), (a, 1, k), (g, n, 1));
}

/// `c (rows×cols, row-major) = x · y` (or `+=`), `x: rows×inner` and `y: inner×cols` given as
/// `(slice, row stride, column stride)`, on the `gemm` crate's general product (one thread: the
/// shards already keep both cores busy, and the summation order does not depend on a thread
/// count).
fn packed(
    c: &mut [f32],
    accumulate: bool,
    (rows, inner, cols): (usize, usize, usize),
    (x, x_row, x_col): (&[f32], usize, usize),
    (y, y_row, y_col): (&[f32], usize, usize),
) {
    assert_eq!(c.len(), rows * cols, "packed product: output size");
    if rows == 0 || cols == 0 {
        return;
    }
    if inner == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return;
    }
    // the last element each operand view reaches must lie inside its slice
    assert!(
        (rows - 1) * x_row + (inner - 1) * x_col < x.len()
            && (inner - 1) * y_row + (cols - 1) * y_col < y.len(),
        "packed product: operand sizes"
    );
    // SAFETY: every index the views reach was checked against the slice lengths above, `c` is an
    // exclusively borrowed `rows × cols` row-major buffer, and the operands do not alias it.
    unsafe {
        gemm::gemm(
            rows,
            cols,
            inner,
            c.as_mut_ptr(),
            1,
            cols as isize,
            accumulate,
            x.as_ptr(),
            x_col as isize,
            x_row as isize,
            y.as_ptr(),
            y_col as isize,
            y_row as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
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
    //! The register kernels. Both products cut the `n` columns into **panels** of at most 32
    //! (4 × 8 lanes): a panel of two output rows (`a·b`) or of two rows of `c` (`aᵀ·g`) is 8
    //! accumulators, which together with the operand loads fit the 16 `ymm` registers without
    //! spilling. Every element of `c` is still one sum over the inner index in order, so the
    //! panelling does not change a result.

    use super::Start;

    /// `f::<KB>(args)` for `KB = blocks` in 1..=8: one compiled register layout per `k / 8`.
    macro_rules! by_blocks {
        ($blocks:expr, $f:ident($($arg:expr),*)) => {
            match $blocks {
                1 => $f::<1>($($arg),*),
                2 => $f::<2>($($arg),*),
                3 => $f::<3>($($arg),*),
                4 => $f::<4>($($arg),*),
                5 => $f::<5>($($arg),*),
                6 => $f::<6>($($arg),*),
                7 => $f::<7>($($arg),*),
                8 => $f::<8>($($arg),*),
                _ => unreachable!("k is a multiple of 8 up to 64"),
            }
        };
    }

    /// Widest panel, in 8-lane blocks.
    const PANEL_BLOCKS: usize = 4;

    /// `c = f(a·b)` (from `start`) in blocks of [`MAP_BLOCK_ROWS`] rows: each block's product,
    /// then `f` over the block while it is in L1 (a loop the compiler vectorises; applied to
    /// the accumulators in registers, the scalar `f` was not vectorised). The same bits as the
    /// product followed by `f`.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_map(
        c: &mut [f32],
        start: Start,
        a: &[f32],
        b: &[f32],
        m: usize,
        k: usize,
        n: usize,
        f: impl Fn(f32) -> f32 + Copy,
    ) {
        debug_assert_eq!(c.len(), m * n);
        for (c_block, a_block) in c
            .chunks_mut(MAP_BLOCK_ROWS * n)
            .zip(a.chunks(MAP_BLOCK_ROWS * k))
        {
            let rows = c_block.len() / n;
            matmul(c_block, start, &a_block[..rows * k], b, rows, k, n);
            for v in c_block.iter_mut() {
                *v = f(*v);
            }
        }
    }

    /// Rows per block of [`matmul_map`]: 16 rows of 32 outputs are 2 KiB.
    const MAP_BLOCK_ROWS: usize = 16;

    /// `c = a·b` (from `start`), `n` a multiple of 8: panels of 32 columns, then the rest.
    #[target_feature(enable = "avx2,fma")]
    pub fn matmul(c: &mut [f32], start: Start, a: &[f32], b: &[f32], m: usize, k: usize, n: usize) {
        let mut j0 = 0;
        while j0 < n {
            let blocks = ((n - j0) / 8).min(PANEL_BLOCKS);
            let panel = Panel { n, j0 };
            // one panel spanning all of `n`: the row stride is a compile-time constant
            match (blocks, blocks * 8 == n) {
                (1, true) => rows::<1, true>(c, start, a, b, m, k, panel),
                (2, true) => rows::<2, true>(c, start, a, b, m, k, panel),
                (3, true) => rows::<3, true>(c, start, a, b, m, k, panel),
                (4, true) => rows::<4, true>(c, start, a, b, m, k, panel),
                (1, false) => rows::<1, false>(c, start, a, b, m, k, panel),
                (2, false) => rows::<2, false>(c, start, a, b, m, k, panel),
                (3, false) => rows::<3, false>(c, start, a, b, m, k, panel),
                (4, false) => rows::<4, false>(c, start, a, b, m, k, panel),
                _ => unreachable!("n is a multiple of 8"),
            }
            j0 += blocks * 8;
        }
    }

    /// Columns `j0 .. j0 + 8·NB` of matrices with rows of `n` floats.
    #[derive(Clone, Copy)]
    struct Panel {
        n: usize,
        j0: usize,
    }

    /// One panel of `c = a·b`: each output row's panel in `NB` 8-lane accumulators; two rows at a
    /// time share each load of `b`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn rows<const NB: usize, const WHOLE: bool>(
        c: &mut [f32],
        start: Start,
        a: &[f32],
        b: &[f32],
        m: usize,
        k: usize,
        Panel { n, j0 }: Panel,
    ) {
        let (n, j0) = if WHOLE { (NB * 8, 0) } else { (n, j0) };
        let mut i = 0;
        while i + 2 <= m {
            let mut acc0 = [[0.0f32; 8]; NB];
            let mut acc1 = [[0.0f32; 8]; NB];
            match start {
                Start::Zero => {}
                Start::C => {
                    load(&mut acc0, &c[i * n + j0..]);
                    load(&mut acc1, &c[(i + 1) * n + j0..]);
                }
                Start::Bias(bias) => {
                    load(&mut acc0, &bias[j0..]);
                    load(&mut acc1, &bias[j0..]);
                }
            }
            let (a0, a1) = (&a[i * k..(i + 1) * k], &a[(i + 1) * k..(i + 2) * k]);
            for kk in 0..k {
                let (x0, x1) = (a0[kk], a1[kk]);
                let brow = &b[kk * n + j0..kk * n + j0 + NB * 8];
                for blk in 0..NB {
                    for l in 0..8 {
                        let w = brow[blk * 8 + l];
                        acc0[blk][l] = x0.mul_add(w, acc0[blk][l]);
                        acc1[blk][l] = x1.mul_add(w, acc1[blk][l]);
                    }
                }
            }
            store(&acc0, &mut c[i * n + j0..]);
            store(&acc1, &mut c[(i + 1) * n + j0..]);
            i += 2;
        }
        if i < m {
            let mut acc = [[0.0f32; 8]; NB];
            match start {
                Start::Zero => {}
                Start::C => load(&mut acc, &c[i * n + j0..]),
                Start::Bias(bias) => load(&mut acc, &bias[j0..]),
            }
            let a0 = &a[i * k..(i + 1) * k];
            for kk in 0..k {
                let x0 = a0[kk];
                let brow = &b[kk * n + j0..kk * n + j0 + NB * 8];
                for blk in 0..NB {
                    for l in 0..8 {
                        acc[blk][l] = x0.mul_add(brow[blk * 8 + l], acc[blk][l]);
                    }
                }
            }
            store(&acc, &mut c[i * n + j0..]);
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

    /// `c = aᵀ·g` (or `+=`), `n` a multiple of 8.
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
        // rows of `a` and `g` per block: a block of `g` (64 × n ≤ 16 KiB at n = 64) stays in L1
        // while every strip of `c` passes over it, instead of streaming all of `g` from L2 once
        // per strip
        const ROW_BLOCK: usize = 64;
        let mut i0 = 0;
        loop {
            let i1 = (i0 + ROW_BLOCK).min(m);
            // the first block starts from 0 (or from `c` when accumulating), later ones from `c`
            let from_c = accumulate || i0 > 0;
            let mut j0 = 0;
            while j0 < n {
                // 16-column panels, each in strips of 6 rows of `c`: 12 accumulators, 2 loads of
                // `g` and one broadcast of `a` per row (8 loads per 12 FMAs, 15 registers).
                // Measured against 32-column panels in strips of 2 rows (8 accumulators, 6 loads
                // per 8 FMAs): 85–92 against 73–77 GFLOP/s on one core at k = 32–96, n = 32–64.
                let blocks = ((n - j0) / 8).min(2);
                let panel = Panel { n, j0 };
                match blocks {
                    1 => at_b_panel::<1, 8>(c, from_c, a, g, i0..i1, k, panel),
                    2 => at_b_panel::<2, 6>(c, from_c, a, g, i0..i1, k, panel),
                    _ => unreachable!("n is a multiple of 8"),
                }
                j0 += blocks * 8;
            }
            if i1 >= m {
                break;
            }
            i0 = i1;
        }
    }

    /// One panel of `c = aᵀ·g` over the rows `rows` of `a` and `g`: `KB` rows of `c` (`KB × NB`
    /// accumulators) stay in registers while the rows stream past, then the next `KB` rows of `c`;
    /// the rows of `c` left over take strips of 2, then of 1.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn at_b_panel<const NB: usize, const KB: usize>(
        c: &mut [f32],
        from_c: bool,
        a: &[f32],
        g: &[f32],
        rows: std::ops::Range<usize>,
        k: usize,
        panel: Panel,
    ) {
        let mut k0 = 0;
        while k0 + KB <= k {
            at_b_strip::<NB, KB>(c, from_c, a, g, rows.clone(), k, k0, panel);
            k0 += KB;
        }
        while k0 + 2 <= k {
            at_b_strip::<NB, 2>(c, from_c, a, g, rows.clone(), k, k0, panel);
            k0 += 2;
        }
        while k0 < k {
            at_b_strip::<NB, 1>(c, from_c, a, g, rows.clone(), k, k0, panel);
            k0 += 1;
        }
    }

    /// Rows `k0 .. k0 + KB` of one panel of `c` += Σ over `rows` of `a[i, k0 + r] · g[i, panel]`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn at_b_strip<const NB: usize, const KB: usize>(
        c: &mut [f32],
        from_c: bool,
        a: &[f32],
        g: &[f32],
        rows: std::ops::Range<usize>,
        k: usize,
        k0: usize,
        Panel { n, j0 }: Panel,
    ) {
        let mut acc = [[[0.0f32; 8]; NB]; KB];
        if from_c {
            for (r, acc_r) in acc.iter_mut().enumerate() {
                load(acc_r, &c[(k0 + r) * n + j0..]);
            }
        }
        for i in rows {
            let grow = &g[i * n + j0..i * n + j0 + NB * 8];
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
        for (r, acc_r) in acc.iter().enumerate() {
            store(acc_r, &mut c[(k0 + r) * n + j0..]);
        }
    }

    /// `c = a·b` (or `+=`) for `n < 8` outputs and `k = 8·KB ≤ 64`: for each output column, eight
    /// rows at a time, each row's dot product in its own 8-lane accumulator, then one transposing
    /// reduction (`hadd` tree) turns the eight accumulators into the eight rows' results. Rows left
    /// over (fewer than eight) take a scalar-reduced dot product.
    #[target_feature(enable = "avx2,fma")]
    pub fn narrow(
        c: &mut [f32],
        accumulate: bool,
        a: &[f32],
        b: &[f32],
        m: usize,
        k: usize,
        n: usize,
    ) {
        by_blocks!(k / 8, narrow_k(c, accumulate, a, b, m, n))
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn narrow_k<const KB: usize>(
        c: &mut [f32],
        accumulate: bool,
        a: &[f32],
        b: &[f32],
        m: usize,
        n: usize,
    ) {
        use std::arch::x86_64::*;
        let k = KB * 8;
        for j in 0..n {
            // column j of b, as KB vectors
            let mut col = [[0.0f32; 8]; KB];
            for (kk, v) in col.iter_mut().flatten().enumerate() {
                *v = b[kk * n + j];
            }
            let mut col_v = [_mm256_setzero_ps(); KB];
            for (v, lanes) in col_v.iter_mut().zip(&col) {
                // SAFETY: `lanes` holds 8 floats
                *v = unsafe { _mm256_loadu_ps(lanes.as_ptr()) };
            }
            let col = col_v;
            let mut i = 0;
            while i + 8 <= m {
                let rows = &a[i * k..(i + 8) * k];
                let mut acc = [_mm256_setzero_ps(); 8];
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    for (blk, col_blk) in col.iter().enumerate() {
                        let x = &rows[r * k + blk * 8..r * k + blk * 8 + 8];
                        // SAFETY: `x` holds 8 floats
                        *acc_r = _mm256_fmadd_ps(
                            unsafe { _mm256_loadu_ps(x.as_ptr()) },
                            *col_blk,
                            *acc_r,
                        );
                    }
                }
                let t0 = _mm256_hadd_ps(acc[0], acc[1]);
                let t1 = _mm256_hadd_ps(acc[2], acc[3]);
                let t2 = _mm256_hadd_ps(acc[4], acc[5]);
                let t3 = _mm256_hadd_ps(acc[6], acc[7]);
                let u0 = _mm256_hadd_ps(t0, t1);
                let u1 = _mm256_hadd_ps(t2, t3);
                let sums = _mm256_add_ps(
                    _mm256_permute2f128_ps::<0x20>(u0, u1),
                    _mm256_permute2f128_ps::<0x31>(u0, u1),
                );
                let mut out = [0.0f32; 8];
                // SAFETY: `out` holds 8 floats
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sums) };
                for (r, v) in out.iter().enumerate() {
                    let cij = &mut c[(i + r) * n + j];
                    *cij = if accumulate { *cij + v } else { *v };
                }
                i += 8;
            }
            for i in i..m {
                let mut acc = _mm256_setzero_ps();
                for (blk, col_blk) in col.iter().enumerate() {
                    let x = &a[i * k + blk * 8..i * k + blk * 8 + 8];
                    // SAFETY: `x` holds 8 floats
                    acc = _mm256_fmadd_ps(unsafe { _mm256_loadu_ps(x.as_ptr()) }, *col_blk, acc);
                }
                let mut lanes = [0.0f32; 8];
                // SAFETY: `lanes` holds 8 floats
                unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
                let v = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
                    + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
                let cij = &mut c[i * n + j];
                *cij = if accumulate { *cij + v } else { v };
            }
        }
    }

    /// `c = aᵀ·g` (or `+=`) for `n < 8` and `k = 8·KB ≤ 64`: for each column `j` of `g`, the `k`
    /// sums `Σᵢ g[i, j]·a[i, :]` in `KB` vector accumulators, with separate accumulators for even
    /// and odd rows (two independent FMA chains) added at the end.
    #[target_feature(enable = "avx2,fma")]
    pub fn narrow_at_b(
        c: &mut [f32],
        accumulate: bool,
        a: &[f32],
        g: &[f32],
        m: usize,
        k: usize,
        n: usize,
    ) {
        by_blocks!(k / 8, narrow_at_b_k(c, accumulate, a, g, m, n))
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn narrow_at_b_k<const KB: usize>(
        c: &mut [f32],
        accumulate: bool,
        a: &[f32],
        g: &[f32],
        m: usize,
        n: usize,
    ) {
        let k = KB * 8;
        for j in 0..n {
            let mut even = [[0.0f32; 8]; KB];
            let mut odd = [[0.0f32; 8]; KB];
            let mut i = 0;
            while i + 2 <= m {
                let (x0, x1) = (g[i * n + j], g[(i + 1) * n + j]);
                let (a0, a1) = (&a[i * k..(i + 1) * k], &a[(i + 1) * k..(i + 2) * k]);
                for blk in 0..KB {
                    for l in 0..8 {
                        even[blk][l] = x0.mul_add(a0[blk * 8 + l], even[blk][l]);
                        odd[blk][l] = x1.mul_add(a1[blk * 8 + l], odd[blk][l]);
                    }
                }
                i += 2;
            }
            if i < m {
                let (x0, a0) = (g[i * n + j], &a[i * k..(i + 1) * k]);
                for blk in 0..KB {
                    for l in 0..8 {
                        even[blk][l] = x0.mul_add(a0[blk * 8 + l], even[blk][l]);
                    }
                }
            }
            for blk in 0..KB {
                for l in 0..8 {
                    let v = even[blk][l] + odd[blk][l];
                    let cij = &mut c[(blk * 8 + l) * n + j];
                    *cij = if accumulate { *cij + v } else { v };
                }
            }
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
    fn general_products_match_a_reference_and_overwrite_fresh_outputs() {
        // shapes that go to the general GEMM; a fresh output full of NaN must be overwritten
        for (m, k, n) in [(37, 200, 150), (3, 300, 9), (64, 130, 256)] {
            assert!(packs_operands(k, n));
            let (a, b) = (data(m * k, 1), data(k * n, 2));
            let want = reference(&a, &b, m, k, n);
            let mut c = vec![f32::NAN; m * n];
            matmul(&mut c, false, &a, &b, m, k, n);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
            }
            // += and the transposed forms
            matmul(&mut c, true, &a, &b, m, k, n);
            for (x, y) in c.iter().zip(&want) {
                assert!(
                    (x - 2.0 * y).abs() <= 2e-4 * (1.0 + y.abs()),
                    "{x} vs 2·{y}"
                );
            }
            let mut w = vec![f32::NAN; k * n]; // aᵀ · c/2 against the reference
            let half: Vec<f32> = c.iter().map(|v| v / 2.0).collect();
            matmul_at_b(&mut w, false, &a, &half, m, k, n);
            let mut at = vec![0.0f32; k * m];
            for i in 0..m {
                for t in 0..k {
                    at[t * m + i] = a[i * k + t];
                }
            }
            let w_want = reference(&at, &half, k, m, n);
            for (x, y) in w.iter().zip(&w_want) {
                assert!((x - y).abs() <= 1e-3 * (1.0 + y.abs()), "{x} vs {y}");
            }
        }
        // inner dimension 0: a zero product
        let mut c = vec![f32::NAN; 6];
        matmul(&mut c, false, &[], &[], 2, 0, 3);
        assert_eq!(c, vec![0.0; 6]);
    }

    #[test]
    fn product_with_a_transposed_b_has_the_bits_of_an_explicit_transpose_on_every_path() {
        // wide (general GEMM with a view) and a plain transposed copy (n = 32, 4)
        for (m, k, n) in [
            (37, 200, 150),
            (64, 512, 96),
            (5, 130, 130),
            (33, 32, 32),
            (12, 32, 4),
        ] {
            let (a, b) = (data(m * k, 1), data(n * k, 2)); // b: n×k
            let mut bt = vec![0.0f32; k * n];
            for i in 0..n {
                for j in 0..k {
                    bt[j * n + i] = b[i * k + j];
                }
            }
            for accumulate in [false, true] {
                let mut want = data(m * n, 3);
                matmul(&mut want, accumulate, &a, &bt, m, k, n);
                let mut got = data(m * n, 3);
                matmul_a_bt(&mut got, accumulate, &a, &b, m, k, n);
                assert_eq!(got, want, "m {m} k {k} n {n} accumulate {accumulate}");
            }
        }
    }

    #[test]
    fn product_with_a_padded_transpose_matches_a_reference() {
        // n = 15, 23: bᵀ padded to 16, 24 columns on the register kernels, first n columns kept
        for (m, k, n) in [(70, 32, 15), (9, 16, 23)] {
            let (a, b) = (data(m * k, 1), data(n * k, 2)); // b: n×k
            let mut bt = vec![0.0f32; k * n];
            for i in 0..n {
                for j in 0..k {
                    bt[j * n + i] = b[i * k + j];
                }
            }
            let want = reference(&a, &bt, m, k, n);
            let mut got = vec![f32::NAN; m * n];
            matmul_a_bt(&mut got, false, &a, &b, m, k, n);
            let start = got.clone();
            matmul_a_bt(&mut got, true, &a, &b, m, k, n);
            for ((x0, x), y) in start.iter().zip(&got).zip(&want) {
                assert!((x0 - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x0} vs {y}");
                assert!(
                    (x - 2.0 * y).abs() <= 2e-4 * (1.0 + y.abs()),
                    "{x} vs 2·{y}"
                );
            }
        }
    }

    #[test]
    fn row_blocked_weight_gradient_sums_rows_in_order() {
        // each element of aᵀ·g is Σ_i a[i, r]·g[i, j] accumulated with FMA for i = 0, 1, … in
        // order, whatever the row blocking — equal to the bit to that sequential sum
        // (k = 5: strips of 2, 2, 1; k = 15: 6, 6, 2, 1; n = 40: panels of 16, 16, 8)
        #[cfg(target_arch = "x86_64")]
        for (m, k, n) in [
            (300, 5, 32),
            (130, 15, 40),
            (65, 32, 64),
            (7, 96, 8),
            (70, 259, 16),
        ] {
            if !at_b_register_kernels(k, n) {
                continue;
            }
            let (a, g) = (data(m * k, 4), data(m * n, 5));
            let mut c = vec![0.0; k * n];
            matmul_at_b(&mut c, false, &a, &g, m, k, n);
            for r in 0..k {
                for j in 0..n {
                    let sequential =
                        (0..m).fold(0.0f32, |acc, i| a[i * k + r].mul_add(g[i * n + j], acc));
                    let got = c[r * n + j].to_bits();
                    assert_eq!(got, sequential.to_bits(), "m {m} k {k} n {n}: r {r} j {j}");
                }
            }
        }
    }

    #[test]
    fn bias_start_equals_copying_the_bias_then_accumulating() {
        for &(m, k) in &[(1, 1), (5, 3), (17, 4), (130, 32)] {
            for n in [8, 16, 24, 32, 40, 48, 56, 64, 12, 1, 100, 96, 128] {
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

    /// The fused activation (applied in blocks of rows on the register kernels, after the
    /// product elsewhere) has the bits of the product followed by the activation, from every
    /// start (bias, zero, accumulate), over more rows than one block.
    #[test]
    fn mapped_products_equal_the_product_then_the_map() {
        let elu = |v: f32| v.max(0.0) + (crate::kernels::exp(v.min(0.0)) - 1.0);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for &(m, k) in &[(1, 1), (5, 3), (17, 4), (131, 32), (40, 96)] {
            for n in [8, 32, 40, 64, 96, 128, 12, 1, 256] {
                let (a, b, bias) = (data(m * k, 1), data(k * n, 2), data(n, 7));
                let mut want = vec![0.0; m * n];
                matmul_bias(&mut want, &bias, &a, &b, m, k, n);
                want.iter_mut().for_each(|v| *v = elu(*v));
                let mut got = vec![f32::NAN; m * n];
                matmul_bias_map(&mut got, &bias, (&a, &b), (m, k, n), elu);
                assert_eq!(bits(&got), bits(&want), "bias m{m} k{k} n{n}");

                let start = data(m * n, 9);
                for accumulate in [false, true] {
                    let mut want = start.clone();
                    matmul(&mut want, accumulate, &a, &b, m, k, n);
                    want.iter_mut().for_each(|v| *v = elu(*v));
                    let mut got = start.clone();
                    matmul_map(&mut got, accumulate, &a, &b, (m, k, n), elu);
                    assert_eq!(bits(&got), bits(&want), "m{m} k{k} n{n} acc {accumulate}");
                }
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
            (13, 16),
            (9, 64),
        ] {
            for n in [8, 16, 24, 32, 40, 48, 56, 64, 12, 1, 4, 7, 96, 128] {
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
