//! Policy files: a trained policy as versioned JSON — its spec (architecture and hyper-parameters),
//! the setting it was trained for, and its weights. Loading rebuilds the policy, checks the weights
//! fit it, and [`SavedPolicy::check_setting`] says what differs when it is used on another setting.

use crate::observation::NetworkShape;
use crate::policy::{Policy, PolicyError};
use crate::spec::PolicySpec;
use hdpo_autodiff::ParamStore;
use hdpo_sim::config::Setting;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Format tag of policy files.
pub const POLICY_FORMAT: &str = "hdpo-policy";
/// Current policy file version.
pub const POLICY_VERSION: u32 = 1;

/// A trained policy on disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedPolicy {
    /// Always [`POLICY_FORMAT`].
    pub format: String,
    /// [`POLICY_VERSION`].
    pub version: u32,
    /// False for oracles that read future demand (their costs are bounds, not achievable).
    pub admissible: bool,
    /// Architecture and hyper-parameters.
    pub spec: PolicySpec,
    /// The setting it was trained for.
    pub setting: Setting,
    /// The network shape it was built for.
    pub shape: NetworkShape,
    /// Its weights.
    pub params: ParamStore,
}

impl SavedPolicy {
    /// Packs a policy and its parameters.
    pub fn new(policy: &Policy, params: &ParamStore, setting: &Setting) -> SavedPolicy {
        SavedPolicy {
            format: POLICY_FORMAT.into(),
            version: POLICY_VERSION,
            admissible: policy.admissible(),
            spec: policy.spec.clone(),
            setting: setting.clone(),
            shape: policy.shape.clone(),
            params: params.clone(),
        }
    }

    /// Writes the file atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), PolicyError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| PolicyError::File(format!("cannot serialise policy: {e}")))?;
        write_atomic(path, text.as_bytes()).map_err(PolicyError::File)
    }

    /// Reads a policy file, with clear errors for foreign, corrupt or inconsistent files.
    pub fn load(path: &Path) -> Result<SavedPolicy, PolicyError> {
        let file = |m: String| PolicyError::File(m);
        let text = std::fs::read_to_string(path)
            .map_err(|e| file(format!("cannot read policy `{}`: {e}", path.display())))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| file(format!("`{}` is not valid JSON: {e}", path.display())))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(POLICY_FORMAT) {
            return Err(file(format!(
                "`{}` is not an hdpo policy file (no \"format\": \"{POLICY_FORMAT}\")",
                path.display()
            )));
        }
        let version = value.get("version").and_then(|v| v.as_u64());
        if version != Some(POLICY_VERSION as u64) {
            return Err(file(format!(
                "`{}` has version {version:?}; this hdpo reads version {POLICY_VERSION}",
                path.display()
            )));
        }
        let saved: SavedPolicy = serde_json::from_value(value)
            .map_err(|e| file(format!("policy `{}` is malformed: {e}", path.display())))?;
        saved.build()?;
        Ok(saved)
    }

    /// Rebuilds the policy for the shape it was trained on and checks the weights fit it.
    pub fn build(&self) -> Result<Policy, PolicyError> {
        self.build_for(&self.shape)
    }

    /// Rebuilds the policy for another network shape (which must have the same parameter layout).
    pub fn build_for(&self, shape: &NetworkShape) -> Result<Policy, PolicyError> {
        let mut fresh = ParamStore::new();
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0);
        let policy = Policy::build(self.spec.clone(), shape, &mut fresh, &mut rng)?;
        if !fresh.same_layout(&self.params) {
            return Err(PolicyError::File(format!(
                "the saved weights do not fit a `{}` policy for this network (saved {} tensors / {} values, expected {} / {})",
                self.spec.kind(),
                self.params.len(),
                self.params.num_scalars(),
                fresh.len(),
                fresh.num_scalars()
            )));
        }
        if self
            .params
            .ids()
            .any(|id| self.params.value(id).iter().any(|v| !v.is_finite()))
        {
            return Err(PolicyError::File(
                "the saved weights contain NaN or infinite values".into(),
            ));
        }
        Ok(policy)
    }

    /// Checks that the policy can act on `setting`: an error listing every difference in the
    /// network shape that matters (node counts, pipeline lengths, topology, features).
    pub fn check_setting(&self, setting: &Setting) -> Result<Policy, PolicyError> {
        let shape =
            NetworkShape::from_setting(setting).map_err(|e| PolicyError::File(e.to_string()))?;
        let a = &self.shape;
        let mut diffs = Vec::new();
        let mut cmp = |what: &str, x: String, y: String| {
            if x != y {
                diffs.push(format!("{what}: trained for {x}, setting has {y}"));
            }
        };
        cmp("stores", a.n_stores.to_string(), shape.n_stores.to_string());
        cmp(
            "warehouses",
            a.n_warehouses.to_string(),
            shape.n_warehouses.to_string(),
        );
        cmp(
            "extra echelons",
            a.n_echelons.to_string(),
            shape.n_echelons.to_string(),
        );
        cmp(
            "store pipeline length",
            a.store_pipeline.to_string(),
            shape.store_pipeline.to_string(),
        );
        cmp(
            "warehouse pipeline length",
            a.warehouse_pipeline.to_string(),
            shape.warehouse_pipeline.to_string(),
        );
        cmp(
            "echelon pipeline length",
            a.echelon_pipeline.to_string(),
            shape.echelon_pipeline.to_string(),
        );
        cmp(
            "adjacency",
            format!("{:?}", a.adjacency),
            format!("{:?}", shape.adjacency),
        );
        cmp(
            "past demands",
            a.past_demands.to_string(),
            shape.past_demands.to_string(),
        );
        if !diffs.is_empty() {
            return Err(PolicyError::File(format!(
                "policy trained on `{}` does not fit setting `{}`: {}",
                self.setting.name,
                setting.name,
                diffs.join("; ")
            )));
        }
        self.build_for(&shape)
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| format!("`{}` is not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write `{}`: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!(
            "cannot move `{}` to `{}`: {e}",
            tmp.display(),
            path.display()
        )
    })
}
