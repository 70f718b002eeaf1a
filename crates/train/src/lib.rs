//! The HDPO trainer: rollouts on the tape, Adam steps, dev/test evaluation and the experiment harness.
