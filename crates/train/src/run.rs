//! Run directories: what `hdpo train` leaves behind. Every file is written atomically and durably
//! (temporary file, flush, rename, flush of the directory).
//!
//! | file | content |
//! |---|---|
//! | `config.toml` | the resolved configuration (re-run with `hdpo train --config`) |
//! | `metrics.csv` | one row per epoch: losses, dev cost, learning rate, gradient norm, seconds |
//! | `policy.json` | the best-on-dev policy (`hdpo eval` reads it) |
//! | `checkpoint.json` | the resumable state (`hdpo train --resume DIR`) |
//! | `curve.svg` | the learning curve (train and dev cost per epoch; with an optimum or bound, a second panel of their gap to it in %) |
//! | `policy.svg` | each location's order against its inventory position in visited test states, with the optimal policy's for one store ([`crate::policy_plot`]) |
//! | `report.md` | setting, policy, train/dev/test cost, wall time, gap to the optimum or bound |

use crate::checkpoint::write_atomic;
use crate::record::EpochRecord;
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    /// Its path.
    pub path: PathBuf,
    /// Temporary files of killed writers that [`RunDir::create`] removed.
    pub stale_removed: Vec<PathBuf>,
}

impl RunDir {
    /// Creates (or reuses) the directory, removes the temporary files that writers killed
    /// mid-write left in it ([`crate::checkpoint::remove_stale_temp_files`]) and checks it is
    /// writable.
    pub fn create(path: &Path) -> Result<RunDir, String> {
        std::fs::create_dir_all(path)
            .map_err(|e| format!("cannot create output directory `{}`: {e}", path.display()))?;
        let stale_removed = crate::checkpoint::remove_stale_temp_files(path);
        write_atomic(&path.join(".hdpo-write-test"), b"ok")
            .map_err(|e| format!("output directory `{}` is not writable: {e}", path.display()))?;
        let _ = std::fs::remove_file(path.join(".hdpo-write-test"));
        Ok(RunDir {
            path: path.to_path_buf(),
            stale_removed,
        })
    }

    /// A file inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `metrics.csv` from the epoch records.
    pub fn write_metrics(&self, history: &[EpochRecord]) -> Result<(), String> {
        let mut text = String::from(
            "epoch,train_loss,train_cost,dev_cost,best_dev_cost,learning_rate,grad_norm,elapsed_seconds\n",
        );
        let opt = |v: Option<f64>| v.map_or(String::new(), |x| format!("{x:.6}"));
        for r in history {
            let _ = writeln!(
                text,
                "{},{:.6},{:.6},{},{},{:e},{:.6},{:.3}",
                r.epoch,
                r.train_loss,
                r.train_cost,
                opt(r.dev_cost),
                opt(r.best_dev_cost),
                r.learning_rate,
                r.grad_norm,
                r.elapsed_seconds
            );
        }
        write_atomic(&self.file("metrics.csv"), text.as_bytes())
    }

    /// Writes `curve.svg`: train cost and dev cost per epoch (log-scaled y when the range is wide),
    /// with a horizontal line at the optimum or bound when one is known, and then a second panel
    /// of the gap to it in % on a log scale from [`GAP_FLOOR_PERCENT`] (so 0.1 % can be read).
    pub fn write_curve(
        &self,
        title: &str,
        history: &[EpochRecord],
        reference: Option<(f64, &str)>,
    ) -> Result<(), String> {
        let svg = render_curve(title, history, reference)
            .map_err(|e| format!("cannot draw the learning curve: {e}"))?;
        write_atomic(&self.file("curve.svg"), svg.as_bytes())
    }
}

/// The gap panel's floor: gaps at or below it (including negative ones: a dev cost under the
/// bound by sampling noise) are drawn on it.
pub const GAP_FLOOR_PERCENT: f64 = 0.01;

/// Height of the cost panel, and of the gap panel under it when there is a reference.
const PANEL_HEIGHT: u32 = 560;
const GAP_PANEL_HEIGHT: u32 = 300;

fn render_curve(
    title: &str,
    history: &[EpochRecord],
    reference: Option<(f64, &str)>,
) -> Result<String, Box<dyn std::error::Error>> {
    let mut svg = String::new();
    {
        let height = PANEL_HEIGHT + reference.map_or(0, |_| GAP_PANEL_HEIGHT);
        let whole = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
        whole.fill(&WHITE)?;
        let (root, gap_area) = whole.split_vertically(PANEL_HEIGHT);
        if let Some((value, name)) = reference {
            draw_gap_panel(&gap_area, history, value, name)?;
        }
        let train: Vec<(f64, f64)> = history
            .iter()
            .map(|r| (r.epoch as f64, r.train_cost))
            .collect();
        let dev: Vec<(f64, f64)> = history
            .iter()
            .filter_map(|r| r.dev_cost.map(|d| (r.epoch as f64, d)))
            .collect();
        let values: Vec<f64> = train
            .iter()
            .chain(&dev)
            .map(|p| p.1)
            .chain(reference.map(|r| r.0))
            .filter(|v| v.is_finite())
            .collect();
        let lo = values.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        let x_max = history.last().map_or(1.0, |r| r.epoch as f64 + 1.0);
        let log_scale = lo > 0.0 && hi / lo > 3.0;
        let caption = format!("{title}: cost per store per period");
        if log_scale {
            let mut chart = ChartBuilder::on(&root)
                .caption(caption, ("sans-serif", 20))
                .margin(15)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..x_max, (lo * 0.95..hi * 1.05).log_scale())?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("cost (log scale)")
                .draw()?;
            draw_series(&mut chart, &train, &dev, reference, x_max)?;
        } else {
            let pad = (hi - lo) * 0.05;
            let mut chart = ChartBuilder::on(&root)
                .caption(caption, ("sans-serif", 20))
                .margin(15)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..x_max, (lo - pad)..(hi + pad))?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("cost")
                .draw()?;
            draw_series(&mut chart, &train, &dev, reference, x_max)?;
        }
        whole.present()?;
    }
    Ok(svg)
}

/// The gap of the train and dev costs (and of the best dev cost so far) to `reference`, in %,
/// on a log scale from [`GAP_FLOOR_PERCENT`].
fn draw_gap_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    history: &[EpochRecord],
    reference: f64,
    name: &str,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let gap = |cost: f64| (100.0 * (cost / reference - 1.0)).max(GAP_FLOOR_PERCENT);
    let points = |cost: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .iter()
            .filter_map(|r| {
                cost(r)
                    .filter(|c| c.is_finite())
                    .map(|c| (r.epoch as f64, gap(c)))
            })
            .collect()
    };
    let train = points(&|r| Some(r.train_cost));
    let dev = points(&|r| r.dev_cost);
    let best = points(&|r| r.best_dev_cost);
    let hi = train
        .iter()
        .chain(&dev)
        .map(|p| p.1)
        .fold(1.0, f64::max)
        .min(1e4);
    let x_max = history.last().map_or(1.0, |r| r.epoch as f64 + 1.0);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "gap to the {name} in % (at or below {GAP_FLOOR_PERCENT} % drawn on the floor)"
            ),
            ("sans-serif", 16),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, (GAP_FLOOR_PERCENT..hi * 1.5).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("gap % (log scale)")
        .y_label_formatter(&|v| format!("{v}"))
        .draw()?;
    for (series, color, label) in [
        (&train, BLUE, "train"),
        (&dev, RED, "dev"),
        (&best, BLACK, "best dev"),
    ] {
        chart
            .draw_series(LineSeries::new(
                series.iter().copied(),
                color.stroke_width(1),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    for percent in [0.1, 1.0] {
        chart.draw_series(LineSeries::new(
            vec![(0.0, percent), (x_max, percent)],
            BLACK.mix(0.3).stroke_width(1),
        ))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn draw_series<'a, DB: DrawingBackend + 'a, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    train: &[(f64, f64)],
    dev: &[(f64, f64)],
    reference: Option<(f64, &str)>,
    x_max: f64,
) -> Result<(), Box<dyn std::error::Error>>
where
    CT: plotters::coord::CoordTranslate<From = (f64, f64)>,
    DB::ErrorType: 'static,
{
    chart
        .draw_series(LineSeries::new(train.iter().copied(), &BLUE))?
        .label("train")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(dev.iter().copied(), &RED))?
        .label("dev")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    if let Some((value, name)) = reference {
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, value), (x_max, value)],
                BLACK.stroke_width(1),
            ))?
            .label(name.to_string())
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, train: f64, dev: Option<f64>) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: train,
            train_cost: train,
            dev_cost: dev,
            best_dev_cost: dev,
            learning_rate: 1e-3,
            grad_norm: 1.0,
            elapsed_seconds: 0.0,
        }
    }

    #[test]
    fn the_gap_panel_appears_with_a_reference_only() {
        let history = [record(0, 12.0, Some(11.0)), record(1, 10.05, Some(10.01))];
        let with = render_curve("t", &history, Some((10.0, "optimum 10"))).unwrap();
        assert!(with.contains("gap to the optimum 10 in %"));
        assert!(with.contains(&format!("height=\"{}\"", PANEL_HEIGHT + GAP_PANEL_HEIGHT)));
        let without = render_curve("t", &history, None).unwrap();
        assert!(!without.contains("gap to"));
        assert!(without.contains(&format!("height=\"{PANEL_HEIGHT}\"")));
    }
}
