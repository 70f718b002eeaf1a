//! The plots of an experiment, as SVG: our gap and the published gap per cell (`gaps.svg`), and
//! test cost against training scenarios per instance (`sample_efficiency.svg`).

use plotters::prelude::*;

use super::experiment::Scale;
use super::tables::Row;

/// One panel per instance (row key) of the sample-efficiency cells: test cost against training
/// scenarios (log scale), one line per policy (ours solid with dots, published dashed with
/// crosses, same colour), and the reference (optimum, bound, or the best of the row) as a black
/// line — like the paper's figures.
pub(super) fn render_sample_efficiency(
    name: &str,
    scale: Scale,
    rows: &[Row],
) -> Result<String, Box<dyn std::error::Error>> {
    let grid: Vec<&Row> = rows.iter().filter(|r| r.cell.scenarios.is_some()).collect();
    let mut keys: Vec<&str> = Vec::new();
    let mut policies: Vec<&str> = Vec::new();
    for r in &grid {
        if !keys.contains(&r.cell.row_key.as_str()) {
            keys.push(&r.cell.row_key);
        }
        if !policies.contains(&r.cell.policy.as_str()) {
            policies.push(&r.cell.policy);
        }
    }
    let colours = [BLUE, RED, GREEN, MAGENTA, CYAN];
    let columns = keys.len().clamp(1, 3);
    let panel_rows = keys.len().div_ceil(columns);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(
            &mut svg,
            (420 * columns as u32, 60 + 300 * panel_rows as u32),
        )
        .into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(
            &format!(
                "{name} ({} scale): test cost per store and period vs training scenarios",
                scale.name()
            ),
            ("sans-serif", 18),
        )?;
        for (index, (panel, key)) in root
            .split_evenly((panel_rows, columns))
            .iter()
            .zip(&keys)
            .enumerate()
        {
            let cells: Vec<&&Row> = grid.iter().filter(|r| r.cell.row_key == *key).collect();
            let x = |r: &Row| (r.cell.scenarios.unwrap_or(1) as f64).log2();
            let ours = |r: &Row| r.record.as_ref().and_then(|x| x.test_cost);
            let reference = cells.iter().find_map(|r| r.reference);
            let values: Vec<f64> = cells
                .iter()
                .flat_map(|r| [ours(r), r.cell.published.cost])
                .flatten()
                .chain(reference)
                .collect();
            if values.is_empty() {
                continue;
            }
            let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let pad = 0.08 * (hi - lo).max(0.01 * hi.abs().max(1e-3));
            let (x_lo, x_hi) = cells
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), r| {
                    (a.min(x(r)), b.max(x(r)))
                });
            let label = cells[0]
                .cell
                .labels
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut chart = ChartBuilder::on(panel)
                .caption(label, ("sans-serif", 15))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d((x_lo - 0.5)..(x_hi + 0.5), (lo - pad)..(hi + pad))?;
            chart
                .configure_mesh()
                .x_desc("training scenarios")
                .x_labels(8)
                .x_label_formatter(&|v| format!("{}", 2f64.powf(*v).round()))
                .y_label_formatter(&|v| format!("{v:.2}"))
                .draw()?;
            if let Some(reference) =
                reference.or_else(|| cells.iter().filter_map(|r| ours(r)).reduce(f64::min))
            {
                chart.draw_series(LineSeries::new(
                    vec![(x_lo - 0.5, reference), (x_hi + 0.5, reference)],
                    BLACK.stroke_width(1),
                ))?;
            }
            for (k, policy) in policies.iter().enumerate() {
                let colour = colours[k % colours.len()];
                let mut mine: Vec<(f64, f64)> = cells
                    .iter()
                    .filter(|r| r.cell.policy == *policy)
                    .filter_map(|r| ours(r).map(|c| (x(r), c)))
                    .collect();
                mine.sort_by(|a, b| a.0.total_cmp(&b.0));
                let mut published: Vec<(f64, f64)> = cells
                    .iter()
                    .filter(|r| r.cell.policy == *policy)
                    .filter_map(|r| r.cell.published.cost.map(|c| (x(r), c)))
                    .collect();
                published.sort_by(|a, b| a.0.total_cmp(&b.0));
                let series =
                    chart.draw_series(LineSeries::new(mine.clone(), colour.stroke_width(2)))?;
                if index == 0 {
                    series
                        .label(format!("{policy} (ours)"))
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                        });
                }
                chart.draw_series(mine.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
                chart.draw_series(DashedLineSeries::new(
                    published.clone(),
                    4,
                    3,
                    colour.stroke_width(1),
                ))?;
                chart.draw_series(published.iter().map(|&p| Cross::new(p, 4, colour)))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()?;
    }
    Ok(svg)
}

pub(super) fn render_gaps(
    name: &str,
    scale: Scale,
    rows: &[Row],
) -> Result<String, Box<dyn std::error::Error>> {
    let ours: Vec<(f64, f64)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.gap_pct.map(|g| (i as f64, g)))
        .collect();
    let theirs: Vec<(f64, f64)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.cell.published.gap_pct.map(|g| (i as f64, g)))
        .collect();
    let values: Vec<f64> = ours.iter().chain(&theirs).map(|p| p.1).collect();
    let hi = values.iter().cloned().fold(1.0f64, f64::max);
    let lo = values.iter().cloned().fold(0.0f64, f64::min);
    let pad = 0.05 * (hi - lo).max(0.1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1000, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let n = rows.len().max(1) as f64;
        let labels: Vec<String> = rows.iter().map(|r| r.cell.id.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                format!("{name} ({} scale): test gap per cell, %", scale.name()),
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..n - 0.5, (lo - pad)..(hi + pad))?;
        chart
            .configure_mesh()
            .x_desc("cell (index in results.md order)")
            .y_desc("gap % (to optimum / bound / best of row)")
            .x_labels(rows.len().clamp(2, 20))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < labels.len() {
                    format!("{}", i as usize)
                } else {
                    String::new()
                }
            })
            .draw()?;
        chart
            .draw_series(
                ours.iter()
                    .map(|&(x, y)| Circle::new((x, y), 4, BLUE.filled())),
            )?
            .label("ours")
            .legend(|(x, y)| Circle::new((x + 10, y), 4, BLUE.filled()));
        chart
            .draw_series(theirs.iter().map(|&(x, y)| Cross::new((x, y), 5, RED)))?
            .label("published")
            .legend(|(x, y)| Cross::new((x + 10, y), 5, RED));
        chart.draw_series(LineSeries::new(
            vec![(-0.5, 0.0), (n - 0.5, 0.0)],
            BLACK.stroke_width(1),
        ))?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}
