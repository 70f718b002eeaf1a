//! Training on demand from a data file: the tape rollout's past-demand window reaches into the
//! split's observed history, and a one-store data setting trains end to end with the data-driven
//! net (bit-identical on one and two threads).

use hdpo_sim::config::{Setting, Split};
use hdpo_sim::scenario::Scenario;
use hdpo_train::rollout::past_demand_window;
use hdpo_train::{TrainConfig, Trainer};
use ndarray::array;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

#[test]
fn the_past_window_reads_the_history_before_period_0() {
    // one row; history = periods −2, −1; demand = periods 0, 1, 2
    let history = array![[7.0f32, 8.0]];
    let demand = array![[1.0f32, 2.0, 3.0]];
    let at = |t| past_demand_window(&demand, &history, t, 3).row(0).to_vec();
    assert_eq!(at(0), vec![0.0, 7.0, 8.0]);
    assert_eq!(at(1), vec![7.0, 8.0, 1.0]);
    assert_eq!(at(2), vec![8.0, 1.0, 2.0]);
    assert_eq!(at(3), vec![1.0, 2.0, 3.0]);
}

/// A wide file: 6 samples × 1 store × 40 weeks, a seasonal pattern per sample.
fn sales_file() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("train-data-demand");
    std::fs::create_dir_all(&dir).unwrap();
    let mut text = String::from("sample,store");
    for t in 0..40 {
        text += &format!(",w{t:03}");
    }
    text.push('\n');
    for b in 0..6 {
        text += &format!("{b},0");
        for t in 0..40 {
            let d = 5 + b + (t * (b + 3)) % 7;
            text += &format!(",{d}");
        }
        text.push('\n');
    }
    let path = dir.join("sales.csv");
    std::fs::write(&path, text).unwrap();
    path
}

fn data_setting() -> Setting {
    let text = format!(
        r#"name = "one_store_data"
unmet_demand = "lost"
objective = "profit"
[network]
n_stores = 1
[stores]
holding_cost = 1
underage_cost = {{ sample = "per_sample", range = [6.3, 11.7] }}
lead_time = {{ sample = "per_sample", range = [2, 4] }}
[demand]
distribution = "data"
file = "{}"
format = "wide"
past_periods = 4
[initial_inventory]
rule = "zero"
[splits.train]
n_samples = 6
batch_size = 3
periods = 20
ignore_periods = 4
periods_range = [0, 24]
[splits.dev]
n_samples = 6
batch_size = 6
periods = 16
ignore_periods = 4
periods_range = [12, 32]
[splits.test]
n_samples = 6
batch_size = 6
periods = 16
ignore_periods = 4
periods_range = [20, 40]
[seeds]
train = 1
dev = 2
test = 3
[observation]
past_demands = 4
"#,
        sales_file().display()
    );
    Setting::from_toml_str(&text).unwrap()
}

fn train(threads: usize) -> Trainer {
    let mut config = TrainConfig::default_for(data_setting(), "data_driven").unwrap();
    config.max_epochs = 2;
    config.apply_override("dev_every", "1").unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut t = Trainer::new(config).unwrap();
        t.run(&AtomicBool::new(false), |_, _| {}).unwrap();
        t
    })
}

#[test]
fn a_data_setting_trains_with_the_data_driven_net_bit_identically_on_any_thread_count() {
    let s = data_setting();
    // the training scenario's history is the file's first 4 weeks
    let sc = Scenario::generate(&s, Split::Train).unwrap();
    assert_eq!(sc.history.row(1).to_vec(), vec![6.0, 10.0, 7.0, 11.0]);
    let one = train(1);
    let two = train(2);
    let best = one.best.as_ref().expect("a dev pass");
    // profit mode: the cost is a negative profit, finite
    assert!(best.dev_cost.is_finite(), "{}", best.dev_cost);
    let bits = |t: &Trainer| {
        t.params
            .ids()
            .flat_map(|id| {
                t.params
                    .value(id)
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&one), bits(&two));
    assert_eq!(
        one.best.as_ref().map(|b| b.dev_cost.to_bits()),
        two.best.as_ref().map(|b| b.dev_cost.to_bits())
    );
}
