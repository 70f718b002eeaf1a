//! The tables of an experiment: one row per cell with its record and its gap to the reference
//! (optimum, bound, or the best of the row), written as `results.csv` and `results.md`, with the
//! plots of `plots.rs`.

use std::fmt::Write as _;
use std::path::Path;

use crate::checkpoint::write_atomic;
use hdpo_optimum::ReferenceKind;

use super::cell_config::{cell_config, fingerprint};
use super::cell_record::{CellRecord, CellStatus, read_record};
use super::experiment::{Cell, ReproduceOptions, Scale};
use super::plots::{render_gaps, render_sample_efficiency};

/// A cell with its record (when it has one at the current scale and configuration).
pub(super) struct Row<'a> {
    pub(super) cell: &'a Cell,
    pub(super) record: Option<CellRecord>,
    /// Gap to the reference, or excess over the best of the row when no bound is known.
    pub(super) gap_pct: Option<f64>,
    pub(super) gap_basis: &'static str,
    pub(super) reference: Option<f64>,
    pub(super) reference_text: String,
    /// Training seconds until the dev cost was within 1 % of `reference` (optimum, bound or best
    /// of row).
    pub(super) seconds_to_1pct: Option<f64>,
}

fn collect_rows<'a>(dir: &Path, cells: &'a [Cell], options: &ReproduceOptions) -> Vec<Row<'a>> {
    let mut rows: Vec<Row<'a>> = cells
        .iter()
        .map(|cell| {
            let record = read_record(dir, &cell.id).filter(|r| {
                r.scale == options.scale
                    && cell_config(cell, options.scale, &options.overrides)
                        .is_ok_and(|c| fingerprint(&c) == r.fingerprint || r.fingerprint.is_empty())
            });
            Row {
                cell,
                record,
                gap_pct: None,
                gap_basis: "",
                reference: None,
                reference_text: String::new(),
                seconds_to_1pct: None,
            }
        })
        .collect();
    // Best test cost per row key, for cells without a known reference.
    let mut best: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
    for row in &rows {
        if let Some(r) = &row.record
            && r.status == CellStatus::Done
            && let Some(test) = r.test_cost
        {
            let entry = best.entry(row.cell.row_key.clone()).or_insert(test);
            *entry = entry.min(test);
        }
    }
    for row in &mut rows {
        let Some(record) = &row.record else { continue };
        if record.status != CellStatus::Done {
            continue;
        }
        match (record.reference_kind, record.reference_cost) {
            (Some(kind), Some(cost)) => {
                row.gap_pct = record.test_gap_pct;
                row.gap_basis = match kind {
                    ReferenceKind::Exact => "optimum",
                    ReferenceKind::LowerBound => "bound",
                };
                row.reference = Some(cost);
                row.reference_text = format!(
                    "{cost:.4} ({})",
                    match kind {
                        ReferenceKind::Exact => "opt",
                        ReferenceKind::LowerBound => "LB",
                    }
                );
            }
            _ => {
                if let (Some(test), Some(&b)) = (record.test_cost, best.get(&row.cell.row_key)) {
                    row.gap_pct = Some(100.0 * (test / b - 1.0));
                    row.gap_basis = "best of row";
                    row.reference = Some(b);
                    row.reference_text = format!("{b:.4} (best of row)");
                }
            }
        }
    }
    for row in &mut rows {
        let (Some(record), Some(reference)) = (&row.record, row.reference) else {
            continue;
        };
        row.seconds_to_1pct = record
            .dev_curve
            .iter()
            .find(|(_, dev)| *dev <= reference * 1.01)
            .map(|(t, _)| *t)
            .or(record.seconds_to_1pct_dev);
    }
    rows
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or(String::new(), |x| format!("{x:.digits$}"))
}

/// The test cost's standard error: "—" for a done cell whose record predates it, empty for a
/// cell without a test cost.
fn std_error_text(record: Option<&CellRecord>, digits: usize) -> String {
    match record {
        Some(r) if r.test_cost.is_some() => r
            .test_std_error
            .map_or("—".into(), |se| format!("{se:.digits$}")),
        _ => String::new(),
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn status_text(record: &Option<CellRecord>) -> String {
    match record {
        None => "not run".into(),
        Some(r) => match r.status {
            CellStatus::Done => "done".into(),
            CellStatus::Unavailable => format!(
                "unavailable: {}",
                r.reason.as_deref().unwrap_or("policy not available")
            ),
            CellStatus::Failed => format!("failed: {}", r.reason.as_deref().unwrap_or("unknown")),
        },
    }
}

/// Writes `results.csv`, `results.md` and `gaps.svg` for every cell that has a record at the current
/// scale and configuration.
pub fn write_tables(
    dir: &Path,
    name: &str,
    description: &str,
    cells: &[Cell],
    options: &ReproduceOptions,
) -> Result<(), String> {
    let rows = collect_rows(dir, cells, options);
    // CSV.
    let mut csv = String::from(
        "experiment,scale,group,id,setting,policy,instance,train_scenarios,status,train_cost,dev_cost,\
         test_cost,test_std_error,reference_kind,reference_cost,gap_pct,gap_basis,published_cost,published_gap_pct,\
         published_reference,published_note,epochs,train_seconds,test_seconds,seconds_to_1pct_dev,test_size\n",
    );
    for row in &rows {
        let c = row.cell;
        let r = row.record.as_ref();
        let instance: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let fields = [
            name.to_string(),
            options.scale.name().to_string(),
            c.group.clone(),
            c.id.clone(),
            c.setting.clone(),
            c.policy.clone(),
            instance.join(";"),
            r.map_or(String::new(), |r| r.train_scenarios.to_string()),
            status_text(&row.record),
            opt(r.and_then(|r| r.train_cost), 6),
            opt(r.and_then(|r| r.dev_cost), 6),
            opt(r.and_then(|r| r.test_cost), 6),
            r.and_then(|r| r.test_std_error)
                .map_or(String::new(), |se| format!("{se:.6}")),
            r.and_then(|r| r.reference_kind)
                .map_or(String::new(), |k| k.short().to_string()),
            opt(r.and_then(|r| r.reference_cost), 6),
            opt(row.gap_pct, 4),
            row.gap_basis.to_string(),
            opt(c.published.cost, 4),
            opt(c.published.gap_pct, 2),
            opt(c.published.reference, 6),
            c.published.note.clone(),
            r.map_or(String::new(), |r| r.epochs.to_string()),
            opt(r.map(|r| r.train_seconds), 2),
            opt(r.map(|r| r.test_seconds), 2),
            opt(row.seconds_to_1pct, 2),
            r.map_or(String::new(), |r| r.test_size.clone()),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        let _ = writeln!(csv, "{}", line.join(","));
    }
    write_atomic(&dir.join("results.csv"), csv.as_bytes())?;

    // Markdown.
    let mut md = String::new();
    let scale_note = match options.scale {
        Scale::Smoke => " — smoke scale (tiny sizes; NOT comparable to published)",
        Scale::Full => " — full scale",
    };
    let _ = writeln!(md, "# Reproduction: `{name}`{scale_note}\n");
    let _ = writeln!(md, "{description}.\n");
    let _ = writeln!(md, "Command: `{}`\n", options.command);
    let count = |f: &dyn Fn(&Row) -> bool| rows.iter().filter(|r| f(r)).count();
    let _ = writeln!(
        md,
        "Cells: {} · done {} · unavailable {} · failed {} · not run {}\n",
        rows.len(),
        count(&|r| r
            .record
            .as_ref()
            .is_some_and(|x| x.status == CellStatus::Done)),
        count(&|r| r
            .record
            .as_ref()
            .is_some_and(|x| x.status == CellStatus::Unavailable)),
        count(&|r| r
            .record
            .as_ref()
            .is_some_and(|x| x.status == CellStatus::Failed)),
        count(&|r| r.record.is_none()),
    );
    let done: Vec<&CellRecord> = rows
        .iter()
        .filter_map(|r| r.record.as_ref())
        .filter(|x| x.status == CellStatus::Done)
        .collect();
    if !done.is_empty() {
        let train: f64 = done.iter().map(|x| x.train_seconds).sum();
        let test: f64 = done.iter().map(|x| x.test_seconds).sum();
        let _ = writeln!(
            md,
            "Time of the {} done cells: {:.0} s of training + {:.0} s of testing = {:.1} h (wall \
             seconds of each cell's run, whatever else shared the machine).\n",
            done.len(),
            train,
            test,
            (train + test) / 3600.0
        );
    }
    let _ = writeln!(
        md,
        "Costs are per store per period on the test split (best-on-dev parameters). \"reference\" is our \
         exact optimum (opt) or lower bound (LB) from `hdpo optimum`, or — where no bound is known — the \
         best test cost among the cells of the same instance (best of row). \"± s.e.\" is the test cost's \
         standard error across the test scenarios (— in records written before it was measured). \
         gap = test / reference − 1 \
         (to a bound: an upper bound on the optimality gap). Published numbers are from \
         `published-results.md` (source per table).\n"
    );
    let mut groups: Vec<&str> = Vec::new();
    for row in &rows {
        if !groups.contains(&row.cell.group.as_str()) {
            groups.push(&row.cell.group);
        }
    }
    for group in groups {
        let group_rows: Vec<&Row> = rows.iter().filter(|r| r.cell.group == group).collect();
        let first = group_rows[0].cell;
        let _ = writeln!(md, "## {group}\n");
        let _ = writeln!(md, "Published: {}.\n", first.published.source);
        let mut header: Vec<String> = first.labels.iter().map(|(k, _)| k.clone()).collect();
        header.extend(
            [
                "policy",
                "train scen.",
                "test cost",
                "± s.e.",
                "reference",
                "gap %",
                "published cost",
                "published gap %",
                "published ref.",
                "epochs",
                "train s",
                "test s",
                "s to 1 % dev",
                "status",
            ]
            .map(String::from),
        );
        let _ = writeln!(md, "| {} |", header.join(" | "));
        let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
        for row in group_rows {
            let c = row.cell;
            let r = row.record.as_ref();
            let mut cols: Vec<String> = c.labels.iter().map(|(_, v)| v.clone()).collect();
            let published_gap = match (c.published.gap_pct, c.published.note.is_empty()) {
                (Some(g), true) => format!("{g:.2}"),
                (Some(g), false) => format!("{g:.2} ({})", c.published.note),
                (None, _) => c.published.note.clone(),
            };
            cols.extend([
                c.policy.clone(),
                match (c.scenarios, r.map(|r| r.train_scenarios)) {
                    (Some(grid), Some(ran)) if grid != ran => format!("{grid} (ran {ran})"),
                    (_, Some(ran)) => ran.to_string(),
                    (Some(grid), None) => grid.to_string(),
                    (None, None) => String::new(),
                },
                opt(r.and_then(|r| r.test_cost), 4),
                std_error_text(r, 4),
                row.reference_text.clone(),
                opt(row.gap_pct, 2),
                opt(c.published.cost, 2),
                published_gap,
                c.published
                    .reference
                    .map_or(String::new(), |x| x.to_string()),
                r.map_or(String::new(), |r| r.epochs.to_string()),
                opt(r.map(|r| r.train_seconds), 1),
                opt(r.map(|r| r.test_seconds), 1),
                opt(row.seconds_to_1pct, 1),
                status_text(&row.record).replace('|', "/"),
            ]);
            let _ = writeln!(md, "| {} |", cols.join(" | "));
        }
        let _ = writeln!(md);
    }
    write_atomic(&dir.join("results.md"), md.as_bytes())?;

    // Plots.
    let svg = render_gaps(name, options.scale, &rows)
        .map_err(|e| format!("cannot draw the gap plot: {e}"))?;
    write_atomic(&dir.join("gaps.svg"), svg.as_bytes())?;
    if rows.iter().any(|r| r.cell.scenarios.is_some()) {
        let svg = render_sample_efficiency(name, options.scale, &rows)
            .map_err(|e| format!("cannot draw the sample-efficiency plot: {e}"))?;
        write_atomic(&dir.join("sample_efficiency.svg"), svg.as_bytes())?;
    }
    Ok(())
}
