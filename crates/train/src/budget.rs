//! What a run will cost, estimated before it allocates: the memory of its training data, its
//! parameters and optimizer state, and its tapes, and the time of its epochs and evaluations —
//! checked against the memory the machine has free and a time limit, so that a setting or network
//! that cannot run is refused at once with the estimate, instead of aborting after allocating
//! gigabytes or running for years.
//!
//! The tape's size per sample and period is *measured*: one period of one and of two samples is
//! recorded on a tape (the policy's action and the simulator's step) and the difference counted, so
//! every policy kind is covered exactly, whatever its architecture. Times are rough (a constant
//! cost per recorded value, calibrated on the development machine): they only decide refusals
//! orders of magnitude away from a normal run. `--force` (the [`Limits::force`] flag) runs anyway.

use crate::error::TrainError;
use crate::train_config::TrainConfig;
use hdpo_autodiff::{ParamStore, Tape};
use hdpo_policy::{NetworkShape, Policy, TapeObservation};
use hdpo_sim::config::Split;
use hdpo_sim::eval::SplitDemand;
use hdpo_sim::fused::{TapeActions, TapeDynamics, TapeState};
use hdpo_sim::scenario::ScenarioGenerator;
use ndarray::Array2;
use std::fmt::Write as _;

/// The most memory the trainer spends on keeping the dev split's demand (256 MiB; the default
/// one_store_lost dev split takes 13 MB).
pub const DEV_DEMAND_MAX_BYTES: usize = 256 << 20;

/// The longest a run may be estimated to take without `--force`: 30 days.
pub const MAX_SECONDS: f64 = 30.0 * 86_400.0;

/// Seconds per value recorded on a training tape (forward and backward, per thread)…
const SECONDS_PER_TAPE_VALUE: f64 = 5e-9;
/// … plus seconds per parameter per sample and period (the multiply-adds of the layers). Fitted
/// on the development machine (2 cores, one epoch of each embedded default): the estimates come
/// out 0.5–1.4 × the measured epochs (one-store MLP 1.1 s for 0.8 s, vanilla_warehouse 21 s for
/// 30 s, serial GNN 60 s for 116 s). An evaluation (no backward pass) costs a third.
const SECONDS_PER_PARAMETER: f64 = 1e-10;

/// Bytes a training tape holds per value recorded in the forward pass: the value, and the
/// adjoints of the backward pass, which mostly reuse the buffers of values already consumed
/// (measured peak memory of a whole run per tape value: serial GNN 3.9 bytes, 13.5 GB; one-warehouse
/// GNN 4.2 bytes, 1.2 GB). A margin of about 10 % over that.
const TAPE_BYTES_PER_VALUE: f64 = 4.5;

/// Environment variable that caps the memory a run may plan for (bytes, or with a `K`/`M`/`G`/`T`
/// suffix): for shared machines, and for tests.
pub const MEMORY_LIMIT_VAR: &str = "HDPO_MEMORY_LIMIT";

/// What a run is allowed to plan for.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Bytes of memory available (`None` = unknown: memory is not checked).
    pub memory_bytes: Option<f64>,
    /// Longest estimated run time in seconds.
    pub max_seconds: f64,
    /// Run even when an estimate is over a limit.
    pub force: bool,
}

impl Limits {
    /// The machine's free memory ([`available_memory`]) and [`MAX_SECONDS`], not forced.
    pub fn machine() -> Limits {
        Limits {
            memory_bytes: available_memory(),
            max_seconds: MAX_SECONDS,
            force: false,
        }
    }

    /// No limit at all (estimates are not checked).
    pub fn unlimited() -> Limits {
        Limits {
            memory_bytes: None,
            max_seconds: f64::INFINITY,
            force: true,
        }
    }

    /// The same limits, forced (`--force`) or not.
    pub fn forced(self, force: bool) -> Limits {
        Limits { force, ..self }
    }

    /// Refuses `estimate` of `what` ("this run", "this evaluation") when it needs more memory
    /// than available or more time than allowed, unless forced; the message gives the estimate,
    /// its largest parts and what to change.
    pub fn check(&self, what: &str, estimate: &Estimate) -> Result<(), String> {
        if self.force {
            return Ok(());
        }
        let bytes = estimate.bytes();
        if let Some(available) = self.memory_bytes
            && bytes > available
        {
            return Err(format!(
                "{what} needs about {} of memory ({}), more than the {} available; make it \
                 smaller ({}) or pass --force to try anyway",
                format_bytes(bytes),
                estimate.describe_memory(),
                format_bytes(available),
                estimate.hint
            ));
        }
        if estimate.seconds > self.max_seconds {
            return Err(format!(
                "{what} would take about {} ({}), more than the {} allowed; make it shorter ({}) \
                 or pass --force to run anyway",
                format_seconds(estimate.seconds),
                estimate.time_note,
                format_seconds(self.max_seconds),
                estimate.time_hint
            ));
        }
        Ok(())
    }
}

/// Estimated memory (by part) and time of a run or an evaluation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Estimate {
    /// `(what, bytes)`, largest first.
    pub parts: Vec<(String, f64)>,
    /// Estimated wall seconds.
    pub seconds: f64,
    /// How the time was reckoned.
    pub time_note: String,
    /// What the user can change to shrink its memory.
    pub hint: String,
    /// What the user can change to shorten it.
    pub time_hint: String,
}

impl Estimate {
    /// Total bytes.
    pub fn bytes(&self) -> f64 {
        self.parts.iter().map(|(_, b)| b).sum()
    }

    fn sorted(mut self) -> Estimate {
        self.parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        self
    }

    fn describe_memory(&self) -> String {
        let mut text = String::new();
        for (what, bytes) in self.parts.iter().filter(|(_, b)| *b >= 1e6).take(3) {
            if !text.is_empty() {
                text.push_str("; ");
            }
            let _ = write!(text, "{what}: {}", format_bytes(*bytes));
        }
        if text.is_empty() {
            text.push_str("no part over 1 MB");
        }
        text
    }
}

/// `1.2 GB` (decimal units).
pub fn format_bytes(bytes: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// `4.2 hours`, `3.1 years`.
pub fn format_seconds(seconds: f64) -> String {
    let (value, unit) = if seconds < 120.0 {
        (seconds, "s")
    } else if seconds < 7200.0 {
        (seconds / 60.0, "minutes")
    } else if seconds < 2.0 * 86_400.0 {
        (seconds / 3600.0, "hours")
    } else if seconds < 730.0 * 86_400.0 {
        (seconds / 86_400.0, "days")
    } else {
        (seconds / (365.25 * 86_400.0), "years")
    };
    format!("{value:.1} {unit}")
}

/// Bytes of memory available to this process: `HDPO_MEMORY_LIMIT` if set, else on Linux the
/// smaller of `MemAvailable + SwapFree` (`/proc/meminfo`) and the room left in the process's
/// cgroup; `None` where it cannot be read (memory is then not checked).
pub fn available_memory() -> Option<f64> {
    if let Ok(text) = std::env::var(MEMORY_LIMIT_VAR) {
        return parse_bytes(&text);
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = meminfo.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024.0)
    };
    let mut available = field("MemAvailable:")? + field("SwapFree:").unwrap_or(0.0);
    let read =
        |path: &str| -> Option<f64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    // cgroup v2, then v1 (an unlimited v1 group reports a huge number)
    let cgroup = match (
        read("/sys/fs/cgroup/memory.max"),
        read("/sys/fs/cgroup/memory.current"),
    ) {
        (Some(max), Some(current)) => Some(max - current),
        _ => match (
            read("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
            read("/sys/fs/cgroup/memory/memory.usage_in_bytes"),
        ) {
            (Some(max), Some(current)) => Some(max - current),
            _ => None,
        },
    };
    if let Some(room) = cgroup {
        available = available.min(room.max(0.0));
    }
    Some(available)
}

/// `123`, `64K`, `1.5G` (binary multiples) → bytes.
fn parse_bytes(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, factor) = match text.chars().last()? {
        'k' | 'K' => (&text[..text.len() - 1], 1024.0),
        'm' | 'M' => (&text[..text.len() - 1], 1024.0f64.powi(2)),
        'g' | 'G' => (&text[..text.len() - 1], 1024.0f64.powi(3)),
        't' | 'T' => (&text[..text.len() - 1], 1024.0f64.powi(4)),
        _ => (text, 1.0),
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value * factor)
}

/// Memory of a materialised split of `n` samples (demand, statics, initial pipelines).
fn split_bytes(config: &TrainConfig, shape: &NetworkShape, split: Split) -> f64 {
    let sizes = config.setting.split(split);
    let n = sizes.n_samples as f64;
    let s = shape.n_stores as f64;
    let per_sample = s
        * (sizes.periods as f64 + shape.store_pipeline as f64 + 4.0 + shape.n_sources() as f64)
        + (shape.n_warehouses * shape.warehouse_pipeline) as f64
        + (shape.n_echelons * shape.echelon_pipeline) as f64;
    4.0 * n * per_sample
}

/// The shards a training batch is cut into: at least two so both cores of a 2-core machine
/// work; fixed by the config, never by the thread count, so the run is the same on any number of
/// threads.
pub fn training_shards(config: &TrainConfig) -> usize {
    let batch = config.setting.splits.train.batch_size;
    batch.div_ceil(config.shard_rows).max(2).min(batch)
}

/// The first check of a fresh run, before the policy is built: the training split and the
/// parameters as counted from the spec (no tape yet).
pub fn before_building(config: &TrainConfig, shape: &NetworkShape) -> Estimate {
    let params = config.policy.parameter_count(shape);
    Estimate {
        parts: vec![
            (
                "train split".into(),
                split_bytes(config, shape, Split::Train),
            ),
            (
                "parameters, gradients and optimizer state".into(),
                parameter_bytes(config, params),
            ),
        ],
        seconds: 0.0,
        time_note: String::new(),
        hint: hint(config),
        time_hint: String::new(),
    }
    .sorted()
}

fn parameter_bytes(config: &TrainConfig, params: f64) -> f64 {
    // values, two Adam moments, the best copy, the summed gradient, and per shard a gradient,
    // the tape's copy and its adjoint
    4.0 * params * (5.0 + 3.0 * training_shards(config) as f64)
}

fn hint(config: &TrainConfig) -> String {
    let _ = config;
    "e.g. setting.splits.train.batch_size or .periods, the policy's layer widths, \
     setting.network.n_stores"
        .to_string()
}

/// Values recorded per sample in one period (the policy's action and the simulator's step), and
/// the per-recording constant (parameters copied onto the tape), measured on a tape.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TapeCost {
    /// `f32` values per sample and period.
    pub per_sample_period: f64,
    /// `f32` values per recording, whatever its size.
    pub constant: f64,
}

/// Measures [`TapeCost`] of `policy` on the training split of `config`: one period recorded for
/// one sample and for two samples.
pub fn measure_tape(
    config: &TrainConfig,
    policy: &Policy,
    params: &ParamStore,
) -> Result<TapeCost, TrainError> {
    let generator = ScenarioGenerator::new(&config.setting, Split::Train)?;
    let p = policy.shape.past_demands;
    let s = generator.instance().n_stores;
    let record = |b: usize| -> Result<f64, TrainError> {
        let statics = generator.statics(0..b);
        let initial = generator.initial_state(0..b);
        let mut tape = Tape::new();
        let state = TapeState::from_state(&mut tape, &initial);
        let actions = if policy.admissible() {
            let past_demands = (p > 0).then(|| tape.constant(Array2::zeros((b * s, p))));
            let obs = TapeObservation {
                statics: &statics,
                state,
                period: 0,
                past_demands,
                future_demand: None,
            };
            policy.act(&mut tape, params, &obs)
        } else {
            // oracles read future demand; they have no parameters and a small action
            TapeActions::zeros(&mut tape, &statics)
        };
        let zeros = TapeActions::zeros(&mut tape, &statics);
        let _ = actions;
        let demand = tape.constant(Array2::zeros((b * s, 1)));
        let dynamics = TapeDynamics::new(&statics);
        let (_, cost) = dynamics
            .step(&mut tape, &state, &zeros, demand)
            .map_err(|source| TrainError::Step { epoch: 0, source })?;
        let _ = cost.total(&mut tape);
        Ok(tape.value_floats() as f64)
    };
    let one = record(1)?;
    let two = record(2)?;
    let per_sample_period = (two - one).max(1.0);
    Ok(TapeCost {
        per_sample_period,
        constant: (one - per_sample_period).max(0.0),
    })
}

/// The estimate of a whole training run of `config` with `policy` (built, `params` allocated)
/// whose tape costs `tape`, on `threads` threads.
pub fn training(
    config: &TrainConfig,
    policy: &Policy,
    params: &ParamStore,
    tape: TapeCost,
    threads: usize,
) -> Estimate {
    let shape = &policy.shape;
    let sizes = &config.setting.splits;
    let train = sizes.train;
    let n_params = params.num_scalars() as f64;
    let shards = training_shards(config) as f64;
    // every period of the batch is kept on the shards' tapes until the backward pass
    let tapes = TAPE_BYTES_PER_VALUE
        * (train.batch_size as f64 * train.periods as f64 * tape.per_sample_period
            + shards * tape.constant);
    let dev_demand = SplitDemand::bytes_for(&config.setting, Split::Dev, 0)
        .map(|b| b as f64)
        .unwrap_or(0.0);
    let dev_demand = if dev_demand <= DEV_DEMAND_MAX_BYTES as f64 {
        dev_demand
    } else {
        0.0
    };
    let mut estimate = Estimate {
        parts: vec![
            (
                format!(
                    "training tapes: {} samples × {} periods × {}",
                    train.batch_size,
                    train.periods,
                    format_bytes(TAPE_BYTES_PER_VALUE * tape.per_sample_period)
                ),
                tapes,
            ),
            (
                "train split".into(),
                split_bytes(config, shape, Split::Train),
            ),
            (
                "parameters, gradients and optimizer state".into(),
                parameter_bytes(config, n_params),
            ),
            ("dev split demand (kept)".into(), dev_demand),
            (
                "evaluation shards".into(),
                evaluation_shard_bytes(config, shape, tape, threads, Split::Dev),
            ),
        ],
        hint: hint(config),
        time_hint: "e.g. max_epochs, setting.splits.train.n_samples or .periods, \
                    setting.splits.test.n_samples or .periods, or a time budget max_seconds"
            .into(),
        ..Estimate::default()
    };
    if policy.trainable() {
        let threads = threads.max(1) as f64;
        let epoch =
            train.n_samples as f64 * train.periods as f64 * step_seconds(tape, n_params) / threads;
        let dev = evaluation_seconds(config, tape, n_params, threads, Split::Dev);
        let per_epoch = epoch + dev / config.dev_every as f64;
        let epochs = config.max_epochs as f64;
        let mut training = per_epoch * epochs;
        if config.max_seconds > 0.0 {
            training = training.min(config.max_seconds);
        }
        let test = if config.run_test {
            evaluation_seconds(config, tape, n_params, threads, Split::Test)
        } else {
            0.0
        };
        estimate.seconds = training + dev + test;
        estimate.time_note = format!(
            "{} per epoch × {} epochs{}",
            format_seconds(per_epoch),
            config.max_epochs,
            if config.run_test {
                format!(", test {}", format_seconds(test))
            } else {
                String::new()
            }
        );
    } else {
        estimate.seconds =
            evaluation_seconds(config, tape, n_params, threads.max(1) as f64, Split::Test);
        estimate.time_note = "the evaluations".into();
    }
    estimate.sorted()
}

fn evaluation_shard_bytes(
    config: &TrainConfig,
    shape: &NetworkShape,
    tape: TapeCost,
    threads: usize,
    split: Split,
) -> f64 {
    let sizes = config.setting.split(split);
    let rows = config.eval_shard_size.min(sizes.n_samples) as f64;
    let s = shape.n_stores as f64;
    // a chunk of 128 periods of demand, the pipelines and one period's tape per running shard
    let per_sample = s * (128.0 + shape.store_pipeline as f64 + shape.past_demands as f64)
        + 2.0 * tape.per_sample_period;
    4.0 * threads.max(1) as f64 * (rows * per_sample + tape.constant)
}

/// Seconds of one training step (forward and backward) per sample and period, on one thread.
fn step_seconds(tape: TapeCost, n_params: f64) -> f64 {
    tape.per_sample_period * SECONDS_PER_TAPE_VALUE + n_params * SECONDS_PER_PARAMETER
}

fn evaluation_seconds(
    config: &TrainConfig,
    tape: TapeCost,
    n_params: f64,
    threads: f64,
    split: Split,
) -> f64 {
    let sizes = config.setting.split(split);
    sizes.n_samples as f64 * sizes.periods as f64 * step_seconds(tape, n_params) / 3.0 / threads
}

/// The estimate of evaluating `policy` on `split` of `config`'s setting (`hdpo eval`).
pub fn evaluation(
    config: &TrainConfig,
    policy: &Policy,
    params: &ParamStore,
    tape: TapeCost,
    threads: usize,
    split: Split,
) -> Estimate {
    let sizes = config.setting.split(split);
    let n_params = params.num_scalars() as f64;
    Estimate {
        parts: vec![(
            "evaluation shards".into(),
            evaluation_shard_bytes(config, &policy.shape, tape, threads, split),
        )],
        seconds: evaluation_seconds(config, tape, n_params, threads.max(1) as f64, split),
        time_note: format!("{} samples × {} periods", sizes.n_samples, sizes.periods),
        hint: format!("e.g. --set setting.splits.{split}.n_samples or .periods"),
        time_hint: format!("e.g. --set setting.splits.{split}.n_samples or .periods"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_and_print() {
        assert_eq!(parse_bytes("1000"), Some(1000.0));
        assert_eq!(parse_bytes("2K"), Some(2048.0));
        assert_eq!(parse_bytes("1.5G"), Some(1.5 * 1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("-1"), None);
        assert_eq!(format_bytes(999.0), "999 B");
        assert_eq!(format_bytes(2.5e9), "2.5 GB");
        assert_eq!(format_seconds(30.0), "30.0 s");
        assert_eq!(format_seconds(3.0 * 3600.0), "3.0 hours");
        assert_eq!(format_seconds(3.0 * 365.25 * 86_400.0), "3.0 years");
    }

    #[test]
    fn limits_refuse_above_memory_or_time_unless_forced() {
        let estimate = Estimate {
            parts: vec![("tapes".into(), 3e9), ("split".into(), 1e9)],
            seconds: 10.0,
            time_note: "n".into(),
            hint: "smaller".into(),
            time_hint: "shorter".into(),
        };
        let limits = Limits {
            memory_bytes: Some(2e9),
            max_seconds: 100.0,
            force: false,
        };
        let err = limits.check("this run", &estimate).unwrap_err();
        assert!(
            err.contains("4.0 GB") && err.contains("2.0 GB available") && err.contains("--force"),
            "{err}"
        );
        assert!(
            limits
                .clone()
                .forced(true)
                .check("this run", &estimate)
                .is_ok()
        );
        let roomy = Limits {
            memory_bytes: Some(8e9),
            ..limits
        };
        assert!(roomy.check("this run", &estimate).is_ok());
        let slow = Estimate {
            seconds: 1e9,
            ..estimate
        };
        let err = roomy.check("this run", &slow).unwrap_err();
        assert!(err.contains("years"), "{err}");
    }
}
