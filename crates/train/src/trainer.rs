//! The HDPO loop (spec §5). Per batch: simulate the horizon from the batch's initial states with
//! the current policy on the tape, loss = total cost / (batch × periods × stores), back-propagate
//! through the policy *and* the dynamics, optionally clip the global gradient norm, take an Adam
//! step. Batches are split into a fixed number of shards that run on rayon, one tape each, and the
//! shard gradients are added in shard order: the same seed gives a bit-identical run on 1 or 2
//! threads. Every `dev_every` epochs the policy is evaluated on the dev split with the tape-free
//! evaluator; the best-on-dev parameters are kept; training stops early after `patience_epochs`
//! without improvement. [`Trainer::test`] evaluates the best parameters on the test split.

use crate::budget::{self, DEV_DEMAND_MAX_BYTES, Limits};
use crate::checkpoint::Checkpoint;
use crate::error::TrainError;
pub use crate::record::{Best, EpochRecord, StopReason};
use crate::record::{COLLAPSED_EPOCHS, COLLAPSED_GRAD_NORM};
use crate::rollout::{PolicyEvaluator, RolloutPeriods, rollout_on_tape};
use crate::train_config::TrainConfig;
use hdpo_autodiff::{Adam, ParamStore, ShardedTapes, clip_grad_norm};
use hdpo_policy::{NetworkShape, Policy};
use hdpo_sim::config::Split;
use hdpo_sim::dynamics::StepError;
use hdpo_sim::eval::{EvalOptions, EvalReport, SplitDemand, evaluate_with_demand};
use hdpo_sim::scenario::Scenario;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_pcg::Pcg64Mcg;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// A training run in progress.
pub struct Trainer {
    /// The configuration.
    pub config: TrainConfig,
    /// The policy being trained.
    pub policy: Policy,
    /// Its current parameters.
    pub params: ParamStore,
    /// The optimizer state.
    pub adam: Adam,
    /// Epochs completed.
    pub epoch: usize,
    /// Best on dev so far.
    pub best: Option<Best>,
    /// One record per completed epoch.
    pub history: Vec<EpochRecord>,
    /// Wall seconds spent before this process (resumed runs).
    pub elapsed_before: f64,
    train_data: Scenario,
    /// The dev split's demand, generated once: the dev pass repeats every few epochs (`None` when
    /// it would take more than [`DEV_DEMAND_MAX_BYTES`]; it is then generated on every pass).
    dev_demand: Option<SplitDemand>,
    shards: ShardedTapes,
    started: Instant,
    /// [`parameter_limit`] of the setting.
    limit: f64,
    /// The memory and time the run was estimated to need when it started.
    pub estimate: budget::Estimate,
}

/// A run has diverged when the mean loss of an epoch exceeds this multiple of the first epoch's
/// (in absolute value, the first taken as at least 1).
pub const DIVERGENCE_FACTOR: f64 = 1e3;

/// The largest magnitude a parameter of a sane policy of `setting` reaches:
/// `10⁶ × max(1, Σ_s mean demand_s) × (store pipeline length + 1)` — a million times the demand
/// over a lead time, for base-stock levels; network weights stay far below it. Parameters past it
/// (e.g. a base-stock level of 10³⁰ after a too-large step) stop the run.
pub fn parameter_limit(setting: &hdpo_sim::config::Setting) -> f64 {
    let Ok(instance) = setting.instance() else {
        return 1e12;
    };
    let demand: f64 = instance.mean.iter().sum::<f64>().max(1.0);
    1e6 * demand * (instance.pipeline.store as f64 + 1.0)
}

/// The first parameter value outside `±limit` (or not finite): `(name, value)`.
fn parameter_out_of_range(params: &ParamStore, limit: f64) -> Option<(String, f32)> {
    params.ids().find_map(|id| {
        params
            .value(id)
            .iter()
            .find(|v| !(v.is_finite() && (v.abs() as f64) <= limit))
            .map(|&v| (params.name(id).to_string(), v))
    })
}

/// `splitmix64`: decorrelates the per-epoch shuffling seeds.
fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Trainer {
    /// A fresh run: builds the policy (initialised from `config.seed`) and the training data,
    /// after checking that the run fits the machine's memory and a sane time
    /// ([`Limits::machine`]).
    pub fn new(config: TrainConfig) -> Result<Trainer, TrainError> {
        Trainer::new_within(config, &Limits::machine())
    }

    /// [`Trainer::new`] with explicit limits: the memory and time the run needs are estimated
    /// ([`crate::budget`]) before the network and the data are allocated, and a run over `limits`
    /// is refused ([`TrainError::TooLarge`]) unless they are forced.
    pub fn new_within(config: TrainConfig, limits: &Limits) -> Result<Trainer, TrainError> {
        config.validate()?;
        let shape = NetworkShape::from_setting(&config.setting)?;
        limits
            .check("this run", &budget::before_building(&config, &shape))
            .map_err(TrainError::TooLarge)?;
        let mut params = ParamStore::new();
        let mut rng = Pcg64Mcg::seed_from_u64(mix(config.seed, 1));
        let policy = Policy::build(config.policy.clone(), &shape, &mut params, &mut rng)?;
        let limit = parameter_limit(&config.setting);
        if let Some((name, value)) = parameter_out_of_range(&params, limit) {
            return Err(TrainError::Config(
                crate::train_config::TrainConfigError::Invalid {
                    field: "policy".into(),
                    message: format!(
                        "its initial parameter `{name}` is {value}; allowed: |value| ≤ {limit:.3e} \
                     for this setting"
                    ),
                },
            ));
        }
        let tape = budget::measure_tape(&config, &policy, &params)?;
        let estimate = budget::training(
            &config,
            &policy,
            &params,
            tape,
            rayon::current_num_threads(),
        );
        limits
            .check("this run", &estimate)
            .map_err(TrainError::TooLarge)?;
        let adam = Adam::new(&params, config.learning_rate);
        let train_data = Scenario::generate(&config.setting, Split::Train)?;
        // at least two shards so both cores of a 2-core machine work; fixed by the config, never by
        // the thread count, so the run is the same on any number of threads
        let n_shards = budget::training_shards(&config);
        let dev_demand = keep_dev_demand(&config, &policy, &params)?;
        Ok(Trainer {
            config,
            policy,
            params,
            adam,
            epoch: 0,
            best: None,
            history: Vec::new(),
            elapsed_before: 0.0,
            train_data,
            dev_demand,
            shards: ShardedTapes::new(n_shards),
            started: Instant::now(),
            limit,
            estimate,
        })
    }

    /// Continues a run from a checkpoint (same configuration, parameters, optimizer state, epoch
    /// and best-so-far); the rest of the run is bit-identical to an uninterrupted one.
    pub fn resume(checkpoint: Checkpoint) -> Result<Trainer, TrainError> {
        Trainer::resume_within(checkpoint, &Limits::machine())
    }

    /// [`Trainer::resume`] with explicit limits (see [`Trainer::new_within`]).
    pub fn resume_within(checkpoint: Checkpoint, limits: &Limits) -> Result<Trainer, TrainError> {
        checkpoint.check().map_err(TrainError::Checkpoint)?;
        let mut trainer = Trainer::new_within(checkpoint.config.clone(), limits)?;
        if !trainer.params.same_layout(&checkpoint.params) {
            return Err(TrainError::Checkpoint(
                "checkpoint parameters do not match the policy built from its configuration".into(),
            ));
        }
        if !checkpoint.adam.matches(&checkpoint.params) {
            return Err(TrainError::Checkpoint(
                "checkpoint optimizer state does not match its parameters".into(),
            ));
        }
        trainer.params = checkpoint.params;
        trainer.adam = checkpoint.adam;
        trainer.epoch = checkpoint.epoch;
        trainer.best = checkpoint.best;
        trainer.history = checkpoint.history;
        trainer.elapsed_before = checkpoint.elapsed_seconds;
        Ok(trainer)
    }

    /// A checkpoint of the current state.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint::new(
            self.config.clone(),
            self.params.clone(),
            self.adam.clone(),
            self.epoch,
            self.best.clone(),
            self.history.clone(),
            self.elapsed_seconds(),
        )
    }

    /// Wall seconds of training so far, including before a resume.
    pub fn elapsed_seconds(&self) -> f64 {
        self.elapsed_before + self.started.elapsed().as_secs_f64()
    }

    /// The parameters to deploy: the best on dev, or the current ones if no dev run happened.
    pub fn best_params(&self) -> &ParamStore {
        self.best.as_ref().map_or(&self.params, |b| &b.params)
    }

    /// Trains until a stop condition; calls `on_epoch` after every epoch (progress, checkpoints).
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        mut on_epoch: impl FnMut(&Trainer, &EpochRecord),
    ) -> Result<StopReason, TrainError> {
        self.try_run(stop, |trainer, record| {
            on_epoch(trainer, record);
            Ok(())
        })
    }

    /// [`Trainer::run`] with a fallible `on_epoch`: an error (e.g. a checkpoint that cannot be
    /// written) stops the run at once with [`TrainError::Output`].
    ///
    /// The stop conditions are checked before every epoch, in this order: early stopping (the
    /// best dev cost is `patience_epochs` old at a dev epoch), a collapsed policy (a vanishing
    /// gradient for [`COLLAPSED_EPOCHS`] epochs), the time budget, `max_epochs`, then
    /// the `stop` flag — so a resumed run that had already stopped stops again at once, and a
    /// `stop` raised during the last epoch still reports why training ended.
    pub fn try_run(
        &mut self,
        stop: &AtomicBool,
        mut on_epoch: impl FnMut(&Trainer, &EpochRecord) -> Result<(), String>,
    ) -> Result<StopReason, TrainError> {
        if !self.policy.trainable() {
            return Ok(StopReason::NotTrainable);
        }
        loop {
            if let Some(reason) = self.finished() {
                return Ok(reason);
            }
            if stop.load(Ordering::SeqCst) {
                return Ok(StopReason::Interrupted);
            }
            let record = self.train_epoch()?;
            on_epoch(self, &record).map_err(TrainError::Output)?;
        }
    }

    /// Why training is over, if it is (see [`Trainer::try_run`]).
    fn finished(&self) -> Option<StopReason> {
        if let (Some(best), Some(last)) = (&self.best, self.history.last())
            && self.config.patience_epochs > 0
            && last.dev_cost.is_some()
            && self.epoch - 1 - best.epoch >= self.config.patience_epochs
        {
            return Some(StopReason::EarlyStopping);
        }
        if self.history.len() >= COLLAPSED_EPOCHS
            && self.history[self.history.len() - COLLAPSED_EPOCHS..]
                .iter()
                .all(|r| r.grad_norm < COLLAPSED_GRAD_NORM)
        {
            return Some(StopReason::Collapsed);
        }
        if self.config.max_seconds > 0.0
            && !self.history.is_empty()
            && self.elapsed_seconds() >= self.config.max_seconds
        {
            return Some(StopReason::TimeBudget);
        }
        (self.epoch >= self.config.max_epochs).then_some(StopReason::MaxEpochs)
    }

    /// One epoch: shuffled batches, one Adam step each, then dev evaluation on dev epochs.
    pub fn train_epoch(&mut self) -> Result<EpochRecord, TrainError> {
        let epoch = self.epoch;
        let sizes = self.config.setting.splits.train;
        let (periods, ignore) = (sizes.periods, sizes.ignore_periods);
        let n = self.train_data.n_samples();
        let s = self.train_data.statics.n_stores;
        let lr = self.config.learning_rate_at(epoch);
        self.adam.lr = lr;
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut Pcg64Mcg::seed_from_u64(mix(
            self.config.seed,
            1000 + epoch as u64,
        )));
        let (mut loss_sum, mut reported_sum, mut norm_sum, mut n_batches) =
            (0.0f64, 0.0f64, 0.0f64, 0usize);
        for batch in order.chunks(sizes.batch_size) {
            let n_shards = self.shards.n_shards();
            let loss_from = if self.config.loss_skips_warm_up {
                ignore
            } else {
                0
            };
            let normaliser = (batch.len() * (periods - loss_from) * s) as f32;
            let shard_of =
                |k: usize| &batch[k * batch.len() / n_shards..(k + 1) * batch.len() / n_shards];
            let (policy, data) = (&self.policy, &self.train_data);
            let result = self.shards.try_gradients(&self.params, |k, tape, params| {
                let rows = shard_of(k);
                let shard = data.batch(rows).expect("shuffled indices are in range");
                let out = rollout_on_tape(
                    tape,
                    policy,
                    params,
                    &shard,
                    RolloutPeriods {
                        periods,
                        ignore,
                        loss_from,
                    },
                    normaliser,
                )?;
                Ok::<_, StepError>((out.loss, out.reported_cost))
            });
            let (per_shard, mut grads) =
                result.map_err(|source| TrainError::Step { epoch, source })?;
            let loss: f64 = per_shard.iter().map(|(l, _)| *l as f64).sum();
            if !loss.is_finite() || !grads.all_finite() {
                return Err(TrainError::NonFinite { epoch, loss });
            }
            reported_sum += per_shard.iter().map(|(_, r)| r).sum::<f64>();
            let norm = if self.config.grad_clip > 0.0 {
                clip_grad_norm(&mut grads, self.config.grad_clip)
            } else {
                grads.global_norm()
            };
            self.adam.step(&mut self.params, &grads);
            if let Some((name, value)) = parameter_out_of_range(&self.params, self.limit) {
                return Err(TrainError::Diverged {
                    epoch,
                    reason: format!(
                        "parameter `{name}` reached {value:e}, outside the sane range ±{:.1e} for \
                         this setting (try a smaller learning_rate, or grad_clip)",
                        self.limit
                    ),
                });
            }
            loss_sum += loss;
            norm_sum += norm;
            n_batches += 1;
        }
        let train_loss = loss_sum / n_batches as f64;
        if let Some(first) = self.history.first() {
            let bound = DIVERGENCE_FACTOR * first.train_loss.abs().max(1.0);
            if train_loss.abs() > bound {
                return Err(TrainError::Diverged {
                    epoch,
                    reason: format!(
                        "the train loss {train_loss:.4e} is over {DIVERGENCE_FACTOR} × the first \
                         epoch's {:.4} (try a smaller learning_rate, or grad_clip)",
                        first.train_loss
                    ),
                });
            }
        }
        let dev_cost = if epoch.is_multiple_of(self.config.dev_every) {
            let report = self.evaluate(Split::Dev, false)?;
            let cost = report.cost_per_store_period;
            if self.best.as_ref().is_none_or(|b| cost < b.dev_cost) {
                self.best = Some(Best {
                    epoch,
                    dev_cost: cost,
                    params: self.params.clone(),
                });
            }
            Some(cost)
        } else {
            None
        };
        self.epoch += 1;
        let record = EpochRecord {
            epoch,
            train_loss,
            train_cost: reported_sum / (n * (periods - ignore) * s) as f64,
            dev_cost,
            best_dev_cost: self.best.as_ref().map(|b| b.dev_cost),
            learning_rate: lr,
            grad_norm: norm_sum / n_batches as f64,
            elapsed_seconds: self.elapsed_seconds(),
        };
        self.history.push(record.clone());
        Ok(record)
    }

    /// Evaluates the current (`use_best = false`) or best parameters on a split with the streaming
    /// tape-free evaluator. Actions are rounded on the test split when demand is discrete.
    pub fn evaluate(&self, split: Split, use_best: bool) -> Result<EvalReport, TrainError> {
        let params = if use_best {
            self.best_params()
        } else {
            &self.params
        };
        let demand = self.dev_demand.as_ref().filter(|d| d.split() == split);
        evaluate_policy_with_demand(&self.config, &self.policy, params, split, demand)
    }

    /// The test cost of the best parameters.
    pub fn test(&self) -> Result<EvalReport, TrainError> {
        self.evaluate(Split::Test, true)
    }
}

/// Evaluates `policy` with `params` on a split of the config's setting (rounding actions on the
/// test split when demand is discrete, as the reference does).
pub fn evaluate_policy(
    config: &TrainConfig,
    policy: &Policy,
    params: &ParamStore,
    split: Split,
) -> Result<EvalReport, TrainError> {
    evaluate_policy_with_demand(config, policy, params, split, None)
}

/// The dev split's demand for [`Trainer`], if it fits in [`DEV_DEMAND_MAX_BYTES`].
fn keep_dev_demand(
    config: &TrainConfig,
    policy: &Policy,
    params: &ParamStore,
) -> Result<Option<SplitDemand>, TrainError> {
    let setting = &config.setting;
    let max_lead_time = setting.instance()?.pipeline.store;
    let evaluator = PolicyEvaluator::new(policy, params, max_lead_time);
    let extra = hdpo_sim::eval::ActionPolicy::oracle_lookahead(&evaluator).unwrap_or(0);
    if SplitDemand::bytes_for(setting, Split::Dev, extra)? > DEV_DEMAND_MAX_BYTES {
        return Ok(None);
    }
    let demand = SplitDemand::generate(setting, Split::Dev, config.eval_shard_size, extra)?;
    Ok(Some(demand))
}

/// [`evaluate_policy`], reading the demand from `demand` when it holds `split` (same results).
fn evaluate_policy_with_demand(
    config: &TrainConfig,
    policy: &Policy,
    params: &ParamStore,
    split: Split,
    demand: Option<&SplitDemand>,
) -> Result<EvalReport, TrainError> {
    let setting = &config.setting;
    let max_lead_time = setting.instance()?.pipeline.store;
    let mut options = EvalOptions::for_setting(setting);
    options.shard_size = config.eval_shard_size;
    options.round_actions = split == Split::Test && setting.discrete_demand();
    // With rounded orders and integer demand the states recur: memoise the actions (same results).
    let evaluator =
        PolicyEvaluator::new(policy, params, max_lead_time).with_memo(options.round_actions);
    Ok(evaluate_with_demand(
        setting, split, &evaluator, &options, demand,
    )?)
}
