//! Matrix products for the skinny shapes of HDPO policies: many rows (batch × entities), few columns
//! (a hidden width of 8–64). A general GEMM packs both operands into panels first, which costs as
//! much as the arithmetic when `k` and `n` are 32. These kernels
//! skip packing: the small matrix stays in L1, each output row is held in registers while the inner
//! dimension streams past, and the loops are written so that an AVX2+FMA build (chosen at run time)
//! keeps 8-lane accumulators in `ymm` registers: `n` a multiple of 8 up to 128 in column panels of
//! 16, and narrow outputs (`n < 8`, an output layer) with `k` a multiple of 8 up to 64.
//! Other shapes fall back to the `gemm` crate's general product, single-threaded (or a portable loop
//! for `n < 8`), faster than `matrixmultiply` on the wide layers (docs/performance.md).
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
/// Otherwise it goes to the general GEMM (`packs_operands`), which blocks `b` for the cache (the
/// thresholds are measured: docs/performance.md, "Matrix products").
pub fn register_kernels(k: usize, n: usize) -> bool {
    n.is_multiple_of(8) && n <= 2 * MAX_N && k * n <= 8192 && (n >= 32 || k <= 64) && avx2_fma()
}

/// True when the weight gradient `aᵀ · g` (`a: m×k`, `g: m×n`) runs on the register kernels: `n`
/// a multiple of 8 and either `n ≤ 64` (any `k`: the kernel walks `c` in strips of rows over
/// cache-sized blocks of `a` and `g`) or `n ≤ 128` with `k ≤ 96` (measured: docs/performance.md).
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

/// An elementwise function that [`matmul_bias_map`] and [`matmul_map`] apply to every output: any
/// `Fn(f32) -> f32` (applied to each block of outputs right after its product), or [`Elu`], which
/// the register kernels apply to the accumulators before storing them.
pub trait OutputMap: Copy {
    /// The function.
    fn apply(self, v: f32) -> f32;
    /// True for [`Elu`]: the register kernels use its vector form on the accumulators.
    const IS_ELU: bool = false;
}

// `apply` is inlined into the caller's loop on purpose: [`matmul_from_map`] runs it inside a
// function compiled for AVX2 and FMA, and only inlined there does the ELU's `mul_add` become one
// instruction (called out of line it is a library call, ≈ 80× slower; seen in a build with 16
// codegen units, where the compiler did not inline it on its own).
impl<F: Fn(f32) -> f32 + Copy> OutputMap for F {
    #[inline(always)]
    fn apply(self, v: f32) -> f32 {
        self(v)
    }
}

/// ELU with α = 1 ([`crate::kernels::elu`]) as an [`OutputMap`]: on the register kernels it runs
/// on the accumulators, in registers, with the same bits as the scalar function.
#[derive(Clone, Copy, Debug)]
pub struct Elu;

impl OutputMap for Elu {
    #[inline(always)]
    fn apply(self, v: f32) -> f32 {
        crate::kernels::elu(v)
    }
    const IS_ELU: bool = true;
}

/// `c = f(bias + a · b)` elementwise: a linear layer and its activation. On the register kernels
/// `f` runs on each block of rows right after its product, while the block is in L1 ([`Elu`]:
/// on the accumulators); otherwise after the whole product. The same bits either way, and the
/// same as [`matmul_bias`] followed by `f` on every element.
pub fn matmul_bias_map(
    c: &mut [f32],
    bias: &[f32],
    (a, b): (&[f32], &[f32]),
    (m, k, n): (usize, usize, usize),
    f: impl OutputMap,
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
    f: impl OutputMap,
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
    f: impl OutputMap,
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
    crate::kernels::map_in_place(c, |v| f.apply(v));
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
        transpose_into(bt, b, k, width);
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

/// `bt = bᵀ` for `b: n×k`, with rows of `width ≥ n` floats (the columns past `n` are 0).
fn transpose_into(bt: &mut Vec<f32>, b: &[f32], k: usize, width: usize) {
    bt.clear();
    bt.resize(k * width, 0.0);
    for (j, b_row) in b.chunks_exact(k).enumerate() {
        for (t, &v) in b_row.iter().enumerate() {
            bt[t * width + j] = v;
        }
    }
}

/// An activation's derivative as a function of the activation's output, which
/// [`matmul_a_bt_times_derivative`] multiplies into a product: any `Fn(f32) -> f32` (applied in a
/// pass after the product), or [`EluDerivative`], which the register kernels apply to their
/// accumulators before storing them.
pub trait OutputDerivative: Copy {
    /// The derivative at output `y`.
    fn at(self, y: f32) -> f32;
    /// True for [`EluDerivative`]: the register kernels use its vector form on the accumulators.
    const IS_ELU: bool = false;
}

impl<F: Fn(f32) -> f32 + Copy> OutputDerivative for F {
    #[inline(always)]
    fn at(self, y: f32) -> f32 {
        self(y)
    }
}

/// ELU's derivative from its output ([`crate::kernels::elu_derivative`]) as an
/// [`OutputDerivative`]: on the register kernels it multiplies the accumulators, in registers.
#[derive(Clone, Copy, Debug)]
pub struct EluDerivative;

impl OutputDerivative for EluDerivative {
    #[inline(always)]
    fn at(self, y: f32) -> f32 {
        crate::kernels::elu_derivative(y)
    }
    const IS_ELU: bool = true;
}

/// `c = (a · bᵀ) ⊙ df(y)` elementwise, `a: m×k`, `b: n×k`, `y` and `c`: `m×n`. This is the input
/// gradient of a layer whose input `y` is the output of an activation, already multiplied by
/// that activation's derivative: the adjoint of the activation's *input*, so the layer that
/// produced `y` need not make its own pass `g ⊙ df(y)` over memory. The same bits as
/// [`matmul_a_bt`] followed by `c[i] *= df(y[i])`; with [`EluDerivative`] on the register kernels
/// the multiplication is done on the accumulators.
pub fn matmul_a_bt_times_derivative<D: OutputDerivative>(
    c: &mut [f32],
    a: &[f32],
    b: &[f32],
    y: &[f32],
    (m, k, n): (usize, usize, usize),
    df: D,
) {
    assert!(
        a.len() == m * k && b.len() == n * k && c.len() == m * n && y.len() == m * n,
        "matmul_a_bt_times_derivative: slice sizes"
    );
    if D::IS_ELU && m > 0 && register_kernels(k, n) {
        // the same kernel as a caller holding `bᵀ` already
        A_BT_SCRATCH.with(|cell| {
            let (bt, _) = &mut *cell.borrow_mut();
            transpose_into(bt, b, k, n);
            matmul_times_derivative(c, a, bt, y, (m, k, n), df);
        });
        return;
    }
    matmul_a_bt(c, false, a, b, m, k, n);
    for (ci, &yi) in c.iter_mut().zip(y) {
        *ci *= df.at(yi);
    }
}

/// [`matmul_a_bt_times_derivative`] for a caller that already holds `bᵀ` (`bt: k×n`), e.g. a
/// layer's weight transposed once for all the periods of a backward pass. On the register kernels
/// ([`register_kernels`]`(k, n)`) it has the bits of [`matmul_a_bt_times_derivative`]; other
/// shapes take [`matmul`] and then the multiplication.
pub fn matmul_times_derivative<D: OutputDerivative>(
    c: &mut [f32],
    a: &[f32],
    bt: &[f32],
    y: &[f32],
    (m, k, n): (usize, usize, usize),
    df: D,
) {
    assert!(
        a.len() == m * k && bt.len() == k * n && c.len() == m * n && y.len() == m * n,
        "matmul_times_derivative: slice sizes"
    );
    #[cfg(target_arch = "x86_64")]
    if D::IS_ELU && m > 0 && register_kernels(k, n) {
        // SAFETY: AVX2 and FMA were detected at run time (`register_kernels`).
        unsafe { avx2::matmul_times_elu_derivative(c, a, bt, y, m, k, n) };
        return;
    }
    matmul(c, false, a, bt, m, k, n);
    for (ci, &yi) in c.iter_mut().zip(y) {
        *ci *= df.at(yi);
    }
}

/// `bt = bᵀ` for `b: n×k` (row-major; `bt: k×n`), for [`matmul_times_derivative`].
pub fn transpose(bt: &mut Vec<f32>, b: &[f32], k: usize, n: usize) {
    assert_eq!(b.len(), n * k, "transpose: slice size");
    transpose_into(bt, b, k, n);
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
        unsafe { avx2::matmul_at_b(c, accumulate, a, g, (m, k, n), None) };
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

/// A layer's weight and bias gradients from one pass over `g`: `c = aᵀ · g` (or `+=` when
/// `accumulate_c`) and `sums` = the column sums of `g` (or `+=` when `accumulate_sums`), `a: m×k`,
/// `g: m×n`, `c: k×n`, `sums: n`. On the register kernels the sums are a row of ones in `aᵀ`, in
/// the strip of `c` that has registers to spare, so `g` is not read a second time; either way
/// `sums` has the bits of [`crate::kernels::column_sums_into`] (each column's rows added in order).
#[allow(clippy::too_many_arguments)]
pub fn matmul_at_b_and_column_sums(
    c: &mut [f32],
    accumulate_c: bool,
    sums: &mut [f32],
    accumulate_sums: bool,
    a: &[f32],
    g: &[f32],
    (m, k, n): (usize, usize, usize),
) {
    assert!(
        a.len() == m * k && g.len() == m * n && c.len() == k * n && sums.len() == n,
        "matmul_at_b_and_column_sums: slice sizes"
    );
    #[cfg(target_arch = "x86_64")]
    if n > 0 && at_b_register_kernels(k, n) {
        let column_sums = avx2::ColumnSums {
            sums,
            accumulate: accumulate_sums,
        };
        // SAFETY: AVX2 and FMA were detected at run time.
        unsafe { avx2::matmul_at_b(c, accumulate_c, a, g, (m, k, n), Some(column_sums)) };
        return;
    }
    matmul_at_b(c, accumulate_c, a, g, m, k, n);
    if n > 0 {
        crate::kernels::column_sums_into(sums, !accumulate_sums, g);
    }
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
    //! The register kernels. Both products cut the `n` columns into **panels** of 16 (2 × 8
    //! lanes) and each panel into **strips** of 6 rows: 12 accumulators (enough to hide the FMA
    //! latency), which together with the operand loads fit the 16 `ymm` registers without
    //! spilling. For `a·b` the strip is 6 output rows; for `aᵀ·g` it is 6 rows of `c`. Every
    //! element of `c` is still one chain of fused multiply-adds over the inner index in order, so
    //! the layout does not change a result (tested against the scalar chain).

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

    /// `c = f(a·b)` (from `start`) in blocks of [`BLOCK_ROWS`] rows. ELU ([`super::Elu`]) is
    /// applied to the accumulators before they are stored; any other `f` to each block of outputs
    /// right after its product, while it is in L1 (a loop the compiler vectorises). The same bits
    /// as the product followed by `f`.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_map<F: super::OutputMap>(
        c: &mut [f32],
        start: Start,
        a: &[f32],
        b: &[f32],
        m: usize,
        k: usize,
        n: usize,
        f: F,
    ) {
        if F::IS_ELU {
            blocks::<ACT_ELU>(c, start, (a, b, &[]), (m, k, n), |_| {});
        } else {
            blocks::<ACT_NONE>(c, start, (a, b, &[]), (m, k, n), |block| {
                block.iter_mut().for_each(|v| *v = f.apply(*v))
            });
        }
    }

    /// `c = a·b` (from `start`), `n` a multiple of 8.
    #[target_feature(enable = "avx2,fma")]
    pub fn matmul(c: &mut [f32], start: Start, a: &[f32], b: &[f32], m: usize, k: usize, n: usize) {
        blocks::<ACT_NONE>(c, start, (a, b, &[]), (m, k, n), |_| {});
    }

    /// `c = (a·b) ⊙ elu_derivative(y)`, `y: m×n`: each accumulator is multiplied by
    /// [`crate::kernels::elu_derivative8`] of the matching 8 outputs of `y` before it is stored.
    #[target_feature(enable = "avx2,fma")]
    pub fn matmul_times_elu_derivative(
        c: &mut [f32],
        a: &[f32],
        b: &[f32],
        y: &[f32],
        m: usize,
        k: usize,
        n: usize,
    ) {
        assert_eq!(y.len(), m * n, "register product: y shape");
        blocks::<ACT_TIMES_ELU_DERIVATIVE>(c, Start::Zero, (a, b, y), (m, k, n), |_| {});
    }

    /// Columns `j0 .. j0 + 8·NB` of matrices with rows of `n` floats.
    #[derive(Clone, Copy)]
    struct Panel {
        n: usize,
        j0: usize,
    }

    /// What a strip applies to its accumulators before storing them: nothing, ELU, or a
    /// multiplication by ELU's derivative at the matching outputs of `y`.
    const ACT_NONE: u8 = 0;
    const ACT_ELU: u8 = 1;
    const ACT_TIMES_ELU_DERIVATIVE: u8 = 2;

    /// Rows per block: the block's rows of `a` (≤ 9 KiB at `k = 96`) stay in L1 while every
    /// column panel passes over them, and `after_block` sees the block's outputs while they are
    /// in L1 too.
    const BLOCK_ROWS: usize = 24;

    /// `c = a·b` in blocks of [`BLOCK_ROWS`] rows; each block is cut into 16-column panels (an
    /// 8-column one for the rest), each panel into strips of rows (6 rows of a 16-column panel, 12
    /// of an 8-column one: 12 accumulators, enough to hide the FMA latency, plus the loads of `b`
    /// and one broadcast of `a`: 15 of the 16 `ymm` registers), then leftover rows by 2 and 1.
    /// `y` is read only by [`ACT_TIMES_ELU_DERIVATIVE`] (empty otherwise).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn blocks<const ACT: u8>(
        c: &mut [f32],
        start: Start,
        (a, b, y): (&[f32], &[f32], &[f32]),
        (m, k, n): (usize, usize, usize),
        mut after_block: impl FnMut(&mut [f32]),
    ) {
        assert!(
            n.is_multiple_of(8) && a.len() == m * k && b.len() == k * n && c.len() == m * n,
            "register product: shapes"
        );
        if let Start::Bias(bias) = start {
            assert_eq!(bias.len(), n, "register product: bias length");
        }
        let mut i0 = 0;
        while i0 < m {
            let i1 = (i0 + BLOCK_ROWS).min(m);
            let mut j0 = 0;
            while j0 < n {
                let panel = Panel { n, j0 };
                if n - j0 >= 16 {
                    strips::<2, 6, ACT>(c, start, (a, b, y), i0..i1, k, panel);
                    j0 += 16;
                } else {
                    strips::<1, 12, ACT>(c, start, (a, b, y), i0..i1, k, panel);
                    j0 += 8;
                }
            }
            after_block(&mut c[i0 * n..i1 * n]);
            i0 = i1;
        }
    }

    /// One panel of rows `rows`: strips of `R` rows, then of 2, then of 1.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn strips<const NB: usize, const R: usize, const ACT: u8>(
        c: &mut [f32],
        start: Start,
        operands: (&[f32], &[f32], &[f32]),
        rows: std::ops::Range<usize>,
        k: usize,
        panel: Panel,
    ) {
        let mut i = rows.start;
        while i + R <= rows.end {
            strip::<NB, R, ACT>(c, start, operands, i, k, panel);
            i += R;
        }
        while i + 2 <= rows.end {
            strip::<NB, 2, ACT>(c, start, operands, i, k, panel);
            i += 2;
        }
        if i < rows.end {
            strip::<NB, 1, ACT>(c, start, operands, i, k, panel);
        }
    }

    /// Rows `i0 .. i0 + R`, columns `j0 .. j0 + 8·NB` of `c = a·b`: `R × NB` accumulators start
    /// at `start`; for each `t` in order, `NB` loads of `b[t, panel]`, and for each row one
    /// broadcast of `a[i, t]` and `NB` fused multiply-adds. So every element is the chain
    /// `start + a[i,0]·b[0,j] + a[i,1]·b[1,j] + …`, rounded once per step, whatever the layout.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn strip<const NB: usize, const R: usize, const ACT: u8>(
        c: &mut [f32],
        start: Start,
        (a, b, y): (&[f32], &[f32], &[f32]),
        i0: usize,
        k: usize,
        Panel { n, j0 }: Panel,
    ) {
        use std::arch::x86_64::*;
        // every access below stays inside these bounds
        assert!((i0 + R) * n <= c.len() && (i0 + R) * k <= a.len() && j0 + NB * 8 <= n);
        assert!(k == 0 || (k - 1) * n + j0 + NB * 8 <= b.len());
        assert!(ACT != ACT_TIMES_ELU_DERIVATIVE || y.len() == c.len());
        // SAFETY: the pointers stay inside the slices (asserted above); loads and stores are
        // unaligned; AVX2 and FMA are enabled for this function.
        unsafe {
            let cp = c.as_mut_ptr().add(i0 * n + j0);
            let ap = a.as_ptr().add(i0 * k);
            let bp = b.as_ptr().add(j0);
            if ACT == ACT_TIMES_ELU_DERIVATIVE {
                // `y` was written by the forward pass many periods ago and is usually out of
                // cache: ask for the first line of each of the strip's rows now, so that the
                // misses overlap the multiply-adds instead of stalling the epilogue
                // (docs/performance.md)
                let yp = y.as_ptr().add(i0 * n + j0);
                for r in 0..R {
                    _mm_prefetch::<_MM_HINT_T0>(yp.add(r * n) as *const i8);
                }
            }
            let mut acc = [[_mm256_setzero_ps(); NB]; R];
            for (r, acc_r) in acc.iter_mut().enumerate() {
                for (blk, v) in acc_r.iter_mut().enumerate() {
                    *v = match start {
                        Start::Zero => _mm256_setzero_ps(),
                        Start::C => _mm256_loadu_ps(cp.add(r * n + blk * 8)),
                        Start::Bias(bias) => _mm256_loadu_ps(bias.as_ptr().add(j0 + blk * 8)),
                    };
                }
            }
            for t in 0..k {
                let mut b_t = [_mm256_setzero_ps(); NB];
                for (blk, v) in b_t.iter_mut().enumerate() {
                    *v = _mm256_loadu_ps(bp.add(t * n + blk * 8));
                }
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let x = _mm256_broadcast_ss(&*ap.add(r * k + t));
                    for (v, &w) in acc_r.iter_mut().zip(&b_t) {
                        *v = _mm256_fmadd_ps(x, w, *v);
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                for (blk, &v) in acc_r.iter().enumerate() {
                    let at = r * n + blk * 8;
                    let v = match ACT {
                        ACT_ELU => crate::kernels::elu8(v),
                        ACT_TIMES_ELU_DERIVATIVE => {
                            let yp = y.as_ptr().add(i0 * n + j0);
                            let df = crate::kernels::elu_derivative8(_mm256_loadu_ps(yp.add(at)));
                            _mm256_mul_ps(v, df)
                        }
                        _ => v,
                    };
                    _mm256_storeu_ps(cp.add(at), v);
                }
            }
        }
    }

    /// Column sums computed alongside a weight gradient: `sums` (=, or += when `accumulate`) the
    /// column sums of `g`, as a row of ones in `aᵀ` (a layer's bias gradient).
    pub struct ColumnSums<'s> {
        pub sums: &'s mut [f32],
        pub accumulate: bool,
    }

    /// `c = aᵀ·g` (or `+=`), `n` a multiple of 8; with `column_sums`, also the column sums of `g`
    /// in the same pass (the ones row rides in the last strip of each panel, where registers are
    /// left over). Each sum adds the rows of `g` in order, one by one, as
    /// [`crate::kernels::column_sums_into`] does: the same bits.
    #[target_feature(enable = "avx2,fma")]
    pub fn matmul_at_b(
        c: &mut [f32],
        accumulate: bool,
        a: &[f32],
        g: &[f32],
        (m, k, n): (usize, usize, usize),
        mut column_sums: Option<ColumnSums<'_>>,
    ) {
        if let Some(cs) = &column_sums {
            assert_eq!(cs.sums.len(), n, "column sums: one per column of g");
        }
        // rows of `a` and `g` per block: a block of `g` (64 × n ≤ 16 KiB at n = 64) stays in L1
        // while every strip of `c` passes over it, instead of streaming all of `g` from L2 once
        // per strip
        const ROW_BLOCK: usize = 64;
        let mut i0 = 0;
        loop {
            let i1 = (i0 + ROW_BLOCK).min(m);
            // the first block starts from 0 (or from `c` when accumulating), later ones from `c`
            let from_c = accumulate || i0 > 0;
            let mut sums = column_sums.as_mut().map(|cs| Sums {
                sums: &mut *cs.sums,
                from_sums: cs.accumulate || i0 > 0,
            });
            let mut j0 = 0;
            while j0 < n {
                // 16-column panels, each in strips of 6 rows of `c`: 12 accumulators, 2 loads of
                // `g` and one broadcast of `a` per row (8 loads per 12 FMAs, 15 registers;
                // docs/performance.md)
                let blocks = ((n - j0) / 8).min(2);
                let panel = Panel { n, j0 };
                let sums = sums.as_mut().map(|s| s.reborrow());
                match blocks {
                    1 => at_b_panel::<1, 8>(c, from_c, a, g, i0..i1, k, panel, sums),
                    2 => at_b_panel::<2, 6>(c, from_c, a, g, i0..i1, k, panel, sums),
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

    /// The column sums of one row block: whether they start from `sums` or from 0.
    struct Sums<'s> {
        sums: &'s mut [f32],
        from_sums: bool,
    }

    impl Sums<'_> {
        fn reborrow(&mut self) -> Sums<'_> {
            Sums {
                sums: &mut *self.sums,
                from_sums: self.from_sums,
            }
        }
    }

    /// One panel of `c = aᵀ·g` over the rows `rows` of `a` and `g`: `KB` rows of `c` (`KB × NB`
    /// accumulators) stay in registers while the rows stream past, then the next `KB` rows of `c`;
    /// the rows of `c` left over take strips of 2, then of 1. The ones row of `sums` (if any)
    /// joins the last of these strips (or makes a strip of its own when no row is left over).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn at_b_panel<const NB: usize, const KB: usize>(
        c: &mut [f32],
        from_c: bool,
        a: &[f32],
        g: &[f32],
        rows: std::ops::Range<usize>,
        k: usize,
        panel: Panel,
        mut sums: Option<Sums<'_>>,
    ) {
        let strip = StripRows { from_c, k, panel };
        let mut k0 = 0;
        while k0 + KB <= k {
            at_b_strip::<NB, KB, false>(c, a, g, rows.clone(), k0, strip, None);
            k0 += KB;
        }
        loop {
            match (k - k0, sums.take()) {
                (0, None) => break,
                (0, Some(s)) => {
                    at_b_strip::<NB, 1, true>(c, a, g, rows.clone(), k0, strip, Some(s));
                    break;
                }
                (1, Some(s)) => {
                    at_b_strip::<NB, 2, true>(c, a, g, rows.clone(), k0, strip, Some(s));
                    break;
                }
                (2, Some(s)) => {
                    at_b_strip::<NB, 3, true>(c, a, g, rows.clone(), k0, strip, Some(s));
                    break;
                }
                (1, None) => {
                    at_b_strip::<NB, 1, false>(c, a, g, rows.clone(), k0, strip, None);
                    k0 += 1;
                }
                (_, s) => {
                    sums = s;
                    at_b_strip::<NB, 2, false>(c, a, g, rows.clone(), k0, strip, None);
                    k0 += 2;
                }
            }
        }
    }

    /// What every strip of a panel shares: whether `c` starts from its stored values, the rows of
    /// `c` (`k`) and the panel's columns.
    #[derive(Clone, Copy)]
    struct StripRows {
        from_c: bool,
        k: usize,
        panel: Panel,
    }

    /// Rows `k0 .. k0 + KB` of one panel of `c` += Σ over `rows` of `a[i, k0 + r] · g[i, panel]`;
    /// with `ONES`, the last of the `KB` accumulator rows is instead the panel's column sums of `g`
    /// (`acc + g`, the bits of an FMA with `a`'s entry taken as 1), loaded from and stored to
    /// `sums`. Written with intrinsics, as [`strip`] is: the vectorisation does not depend on how
    /// the compiler splits the crate.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn at_b_strip<const NB: usize, const KB: usize, const ONES: bool>(
        c: &mut [f32],
        a: &[f32],
        g: &[f32],
        rows: std::ops::Range<usize>,
        k0: usize,
        StripRows {
            from_c,
            k,
            panel: Panel { n, j0 },
        }: StripRows,
        mut sums: Option<Sums<'_>>,
    ) {
        use std::arch::x86_64::*;
        let a_rows = if ONES { KB - 1 } else { KB };
        // every access below stays inside these bounds
        assert!(j0 + NB * 8 <= n && (k0 + a_rows) * n <= c.len() && k0 + a_rows <= k);
        assert!(rows.end * n <= g.len() && rows.end * k <= a.len());
        assert!(!ONES || sums.as_ref().is_some_and(|s| j0 + NB * 8 <= s.sums.len()));
        // SAFETY: the pointers stay inside the slices (asserted above); loads and stores are
        // unaligned; AVX2 and FMA are enabled for this function.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); NB]; KB];
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let from = if ONES && r == KB - 1 {
                    sums.as_ref()
                        .filter(|s| s.from_sums)
                        .map(|s| s.sums.as_ptr().add(j0))
                } else {
                    from_c.then(|| c.as_ptr().add((k0 + r) * n + j0))
                };
                if let Some(p) = from {
                    for (blk, v) in acc_r.iter_mut().enumerate() {
                        *v = _mm256_loadu_ps(p.add(blk * 8));
                    }
                }
            }
            for i in rows {
                let gp = g.as_ptr().add(i * n + j0);
                let mut g_i = [_mm256_setzero_ps(); NB];
                for (blk, v) in g_i.iter_mut().enumerate() {
                    *v = _mm256_loadu_ps(gp.add(blk * 8));
                }
                let ap = a.as_ptr().add(i * k + k0);
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    if ONES && r == KB - 1 {
                        for (v, &w) in acc_r.iter_mut().zip(&g_i) {
                            *v = _mm256_add_ps(*v, w);
                        }
                    } else {
                        let x = _mm256_broadcast_ss(&*ap.add(r));
                        for (v, &w) in acc_r.iter_mut().zip(&g_i) {
                            *v = _mm256_fmadd_ps(x, w, *v);
                        }
                    }
                }
            }
            for (r, acc_r) in acc.iter().enumerate() {
                let to = if ONES && r == KB - 1 {
                    sums.as_mut().map(|s| s.sums.as_mut_ptr().add(j0))
                } else {
                    Some(c.as_mut_ptr().add((k0 + r) * n + j0))
                };
                if let Some(p) = to {
                    for (blk, &v) in acc_r.iter().enumerate() {
                        _mm256_storeu_ps(p.add(blk * 8), v);
                    }
                }
            }
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
                if n == 1 {
                    // one output column: the eight results are eight consecutive floats of `c`
                    let dst = &mut c[i..i + 8];
                    // SAFETY: `dst` holds 8 floats
                    unsafe {
                        let v = if accumulate {
                            _mm256_add_ps(_mm256_loadu_ps(dst.as_ptr()), sums)
                        } else {
                            sums
                        };
                        _mm256_storeu_ps(dst.as_mut_ptr(), v);
                    }
                } else {
                    let mut out = [0.0f32; 8];
                    // SAFETY: `out` holds 8 floats
                    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sums) };
                    for (r, v) in out.iter().enumerate() {
                        let cij = &mut c[(i + r) * n + j];
                        *cij = if accumulate { *cij + v } else { *v };
                    }
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
    fn weight_gradient_with_column_sums_has_the_bits_of_the_two_apart() {
        // the ones row joins each leftover strip shape: k = 0 (alone), 1, 2 (with 1 or 2 rows),
        // 5 (2, 2, then 1 + ones), 6 (a full strip, then ones alone), 12, 15, 32 (6·5 + 2 + ones);
        // n = 8 (8-column panels, strips of 8), 40 (16, 16, 8), 128 with k ≤ 96; more than one
        // row block (m > 64); an n outside the register kernels (12) takes the fallback
        for (m, k, n) in [
            (300, 5, 32),
            (130, 15, 40),
            (65, 32, 64),
            (7, 96, 8),
            (70, 259, 16),
            (200, 0, 16),
            (129, 1, 8),
            (64, 2, 24),
            (100, 6, 32),
            (3, 12, 128),
            (1, 32, 32),
            (0, 4, 16),
            (50, 7, 12),
        ] {
            let (a, g) = (data(m * k, 4), data(m * n, 5));
            for (accumulate_c, accumulate_sums) in [(false, false), (true, false), (false, true)] {
                let (c0, s0) = (data(k * n, 6), data(n, 7));
                let (mut want_c, mut want_s) = (c0.clone(), s0.clone());
                matmul_at_b(&mut want_c, accumulate_c, &a, &g, m, k, n);
                crate::kernels::column_sums_into(&mut want_s, !accumulate_sums, &g);
                let (mut c, mut s) = (c0.clone(), s0.clone());
                matmul_at_b_and_column_sums(
                    &mut c,
                    accumulate_c,
                    &mut s,
                    accumulate_sums,
                    &a,
                    &g,
                    (m, k, n),
                );
                let case = format!("m {m} k {k} n {n} accumulate {accumulate_c} {accumulate_sums}");
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&c), bits(&want_c), "weights, {case}");
                assert_eq!(bits(&s), bits(&want_s), "sums, {case}");
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

                // ELU on the accumulators, in registers
                let mut want = vec![0.0; m * n];
                matmul_bias(&mut want, &bias, &a, &b, m, k, n);
                want.iter_mut().for_each(|v| *v = crate::kernels::elu(*v));
                let mut got = vec![f32::NAN; m * n];
                matmul_bias_map(&mut got, &bias, (&a, &b), (m, k, n), Elu);
                assert_eq!(bits(&got), bits(&want), "Elu bias m{m} k{k} n{n}");

                let start = data(m * n, 9);
                for accumulate in [false, true] {
                    let mut want = start.clone();
                    matmul(&mut want, accumulate, &a, &b, m, k, n);
                    let mut want_elu = want.clone();
                    want.iter_mut().for_each(|v| *v = elu(*v));
                    let mut got = start.clone();
                    matmul_map(&mut got, accumulate, &a, &b, (m, k, n), elu);
                    assert_eq!(bits(&got), bits(&want), "m{m} k{k} n{n} acc {accumulate}");
                    want_elu
                        .iter_mut()
                        .for_each(|v| *v = crate::kernels::elu(*v));
                    let mut got = start.clone();
                    matmul_map(&mut got, accumulate, &a, &b, (m, k, n), Elu);
                    assert_eq!(
                        bits(&got),
                        bits(&want_elu),
                        "Elu m{m} k{k} n{n} acc {accumulate}"
                    );
                }
            }
        }
    }

    /// On the register kernels every element of `a·b` is one chain of fused multiply-adds over
    /// the inner index in order, from its start (zero, `c` or the bias): whatever the row strips,
    /// column panels and blocks, the bits are those of the scalar chain.
    #[test]
    fn register_products_are_the_sequential_fused_sum_of_each_element() {
        if !avx2_fma() {
            return;
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for &(m, k) in &[
            (1, 1),
            (5, 3),
            (7, 4),
            (13, 15),
            (31, 32),
            (50, 17),
            (100, 96),
        ] {
            for n in [8, 16, 24, 32, 40, 48, 64, 80, 96, 128] {
                if !register_kernels(k, n) {
                    continue;
                }
                let (a, b, bias, start) =
                    (data(m * k, 1), data(k * n, 2), data(n, 3), data(m * n, 4));
                let chain = |i: usize, j: usize, from: f32| {
                    (0..k).fold(from, |acc, t| a[i * k + t].mul_add(b[t * n + j], acc))
                };
                let want = |from: &dyn Fn(usize, usize) -> f32| {
                    (0..m * n)
                        .map(|e| chain(e / n, e % n, from(e / n, e % n)))
                        .collect::<Vec<_>>()
                };
                let mut got = vec![f32::NAN; m * n];
                matmul(&mut got, false, &a, &b, m, k, n);
                assert_eq!(bits(&got), bits(&want(&|_, _| 0.0)), "zero m{m} k{k} n{n}");
                let mut got = start.clone();
                matmul(&mut got, true, &a, &b, m, k, n);
                assert_eq!(
                    bits(&got),
                    bits(&want(&|i, j| start[i * n + j])),
                    "c m{m} k{k} n{n}"
                );
                let mut got = vec![f32::NAN; m * n];
                matmul_bias(&mut got, &bias, &a, &b, m, k, n);
                assert_eq!(
                    bits(&got),
                    bits(&want(&|_, j| bias[j])),
                    "bias m{m} k{k} n{n}"
                );
            }
        }
    }

    /// `(a·bᵀ) ⊙ df(y)` has the bits of `a·bᵀ` followed by the multiplication, on every path:
    /// ELU's derivative on the accumulators of the register kernels (panels of 16 and 8 columns,
    /// strips of 6, 12, 2 and 1 rows), and the pass after the product elsewhere (padded, narrow
    /// and general shapes, and a closure).
    #[test]
    fn products_times_a_derivative_have_the_bits_of_product_then_multiply() {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for &(m, k) in &[(1, 1), (7, 3), (13, 32), (50, 17), (100, 64), (37, 200)] {
            for n in [8, 16, 24, 32, 40, 64, 15, 3, 130] {
                let (a, b) = (data(m * k, 5), data(n * k, 6));
                // activation outputs in ELU's range, both sides of 0
                let y: Vec<f32> = data(m * n, 7).iter().map(|v| 1.5 * v).collect();
                let mut want = vec![0.0f32; m * n];
                matmul_a_bt(&mut want, false, &a, &b, m, k, n);
                let plain = want.clone();
                for (w, &yi) in want.iter_mut().zip(&y) {
                    *w *= crate::kernels::elu_derivative(yi);
                }
                let mut got = vec![f32::NAN; m * n];
                matmul_a_bt_times_derivative(&mut got, &a, &b, &y, (m, k, n), EluDerivative);
                assert_eq!(bits(&got), bits(&want), "elu m{m} k{k} n{n}");
                let tanh = |v: f32| 1.0 - v * v;
                let want: Vec<f32> = plain.iter().zip(&y).map(|(p, &v)| p * tanh(v)).collect();
                matmul_a_bt_times_derivative(&mut got, &a, &b, &y, (m, k, n), tanh);
                assert_eq!(bits(&got), bits(&want), "closure m{m} k{k} n{n}");
            }
        }
    }

    /// The narrow kernel gives each row the same bits whether the row is one of eight reduced
    /// together (and, for one column, stored as a vector) or a leftover row reduced alone; with
    /// `accumulate` it adds exactly the fresh result.
    #[test]
    fn narrow_rows_do_not_depend_on_their_grouping() {
        if !avx2_fma() {
            return;
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (k, n) in [(32, 1), (32, 4), (8, 3), (64, 1), (16, 7)] {
            assert!(narrow_kernels(k, n));
            let m = 21;
            let (a, b) = (data(m * k, 8), data(k * n, 9));
            let mut all = vec![f32::NAN; m * n];
            matmul(&mut all, false, &a, &b, m, k, n);
            for i in 0..m {
                let mut row = vec![f32::NAN; n];
                matmul(&mut row, false, &a[i * k..(i + 1) * k], &b, 1, k, n);
                assert_eq!(
                    bits(&row),
                    bits(&all[i * n..(i + 1) * n]),
                    "k{k} n{n} row {i}"
                );
            }
            let start = data(m * n, 10);
            let mut acc = start.clone();
            matmul(&mut acc, true, &a, &b, m, k, n);
            let want: Vec<f32> = start.iter().zip(&all).map(|(s, v)| s + v).collect();
            assert_eq!(bits(&acc), bits(&want), "accumulate k{k} n{n}");
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
