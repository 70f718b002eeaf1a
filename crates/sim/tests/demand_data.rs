//! Demand from data files: the long and wide readers on good files, every bad input with an error
//! naming the line, the column or the field, negative cells, the split arithmetic (which file
//! periods each split observes and simulates), and the evaluator and scenarios reading the same
//! values.

use std::path::{Path, PathBuf};

use hdpo_sim::config::{DataFormat, NegativeDemand, Setting, Split};
use hdpo_sim::demand_data::DemandData;
use hdpo_sim::eval::{ActionPolicy, BaseStockPolicy, EvalObservation, EvalOptions, evaluate};
use hdpo_sim::scenario::{Scenario, ScenarioGenerator};
use hdpo_sim::state::Actions;
use std::sync::Mutex;

/// A fresh directory for one test's files.
fn dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("demand-data-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Demand of (sample b, store s, period t) in the generated files: every cell distinct.
fn cell(b: usize, s: usize, t: usize) -> usize {
    100 * b + 10 * s + t
}

/// A wide file of `n` samples × `stores` stores × `periods` periods (rows sample-major).
fn wide_text(n: usize, stores: usize, periods: usize) -> String {
    let mut text = String::from("sample,store");
    for t in 0..periods {
        text += &format!(",w{t:03}");
    }
    text.push('\n');
    for b in 0..n {
        for s in 0..stores {
            text += &format!("{b},{s}");
            for t in 0..periods {
                text += &format!(",{}", cell(b, s, t));
            }
            text.push('\n');
        }
    }
    text
}

fn read(path: &Path, format: DataFormat) -> Result<DemandData, String> {
    DemandData::read(path, format, NegativeDemand::Error).map_err(|e| e.to_string())
}

#[test]
fn long_and_wide_files_read_the_same_series_in_any_row_order() {
    let d = dir("good");
    let wide = write(&d, "wide.csv", &wide_text(3, 2, 5));
    // long format, rows in reverse order, spaces around fields
    let mut long = String::from("sample,store,period,demand\n");
    for b in (0..3).rev() {
        for t in (0..5).rev() {
            for s in 0..2 {
                long += &format!("{b}, {s}, {t}, {}\n", cell(b, s, t));
            }
        }
    }
    let long = write(&d, "long.csv", &long);
    let a = read(&wide, DataFormat::Wide).unwrap();
    let b = read(&long, DataFormat::Long).unwrap();
    assert_eq!(a, b);
    assert_eq!((a.n_samples(), a.n_stores(), a.n_periods()), (3, 2, 5));
    assert_eq!(a.series(2, 1), &[210.0, 211.0, 212.0, 213.0, 214.0]);
    assert_eq!(a.value(1, 0, 4), 104.0);
    assert_eq!(a.value(1, 0, 5), 0.0, "zero past the end of the file");
    // wide rows shuffled: the same data
    let text = wide_text(3, 2, 5);
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1..].reverse();
    let shuffled = write(&d, "shuffled.csv", &(lines.join("\n") + "\n"));
    assert_eq!(read(&shuffled, DataFormat::Wide).unwrap(), a);
    // store moments: store 0 over samples 0..2, periods 1..3 → cells 1, 2, 101, 102
    let (mean, std) = a.store_moments(0..2, 1..3);
    assert!((mean[0] - 51.5).abs() < 1e-9, "{mean:?}");
    // deviations ±49.5, ±50.5: variance 2500.25
    assert!((std[0] - 2500.25f64.sqrt()).abs() < 1e-9, "{std:?}");
}

#[test]
fn every_bad_file_gets_an_error_naming_line_and_column() {
    let d = dir("bad");
    let cases: &[(&str, DataFormat, &str, &[&str])] = &[
        (
            "bad_header_long.csv",
            DataFormat::Long,
            "sample,store,week,demand\n0,0,0,1\n",
            &[
                "line 1",
                "sample,store,week,demand",
                "sample,store,period,demand",
            ],
        ),
        (
            "bad_header_wide.csv",
            DataFormat::Wide,
            "product,store,w000\n0,0,1\n",
            &["line 1", "product,store,w000", "format = \"wide\""],
        ),
        (
            "not_a_number.csv",
            DataFormat::Wide,
            "sample,store,w000,w001\n0,0,1,2\n0,1,3,abc\n",
            &["line 3", "column `w001`", "`abc` is not a number"],
        ),
        (
            "infinite.csv",
            DataFormat::Long,
            "sample,store,period,demand\n0,0,0,inf\n",
            &["line 2", "column `demand`", "`inf` is not a number"],
        ),
        (
            "negative.csv",
            DataFormat::Wide,
            "sample,store,w000,w001\n0,0,1,2\n1,0,-7,2\n",
            &[
                "line 3",
                "column `w000`",
                "-7 is negative",
                "demand.negative = \"zero\"",
            ],
        ),
        (
            "bad_index.csv",
            DataFormat::Long,
            "sample,store,period,demand\n0,0,0,1\n0,-1,1,1\n",
            &["line 3", "column `store`", "`-1` is not an index"],
        ),
        (
            "ragged.csv",
            DataFormat::Wide,
            "sample,store,w000,w001\n0,0,1,2\n0,1,3\n",
            &["line 3", "3 fields", "header has 4"],
        ),
        (
            "duplicate.csv",
            DataFormat::Wide,
            "sample,store,w000\n0,0,1\n0,1,2\n0,0,3\n",
            &["line 4", "sample 0, store 0 appears twice", "line 2"],
        ),
        (
            "missing.csv",
            DataFormat::Long,
            "sample,store,period,demand\n0,0,0,1\n0,0,2,1\n",
            &["has 2 cells", "sample 0, store 0, period 1 is missing"],
        ),
        (
            "missing_row.csv",
            DataFormat::Wide,
            "sample,store,w000\n0,0,1\n0,1,2\n1,1,3\n",
            &[
                "has 3 rows",
                "2 samples × 2 stores",
                "sample 1, store 0 is missing",
            ],
        ),
        (
            "empty.csv",
            DataFormat::Wide,
            "sample,store,w000\n",
            &["no data rows"],
        ),
    ];
    for (name, format, text, needles) in cases {
        let path = write(&d, name, text);
        let err = read(&path, *format).expect_err(name);
        assert!(err.contains(name), "{name}: {err}");
        for needle in *needles {
            assert!(err.contains(needle), "{name}: `{needle}` not in: {err}");
        }
    }
    let err = read(&d.join("no_such_file.csv"), DataFormat::Wide).unwrap_err();
    assert!(
        err.contains("no_such_file.csv") && err.contains("cannot be read"),
        "{err}"
    );
}

#[test]
fn negative_cells_are_zero_when_asked_and_counted() {
    let d = dir("negative");
    let path = write(
        &d,
        "returns.csv",
        "sample,store,period,demand\n0,0,0,4\n0,0,1,-3\n0,0,2,-0.5\n",
    );
    assert!(read(&path, DataFormat::Long).is_err());
    let data = DemandData::read(&path, DataFormat::Long, NegativeDemand::Zero).unwrap();
    assert_eq!(data.series(0, 0), &[4.0, 0.0, 0.0]);
    assert_eq!(data.negatives_zeroed(), 2);
}

/// A one-store (or `stores`-store) data setting on `file`: train [0, 10) with 3 past periods,
/// dev [4, 12), test [6, 12) (past 3 each).
fn data_setting(file: &Path, stores: usize, n_samples: usize) -> Setting {
    let text = format!(
        r#"
name = "data_test"
unmet_demand = "lost"
[network]
n_stores = {stores}
[stores]
holding_cost = 1
underage_cost = 4
lead_time = 2
[demand]
distribution = "data"
file = "{}"
format = "wide"
past_periods = 3
[initial_inventory]
rule = "zero"
[splits.train]
n_samples = {n_samples}
batch_size = 2
periods = 7
ignore_periods = 1
periods_range = [0, 10]
[splits.dev]
n_samples = {n_samples}
batch_size = 2
periods = 5
ignore_periods = 1
periods_range = [4, 12]
[splits.test]
n_samples = {n_samples}
batch_size = 2
periods = 3
ignore_periods = 0
periods_range = [6, 12]
[seeds]
train = 1
dev = 2
test = 3
[observation]
past_demands = 4
"#,
        file.display()
    );
    Setting::from_toml_str(&text).unwrap()
}

#[test]
fn each_split_observes_its_past_periods_and_simulates_the_rest() {
    let d = dir("splits");
    let file = write(&d, "sales.csv", &wide_text(4, 2, 12));
    let s = data_setting(&file, 2, 3);
    for (split, start, periods) in [
        (Split::Train, 0, 7),
        (Split::Dev, 4, 5),
        (Split::Test, 6, 3),
    ] {
        let sc = Scenario::generate(&s, split).unwrap();
        assert_eq!(sc.n_samples(), 3);
        assert_eq!(sc.demand.dim(), (6, periods));
        assert_eq!(sc.history.dim(), (6, 3));
        for b in 0..3 {
            for st in 0..2 {
                let row = b * 2 + st;
                // history: file periods start, start + 1, start + 2
                for k in 0..3 {
                    assert_eq!(sc.history[[row, k]], cell(b, st, start + k) as f32);
                }
                // simulated: file periods start + 3 …
                for t in 0..periods {
                    assert_eq!(
                        sc.demand[[row, t]],
                        cell(b, st, start + 3 + t) as f32,
                        "{split} b{b} s{st} t{t}"
                    );
                }
            }
        }
        // a batch gathers the history with the demand
        let batch = sc.batch(&[2, 0]).unwrap();
        assert_eq!(batch.history.row(0), sc.history.row(4));
        assert_eq!(batch.history.row(3), sc.history.row(1));
        assert_eq!(batch.demand.row(2), sc.demand.row(0));
        // the stream continues the file past the range, then zeros past its end
        let generator = ScenarioGenerator::new(&s, split).unwrap();
        let mut stream = generator.demand_stream(1..2);
        let chunk = stream.next_chunk(periods + 3);
        for t in 0..periods + 3 {
            let p = start + 3 + t;
            let want = if p < 12 { cell(1, 0, p) as f32 } else { 0.0 };
            assert_eq!(chunk[[0, t]], want, "{split} t{t}");
        }
    }
    // the statics' mean is the training range's mean per store (samples 0..3, periods 0..10)
    let generator = ScenarioGenerator::new(&s, Split::Test).unwrap();
    let mean = generator.instance().mean[1];
    let want = (0..3)
        .flat_map(|b| (0..10).map(move |t| cell(b, 1, t) as f64))
        .sum::<f64>()
        / 30.0;
    assert!((mean - want).abs() < 1e-9, "{mean} vs {want}");
    // same setting, same bits: generating twice gives identical scenarios
    assert_eq!(
        Scenario::generate(&s, Split::Dev).unwrap(),
        Scenario::generate(&s, Split::Dev).unwrap()
    );
}

/// Overrides and the words their error must contain.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn bad_data_settings_name_the_field() {
    let d = dir("settings");
    let file = write(&d, "sales.csv", &wide_text(4, 2, 12));
    let good = data_setting(&file, 2, 3);
    let try_with = |pairs: &[(&str, &str)]| -> String {
        let mut s = good.clone();
        s.apply_overrides(pairs.iter().map(|(k, v)| format!("{k}={v}")))
            .expect_err(&format!("{pairs:?}"))
            .to_string()
    };
    let cases: &[Case] = &[
        (
            &[("network.n_stores", "3")],
            &["network.n_stores", "is 3", "has 2 stores"],
        ),
        (
            &[("splits.test.periods_range", "[6, 13]")],
            &["splits.test.periods_range", "[6, 13]", "≤ 12"],
        ),
        (
            &[("splits.dev.periods_range", "[4, 11]")],
            &["splits.dev.periods_range", "past_periods = 3", "[4, 12]"],
        ),
        (
            &[("splits.train.n_samples", "5")],
            &["splits.train.n_samples", "is 5", "has 4 samples"],
        ),
        (
            &[("demand.mean", "4")],
            &["demand.mean", "not used with data"],
        ),
        (
            &[("demand.file", "\"/no/such/sales.csv\"")],
            &["demand.file", "/no/such/sales.csv", "cannot be read"],
        ),
        (
            &[("demand.format", "\"long\"")],
            &["demand.file", "line 1", "sample,store,period,demand"],
        ),
        (
            &[("demand.format", "\"columns\"")],
            &["demand.format", "columns"],
        ),
    ];
    for (pairs, needles) in cases {
        let err = try_with(pairs);
        for needle in *needles {
            assert!(err.contains(needle), "{pairs:?}: `{needle}` not in: {err}");
        }
    }
    // a split without a range
    let mut text = good.to_toml_string().unwrap();
    text = text.replace("periods_range = [4, 12]\n", "");
    let err = Setting::from_toml_str(&text).unwrap_err().to_string();
    assert!(
        err.contains("splits.dev.periods_range") && err.contains("required"),
        "{err}"
    );
    // parametric demand with data keys
    let mut poisson = hdpo_sim::settings::setting("one_store_lost").unwrap();
    let err = poisson
        .apply_override("splits.train.periods_range", "[0, 10]")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("splits.train.periods_range") && err.contains("only used"),
        "{err}"
    );
}

#[test]
fn a_relative_file_resolves_against_the_setting_files_directory() {
    let d = dir("relative");
    std::fs::create_dir_all(d.join("data")).unwrap();
    write(&d.join("data"), "sales.csv", &wide_text(3, 1, 12));
    write(&d, "probe.toml", &setting_text("data/sales.csv"));
    let s = Setting::from_file(d.join("probe.toml")).unwrap();
    let file = s.demand.file.clone().unwrap();
    assert!(
        file.is_absolute() && file.ends_with("data/sales.csv"),
        "{file:?}"
    );
    // the same text read from a string resolves against the working directory: not found here
    let err = Setting::from_toml_str(&setting_text("data/sales.csv"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("demand.file") && err.contains("cannot be read"),
        "{err}"
    );
}

/// A one-store data setting's TOML text on `file` (not validated).
fn setting_text(file: &str) -> String {
    format!(
        r#"name = "relative"
unmet_demand = "lost"
[network]
n_stores = 1
[stores]
holding_cost = 1
underage_cost = 4
lead_time = 2
[demand]
distribution = "data"
file = "{file}"
format = "wide"
past_periods = 2
[splits.train]
n_samples = 2
batch_size = 2
periods = 8
ignore_periods = 0
periods_range = [0, 10]
[splits.dev]
n_samples = 2
batch_size = 2
periods = 8
ignore_periods = 0
periods_range = [2, 12]
[splits.test]
n_samples = 2
batch_size = 2
periods = 8
ignore_periods = 0
periods_range = [2, 12]
[seeds]
train = 1
dev = 2
test = 3
"#
    )
}

#[test]
fn the_evaluator_sees_the_history_as_past_demands_and_costs_match_by_hand() {
    let d = dir("eval");
    // one store, one sample: demand 5 every period except a 9 in the history
    let file = write(
        &d,
        "flat.csv",
        "sample,store,period,demand\n0,0,0,9\n0,0,1,5\n0,0,2,5\n0,0,3,5\n0,0,4,5\n0,0,5,5\n",
    );
    let text = setting_text(&file.display().to_string())
        .replace("format = \"wide\"", "format = \"long\"")
        .replace(
            "n_samples = 2\nbatch_size = 2",
            "n_samples = 1\nbatch_size = 1",
        )
        .replace("periods = 8", "periods = 4")
        .replace("[0, 10]", "[0, 6]")
        .replace("[2, 12]", "[0, 6]")
        .replace("[seeds]", "[initial_inventory]\nrule = \"zero\"\n[seeds]");
    let s = Setting::from_toml_str(&text).unwrap();
    // no stock ever arrives in time for a zero base-stock level: all 4 × 5 units lost at p = 4
    let policy = BaseStockPolicy { level: 0.0 };
    let report = evaluate(&s, Split::Test, &policy, &EvalOptions::for_setting(&s)).unwrap();
    assert!(
        (report.cost_per_store_period - 20.0).abs() < 1e-5,
        "{report:?}"
    );
    let sc = Scenario::generate(&s, Split::Test).unwrap();
    assert_eq!(sc.history.row(0).to_vec(), vec![9.0, 5.0]);
    assert_eq!(sc.demand.row(0).to_vec(), vec![5.0; 4]);
    // a window of 3 past demands: zero before the history, then the history, then the demand
    let mut s3 = s.clone();
    s3.apply_override("observation.past_demands", "3").unwrap();
    let recorder = PastRecorder(Mutex::new(Vec::new()));
    evaluate(&s3, Split::Test, &recorder, &EvalOptions::for_setting(&s3)).unwrap();
    // (the last lead time = 2 periods' orders cannot arrive: the policy is not asked then)
    let seen = recorder.0.into_inner().unwrap();
    assert_eq!(seen, vec![vec![0.0, 9.0, 5.0], vec![9.0, 5.0, 5.0]]);
}

/// Records the past demands of the first row every period.
struct PastRecorder(Mutex<Vec<Vec<f32>>>);

impl ActionPolicy for PastRecorder {
    fn act(&self, obs: &EvalObservation<'_>, _: &mut Actions) {
        let past = obs.past_demands().expect("past demands are asked for");
        self.0.lock().unwrap().push(past.row(0).to_vec());
    }
}
