//! The on-disk cache of solved reference problems ([`OptimumCache`]): one JSON file per
//! [`Problem`] under `$HDPO_CACHE_DIR` (default `runs/.optimum-cache`), named by a hash of the
//! problem, holding the problem itself (checked on read, so a hash collision or a stale format is
//! recomputed), written atomically like every file of a run. A corrupt entry is recomputed and
//! overwritten, never fatal. [`reference_for`] is the one call the CLI and the experiment harness
//! make: classify a setting with [`Problem::from_setting`], then solve through the cache.
//!
//! The solvers and the setting → problem mapping are the crate `hdpo_optimum`; the cache lives here,
//! with the run's other files, because it shares their durable writes ([`write_atomic`]).

use crate::checkpoint::{remove_stale_temp_files, write_atomic};
use hdpo_optimum::problem::{Classification, Problem, Reference, SOLVER_VERSION, Solved, Source};
use hdpo_sim::config::Setting;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Format tag of cache files.
pub const CACHE_FORMAT: &str = "hdpo-optimum-cache";
/// Environment variable that overrides the cache directory.
pub const CACHE_DIR_ENV: &str = "HDPO_CACHE_DIR";

/// The on-disk cache of solved problems.
#[derive(Clone, Debug)]
pub struct OptimumCache {
    /// Its directory.
    pub dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    format: String,
    version: u32,
    problem: Problem,
    solved: Solved,
}

impl OptimumCache {
    /// A cache in `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> OptimumCache {
        OptimumCache { dir: dir.into() }
    }

    /// `$HDPO_CACHE_DIR` if set and non-empty, else `runs/.optimum-cache`.
    pub fn default_dir() -> PathBuf {
        match std::env::var_os(CACHE_DIR_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => PathBuf::from("runs").join(".optimum-cache"),
        }
    }

    /// The cache in [`OptimumCache::default_dir`].
    pub fn from_env() -> OptimumCache {
        OptimumCache::new(OptimumCache::default_dir())
    }

    /// The file of a problem.
    pub fn path(&self, problem: &Problem) -> PathBuf {
        self.dir.join(format!("{}.json", problem.cache_key()))
    }

    /// Reads the entry of `problem`: `Ok(None)` when absent, `Err(why)` when present but unusable
    /// (corrupt, foreign format, other version, other problem).
    pub fn read(&self, problem: &Problem) -> Result<Option<Solved>, String> {
        let path = self.path(problem);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
        };
        let entry: CacheEntry = serde_json::from_str(&text)
            .map_err(|e| format!("`{}` is corrupt ({e})", path.display()))?;
        if entry.format != CACHE_FORMAT || entry.version != SOLVER_VERSION {
            return Err(format!(
                "`{}` has format {:?} version {}, expected {CACHE_FORMAT:?} version {SOLVER_VERSION}",
                path.display(),
                entry.format,
                entry.version
            ));
        }
        if &entry.problem != problem {
            return Err(format!(
                "`{}` holds another problem (hash collision)",
                path.display()
            ));
        }
        if !entry.solved.cost.is_finite() {
            return Err(format!("`{}` holds a non-finite cost", path.display()));
        }
        Ok(Some(entry.solved))
    }

    /// Writes the entry of `problem` atomically.
    pub fn write(&self, problem: &Problem, solved: &Solved) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            format!(
                "cannot create the cache directory `{}`: {e}",
                self.dir.display()
            )
        })?;
        let entry = CacheEntry {
            format: CACHE_FORMAT.to_string(),
            version: SOLVER_VERSION,
            problem: problem.clone(),
            solved: solved.clone(),
        };
        let text = serde_json::to_string_pretty(&entry).expect("an entry serialises");
        remove_stale_temp_files(&self.dir);
        write_atomic(&self.path(problem), text.as_bytes())
    }
}

/// Solves `problem`, reading and writing `cache` when given. Cache trouble never fails the call: it is
/// reported in `warnings` and the problem is (re)computed.
pub fn solve_cached(problem: &Problem, cache: Option<&OptimumCache>) -> Reference {
    let mut warnings = Vec::new();
    if let Some(cache) = cache {
        match cache.read(problem) {
            Ok(Some(solved)) => {
                return Reference::Known {
                    problem: problem.clone(),
                    solved,
                    source: Source::Cache(cache.path(problem)),
                    warnings,
                };
            }
            Ok(None) => {}
            Err(why) => warnings.push(format!("optimum cache: {why}; recomputing")),
        }
    }
    match problem.solve() {
        Ok(solved) => {
            if let Some(cache) = cache
                && let Err(why) = cache.write(problem, &solved)
            {
                warnings.push(format!("optimum cache not written: {why}"));
            }
            Reference::Known {
                problem: problem.clone(),
                solved,
                source: Source::Computed,
                warnings,
            }
        }
        Err(reason) => Reference::Failed {
            problem: problem.clone(),
            reason,
        },
    }
}

/// The reference of a setting: classification, then [`solve_cached`].
pub fn reference_for(
    setting: &Setting,
    cache: Option<&OptimumCache>,
) -> Result<Reference, hdpo_sim::ConfigError> {
    Ok(match Problem::from_setting(setting)? {
        Classification::Solvable(problem) => solve_cached(&problem, cache),
        Classification::NoKnownBound { reason } => Reference::NoKnownBound { reason },
        Classification::Unsupported { reason } => Reference::Unsupported { reason },
    })
}

/// Resolves a cache directory argument: `Some(dir)` as given, else the default.
pub fn cache_at(dir: Option<&Path>) -> OptimumCache {
    match dir {
        Some(dir) => OptimumCache::new(dir),
        None => OptimumCache::from_env(),
    }
}
