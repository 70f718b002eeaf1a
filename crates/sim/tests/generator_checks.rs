//! Our scenario generator against `data/reference_fixtures/synthetic_generator_checks.json`, the
//! reference generator's output for every synthetic setting. Our random streams are our own (PCG,
//! not numpy's MT19937), so the traces are not compared value by value; what must match is
//! everything the streams are drawn *from* and the distributions they produce:
//! * per-store costs, lead times (with the edge pattern), demand means and standard deviations,
//!   exactly (to f32 rounding);
//! * the demand distribution: integral for Poisson, continuous for normal, clipped at 0 iff the
//!   reference clips, with the reference's mean, variance and — for the multivariate normal
//!   settings — covariance matrix (`mvn_cov`), up to sampling error;
//! * the initial pipelines: the reference's number of slots per store; every value of ours in
//!   `[0, mean)` with average `mean / 2` (`U(0, 1)·mean`). The reference multiplies by the
//!   *empirical* mean of the demand it generated (spec §3.4; 10 samples × 100 periods here), so its
//!   sample 0 is checked against `[0, mean + 5 s.e.)` of that empirical mean.

use hdpo_sim::config::Split;
use hdpo_sim::scenario::ScenarioGenerator;
use hdpo_sim::settings::setting;
use serde_json::Value;

const CHECKS: &str =
    include_str!("../../../data/reference_fixtures/synthetic_generator_checks.json");

/// Our name of each reference setting.
const NAMES: [(&str, &str); 6] = [
    ("one_store_lost", "one_store_lost"),
    ("one_store_backlogged", "one_store_backlogged"),
    ("serial_system", "serial_system"),
    ("transshipment_backlogged", "transshipment_backlogged"),
    ("one_warehouse_lost_demand", "one_warehouse_lost"),
    ("many_warehouses_lost_demand", "many_warehouses_lost"),
];

fn numbers(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(numbers).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("not a number: {other}"),
    }
}

/// Mean and variance of `max(X, 0)` for `X ~ N(μ, σ²)`: `E = μΦ(z) + σφ(z)`,
/// `E[Y²] = (μ² + σ²)Φ(z) + μσφ(z)` with `z = μ/σ`.
fn clipped_normal_moments(mu: f64, sigma: f64) -> (f64, f64) {
    let z = mu / sigma;
    let phi = (-z * z / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let cdf = 0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2));
    let m = mu * cdf + sigma * phi;
    let m2 = (mu * mu + sigma * sigma) * cdf + mu * sigma * phi;
    (m, m2 - m * m)
}

/// The error function (Abramowitz & Stegun 7.1.26, absolute error < 1.5e-7).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x >= 0.0 { y } else { -y }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn generator_matches_the_reference_generator_checks() {
    let root: Value = serde_json::from_str(CHECKS).unwrap();
    let settings = root["settings"].as_object().unwrap();
    assert_eq!(
        settings.len(),
        NAMES.len(),
        "every reference setting is mapped"
    );
    for (reference_name, ours) in NAMES {
        let r = &settings[reference_name];
        let params = &r["demand_params_after_sampling"];
        let setting = setting(ours).unwrap();
        let n_samples = 2000;
        let periods = 50;
        let sc = ScenarioGenerator::new(&setting, Split::Train)
            .unwrap()
            .generate(0..n_samples, periods);
        let st = &sc.statics;
        let s = st.n_stores;
        let tag = format!("{reference_name} (ours: {ours})");

        // per-store parameters of sample 0
        let underage = numbers(&r["underage_costs_sample0"]);
        let holding = numbers(&r["holding_costs_sample0"]);
        assert_eq!(underage.len(), s, "{tag}: stores");
        for i in 0..s {
            assert!(
                close(f64::from(st.underage_cost[i]), underage[i], 1e-6),
                "{tag}: p[{i}]"
            );
            assert!(
                close(f64::from(st.holding_cost[i]), holding[i], 1e-6),
                "{tag}: h[{i}]"
            );
        }
        let lead = r["lead_times_sample0"].as_array().unwrap();
        for (i, row) in lead.iter().enumerate() {
            let row = numbers(row);
            assert_eq!(row.len(), st.n_sources(), "{tag}: sources of store {i}");
            for (k, &l) in row.iter().enumerate() {
                assert_eq!(
                    f64::from(st.lead_time[[i, k]]),
                    l,
                    "{tag}: lead time [{i}, {k}]"
                );
            }
        }
        let mean: Vec<f64> = match &params["mean"] {
            Value::Array(_) => numbers(&params["mean"]),
            v => vec![v.as_f64().unwrap(); s],
        };
        let std: Option<Vec<f64>> = params.get("std").map(|v| match v {
            Value::Array(_) => numbers(v),
            v => vec![v.as_f64().unwrap(); s],
        });
        for i in 0..s {
            assert!(
                close(f64::from(st.mean[i]), mean[i], 1e-6),
                "{tag}: mean[{i}]"
            );
            if let Some(std) = &std {
                assert!(close(f64::from(st.std[i]), std[i], 1e-6), "{tag}: std[{i}]");
            }
        }

        // the demand distribution, per store over all samples and periods
        let poisson = params["distribution"] == "poisson";
        let clip = params["clip"].as_bool().unwrap();
        let demand = &sc.demand;
        let n = (n_samples * periods) as f64;
        let store_values = |i: usize| {
            (0..n_samples)
                .flat_map(move |b| demand.row(b * s + i).to_vec())
                .map(f64::from)
                .collect::<Vec<f64>>()
        };
        let columns: Vec<Vec<f64>> = (0..s).map(store_values).collect();
        let means: Vec<f64> = columns.iter().map(|c| c.iter().sum::<f64>() / n).collect();
        let all_integral = demand.iter().all(|d| d.fract() == 0.0);
        assert_eq!(all_integral, poisson, "{tag}: integral iff Poisson");
        let reference_demands = numbers(&r["demands_sample0_first10"]);
        assert_eq!(
            reference_demands.iter().all(|d| d.fract() == 0.0),
            poisson,
            "{tag}: the reference's own sample"
        );
        let negative = demand.iter().any(|&d| d < 0.0);
        assert_eq!(negative, !clip, "{tag}: negative demand iff not clipped");
        let mut expected_sd = vec![0.0; s];
        let mut expected_mean = vec![0.0; s];
        for i in 0..s {
            let var = columns[i]
                .iter()
                .map(|d| (d - means[i]).powi(2))
                .sum::<f64>()
                / n;
            let (mu, sigma2) = if poisson {
                (mean[i], mean[i])
            } else {
                let sd = std.as_ref().unwrap()[i];
                if clip {
                    clipped_normal_moments(mean[i], sd)
                } else {
                    (mean[i], sd * sd)
                }
            };
            expected_sd[i] = sigma2.sqrt();
            expected_mean[i] = mu;
            // 5 standard errors of a mean and of a variance over n independent draws (the
            // variance's s.e. ≈ σ²·sqrt(2/n) for a normal, sqrt((μ₄ − σ⁴)/n) ≤ that × 1.7 for
            // Poisson(5))
            let n_sqrt = n.sqrt();
            assert!(
                (means[i] - mu).abs() < 5.0 * sigma2.sqrt() / n_sqrt,
                "{tag} store {i}: mean {} vs {mu}",
                means[i]
            );
            assert!(
                (var - sigma2).abs() < 5.0 * 1.7 * sigma2 * (2.0 / n).sqrt(),
                "{tag} store {i}: variance {var} vs {sigma2}"
            );
        }
        if let Some(cov) = r.get("mvn_cov") {
            let cov: Vec<Vec<f64>> = cov.as_array().unwrap().iter().map(numbers).collect();
            // the factor numpy applies, F = sqrt(s)[:, None]·Vᵀ, satisfies Fᵀ·F = cov: a check that
            // the file's two matrices are the covariance we read them as
            let factor: Vec<Vec<f64>> = r["mvn_factor_sqrt_s_times_v"]
                .as_array()
                .unwrap()
                .iter()
                .map(numbers)
                .collect();
            for i in 0..s {
                for j in 0..s {
                    let ftf: f64 = (0..s).map(|k| factor[k][i] * factor[k][j]).sum();
                    assert!((ftf - cov[i][j]).abs() < 1e-9, "{tag}: FᵀF [{i}, {j}]");
                    // cov = ρ·σᵢσⱼ off the diagonal, σᵢ² on it
                    let sd = std.as_ref().unwrap();
                    let rho = if i == j {
                        1.0
                    } else {
                        params["correlation"].as_f64().unwrap()
                    };
                    assert!(
                        close(cov[i][j], rho * sd[i] * sd[j], 1e-9),
                        "{tag}: cov [{i}, {j}]"
                    );
                    let ours = columns[i]
                        .iter()
                        .zip(&columns[j])
                        .map(|(a, b)| (a - means[i]) * (b - means[j]))
                        .sum::<f64>()
                        / n;
                    // 5 sampling s.e. of a covariance, sqrt((σᵢ²σⱼ² + cov²)/n); with clipping at 0
                    // the diagonal is the clipped normal's variance (checked above) and the
                    // off-diagonal shrinks by at most a few % of σᵢσⱼ (the diagonal's shrinkage
                    // here is ≤ 3.5 %)
                    let (si, sj) = (sd[i], sd[j]);
                    let se = ((si * si * sj * sj + cov[i][j].powi(2)) / n).sqrt();
                    let (target, tol) = if i == j && clip {
                        (expected_sd[i].powi(2), 5.0 * se)
                    } else if clip {
                        (cov[i][j], 5.0 * se + 0.05 * si * sj)
                    } else {
                        (cov[i][j], 5.0 * se)
                    };
                    assert!(
                        (ours - target).abs() < tol,
                        "{tag}: covariance [{i}, {j}] ours {ours}, expected {target} (reference {})",
                        cov[i][j]
                    );
                }
            }
        }

        // initial pipelines
        let initial = numbers(&r["initial_inventories_sample0"]);
        let slots = initial.len() / s;
        assert_eq!(slots * s, initial.len());
        let reference_rows = r["initial_inventories_sample0"].as_array().unwrap();
        let draws =
            r["num_samples_generated"].as_f64().unwrap() * r["periods_generated"].as_f64().unwrap();
        for (i, row) in reference_rows.iter().enumerate() {
            let bound = expected_mean[i] + 5.0 * expected_sd[i] / draws.sqrt();
            assert!(
                numbers(row).iter().all(|&x| x >= 0.0 && x < bound),
                "{tag}: the reference's initial pipeline of store {i} is within [0, {bound})"
            );
        }
        assert_eq!(sc.initial.store.ncols(), slots, "{tag}: pipeline slots");
        for (i, &mean) in mean.iter().enumerate() {
            let values: Vec<f64> = (0..n_samples)
                .flat_map(|b| sc.initial.store.row(b * s + i).to_vec())
                .map(f64::from)
                .collect();
            assert!(
                values.iter().all(|&x| x >= 0.0 && x < mean * (1.0 + 1e-6)),
                "{tag}"
            );
            let m = values.iter().sum::<f64>() / values.len() as f64;
            // U(0, 1)·mean: mean/2 with s.e. mean/sqrt(12·n) < 0.03
            assert!(
                (m - mean / 2.0).abs() < 0.1,
                "{tag} store {i}: initial mean {m}"
            );
        }
    }
}
