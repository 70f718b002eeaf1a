//! One forward + backward pass of each policy architecture at its default training batch size:
//! the policy acts on one period's observation of a batch recorded on a tape, the loss is the sum
//! of its actions, and `backward` fills the parameter gradients. No dynamics — the figures isolate
//! the network (`benches/sim.rs` times the simulator, `benches/train.rs` whole epochs). Figures in
//! `docs/performance.md` (section "Latest figures", per architecture).
//!
//! Run: `cargo bench --bench policy` (≈2 minutes); filter with e.g. `cargo bench --bench policy -- gnn`.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hdpo_autodiff::{ParamStore, Tape, Var};
use hdpo_policy::{NetworkShape, Policy, TapeObservation};
use hdpo_sim::config::Split;
use hdpo_sim::fused::TapeState;
use hdpo_sim::scenario::{Scenario, ScenarioGenerator};
use hdpo_sim::settings::setting;
use hdpo_train::TrainConfig;
use ndarray::{Array2, s};
use rand::SeedableRng;
use std::hint::black_box;
use std::time::Duration;

/// One architecture on one setting, with overrides of the setting or policy defaults.
struct Case {
    policy: &'static str,
    setting: &'static str,
    overrides: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        policy: "vanilla_one_store",
        setting: "one_store_lost",
        overrides: &[],
    },
    Case {
        policy: "base_stock",
        setting: "one_store_backlogged",
        overrides: &[],
    },
    Case {
        policy: "capped_base_stock",
        setting: "one_store_lost",
        overrides: &[],
    },
    Case {
        policy: "echelon_stock",
        setting: "serial_system",
        overrides: &[],
    },
    Case {
        policy: "vanilla_serial",
        setting: "serial_system",
        overrides: &[],
    },
    Case {
        policy: "vanilla_warehouse",
        setting: "one_warehouse_lost",
        overrides: &[],
    },
    Case {
        policy: "vanilla_warehouse",
        setting: "transshipment_backlogged",
        overrides: &[],
    },
    Case {
        policy: "symmetry_aware",
        setting: "one_warehouse_lost",
        overrides: &[],
    },
    Case {
        policy: "symmetry_aware",
        setting: "one_warehouse_lost",
        overrides: &[("setting.n_stores", "20")],
    },
    Case {
        policy: "gnn",
        setting: "one_warehouse_lost",
        overrides: &[],
    },
    Case {
        policy: "gnn",
        setting: "many_warehouses_lost",
        overrides: &[],
    },
    Case {
        policy: "gnn",
        setting: "serial_system",
        overrides: &[],
    },
    Case {
        policy: "data_driven",
        setting: "one_store_lost",
        overrides: &[("setting.observation.past_demands", "16")],
    },
];

/// Everything one case needs: the policy, its parameters and one period of a batch.
struct Prepared {
    policy: Policy,
    params: ParamStore,
    scenario: Scenario,
    past_demands: Option<Array2<f32>>,
    label: String,
}

fn prepare(case: &Case) -> Prepared {
    let mut config = TrainConfig::default_for(setting(case.setting).unwrap(), case.policy).unwrap();
    for (key, value) in case.overrides {
        config.apply_override(key, value).unwrap();
    }
    let batch = config.setting.splits.train.batch_size;
    let shape = NetworkShape::from_setting(&config.setting).unwrap();
    let mut params = ParamStore::new();
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
    let policy = Policy::build(config.policy.clone(), &shape, &mut params, &mut rng).unwrap();
    let mut scenario = ScenarioGenerator::new(&config.setting, Split::Train)
        .unwrap()
        .generate(0..batch, 1);
    // warehouses and echelons start empty in some settings; give them stock so that the
    // allocation paths do real work
    for (k, v) in scenario
        .initial
        .warehouse
        .iter_mut()
        .chain(scenario.initial.echelon.iter_mut())
        .enumerate()
    {
        *v = 5.0 + (k % 7) as f32;
    }
    let p = shape.past_demands;
    let past_demands = (p > 0).then(|| {
        Array2::from_shape_fn((scenario.demand.nrows(), p), |(r, k)| {
            ((r * 7 + k * 3) % 11) as f32
        })
    });
    let stores = config.setting.instance().unwrap().n_stores;
    let label = format!("{}/{}_{}stores_b{batch}", case.policy, case.setting, stores);
    Prepared {
        policy,
        params,
        scenario,
        past_demands,
        label,
    }
}

/// Records the policy's actions for the batch on `tape` and returns the sum of all of them.
fn act_and_sum(tape: &mut Tape, prepared: &Prepared) -> Var {
    let sc = &prepared.scenario;
    let state = TapeState::from_state(tape, &sc.initial);
    let past_demands = prepared
        .past_demands
        .as_ref()
        .map(|p| tape.constant_from(p.view()));
    let obs = TapeObservation {
        statics: &sc.statics,
        state,
        period: 0,
        past_demands,
        future_demand: (!prepared.policy.admissible()).then(|| sc.demand.slice(s![.., 0..])),
    };
    let actions = prepared.policy.act(tape, &prepared.params, &obs);
    let mut loss = tape.sum_all(actions.store);
    for extra in [actions.warehouse, actions.echelon].into_iter().flatten() {
        let sum = tape.sum_all(extra);
        loss = tape.add(loss, sum);
    }
    loss
}

fn architectures(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_millis(500));
    for case in CASES {
        let prepared = prepare(case);
        let mut tape = Tape::new();
        let mut grads = prepared.params.zero_grads();
        group.bench_function(BenchmarkId::new("forward_backward", &prepared.label), |b| {
            b.iter(|| {
                tape.reset();
                grads.zero();
                let loss = act_and_sum(&mut tape, &prepared);
                tape.backward(loss, &mut grads);
                black_box(tape.scalar(loss))
            })
        });
        let mut no_grad = Tape::no_grad();
        group.bench_function(BenchmarkId::new("forward_no_grad", &prepared.label), |b| {
            b.iter(|| {
                no_grad.reset();
                let loss = act_and_sum(&mut no_grad, &prepared);
                black_box(no_grad.scalar(loss))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, architectures);
criterion_main!(benches);
