//! `hdpo act` end to end: a policy trained by `hdpo train` prints its orders for a JSON or CSV
//! state file (the same orders in both formats), and a bad state file, format or sample exits 2
//! with a message naming what was expected.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hdpo-cli-act-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn hdpo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hdpo"))
        .args(args)
        .output()
        .unwrap()
}

/// Trains a one-warehouse GNN with 2 stores for one tiny epoch; returns its policy file.
fn trained_policy(dir: &Path) -> PathBuf {
    let out = dir.join("run");
    let mut args = vec![
        "train",
        "--setting",
        "one_warehouse_lost",
        "--policy",
        "gnn",
        "--threads",
        "1",
        "--out",
        out.to_str().unwrap(),
    ];
    for kv in [
        "n_stores=2",
        "setting.splits.train.batch_size=32",
        "setting.splits.train.n_samples=32",
        "setting.splits.train.periods=6",
        "setting.splits.train.ignore_periods=1",
        "setting.splits.dev.batch_size=16",
        "setting.splits.dev.n_samples=16",
        "setting.splits.dev.periods=6",
        "setting.splits.dev.ignore_periods=1",
        "setting.splits.test.batch_size=16",
        "setting.splits.test.n_samples=16",
        "setting.splits.test.periods=6",
        "setting.splits.test.ignore_periods=1",
        "max_epochs=1",
    ] {
        args.push("--set");
        args.push(kv);
    }
    let run = hdpo(&args);
    assert!(
        run.status.success(),
        "train failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    out.join("policy.json")
}

#[test]
fn act_prints_the_orders_of_json_and_csv_states_and_refuses_bad_ones() {
    let dir = temp_dir("main");
    let policy = trained_policy(&dir);
    let policy = policy.to_str().unwrap();
    let json = dir.join("state.json");
    std::fs::write(
        &json,
        r#"[{"stores": [{"on_hand": 3, "arriving": [5, 4]}, {"on_hand": 0}],
             "warehouses": [{"on_hand": 40, "arriving": [10]}]},
            {"stores": [{"on_hand": 0}, {"on_hand": 0}], "warehouses": [{"on_hand": 0}]}]"#,
    )
    .unwrap();
    let csv = dir.join("state.csv");
    std::fs::write(
        &csv,
        "state,location,index,on_hand,arriving_1,arriving_2\n\
         0,store,0,3,5,4\n0,store,1,0,0,0\n0,warehouse,0,40,10,0\n\
         1,store,0,0,0,0\n1,store,1,0,0,0\n1,warehouse,0,0,0,0\n",
    )
    .unwrap();

    let from_json = hdpo(&["act", policy, "--state", json.to_str().unwrap()]);
    assert!(
        from_json.status.success(),
        "{}",
        String::from_utf8_lossy(&from_json.stderr)
    );
    let text = String::from_utf8(from_json.stdout).unwrap();
    let orders: serde_json::Value = serde_json::from_str(&text).unwrap();
    let orders = orders.as_array().unwrap();
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[0]["stores"].as_array().unwrap().len(), 2);
    assert_eq!(orders[0]["warehouses"].as_array().unwrap().len(), 1);
    // the second network's warehouse is empty: nothing can ship to its stores
    for store in orders[1]["stores"].as_array().unwrap() {
        assert_eq!(store[0].as_f64().unwrap(), 0.0);
    }
    // every order is a number ≥ 0
    for o in orders {
        for q in o["stores"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s.as_array().unwrap())
        {
            assert!(q.as_f64().unwrap() >= 0.0);
        }
    }

    let from_csv = hdpo(&[
        "act",
        policy,
        "--state",
        csv.to_str().unwrap(),
        "--format",
        "csv",
    ]);
    assert!(
        from_csv.status.success(),
        "{}",
        String::from_utf8_lossy(&from_csv.stderr)
    );
    let csv_text = String::from_utf8(from_csv.stdout).unwrap();
    let mut lines = csv_text.lines();
    assert_eq!(lines.next(), Some("state,location,index,source,order"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 6);
    // the same orders as from the JSON state
    let store_00: f64 = rows[0][4].parse().unwrap();
    assert_eq!(store_00, orders[0]["stores"][0][0].as_f64().unwrap());
    let warehouse_0: f64 = rows[2][4].parse().unwrap();
    assert_eq!(rows[2][1], "warehouse");
    assert_eq!(warehouse_0, orders[0]["warehouses"][0].as_f64().unwrap());

    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"stores": [{"on_hand": 3}]}"#).unwrap();
    let txt = dir.join("state.txt");
    std::fs::write(&txt, "").unwrap();
    for (args, want) in [
        (
            vec!["act", policy, "--state", bad.to_str().unwrap()],
            "`stores` has 1 entries; expected 2",
        ),
        (
            vec![
                "act",
                policy,
                "--state",
                json.to_str().unwrap(),
                "--format",
                "xml",
            ],
            "--format `xml`: allowed: json, csv",
        ),
        (
            vec![
                "act",
                policy,
                "--state",
                json.to_str().unwrap(),
                "--sample",
                "16",
            ],
            "--sample 16: allowed: 0 … 15",
        ),
        (
            vec!["act", policy, "--state", txt.to_str().unwrap()],
            "must end in .json or .csv",
        ),
        (
            vec!["act", policy, "--state", "/nonexistent/state.json"],
            "--state: cannot read",
        ),
    ] {
        let out = hdpo(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(want),
            "{args:?}: expected `{want}` in: {stderr}"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}
