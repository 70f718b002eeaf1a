//! The simulator alone, with a fixed simple policy (order up to a level), so the figures measure the
//! dynamics and not a network: tape-free rollout throughput (sample-periods per second) and a rollout
//! recorded on the tape with its backward pass. Figures in `docs/performance.md`.
//!
//! Run: `cargo bench --bench sim`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hdpo_autodiff::{ParamStore, Tape};
use hdpo_sim::config::Split;
use hdpo_sim::eval::{ActionPolicy, EvalObservation, EvalOptions, evaluate};
use hdpo_sim::fused::{TapeActions, TapeDynamics, TapeState};
use hdpo_sim::scenario::ScenarioGenerator;
use hdpo_sim::settings::setting;
use hdpo_sim::state::Actions;
use ndarray::{Array2, s};
use std::hint::black_box;
use std::time::Duration;

/// Stores order up to `store_level`; warehouses order up to `warehouse_level` (inventory positions).
struct OrderUpTo {
    store_level: f32,
    warehouse_level: f32,
}

impl ActionPolicy for OrderUpTo {
    fn act(&self, obs: &EvalObservation<'_>, actions: &mut Actions) {
        let state = obs.state();
        for (row, mut a) in state.store.rows().into_iter().zip(actions.store.rows_mut()) {
            a[0] = (self.store_level - row.sum()).max(0.0);
        }
        for (row, mut a) in state
            .warehouse
            .rows()
            .into_iter()
            .zip(actions.warehouse.rows_mut())
        {
            a[0] = (self.warehouse_level - row.sum()).max(0.0);
        }
    }
}

/// A benchmark case: setting, overrides, store and warehouse order-up-to levels.
struct Case {
    setting: &'static str,
    overrides: &'static [(&'static str, &'static str)],
    store_level: f32,
    warehouse_level: f32,
}

const CASES: [Case; 2] = [
    Case {
        setting: "one_store_lost",
        overrides: &[],
        store_level: 25.0,
        warehouse_level: 0.0,
    },
    Case {
        setting: "one_warehouse_lost",
        overrides: &[("n_stores", "20")],
        store_level: 20.0,
        warehouse_level: 400.0,
    },
];

fn tape_free(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim_tape_free");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for Case {
        setting: name,
        overrides,
        store_level,
        warehouse_level,
    } in CASES
    {
        let mut s = setting(name).unwrap();
        for (k, v) in overrides {
            s.apply_override(k, v).unwrap();
        }
        s.apply_override("splits.dev.periods", "1000").unwrap();
        let sizes = s.split(Split::Dev);
        g.throughput(Throughput::Elements(
            (sizes.n_samples * sizes.periods) as u64,
        ));
        let policy = OrderUpTo {
            store_level,
            warehouse_level,
        };
        let options = EvalOptions {
            round_actions: false,
            ..EvalOptions::for_setting(&s)
        };
        g.bench_function(
            BenchmarkId::new(
                "rollout",
                format!("{name}_{}x{}", sizes.n_samples, sizes.periods),
            ),
            |b| b.iter(|| black_box(evaluate(&s, Split::Dev, &policy, &options).unwrap())),
        );
    }
    g.finish();
}

fn on_tape(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim_on_tape");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for Case {
        setting: name,
        overrides,
        store_level,
        warehouse_level,
    } in CASES
    {
        let mut s = setting(name).unwrap();
        for (k, v) in overrides {
            s.apply_override(k, v).unwrap();
        }
        let (samples, periods) = (1024, 50);
        let sc = ScenarioGenerator::new(&s, Split::Train)
            .unwrap()
            .generate(0..samples, periods);
        let dynamics = TapeDynamics::new(&sc.statics);
        let mut params = ParamStore::new();
        let level = params.add("level", Array2::from_elem((1, 1), store_level));
        let wh_level = params.add(
            "warehouse_level",
            Array2::from_elem((1, 1), warehouse_level.max(1.0)),
        );
        let mut tape = Tape::new();
        g.throughput(Throughput::Elements((samples * periods) as u64));
        g.bench_function(
            BenchmarkId::new(
                "rollout_and_backward",
                format!("{name}_{samples}x{periods}"),
            ),
            |b| {
                b.iter(|| {
                    tape.reset();
                    let (lv, wv) = (tape.param(&params, level), tape.param(&params, wh_level));
                    let mut state = TapeState::from_state(&mut tape, &sc.initial);
                    let mut total = None;
                    for t in 0..periods {
                        let position = tape.row_sums(state.store);
                        let gap = tape.sub(lv, position);
                        let store = tape.relu(gap);
                        let warehouse = state.warehouse.map(|w| {
                            let p = tape.row_sums(w);
                            let gap = tape.sub(wv, p);
                            tape.relu(gap)
                        });
                        let actions = TapeActions {
                            store,
                            warehouse,
                            echelon: None,
                        };
                        let d = tape.constant_from(sc.demand.slice(s![.., t..t + 1]));
                        let (next, cost) = dynamics.step(&mut tape, &state, &actions, d).unwrap();
                        state = next;
                        let c = cost.total(&mut tape);
                        total = Some(match total {
                            None => c,
                            Some(acc) => tape.add(acc, c),
                        });
                    }
                    let mut grads = params.zero_grads();
                    tape.backward(total.unwrap(), &mut grads);
                    black_box(grads)
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, tape_free, on_tape);
criterion_main!(benches);
