//! The work behind each `hdpo` subcommand, as library functions (so tests can call them). Errors
//! are [`Failure`]s: a message naming the offending argument or field, and the exit code it ends
//! the process with (2 bad input, 1 a run that failed, 130/143 interrupted). Standard output is
//! written through [`emit`], so a closed pipe (`hdpo eval … | head -c0`) ends the command quietly
//! instead of panicking; standard error through `note!`, which never fails.

use crate::{setting_file, signals};
use hdpo_optimum::{
    Classification, Problem, Reference, ReferenceKind, Source, lost_sales_heuristics,
};
use hdpo_policy::{POLICY_KINDS, SavedPolicy};
use hdpo_sim::config::{Setting, Split};
use hdpo_sim::settings::list_settings;
use hdpo_train::optimum_cache::{OptimumCache, reference_for, solve_cached};
use hdpo_train::reproduce::{
    self, CellStatus, Event, Experiment, ReproduceError, ReproduceOptions, Scale,
};
use hdpo_train::{
    Checkpoint, EpochRecord, Limits, RunDir, StopReason, TrainConfig, TrainConfigError, TrainError,
    Trainer, apply_setting_overrides, evaluate_policy, retry_once,
};
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How a command failed, and the exit code that says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Bad usage or input (exit 2): nothing was run, or a refusal before the run started.
    Input(String),
    /// The run failed (exit 1): divergence, a non-finite loss, a file that could not be written.
    Run(String),
    /// Stopped by SIGINT (exit 130) or SIGTERM (exit 143), after writing a checkpoint.
    Interrupted {
        /// The signal's number.
        signal: i32,
        /// What was kept and how to continue.
        message: String,
    },
    /// Standard output was closed (a broken pipe): the command ends quietly (exit 0).
    ClosedOutput,
}

impl Failure {
    /// The process exit code: 2 input, 1 run, 128 + signal, 0 for a closed output.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Input(_) => 2,
            Failure::Run(_) => 1,
            Failure::Interrupted { signal, .. } => signals::exit_code(*signal),
            Failure::ClosedOutput => 0,
        }
    }

    /// The message to print (none for a closed output).
    pub fn message(&self) -> Option<&str> {
        match self {
            Failure::Input(m) | Failure::Run(m) | Failure::Interrupted { message: m, .. } => {
                Some(m)
            }
            Failure::ClosedOutput => None,
        }
    }
}

/// Plain messages are input errors (the default of every check before a run).
impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::Input(message)
    }
}

/// Writes `text` to standard output and flushes it: a closed pipe is [`Failure::ClosedOutput`],
/// any other error (a full disk behind a redirection) a [`Failure::Run`].
pub fn emit(text: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                Failure::ClosedOutput
            } else {
                Failure::Run(format!("cannot write to standard output: {e}"))
            }
        })
}

/// `println!` through [`emit`]: returns early from the enclosing function on a write error.
macro_rules! outln {
    ($($arg:tt)*) => {
        emit(&format!("{}\n", format_args!($($arg)*)))?
    };
}

/// `eprintln!` that never fails (a closed standard error loses the line, nothing more).
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Prints the embedded settings, one line each.
pub fn print_settings() -> Result<(), Failure> {
    for info in list_settings() {
        outln!("{:<28} {}", info.name, info.description);
    }
    Ok(())
}

/// Prints an embedded setting as an annotated setting file (`hdpo settings --show NAME`).
pub fn show_setting(name: &str) -> Result<(), Failure> {
    let text = setting_file::show(name)?;
    outln!("{}", text.trim_end());
    Ok(())
}

/// Prints the policies, one line each.
pub fn print_policies() -> Result<(), Failure> {
    for (name, description) in POLICY_KINDS {
        outln!("{name:<20} {description}");
    }
    Ok(())
}

/// What `hdpo train` was asked to do.
pub struct TrainRequest {
    /// Embedded setting name.
    pub setting: String,
    /// A setting file replacing `setting`.
    pub setting_file: Option<PathBuf>,
    /// Policy kind.
    pub policy: String,
    /// A TOML config replacing setting/policy.
    pub config: Option<PathBuf>,
    /// Seed override.
    pub seed: Option<u64>,
    /// Output directory.
    pub out: Option<PathBuf>,
    /// Resume from this run directory.
    pub resume: Option<PathBuf>,
    /// `key=value` overrides.
    pub overrides: Vec<(String, String)>,
    /// Run even when the memory or time estimate is over the machine's limits.
    pub force: bool,
}

/// Resolves the configuration of a fresh run.
pub fn resolve_config(req: &TrainRequest) -> Result<TrainConfig, String> {
    let mut config = match &req.config {
        Some(path) => {
            let mut config = TrainConfig::from_file(path).map_err(|e| {
                let hint = match std::fs::read_to_string(path) {
                    Ok(text) if setting_file::is_setting_file(&text) => {
                        " (this looks like a setting file: pass it with --setting-file)"
                    }
                    _ => "",
                };
                let e = e.to_string();
                format!("--config: {}{hint}", e.trim_end())
            })?;
            for (k, v) in &req.overrides {
                config
                    .apply_override(k, v)
                    .map_err(|e| format!("--set {k}={v}: {e}"))?;
            }
            config
        }
        None => {
            let s = setting_file::load(&req.setting, req.setting_file.as_deref())?;
            TrainConfig::default_with_overrides(s, &req.policy, &req.overrides).map_err(
                |e| match e {
                    TrainConfigError::Override { .. } => format!("--set {e}"),
                    other => format!("--policy: {other}"),
                },
            )?
        }
    };
    if let Some(seed) = req.seed {
        config.seed = seed;
    }
    Ok(config)
}

fn default_out(config: &TrainConfig) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    PathBuf::from("runs").join(format!(
        "{}-{}-{secs}",
        config.setting.name,
        config.policy.kind()
    ))
}

/// Progress display: a bar on a terminal, plain lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    last_line: Instant,
}

impl Progress {
    fn new(total: usize, start: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} epoch {pos}/{len} {msg} [{elapsed_precise} < {eta_precise}]",
                )
                .expect("valid template"),
            );
            bar.set_position(start as u64);
            bar
        });
        Progress {
            bar,
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, r: &EpochRecord) {
        let dev = r
            .dev_cost
            .map_or("      -".to_string(), |d| format!("{d:7.4}"));
        let best = r
            .best_dev_cost
            .map_or("      -".to_string(), |d| format!("{d:7.4}"));
        let msg = format!("train {:.4} dev {dev} best {best}", r.train_cost);
        match &self.bar {
            Some(bar) => {
                bar.set_position(r.epoch as u64 + 1);
                bar.set_message(msg);
            }
            None => {
                if r.dev_cost.is_some() || self.last_line.elapsed().as_secs_f64() > 10.0 {
                    note!(
                        "epoch {:>5}  {msg}  lr {:.2e}  {:.1}s",
                        r.epoch,
                        r.learning_rate,
                        r.elapsed_seconds
                    );
                    self.last_line = Instant::now();
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// `hdpo train`.
pub fn train(req: TrainRequest) -> Result<(), Failure> {
    // first: a signal during the (possibly long) set-up must not kill the process unhandled
    let interrupt = signals::install().map_err(Failure::Run)?;
    let limits = Limits::machine().forced(req.force);
    let input = |e: TrainError| Failure::Input(e.to_string());
    let (mut trainer, dir) = match &req.resume {
        Some(dir) => {
            if req.config.is_some() || !req.overrides.is_empty() || req.seed.is_some() {
                return Err(Failure::Input("--resume continues a run with its own configuration; drop --config/--set/--seed".into()));
            }
            let checkpoint = Checkpoint::load(&dir.join("checkpoint.json"))?;
            let run_dir = RunDir::create(dir)?;
            (
                Trainer::resume_within(checkpoint, &limits).map_err(input)?,
                run_dir,
            )
        }
        None => {
            let config = resolve_config(&req)?;
            let dir = RunDir::create(&req.out.clone().unwrap_or_else(|| default_out(&config)))?;
            let trainer = Trainer::new_within(config, &limits).map_err(input)?;
            retry_once(|| {
                hdpo_train::write_atomic(
                    &dir.file("config.toml"),
                    trainer.config.to_toml_string().as_bytes(),
                )
            })
            .map_err(Failure::Run)?;
            (trainer, dir)
        }
    };
    for path in &dir.stale_removed {
        note!(
            "removed `{}`, a temporary file left by a killed run",
            path.display()
        );
    }
    let resume_command = format!("hdpo train --resume {}", dir.path.display());
    let kept_note = |epoch: usize| {
        format!("the checkpoint of epoch {epoch} stays valid: continue with `{resume_command}`")
    };
    interrupt.training(&match req.resume {
        Some(_) => kept_note(trainer.epoch),
        None => "no checkpoint has been written yet".to_string(),
    });
    let reference = reference_of(&trainer.config.setting);
    let cfg = &trainer.config;
    note!(
        "hdpo train: setting {} · policy {} · {} parameters · lr {} · up to {} epochs · about {} of memory · output {}",
        cfg.setting.name,
        cfg.policy.kind(),
        trainer.params.num_scalars(),
        cfg.learning_rate,
        cfg.max_epochs,
        hdpo_train::budget::format_bytes(trainer.estimate.bytes()),
        dir.path.display()
    );
    note!("reference: {}", reference.summary());
    if !trainer.policy.admissible() {
        note!(
            "note: `{}` reads future demand: it is NOT an admissible policy; its cost is a bound",
            cfg.policy.kind()
        );
    }
    let checkpoint_path = dir.file("checkpoint.json");
    // the epoch of the checkpoint on disk, if any (a resumed run starts from one)
    let mut saved_epoch = req.resume.is_some().then_some(trainer.epoch);
    let mut progress = Progress::new(trainer.config.max_epochs, trainer.epoch);
    let outcome = trainer.try_run(interrupt.flag(), |t, record| {
        progress.update(record);
        if record.dev_cost.is_some() {
            let saved = retry_once(|| save_state(t, &dir, &reference, &mut saved_epoch));
            if let Some(epoch) = saved_epoch {
                interrupt.set_note(&kept_note(epoch));
            }
            saved?;
        }
        Ok(())
    });
    progress.finish();
    let kept = |saved: Option<usize>| match saved {
        Some(epoch) => format!(
            "the last good checkpoint (epoch {epoch}) is {}",
            checkpoint_path.display()
        ),
        None => {
            "no checkpoint was written (the first is written after the first dev epoch)".to_string()
        }
    };
    let reason = match outcome {
        Ok(reason) => reason,
        // never write parameters from a failed step: the last checkpoint stays as it was
        Err(e) => return Err(Failure::Run(format!("{e}; {}", kept(saved_epoch)))),
    };
    retry_once(|| save_state(&trainer, &dir, &reference, &mut saved_epoch))
        .map_err(|e| Failure::Run(format!("{e}; {}", kept(saved_epoch))))?;
    let interrupted = |signal: i32| Failure::Interrupted {
        signal,
        message: format!(
            "interrupted by {} at epoch {}: checkpoint written; continue with `{resume_command}`",
            signals::name(signal),
            trainer.epoch
        ),
    };
    if reason == StopReason::Interrupted {
        return Err(interrupted(interrupt.signal().unwrap_or(signals::SIGINT)));
    }
    if reason == StopReason::Collapsed {
        note!(
            "warning: training stopped at epoch {}: the gradient vanished for {} epochs (every \
             output of the policy saturated, nothing left to learn); the best-dev parameters (epoch {}) \
             are kept; try a smaller learning_rate",
            trainer.epoch,
            hdpo_train::COLLAPSED_EPOCHS,
            trainer.best.as_ref().map_or(0, |b| b.epoch)
        );
    }
    // from here the checkpoint is complete: a signal stops the evaluation at once
    if let Some(signal) = interrupt.finishing(&format!(
        "the checkpoint is complete: `{resume_command}` runs the final evaluation again"
    )) {
        return Err(interrupted(signal));
    }
    let run_failed = |e: TrainError| Failure::Run(e.to_string());
    let train_seconds = trainer.elapsed_seconds();
    let dev = trainer.evaluate(Split::Dev, true).map_err(run_failed)?;
    let test = if trainer.config.run_test {
        let t0 = Instant::now();
        let report = trainer.test().map_err(run_failed)?;
        Some((report, t0.elapsed().as_secs_f64()))
    } else {
        None
    };
    let mut report = render_report(
        &trainer,
        reason,
        dev.cost_per_store_period,
        test.as_ref()
            .map(|t| (t.0.cost_per_store_period, t.0.cost_std_error, t.1)),
        train_seconds,
        &reference,
    );
    if test.is_some() {
        report.push_str(&write_policy_picture(&trainer, &dir)?);
    }
    retry_once(|| hdpo_train::write_atomic(&dir.file("report.md"), report.as_bytes()))
        .map_err(Failure::Run)?;
    emit(&report)
}

/// Writes `policy.svg` (each location's order against its inventory position in visited test
/// states, next to the optimal policy's orders where known) and returns the report's row about it
/// (empty for an oracle).
fn write_policy_picture(trainer: &Trainer, dir: &RunDir) -> Result<String, Failure> {
    use hdpo_train::policy_plot::{policy_picture, render_policy_picture};
    let picture = policy_picture(
        &trainer.config.setting,
        &trainer.policy,
        trainer.best_params(),
    )
    .map_err(|e| Failure::Run(format!("the policy picture: {e}")))?;
    let Some(picture) = picture else {
        return Ok(String::new());
    };
    let title = format!(
        "{} · {}",
        trainer.config.setting.name,
        trainer.config.policy.kind()
    );
    let svg = render_policy_picture(&title, &picture).map_err(Failure::Run)?;
    retry_once(|| hdpo_train::write_atomic(&dir.file("policy.svg"), svg.as_bytes()))
        .map_err(Failure::Run)?;
    let mut rows = String::new();
    match picture.agreement() {
        Some((same, mean_abs)) => {
            let _ = writeln!(
                rows,
                "| policy picture | policy.svg; in {} visited test states the order is the optimal \
                 one (within 0.5) in {:.1} % of them, mean absolute difference {mean_abs:.3} |",
                picture.states.len(),
                100.0 * same
            );
        }
        None => {
            let _ = writeln!(
                rows,
                "| policy picture | policy.svg (orders against own inventory position of every location in {} test \
                 scenarios × {} periods; no optimal policy to compare) |",
                hdpo_train::policy_plot::PICTURE_SAMPLES,
                hdpo_train::policy_plot::PICTURE_PERIODS - hdpo_train::policy_plot::PICTURE_WARM_UP
            );
        }
    }
    Ok(rows)
}

/// The optimum or bound of a setting (cached on disk); cache trouble is a warning, never an error.
fn reference_of(setting: &hdpo_sim::config::Setting) -> Reference {
    let cache = OptimumCache::from_env();
    match reference_for(setting, Some(&cache)) {
        Ok(reference) => {
            if let Reference::Known { warnings, .. } = &reference {
                for warning in warnings {
                    note!("warning: {warning}");
                }
            }
            reference
        }
        Err(e) => Reference::Unsupported {
            reason: format!("the setting is invalid: {e}"),
        },
    }
}

/// Writes the checkpoint, then the other files of the run; `saved_epoch` records the epoch of the
/// checkpoint as soon as it is on disk (a later file may still fail).
fn save_state(
    trainer: &Trainer,
    dir: &RunDir,
    reference: &Reference,
    saved_epoch: &mut Option<usize>,
) -> Result<(), String> {
    trainer.checkpoint().save(&dir.file("checkpoint.json"))?;
    *saved_epoch = Some(trainer.epoch);
    dir.write_metrics(&trainer.history)?;
    let saved = SavedPolicy::new(
        &trainer.policy,
        trainer.best_params(),
        &trainer.config.setting,
    );
    saved
        .save(&dir.file("policy.json"))
        .map_err(|e| e.to_string())?;
    let title = format!(
        "{} · {}",
        trainer.config.setting.name,
        trainer.config.policy.kind()
    );
    let line = reference.curve_line();
    dir.write_curve(
        &title,
        &trainer.history,
        line.as_ref().map(|(v, l)| (*v, l.as_str())),
    )
}

fn render_report(
    trainer: &Trainer,
    reason: StopReason,
    dev: f64,
    test: Option<(f64, Option<f64>, f64)>,
    train_seconds: f64,
    reference: &Reference,
) -> String {
    let cfg = &trainer.config;
    let mut r = String::new();
    let _ = writeln!(
        r,
        "# hdpo run: {} · {}\n",
        cfg.setting.name,
        cfg.policy.kind()
    );
    let _ = writeln!(r, "| | |\n|---|---|");
    let _ = writeln!(
        r,
        "| setting | {} — {} |",
        cfg.setting.name, cfg.setting.description
    );
    let _ = writeln!(
        r,
        "| policy | {} ({} parameters){} |",
        cfg.policy.kind(),
        trainer.params.num_scalars(),
        if trainer.policy.admissible() {
            ""
        } else {
            " — **non-admissible oracle**"
        }
    );
    let _ = writeln!(r, "| epochs | {} ({:?}) |", trainer.epoch, reason);
    if let Some(best) = &trainer.best {
        let _ = writeln!(r, "| best dev epoch | {} |", best.epoch);
    }
    if let Some(last) = trainer.history.last() {
        let _ = writeln!(r, "| train cost (last epoch) | {:.4} |", last.train_cost);
    }
    let _ = writeln!(r, "| dev cost (best params) | {dev:.4} |");
    match test {
        Some((cost, std_error, secs)) => {
            let _ = writeln!(r, "| test cost (best params) | {cost:.4} |");
            if let Some(se) = std_error {
                let _ = writeln!(
                    r,
                    "| test standard error | {se:.4} ({:.3} % of the cost; across the test scenarios) |",
                    100.0 * se / cost
                );
            }
            let _ = writeln!(r, "| test wall time | {secs:.1} s |");
        }
        None => {
            let _ = writeln!(r, "| test cost | not run |");
        }
    }
    match reference.known() {
        Some((cost, kind)) => {
            let what = match reference {
                Reference::Known { solved, .. } => solved.what.as_str(),
                _ => "",
            };
            let _ = writeln!(r, "| {} | {cost:.4} — {what} |", kind.label());
            let _ = writeln!(
                r,
                "| dev {} | {:+.2} % |",
                kind.gap_label(),
                100.0 * (dev / cost - 1.0)
            );
            if let Some((test_cost, _, _)) = test {
                let _ = writeln!(
                    r,
                    "| test {} | {:+.2} % |",
                    kind.gap_label(),
                    100.0 * (test_cost / cost - 1.0)
                );
            }
        }
        None => {
            let _ = writeln!(r, "| optimum | {} |", reference.summary());
        }
    }
    let _ = writeln!(r, "| training wall time | {train_seconds:.1} s |");
    let _ = writeln!(r, "| threads | {} |", rayon::current_num_threads());
    r
}

/// `hdpo eval`. `force` runs an evaluation estimated to take longer than
/// [`hdpo_train::budget::MAX_SECONDS`] (or more memory than free) anyway.
pub fn eval(
    policy_file: &Path,
    setting_name: Option<&str>,
    file: Option<&Path>,
    split: &str,
    overrides: &[(String, String)],
    force: bool,
) -> Result<(), Failure> {
    let split = match split {
        "test" => Split::Test,
        "dev" => Split::Dev,
        "train" => Split::Train,
        other => {
            return Err(Failure::Input(format!(
                "--split `{other}`: allowed: test, dev, train"
            )));
        }
    };
    let saved = SavedPolicy::load(policy_file).map_err(|e| e.to_string())?;
    let mut s = match (setting_name, file) {
        (None, None) => saved.setting.clone(),
        (name, file) => setting_file::load(name.unwrap_or_default(), file)?,
    };
    apply_setting_overrides(&mut s, overrides)
        .map_err(|(k, v, e)| format!("--set {k}={v}: {e}"))?;
    // the policy may need features the embedded setting hides (e.g. mean/std for the GNN)
    for f in &saved.setting.observation.static_features {
        if !s.observation.static_features.contains(f) {
            s.observation.static_features.push(*f);
        }
    }
    let policy = saved.check_setting(&s).map_err(|e| e.to_string())?;
    let mut config =
        TrainConfig::default_for(s.clone(), saved.spec.kind()).map_err(|e| e.to_string())?;
    config.setting = s;
    let tape = hdpo_train::budget::measure_tape(&config, &policy, &saved.params)
        .map_err(|e| e.to_string())?;
    let estimate = hdpo_train::budget::evaluation(
        &config,
        &policy,
        &saved.params,
        tape,
        rayon::current_num_threads(),
        split,
    );
    Limits::machine()
        .forced(force)
        .check("this evaluation", &estimate)?;
    let t0 = Instant::now();
    let report = evaluate_policy(&config, &policy, &saved.params, split)
        .map_err(|e| Failure::Run(e.to_string()))?;
    outln!(
        "{} on {} ({:?}, {} samples × {} periods, {} ignored): cost per store per period {:.4}{}{} [{:.1} s]",
        saved.spec.kind(),
        config.setting.name,
        split,
        report.n_samples,
        report.periods,
        report.ignore_periods,
        report.cost_per_store_period,
        report
            .cost_std_error
            .map_or(String::new(), |se| format!(" ± {se:.4} (s.e.)")),
        if policy.admissible() {
            ""
        } else {
            " (non-admissible oracle: a bound)"
        },
        t0.elapsed().as_secs_f64()
    );
    let reference = reference_of(&config.setting);
    match reference.gap_text(report.cost_per_store_period) {
        Some(gap) => outln!("{gap} ({})", reference.summary()),
        None => outln!("optimum: {}", reference.summary()),
    }
    Ok(())
}

/// `hdpo act`: the orders of the policy in `policy_file` for the states in `state_file`, printed
/// as JSON or CSV.
pub fn act(
    policy_file: &Path,
    state_file: &Path,
    format: &str,
    sample: usize,
) -> Result<(), Failure> {
    if !matches!(format, "json" | "csv") {
        return Err(Failure::Input(format!(
            "--format `{format}`: allowed: json, csv"
        )));
    }
    let saved = SavedPolicy::load(policy_file).map_err(|e| e.to_string())?;
    let samples = saved.setting.split(Split::Test).n_samples;
    if sample >= samples {
        return Err(Failure::Input(format!(
            "--sample {sample}: allowed: 0 … {} (the policy's test split has {samples} samples)",
            samples - 1
        )));
    }
    let text = std::fs::read_to_string(state_file).map_err(|e| {
        Failure::Input(format!(
            "--state: cannot read `{}`: {e}",
            state_file.display()
        ))
    })?;
    let extension = state_file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    let states = match extension.to_ascii_lowercase().as_str() {
        "json" => hdpo_train::act::states_from_json(&text),
        "csv" => hdpo_train::act::states_from_csv(&text),
        _ => {
            return Err(Failure::Input(format!(
                "--state `{}`: the file name must end in .json or .csv",
                state_file.display()
            )));
        }
    }
    .map_err(|e| Failure::Input(format!("--state `{}`: {e}", state_file.display())))?;
    let orders = hdpo_train::act::act(&saved, &states, hdpo_train::act::ActOptions { sample })
        .map_err(|e| Failure::Input(e.to_string()))?;
    let text = match format {
        "csv" => hdpo_train::act::orders_to_csv(&orders),
        _ => {
            // one state's orders per line
            let lines = orders
                .iter()
                .map(|o| serde_json::to_string(o).map(|line| format!("  {line}")))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::Run(format!("cannot write the orders as JSON: {e}")))?;
            format!("[\n{}\n]\n", lines.join(",\n"))
        }
    };
    emit(&text)
}

/// What `hdpo optimum` was asked to do.
pub struct OptimumRequest {
    /// Embedded setting name.
    pub setting: String,
    /// A setting file replacing `setting`.
    pub setting_file: Option<PathBuf>,
    /// A training configuration whose setting to use instead of `setting`.
    pub config: Option<PathBuf>,
    /// `key=value` overrides of the setting (`setting.` prefix optional).
    pub overrides: Vec<(String, String)>,
    /// Also compute the best base-stock and capped base-stock costs (one lost-sales store).
    pub heuristics: bool,
    /// Print JSON instead of text.
    pub json: bool,
    /// Do not read or write the cache.
    pub no_cache: bool,
}

/// Resolves the setting of `hdpo optimum`: an embedded setting, a setting file or a config file, then
/// the overrides (`setting.` prefix optional, as in `hdpo train --set setting.…`).
fn resolve_setting(
    name: &str,
    file: Option<&Path>,
    config: Option<&Path>,
    overrides: &[(String, String)],
) -> Result<Setting, String> {
    let mut s = match config {
        Some(path) => {
            TrainConfig::from_file(path)
                .map_err(|e| format!("--config: {e}"))?
                .setting
        }
        None => setting_file::load(name, file)?,
    };
    apply_setting_overrides(&mut s, overrides).map_err(|(k, v, e)| {
        format!("--set {k}={v}: {e} (hdpo optimum reads setting keys only, e.g. setting.stores.lead_time)")
    })?;
    Ok(s)
}

fn json_escape(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

/// `hdpo optimum`: the optimum or bound of an instance. "No known bound" is a normal outcome (exit
/// 0); an unsupported variant or a solver failure is an error.
pub fn optimum(req: OptimumRequest) -> Result<(), Failure> {
    let s = resolve_setting(
        &req.setting,
        req.setting_file.as_deref(),
        req.config.as_deref(),
        &req.overrides,
    )?;
    let classification = Problem::from_setting(&s).map_err(|e| e.to_string())?;
    let cache = (!req.no_cache).then(OptimumCache::from_env);
    let reference = match classification {
        Classification::Solvable(problem) => solve_cached(&problem, cache.as_ref()),
        Classification::NoKnownBound { reason } => Reference::NoKnownBound { reason },
        Classification::Unsupported { reason } => Reference::Unsupported { reason },
    };
    let overrides: Vec<String> = req
        .overrides
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let setting_text = if overrides.is_empty() {
        s.name.clone()
    } else {
        format!("{} with {}", s.name, overrides.join(", "))
    };
    match &reference {
        Reference::Known {
            problem,
            solved,
            source,
            warnings,
        } => {
            for warning in warnings {
                note!("warning: {warning}");
            }
            let heuristics = if req.heuristics {
                match problem {
                    Problem::LostSalesPoisson { stores } if stores.len() == 1 => {
                        Some(lost_sales_heuristics(&stores[0])?)
                    }
                    _ => {
                        return Err(Failure::Input("--heuristics: only for a single lost-sales store (best base stock and capped base stock)".into()));
                    }
                }
            } else {
                None
            };
            let (source_kind, cache_file) = match source {
                Source::Computed => ("computed", cache.as_ref().map(|c| c.path(problem))),
                Source::Cache(path) => ("cache", Some(path.clone())),
            };
            if req.json {
                let extra: Vec<String> = heuristics
                    .iter()
                    .flatten()
                    .map(|(name, cost)| {
                        format!("{{\"policy\": {}, \"cost\": {cost}}}", json_escape(name))
                    })
                    .collect();
                outln!(
                    "{{\"setting\": {}, \"status\": {}, \"cost\": {}, \"what\": {}, \"solver\": {}, \"source\": {}, \"cache_file\": {}, \"solve_seconds\": {}, \"heuristics\": [{}]}}",
                    json_escape(&s.name),
                    json_escape(match solved.kind {
                        ReferenceKind::Exact => "exact",
                        ReferenceKind::LowerBound => "lower_bound",
                    }),
                    solved.cost,
                    json_escape(&solved.what),
                    json_escape(problem.solver_name()),
                    json_escape(source_kind),
                    cache_file.map_or("null".to_string(), |p| json_escape(
                        &p.display().to_string()
                    )),
                    solved.solve_seconds,
                    extra.join(", ")
                );
            } else {
                outln!("setting: {setting_text}");
                outln!(
                    "{}: {:.4} per store per period",
                    solved.kind.label(),
                    solved.cost
                );
                outln!("  how: {}", solved.what);
                if solved.kind == ReferenceKind::LowerBound {
                    outln!(
                        "  a gap to it is an upper bound on the optimality gap (the optimum itself is unknown)"
                    );
                }
                if let Some(rows) = &heuristics {
                    for (name, cost) in rows {
                        outln!(
                            "  {name}: {cost:.4} ({:+.2} % above the optimum)",
                            100.0 * (cost / solved.cost - 1.0)
                        );
                    }
                }
                let where_ = match (&source, &cache_file) {
                    (Source::Cache(path), _) => format!("read from the cache {}", path.display()),
                    (Source::Computed, Some(path)) => format!(
                        "computed in {:.2} s, cached in {}",
                        solved.solve_seconds,
                        path.display()
                    ),
                    (Source::Computed, None) => {
                        format!("computed in {:.2} s (no cache)", solved.solve_seconds)
                    }
                };
                outln!("  solver: {} · {where_}", problem.solver_name());
            }
            Ok(())
        }
        Reference::NoKnownBound { reason } => {
            if req.json {
                outln!(
                    "{{\"setting\": {}, \"status\": \"no_known_bound\", \"cost\": null, \"what\": {}}}",
                    json_escape(&s.name),
                    json_escape(reason)
                );
            } else {
                outln!("setting: {setting_text}");
                outln!("no known bound: {reason}.");
                outln!(
                    "  report trained policies against the best policy found (e.g. the best of several policies or runs), and say so"
                );
            }
            Ok(())
        }
        Reference::Unsupported { reason } => Err(Failure::Input(format!(
            "no optimum or bound for setting `{setting_text}`: {reason}"
        ))),
        Reference::Failed { problem, reason } => Err(Failure::Input(format!(
            "the {} solver failed for setting `{setting_text}`: {reason}",
            problem.solver_name()
        ))),
    }
}

/// What `hdpo reproduce` was asked to do.
pub struct ReproduceRequest {
    /// Experiment name, or `all`.
    pub experiment: String,
    /// `smoke` or `full`.
    pub scale: String,
    /// Output root.
    pub out: PathBuf,
    /// Only cells whose id contains this.
    pub filter: Option<String>,
    /// At most this many cells.
    pub limit: Option<usize>,
    /// Only part `i/n` of the cells (`--cells`).
    pub cells: Option<String>,
    /// Gather the cell records of these parts' output roots instead of training (`--merge`).
    pub merge: Vec<PathBuf>,
    /// Overrides applied to every cell.
    pub overrides: Vec<(String, String)>,
    /// Only list the cells.
    pub list: bool,
    /// Run cells whose memory or time estimate is over the machine's limits anyway.
    pub force: bool,
}

/// Progress of `hdpo reproduce`: a bar of cells on a terminal, plain lines otherwise.
struct CellProgress {
    bar: Option<ProgressBar>,
    done: usize,
    total: usize,
    last_line: Instant,
}

impl CellProgress {
    fn new() -> CellProgress {
        CellProgress {
            bar: None,
            done: 0,
            total: 0,
            last_line: Instant::now(),
        }
    }

    fn event(&mut self, experiment: &str, event: Event<'_>) {
        match event {
            Event::Start { total, done } => {
                self.total = total;
                self.done = 0;
                note!("hdpo reproduce {experiment}: {total} cells, {done} already done (skipped)");
                self.bar = std::io::stderr().is_terminal().then(|| {
                    let bar = ProgressBar::new(total as u64);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{bar:30} cells {pos}/{len} {msg} [{elapsed_precise} < {eta_precise}]",
                        )
                        .expect("valid template"),
                    );
                    bar
                });
            }
            Event::CellStart { index, cell } => {
                let msg = format!("{} ({})", cell.id, cell.policy);
                match &self.bar {
                    Some(bar) => bar.set_message(msg),
                    None => note!("[{}/{}] {msg} …", index + 1, self.total),
                }
                self.last_line = Instant::now();
            }
            Event::Epoch {
                cell,
                record,
                max_epochs,
            } => {
                let msg = format!(
                    "{} epoch {}/{max_epochs} train {:.4}",
                    cell.id,
                    record.epoch + 1,
                    record.train_cost
                );
                match &self.bar {
                    Some(bar) => bar.set_message(msg),
                    None => {
                        if self.last_line.elapsed().as_secs_f64() > 30.0 {
                            note!("    {msg}");
                            self.last_line = Instant::now();
                        }
                    }
                }
            }
            Event::CellDone {
                index,
                cell,
                record,
                skipped,
            } => {
                self.done += 1;
                let outcome = match record.status {
                    CellStatus::Done => format!(
                        "test {:.4}{}{}{}",
                        record.test_cost.unwrap_or(f64::NAN),
                        record
                            .test_std_error
                            .map_or(String::new(), |se| format!(" ± {se:.4}")),
                        record
                            .test_gap_pct
                            .map_or(String::new(), |g| format!(" gap {g:+.2} %")),
                        if skipped { " (already done)" } else { "" }
                    ),
                    CellStatus::Unavailable => {
                        format!("unavailable: {}", record.reason.as_deref().unwrap_or(""))
                    }
                    CellStatus::Failed => {
                        format!("FAILED: {}", record.reason.as_deref().unwrap_or(""))
                    }
                };
                match &self.bar {
                    Some(bar) => {
                        bar.set_position(self.done as u64);
                        if !skipped {
                            bar.println(format!("{} {outcome}", cell.id));
                        }
                    }
                    None => note!(
                        "[{}/{}] {} {outcome}  ({} done)",
                        index + 1,
                        self.total,
                        cell.id,
                        self.done
                    ),
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

/// `hdpo reproduce --merge`: the parts' records into `--out`, and the whole grid's tables.
fn merge(req: &ReproduceRequest, scale: Scale, experiments: &[Experiment]) -> Result<(), Failure> {
    if req.filter.is_some() || req.limit.is_some() || req.cells.is_some() {
        return Err(Failure::Input(
            "--merge gathers whole parts: it takes no --filter, --limit or --cells".into(),
        ));
    }
    let mut command = format!(
        "hdpo reproduce {} --scale {} --out {}",
        req.experiment,
        scale.name(),
        req.out.display()
    );
    for part in &req.merge {
        let _ = write!(command, " --merge {}", part.display());
    }
    for experiment in experiments {
        let options = ReproduceOptions {
            scale,
            out: req.out.clone(),
            filter: None,
            limit: None,
            part: None,
            overrides: req.overrides.clone(),
            cache: Some(OptimumCache::from_env()),
            command: command.clone(),
            limits: Limits::machine(),
        };
        let summary =
            reproduce::merge_parts(*experiment, &options, &req.merge).map_err(|e| match e {
                ReproduceError::Input(e) => Failure::Input(format!("{}: {e}", experiment.name())),
                ReproduceError::Output(e) => Failure::Run(format!("{}: {e}", experiment.name())),
            })?;
        note!(
            "{}: {} records copied, {} already there → {}",
            experiment.name(),
            summary.copied,
            summary.identical,
            summary.dir.join("results.md").display()
        );
    }
    Ok(())
}

/// `hdpo reproduce`.
pub fn reproduce(req: ReproduceRequest) -> Result<(), Failure> {
    let scale = Scale::parse(&req.scale).map_err(|e| format!("--scale: {e}"))?;
    let experiments: Vec<Experiment> = if req.experiment == "all" {
        Experiment::ALL.to_vec()
    } else {
        vec![Experiment::parse(&req.experiment).map_err(|e| format!("<EXPERIMENT>: {e}, all"))?]
    };
    if req.limit == Some(0) {
        return Err(Failure::Input("--limit 0: allowed: an integer ≥ 1".into()));
    }
    let part = req
        .cells
        .as_deref()
        .map(reproduce::Part::parse)
        .transpose()
        .map_err(|e| Failure::Input(format!("--cells {e}")))?;
    if req.list {
        for experiment in &experiments {
            outln!("{}: {}", experiment.name(), experiment.description());
            let matching = experiment.cells().into_iter().filter(|cell| {
                req.filter
                    .as_ref()
                    .is_none_or(|f| cell.id.contains(f.as_str()))
            });
            for (position, cell) in matching.enumerate() {
                if part.is_none_or(|p| p.contains(position)) {
                    outln!("  {:<40} {} · {}", cell.id, cell.setting, cell.policy);
                }
            }
        }
        return Ok(());
    }
    if !req.merge.is_empty() {
        return merge(&req, scale, &experiments);
    }
    let interrupt = signals::install().map_err(Failure::Run)?;
    let mut command = format!("hdpo reproduce {} --scale {}", req.experiment, scale.name());
    if req.out != Path::new("reproduce") {
        let _ = write!(command, " --out {}", req.out.display());
    }
    for (k, v) in &req.overrides {
        let _ = write!(command, " --set {k}={v}");
    }
    if let Some(filter) = &req.filter {
        let _ = write!(command, " --filter {filter}");
    }
    if let Some(cells) = &req.cells {
        let _ = write!(command, " --cells {cells}");
    }
    if let Some(limit) = req.limit {
        let _ = write!(command, " --limit {limit}");
    }
    if req.force {
        command.push_str(" --force");
    }
    interrupt.training(&format!(
        "finished cells are recorded and the running cell keeps its last checkpoint: re-run `{command}` to continue"
    ));
    for experiment in experiments {
        let options = ReproduceOptions {
            scale,
            out: req.out.clone(),
            filter: req.filter.clone(),
            limit: req.limit,
            part,
            overrides: req.overrides.clone(),
            cache: Some(OptimumCache::from_env()),
            command: command.clone(),
            limits: Limits::machine().forced(req.force),
        };
        let mut progress = CellProgress::new();
        let result = reproduce::run_experiment(experiment, &options, interrupt.flag(), |event| {
            progress.event(experiment.name(), event)
        });
        progress.finish();
        let summary = match result {
            Ok(summary) => summary,
            Err(ReproduceError::Input(e))
                if req.experiment == "all" && e.starts_with("no cell") =>
            {
                note!("{}: {e}", experiment.name());
                continue;
            }
            Err(ReproduceError::Input(e)) => return Err(Failure::Input(e)),
            Err(ReproduceError::Output(e)) => {
                return Err(Failure::Run(format!(
                    "{}: {e}; finished cells are recorded, re-run `{command}` to continue",
                    experiment.name()
                )));
            }
        };
        note!(
            "{}: {} trained, {} already done, {} unavailable, {} failed → {}",
            experiment.name(),
            summary.ran,
            summary.skipped,
            summary.unavailable,
            summary.failed,
            summary.dir.join("results.md").display()
        );
        if summary.interrupted {
            let signal = interrupt.signal().unwrap_or(signals::SIGINT);
            return Err(Failure::Interrupted {
                signal,
                message: format!(
                    "interrupted by {}: finished cells are recorded and the running cell keeps its checkpoint; re-run `{command}` to continue",
                    signals::name(signal)
                ),
            });
        }
    }
    Ok(())
}
