//! Setting files: a network described on its own, without a training configuration. `hdpo
//! settings --show NAME` prints an embedded setting as such a file, with a comment above every key
//! ([`annotated`]); `--setting-file FILE` (train, eval, optimum) reads one back ([`load`]), and the
//! policy and training defaults are then derived from it as for an embedded setting. The files in
//! `examples/settings/` are this command's output (a test keeps them equal). The full reference of
//! every key is docs/simulator.md §5.

use hdpo_sim::config::Setting;
use hdpo_sim::settings::{repository_root, setting};
use std::path::{Path, PathBuf};

/// One comment line per key, by dotted path (`stores.lead_time`; `splits.*` for every split).
const KEY_COMMENTS: &[(&str, &str)] = &[
    ("name", "identifier (names the run directories)"),
    ("description", "one line"),
    (
        "unmet_demand",
        "\"lost\" (lost sales) or \"backlogged\" (unmet store demand waits)",
    ),
    (
        "objective",
        "\"cost\" (holding + underage + edge costs) or \"profit\" (lost sales only)",
    ),
    (
        "upper_bound_mult",
        "warehouse order cap U = upper_bound_mult × Σ store means (nets that scale a sigmoid)",
    ),
    ("network.n_stores", "number of stores S"),
    (
        "network.n_warehouses",
        "number of warehouses W (0: stores order from the supplier)",
    ),
    (
        "network.adjacency",
        "W × S matrix of 0/1: warehouse w ships to store s (needed when W > 1)",
    ),
    (
        "stores.holding_cost",
        "per unit on hand at the end of a period: a number, a list (one per store), \"reference\" or { sample = \"per_store\", range = [low, high] }",
    ),
    (
        "stores.underage_cost",
        "per unit of unmet demand (the margin in profit mode); same forms as holding_cost",
    ),
    (
        "stores.lead_time",
        "periods from order to arrival: a number, a list, \"reference\", or an S × W matrix (one per warehouse edge, 0 where no edge)",
    ),
    (
        "stores.pipeline_length",
        "slots of on-hand + in-transit state per store (≥ the largest lead time)",
    ),
    (
        "demand.distribution",
        "\"poisson\", \"normal\" or \"data\" (series from a CSV file)",
    ),
    (
        "demand.mean",
        "per-store mean: same forms as the store costs",
    ),
    (
        "demand.std",
        "per-store standard deviation (normal; or give coef_of_var)",
    ),
    (
        "demand.coef_of_var",
        "std = mean × coef_of_var (normal; instead of std)",
    ),
    (
        "demand.correlation",
        "pairwise correlation of the stores' demand (normal)",
    ),
    ("demand.clip", "normal demand max(d, 0)"),
    (
        "demand.file",
        "data: the CSV file of demand series (relative to this file)",
    ),
    (
        "demand.format",
        "data: \"wide\" (sample,store,w000,…) or \"long\" (sample,store,period,demand)",
    ),
    (
        "demand.past_periods",
        "data: periods at the start of each split's range observed only, not simulated",
    ),
    (
        "demand.negative",
        "data: a negative cell is an \"error\" or read as \"zero\"",
    ),
    (
        "demand.stores",
        "data: the file's stores are the network's (\"all\"), its first n_stores (\"first\"), or every series a one-store sample (\"as_samples\")",
    ),
    (
        "demand.calendar.file",
        "data: CSV of per-period features with a `period` column (relative to this file)",
    ),
    (
        "demand.calendar.columns",
        "data: the feature columns a policy sees for the current period (raw)",
    ),
    (
        "warehouses.holding_cost",
        "per unit at each warehouse: a number or one per warehouse",
    ),
    (
        "warehouses.lead_time",
        "periods from a warehouse's order to its arrival",
    ),
    ("warehouses.edge_cost", "cost per unit a warehouse orders"),
    ("warehouses.pipeline_length", "slots of state per warehouse"),
    (
        "echelons.holding_cost",
        "a serial chain: one per echelon above the warehouse, most upstream first",
    ),
    (
        "echelons.lead_time",
        "inbound lead time of each echelon, most upstream first",
    ),
    ("echelons.pipeline_length", "slots of state per echelon"),
    (
        "initial_inventory.rule",
        "store pipelines start at U(range_mult) × mean (\"uniform_mean\") or empty (\"zero\")",
    ),
    (
        "initial_inventory.upstream",
        "warehouses and echelons start empty (\"zero\") or at U(range_mult) × the demand they serve",
    ),
    (
        "initial_inventory.range_mult",
        "[low, high] of the uniform multiplier",
    ),
    (
        "initial_inventory.inventory_periods",
        "minimum store pipeline length",
    ),
    (
        "splits.*.n_samples",
        "scenarios (independent demand paths) in the split",
    ),
    (
        "splits.*.batch_size",
        "scenarios simulated together (train: one Adam step)",
    ),
    ("splits.*.periods", "periods simulated per scenario"),
    (
        "splits.*.periods_range",
        "data: the file's periods [start, end) the split reads (past_periods + periods)",
    ),
    (
        "splits.*.ignore_periods",
        "warm-up periods left out of the reported cost",
    ),
    ("seeds.train", "seed of the training scenarios"),
    ("seeds.dev", "seed of the dev scenarios (model selection)"),
    ("seeds.test", "seed of the test scenarios"),
    (
        "seeds.parameters",
        "seed of sampled per-store parameters (defines the instance)",
    ),
    (
        "observation.static_features",
        "per-store constants a policy may read: \"holding_cost\", \"underage_cost\", \"lead_time\", \"mean\", \"std\"",
    ),
    (
        "observation.past_demands",
        "number of past periods of demand a policy may read",
    ),
];

/// The comment of `key` in table `table` (`""` at the top level).
fn comment(table: &str, key: &str) -> Option<&'static str> {
    let dotted = if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    };
    let general = match table.strip_prefix("splits.") {
        Some(_) => format!("splits.*.{key}"),
        None => dotted.clone(),
    };
    KEY_COMMENTS
        .iter()
        .find(|(k, _)| *k == dotted || *k == general)
        .map(|(_, c)| *c)
}

/// The setting as a TOML setting file with a `# comment` above every key it holds (the same keys
/// and values as [`Setting::to_toml_string`]: the comments change nothing when it is read back).
pub fn annotated(s: &Setting) -> Result<String, String> {
    let text = s.to_toml_string().map_err(|e| e.to_string())?;
    let mut out = String::new();
    out.push_str(&format!(
        "# The setting `{}` as a setting file. Edit it, then\n#   hdpo train --setting-file <this file> --policy <policy>\n# (every key: docs/simulator.md §5).\n\n",
        s.name
    ));
    let mut table = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            table = name.to_string();
        } else if let Some((key, _)) = trimmed.split_once(" = ")
            && !line.starts_with(' ')
            && let Some(c) = comment(&table, key.trim())
        {
            out.push_str("# ");
            out.push_str(c);
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// `hdpo settings --show NAME`: the embedded setting `name`, annotated. The data files of the
/// embedded data settings (under the repository's `data/`) are written relative to
/// `examples/settings/`, where the example files live, so that the output is the same on every
/// machine and reads back from there as the embedded setting.
pub fn show(name: &str) -> Result<String, String> {
    let mut s = setting(name).map_err(|e| format!("--show: {e}"))?;
    let root = repository_root();
    let mut relative = false;
    let mut rewrite = |path: &mut PathBuf| {
        if let Ok(inside) = path.strip_prefix(&root) {
            *path = Path::new("../..").join(inside);
            relative = true;
        }
    };
    if let Some(file) = &mut s.demand.file {
        rewrite(file);
    }
    if let Some(calendar) = &mut s.demand.calendar {
        rewrite(&mut calendar.file);
    }
    let text = annotated(&s)?;
    if !relative {
        return Ok(text);
    }
    let note = "# Its data files are given relative to examples/settings/ of the repository, where \
                this file is kept;\n# elsewhere, edit demand.file and demand.calendar.file.\n";
    Ok(match text.find("\n\n") {
        Some(i) => format!("{}\n{note}{}", &text[..i], &text[i + 1..]),
        None => format!("{note}{text}"),
    })
}

/// The setting of a command: the embedded one named `name`, or the setting file `file` when
/// given (`--setting-file`). Errors name the option; a training configuration passed as a
/// setting file gets a hint.
pub fn load(name: &str, file: Option<&Path>) -> Result<Setting, String> {
    match file {
        Some(path) => Setting::from_file(path).map_err(|e| {
            let hint = match std::fs::read_to_string(path) {
                Ok(text) if is_train_config(&text) => {
                    " (this is a training configuration, e.g. a run's config.toml: pass it with --config)"
                }
                _ => "",
            };
            let e = e.to_string();
            format!("--setting-file {}: {}{hint}", path.display(), e.trim_end())
        }),
        None => setting(name).map_err(|e| format!("--setting: {e}")),
    }
}

/// A TOML text with a top-level `[setting]` table is a training configuration.
pub fn is_train_config(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|t| t.contains_key("setting"))
}

/// A TOML text with a top-level `[network]` table and no `[setting]` is a setting file.
pub fn is_setting_file(text: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .is_ok_and(|t| !t.contains_key("setting") && t.contains_key("network"))
}
