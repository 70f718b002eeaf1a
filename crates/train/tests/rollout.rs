//! A tape rollout skips the policy in the periods whose orders cannot reach a cost
//! (`Statics::periods_with_effective_actions`): the loss and every gradient are the same, bit for
//! bit, as a rollout composed by hand that asks the policy in every period — and the tape is
//! shorter.

use hdpo_autodiff::{Grads, ParamStore, Tape, Var};
use hdpo_policy::{Policy, TapeObservation};
use hdpo_sim::config::Split;
use hdpo_sim::fused::{TapeDynamics, TapeState};
use hdpo_sim::scenario::Scenario;
use hdpo_sim::settings::setting;
use hdpo_train::{RolloutPeriods, TrainConfig, Trainer, rollout_on_tape};
use ndarray::s;

/// The loss of `periods` periods with the policy asked in every one of them.
fn rollout_asking_every_period(
    tape: &mut Tape,
    policy: &Policy,
    params: &ParamStore,
    scenario: &Scenario,
    periods: usize,
    normaliser: f32,
) -> Var {
    let dynamics = TapeDynamics::new(&scenario.statics);
    let mut state = TapeState::from_state(tape, &scenario.initial);
    let mut total: Option<Var> = None;
    for t in 0..periods {
        let obs = TapeObservation {
            statics: &scenario.statics,
            state,
            period: t,
            past_demands: None,
            future_demand: None,
        };
        let actions = policy.act(tape, params, &obs);
        let demand = tape.constant_from(scenario.demand.slice(s![.., t..t + 1]));
        let (next, cost) = dynamics.step(tape, &state, &actions, demand).unwrap();
        state = next;
        let period_cost = cost.total(tape);
        total = Some(match total {
            None => period_cost,
            Some(acc) => tape.add(acc, period_cost),
        });
    }
    tape.scale(total.unwrap(), 1.0 / normaliser)
}

fn gradient_bits(params: &ParamStore, grads: &Grads) -> Vec<u32> {
    params
        .ids()
        .flat_map(|id| {
            grads
                .get(id)
                .iter()
                .map(|g| g.to_bits())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn skipped_periods_leave_the_loss_and_gradient_unchanged_to_the_bit() {
    let periods = 12;
    // ℓ = 4 for every sample; then ℓ ∈ {2, 3, 4} per sample (the shortest decides)
    for (lead_time, acting) in [
        (None, periods - 4),
        (
            Some("{ sample = \"per_sample\", range = [2, 5] }"),
            periods - 2,
        ),
    ] {
        let mut config =
            TrainConfig::default_for(setting("one_store_lost").unwrap(), "vanilla_one_store")
                .unwrap();
        config
            .apply_override("setting.splits.train.batch_size", "64")
            .unwrap();
        config
            .apply_override("setting.splits.train.n_samples", "64")
            .unwrap();
        config
            .apply_override("setting.splits.train.ignore_periods", "0")
            .unwrap();
        config
            .apply_override("setting.splits.train.periods", &periods.to_string())
            .unwrap();
        if let Some(l) = lead_time {
            config
                .apply_override("setting.stores.lead_time", l)
                .unwrap();
        }
        let scenario = Scenario::generate(&config.setting, Split::Train).unwrap();
        let trainer = Trainer::new(config).unwrap();
        let (policy, params) = (&trainer.policy, &trainer.params);
        assert_eq!(
            scenario.statics.periods_with_effective_actions(periods),
            acting
        );
        let normaliser = (scenario.n_samples() * periods) as f32;

        let mut skipping = Tape::new();
        let out = rollout_on_tape(
            &mut skipping,
            policy,
            params,
            &scenario,
            RolloutPeriods {
                periods,
                ignore: 0,
                loss_from: 0,
            },
            normaliser,
        )
        .unwrap();
        let mut asking = Tape::new();
        let loss = rollout_asking_every_period(
            &mut asking,
            policy,
            params,
            &scenario,
            periods,
            normaliser,
        );

        assert_eq!(
            skipping.scalar(out.loss).to_bits(),
            asking.scalar(loss).to_bits(),
            "loss"
        );
        let (mut a, mut b) = (params.zero_grads(), params.zero_grads());
        skipping.backward(out.loss, &mut a);
        asking.backward(loss, &mut b);
        let (a, b) = (gradient_bits(params, &a), gradient_bits(params, &b));
        assert!(
            a.iter().any(|&g| f32::from_bits(g) != 0.0),
            "a gradient to compare"
        );
        let differing = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        assert_eq!(
            differing,
            0,
            "{differing} of {} gradient entries differ",
            a.len()
        );
        // the policy's nodes of the skipped periods (input scale, three layers, output layer,
        // softplus) are not on the tape; a zero constant is
        assert_eq!(
            asking.len() - skipping.len(),
            5 * (periods - acting),
            "{} vs {} nodes",
            skipping.len(),
            asking.len()
        );
    }
}
