//! Size limits and parameter counts of policy specs, checked before a network is built: a
//! zero-width or absurdly wide layer, an absurd number of layers or message-passing rounds, or a
//! non-finite initial value is refused with the field and the allowed range (never a panic in the
//! matrix kernels), and [`PolicySpec::parameter_count`] tells the trainer how large a network is
//! *before* it allocates it, so that one that cannot fit in memory is refused with an estimate.
//!
//! Kept apart from `spec.rs` and the network builders: the checks match every variant with `..`,
//! so new hyper-parameters need no change here unless they need a limit of their own.

use crate::error::PolicyError;
use crate::observation::NetworkShape;
use crate::spec::PolicySpec;

/// Widest hidden layer (and GNN `width`, symmetry-aware `context_size`).
pub const MAX_WIDTH: usize = 65_536;
/// Most hidden layers of one MLP.
pub const MAX_LAYERS: usize = 64;
/// Most GNN message-passing rounds.
pub const MAX_ROUNDS: usize = 1_000;

fn invalid(spec: &PolicySpec, field: &'static str, message: String) -> PolicyError {
    PolicyError::Invalid {
        policy: spec.kind(),
        field,
        message,
    }
}

/// Hidden widths: at most [`MAX_LAYERS`] layers, each `1 ≤ width ≤` [`MAX_WIDTH`].
fn check_widths(
    spec: &PolicySpec,
    field: &'static str,
    widths: &[usize],
) -> Result<(), PolicyError> {
    if widths.len() > MAX_LAYERS {
        return Err(invalid(
            spec,
            field,
            format!(
                "has {} layers; allowed: at most {MAX_LAYERS} hidden layers",
                widths.len()
            ),
        ));
    }
    if let Some(&w) = widths.iter().find(|&&w| w == 0 || w > MAX_WIDTH) {
        return Err(invalid(
            spec,
            field,
            format!("is {widths:?}, with a layer of width {w}; allowed: widths 1 … {MAX_WIDTH}"),
        ));
    }
    Ok(())
}

/// A width-like count: `1 ≤ value ≤ max`.
fn check_count(
    spec: &PolicySpec,
    field: &'static str,
    value: usize,
    max: usize,
) -> Result<(), PolicyError> {
    if value == 0 || value > max {
        return Err(invalid(
            spec,
            field,
            format!("is {value}; allowed: an integer 1 … {max}"),
        ));
    }
    Ok(())
}

/// An initial level, cap or scale: finite and > 0.
fn check_positive(spec: &PolicySpec, field: &'static str, value: f32) -> Result<(), PolicyError> {
    if !(value.is_finite() && value > 0.0) {
        return Err(invalid(
            spec,
            field,
            format!("is {value}; allowed: a finite number > 0"),
        ));
    }
    Ok(())
}

/// Parameters of a dense MLP `input → hidden… → output` (weights and biases).
fn mlp_parameters(input: usize, hidden: &[usize], output: usize) -> f64 {
    let mut widths = vec![input as f64];
    widths.extend(hidden.iter().map(|&h| h as f64));
    widths.push(output as f64);
    widths.windows(2).map(|w| w[0] * w[1] + w[1]).sum()
}

impl PolicySpec {
    /// Checks the sizes and initial values of the spec: every hidden width `1 …` [`MAX_WIDTH`], at
    /// most [`MAX_LAYERS`] hidden layers, GNN `rounds` `1 …` [`MAX_ROUNDS`], finite positive
    /// initial levels, caps and scales. The error names the field and the allowed range. What
    /// depends on the network (which policy runs where) is checked when the policy is built.
    pub fn validate(&self) -> Result<(), PolicyError> {
        match self {
            PolicySpec::VanillaOneStore {
                hidden,
                input_scale,
                initial_level,
                ..
            } => {
                check_widths(self, "hidden", hidden)?;
                check_positive(self, "input_scale", *input_scale)?;
                if !(initial_level.is_finite() && *initial_level >= 0.0) {
                    return Err(invalid(
                        self,
                        "initial_level",
                        format!("is {initial_level}; allowed: a finite number ≥ 0"),
                    ));
                }
                Ok(())
            }
            PolicySpec::BaseStock { initial_level, .. } => {
                check_positive(self, "initial_level", *initial_level)
            }
            PolicySpec::CappedBaseStock {
                initial_level,
                initial_cap,
                ..
            } => {
                check_positive(self, "initial_level", *initial_level)?;
                check_positive(self, "initial_cap", *initial_cap)
            }
            PolicySpec::EchelonStock {
                initial_increments, ..
            } => {
                for &x in initial_increments.iter().flatten() {
                    check_positive(self, "initial_increments", x)?;
                }
                if let Some(v) = initial_increments
                    && v.len() > hdpo_sim::config::limits::MAX_ECHELONS + 2
                {
                    return Err(invalid(
                        self,
                        "initial_increments",
                        format!(
                            "has {} values; allowed: one per location of the chain",
                            v.len()
                        ),
                    ));
                }
                Ok(())
            }
            PolicySpec::VanillaSerial { hidden, .. }
            | PolicySpec::VanillaWarehouse { hidden, .. }
            | PolicySpec::DataDriven { hidden, .. } => check_widths(self, "hidden", hidden),
            PolicySpec::SymmetryAware {
                context_hidden,
                context_size,
                store_hidden,
                warehouse_hidden,
                ..
            } => {
                check_widths(self, "context_hidden", context_hidden)?;
                check_count(self, "context_size", *context_size, MAX_WIDTH)?;
                check_widths(self, "store_hidden", store_hidden)?;
                check_widths(self, "warehouse_hidden", warehouse_hidden)
            }
            PolicySpec::Gnn {
                width,
                hidden,
                rounds,
                output_bias,
                ..
            } => {
                check_count(self, "width", *width, MAX_WIDTH)?;
                check_widths(self, "hidden", hidden)?;
                if let Some(rounds) = rounds {
                    check_count(self, "rounds", *rounds, MAX_ROUNDS)?;
                }
                if !output_bias.is_finite() {
                    return Err(invalid(
                        self,
                        "output_bias",
                        format!("is {output_bias}; allowed: a finite number"),
                    ));
                }
                Ok(())
            }
            PolicySpec::JustInTime { .. } => Ok(()),
        }
    }

    /// The number of trainable scalars the spec has when built for `shape`, computed without
    /// building it (exact for the MLP policies and the heuristics; for the GNN and the
    /// symmetry-aware net the sum of their layers' sizes). Call [`PolicySpec::validate`] first.
    pub fn parameter_count(&self, shape: &NetworkShape) -> f64 {
        let (s, w, e) = (shape.n_stores, shape.n_warehouses, shape.n_echelons);
        let (ls, lw, le) = (
            shape.store_pipeline,
            shape.warehouse_pipeline,
            shape.echelon_pipeline,
        );
        match self {
            PolicySpec::VanillaOneStore { hidden, .. } => mlp_parameters(s * ls, hidden, s),
            PolicySpec::BaseStock { .. } => 1.0,
            PolicySpec::CappedBaseStock { .. } => 2.0,
            PolicySpec::EchelonStock { .. } => (e + 2) as f64,
            PolicySpec::VanillaSerial { hidden, .. } => {
                mlp_parameters(ls + lw + e * le, hidden, e + 2)
            }
            PolicySpec::VanillaWarehouse { hidden, .. } => {
                mlp_parameters(s * ls + w * lw, hidden, s * shape.n_sources() + w)
            }
            PolicySpec::DataDriven { hidden, .. } => {
                let m = shape.n_sources();
                let input = s * ls
                    + w * lw
                    + s * shape.past_demands
                    + 2 * s
                    + s * shape.calendar_features
                    + s * m;
                let output = if w == 0 { s } else { w + s * w };
                mlp_parameters(input, hidden, output)
            }
            PolicySpec::SymmetryAware {
                context_hidden,
                context_size,
                store_hidden,
                warehouse_hidden,
                ..
            } => {
                let c = *context_size;
                mlp_parameters(s * ls + lw, context_hidden, c)
                    + mlp_parameters(lw + c, warehouse_hidden, 1)
                    + mlp_parameters(ls + 4 + c, store_hidden, 1)
            }
            PolicySpec::Gnn { width, hidden, .. } => {
                let width = *width;
                let inventory = ls.max(lw).max(le);
                let calendar = if shape.past_demands > 0 {
                    shape.calendar_features
                } else {
                    0
                };
                let state = 2 + shape.past_demands.max(2) + calendar;
                mlp_parameters(inventory + state, hidden, width)
                    + mlp_parameters(2 * width + 1, hidden, width)
                    + mlp_parameters(3 * width, hidden, width)
                    + mlp_parameters(3 * width, hidden, width)
                    + mlp_parameters(width, hidden, 1)
            }
            PolicySpec::JustInTime { .. } => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use hdpo_autodiff::ParamStore;
    use rand::SeedableRng;

    #[test]
    fn zero_or_huge_widths_and_rounds_are_refused_with_the_field() {
        let spec = PolicySpec::VanillaOneStore {
            hidden: vec![32, 0],
            activation: crate::mlp::Activation::Elu,
            input_scale: 1.0,
            output: crate::spec::OneStoreOutput::Order,
            initial_level: 0.0,
        };
        let err = spec.validate().unwrap_err().to_string();
        assert!(
            err.contains("`hidden`") && err.contains("1 … 65536"),
            "{err}"
        );
        let spec = PolicySpec::VanillaWarehouse {
            hidden: vec![MAX_WIDTH + 1],
            activation: crate::mlp::Activation::Elu,
            transshipment: false,
            demand_scaling: false,
        };
        assert!(spec.validate().is_err());
        let spec = PolicySpec::Gnn {
            width: 32,
            hidden: vec![32],
            rounds: Some(1_000_000),
            transshipment: false,
            output_bias: 5.0,
            demand_scaling: false,
        };
        let err = spec.validate().unwrap_err().to_string();
        assert!(
            err.contains("`rounds`") && err.contains("1 … 1000"),
            "{err}"
        );
        let spec = PolicySpec::BaseStock {
            initial_level: f32::INFINITY,
        };
        assert!(
            spec.validate()
                .unwrap_err()
                .to_string()
                .contains("initial_level")
        );
    }

    #[test]
    fn parameter_counts_match_the_built_networks() {
        let mut checked = Vec::new();
        for info in hdpo_sim::settings::list_settings() {
            let mut setting = hdpo_sim::settings::setting(info.name).unwrap();
            // every policy's features, so that each builds where its network fits
            setting.observation.static_features = vec![
                hdpo_sim::config::StaticFeature::HoldingCost,
                hdpo_sim::config::StaticFeature::UnderageCost,
                hdpo_sim::config::StaticFeature::LeadTime,
                hdpo_sim::config::StaticFeature::Mean,
                hdpo_sim::config::StaticFeature::Std,
            ];
            setting.observation.past_demands = 3;
            let shape = NetworkShape::from_setting(&setting).unwrap();
            for (kind, _) in crate::spec::POLICY_KINDS {
                let spec = PolicySpec::default_for(kind, &shape, false).unwrap();
                spec.validate().unwrap();
                let mut params = ParamStore::new();
                let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
                let Ok(_) = Policy::build(spec.clone(), &shape, &mut params, &mut rng) else {
                    continue;
                };
                let built = params.num_scalars() as f64;
                let counted = spec.parameter_count(&shape);
                assert!(
                    (counted - built).abs() <= 0.01 * built,
                    "{kind} on {}: counted {counted}, built {built}",
                    info.name
                );
                checked.push(*kind);
            }
        }
        // every trainable kind was built somewhere
        for (kind, _) in crate::spec::POLICY_KINDS {
            assert!(checked.contains(kind), "{kind} never built: {checked:?}");
        }
    }
}
