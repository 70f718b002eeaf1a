//! The runner: [`run_cells`] resolves every cell's configuration first (a bad override fails
//! before any training), skips finished cells, trains and tests the others one by one (a cell
//! interrupted mid-training resumes from its checkpoint), records each outcome, and rewrites the
//! tables after every cell. It reports progress through [`Event`]s.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use hdpo_policy::PolicyError;
use hdpo_sim::config::Split;

use crate::budget::Limits;
use crate::checkpoint::{Checkpoint, remove_stale_temp_files, retry_once, write_atomic};
use crate::error::TrainError;
use crate::optimum_cache::{OptimumCache, reference_for};
use crate::record::{EpochRecord, StopReason};
use crate::run::RunDir;
use crate::train_config::TrainConfig;
use crate::trainer::Trainer;

use super::cell_config::{cell_config, fingerprint};
use super::cell_record::{
    CELL_FORMAT, CellRecord, CellStatus, experiment_dir, failed_record, is_done, read_record,
    record_path,
};
use super::experiment::{Cell, Experiment, ReproduceOptions, Scale};
use super::tables::write_tables;

/// Why [`run_experiment`] stopped with an error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReproduceError {
    /// Bad options or overrides: nothing was trained.
    #[error("{0}")]
    Input(String),
    /// A file of the run could not be written (after one retry); finished cells are recorded.
    #[error("{0}")]
    Output(String),
}

/// What [`run_cells`] tells its caller as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// The plan: `total` cells, `done` of them already finished.
    Start {
        /// Cells to run (after filter and limit).
        total: usize,
        /// Already finished (will be skipped).
        done: usize,
    },
    /// A cell starts training (index counts from 0 over the plan).
    CellStart {
        /// Position in the plan.
        index: usize,
        /// The cell.
        cell: &'a Cell,
    },
    /// An epoch of the running cell finished.
    Epoch {
        /// The cell.
        cell: &'a Cell,
        /// The epoch's record.
        record: &'a EpochRecord,
        /// Maximum epochs of the cell.
        max_epochs: usize,
    },
    /// A cell finished (`skipped`: it was already done).
    CellDone {
        /// Position in the plan.
        index: usize,
        /// The cell.
        cell: &'a Cell,
        /// Its record.
        record: &'a CellRecord,
        /// True when not re-run.
        skipped: bool,
    },
}

/// Counts of a finished (or interrupted) reproduction run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Cells in the plan.
    pub planned: usize,
    /// Trained now.
    pub ran: usize,
    /// Already done, not re-run.
    pub skipped: usize,
    /// Recorded unavailable.
    pub unavailable: usize,
    /// Recorded failed.
    pub failed: usize,
    /// Stopped by the stop flag (the running cell keeps its checkpoint).
    pub interrupted: bool,
    /// The experiment's output directory.
    pub dir: PathBuf,
}

/// Runs an experiment (its cells after `filter` and `limit`), then writes the tables.
pub fn run_experiment(
    experiment: Experiment,
    options: &ReproduceOptions,
    stop: &AtomicBool,
    on_event: impl FnMut(Event<'_>),
) -> Result<Summary, ReproduceError> {
    run_cells(
        experiment.name(),
        experiment.description(),
        &experiment.cells(),
        options,
        stop,
        on_event,
    )
}

/// Runs `cells` (after `filter` and `limit`) as the experiment `name`, then writes the tables of all
/// of `cells`.
pub fn run_cells(
    name: &str,
    description: &str,
    cells: &[Cell],
    options: &ReproduceOptions,
    stop: &AtomicBool,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Summary, ReproduceError> {
    let dir = experiment_dir(&options.out, name);
    std::fs::create_dir_all(dir.join("cells"))
        .map_err(|e| ReproduceError::Input(format!("cannot create `{}`: {e}", dir.display())))?;
    remove_stale_temp_files(&dir);
    remove_stale_temp_files(&dir.join("cells"));
    let mut plan: Vec<&Cell> = cells
        .iter()
        .filter(|c| {
            options
                .filter
                .as_ref()
                .is_none_or(|f| c.id.contains(f.as_str()))
        })
        .collect();
    if let Some(part) = options.part {
        plan = plan
            .into_iter()
            .enumerate()
            .filter(|(position, _)| part.contains(*position))
            .map(|(_, c)| c)
            .collect();
        if plan.is_empty() {
            return Err(ReproduceError::Input(format!(
                "--cells {}/{}: this part has no cell (the filter leaves fewer than {} cells)",
                part.index, part.count, part.index
            )));
        }
    }
    if let Some(limit) = options.limit {
        plan.truncate(limit);
    }
    if plan.is_empty() {
        let ids: Vec<&str> = cells.iter().take(6).map(|c| c.id.as_str()).collect();
        return Err(ReproduceError::Input(format!(
            "no cell of `{name}` matches --filter {:?} (cell ids look like: {}, …)",
            options.filter.as_deref().unwrap_or(""),
            ids.join(", ")
        )));
    }
    // Resolve every configuration first: a bad override fails before any training.
    let configs: Vec<Result<TrainConfig, String>> = plan
        .iter()
        .map(|c| cell_config(c, options.scale, &options.overrides))
        .collect();
    for (cell, config) in plan.iter().zip(&configs) {
        if let Err(e) = config
            && e.starts_with("--set")
        {
            return Err(ReproduceError::Input(format!("cell {}: {e}", cell.id)));
        }
    }
    let done_before = plan
        .iter()
        .zip(&configs)
        .filter(|(c, cfg)| is_done(&dir, c, cfg.as_ref().ok()))
        .count();
    on_event(Event::Start {
        total: plan.len(),
        done: done_before,
    });
    let mut summary = Summary {
        planned: plan.len(),
        dir: dir.clone(),
        ..Summary::default()
    };
    for (index, (cell, config)) in plan.iter().zip(configs).enumerate() {
        if let Ok(cfg) = &config
            && is_done(&dir, cell, Some(cfg))
            && let Some(record) = read_record(&dir, &cell.id)
        {
            summary.skipped += 1;
            on_event(Event::CellDone {
                index,
                cell,
                record: &record,
                skipped: true,
            });
            continue;
        }
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            summary.interrupted = true;
            break;
        }
        on_event(Event::CellStart { index, cell });
        let outcome = match config {
            Ok(config) => {
                let scale = options.scale;
                let cache = options.cache.as_ref();
                let cell_ref: &Cell = cell;
                let run_dir = dir.join("runs").join(&cell.id);
                let mut on_epoch = |record: &EpochRecord, max_epochs: usize| {
                    on_event(Event::Epoch {
                        cell: cell_ref,
                        record,
                        max_epochs,
                    })
                };
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_cell(
                        name,
                        cell_ref,
                        config.clone(),
                        scale,
                        &run_dir,
                        cache,
                        &options.limits,
                        stop,
                        &mut on_epoch,
                    )
                }));
                match result {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(output)) => {
                        // the tables still show the cells finished so far
                        let _ = write_tables(&dir, name, description, cells, options);
                        return Err(ReproduceError::Output(format!(
                            "cell {}: {output}",
                            cell.id
                        )));
                    }
                    Err(panic) => {
                        let message = panic
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "unknown panic".into());
                        Some(failed_record(
                            name,
                            cell,
                            options.scale,
                            &fingerprint(&config),
                            CellStatus::Failed,
                            format!("panicked: {message}"),
                        ))
                    }
                }
            }
            Err(reason) => Some(failed_record(
                name,
                cell,
                options.scale,
                "",
                classify_config_error(&reason),
                reason,
            )),
        };
        let Some(record) = outcome else {
            summary.interrupted = true;
            break;
        };
        let text = serde_json::to_string_pretty(&record).expect("a record serialises");
        retry_once(|| write_atomic(&record_path(&dir, &cell.id), text.as_bytes()))
            .map_err(ReproduceError::Output)?;
        match record.status {
            CellStatus::Done => summary.ran += 1,
            CellStatus::Unavailable => summary.unavailable += 1,
            CellStatus::Failed => summary.failed += 1,
        }
        on_event(Event::CellDone {
            index,
            cell,
            record: &record,
            skipped: false,
        });
        retry_once(|| write_tables(&dir, name, description, cells, options))
            .map_err(ReproduceError::Output)?;
    }
    retry_once(|| write_tables(&dir, name, description, cells, options))
        .map_err(ReproduceError::Output)?;
    Ok(summary)
}

/// What [`merge_parts`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeSummary {
    /// Records copied into the output.
    pub copied: usize,
    /// Records the output already held, identical.
    pub identical: usize,
    /// The experiment's output directory.
    pub dir: PathBuf,
}

/// Gathers the cell records that parts of a grid (`--cells i/n`, each with its own `--out`) wrote
/// under `<part>/<experiment>/cells/` into `<options.out>/<experiment>/cells/`, then writes the
/// tables of the whole grid. Nothing is trained. Every record must come from the configuration
/// `options` gives its cell (the parts' `--scale` and `--set`). Two different records of the same cell (in two
/// parts, or in a part and the output) are an error naming both files; an identical one is
/// counted once.
pub fn merge_parts(
    experiment: Experiment,
    options: &ReproduceOptions,
    parts: &[PathBuf],
) -> Result<MergeSummary, ReproduceError> {
    let name = experiment.name();
    let cells = experiment.cells();
    let dir = experiment_dir(&options.out, name);
    std::fs::create_dir_all(dir.join("cells"))
        .map_err(|e| ReproduceError::Input(format!("cannot create `{}`: {e}", dir.display())))?;
    let mut summary = MergeSummary {
        dir: dir.clone(),
        ..MergeSummary::default()
    };
    // cell id → (the file it came from, its text), in id order
    let mut gathered: std::collections::BTreeMap<String, (PathBuf, String)> =
        std::collections::BTreeMap::new();
    for part in parts {
        let from = experiment_dir(part, name).join("cells");
        let entries = std::fs::read_dir(&from).map_err(|e| {
            ReproduceError::Input(format!(
                "--merge `{}`: cannot read `{}` ({e}); give the --out directory of a part",
                part.display(),
                from.display()
            ))
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let id = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            if !cells.iter().any(|c| c.id == id) {
                return Err(ReproduceError::Input(format!(
                    "--merge: `{}` is not a cell of `{name}`",
                    file.display()
                )));
            }
            let text = std::fs::read_to_string(&file).map_err(|e| {
                ReproduceError::Input(format!("--merge: cannot read `{}`: {e}", file.display()))
            })?;
            let record: CellRecord = serde_json::from_str(&text).map_err(|e| {
                ReproduceError::Input(format!(
                    "--merge: `{}` is not a cell record: {e}",
                    file.display()
                ))
            })?;
            let cell = cells.iter().find(|c| c.id == id).expect("checked above");
            let same_config = record.scale == options.scale
                && (record.fingerprint.is_empty()
                    || cell_config(cell, options.scale, &options.overrides)
                        .is_ok_and(|c| fingerprint(&c) == record.fingerprint));
            if !same_config {
                return Err(ReproduceError::Input(format!(
                    "--merge: `{}` was produced by another configuration (another --scale or \
                     --set, or another version of hdpo); merge with the --scale and --set the \
                     parts ran with",
                    file.display()
                )));
            }
            match gathered.get(&id) {
                Some((first, first_text)) if *first_text != text => {
                    return Err(ReproduceError::Input(format!(
                        "--merge: cell {id} has two different records, `{}` and `{}`; keep one \
                         (delete the other) and merge again",
                        first.display(),
                        file.display()
                    )));
                }
                Some(_) => {}
                None => {
                    gathered.insert(id, (file, text));
                }
            }
        }
    }
    // every record checked before any is copied: a refused merge leaves the output as it was
    for (id, (file, text)) in &gathered {
        let target = record_path(&dir, id);
        if let Ok(existing) = std::fs::read_to_string(&target)
            && existing != *text
        {
            return Err(ReproduceError::Input(format!(
                "--merge: cell {id} has two different records, `{}` and `{}`; keep one (delete \
                 the other) and merge again",
                file.display(),
                target.display()
            )));
        }
    }
    for (id, (_, text)) in &gathered {
        let target = record_path(&dir, id);
        if std::fs::read_to_string(&target).is_ok_and(|existing| existing == *text) {
            summary.identical += 1;
        } else {
            retry_once(|| write_atomic(&target, text.as_bytes()))
                .map_err(ReproduceError::Output)?;
            summary.copied += 1;
        }
    }
    retry_once(|| write_tables(&dir, name, experiment.description(), &cells, options))
        .map_err(ReproduceError::Output)?;
    Ok(summary)
}

fn classify_config_error(reason: &str) -> CellStatus {
    if reason.contains("unknown policy") || reason.contains("does not support") {
        CellStatus::Unavailable
    } else {
        CellStatus::Failed
    }
}

/// Trains and tests one cell; `Ok(None)` when interrupted (the checkpoint is kept for the next
/// run); `Err` when a file of the cell cannot be written (after one retry).
#[allow(clippy::too_many_arguments)]
fn run_cell(
    experiment: &str,
    cell: &Cell,
    config: TrainConfig,
    scale: Scale,
    run_dir: &Path,
    cache: Option<&OptimumCache>,
    limits: &Limits,
    stop: &AtomicBool,
    on_epoch: &mut dyn FnMut(&EpochRecord, usize),
) -> Result<Option<CellRecord>, String> {
    let print = fingerprint(&config);
    let fail = |status: CellStatus, reason: String| {
        Ok(Some(failed_record(
            experiment, cell, scale, &print, status, reason,
        )))
    };
    let reference = match reference_for(&config.setting, cache) {
        Ok(reference) => reference,
        Err(e) => return fail(CellStatus::Failed, e.to_string()),
    };
    let dir = match RunDir::create(run_dir) {
        Ok(dir) => dir,
        Err(e) => return fail(CellStatus::Failed, e),
    };
    let checkpoint_path = dir.file("checkpoint.json");
    let resumed = Checkpoint::load(&checkpoint_path)
        .ok()
        .filter(|c| c.config == config)
        .and_then(|c| Trainer::resume_within(c, limits).ok());
    let mut trainer = match resumed {
        Some(trainer) => trainer,
        None => match Trainer::new_within(config.clone(), limits) {
            Ok(trainer) => trainer,
            Err(TrainError::Policy(
                e @ (PolicyError::Unsupported { .. } | PolicyError::MissingFeature { .. }),
            )) => return fail(CellStatus::Unavailable, e.to_string()),
            Err(e) => return fail(CellStatus::Failed, e.to_string()),
        },
    };
    let max_epochs = trainer.config.max_epochs;
    let save = |t: &Trainer| retry_once(|| t.checkpoint().save(&checkpoint_path));
    let outcome = trainer.try_run(stop, |t, record| {
        on_epoch(record, max_epochs);
        if record.dev_cost.is_some() {
            save(t)?;
        }
        Ok(())
    });
    let reason = match outcome {
        Ok(reason) => reason,
        Err(TrainError::Output(e)) => return Err(e),
        Err(e) => return fail(CellStatus::Failed, e.to_string()),
    };
    if reason == StopReason::Interrupted {
        save(&trainer)?;
        return Ok(None);
    }
    let train_seconds = trainer.elapsed_seconds();
    let dev = match trainer.evaluate(Split::Dev, true) {
        Ok(report) => report.cost_per_store_period,
        Err(e) => return fail(CellStatus::Failed, e.to_string()),
    };
    let t0 = Instant::now();
    let test = match trainer.test() {
        Ok(report) => report,
        Err(e) => return fail(CellStatus::Failed, e.to_string()),
    };
    let test_seconds = t0.elapsed().as_secs_f64();
    let line = reference.curve_line();
    retry_once(|| dir.write_metrics(&trainer.history))?;
    retry_once(|| {
        dir.write_curve(
            &format!("{experiment} · {}", cell.id),
            &trainer.history,
            line.as_ref().map(|(v, l)| (*v, l.as_str())),
        )
    })?;
    save(&trainer)?;
    let known = reference.known();
    let seconds_to_1pct_dev = known.and_then(|(cost, _)| {
        trainer
            .history
            .iter()
            .find(|r| r.dev_cost.is_some_and(|d| d <= cost * 1.01))
            .map(|r| r.elapsed_seconds)
    });
    let sizes = trainer.config.setting.splits;
    Ok(Some(CellRecord {
        format: CELL_FORMAT.into(),
        experiment: experiment.into(),
        id: cell.id.clone(),
        scale,
        fingerprint: print.clone(),
        status: CellStatus::Done,
        reason: None,
        train_cost: trainer.history.last().map(|r| r.train_cost),
        dev_cost: Some(dev),
        test_cost: Some(test.cost_per_store_period),
        test_std_error: test.cost_std_error,
        reference_kind: known.map(|k| k.1),
        reference_cost: known.map(|k| k.0),
        reference_note: reference.summary(),
        test_gap_pct: reference.gap(test.cost_per_store_period).map(|g| 100.0 * g),
        epochs: trainer.epoch,
        stop_reason: Some(reason),
        train_seconds,
        test_seconds,
        seconds_to_1pct_dev,
        dev_curve: trainer
            .history
            .iter()
            .filter_map(|r| r.dev_cost.map(|d| (r.elapsed_seconds, d)))
            .collect(),
        train_scenarios: sizes.train.n_samples,
        test_size: format!(
            "{} × {} ({} ignored)",
            sizes.test.n_samples, sizes.test.periods, sizes.test.ignore_periods
        ),
    }))
}
