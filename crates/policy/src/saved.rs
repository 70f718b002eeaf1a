//! Policy files: a trained policy as versioned JSON — its spec (architecture and hyper-parameters),
//! the setting it was trained for, and its weights. Loading rebuilds the policy, checks the weights
//! fit it, and [`SavedPolicy::check_setting`] says what differs when it is used on another setting.

use crate::error::PolicyError;
use crate::observation::NetworkShape;
use crate::policy::Policy;
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
        saved
            .check_consistent()
            .map_err(|e| file(format!("policy `{}`: {e}", path.display())))?;
        saved.build()?;
        Ok(saved)
    }

    /// Checks what [`SavedPolicy::build`] relies on before it allocates anything: a valid setting,
    /// the network shape derived from it, a spec within its limits, and no more parameters in the
    /// spec than the file holds (so a hand-edited spec cannot make the loader allocate more than
    /// the file's own size).
    fn check_consistent(&self) -> Result<(), String> {
        let derived = NetworkShape::from_setting(&self.setting)
            .map_err(|e| format!("its setting is invalid: {e}"))?;
        if derived != self.shape {
            return Err(format!(
                "its network shape does not match its setting `{}` (edited by hand?)",
                self.setting.name
            ));
        }
        self.spec.validate().map_err(|e| e.to_string())?;
        let counted = self.spec.parameter_count(&self.shape);
        let stored = self.params.num_scalars() as f64;
        if counted > stored * 1.01 + 16.0 {
            return Err(format!(
                "the saved weights do not fit a `{}` policy for this network (it has about \
                 {counted:.0} parameters, the file holds {stored})",
                self.spec.kind()
            ));
        }
        Ok(())
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
        cmp(
            "calendar features",
            a.calendar_features.to_string(),
            shape.calendar_features.to_string(),
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

/// The temporary file [`write_atomic`] writes `path` through: `.<name>.tmp-<pid>` in the same
/// directory.
fn temp_path(dir: &Path, name: &std::ffi::OsStr) -> std::path::PathBuf {
    dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ))
}

/// Writes `bytes` to `path` atomically and durably: a temporary file in the same directory
/// (`.<name>.tmp-<pid>`), flushed to disk, renamed over `path`, then the directory flushed so the
/// rename survives a crash. A reader sees the old file or the new one, never a part; on failure
/// the old file is untouched and the temporary file removed. The error names the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| format!("`{}` is not a file path", path.display()))?;
    let tmp = temp_path(dir, name);
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "cannot write `{}` (through `{}`): {e}",
            path.display(),
            tmp.display()
        ));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!(
            "cannot move `{}` to `{}`: {e}",
            tmp.display(),
            path.display()
        )
    })?;
    sync_dir(dir).map_err(|e| {
        format!(
            "wrote `{}` but cannot flush its directory to disk: {e}",
            path.display()
        )
    })
}

/// Flushes a directory's entries (a rename in it) to disk. File systems that cannot flush a
/// directory (`EINVAL`) have nothing to flush there.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        match std::fs::File::open(dir).and_then(|d| d.sync_all()) {
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Removes the temporary files [`write_atomic`] left in `dir` when its process was killed
/// mid-write (`.<name>.tmp-<pid>` whose process no longer runs); returns the files removed.
/// Files of live processes (and of this one) are kept; on systems where it cannot tell whether a
/// process runs, nothing is removed.
pub fn remove_stale_temp_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = name
            .strip_prefix('.')
            .and_then(|n| n.rsplit_once(".tmp-"))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file
            && pid != std::process::id()
            && process_is_gone(pid)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            removed.push(entry.path());
        }
    }
    removed
}

/// True when no process `pid` runs (`kill(pid, 0)` fails with `ESRCH`).
#[cfg(unix)]
fn process_is_gone(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; kill only checks that the process exists
    let result = unsafe { libc::kill(pid, 0) };
    result != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Cannot tell here: keep every file.
#[cfg(not(unix))]
fn process_is_gone(_pid: u32) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("hdpo-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.json")]);
        // a write into a path that is not a directory fails, names the file, leaves nothing
        let err = write_atomic(&path.join("b.json"), b"x").unwrap_err();
        assert!(err.contains("b.json"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    #[cfg(unix)]
    fn stale_temporary_files_of_dead_processes_are_removed() {
        let dir = std::env::temp_dir().join(format!("hdpo-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // a process that has exited: its pid is free until reused
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.join(format!(".checkpoint.json.tmp-{dead}"));
        let own = dir.join(format!(".policy.json.tmp-{}", std::process::id()));
        let other = dir.join(".notes.tmp-x");
        for p in [&stale, &own, &other] {
            std::fs::write(p, b"partial").unwrap();
        }
        let removed = remove_stale_temp_files(&dir);
        assert_eq!(removed, vec![stale.clone()]);
        assert!(!stale.exists() && own.exists() && other.exists());
        std::fs::remove_dir_all(&dir).ok();
    }
}
