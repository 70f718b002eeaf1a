//! The work behind each `hdpo` subcommand, as library functions (so tests can call them). Errors
//! are plain messages naming the offending argument or field.

use hdpo_policy::{POLICY_KINDS, SavedPolicy};
use hdpo_sim::config::Split;
use hdpo_sim::settings::{list_settings, setting};
use hdpo_train::optimum::{
    Classification, OptimumCache, Problem, Reference, Source, lost_sales_heuristics, reference_for,
};
use hdpo_train::reproduce::{self, CellStatus, Event, Experiment, ReproduceOptions, Scale};
use hdpo_train::{
    Checkpoint, EpochRecord, RunDir, StopReason, TrainConfig, TrainConfigError, Trainer,
    evaluate_policy,
};
use indicatif::{ProgressBar, ProgressStyle};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Prints the embedded settings, one line each.
pub fn print_settings() {
    for info in list_settings() {
        println!("{:<28} {}", info.name, info.description);
    }
}

/// Prints the policies, one line each.
pub fn print_policies() {
    for (name, description) in POLICY_KINDS {
        println!("{name:<20} {description}");
    }
}

/// What `hdpo train` was asked to do.
pub struct TrainRequest {
    /// Embedded setting name.
    pub setting: String,
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
}

/// Resolves the configuration of a fresh run.
pub fn resolve_config(req: &TrainRequest) -> Result<TrainConfig, String> {
    let mut config = match &req.config {
        Some(path) => {
            let mut config = TrainConfig::from_file(path).map_err(|e| e.to_string())?;
            for (k, v) in &req.overrides {
                config
                    .apply_override(k, v)
                    .map_err(|e| format!("--set {k}={v}: {e}"))?;
            }
            config
        }
        None => {
            let s = setting(&req.setting).map_err(|e| format!("--setting: {e}"))?;
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
                    eprintln!(
                        "epoch {:>5}  {msg}  lr {:.2e}  {:.1}s",
                        r.epoch, r.learning_rate, r.elapsed_seconds
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
pub fn train(req: TrainRequest) -> Result<(), String> {
    let (mut trainer, dir) = match &req.resume {
        Some(dir) => {
            if req.config.is_some() || !req.overrides.is_empty() || req.seed.is_some() {
                return Err("--resume continues a run with its own configuration; drop --config/--set/--seed".into());
            }
            let checkpoint = Checkpoint::load(&dir.join("checkpoint.json"))?;
            let trainer = Trainer::resume(checkpoint).map_err(|e| e.to_string())?;
            (trainer, RunDir::create(dir)?)
        }
        None => {
            let config = resolve_config(&req)?;
            let dir = RunDir::create(&req.out.clone().unwrap_or_else(|| default_out(&config)))?;
            hdpo_train::write_atomic(&dir.file("config.toml"), config.to_toml_string().as_bytes())?;
            (Trainer::new(config).map_err(|e| e.to_string())?, dir)
        }
    };
    let reference = reference_of(&trainer.config.setting);
    let cfg = &trainer.config;
    eprintln!(
        "hdpo train: setting {} · policy {} · {} parameters · lr {} · up to {} epochs · output {}",
        cfg.setting.name,
        cfg.policy.kind(),
        trainer.params.num_scalars(),
        cfg.learning_rate,
        cfg.max_epochs,
        dir.path.display()
    );
    eprintln!("reference: {}", reference.summary());
    if !trainer.policy.admissible() {
        eprintln!(
            "note: `{}` reads future demand: it is NOT an admissible policy; its cost is a bound",
            cfg.policy.kind()
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // a second handler registration (tests calling train twice) is harmless to ignore
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let mut progress = Progress::new(trainer.config.max_epochs, trainer.epoch);
    let mut save_error = None;
    let outcome = trainer.run(&stop, |t, record| {
        progress.update(record);
        if record.dev_cost.is_some()
            && let Err(e) = save_state(t, &dir, &reference)
        {
            save_error = Some(e);
        }
    });
    progress.finish();
    if let Some(e) = save_error {
        return Err(e);
    }
    let reason = match outcome {
        Ok(reason) => reason,
        Err(e) => {
            // never write parameters from a failed step: the last checkpoint stays as it was
            return Err(format!(
                "{e}; last good checkpoint in {}",
                dir.file("checkpoint.json").display()
            ));
        }
    };
    save_state(&trainer, &dir, &reference)?;
    if reason == StopReason::Interrupted {
        eprintln!(
            "interrupted at epoch {}: checkpoint written; continue with `hdpo train --resume {}`",
            trainer.epoch,
            dir.path.display()
        );
        return Ok(());
    }
    let train_seconds = trainer.elapsed_seconds();
    let dev = trainer
        .evaluate(Split::Dev, true)
        .map_err(|e| e.to_string())?;
    let test = if trainer.config.run_test {
        let t0 = Instant::now();
        let report = trainer.test().map_err(|e| e.to_string())?;
        Some((report, t0.elapsed().as_secs_f64()))
    } else {
        None
    };
    let report = render_report(
        &trainer,
        reason,
        dev.cost_per_store_period,
        test.as_ref().map(|t| (t.0.cost_per_store_period, t.1)),
        train_seconds,
        &reference,
    );
    hdpo_train::write_atomic(&dir.file("report.md"), report.as_bytes())?;
    print!("{report}");
    Ok(())
}

/// The optimum or bound of a setting (cached on disk); cache trouble is a warning, never an error.
fn reference_of(setting: &hdpo_sim::config::Setting) -> Reference {
    let cache = OptimumCache::from_env();
    match reference_for(setting, Some(&cache)) {
        Ok(reference) => {
            if let Reference::Known { warnings, .. } = &reference {
                for warning in warnings {
                    eprintln!("warning: {warning}");
                }
            }
            reference
        }
        Err(e) => Reference::Unsupported {
            reason: format!("the setting is invalid: {e}"),
        },
    }
}

fn save_state(trainer: &Trainer, dir: &RunDir, reference: &Reference) -> Result<(), String> {
    trainer.checkpoint().save(&dir.file("checkpoint.json"))?;
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
    test: Option<(f64, f64)>,
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
        Some((cost, secs)) => {
            let _ = writeln!(r, "| test cost (best params) | {cost:.4} |");
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
            if let Some((test_cost, _)) = test {
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

/// `hdpo eval`.
pub fn eval(
    policy_file: &Path,
    setting_name: Option<&str>,
    split: &str,
    overrides: &[(String, String)],
) -> Result<(), String> {
    let split = match split {
        "test" => Split::Test,
        "dev" => Split::Dev,
        "train" => Split::Train,
        other => return Err(format!("--split `{other}`: allowed: test, dev, train")),
    };
    let saved = SavedPolicy::load(policy_file).map_err(|e| e.to_string())?;
    let mut s = match setting_name {
        Some(name) => setting(name).map_err(|e| format!("--setting: {e}"))?,
        None => saved.setting.clone(),
    };
    for (k, v) in overrides {
        let key = k.strip_prefix("setting.").unwrap_or(k);
        s.apply_override(key, v)
            .map_err(|e| format!("--set {k}={v}: {e}"))?;
    }
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
    let t0 = Instant::now();
    let report =
        evaluate_policy(&config, &policy, &saved.params, split).map_err(|e| e.to_string())?;
    println!(
        "{} on {} ({:?}, {} samples × {} periods, {} ignored): cost per store per period {:.4}{} [{:.1} s]",
        saved.spec.kind(),
        config.setting.name,
        split,
        report.n_samples,
        report.periods,
        report.ignore_periods,
        report.cost_per_store_period,
        if policy.admissible() {
            ""
        } else {
            " (non-admissible oracle: a bound)"
        },
        t0.elapsed().as_secs_f64()
    );
    let reference = reference_of(&config.setting);
    match reference.gap_text(report.cost_per_store_period) {
        Some(gap) => println!("{gap} ({})", reference.summary()),
        None => println!("optimum: {}", reference.summary()),
    }
    Ok(())
}

/// What `hdpo optimum` was asked to do.
pub struct OptimumRequest {
    /// Embedded setting name.
    pub setting: String,
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

/// Resolves the setting of `hdpo optimum` / `hdpo eval`: an embedded setting or a config file, then
/// the overrides (`setting.` prefix optional, as in `hdpo train --set setting.…`).
fn resolve_setting(
    name: &str,
    config: Option<&Path>,
    overrides: &[(String, String)],
) -> Result<hdpo_sim::config::Setting, String> {
    let mut s = match config {
        Some(path) => {
            TrainConfig::from_file(path)
                .map_err(|e| format!("--config: {e}"))?
                .setting
        }
        None => setting(name).map_err(|e| format!("--setting: {e}"))?,
    };
    for (k, v) in overrides {
        let key = k.strip_prefix("setting.").unwrap_or(k);
        s.apply_override(key, v).map_err(|e| {
            format!("--set {k}={v}: {e} (hdpo optimum reads setting keys only, e.g. setting.stores.lead_time)")
        })?;
    }
    Ok(s)
}

fn json_escape(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

/// `hdpo optimum`: the optimum or bound of an instance. "No known bound" is a normal outcome (exit
/// 0); an unsupported variant or a solver failure is an error.
pub fn optimum(req: OptimumRequest) -> Result<(), String> {
    let s = resolve_setting(&req.setting, req.config.as_deref(), &req.overrides)?;
    let classification = Problem::from_setting(&s).map_err(|e| e.to_string())?;
    let cache = (!req.no_cache).then(OptimumCache::from_env);
    let reference = match classification {
        Classification::Solvable(problem) => {
            hdpo_train::optimum::solve_cached(&problem, cache.as_ref())
        }
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
                eprintln!("warning: {warning}");
            }
            let heuristics = if req.heuristics {
                match problem {
                    Problem::LostSalesPoisson { stores } if stores.len() == 1 => {
                        Some(lost_sales_heuristics(&stores[0])?)
                    }
                    _ => {
                        return Err("--heuristics: only for a single lost-sales store (best base stock and capped base stock)".into());
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
                println!(
                    "{{\"setting\": {}, \"status\": {}, \"cost\": {}, \"what\": {}, \"solver\": {}, \"source\": {}, \"cache_file\": {}, \"solve_seconds\": {}, \"heuristics\": [{}]}}",
                    json_escape(&s.name),
                    json_escape(match solved.kind {
                        hdpo_train::optimum::ReferenceKind::Exact => "exact",
                        hdpo_train::optimum::ReferenceKind::LowerBound => "lower_bound",
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
                println!("setting: {setting_text}");
                println!(
                    "{}: {:.4} per store per period",
                    solved.kind.label(),
                    solved.cost
                );
                println!("  how: {}", solved.what);
                if solved.kind == hdpo_train::optimum::ReferenceKind::LowerBound {
                    println!(
                        "  a gap to it is an upper bound on the optimality gap (the optimum itself is unknown)"
                    );
                }
                if let Some(rows) = &heuristics {
                    for (name, cost) in rows {
                        println!(
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
                println!("  solver: {} · {where_}", problem.solver_name());
            }
            Ok(())
        }
        Reference::NoKnownBound { reason } => {
            if req.json {
                println!(
                    "{{\"setting\": {}, \"status\": \"no_known_bound\", \"cost\": null, \"what\": {}}}",
                    json_escape(&s.name),
                    json_escape(reason)
                );
            } else {
                println!("setting: {setting_text}");
                println!("no known bound: {reason}.");
                println!(
                    "  report trained policies against the best policy found (e.g. the best of several policies or runs), and say so"
                );
            }
            Ok(())
        }
        Reference::Unsupported { reason } => Err(format!(
            "no optimum or bound for setting `{setting_text}`: {reason}"
        )),
        Reference::Failed { problem, reason } => Err(format!(
            "the {} solver failed for setting `{setting_text}`: {reason}",
            problem.solver_name()
        )),
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
    /// Overrides applied to every cell.
    pub overrides: Vec<(String, String)>,
    /// Only list the cells.
    pub list: bool,
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
                eprintln!(
                    "hdpo reproduce {experiment}: {total} cells, {done} already done (skipped)"
                );
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
                    None => eprintln!("[{}/{}] {msg} …", index + 1, self.total),
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
                            eprintln!("    {msg}");
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
                        "test {:.4}{}{}",
                        record.test_cost.unwrap_or(f64::NAN),
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
                    None => eprintln!(
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

/// `hdpo reproduce`.
pub fn reproduce(req: ReproduceRequest) -> Result<(), String> {
    let scale = Scale::parse(&req.scale).map_err(|e| format!("--scale: {e}"))?;
    let experiments: Vec<Experiment> = if req.experiment == "all" {
        Experiment::ALL.to_vec()
    } else {
        vec![Experiment::parse(&req.experiment).map_err(|e| format!("<EXPERIMENT>: {e}, all"))?]
    };
    if req.limit == Some(0) {
        return Err("--limit 0: allowed: an integer ≥ 1".into());
    }
    if req.list {
        for experiment in &experiments {
            println!("{}: {}", experiment.name(), experiment.description());
            for cell in experiment.cells() {
                if req
                    .filter
                    .as_ref()
                    .is_none_or(|f| cell.id.contains(f.as_str()))
                {
                    println!("  {:<40} {} · {}", cell.id, cell.setting, cell.policy);
                }
            }
        }
        return Ok(());
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
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
    if let Some(limit) = req.limit {
        let _ = write!(command, " --limit {limit}");
    }
    for experiment in experiments {
        let options = ReproduceOptions {
            scale,
            out: req.out.clone(),
            filter: req.filter.clone(),
            limit: req.limit,
            overrides: req.overrides.clone(),
            cache: Some(OptimumCache::from_env()),
            command: command.clone(),
        };
        let mut progress = CellProgress::new();
        let result = reproduce::run_experiment(experiment, &options, &stop, |event| {
            progress.event(experiment.name(), event)
        });
        progress.finish();
        let summary = match result {
            Err(e) if req.experiment == "all" && e.starts_with("no cell") => {
                eprintln!("{}: {e}", experiment.name());
                continue;
            }
            other => other?,
        };
        eprintln!(
            "{}: {} trained, {} already done, {} unavailable, {} failed → {}",
            experiment.name(),
            summary.ran,
            summary.skipped,
            summary.unavailable,
            summary.failed,
            summary.dir.join("results.md").display()
        );
        if summary.interrupted {
            eprintln!(
                "interrupted: finished cells are recorded and the running cell keeps its checkpoint; re-run the same command to continue"
            );
            return Ok(());
        }
    }
    Ok(())
}
