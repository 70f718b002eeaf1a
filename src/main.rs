//! The `hdpo` command line: train, evaluate, optimum / bound of an instance, reproduce the paper's
//! experiments, list settings and policies.
//!
//! `hdpo train` with no argument trains the one-store MLP on `one_store_lost` (the reference's
//! headline instance) and tests it; see `hdpo --help` for everything else, including the exit
//! codes ([`EXIT_CODES`]).

use clap::{Args, Parser, Subcommand};
use hdpo::cli::{self, Failure};
use std::path::PathBuf;
use std::process::ExitCode;

/// The exit codes, as `hdpo --help` prints them (and README.md documents them).
const EXIT_CODES: &str = "\
Exit codes:
  0    success (also when standard output is closed early, e.g. `hdpo eval … | head -1`)
  1    the run failed: training diverged or hit a non-finite loss, or a file could not be written
  2    usage or input error, or a refusal before anything ran (a size over its limit, a run
       estimated to need more memory or time than the machine has; see --force)
  130  interrupted by SIGINT (Ctrl-C), 143 by SIGTERM: a checkpoint was written at the end of the
       current epoch (continue with `hdpo train --resume DIR`); a second signal stops at once";

/// Hindsight Differentiable Policy Optimization for inventory networks.
#[derive(Parser)]
#[command(name = "hdpo", version, about, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a policy with HDPO, then test it; writes a run directory.
    Train(TrainArgs),
    /// Evaluate a saved policy on a setting (by default the one it was trained for).
    Eval(EvalArgs),
    /// Print the orders a saved policy places now, for given inventories and pipelines.
    Act(ActArgs),
    /// Print the exact optimum or lower bound of an instance (or say that none is known).
    Optimum(OptimumArgs),
    /// Re-run one of the paper's experiment grids (resumable); writes results.md/.csv and a plot.
    Reproduce(ReproduceArgs),
    /// List the embedded settings, or print one as a setting file (`--show NAME`).
    Settings(SettingsArgs),
    /// List the policies.
    Policies,
}

#[derive(Args)]
struct SettingsArgs {
    /// Print this embedded setting as a TOML setting file (a starting point for
    /// `--setting-file`), e.g. `hdpo settings --show one_warehouse_lost > my_network.toml`.
    #[arg(long, value_name = "NAME")]
    show: Option<String>,
}

#[derive(Args)]
struct Common {
    /// Override a configuration value, e.g. `--set setting.underage_cost=19 --set learning_rate=3e-3`
    /// (the setting shortcuts `n_stores`, `lead_time`, `holding_cost`, `underage_cost`,
    /// `correlation` also work without the `setting.` prefix).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Worker threads (default: all cores; at most 4 × the cores). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Run even when the memory or time estimate is over the machine's limits (the free memory,
    /// or HDPO_MEMORY_LIMIT; 30 days).
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct TrainArgs {
    /// Embedded setting name (see `hdpo settings`).
    #[arg(long, default_value = "one_store_lost")]
    setting: String,
    /// Policy kind (see `hdpo policies`).
    #[arg(long, default_value = "vanilla_one_store")]
    policy: String,
    /// Your own network: a TOML setting file (stores, warehouses, lead times, costs, demand, splits;
    /// start from `hdpo settings --show <name>` or `examples/settings/`); replaces --setting, and
    /// the policy and training defaults are filled in as for the embedded settings.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["setting", "config"])]
    setting_file: Option<PathBuf>,
    /// A TOML training configuration (as written to a run's `config.toml`); replaces --setting/--policy.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seed of initialisation and shuffling.
    #[arg(long)]
    seed: Option<u64>,
    /// Output directory (default: runs/<setting>-<policy>-<time>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its checkpoint.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct EvalArgs {
    /// A policy file written by `hdpo train` (`<run>/policy.json`).
    policy: PathBuf,
    /// Evaluate on this embedded setting instead of the one the policy was trained for.
    #[arg(long)]
    setting: Option<String>,
    /// Evaluate on the setting of this TOML setting file instead of the one the policy was
    /// trained for.
    #[arg(long, value_name = "FILE", conflicts_with = "setting")]
    setting_file: Option<PathBuf>,
    /// Split to evaluate: test, dev or train.
    #[arg(long, default_value = "test")]
    split: String,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
struct ActArgs {
    /// A policy file written by `hdpo train` (`<run>/policy.json`).
    policy: PathBuf,
    /// The state(s): a JSON file (one object or a list; `{"stores": [{"on_hand": 3, "arriving":
    /// [5, 4]}, …], "warehouses": […], "echelons": […]}`) or a CSV file
    /// (`state,location,index,on_hand,arriving_1,…`), told apart by the extension (.json, .csv).
    #[arg(long, value_name = "FILE")]
    state: PathBuf,
    /// Output format: json or csv.
    #[arg(long, default_value = "json")]
    format: String,
    /// The sample of the policy's test split whose static parameters (costs, lead times, demand
    /// means) apply; they differ between samples only where the setting samples them.
    #[arg(long, default_value_t = 0)]
    sample: usize,
}

#[derive(Args)]
struct OptimumArgs {
    /// Embedded setting name (see `hdpo settings`).
    #[arg(long, default_value = "one_store_lost")]
    setting: String,
    /// Your own network: a TOML setting file (see `hdpo settings --show <name>`); replaces --setting.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["setting", "config"])]
    setting_file: Option<PathBuf>,
    /// Use the setting of this TOML training configuration (e.g. a run's `config.toml`) instead.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override a setting value, as in `hdpo train` (`setting.` prefix optional), e.g.
    /// `--set setting.stores.lead_time=2 --set setting.underage_cost=19`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// One lost-sales store: also the exact costs of the best base-stock and capped base-stock policies.
    #[arg(long)]
    heuristics: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Neither read nor write the optimum cache ($HDPO_CACHE_DIR, default runs/.optimum-cache).
    #[arg(long)]
    no_cache: bool,
    /// Worker threads (default: all cores; at most 4 × the cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct ReproduceArgs {
    /// one_store_lost, one_store_backlogged, serial, one_warehouse, transshipment, many_warehouses, identical_stores, or all.
    experiment: String,
    /// smoke (tiny sizes, seconds per cell, not comparable to published) or full (the settings' sizes).
    #[arg(long, default_value = "smoke")]
    scale: String,
    /// Output root: writes <OUT>/<experiment>/{results.md, results.csv, gaps.svg, cells/, runs/}.
    #[arg(long, default_value = "reproduce")]
    out: PathBuf,
    /// Run only the cells whose id contains this text (see --list).
    #[arg(long)]
    filter: Option<String>,
    /// Run at most this many cells (after --filter and --cells).
    #[arg(long)]
    limit: Option<usize>,
    /// Run only part i of n of the cells (after --filter): every n-th cell from the i-th, so
    /// that n machines or the tasks of a job array share a grid, each with its own --out; then
    /// gather them with --merge.
    #[arg(long, value_name = "I/N")]
    cells: Option<String>,
    /// Train nothing: gather the cell records that parts of the grid wrote under these output
    /// roots (their --out) into --out, and write the whole grid's tables (repeatable).
    #[arg(long, value_name = "DIR")]
    merge: Vec<PathBuf>,
    /// List the cells and exit.
    #[arg(long)]
    list: bool,
    #[command(flatten)]
    common: Common,
}

fn parse_overrides(set: &[String]) -> Result<Vec<(String, String)>, Failure> {
    set.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| Failure::Input(format!("--set `{kv}`: expected KEY=VALUE")))
        })
        .collect()
}

/// The most worker threads allowed: 4 × the cores (more only adds switching, and thousands
/// exhaust the process's limits).
fn max_threads() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Sets rayon's global pool to `threads` (checked against [`max_threads`]); without it, checks
/// `RAYON_NUM_THREADS`, which rayon would otherwise obey blindly.
fn set_threads(threads: Option<usize>) -> Result<(), Failure> {
    let max = max_threads();
    let allowed = |what: String| {
        Failure::Input(format!(
            "{what}: allowed: an integer 1 … {max} (4 × the {} cores of this machine)",
            max / 4
        ))
    };
    match threads {
        Some(n) => {
            if n == 0 || n > max {
                return Err(allowed(format!("--threads {n}")));
            }
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build_global()
                .map_err(|e| Failure::Input(format!("--threads {n}: {e}")))
        }
        None => match std::env::var("RAYON_NUM_THREADS") {
            Ok(text) => match text.trim().parse::<usize>() {
                Ok(n) if n > max => Err(allowed(format!("RAYON_NUM_THREADS={n}"))),
                _ => Ok(()),
            },
            Err(_) => Ok(()),
        },
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Settings(a) => match a.show {
            Some(name) => cli::show_setting(&name),
            None => cli::print_settings(),
        },
        Command::Policies => cli::print_policies(),
        Command::Train(a) => parse_overrides(&a.common.set).and_then(|overrides| {
            set_threads(a.common.threads)?;
            cli::train(cli::TrainRequest {
                setting: a.setting,
                setting_file: a.setting_file,
                policy: a.policy,
                config: a.config,
                seed: a.seed,
                out: a.out,
                resume: a.resume,
                overrides,
                force: a.common.force,
            })
        }),
        Command::Optimum(a) => parse_overrides(&a.set).and_then(|overrides| {
            set_threads(a.threads)?;
            cli::optimum(cli::OptimumRequest {
                setting: a.setting,
                setting_file: a.setting_file,
                config: a.config,
                overrides,
                heuristics: a.heuristics,
                json: a.json,
                no_cache: a.no_cache,
            })
        }),
        Command::Reproduce(a) => parse_overrides(&a.common.set).and_then(|overrides| {
            set_threads(a.common.threads)?;
            cli::reproduce(cli::ReproduceRequest {
                experiment: a.experiment,
                scale: a.scale,
                out: a.out,
                filter: a.filter,
                limit: a.limit,
                cells: a.cells,
                merge: a.merge,
                overrides,
                list: a.list,
                force: a.common.force,
            })
        }),
        Command::Act(a) => cli::act(&a.policy, &a.state, &a.format, a.sample),
        Command::Eval(a) => parse_overrides(&a.common.set).and_then(|overrides| {
            set_threads(a.common.threads)?;
            cli::eval(
                &a.policy,
                a.setting.as_deref(),
                a.setting_file.as_deref(),
                &a.split,
                &overrides,
                a.common.force,
            )
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if let Some(message) = failure.message() {
                use std::io::Write as _;
                let prefix = match failure {
                    Failure::Interrupted { .. } => "hdpo",
                    _ => "error",
                };
                let _ = writeln!(std::io::stderr(), "{prefix}: {message}");
            }
            ExitCode::from(failure.exit_code())
        }
    }
}
