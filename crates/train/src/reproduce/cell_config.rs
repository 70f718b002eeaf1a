//! A cell's training configuration: [`TrainConfig::default_for`] for its setting and policy, the
//! cell's overrides, the [`Scale`]'s sizes and the caller's overrides — and the [`fingerprint`]
//! that tells a finished cell's record whether it was produced by the same configuration.

use crate::train_config::TrainConfig;

use super::experiment::{Cell, Scale};

/// Dev and test scenarios of the sample-efficiency cells at full scale (the v3 study's 4,096).
const V3_EVAL_SAMPLES: usize = 4096;

/// The resolved training configuration of a cell at a scale, with extra overrides applied last.
pub fn cell_config(
    cell: &Cell,
    scale: Scale,
    extra: &[(String, String)],
) -> Result<TrainConfig, String> {
    let mut setting = hdpo_sim::settings::setting(&cell.setting).map_err(|e| e.to_string())?;
    // at full scale the cell's scenario count is part of the setting the defaults are derived
    // from (the network policies' epochs are a budget of Adam steps); it is set on the setting
    // itself, not as an override, so that the defaults' batch still applies
    if let (Scale::Full, Some(n)) = (scale, cell.scenarios) {
        let train = &mut setting.splits.train;
        train.n_samples = n;
        train.batch_size = train.batch_size.min(n);
    }
    let mut config = TrainConfig::default_with_overrides(setting, &cell.policy, &cell.overrides)
        .map_err(|e| format!("cell {}: {e}", cell.id))?;
    if let (Scale::Full, Some(n)) = (scale, cell.scenarios) {
        // the same count again as an override, so that the setting's description notes it (and
        // the configuration, hence the fingerprint of the committed records, is as before)
        config
            .apply_override("setting.splits.train.n_samples", &n.to_string())
            .map_err(|e| format!("cell {}: {e}", cell.id))?;
    }
    let single = config.setting.n_stores() == 1;
    let splits = &mut config.setting.splits;
    match scale {
        Scale::Full => {
            if let Some(n) = cell.scenarios {
                splits.train.n_samples = n;
                splits.train.batch_size = splits.train.batch_size.min(n);
            }
            // the v3 study's evaluation sets (spec §4: dev and test 4,096 scenarios) for every
            // cell of the sample-efficiency grids, whose costs are per store per period
            if cell.scenarios.is_some() {
                for split in [&mut splits.dev, &mut splits.test] {
                    split.n_samples = split.n_samples.min(V3_EVAL_SAMPLES);
                    split.batch_size = split.batch_size.min(split.n_samples);
                }
            }
        }
        Scale::Smoke => {
            // A few seconds per cell: single-store chains train for 20 epochs on 1024 scenarios,
            // networks of many stores (heavier per scenario) for 6 epochs on 128; the
            // sample-efficiency grids (128 / 1024 / 8192 scenarios) become 8 / 16 / 128.
            let (n, batch, epochs, eval_n, test_periods) = if single {
                (
                    cell.scenarios.map_or(1024, |n| (n / 64).clamp(8, 128)),
                    256,
                    20,
                    512,
                    500,
                )
            } else {
                (
                    cell.scenarios.map_or(128, |n| (n / 64).clamp(8, 128)),
                    64,
                    6,
                    256,
                    300,
                )
            };
            splits.train.n_samples = n;
            splits.train.batch_size = n.min(batch);
            splits.dev.n_samples = eval_n;
            splits.dev.batch_size = eval_n;
            splits.test.n_samples = eval_n;
            splits.test.batch_size = eval_n;
            splits.test.periods = test_periods;
            splits.test.ignore_periods = test_periods * 2 / 5;
            config.max_epochs = epochs;
            config.dev_every = if single { 4 } else { 2 };
            config.patience_epochs = 0;
            config.shard_rows = config.shard_rows.min(if single { 128 } else { 32 });
            config.eval_shard_size = 128;
            config.max_seconds = 0.0;
        }
    }
    for (k, v) in extra {
        config
            .apply_override(k, v)
            .map_err(|e| format!("--set {k}={v}: {e}"))?;
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// A fingerprint of a configuration (hash of its TOML).
pub fn fingerprint(config: &TrainConfig) -> String {
    let text = config.to_toml_string();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in text.as_bytes() {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}
