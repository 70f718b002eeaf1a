//! `hdpo_train::reproduce`, `hdpo_optimum` and `hdpo_train::optimum_cache` through the library: one smoke-scale cell per
//! experiment (made even smaller with overrides, so each takes about a second), resumption after an
//! interruption, "unavailable" cells, and the optimum classification and cache.

use hdpo_optimum::{Classification, Problem, Reference, ReferenceKind, Source};
use hdpo_sim::settings::setting;
use hdpo_train::optimum_cache::{OptimumCache, reference_for, solve_cached};
use hdpo_train::reproduce::{
    Cell, CellStatus, Event, Experiment, Part, ReproduceError, ReproduceOptions, Scale,
    merge_parts, read_record, run_cells, run_experiment,
};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("hdpo-reproduce-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Smoke scale made smaller still: 4 epochs, short dev and test horizons.
fn tiny() -> Vec<(String, String)> {
    [
        ("max_epochs", "4"),
        ("dev_every", "2"),
        ("setting.splits.dev.ignore_periods", "20"),
        ("setting.splits.dev.periods", "40"),
        ("setting.splits.test.ignore_periods", "40"),
        ("setting.splits.test.periods", "100"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn options(dir: &std::path::Path, filter: &str) -> ReproduceOptions {
    ReproduceOptions {
        scale: Scale::Smoke,
        out: dir.to_path_buf(),
        filter: Some(filter.to_string()),
        limit: Some(1),
        part: None,
        overrides: tiny(),
        cache: Some(OptimumCache::new(dir.join("cache"))),
        command: format!("test --filter {filter}"),
        limits: hdpo_train::Limits::machine(),
    }
}

/// Runs one cell of `experiment` and checks the outputs; returns the record.
fn smoke_one(experiment: Experiment, filter: &str) -> hdpo_train::reproduce::CellRecord {
    let dir = temp_dir(experiment.name());
    let stop = AtomicBool::new(false);
    let mut events = Vec::new();
    let summary = run_experiment(experiment, &options(&dir, filter), &stop, |e| {
        events.push(match e {
            Event::Start { total, .. } => format!("start {total}"),
            Event::CellStart { cell, .. } => format!("cell {}", cell.id),
            Event::Epoch { .. } => "epoch".to_string(),
            Event::CellDone { skipped, .. } => format!("done {skipped}"),
        })
    })
    .unwrap();
    assert_eq!(summary.planned, 1);
    assert_eq!(summary.ran, 1, "{summary:?}");
    assert_eq!(events.first().unwrap(), "start 1");
    assert_eq!(events.last().unwrap(), "done false");
    let exp_dir = dir.join(experiment.name());
    let cell = experiment
        .cells()
        .into_iter()
        .find(|c| c.id.contains(filter))
        .unwrap();
    let record = read_record(&exp_dir, &cell.id).expect("record written");
    assert_eq!(record.status, CellStatus::Done, "{record:?}");
    assert!(record.test_cost.unwrap().is_finite());
    let se = record
        .test_std_error
        .expect("the test cost's standard error");
    assert!(se > 0.0 && se < record.test_cost.unwrap(), "{se}");
    let csv = std::fs::read_to_string(exp_dir.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + experiment.cells().len());
    let row = csv.lines().find(|l| l.contains(&cell.id)).unwrap();
    assert!(row.contains(",done,"), "{row}");
    let md = std::fs::read_to_string(exp_dir.join("results.md")).unwrap();
    assert!(md.contains("smoke scale"), "{md}");
    assert!(md.contains("| test cost | ± s.e. |"), "{md}");
    let md_row = md.lines().find(|l| l.contains("| done |")).unwrap();
    assert!(md_row.contains(&format!(" {se:.4} ")), "{md_row}");
    assert!(md.contains("not run"));
    // the grid's time: the one done cell's training and test seconds
    let time = format!(
        "Time of the 1 done cells: {:.0} s of training + {:.0} s of testing",
        record.train_seconds, record.test_seconds
    );
    assert!(md.contains(&time), "{md}");
    assert!(
        std::fs::read_to_string(exp_dir.join("gaps.svg"))
            .unwrap()
            .contains("<svg")
    );
    assert!(
        exp_dir
            .join("runs")
            .join(&cell.id)
            .join("curve.svg")
            .exists()
    );

    // A second run skips the finished cell.
    let again = run_experiment(experiment, &options(&dir, filter), &stop, |_| {}).unwrap();
    assert_eq!((again.ran, again.skipped), (0, 1), "{again:?}");
    let _ = std::fs::remove_dir_all(&dir);
    record
}

#[test]
fn smoke_one_store_lost_cell_has_the_exact_optimum_and_a_gap() {
    let record = smoke_one(Experiment::OneStoreLost, "L1-p4-");
    assert_eq!(record.reference_kind, Some(ReferenceKind::Exact));
    // Zipkin (2008) Table 3 (L = 1, p = 4): 4.04, published to two decimals — the independent
    // source; our exact DP must round to it
    assert!(
        (record.reference_cost.unwrap() - 4.04).abs() <= 0.005,
        "{:?}",
        record.reference_cost
    );
    let gap = record.test_gap_pct.unwrap();
    let expected = 100.0 * (record.test_cost.unwrap() / record.reference_cost.unwrap() - 1.0);
    assert!((gap - expected).abs() < 1e-9);
}

#[test]
fn smoke_one_store_backlogged_cell() {
    let record = smoke_one(Experiment::OneStoreBacklogged, "L1-p4-base_stock");
    assert_eq!(record.reference_kind, Some(ReferenceKind::Exact));
    // clipped normal, lattice 0.02: the unclipped closed form is 3.1674, clipping lowers it slightly
    assert!((record.reference_cost.unwrap() - 3.1674).abs() < 2e-3);
}

#[test]
fn smoke_serial_cell() {
    let record = smoke_one(Experiment::Serial, "3loc-echelon_stock");
    assert_eq!(record.reference_kind, Some(ReferenceKind::Exact));
    assert!((record.reference_cost.unwrap() - 9.8688).abs() < 1e-3);
}

#[test]
fn smoke_one_warehouse_cell_has_no_bound() {
    let record = smoke_one(Experiment::OneWarehouse, "n3-s128-vanilla_warehouse");
    assert_eq!(record.reference_kind, None);
    assert!(
        record.reference_note.contains("no known bound"),
        "{}",
        record.reference_note
    );
    assert_eq!(record.test_gap_pct, None);
}

#[test]
fn smoke_transshipment_cell_has_a_lower_bound() {
    let record = smoke_one(Experiment::Transshipment, "n3-L4-p9-s128-vanilla_warehouse");
    assert_eq!(record.reference_kind, Some(ReferenceKind::LowerBound));
    // published-results.md §5: 8.533674 for 3 stores, L = 4, p = 9
    assert!((record.reference_cost.unwrap() - 8.533674).abs() < 1e-6);
}

#[test]
fn an_interrupted_cell_resumes_from_its_checkpoint_and_unavailable_policies_are_recorded() {
    let dir = temp_dir("interrupt");
    let lost = Experiment::OneStoreLost.cells().remove(0);
    let unavailable = Cell {
        id: "echelon-on-one-store".into(),
        policy: "echelon_stock".into(),
        ..lost.clone()
    };
    let unknown = Cell {
        id: "unknown-policy".into(),
        policy: "no_such_policy".into(),
        ..lost.clone()
    };
    let cells = vec![lost.clone(), unavailable, unknown];
    let mut opts = options(&dir, "");
    opts.filter = None;
    opts.limit = None;
    // Stop after the first epoch of the first cell.
    let stop = AtomicBool::new(false);
    let summary = run_cells("custom", "test cells", &cells, &opts, &stop, |e| {
        if let Event::Epoch { .. } = e {
            stop.store(true, Ordering::SeqCst);
        }
    })
    .unwrap();
    assert!(summary.interrupted);
    assert_eq!(summary.ran, 0);
    let exp_dir = dir.join("custom");
    assert!(read_record(&exp_dir, &lost.id).is_none());
    let checkpoint = exp_dir.join("runs").join(&lost.id).join("checkpoint.json");
    assert!(
        checkpoint.exists(),
        "the interrupted cell keeps its checkpoint"
    );

    // Resume: the first cell continues from epoch 1 (only 3 more epochs), the others are recorded.
    stop.store(false, Ordering::SeqCst);
    let mut first_epoch = None;
    let summary = run_cells("custom", "test cells", &cells, &opts, &stop, |e| {
        if let Event::Epoch { record, cell, .. } = e
            && cell.id == lost.id
            && first_epoch.is_none()
        {
            first_epoch = Some(record.epoch);
        }
    })
    .unwrap();
    assert_eq!(first_epoch, Some(1), "resumed after the checkpointed epoch");
    assert_eq!((summary.ran, summary.unavailable), (1, 2), "{summary:?}");
    let record = read_record(&exp_dir, "echelon-on-one-store").unwrap();
    assert_eq!(record.status, CellStatus::Unavailable);
    assert!(record.reason.unwrap().contains("echelon_stock"));
    let record = read_record(&exp_dir, "unknown-policy").unwrap();
    assert_eq!(record.status, CellStatus::Unavailable);
    let csv = std::fs::read_to_string(exp_dir.join("results.csv")).unwrap();
    assert!(csv.contains("unavailable: "), "{csv}");
    let md = std::fs::read_to_string(exp_dir.join("results.md")).unwrap();
    assert!(md.contains("unavailable: "), "{md}");

    // Changing an override changes the configuration: the finished cell runs again.
    opts.overrides.push(("seed".into(), "7".into()));
    opts.limit = Some(1);
    let summary = run_cells("custom", "test cells", &cells, &opts, &stop, |_| {}).unwrap();
    assert_eq!((summary.ran, summary.skipped), (1, 0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_names_and_filters_give_clear_errors() {
    let e = Experiment::parse("nope").unwrap_err();
    assert!(
        e.contains("one_store_lost") && e.contains("transshipment"),
        "{e}"
    );
    let e = Scale::parse("huge").unwrap_err();
    assert!(e.contains("smoke, full"), "{e}");
    let dir = temp_dir("filter");
    let mut opts = options(&dir, "no-such-cell");
    let stop = AtomicBool::new(false);
    let e = run_experiment(Experiment::OneStoreLost, &opts, &stop, |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("no cell") && e.contains("L1-p4"), "{e}");
    opts.filter = Some("L1-p4-".into());
    opts.overrides.push(("no_such_key".into(), "1".into()));
    let e = run_experiment(Experiment::OneStoreLost, &opts, &stop, |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("no_such_key"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn experiment_grids_have_the_published_sizes_and_unique_ids() {
    let sizes: Vec<usize> = Experiment::ALL.iter().map(|e| e.cells().len()).collect();
    assert_eq!(sizes, vec![16, 48, 51, 54, 41, 30, 30]);
    for experiment in Experiment::ALL {
        let cells = experiment.cells();
        let mut ids: Vec<&str> = cells.iter().map(|c| c.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), cells.len(), "{}", experiment.name());
        // every cell resolves at both scales
        for cell in &cells {
            for scale in [Scale::Smoke, Scale::Full] {
                hdpo_train::reproduce::cell_config(cell, scale, &[])
                    .unwrap_or_else(|e| panic!("{}: {e}", cell.id));
            }
        }
    }
}

#[test]
fn settings_are_classified_by_family() {
    let classify = |name: &str, overrides: &[(&str, &str)]| {
        let mut s = setting(name).unwrap();
        for (k, v) in overrides {
            s.apply_override(k, v).unwrap();
        }
        Problem::from_setting(&s).unwrap()
    };
    let solver = |c: Classification| match c {
        Classification::Solvable(p) => p.solver_name().to_string(),
        Classification::NoKnownBound { .. } => "none".to_string(),
        Classification::Unsupported { reason } => format!("unsupported: {reason}"),
    };
    assert_eq!(
        solver(classify("one_store_lost", &[])),
        "lost_sales_poisson"
    );
    assert_eq!(
        solver(classify("one_store_backlogged", &[])),
        "backlog_normal"
    );
    assert_eq!(
        solver(classify(
            "one_store_lost",
            &[("unmet_demand", "backlogged")]
        )),
        "backlog_poisson"
    );
    assert_eq!(solver(classify("serial_system_5", &[])), "serial");
    assert_eq!(
        solver(classify("transshipment_backlogged", &[])),
        "transshipment"
    );
    assert_eq!(solver(classify("one_warehouse_lost", &[])), "none");
    assert_eq!(solver(classify("many_warehouses_lost", &[])), "none");
    assert!(
        solver(classify(
            "one_store_backlogged",
            &[("unmet_demand", "lost")]
        ))
        .contains("normal demand")
    );
    assert!(
        solver(classify(
            "one_store_lost",
            &[(
                "stores.lead_time",
                "{ sample = \"per_sample\", range = [1, 3] }"
            )]
        ))
        .contains("drawn per sample")
    );
    assert!(solver(classify("serial_system", &[("demand.clip", "false")])).contains("clip"));

    // The problem reads the resolved instance: the serial chain upstream first, store last.
    let Classification::Solvable(Problem::Serial {
        locations,
        backlog_penalty,
        ..
    }) = classify(
        "serial_system",
        &[("stores.lead_time", "2"), ("underage_cost", "19")],
    )
    else {
        panic!("serial expected")
    };
    let leads: Vec<usize> = locations.iter().map(|l| l.lead_time).collect();
    let holding: Vec<f64> = locations.iter().map(|l| l.holding_cost).collect();
    assert_eq!(leads, vec![2, 4, 3, 2]);
    assert_eq!(holding, vec![0.1, 0.2, 0.5, 1.0]);
    assert_eq!(backlog_penalty, 19.0);
}

#[test]
fn the_cache_key_covers_every_parameter_and_corrupt_entries_are_recomputed() {
    let problem = |name: &str, overrides: &[(&str, &str)]| {
        let mut s = setting(name).unwrap();
        for (k, v) in overrides {
            s.apply_override(k, v).unwrap();
        }
        match Problem::from_setting(&s).unwrap() {
            Classification::Solvable(p) => p,
            other => panic!("{other:?}"),
        }
    };
    let base = problem("transshipment_backlogged", &[]).cache_key();
    for (k, v) in [
        ("n_stores", "3"),
        ("lead_time", "6"),
        ("underage_cost", "9"),
        ("holding_cost", "2"),
        ("correlation", "0"),
        ("warehouses.lead_time", "2"),
    ] {
        assert_ne!(
            problem("transshipment_backlogged", &[(k, v)]).cache_key(),
            base,
            "{k}"
        );
    }
    // Sizes and seeds are not solver inputs.
    assert_eq!(
        problem("transshipment_backlogged", &[("seeds.test", "1")]).cache_key(),
        base
    );
    let serial = problem("serial_system", &[]).cache_key();
    for (k, v) in [
        ("echelons.lead_time", "[2, 3]"),
        ("echelons.holding_cost", "[0.1, 0.3]"),
        ("warehouses.holding_cost", "0.4"),
        ("demand.std", "2.5"),
        ("demand.mean", "6"),
    ] {
        assert_ne!(
            problem("serial_system", &[(k, v)]).cache_key(),
            serial,
            "{k}"
        );
    }

    let dir = temp_dir("cache");
    let cache = OptimumCache::new(&dir);
    let p = problem("one_store_lost", &[("lead_time", "2")]);
    let first = solve_cached(&p, Some(&cache));
    let Reference::Known { solved, source, .. } = &first else {
        panic!("{first:?}")
    };
    assert_eq!(*source, Source::Computed);
    // Zipkin (2008) Table 3 (L = 2, p = 9): 6.09, published to two decimals
    assert!((solved.cost - 6.09).abs() <= 0.005, "{}", solved.cost);
    let computed_cost = solved.cost;
    let Reference::Known {
        source,
        solved: cached,
        ..
    } = solve_cached(&p, Some(&cache))
    else {
        panic!()
    };
    assert_eq!(source, Source::Cache(cache.path(&p)));
    // the cache returns the computed value to the bit
    assert_eq!(cached.cost.to_bits(), computed_cost.to_bits());
    std::fs::write(cache.path(&p), b"{ not json").unwrap();
    let Reference::Known {
        source,
        warnings,
        solved,
        ..
    } = solve_cached(&p, Some(&cache))
    else {
        panic!()
    };
    assert_eq!(source, Source::Computed);
    assert!(warnings[0].contains("corrupt"), "{warnings:?}");
    // recomputed after the corrupt file: the same value to the bit
    assert_eq!(solved.cost.to_bits(), computed_cost.to_bits());
    assert!(cache.read(&p).unwrap().is_some(), "rewritten");
    // reference_for = classification + cache
    let s = setting("one_warehouse_lost").unwrap();
    assert!(matches!(
        reference_for(&s, Some(&cache)).unwrap(),
        Reference::NoKnownBound { .. }
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn full_scale_network_cells_keep_the_network_defaults_batch_and_step_budget() {
    for experiment in [
        Experiment::Serial,
        Experiment::OneWarehouse,
        Experiment::Transshipment,
        Experiment::ManyWarehouses,
        Experiment::IdenticalStores,
    ] {
        for cell in experiment
            .cells()
            .into_iter()
            .filter(|c| c.policy == "gnn" && c.scenarios.is_some())
        {
            let config = hdpo_train::reproduce::cell_config(&cell, Scale::Full, &[]).unwrap();
            let n = cell.scenarios.unwrap();
            let train = &config.setting.splits.train;
            assert_eq!(train.n_samples, n, "{}", cell.id);
            assert_eq!(
                train.batch_size,
                n.min(256),
                "{}: the defaults' batch",
                cell.id
            );
            let steps = config.max_epochs * n.div_ceil(train.batch_size);
            let stores = config.setting.n_stores();
            // transshipment centres and serial chains train twice the steps
            let factor = match experiment {
                Experiment::Transshipment | Experiment::Serial => 2,
                _ => 1,
            };
            let budget = factor * (19_200 / stores).clamp(640, 1_920);
            assert!(
                steps >= budget && steps < budget + n.div_ceil(train.batch_size),
                "{}: {steps} Adam steps for a budget of {budget}",
                cell.id
            );
            assert_eq!(config.setting.splits.test.n_samples, 4096, "{}", cell.id);
            // transshipment centres learn at 3e-3, chains of 6 and more locations at 5e-4
            let learning_rate = match experiment {
                Experiment::Transshipment => 3e-3,
                Experiment::Serial if config.setting.n_echelons() >= 4 => 5e-4,
                _ => 1e-3,
            };
            assert_eq!(config.learning_rate, learning_rate, "{}", cell.id);
        }
    }
}

/// Every cell record committed under `results/reproduce/` was produced by the configuration the
/// code builds for that cell today: a change of defaults that would make a committed result stale
/// (its table row would describe another run) fails here until the cell is re-run or removed.
#[test]
fn committed_full_scale_records_match_the_current_cell_configurations() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../results/reproduce");
    let mut checked = 0;
    for experiment in Experiment::ALL {
        let dir = root.join(experiment.name());
        for cell in experiment.cells() {
            let Some(record) = hdpo_train::reproduce::read_record(&dir, &cell.id) else {
                continue;
            };
            if record.scale != Scale::Full {
                continue;
            }
            let config = hdpo_train::reproduce::cell_config(&cell, Scale::Full, &[]).unwrap();
            assert_eq!(
                record.fingerprint,
                hdpo_train::reproduce::fingerprint(&config),
                "results/reproduce/{}/cells/{}.json is stale: re-run the cell or remove the record",
                experiment.name(),
                cell.id
            );
            checked += 1;
        }
    }
    // the one-warehouse records of the GNN at 8,192 scenarios are committed
    assert!(checked >= 3, "{checked} records checked");
}

/// Records written before the standard error was measured still load, and their rows show "—".
#[test]
fn records_without_a_standard_error_load_and_show_a_dash() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../results/reproduce");
    let experiment = Experiment::Serial;
    let cells = experiment.cells();
    let cell = cells
        .iter()
        .find(|c| c.id == "4loc-s8192-gnn")
        .expect("a committed serial cell");
    let source = root
        .join(experiment.name())
        .join("cells")
        .join(format!("{}.json", cell.id));
    let text = std::fs::read_to_string(&source).expect("committed record");
    assert!(
        !text.contains("test_std_error"),
        "the record predates the field"
    );
    let dir = temp_dir("old-records");
    let exp_dir = dir.join(experiment.name());
    std::fs::create_dir_all(exp_dir.join("cells")).unwrap();
    std::fs::write(
        exp_dir.join("cells").join(format!("{}.json", cell.id)),
        &text,
    )
    .unwrap();
    let record = read_record(&exp_dir, &cell.id).expect("an old record loads");
    assert_eq!(record.test_std_error, None);
    assert!(record.test_cost.is_some());
    let options = ReproduceOptions {
        scale: Scale::Full,
        ..options(&dir, "4loc-s8192-gnn")
    };
    let options = ReproduceOptions {
        overrides: Vec::new(),
        ..options
    };
    hdpo_train::reproduce::write_tables(&exp_dir, experiment.name(), "test", &cells, &options)
        .unwrap();
    let md = std::fs::read_to_string(exp_dir.join("results.md")).unwrap();
    let row = md
        .lines()
        .find(|l| l.contains("| done |") && l.contains("gnn"))
        .unwrap_or_else(|| panic!("{md}"));
    let cost = format!("{:.4}", record.test_cost.unwrap());
    assert!(row.contains(&format!("| {cost} | — |")), "{row}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn parts_of_a_grid_are_disjoint_cover_it_and_merge_into_one_table() {
    let root = temp_dir("parts");
    let stop = AtomicBool::new(false);
    let experiment = Experiment::OneStoreLost;
    // the 4 cells of L = 1, in 3 parts: positions {0, 3}, {1}, {2}
    let mut ran: Vec<Vec<String>> = Vec::new();
    for index in 1..=3 {
        let options = ReproduceOptions {
            limit: None,
            part: Some(Part { index, count: 3 }),
            overrides: [tiny(), vec![("max_epochs".into(), "1".into())]].concat(),
            ..options(&root.join(format!("part{index}")), "L1-")
        };
        let mut ids = Vec::new();
        run_experiment(experiment, &options, &stop, |e| {
            if let Event::CellStart { cell, .. } = e {
                ids.push(cell.id.clone());
            }
        })
        .unwrap();
        ran.push(ids);
    }
    assert_eq!(
        ran,
        vec![
            vec!["L1-p4-vanilla_one_store", "L1-p39-vanilla_one_store"],
            vec!["L1-p9-vanilla_one_store"],
            vec!["L1-p19-vanilla_one_store"],
        ]
    );
    // a part with no cell is an error, not a silent no-op
    let empty = ReproduceOptions {
        part: Some(Part { index: 5, count: 5 }),
        limit: None,
        ..options(&root.join("part5"), "L1-")
    };
    let err = run_experiment(experiment, &empty, &stop, |_| {}).unwrap_err();
    assert!(err.to_string().contains("this part has no cell"), "{err}");

    let parts: Vec<PathBuf> = (1..=3).map(|i| root.join(format!("part{i}"))).collect();
    let merged = root.join("merged");
    let part_overrides = [tiny(), vec![("max_epochs".into(), "1".into())]].concat();
    let merge_options = ReproduceOptions {
        filter: None,
        limit: None,
        overrides: part_overrides.clone(),
        ..options(&merged, "")
    };
    // records of another configuration (here: without the parts' max_epochs) are refused
    let other = ReproduceOptions {
        overrides: tiny(),
        ..merge_options.clone()
    };
    let err = merge_parts(experiment, &other, &parts).unwrap_err();
    assert!(
        err.to_string()
            .contains("produced by another configuration"),
        "{err}"
    );
    let summary = merge_parts(experiment, &merge_options, &parts).unwrap();
    assert_eq!((summary.copied, summary.identical), (4, 0));
    let md = std::fs::read_to_string(merged.join("one_store_lost/results.md")).unwrap();
    assert!(md.contains("done 4 "), "{md}");
    for id in ran.concat() {
        let from_part = parts
            .iter()
            .find_map(|p| {
                std::fs::read_to_string(p.join("one_store_lost/cells").join(format!("{id}.json")))
                    .ok()
            })
            .unwrap();
        let merged_record = std::fs::read_to_string(
            merged
                .join("one_store_lost/cells")
                .join(format!("{id}.json")),
        )
        .unwrap();
        assert_eq!(from_part, merged_record, "{id}");
    }
    // merging again finds every record already there
    let again = merge_parts(experiment, &merge_options, &parts).unwrap();
    assert_eq!((again.copied, again.identical), (0, 4));
    // two different records of one cell are refused, naming both files
    let conflict = root.join("conflict");
    let cells = conflict.join("one_store_lost/cells");
    std::fs::create_dir_all(&cells).unwrap();
    let id = "L1-p9-vanilla_one_store";
    let text = std::fs::read_to_string(
        parts[1]
            .join("one_store_lost/cells")
            .join(format!("{id}.json")),
    )
    .unwrap();
    std::fs::write(
        cells.join(format!("{id}.json")),
        text.replace("\"done\"", "\"failed\""),
    )
    .unwrap();
    let err = merge_parts(experiment, &merge_options, std::slice::from_ref(&conflict)).unwrap_err();
    assert!(
        matches!(&err, ReproduceError::Input(m) if m.contains(id) && m.contains("two different records")),
        "{err}"
    );
    // the same between two parts: refused before anything is copied
    let fresh = ReproduceOptions {
        out: root.join("fresh"),
        ..merge_options.clone()
    };
    let err = merge_parts(experiment, &fresh, &[parts[1].clone(), conflict.clone()]).unwrap_err();
    assert!(err.to_string().contains("two different records"), "{err}");
    assert_eq!(
        std::fs::read_dir(root.join("fresh/one_store_lost/cells"))
            .unwrap()
            .count(),
        0
    );
    // a part directory without the experiment, and a file that is not a cell, are refused
    let err = merge_parts(experiment, &merge_options, &[root.join("nowhere")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("give the --out directory of a part"),
        "{err}"
    );
    std::fs::write(cells.join("stray.json"), "{}").unwrap();
    std::fs::remove_file(cells.join(format!("{id}.json"))).unwrap();
    let err = merge_parts(experiment, &merge_options, &[conflict]).unwrap_err();
    assert!(
        err.to_string()
            .contains("is not a cell of `one_store_lost`"),
        "{err}"
    );
    for bad in ["0/3", "4/3", "1", "a/b", "1/0"] {
        assert!(Part::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(Part::parse(" 2/7 ").unwrap(), Part { index: 2, count: 7 });
    let _ = std::fs::remove_dir_all(&root);
}
