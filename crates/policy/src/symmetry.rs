//! The symmetry-aware network (work in progress: `build` reports it as unsupported until it lands).

use crate::observation::{Feature, NetworkShape, Observation};
use crate::policy::PolicyError;
use crate::spec::PolicySpec;
use hdpo_autodiff::{ParamStore, Tape};
use hdpo_sim::tape::TapeActions;
use rand::Rng;

/// The built symmetry-aware network.
#[derive(Clone, Debug)]
pub struct SymmetryAwareNet {}

impl SymmetryAwareNet {
    /// Builds the network for `shape`, adding its parameters to `params`.
    pub fn build<R: Rng + ?Sized>(
        spec: &PolicySpec,
        _shape: &NetworkShape,
        _params: &mut ParamStore,
        _rng: &mut R,
    ) -> Result<SymmetryAwareNet, PolicyError> {
        Err(PolicyError::Unsupported {
            policy: spec.kind(),
            reason: "not available in this build yet".into(),
        })
    }

    /// Features it reads.
    pub fn features(&self) -> Vec<Feature> {
        vec![]
    }

    /// Its actions on the tape.
    pub fn act(&self, _tape: &mut Tape, _params: &ParamStore, _obs: &Observation) -> TapeActions {
        unreachable!("never built")
    }
}
