//! Calendar features (`demand.calendar`) and store selections (`demand.stores`) of data demand: a
//! good calendar file read and aligned with each split's periods (the current period's row), every
//! bad file or setting with an error naming the file, line, column or field, and the `first` and
//! `as_samples` selections serving the file's series.

use std::path::{Path, PathBuf};

use hdpo_sim::calendar::Calendar;
use hdpo_sim::config::{DataStores, Setting, Split};
use hdpo_sim::scenario::{Scenario, ScenarioGenerator};

/// A fresh directory for one test's files.
fn dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("calendar-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Demand of (sample b, store s, period t): every cell distinct.
fn cell(b: usize, s: usize, t: usize) -> usize {
    1000 * b + 100 * s + t
}

/// A wide file of `n` samples × `stores` stores × `periods` periods.
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

/// A calendar of periods `0 … periods − 1` in reverse row order, with a date column (ignored),
/// `days = 10·p − 7` and `flag = p mod 2`.
fn calendar_text(periods: usize) -> String {
    let mut text = String::from("date,period,days,flag\n");
    for p in (0..periods).rev() {
        text += &format!(
            "2013-01-{:02},{p},{},{}\n",
            p % 28 + 1,
            10 * p as i64 - 7,
            p % 2
        );
    }
    text
}

/// A data setting on `sales` with 2 past periods: train [0, 8), dev [3, 10), test [4, 10);
/// `extra` is added to the `[demand]` table.
fn setting_text(sales: &Path, stores: usize, n_samples: usize, extra: &str) -> String {
    format!(
        r#"
name = "calendar_test"
unmet_demand = "lost"
objective = "profit"
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
past_periods = 2
{extra}
[initial_inventory]
rule = "zero"
[splits.train]
n_samples = {n_samples}
batch_size = 2
periods = 6
ignore_periods = 1
periods_range = [0, 8]
[splits.dev]
n_samples = {n_samples}
batch_size = 2
periods = 5
ignore_periods = 1
periods_range = [3, 10]
[splits.test]
n_samples = {n_samples}
batch_size = 2
periods = 4
ignore_periods = 0
periods_range = [4, 10]
[seeds]
train = 1
dev = 2
test = 3
[observation]
past_demands = 2
"#,
        sales.display()
    )
}

fn calendar_table(file: &Path, columns: &str) -> String {
    format!(
        "[demand.calendar]\nfile = \"{}\"\ncolumns = {columns}",
        file.display()
    )
}

#[test]
fn each_split_sees_the_calendar_row_of_its_current_period() {
    let d = dir("good");
    let sales = write(&d, "sales.csv", &wide_text(3, 2, 10));
    let cal = write(&d, "calendar.csv", &calendar_text(12));
    let text = setting_text(&sales, 2, 3, &calendar_table(&cal, r#"["flag", "days"]"#));
    let setting = Setting::from_toml_str(&text).unwrap();
    // period t of a split starting at a sees file period a + 2 + t
    for (split, first, periods) in [
        (Split::Train, 2, 6),
        (Split::Dev, 5, 5),
        (Split::Test, 6, 4),
    ] {
        let scenario = Scenario::generate(&setting, split).unwrap();
        let st = &scenario.statics;
        assert_eq!(st.n_calendar_features(), 2);
        for t in 0..periods {
            let p = first + t;
            let row = st.calendar_at(t).unwrap().to_vec();
            assert_eq!(
                row,
                vec![(p % 2) as f32, (10 * p) as f32 - 7.0],
                "{split} t={t}"
            );
            // and the demand of that period is the file's period p
            assert_eq!(scenario.demand[[1, t]], cell(0, 1, p) as f32);
        }
        // past the horizon: the last row
        assert_eq!(
            st.calendar_at(periods + 5).unwrap(),
            st.calendar_at(periods - 1).unwrap()
        );
        // a batch keeps the calendar
        assert_eq!(
            scenario.batch(&[2, 0]).unwrap().statics.calendar,
            st.calendar
        );
    }
    // without a calendar: none
    let plain = Setting::from_toml_str(&setting_text(&sales, 2, 3, "")).unwrap();
    let scenario = Scenario::generate(&plain, Split::Train).unwrap();
    assert_eq!(scenario.statics.n_calendar_features(), 0);
    assert!(scenario.statics.calendar_at(0).is_none());
    // the setting round-trips through TOML with its calendar
    let again = Setting::from_toml_str(&setting.to_toml_string().unwrap()).unwrap();
    assert_eq!(again, setting);
}

#[test]
fn every_bad_calendar_file_names_the_file_line_and_column() {
    let d = dir("bad");
    let columns = ["days".to_string()];
    let err = |name: &str, text: &str, columns: &[String]| {
        let path = write(&d, name, text);
        Calendar::read(&path, columns).unwrap_err().to_string()
    };
    // missing file
    let e = Calendar::read(&d.join("nope.csv"), &columns)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("nope.csv") && e.contains("cannot be read"),
        "{e}"
    );
    // no period column
    let e = err("no_period.csv", "date,days\n2013-01-01,7\n", &columns);
    assert!(e.contains("line 1") && e.contains("`period` column"), "{e}");
    // the requested column is not there: the allowed ones are listed
    let e = err(
        "no_column.csv",
        "period,days\n0,7\n",
        &["christmas".to_string()],
    );
    assert!(
        e.contains("line 1") && e.contains("`christmas`") && e.contains("allowed: days"),
        "{e}"
    );
    // a non-numeric cell
    let e = err("text.csv", "period,days\n0,7\n1,soon\n", &columns);
    assert!(
        e.contains("line 3") && e.contains("column `days`") && e.contains("`soon`"),
        "{e}"
    );
    // a non-finite cell
    let e = err("nan.csv", "period,days\n0,NaN\n", &columns);
    assert!(e.contains("line 2") && e.contains("column `days`"), "{e}");
    // a bad period
    let e = err("period.csv", "period,days\n0,7\n-1,8\n", &columns);
    assert!(e.contains("line 3") && e.contains("column `period`"), "{e}");
    // a period twice
    let e = err("twice.csv", "period,days\n0,7\n1,8\n0,9\n", &columns);
    assert!(
        e.contains("line 4") && e.contains("period 0 appears twice (also on line 2)"),
        "{e}"
    );
    // a ragged row
    let e = err("ragged.csv", "period,days\n0,7\n1\n", &columns);
    assert!(e.contains("line 3") && e.contains("fields"), "{e}");
    // no rows
    let e = err("empty.csv", "period,days\n", &columns);
    assert!(e.contains("no data rows"), "{e}");
    // a good file with gaps reads, and says which period is missing
    let path = write(&d, "gaps.csv", "period,days\n0,1\n2,3\n");
    let cal = Calendar::read(&path, &columns).unwrap();
    assert_eq!(cal.first_missing(0..3), Some(1));
    assert_eq!(cal.first_missing(2..3), None);
    assert_eq!(cal.first_missing(2..4), Some(3));
}

#[test]
fn bad_calendar_settings_name_the_field() {
    let d = dir("settings");
    let sales = write(&d, "sales.csv", &wide_text(3, 2, 10));
    let full = write(&d, "calendar.csv", &calendar_text(12));
    let bad = |extra: &str| {
        Setting::from_toml_str(&setting_text(&sales, 2, 3, extra))
            .unwrap_err()
            .to_string()
    };
    // periods not covering a split: the test split reads [4, 10)
    let short = write(&d, "short.csv", &calendar_text(9));
    let e = bad(&calendar_table(&short, r#"["days"]"#));
    assert!(
        e.contains("demand.calendar.file")
            && e.contains("short.csv")
            && e.contains("no row for period 9")
            && e.contains("splits.dev.periods_range"),
        "{e}"
    );
    // a missing file
    let e = bad(&calendar_table(&d.join("nope.csv"), r#"["days"]"#));
    assert!(
        e.contains("demand.calendar.file") && e.contains("nope.csv"),
        "{e}"
    );
    // a column the file does not have
    let e = bad(&calendar_table(&full, r#"["christmas"]"#));
    assert!(
        e.contains("demand.calendar.file") && e.contains("`christmas`"),
        "{e}"
    );
    // no columns, a column twice, the period column
    let e = bad(&calendar_table(&full, "[]"));
    assert!(
        e.contains("demand.calendar.columns") && e.contains("empty"),
        "{e}"
    );
    let e = bad(&calendar_table(&full, r#"["days", "days"]"#));
    assert!(
        e.contains("demand.calendar.columns") && e.contains("twice"),
        "{e}"
    );
    let e = bad(&calendar_table(&full, r#"["period"]"#));
    assert!(e.contains("demand.calendar.columns"), "{e}");
    // an unknown key of the table
    let e = bad(&format!(
        "{}\nscale = 2",
        calendar_table(&full, r#"["days"]"#)
    ));
    assert!(e.contains("scale"), "{e}");
    // a calendar (or a store selection) without data demand
    let poisson = format!(
        r#"
name = "p"
unmet_demand = "lost"
[network]
n_stores = 1
[stores]
holding_cost = 1
underage_cost = 4
lead_time = 2
[demand]
distribution = "poisson"
mean = 5
{}
[splits.train]
n_samples = 2
batch_size = 2
periods = 3
ignore_periods = 0
[splits.dev]
n_samples = 2
batch_size = 2
periods = 3
ignore_periods = 0
[splits.test]
n_samples = 2
batch_size = 2
periods = 3
ignore_periods = 0
[seeds]
train = 1
dev = 2
test = 3
"#,
        calendar_table(&full, r#"["days"]"#)
    );
    let e = Setting::from_toml_str(&poisson).unwrap_err().to_string();
    assert!(
        e.contains("demand.calendar") && e.contains("only used with"),
        "{e}"
    );
    let e = Setting::from_toml_str(
        &poisson.replace(&calendar_table(&full, r#"["days"]"#), "stores = \"first\""),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("demand.stores") && e.contains("only used with"),
        "{e}"
    );
}

#[test]
fn a_relative_calendar_resolves_against_the_setting_files_directory() {
    let d = dir("relative");
    write(&d, "sales.csv", &wide_text(3, 2, 10));
    write(&d, "calendar.csv", &calendar_text(12));
    let text = setting_text(
        Path::new("sales.csv"),
        2,
        3,
        r#"calendar = { file = "calendar.csv", columns = ["days"] }"#,
    );
    let path = write(&d, "setting.toml", &text);
    let setting = Setting::from_file(&path).unwrap();
    let calendar = &setting.demand.calendar.as_ref().unwrap().file;
    assert!(calendar.is_absolute() && calendar.ends_with("calendar.csv"));
    assert_eq!(
        calendar.parent(),
        setting.demand.file.as_ref().unwrap().parent()
    );
    // `..` components are removed, so one file has one path
    let sub = d.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    let text = text
        .replace("\"sales.csv\"", "\"../sales.csv\"")
        .replace("\"calendar.csv\"", "\"./../calendar.csv\"");
    let nested = Setting::from_file(write(&sub, "setting.toml", &text)).unwrap();
    assert_eq!(nested.demand, setting.demand);
}

#[test]
fn store_selections_serve_the_files_series() {
    let d = dir("stores");
    let sales = write(&d, "sales.csv", &wide_text(3, 4, 10));
    // the first 2 of 4 stores
    let first = Setting::from_toml_str(&setting_text(&sales, 2, 3, "stores = \"first\"")).unwrap();
    let dev = ScenarioGenerator::new(&first, Split::Dev).unwrap();
    assert_eq!(dev.instance().n_stores, 2);
    let scenario = dev.generate(0..3, 5);
    for b in 0..3 {
        for s in 0..2 {
            // dev reads [3, 10): history 3, 4; simulated 5 …
            assert_eq!(scenario.history[[b * 2 + s, 0]], cell(b, s, 3) as f32);
            assert_eq!(scenario.demand[[b * 2 + s, 0]], cell(b, s, 5) as f32);
        }
    }
    // more stores than the file has
    let e = Setting::from_toml_str(&setting_text(&sales, 5, 3, "stores = \"first\""))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("network.n_stores")
            && e.contains("allowed with demand.stores = \"first\": 1 … 4"),
        "{e}"
    );
    // without a selection the counts must agree, and the message points to "first"
    let e = Setting::from_toml_str(&setting_text(&sales, 2, 3, ""))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("network.n_stores") && e.contains("stores = \"first\""),
        "{e}"
    );
    // every series a one-store sample: 3 × 4 = 12 samples, sample k = (k / 4, k mod 4)
    let as_samples =
        Setting::from_toml_str(&setting_text(&sales, 1, 12, "stores = \"as_samples\"")).unwrap();
    let train = ScenarioGenerator::new(&as_samples, Split::Train).unwrap();
    let scenario = train.generate(0..12, 6);
    for k in 0..12 {
        assert_eq!(
            scenario.demand[[k, 0]],
            cell(k / 4, k % 4, 2) as f32,
            "sample {k}"
        );
    }
    let e = Setting::from_toml_str(&setting_text(&sales, 1, 13, "stores = \"as_samples\""))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("splits.train.n_samples") && e.contains("12 samples"),
        "{e}"
    );
    let e = Setting::from_toml_str(&setting_text(&sales, 2, 3, "stores = \"as_samples\""))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("network.n_stores") && e.contains("as_samples"),
        "{e}"
    );
    // an unknown selection lists the allowed ones
    let e = Setting::from_toml_str(&setting_text(&sales, 2, 3, "stores = \"last\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("first") && e.contains("as_samples"), "{e}");
    assert_eq!(DataStores::default(), DataStores::All);
}
