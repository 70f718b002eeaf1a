//! End-to-end tests of the `hdpo` binary for issue 6: `hdpo optimum` on every setting family, the gap
//! in `hdpo train` / `hdpo eval` reports, the on-disk optimum cache, and `hdpo reproduce`.
//! Every test uses its own temporary directory and cache (`HDPO_CACHE_DIR`).

use hdpo::optimum::{self, backlog, lost_sales, serial, transshipment};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hdpo-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn hdpo(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hdpo"))
        .args(args)
        .env("HDPO_CACHE_DIR", cache)
        .output()
        .expect("the hdpo binary runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `hdpo optimum --json …` → (status, cost, source).
fn optimum_json(cache: &Path, args: &[&str]) -> (String, Option<f64>, String) {
    let mut all = vec!["optimum", "--json"];
    all.extend_from_slice(args);
    let out = hdpo(cache, &all);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{args:?}: {stderr}");
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    (
        value["status"].as_str().unwrap().to_string(),
        value["cost"].as_f64(),
        value["source"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn optimum_matches_the_solvers_for_every_family() {
    let cache = temp_dir("families");
    // one store, lost sales, Poisson: relative value iteration (Zipkin L = 1, p = 9: 5.44)
    let (status, cost, _) = optimum_json(
        &cache,
        &[
            "--setting",
            "one_store_lost",
            "--set",
            "setting.stores.lead_time=1",
        ],
    );
    let dp =
        optimum::lost_sales_optimum(&lost_sales::LostSalesInstance::reference(1, 9.0)).unwrap();
    assert_eq!(status, "exact");
    assert_eq!(cost.unwrap(), dp.cost());
    assert!((cost.unwrap() - 5.44).abs() < 0.005);

    // one store, backlogged, N(5, 1.6) clipped: lattice base stock; and unclipped: closed form
    let (status, cost, _) = optimum_json(
        &cache,
        &[
            "--setting",
            "one_store_backlogged",
            "--set",
            "underage_cost=19",
        ],
    );
    let clipped = backlog::backlog_clipped_normal(5.0, 1.6, 4, 1.0, 19.0, 0.02).unwrap();
    assert_eq!(
        (status.as_str(), cost.unwrap()),
        ("exact", clipped.average_cost)
    );
    let (_, cost, _) = optimum_json(
        &cache,
        &[
            "--setting",
            "one_store_backlogged",
            "--set",
            "setting.demand.clip=false",
            "--set",
            "setting.stores.lead_time=10",
        ],
    );
    let closed = backlog::backlog_normal(5.0, 1.6, 10, 1.0, 9.0).unwrap();
    assert_eq!(cost.unwrap(), closed.average_cost);
    assert!(
        (cost.unwrap() - 9.3130).abs() < 1e-4,
        "published-results.md §2"
    );

    // serial chain, 4 and 6 locations: Clark–Scarf
    let (status, cost, _) = optimum_json(&cache, &["--setting", "serial_system"]);
    let system = serial::SerialSystem::reference(4, 4, 9.0).unwrap();
    let chain = serial::solve_serial_clipped_normal(&system, 5.0, 2.0, 0.02).unwrap();
    assert_eq!(
        (status.as_str(), cost.unwrap()),
        ("exact", chain.average_cost)
    );
    let (_, cost, _) = optimum_json(&cache, &["--setting", "serial_system_6"]);
    let system = serial::SerialSystem::reference(6, 4, 9.0).unwrap();
    let chain = serial::solve_serial_clipped_normal(&system, 5.0, 2.0, 0.02).unwrap();
    assert_eq!(cost.unwrap(), chain.average_cost);

    // transshipment: the published lower bound (published-results.md §5)
    let (status, cost, _) = optimum_json(
        &cache,
        &[
            "--setting",
            "transshipment_backlogged",
            "--set",
            "n_stores=10",
            "--set",
            "lead_time=6",
            "--set",
            "underage_cost=9",
        ],
    );
    assert_eq!(status, "lower_bound");
    assert!((cost.unwrap() - 9.460935).abs() < 1e-6);
    let params = hdpo::sim::config::reference_stores();
    let bound = transshipment::transshipment_lower_bound(
        &params.mean[..10],
        &params.std[..10],
        0.5,
        6,
        3,
        1.0,
        9.0,
    )
    .unwrap();
    assert_eq!(cost.unwrap(), bound.per_store_cost);

    // one warehouse, many stores: no known bound, exit 0
    let (status, cost, _) = optimum_json(&cache, &["--setting", "one_warehouse_lost"]);
    assert_eq!((status.as_str(), cost), ("no_known_bound", None));
    let out = hdpo(
        &cache,
        &[
            "optimum",
            "--setting",
            "one_warehouse_lost",
            "--set",
            "n_stores=20",
        ],
    );
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(
        stdout.contains("no known bound") && stdout.contains("best policy found"),
        "{stdout}"
    );

    // text output says which kind it is
    let out = hdpo(
        &cache,
        &["optimum", "--setting", "transshipment_backlogged"],
    );
    let (stdout, _) = text(&out);
    assert!(stdout.contains("lower bound: 5.2964"), "{stdout}");
    assert!(
        stdout.contains("upper bound on the optimality gap"),
        "{stdout}"
    );
    let out = hdpo(
        &cache,
        &["optimum", "--setting", "one_store_lost", "--heuristics"],
    );
    let (stdout, _) = text(&out);
    assert!(stdout.contains("exact optimum: 6.8359"), "{stdout}");
    assert!(
        stdout.contains("best base stock (S = 28): 7.2709"),
        "{stdout}"
    );
    assert!(
        stdout.contains("best capped base stock (S = 29, cap = 5): 6.9123"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn optimum_errors_are_clear() {
    let cache = temp_dir("errors");
    for (args, needle) in [
        (
            vec![
                "--setting",
                "one_store_backlogged",
                "--set",
                "unmet_demand=lost",
            ],
            "lost sales with normal demand",
        ),
        (
            vec![
                "--setting",
                "one_store_lost",
                "--set",
                "stores.lead_time={ sample = \"per_sample\", range = [1, 3] }",
            ],
            "drawn per sample",
        ),
        (
            vec!["--setting", "serial_system", "--set", "demand.clip=false"],
            "demand.clip = true",
        ),
        (
            vec!["--setting", "one_store_lost", "--set", "lead_time=7"],
            "lead_time",
        ),
        (vec!["--setting", "nope"], "one_store_lost"),
        (
            vec!["--setting", "one_store_lost", "--set", "no_such_key=1"],
            "--set no_such_key=1",
        ),
        (
            vec!["--setting", "serial_system", "--heuristics"],
            "--heuristics",
        ),
    ] {
        let mut all = vec!["optimum"];
        all.extend(args.iter().copied());
        let out = hdpo(&cache, &all);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn the_cache_is_written_read_and_a_corrupt_entry_is_recomputed() {
    let cache = temp_dir("cache");
    let args = ["--setting", "one_store_lost", "--set", "lead_time=2"];
    let (_, cost, source) = optimum_json(&cache, &args);
    assert_eq!(source, "computed");
    let files: Vec<PathBuf> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let (_, again, source) = optimum_json(&cache, &args);
    assert_eq!((source.as_str(), again), ("cache", cost));

    // An existing entry is read, not recomputed: doctor its cost and see it come back.
    let entry = std::fs::read_to_string(&files[0]).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&entry).unwrap();
    value["solved"]["cost"] = serde_json::json!(1.25);
    std::fs::write(&files[0], value.to_string()).unwrap();
    let (_, doctored, source) = optimum_json(&cache, &args);
    assert_eq!((source.as_str(), doctored), ("cache", Some(1.25)));

    // A corrupt entry is recomputed (with a warning) and rewritten.
    std::fs::write(&files[0], "{\"format\": \"hdpo-optimum-cache\", trunc").unwrap();
    let out = hdpo(
        &cache,
        &[
            "optimum",
            "--json",
            "--setting",
            "one_store_lost",
            "--set",
            "lead_time=2",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("corrupt") && stderr.contains("recomputing"),
        "{stderr}"
    );
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(value["source"], "computed");
    assert_eq!(value["cost"].as_f64(), cost);
    let (_, _, source) = optimum_json(&cache, &args);
    assert_eq!(source, "cache");
    let _ = std::fs::remove_dir_all(&cache);
}

/// Tiny sizes for `hdpo train` (batch sizes before sample counts: each override is validated).
const TINY: &[&str] = &[
    "setting.splits.train.batch_size=128",
    "setting.splits.train.n_samples=256",
    "setting.splits.dev.batch_size=128",
    "setting.splits.dev.n_samples=128",
    "setting.splits.test.batch_size=128",
    "setting.splits.test.n_samples=128",
    "setting.splits.test.ignore_periods=50",
    "setting.splits.test.periods=120",
    "max_epochs=3",
    "dev_every=1",
];

fn train(cache: &Path, out: &Path, setting: &str, policy: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "train",
        "--setting",
        setting,
        "--policy",
        policy,
        "--out",
        out.to_str().unwrap(),
    ];
    for kv in TINY.iter().chain(extra) {
        args.push("--set");
        args.push(kv);
    }
    let o = hdpo(cache, &args);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("reference: "), "{stderr}");
    stdout
}

#[test]
fn train_and_eval_report_the_gap() {
    let dir = temp_dir("train");
    let cache = dir.join("cache");
    let run = dir.join("lost");
    let stdout = train(
        &cache,
        &run,
        "one_store_lost",
        "vanilla_one_store",
        &["setting.stores.lead_time=2"],
    );
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert_eq!(stdout, report);
    assert!(
        report.contains("| exact optimum | 6.0936 — lost sales"),
        "{report}"
    );
    let test_cost: f64 = report
        .lines()
        .find(|l| l.starts_with("| test cost"))
        .and_then(|l| l.split('|').nth(2))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gap_line = report
        .lines()
        .find(|l| l.starts_with("| test gap to optimum"))
        .expect("test gap row");
    let expected = format!("{:+.2} %", 100.0 * (test_cost / 6.0936423867 - 1.0));
    assert!(gap_line.contains(&expected), "{gap_line} vs {expected}");
    assert!(report.contains("| dev gap to optimum |"));
    assert!(report.contains("| test standard error | "), "{report}");
    let curve = std::fs::read_to_string(run.join("curve.svg")).unwrap();
    assert!(
        curve.contains("optimum 6.0936"),
        "reference line in the curve"
    );
    assert!(
        curve.contains("gap to the optimum 6.0936 in %") && curve.contains(">\n0.1\n<"),
        "the curve's gap panel, with 0.1 % on its axis"
    );
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 1, "cached once");

    // eval prints the gap too (same test split as the training run)
    let mut args = vec![
        "eval".to_string(),
        run.join("policy.json").to_str().unwrap().to_string(),
    ];
    for kv in &TINY[4..8] {
        args.push("--set".into());
        args.push(kv.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = hdpo(&cache, &args);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("gap to optimum {expected}")),
        "{stdout}"
    );
    assert!(stdout.contains(" (s.e.) ["), "{stdout}");

    // a bound: the gap is labelled as an upper bound on the optimality gap
    let run = dir.join("trans");
    let stdout = train(
        &cache,
        &run,
        "transshipment_backlogged",
        "vanilla_warehouse",
        &["setting.n_stores=3", "policy.hidden=[16]"],
    );
    assert!(stdout.contains("| lower bound | 5.7537"), "{stdout}");
    assert!(
        stdout.contains("| test gap to bound (upper bound on the optimality gap) |"),
        "{stdout}"
    );

    // no bound: said so
    let run = dir.join("owms");
    let stdout = train(
        &cache,
        &run,
        "one_warehouse_lost",
        "vanilla_warehouse",
        &["setting.n_stores=3", "policy.hidden=[16]"],
    );
    assert!(stdout.contains("| optimum | no known bound"), "{stdout}");
    assert!(stdout.contains("best policy found"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reproduce_runs_one_cell_and_resumes() {
    let dir = temp_dir("reproduce");
    let cache = dir.join("cache");
    let out = dir.join("out");
    let args = [
        "reproduce",
        "one_store_lost",
        "--scale",
        "smoke",
        "--out",
        out.to_str().unwrap(),
        "--filter",
        "L2-p9-",
        "--set",
        "max_epochs=2",
        "--set",
        "setting.splits.test.ignore_periods=40",
        "--set",
        "setting.splits.test.periods=100",
    ];
    let o = hdpo(&cache, &args);
    let (_, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("[1/1] L2-p9-vanilla_one_store test"),
        "{stderr}"
    );
    let md = std::fs::read_to_string(out.join("one_store_lost/results.md")).unwrap();
    assert!(md.contains("smoke scale"), "{md}");
    assert!(md.contains("| 2 | 9 | vanilla_one_store |"), "{md}");
    assert!(md.contains("6.0936 (opt)"), "{md}");
    assert!(md.contains("6.09"), "published Zipkin value");
    assert!(out.join("one_store_lost/results.csv").exists());
    assert!(out.join("one_store_lost/gaps.svg").exists());
    let o = hdpo(&cache, &args);
    let (_, stderr) = text(&o);
    assert!(stderr.contains("1 already done"), "{stderr}");
    assert!(stderr.contains("0 trained"), "{stderr}");

    for (args, needle) in [
        (vec!["reproduce", "nope"], "allowed: one_store_lost"),
        (vec!["reproduce", "serial", "--scale", "huge"], "--scale"),
        (vec!["reproduce", "serial", "--limit", "0"], "--limit"),
    ] {
        let o = hdpo(&cache, &args);
        let (_, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
    let o = hdpo(&cache, &["reproduce", "serial", "--list"]);
    let (stdout, _) = text(&o);
    assert!(stdout.contains("7loc-s8192-gnn"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
