//! The `hdpo` binary against hostile input and faults (issue 25): every bad input ends with its
//! exit code and a message naming the field and the allowed values (never a panic or an abort),
//! a write that fails mid-run stops the run at once with the last checkpoint intact, SIGTERM and
//! SIGINT write a checkpoint and exit 143 / 130, and a closed standard output ends quietly.
//!
//! Every run is tiny (64 samples, a few periods); runs that must keep going until a signal or a
//! fault arrives use many tiny epochs. Waiting is bounded by a watchdog, never asserted on.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Tiny splits: 64 training samples in one batch, 32 dev samples, no test pass.
const TINY: &[&str] = &[
    "--set",
    "setting.splits.train.batch_size=64",
    "--set",
    "setting.splits.train.n_samples=64",
    "--set",
    "setting.splits.train.ignore_periods=2",
    "--set",
    "setting.splits.train.periods=8",
    "--set",
    "setting.splits.dev.batch_size=32",
    "--set",
    "setting.splits.dev.n_samples=32",
    "--set",
    "setting.splits.dev.ignore_periods=2",
    "--set",
    "setting.splits.dev.periods=8",
    "--set",
    "run_test=false",
];

/// The longest any child may run before the test gives up on it.
const WATCHDOG: Duration = Duration::from_secs(300);

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hdpo-hardening-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hdpo"));
    command
        .args(args)
        .current_dir(dir)
        .env("HDPO_CACHE_DIR", dir.join("cache"))
        // the same memory on every machine, so refusals do not depend on the host
        .env("HDPO_MEMORY_LIMIT", "16000000000")
        .env_remove("RAYON_NUM_THREADS")
        .env_remove("RUST_BACKTRACE");
    command
}

fn hdpo(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().expect("the hdpo binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `train` with the tiny splits and `extra` arguments.
fn train_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train", "--out", out];
    args.extend_from_slice(TINY);
    args.extend_from_slice(extra);
    args
}

/// Trains a tiny run in `dir/fixture` (policy.json, checkpoint.json at epoch 2 of 2).
fn fixture(dir: &Path) -> PathBuf {
    let out = hdpo(dir, &train_args("fixture", &["--set", "max_epochs=2"]));
    assert!(out.status.success(), "{}", stderr(&out));
    dir.join("fixture")
}

/// A copy of the checkpoint of `run` with `edit` applied, in the run directory `dir/name`.
fn edited_run(
    dir: &Path,
    run: &Path,
    name: &str,
    edit: impl Fn(&mut serde_json::Value),
) -> PathBuf {
    let edited = dir.join(name);
    std::fs::create_dir_all(&edited).unwrap();
    let text = std::fs::read_to_string(run.join("checkpoint.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut value);
    std::fs::write(edited.join("checkpoint.json"), value.to_string()).unwrap();
    edited
}

#[test]
fn bad_inputs_end_with_exit_2_and_a_message_naming_the_field() {
    let dir = temp_dir("bad-inputs");
    let run = fixture(&dir);
    let policy = run.join("policy.json");
    let policy = policy.to_str().unwrap();
    // a policy file whose network shape was edited (it would build a network for 10¹² stores)
    let doctored = dir.join("doctored.json");
    let mut saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("policy.json")).unwrap()).unwrap();
    saved["shape"]["n_stores"] = serde_json::json!(1_000_000_000_000u64);
    std::fs::write(&doctored, saved.to_string()).unwrap();
    // a configuration file with a typo in its [policy] table
    let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
    std::fs::write(
        dir.join("typo.toml"),
        config.replacen("[policy]", "[policy]\nhiden = [4]", 1),
    )
    .unwrap();
    let big_adam = edited_run(&dir, &run, "adam-1e39", |v| {
        v["adam"]["v"][0]["data"][0] = 1e39.into()
    });
    let late = edited_run(&dir, &run, "epoch-99", |v| v["epoch"] = 99.into());
    let no_history = edited_run(&dir, &run, "no-history", |v| {
        v["history"] = serde_json::json!([])
    });
    let (big_adam, late, no_history) = (
        big_adam.to_str().unwrap(),
        late.to_str().unwrap(),
        no_history.to_str().unwrap(),
    );

    let correlated: Vec<&str> = vec![
        "--setting",
        "one_warehouse_lost",
        "--policy",
        "vanilla_warehouse",
        "--set",
        "setting.stores.holding_cost=1",
        "--set",
        "setting.stores.underage_cost=9",
        "--set",
        "setting.stores.lead_time=2",
        "--set",
        "setting.demand.mean=5",
        "--set",
        "setting.demand.std=1",
        "--set",
        "n_stores=100000",
    ];
    let mut cases: Vec<(Vec<&str>, &[&str])> = Vec::new();
    for (setting, policy_kind) in [
        ("one_store_lost", "vanilla_one_store"),
        ("one_warehouse_lost", "vanilla_warehouse"),
        ("serial_system", "vanilla_serial"),
        ("one_store_lost", "data_driven"),
        ("one_warehouse_lost", "gnn"),
    ] {
        cases.push((
            train_args(
                "r",
                &[
                    "--setting",
                    setting,
                    "--policy",
                    policy_kind,
                    "--set",
                    "policy.hidden=[0]",
                ],
            ),
            &["policy.hidden", "1 … 65536"],
        ));
    }
    cases.extend([
        (
            train_args(
                "r",
                &[
                    "--setting",
                    "one_warehouse_lost",
                    "--policy",
                    "symmetry_aware",
                    "--set",
                    "policy.context_hidden=[0]",
                ],
            ),
            &["policy.context_hidden", "1 … 65536"][..],
        ),
        (
            train_args("r", &["--set", "policy.hidden=[100000,100000]"]),
            &["policy.hidden", "1 … 65536"],
        ),
        (
            train_args("r", &["--set", "policy.hidden=[60000,60000]"]),
            &["memory", "158.4 GB", "16.0 GB available", "--force"],
        ),
        (
            train_args("r", &["--set", "setting.splits.train.periods=1000000000"]),
            &["splits.train.periods", "1 … 1000000"],
        ),
        (
            train_args(
                "r",
                &["--set", "setting.splits.train.n_samples=1000000000000"],
            ),
            &["splits.train.n_samples", "1 … 100000000"],
        ),
        (
            train_args(
                "r",
                &[
                    "--set",
                    "setting.splits.train.n_samples=10000000",
                    "--set",
                    "setting.splits.train.periods=100000",
                ],
            ),
            &["memory", "train split", "--force"],
        ),
        (
            train_args("r", &["--set", "lead_time=1000000"]),
            &["stores.lead_time", "1 … 1000"],
        ),
        (
            train_args("r", &correlated),
            &["demand.correlation", "n_stores ≤ 10000"],
        ),
        (
            train_args(
                "r",
                &[
                    "--setting",
                    "one_warehouse_lost",
                    "--policy",
                    "gnn",
                    "--set",
                    "policy.rounds=1000000",
                ],
            ),
            &["policy.rounds", "1 … 1000"],
        ),
        (
            train_args("r", &["--set", "max_epochs=1000000000000"]),
            &["years", "max_seconds", "--force"],
        ),
        (
            train_args("r", &["--threads", "100000"]),
            &["--threads 100000", "allowed: an integer 1 …"],
        ),
        (
            train_args("r", &["--threads", "0"]),
            &["--threads 0", "allowed"],
        ),
        (
            train_args("r", &["--set", "learning_rat=1"]),
            &["unknown key `learning_rat`", "valid keys"],
        ),
        (
            train_args("r", &["--set", "policy.hiden=[4]"]),
            &["unknown key `hiden`", "hidden"],
        ),
        (
            train_args("r", &["--set", "nokey"]),
            &["expected KEY=VALUE"],
        ),
        (
            vec!["train", "--config", "typo.toml"],
            &["unknown field `hiden`", "hidden"],
        ),
        (
            vec!["train", "--resume", big_adam],
            &["second moment", "inf"],
        ),
        (vec!["train", "--resume", late], &["max_epochs"]),
        (vec!["train", "--resume", no_history], &["history records"]),
        (
            vec!["train", "--resume", big_adam, "--set", "max_epochs=3"],
            &["drop --config/--set/--seed"],
        ),
        (vec!["train", "--no-such-flag"], &["--no-such-flag"]),
        (
            vec!["eval", policy, "--split", "nope"],
            &["--split", "test, dev, train"],
        ),
        (
            vec![
                "eval",
                policy,
                "--set",
                "splits.test.n_samples=100000000",
                "--set",
                "splits.test.periods=1000000",
            ],
            &["this evaluation", "days", "30.0 days allowed", "--force"],
        ),
        (
            vec!["eval", doctored.to_str().unwrap()],
            &["does not match its setting"],
        ),
        (
            vec!["optimum", "--set", "lead_time=0"],
            &["stores.lead_time", "allowed"],
        ),
        (vec!["reproduce", "nope"], &["<EXPERIMENT>", "all"]),
        (
            vec!["reproduce", "serial", "--cells", "3/2"],
            &["--cells `3/2`", "1 ≤ i ≤ n"],
        ),
        (
            vec![
                "reproduce",
                "serial",
                "--cells",
                "7/9",
                "--filter",
                "4loc-echelon",
            ],
            &["--cells 7/9: this part has no cell"],
        ),
        (
            vec!["reproduce", "serial", "--merge", "x", "--cells", "1/2"],
            &["--merge gathers whole parts"],
        ),
        (
            vec!["reproduce", "serial", "--merge", "/nonexistent-part"],
            &[
                "--merge `/nonexistent-part`",
                "give the --out directory of a part",
            ],
        ),
    ]);
    for (args, expected) in &cases {
        let out = hdpo(&dir, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        for text in *expected {
            assert!(err.contains(text), "{args:?}: expected `{text}` in: {err}");
        }
    }
    // RAYON_NUM_THREADS is checked like --threads
    let out = command(&dir, &["settings"])
        .env("RAYON_NUM_THREADS", "100000")
        .output()
        .unwrap();
    assert!(out.status.success(), "settings spawns no pool");
    let out = command(&dir, &train_args("r", &[]))
        .env("RAYON_NUM_THREADS", "100000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("RAYON_NUM_THREADS=100000"),
        "{}",
        stderr(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn force_overrides_a_memory_refusal() {
    let dir = temp_dir("force");
    let args = train_args("r", &["--set", "max_epochs=1"]);
    let out = command(&dir, &args)
        .env("HDPO_MEMORY_LIMIT", "1K")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("1.0 kB available"),
        "{}",
        stderr(&out)
    );
    let mut forced = args.clone();
    forced.push("--force");
    let out = command(&dir, &forced)
        .env("HDPO_MEMORY_LIMIT", "1K")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.join("r/report.md").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_diverging_run_exits_1_and_names_a_checkpoint_only_if_one_exists() {
    let dir = temp_dir("diverge");
    // a base-stock level thrown to 10¹² by the first step: no checkpoint yet
    let out = hdpo(
        &dir,
        &train_args(
            "r",
            &["--policy", "base_stock", "--set", "learning_rate=1e12"],
        ),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("diverged") && err.contains("base_stock.level"),
        "{err}"
    );
    assert!(err.contains("no checkpoint was written"), "{err}");
    assert!(!dir.join("r/checkpoint.json").exists());
    // a non-finite loss at epoch 0 (the case that named a checkpoint that did not exist)
    let out = hdpo(
        &dir,
        &train_args(
            "r2",
            &[
                "--setting",
                "one_store_backlogged",
                "--set",
                "learning_rate=1e30",
            ],
        ),
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no checkpoint was written"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_closed_standard_output_ends_quietly() {
    let dir = temp_dir("pipe");
    let policy = fixture(&dir).join("policy.json");
    for args in [
        vec!["eval", policy.to_str().unwrap()],
        vec!["settings"],
        vec!["policies"],
        vec!["--help"],
    ] {
        let mut child = command(&dir, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // close the read end before the child writes: its writes fail with a broken pipe
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The stderr lines of a child, read on a thread.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// Waits for a line containing `text`; returns the lines seen.
fn wait_for_line(lines: &mpsc::Receiver<String>, text: &str) -> Vec<String> {
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < WATCHDOG {
        match lines.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                let found = line.contains(text);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    panic!("no line with `{text}`; the child wrote: {seen:#?}");
}

/// Waits for the child to exit (killing it past the watchdog).
fn wait_exit(child: &mut Child) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > WATCHDOG {
            let _ = child.kill();
            panic!("the child did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn checkpoint(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("checkpoint.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn checkpoint_epoch(run: &Path) -> u64 {
    checkpoint(run)["epoch"].as_u64().unwrap()
}

/// Waits until the checkpoint of `run` exists with at least `epoch` epochs done.
fn wait_for_epoch(run: &Path, epoch: u64) {
    let start = Instant::now();
    loop {
        // a checkpoint is replaced atomically: it parses whenever it exists
        if run.join("checkpoint.json").exists() && checkpoint_epoch(run) >= epoch {
            return;
        }
        assert!(start.elapsed() < WATCHDOG, "no checkpoint of epoch {epoch}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// When the first epoch finished, as the checkpoint's history says: a resumed run copies it, a
/// run started again measures it anew.
fn first_epoch_seconds(run: &Path) -> f64 {
    checkpoint(run)["history"][0]["elapsed_seconds"]
        .as_f64()
        .unwrap()
}

/// Sends `signal` (`libc::SIGTERM`, `libc::SIGINT`) to the child.
#[cfg(unix)]
fn send(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill only sends a signal to our own child process
    let result = unsafe { libc::kill(pid, signal) };
    assert_eq!(result, 0, "kill: {}", std::io::Error::last_os_error());
}

#[test]
#[cfg(unix)]
fn sigterm_and_sigint_write_a_checkpoint_and_exit_143_and_130() {
    let dir = temp_dir("signals");
    let run = dir.join("run");
    // many tiny epochs: still training when the signal comes
    let long = train_args(
        "run",
        &["--set", "max_epochs=1000000", "--set", "dev_every=1"],
    );
    let mut child = command(&dir, &long).stderr(Stdio::piped()).spawn().unwrap();
    let lines = stderr_lines(&mut child);
    wait_for_epoch(&run, 2);
    send(&child, libc::SIGTERM);
    let status = wait_exit(&mut child);
    let rest: Vec<String> = lines.try_iter().collect();
    assert_eq!(status.code(), Some(143), "{rest:#?}");
    assert!(
        rest.iter()
            .any(|l| l.contains("interrupted by SIGTERM") && l.contains("--resume")),
        "{rest:#?}"
    );
    let first = checkpoint_epoch(&run);
    let started = first_epoch_seconds(&run);
    // it resumes (the history of the first run is kept), and SIGINT does the same with 130
    let mut child = command(&dir, &["train", "--resume", "run"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    wait_for_epoch(&run, first + 1);
    send(&child, libc::SIGINT);
    let status = wait_exit(&mut child);
    let rest: Vec<String> = lines.try_iter().collect();
    assert_eq!(status.code(), Some(130), "{rest:#?}");
    assert!(checkpoint_epoch(&run) > first);
    assert_eq!(first_epoch_seconds(&run).to_bits(), started.to_bits());
    // a second signal stops at once, mid-epoch (an epoch of 32,768 samples × 2,000 periods takes
    // many seconds); the message says that no checkpoint exists yet
    let slow = train_args(
        "slow",
        &[
            "--set",
            "setting.splits.train.n_samples=32768",
            "--set",
            "setting.splits.train.batch_size=1024",
            "--set",
            "setting.splits.train.periods=2000",
        ],
    );
    let mut child = command(&dir, &slow).stderr(Stdio::piped()).spawn().unwrap();
    let lines = stderr_lines(&mut child);
    wait_for_line(&lines, "hdpo train:");
    send(&child, libc::SIGTERM);
    wait_for_line(&lines, "SIGTERM received");
    send(&child, libc::SIGINT);
    let status = wait_exit(&mut child);
    let rest: Vec<String> = lines.try_iter().collect();
    assert_eq!(status.code(), Some(130), "{rest:#?}");
    assert!(
        rest.iter().any(|l| l.contains("second signal (SIGINT)")
            && l.contains("no checkpoint has been written yet")),
        "{rest:#?}"
    );
    assert!(!dir.join("slow/checkpoint.json").exists());
    // the final evaluation is stopped at once by a signal; the checkpoint is complete
    let eval = train_args(
        "final",
        &[
            "--set",
            "max_epochs=1",
            "--set",
            "run_test=true",
            "--set",
            "setting.splits.test.n_samples=32768",
            "--set",
            "setting.splits.test.batch_size=32768",
            "--set",
            "setting.splits.test.periods=100000",
        ],
    );
    let mut child = command(&dir, &eval).stderr(Stdio::piped()).spawn().unwrap();
    let lines = stderr_lines(&mut child);
    wait_for_line(&lines, "epoch     0");
    send(&child, libc::SIGTERM);
    let status = wait_exit(&mut child);
    let rest: Vec<String> = lines.try_iter().collect();
    assert_eq!(status.code(), Some(143), "{rest:#?}");
    assert_eq!(checkpoint_epoch(&dir.join("final")), 1);
    assert!(!dir.join("final/report.md").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[cfg(unix)]
fn a_run_whose_directory_disappears_stops_at_once_with_its_checkpoint_intact() {
    // The run directory is replaced by a regular file mid-run: every write into it fails with
    // "not a directory", also as root (a read-only chmod does not stop root).
    let dir = temp_dir("fault");
    let run = dir.join("run");
    let args = train_args(
        "run",
        &["--set", "max_epochs=1000000", "--set", "dev_every=5"],
    );
    let mut child = command(&dir, &args).stderr(Stdio::piped()).spawn().unwrap();
    let lines = stderr_lines(&mut child);
    // the first checkpoint (epoch 1) is written after the first dev epoch
    let start = Instant::now();
    while !run.join("checkpoint.json").exists() {
        assert!(start.elapsed() < WATCHDOG, "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
    let moved = dir.join("run.moved");
    std::fs::rename(&run, &moved).unwrap();
    std::fs::write(&run, b"not a directory").unwrap();
    let status = wait_exit(&mut child);
    let err: Vec<String> = lines.try_iter().collect();
    let err = err.join("\n");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot write") && err.contains("checkpoint.json"),
        "{err}"
    );
    assert!(err.contains("retried"), "{err}");
    assert!(err.contains("the last good checkpoint (epoch"), "{err}");
    // the checkpoint it left is whole, and the run continues from it
    std::fs::remove_file(&run).unwrap();
    std::fs::rename(&moved, &run).unwrap();
    let epoch = checkpoint_epoch(&run);
    assert!(epoch >= 1);
    let mut child = command(&dir, &["train", "--resume", "run"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    wait_for_line(&lines, "hdpo train:");
    send(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child).code(), Some(143));
    assert!(checkpoint_epoch(&run) >= epoch);
    // no temporary file is left behind
    let leftovers: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[cfg(unix)]
fn stale_temporary_files_of_killed_runs_are_removed_on_the_next_start() {
    let dir = temp_dir("stale");
    let run = fixture(&dir);
    std::fs::remove_file(run.join("report.md")).unwrap();
    // a process that has exited leaves its temporary file
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let stale = run.join(format!(".checkpoint.json.tmp-{pid}"));
    std::fs::write(&stale, b"half a checkpoint").unwrap();
    // resuming a finished run (epoch 2 of 2) goes straight to the final evaluation
    let out = hdpo(&dir, &["train", "--resume", run.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stale.exists());
    assert!(stderr(&out).contains("temporary file left by a killed run"));
    assert!(run.join("report.md").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[cfg(unix)]
fn reproduce_stops_with_the_signal_code_and_continues_from_the_cell_checkpoint() {
    let dir = temp_dir("reproduce-signals");
    let mut args = vec![
        "reproduce",
        "one_store_lost",
        "--scale",
        "smoke",
        "--out",
        "out",
        "--filter",
        "L2-p9-",
        "--set",
        "max_epochs=1000000",
        "--set",
        "dev_every=1",
        "--set",
        "setting.splits.test.ignore_periods=4",
        "--set",
        "setting.splits.test.periods=8",
    ];
    args.extend_from_slice(&TINY[..TINY.len() - 2]);
    let checkpoint = dir.join("out/one_store_lost/runs/L2-p9-vanilla_one_store");
    let mut epochs = vec![0];
    let mut started = None;
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut child = command(&dir, &args).stderr(Stdio::piped()).spawn().unwrap();
        let lines = stderr_lines(&mut child);
        wait_for_epoch(&checkpoint, epochs.last().unwrap() + 2);
        send(&child, signal);
        let status = wait_exit(&mut child);
        let rest: Vec<String> = lines.try_iter().collect();
        assert_eq!(status.code(), Some(128 + signal), "{rest:#?}");
        assert!(
            rest.iter().any(|l| l.contains("re-run `hdpo reproduce")),
            "{rest:#?}"
        );
        epochs.push(checkpoint_epoch(&checkpoint));
        // the second run continued the first: its history starts with the first run's
        let seconds = first_epoch_seconds(&checkpoint);
        assert_eq!(*started.get_or_insert(seconds), seconds);
    }
    assert!(epochs[2] > epochs[1], "{epochs:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
