//! The work behind each `hdpo` subcommand, as library functions (so tests can call them). Errors
//! are plain messages naming the offending argument or field.

use hdpo_policy::{POLICY_KINDS, SavedPolicy};
use hdpo_sim::config::Split;
use hdpo_sim::settings::{list_settings, setting};
use hdpo_train::{
    Checkpoint, EpochRecord, RunDir, StopReason, TrainConfig, Trainer, evaluate_policy,
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
        Some(path) => TrainConfig::from_file(path).map_err(|e| e.to_string())?,
        None => {
            let s = setting(&req.setting).map_err(|e| format!("--setting: {e}"))?;
            TrainConfig::default_for(s, &req.policy).map_err(|e| format!("--policy: {e}"))?
        }
    };
    for (k, v) in &req.overrides {
        config
            .apply_override(k, v)
            .map_err(|e| format!("--set {k}={v}: {e}"))?;
    }
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
            && let Err(e) = save_state(t, &dir)
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
    save_state(&trainer, &dir)?;
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
    );
    hdpo_train::write_atomic(&dir.file("report.md"), report.as_bytes())?;
    print!("{report}");
    Ok(())
}

fn save_state(trainer: &Trainer, dir: &RunDir) -> Result<(), String> {
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
    dir.write_curve(&title, &trainer.history, None)
}

fn render_report(
    trainer: &Trainer,
    reason: StopReason,
    dev: f64,
    test: Option<(f64, f64)>,
    train_seconds: f64,
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
    Ok(())
}
