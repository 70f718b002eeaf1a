//! The one error type of the policy crate: why a policy cannot be built or loaded
//! ([`PolicyError`]), naming the policy, the field and what is allowed.

/// Why a policy cannot be built or loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy does not run on this network.
    #[error("policy `{policy}` does not support this network: {reason}")]
    Unsupported {
        /// Policy kind.
        policy: &'static str,
        /// What is missing or wrong.
        reason: String,
    },
    /// The policy reads a static feature the setting does not expose.
    #[error(
        "policy `{policy}` reads `{feature}`, which the setting does not expose; add it to \
         `observation.static_features` (exposed now: {exposed})"
    )]
    MissingFeature {
        /// Policy kind.
        policy: &'static str,
        /// The feature.
        feature: String,
        /// The features the setting exposes.
        exposed: String,
    },
    /// A hyper-parameter is out of range.
    #[error("policy `{policy}`: `{field}` {message}")]
    Invalid {
        /// Policy kind.
        policy: &'static str,
        /// The field.
        field: &'static str,
        /// What is allowed.
        message: String,
    },
    /// Reading or writing a policy file failed.
    #[error("{0}")]
    File(String),
}
