//! Elementwise kernels: branch-free scalar formulas applied over slices so the compiler vectorises
//! them, with a run-time switch to an AVX2+FMA build of the same loop when the CPU has it (no global
//! `target-cpu` flag: the binary still runs on any x86-64 or other architecture).
//!
//! [`exp`] is a Cephes-style single-precision exponential (range reduction by ln 2, degree-6
//! polynomial, exponent bits set directly): about 1 ulp of `f32::exp`, and — unlike a call into
//! libm — inlined and vectorised. ELU, sigmoid and softplus are built on it; the softplus also on
//! [`log1p`], a vectorisable Cephes-style `ln(1 + u)`.

/// `eˣ` in f32, branch-free and vectorisable; relative error ≲ 2·10⁻⁷ on [−87.3, 88.3]; inputs
/// outside are clamped to that range (so very negative inputs give ≈ 1.2·10⁻³⁸, very large ones
/// ≈ 2·10³⁸, never 0 or infinity).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Fused multiply-adds for the reduction and the polynomial (one rounding each, so the result
    // is the same on every machine), plain adds and integer bit operations otherwise (no `round`
    // or float→int casts), so loops vectorise. Inside the AVX2+FMA builds of the kernels below
    // `mul_add` is one `vfmadd` instruction; elsewhere on x86-64 it is a library call (correct,
    // slow: only machines without FMA take that path).
    let x = x.clamp(-87.3, 88.3);
    let t = x.mul_add(LOG2E, ROUND_BIASED);
    let n = t - ROUND_BIASED; // round(x / ln 2) as a float
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    // e^r on |r| ≤ ln2/2 (Cephes expf coefficients)
    let p = 1.987_569_1e-4f32;
    let p = p.mul_add(r, 1.398_199_9e-3);
    let p = p.mul_add(r, 8.333_452e-3);
    let p = p.mul_add(r, 4.166_579_6e-2);
    let p = p.mul_add(r, 1.666_666_5e-1);
    let p = p.mul_add(r, 0.5);
    let er = (p * r).mul_add(r, r) + 1.0;
    er * pow2_from_rounded(t) // n ∈ [−126, 127] after the clamp
}

/// `eˣ − 1` in f32 for `x ≤ 0` (positive inputs are taken as 0, inputs below −87.3 as −87.3, NaN
/// stays NaN):
/// ELU's negative branch. Branch-free and vectorisable, relative error ≲ 1.2·10⁻⁷ (2 ulp; checked
/// against f64 in the tests), including near 0 where `exp(x) − 1` would cancel.
///
/// `x = n·ln 2 + r` with `|r| ≤ ln2/2`, then `eˣ − 1 = 2ⁿ·q + (2ⁿ − 1)` with `q ≈ eʳ − 1 = r + r²·P(r)`,
/// `P` a degree-4 polynomial (a weighted least-squares fit iterated towards minimax, relative
/// error 1.3·10⁻⁸ in f64). One constant suffices for the reduction here: `|n| ≤ 126`, and the
/// reduction error `n·(ln 2 − ln2_f32)` shifts `eˣ` by at most `2.4·10⁻⁷ · eˣ`, which is below
/// 1 ulp of `eˣ − 1` whenever `eˣ` is not negligible against 1. Seven fewer operations than
/// `exp(x) − 1` (no second reduction constant, one polynomial term fewer, no `+ 1 … − 1`).
#[inline(always)]
pub fn expm1_neg(x: f32) -> f32 {
    let (scale, q) = expm1_neg_parts(x);
    scale.mul_add(q, scale - 1.0)
}

/// `(2ⁿ, q)` of [`expm1_neg`], which is `2ⁿ·q + (2ⁿ − 1)`: [`elu`] adds its positive part to the
/// last term, so one fused multiply-add finishes both.
#[inline(always)]
fn expm1_neg_parts(x: f32) -> (f32, f32) {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2: f32 = std::f32::consts::LN_2;
    let x = x.clamp(-87.3, 0.0);
    let t = x.mul_add(LOG2E, ROUND_BIASED);
    let n = t - ROUND_BIASED; // round(x / ln 2) ∈ [−126, 0]
    let r = n.mul_add(-LN2, x);
    let p = 1.388_260_5e-3f32;
    let p = p.mul_add(r, 8.366_515e-3);
    let p = p.mul_add(r, 4.166_719_7e-2);
    let p = p.mul_add(r, 1.666_654_3e-1);
    let p = p.mul_add(r, 0.499_999_97);
    let q = (r * r).mul_add(p, r); // eʳ − 1
    let scale = pow2_from_rounded(t); // 2ⁿ
    (scale, q)
}

/// ELU with α = 1: `x` for `x > 0`, `eˣ − 1` otherwise. Branch-free and without a select (which
/// made the compiler emit masked stores in in-place loops, very slow on some CPUs): it is
/// `max(x, 0) + expm1_neg(x)`, where for `x > 0` [`expm1_neg`] gives exactly 0 (`2ⁿ = 1`, `q = 0`)
/// and otherwise `max(x, 0) = 0` adds nothing. The addition is folded into `expm1_neg`'s last
/// multiply-add, `2ⁿ·q + ((2ⁿ − 1) + max(x, 0))`: one operation fewer, the same bits (the inner
/// sum is exact in both cases; tested).
#[inline(always)]
pub fn elu(x: f32) -> f32 {
    let (scale, q) = expm1_neg_parts(x);
    scale.mul_add(q, (scale - 1.0) + x.max(0.0))
}

/// [`elu`] on 8 lanes, operation for operation (so the same bits; tested): what the product
/// kernels apply to their accumulators before storing them.
///
/// # Safety
///
/// The CPU must support AVX2 and FMA (callers are themselves compiled for those features after a
/// run-time check).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub fn elu8(x: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let splat = _mm256_set1_ps;
    let round = splat(ROUND_BIASED);
    // clamp(x, −87.3, 0): `max`/`min` return their second operand when one is NaN, so NaN stays
    let clamped = _mm256_min_ps(splat(0.0), _mm256_max_ps(splat(-87.3), x));
    let t = _mm256_fmadd_ps(clamped, splat(std::f32::consts::LOG2_E), round);
    let n = _mm256_sub_ps(t, round);
    let r = _mm256_fmadd_ps(n, splat(-std::f32::consts::LN_2), clamped);
    let mut p = splat(1.388_260_5e-3);
    p = _mm256_fmadd_ps(p, r, splat(8.366_515e-3));
    p = _mm256_fmadd_ps(p, r, splat(4.166_719_7e-2));
    p = _mm256_fmadd_ps(p, r, splat(1.666_654_3e-1));
    p = _mm256_fmadd_ps(p, r, splat(0.499_999_97));
    let q = _mm256_fmadd_ps(_mm256_mul_ps(r, r), p, r);
    // 2ⁿ as in `pow2_from_rounded`
    let scale = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_castps_si256(t)));
    // Rust's `f32::max(x, 0)` gives 0 for a NaN `x`; `_mm256_max_ps(x, 0)` does too (second operand)
    let positive = _mm256_max_ps(x, splat(0.0));
    let base = _mm256_add_ps(_mm256_sub_ps(scale, splat(1.0)), positive);
    _mm256_fmadd_ps(scale, q, base)
}

/// ELU's derivative from its output `y = elu(x)`: 1 for `y > 0`, otherwise `y + 1` (which is
/// `eˣ`). The backward pass of a fused ELU layer uses it, so the pre-activation need not be kept.
#[inline(always)]
pub fn elu_derivative(y: f32) -> f32 {
    if y > 0.0 { 1.0 } else { y + 1.0 }
}

/// [`elu_derivative`] on 8 lanes, with the same bits: `min(1, y + 1)`. For `y > 0`, `y + 1`
/// rounds to 1 or more; otherwise it is at most 1; a NaN `y` gives NaN (`min` returns its second
/// operand when one is NaN). Tested on the same grid as [`elu8`].
///
/// # Safety
///
/// The CPU must support AVX2 (callers are compiled for it after a run-time check).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub fn elu_derivative8(y: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let one = _mm256_set1_ps(1.0);
    _mm256_min_ps(one, _mm256_add_ps(y, one))
}

/// `1.5·2²³ + 127`. Added to `y = x·log₂e` (`|y| < 2²²`) in one rounding, it leaves
/// `t = 1.5·2²³ + 127 + n` with `n` the integer nearest to `y`: every float in `[2²³, 2²⁴)` is an
/// integer, so `n = t − ROUND_BIASED` exactly. (Ties cannot occur for `|x| < 2²²`: the exact
/// product of an f32 with `log₂e`'s f32 is a half-integer only for `|x| ≥ 2²²`.) The `+ 127` is
/// the exponent bias: [`pow2_from_rounded`] reads `2ⁿ` off `t`'s bits with one shift.
const ROUND_BIASED: f32 = 12_583_039.0;

/// `2ⁿ` from `t = x·log₂e + ROUND_BIASED`, whose low mantissa bits hold `n + 127` (`n` must lie in
/// [−126, 127]): `(n + 127) << 23` are the bits of `2ⁿ`. `t`'s bits are those of `1.5·2²³` plus
/// `n + 127`, and the low 9 bits of `1.5·2²³` are zero, so shifting `t`'s bits left by 23 leaves
/// exactly `(n + 127) << 23`: one shift, no subtraction of the rounding constant, no add of the
/// bias.
#[inline(always)]
fn pow2_from_rounded(t: f32) -> f32 {
    f32::from_bits(t.to_bits() << 23)
}

/// `ln(1 + u)` in f32 for `u ≥ 0` (any finite value up to `f32::MAX`), branch-free and
/// vectorisable; relative error ≲ 3·10⁻⁷ (checked against f64 in the tests). The softplus uses it.
///
/// `y = 1 + u` is split into `2ᵉ · m` with `m ∈ [√½, √2)` by bit operations; `ln m` is the
/// Cephes `logf` polynomial in `f = m − 1`; the rounding error of `1 + u` is added back as
/// `(u − (y − 1)) / y` (exact to first order), which keeps tiny `u` accurate (`ln(1 + u) ≈ u`).
#[inline(always)]
pub fn log1p(u: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let y = 1.0 + u;
    let correction = (u - (y - 1.0)) / y;
    // y = 2^e · m, m ∈ [1, 2) from the bits; then m ∈ [√½, √2) by halving when m ≥ √2
    let bits = y.to_bits();
    let e = ((bits >> 23) as i32 - 127) as f32;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > 2.0 * SQRT_HALF;
    let m = if big { 0.5 * m } else { m };
    let e = if big { e + 1.0 } else { e };
    let f = m - 1.0;
    let z = f * f;
    let p = 7.037_683_6e-2f32;
    let p = p.mul_add(f, -1.151_461e-1);
    let p = p.mul_add(f, 1.167_699_9e-1);
    let p = p.mul_add(f, -1.242_014_1e-1);
    let p = p.mul_add(f, 1.424_932_3e-1);
    let p = p.mul_add(f, -1.666_805_8e-1);
    let p = p.mul_add(f, 2.000_071_4e-1);
    let p = p.mul_add(f, -2.499_999_4e-1);
    let p = p.mul_add(f, 3.333_333e-1);
    let r = (p * f) * z;
    let r = e.mul_add(LN2_LO, r);
    let r = z.mul_add(-0.5, r);
    let ln_y = e.mul_add(LN2_HI, f + r);
    ln_y + correction
}

/// `out[i] = f(x[i])`.
#[inline]
pub fn map1(out: &mut [f32], x: &[f32], f: impl Fn(f32) -> f32 + Copy) {
    assert_eq!(out.len(), x.len());
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        unsafe { map1_avx2(out, x, f) };
        return;
    }
    map1_plain(out, x, f);
}

#[inline(always)]
fn map1_plain(out: &mut [f32], x: &[f32], f: impl Fn(f32) -> f32) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = f(v);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn map1_avx2(out: &mut [f32], x: &[f32], f: impl Fn(f32) -> f32) {
    map1_plain(out, x, f);
}

/// `x[i] = f(x[i])` in place.
#[inline]
pub fn map_in_place(x: &mut [f32], f: impl Fn(f32) -> f32 + Copy) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        unsafe { map_in_place_avx2(x, f) };
        return;
    }
    map_in_place_plain(x, f);
}

#[inline(always)]
fn map_in_place_plain(x: &mut [f32], f: impl Fn(f32) -> f32) {
    for v in x.iter_mut() {
        *v = f(*v);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn map_in_place_avx2(x: &mut [f32], f: impl Fn(f32) -> f32) {
    map_in_place_plain(x, f);
}

/// `dst[i] = f(a[i], b[i], c[i])`, or `dst[i] += …` when `accumulate`.
#[inline]
pub fn map3(
    dst: &mut [f32],
    accumulate: bool,
    a: &[f32],
    b: &[f32],
    c: &[f32],
    f: impl Fn(f32, f32, f32) -> f32 + Copy,
) {
    assert!(dst.len() == a.len() && a.len() == b.len() && b.len() == c.len());
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features the function is compiled for.
        unsafe { map3_avx2(dst, accumulate, a, b, c, f) };
        return;
    }
    map3_plain(dst, accumulate, a, b, c, f);
}

#[inline(always)]
fn map3_plain(
    dst: &mut [f32],
    accumulate: bool,
    a: &[f32],
    b: &[f32],
    c: &[f32],
    f: impl Fn(f32, f32, f32) -> f32,
) {
    if accumulate {
        for (((d, &x), &y), &z) in dst.iter_mut().zip(a).zip(b).zip(c) {
            *d += f(x, y, z);
        }
    } else {
        for (((d, &x), &y), &z) in dst.iter_mut().zip(a).zip(b).zip(c) {
            *d = f(x, y, z);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn map3_avx2(
    dst: &mut [f32],
    accumulate: bool,
    a: &[f32],
    b: &[f32],
    c: &[f32],
    f: impl Fn(f32, f32, f32) -> f32,
) {
    map3_plain(dst, accumulate, a, b, c, f);
}

/// Copies (or adds, when `accumulate`) a block of `width` columns between two row-major matrices
/// with the same number of rows: `dst[i, dst_start + j] (+)= src[i, src_start + j]` for every row
/// `i` and `j < width`; `dst` has rows of `dst_cols` floats and `src` of `src_cols`. The column
/// moves of `concat_cols`, `slice_cols` and their gradients: a plain loop per row (the tensors
/// are often 1–4 columns wide, where a generic strided iterator or a `memcpy` call per row costs
/// more than the copy).
pub fn copy_columns(
    (dst, dst_cols, dst_start): (&mut [f32], usize, usize),
    (src, src_cols, src_start): (&[f32], usize, usize),
    width: usize,
    accumulate: bool,
) {
    assert!(
        dst_start + width <= dst_cols && src_start + width <= src_cols,
        "copy_columns: column block out of range"
    );
    if width == 0 {
        return;
    }
    let rows = dst.len() / dst_cols;
    assert!(
        dst.len() == rows * dst_cols && src.len() == rows * src_cols,
        "copy_columns: row counts differ"
    );
    let pairs = dst
        .chunks_exact_mut(dst_cols)
        .zip(src.chunks_exact(src_cols))
        .map(|(d, s)| {
            (
                &mut d[dst_start..dst_start + width],
                &s[src_start..src_start + width],
            )
        });
    // fixed widths up to 8 move each row with a few register moves; wider blocks loop
    match (width, accumulate) {
        (1, false) => pairs.for_each(|(d, s)| d[0] = s[0]),
        (1, true) => pairs.for_each(|(d, s)| d[0] += s[0]),
        (2, _) => move_fixed::<2>(pairs, accumulate),
        (3, _) => move_fixed::<3>(pairs, accumulate),
        (4, _) => move_fixed::<4>(pairs, accumulate),
        (5, _) => move_fixed::<5>(pairs, accumulate),
        (6, _) => move_fixed::<6>(pairs, accumulate),
        (7, _) => move_fixed::<7>(pairs, accumulate),
        (8, _) => move_fixed::<8>(pairs, accumulate),
        (_, false) => pairs.for_each(|(d, s)| {
            for (d, &v) in d.iter_mut().zip(s) {
                *d = v;
            }
        }),
        (_, true) => pairs.for_each(|(d, s)| {
            for (d, &v) in d.iter_mut().zip(s) {
                *d += v;
            }
        }),
    }
}

/// The rows of [`copy_columns`] for a block of `W` columns known at compile time.
fn move_fixed<'a, const W: usize>(
    pairs: impl Iterator<Item = (&'a mut [f32], &'a [f32])>,
    accumulate: bool,
) {
    for (d, s) in pairs {
        let d: &mut [f32; W] = d.try_into().expect("a block of W columns");
        let s: &[f32; W] = s.try_into().expect("a block of W columns");
        if accumulate {
            d.iter_mut().zip(s).for_each(|(d, &v)| *d += v);
        } else {
            *d = *s;
        }
    }
}

/// `sums[j] += Σ_i rows[i·n + j]` (`n = sums.len()`), or `sums[j] = …` when `fresh`: the column
/// sums of a row-major block (a bias gradient), each one sequential over the rows in order.
///
/// For `n` a multiple of 8 up to 64 the running sums stay in registers across the rows (one
/// 8-lane accumulator per 8 columns) instead of going through memory once per row, a chain of
/// store-to-load round trips; the order of the additions, and so every bit, is the same.
pub fn column_sums_into(sums: &mut [f32], fresh: bool, rows: &[f32]) {
    let n = sums.len();
    assert!(
        n > 0 && rows.len().is_multiple_of(n),
        "column sums: rows of {n}"
    );
    if fresh {
        sums.fill(0.0);
    }
    #[cfg(target_arch = "x86_64")]
    if n.is_multiple_of(8)
        && n <= 64
        && std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("fma")
    {
        // SAFETY: the CPU supports the features the function is compiled for.
        unsafe {
            match n / 8 {
                1 => column_sums_avx2::<1>(sums, rows),
                2 => column_sums_avx2::<2>(sums, rows),
                3 => column_sums_avx2::<3>(sums, rows),
                4 => column_sums_avx2::<4>(sums, rows),
                5 => column_sums_avx2::<5>(sums, rows),
                6 => column_sums_avx2::<6>(sums, rows),
                7 => column_sums_avx2::<7>(sums, rows),
                _ => column_sums_avx2::<8>(sums, rows),
            }
        }
        return;
    }
    if n == 1 {
        // one column (an output layer's bias): the running sum in a register, not in memory
        sums[0] = rows.iter().fold(sums[0], |s, &e| s + e);
        return;
    }
    for row in rows.chunks_exact(n) {
        sums.iter_mut().zip(row).for_each(|(d, &e)| *d += e);
    }
}

/// [`column_sums_into`] for `n = 8·NB`, accumulators in registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn column_sums_avx2<const NB: usize>(sums: &mut [f32], rows: &[f32]) {
    let mut acc = [[0.0f32; 8]; NB];
    for (blk, a) in acc.iter_mut().enumerate() {
        a.copy_from_slice(&sums[blk * 8..blk * 8 + 8]);
    }
    for row in rows.chunks_exact(NB * 8) {
        for (blk, a) in acc.iter_mut().enumerate() {
            for (l, v) in a.iter_mut().enumerate() {
                *v += row[blk * 8 + l];
            }
        }
    }
    for (blk, a) in acc.iter().enumerate() {
        sums[blk * 8..blk * 8 + 8].copy_from_slice(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elu_matches_std() {
        for i in -2000..2000 {
            let x = i as f32 * 0.01;
            let want = if x > 0.0 { x } else { x.exp_m1() };
            assert!(
                (elu(x) - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "elu({x})"
            );
        }
        assert_eq!(elu(-200.0), -1.0);
    }

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (a, b) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((a - b) / b).abs());
            x += 0.0137;
        }
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp(-200.0), exp(-87.3));
        assert!(exp(100.0).is_finite() && exp(100.0) > 1e38);
        assert!(exp(0.0) == 1.0);
    }

    #[test]
    fn expm1_neg_matches_f64_to_two_ulp() {
        let mut worst = 0.0f64;
        let mut check = |x: f32| {
            let (a, b) = (expm1_neg(x) as f64, (x as f64).exp_m1());
            if b != 0.0 {
                worst = worst.max(((a - b) / b).abs());
            } else {
                assert_eq!(a, 0.0);
            }
        };
        let mut x = -87.0f32;
        while x < 0.0 {
            check(x);
            x += 0.000_731;
        }
        for x in [
            -1e-30f32, -1e-8, -1e-4, -0.346, -0.347, -0.3466, -0.35, -0.693, -1.0, 0.0,
        ] {
            check(x);
        }
        assert!(worst < 1.2e-7, "worst relative error {worst}");
        assert_eq!(expm1_neg(-200.0), -1.0);
        assert_eq!(expm1_neg(3.0), 0.0);
        assert_eq!(expm1_neg(-1e-30), -1e-30);
        assert!(expm1_neg(f32::NAN).is_nan());
    }

    /// Asserts that the 8-lane `f8` gives the bits of the scalar `f` on every value of `x` and on
    /// the special values (zeros, subnormals, extremes, infinities, NaN), 8 lanes at a time (NaN
    /// matches any NaN). Skipped without AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    fn assert_lanes_have_the_scalar_bits(
        name: &str,
        mut x: Vec<f32>,
        f8: unsafe fn(std::arch::x86_64::__m256) -> std::arch::x86_64::__m256,
        f: fn(f32) -> f32,
    ) {
        use std::arch::x86_64::*;
        if !(std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")) {
            return;
        }
        x.extend([0.0, -0.0, 1e-40, -1e-40, f32::MIN_POSITIVE, 3.0e38]);
        x.extend([
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::MAX,
            f32::MIN,
        ]);
        while !x.len().is_multiple_of(8) {
            x.push(1.0);
        }
        for lanes in x.chunks_exact(8) {
            let mut got = [0.0f32; 8];
            // SAFETY: AVX2 and FMA were detected above; the pointers address 8 floats each.
            unsafe { _mm256_storeu_ps(got.as_mut_ptr(), f8(_mm256_loadu_ps(lanes.as_ptr()))) };
            for (&v, &y) in lanes.iter().zip(&got) {
                let want = f(v);
                assert!(
                    y.to_bits() == want.to_bits() || (y.is_nan() && want.is_nan()),
                    "{name}8({v:e}) = {y:e}, {name} = {want:e}"
                );
            }
        }
    }

    /// The 8-lane ELU of the product kernels has the scalar ELU's bits everywhere: a dense grid
    /// over the whole negative range, positives, around the clamp at −87.3, and the special values.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn elu8_has_the_bits_of_elu() {
        let mut x: Vec<f32> = (0..1_000_000).map(|i| -100.0 + i as f32 * 1.1e-4).collect();
        x.extend([-87.3, -87.31, 88.0]);
        assert_lanes_have_the_scalar_bits("elu", x, elu8, elu);
    }

    /// The 8-lane ELU derivative has the scalar one's bits on a dense grid over ELU's range
    /// (−1, ∞), at its edges and at the special values.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn elu_derivative8_has_the_bits_of_elu_derivative() {
        let mut y: Vec<f32> = (0..1_000_000).map(|i| -1.0 + i as f32 * 1.1e-5).collect();
        y.extend([1e-8, -1e-8, -1.0, -0.999_999_9]);
        assert_lanes_have_the_scalar_bits("elu_derivative", y, elu_derivative8, elu_derivative);
        assert_eq!(elu_derivative(2.0), 1.0);
        assert_eq!(elu_derivative(-0.25), 0.75);
    }

    /// Folding `max(x, 0)` into `expm1_neg`'s last multiply-add changes no bit: [`elu`] equals
    /// `max(x, 0) + expm1_neg(x)` on the grid of [`elu8_has_the_bits_of_elu`] and the special
    /// values (NaN stays NaN).
    #[test]
    fn elu_is_max_plus_expm1_neg_to_the_bit() {
        let mut x: Vec<f32> = (0..1_000_000).map(|i| -100.0 + i as f32 * 1.1e-4).collect();
        x.extend([-87.3, -87.31, 88.0, 0.0, -0.0, 1e-40, -1e-40, 1e-45, -1e-45]);
        x.extend([f32::INFINITY, f32::NEG_INFINITY, f32::MAX, f32::MIN, 3.0e38]);
        for &v in &x {
            let want = v.max(0.0) + expm1_neg(v);
            assert_eq!(elu(v).to_bits(), want.to_bits(), "elu({v:e})");
        }
        assert!(elu(f32::NAN).is_nan() && elu(-f32::NAN).is_nan());
    }

    #[test]
    fn pow2_from_rounded_is_two_to_the_n_for_every_exponent() {
        for n in -126i32..=127 {
            let t = ROUND_BIASED + n as f32;
            assert_eq!(pow2_from_rounded(t), 2f32.powi(n), "n = {n}");
        }
    }

    #[test]
    fn log1p_matches_f64_over_the_softplus_range() {
        let mut worst = 0.0f64;
        let mut check = |u: f32| {
            let (a, b) = (log1p(u) as f64, (u as f64).ln_1p());
            worst = worst.max(((a - b) / b).abs());
        };
        // u = exp(x) for the softplus inputs x ∈ [−100, 20], plus the tiny and huge ends
        let mut x = -100.0f32;
        while x <= 20.0 {
            check(x.exp());
            x += 0.0071;
        }
        for u in [
            1e-30f32,
            1e-8,
            5.9e-8,
            0.25,
            0.414_213_56,
            0.5,
            1.0,
            3.0,
            1e10,
            3e38,
        ] {
            check(u);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(log1p(0.0), 0.0);
    }

    #[test]
    fn column_sums_add_the_rows_in_order() {
        for n in [1usize, 3, 8, 16, 24, 32, 40, 64, 72] {
            let rows: Vec<f32> = (0..37 * n)
                .map(|i| ((i * 7919) % 1000) as f32 * 0.37 - 150.0)
                .collect();
            let start: Vec<f32> = (0..n).map(|j| j as f32 * 0.5).collect();
            for fresh in [true, false] {
                let mut want = if fresh { vec![0.0; n] } else { start.clone() };
                for row in rows.chunks_exact(n) {
                    for (w, &v) in want.iter_mut().zip(row) {
                        *w += v;
                    }
                }
                let mut got = if fresh {
                    vec![f32::NAN; n]
                } else {
                    start.clone()
                };
                column_sums_into(&mut got, fresh, &rows);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "n {n}, fresh {fresh}");
            }
        }
    }

    #[test]
    fn column_blocks_copy_and_add_the_right_elements() {
        let (rows, dst_cols, src_cols) = (5, 7, 4);
        let src: Vec<f32> = (0..rows * src_cols).map(|i| i as f32).collect();
        for width in 0..=3 {
            for accumulate in [false, true] {
                let mut dst: Vec<f32> = (0..rows * dst_cols).map(|i| -(i as f32)).collect();
                let before = dst.clone();
                copy_columns(
                    (&mut dst, dst_cols, 3),
                    (&src, src_cols, 1),
                    width,
                    accumulate,
                );
                for i in 0..rows {
                    for j in 0..dst_cols {
                        let old = before[i * dst_cols + j];
                        let want = if (3..3 + width).contains(&j) {
                            let v = src[i * src_cols + 1 + j - 3];
                            if accumulate { old + v } else { v }
                        } else {
                            old
                        };
                        assert_eq!(
                            dst[i * dst_cols + j],
                            want,
                            "w {width} acc {accumulate} ({i}, {j})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn kernels_match_scalar_loops() {
        let x: Vec<f32> = (0..37).map(|i| i as f32 * 0.3 - 5.0).collect();
        let mut out = vec![0.0; 37];
        map1(&mut out, &x, |v| v * 2.0 + 1.0);
        assert!(out.iter().zip(&x).all(|(o, v)| *o == v * 2.0 + 1.0));
        let mut d = vec![1.0; 37];
        map3(&mut d, true, &x, &x, &x, |a, b, c| a + b - c);
        assert!(d.iter().zip(&x).all(|(o, v)| *o == 1.0 + v));
    }
}
