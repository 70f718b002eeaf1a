//! Gradient checks against central finite differences.
//!
//! The function under test maps input tensors to an output tensor on a tape. It is reduced to a
//! scalar with fixed random weights, `L = Σ wᵢⱼ · yᵢⱼ`, so that every output element takes part.
//! [`check`] perturbs every input element in turn (small shapes); [`check_directional`] perturbs all
//! inputs at once along random directions (large shapes).
//!
//! Tolerances, and why they are what they are (f32 arithmetic, `L` summed in f64):
//! * the step is `h = eps · max(1, |x|)` with `eps = 1e-2` by default; the central difference then
//!   has a truncation error of order `h² · |f'''| / 6`, about 1e-5 relative for smooth ops at unit
//!   scale;
//! * each forward value carries a rounding error of about one f32 ulp (≈ 6e-8 relative), so the
//!   difference quotient has a noise of about `4 · ε_f32 · Σ|wᵢⱼ yᵢⱼ| / (2h)`; that term is added to
//!   the absolute tolerance automatically;
//! * a wrong backward rule is off by O(1) relative, far above `rtol = 5e-3`.
//!
//! Inputs must stay away from kinks (relu at 0, clamp bounds, min/max ties) by more than `h`: at a
//! kink the two one-sided derivatives differ and no finite difference can agree with both.

use crate::tape::{Tape, Var};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use std::fmt;

/// Settings of a gradient check.
#[derive(Clone, Debug)]
pub struct GradcheckOptions {
    /// Relative finite-difference step (`h = eps · max(1, |x|)`).
    pub eps: f32,
    /// Absolute tolerance (before the automatic rounding-noise term).
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
    /// Seed of the output weights and directions.
    pub seed: u64,
}

impl Default for GradcheckOptions {
    fn default() -> Self {
        GradcheckOptions {
            eps: 1e-2,
            atol: 2e-3,
            rtol: 5e-3,
            seed: 7,
        }
    }
}

/// The element where analytic and numeric gradients disagree most.
#[derive(Clone, Debug, PartialEq)]
pub struct Worst {
    /// Which input (or direction, for directional checks).
    pub input: usize,
    /// Row of the element (0 for directional checks).
    pub row: usize,
    /// Column of the element (0 for directional checks).
    pub col: usize,
    /// Gradient from the tape.
    pub analytic: f64,
    /// Gradient from finite differences.
    pub numeric: f64,
}

/// Outcome of a gradient check.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckReport {
    /// Number of compared values.
    pub checked: usize,
    /// Largest |analytic − numeric|.
    pub max_abs_err: f64,
    /// Largest error divided by its tolerance (≤ 1 means every element passed).
    pub worst_ratio: f64,
    /// The element with the largest ratio.
    pub worst: Option<Worst>,
    /// True when every element is within tolerance.
    pub passed: bool,
}

impl fmt::Display for GradcheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gradcheck {}: {} values, max |err| {:.3e}, worst err/tol {:.3}",
            if self.passed { "passed" } else { "FAILED" },
            self.checked,
            self.max_abs_err,
            self.worst_ratio
        )?;
        if let Some(w) = &self.worst {
            write!(
                f,
                "; worst at input {} [{}, {}]: analytic {:.6e}, numeric {:.6e}",
                w.input, w.row, w.col, w.analytic, w.numeric
            )?;
        }
        Ok(())
    }
}

struct Accumulator {
    opts: GradcheckOptions,
    report: GradcheckReport,
}

impl Accumulator {
    fn new(opts: &GradcheckOptions) -> Self {
        Accumulator {
            opts: opts.clone(),
            report: GradcheckReport {
                checked: 0,
                max_abs_err: 0.0,
                worst_ratio: 0.0,
                worst: None,
                passed: true,
            },
        }
    }

    fn compare(&mut self, analytic: f64, numeric: f64, noise: f64, at: (usize, usize, usize)) {
        let err = (analytic - numeric).abs();
        let tol = self.opts.atol + noise + self.opts.rtol * analytic.abs().max(numeric.abs());
        let ratio = if err.is_finite() {
            err / tol
        } else {
            f64::INFINITY
        };
        let r = &mut self.report;
        r.checked += 1;
        r.max_abs_err = r.max_abs_err.max(err);
        if ratio > r.worst_ratio || r.worst.is_none() {
            r.worst_ratio = ratio;
            r.worst = Some(Worst {
                input: at.0,
                row: at.1,
                col: at.2,
                analytic,
                numeric,
            });
        }
        if ratio.is_nan() || ratio > 1.0 {
            r.passed = false;
        }
    }
}

/// Output weights `w` (fixed by the seed), the analytic input gradients of `L = Σ w·y`, and `L`.
fn analytic<F>(inputs: &[Array2<f32>], f: &F, seed: u64) -> (Array2<f32>, Vec<Array2<f32>>)
where
    F: Fn(&mut Tape, &[Var]) -> Var,
{
    let mut tape = Tape::new();
    let vars: Vec<Var> = inputs.iter().map(|x| tape.variable(x.clone())).collect();
    let y = f(&mut tape, &vars);
    let (r, c) = tape.shape(y);
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let w = Array2::from_shape_simple_fn((r, c), || {
        let m: f32 = rng.random_range(0.5..1.5);
        if rng.random::<bool>() { m } else { -m }
    });
    let wv = tape.constant(w.clone());
    let prod = tape.mul(y, wv);
    let loss = tape.sum_all(prod);
    let mut none = crate::ParamStore::new().zero_grads();
    tape.backward(loss, &mut none);
    let grads = vars
        .iter()
        .zip(inputs)
        .map(|(&v, x)| {
            tape.grad(v)
                .cloned()
                .unwrap_or_else(|| Array2::zeros(x.raw_dim()))
        })
        .collect();
    (w, grads)
}

/// `L = Σ w·y` evaluated in f64 on a no-grad tape, and `Σ |w·y|` (for the noise estimate).
fn loss_at<F>(inputs: &[Array2<f32>], f: &F, w: &Array2<f32>, tape: &mut Tape) -> (f64, f64)
where
    F: Fn(&mut Tape, &[Var]) -> Var,
{
    tape.reset();
    let vars: Vec<Var> = inputs.iter().map(|x| tape.constant(x.clone())).collect();
    let y = f(tape, &vars);
    let y = tape.value(y);
    let mut total = 0.0;
    let mut magnitude = 0.0;
    for (&a, &b) in y.iter().zip(w.iter()) {
        total += a as f64 * b as f64;
        magnitude += (a as f64 * b as f64).abs();
    }
    (total, magnitude)
}

/// Element-by-element central differences for every input element (use on small shapes).
pub fn check<F>(inputs: &[Array2<f32>], f: F, opts: &GradcheckOptions) -> GradcheckReport
where
    F: Fn(&mut Tape, &[Var]) -> Var,
{
    let (w, grads) = analytic(inputs, &f, opts.seed);
    let mut acc = Accumulator::new(opts);
    let mut tape = Tape::no_grad();
    let mut xs: Vec<Array2<f32>> = inputs.to_vec();
    for k in 0..inputs.len() {
        for ((row, col), &x0) in inputs[k].indexed_iter() {
            let h = opts.eps * x0.abs().max(1.0);
            xs[k][[row, col]] = x0 + h;
            let (plus, mag) = loss_at(&xs, &f, &w, &mut tape);
            xs[k][[row, col]] = x0 - h;
            let (minus, _) = loss_at(&xs, &f, &w, &mut tape);
            xs[k][[row, col]] = x0;
            // the step actually taken in f32
            let h_eff = ((x0 + h) as f64) - ((x0 - h) as f64);
            let numeric = (plus - minus) / h_eff;
            let noise = 4.0 * f32::EPSILON as f64 * mag / h_eff;
            acc.compare(grads[k][[row, col]] as f64, numeric, noise, (k, row, col));
        }
    }
    acc.report
}

/// Random directional derivatives: for each of `n_directions` random directions `d` (one per input
/// tensor, standard normal entries), compares `Σ ∇L·d` with `(L(x + h d) − L(x − h d)) / 2h`.
pub fn check_directional<F>(
    inputs: &[Array2<f32>],
    f: F,
    n_directions: usize,
    opts: &GradcheckOptions,
) -> GradcheckReport
where
    F: Fn(&mut Tape, &[Var]) -> Var,
{
    let (w, grads) = analytic(inputs, &f, opts.seed);
    let mut acc = Accumulator::new(opts);
    let mut tape = Tape::no_grad();
    let mut rng = Pcg64Mcg::seed_from_u64(opts.seed ^ 0x9e37_79b9);
    let scale = inputs
        .iter()
        .flat_map(|x| x.iter())
        .fold(1.0f32, |m, &v| m.max(v.abs()));
    let h = opts.eps * scale;
    for d in 0..n_directions {
        let dirs: Vec<Array2<f32>> = inputs
            .iter()
            .map(|x| {
                let n = (x.len() as f32).sqrt().max(1.0);
                Array2::from_shape_simple_fn(x.raw_dim(), || {
                    let u: f32 = rng.random_range(-1.0..1.0);
                    u / n
                })
            })
            .collect();
        let shifted = |sign: f32| -> Vec<Array2<f32>> {
            inputs
                .iter()
                .zip(&dirs)
                .map(|(x, d)| x + &(d * (sign * h)))
                .collect()
        };
        let (plus, mag) = loss_at(&shifted(1.0), &f, &w, &mut tape);
        let (minus, _) = loss_at(&shifted(-1.0), &f, &w, &mut tape);
        let numeric = (plus - minus) / (2.0 * h as f64);
        let analytic: f64 = grads
            .iter()
            .zip(&dirs)
            .map(|(g, d)| {
                g.iter()
                    .zip(d.iter())
                    .map(|(&a, &b)| a as f64 * b as f64)
                    .sum::<f64>()
            })
            .sum();
        let noise = 4.0 * f32::EPSILON as f64 * mag / (2.0 * h as f64);
        acc.compare(analytic, numeric, noise, (d, 0, 0));
    }
    acc.report
}
