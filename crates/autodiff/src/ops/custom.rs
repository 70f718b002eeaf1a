//! The tape side of a [`CustomOp`]: recording one in the forward pass and calling its hand-written
//! vector–Jacobian product in the backward pass.

use super::{Backward, Op};
use crate::custom::{CustomOp, InputGrad};
use crate::tape::{GradSink, Tape, Var};
use ndarray::Array2;
use std::sync::Arc;

impl Tape {
    // ---- custom ---------------------------------------------------------------------------------

    /// Applies a fused op from another crate (see [`CustomOp`]).
    pub fn custom(&mut self, op: Arc<dyn CustomOp>, inputs: &[Var]) -> Var {
        let shapes: Vec<(usize, usize)> = inputs.iter().map(|&v| self.shape(v)).collect();
        let (r, c) = op.output_shape(&shapes);
        let mut out = self.pool.take(r, c);
        {
            let vals: Vec<&Array2<f32>> = inputs.iter().map(|&v| &self.nodes[v].value).collect();
            op.forward(&vals, &mut out);
        }
        let rg = inputs.iter().any(|&v| self.rg(v));
        let (start, len) = self.push_inputs(inputs);
        self.push(Op::Custom { op, start, len }, out, rg)
    }
}

/// The backward rules of the custom ops: push the adjoint `g` of the node to its inputs.
pub(super) fn backward(op: &Op, at: &Backward, sink: &mut GradSink) {
    let Backward { lists, g, out, .. } = *at;
    let val = |v: Var| at.val(v);
    match op {
        Op::Custom { op, start, len } => {
            let inputs = &lists[*start as usize..(*start + *len) as usize];
            let vals: Vec<&Array2<f32>> = inputs.iter().map(|&v| val(v)).collect();
            // An input that already has an adjoint lends it (the op adds into it); one that has
            // none gets a pooled buffer with unspecified contents (the op overwrites it). Either
            // way the buffer then goes (back) into the input's slot; a repeated input's second
            // buffer is added there.
            let mut grad_inputs: Vec<Option<InputGrad>> = inputs
                .iter()
                .map(|&v| {
                    sink.wants(v).then(|| match sink.take_existing(v) {
                        Some(adjoint) => InputGrad::add(adjoint),
                        None => {
                            let (r, c) = val(v).dim();
                            InputGrad::write(sink.scratch(r, c))
                        }
                    })
                })
                .collect();
            op.backward(&vals, out, g, &mut grad_inputs);
            for (&v, gi) in inputs.iter().zip(grad_inputs) {
                if let Some(gi) = gi {
                    sink.accumulate_owned(v, gi.into_buffer());
                }
            }
        }

        _ => unreachable!("{} is not one of the custom ops", op.name()),
    }
}
