//! Fused operations defined outside this crate. A simulator step that would take a dozen primitive
//! nodes per period can instead be one [`CustomOp`] node with a hand-written vector–Jacobian product
//! (VJP): fewer buffers, one pass over memory, and the formulas in one place.

use ndarray::Array2;

/// A fused op with a hand-written backward pass. Implementations must be pure: the same inputs give
/// the same output, and `backward` may rely only on the inputs, the output and the adjoint.
///
/// Check every implementation with [`crate::gradcheck`] against finite differences.
pub trait CustomOp: Send + Sync {
    /// Name shown in Graphviz output and error messages.
    fn name(&self) -> &str;

    /// Shape of the output given the input shapes (panic with a clear message on a mismatch: shape
    /// errors are programming errors).
    fn output_shape(&self, inputs: &[(usize, usize)]) -> (usize, usize);

    /// Writes the output. `output` has the shape from [`CustomOp::output_shape`] and unspecified
    /// contents: every element must be written.
    fn forward(&self, inputs: &[&Array2<f32>], output: &mut Array2<f32>);

    /// Adds the vector–Jacobian product `grad_output · ∂output/∂input_k` into `grad_inputs[k]` for
    /// every `k` where it is `Some` (a zeroed buffer of input k's shape). `None` means input `k`
    /// needs no gradient: skip that work.
    fn backward(
        &self,
        inputs: &[&Array2<f32>],
        output: &Array2<f32>,
        grad_output: &Array2<f32>,
        grad_inputs: &mut [Option<Array2<f32>>],
    );

    /// The backward pass as the tape calls it: `fresh[k]` says that `grad_inputs[k]` has
    /// unspecified contents and must be **overwritten** (input `k` has no adjoint yet); otherwise
    /// it holds input `k`'s adjoint so far, to **add** into. This saves the zero fill of fresh
    /// buffers and a separate pass adding into existing adjoints. The default zero-fills the
    /// fresh buffers and calls [`CustomOp::backward`]; ops that override it must write every
    /// element of each fresh buffer.
    fn backward_into(
        &self,
        inputs: &[&Array2<f32>],
        output: &Array2<f32>,
        grad_output: &Array2<f32>,
        grad_inputs: &mut [Option<Array2<f32>>],
        fresh: &[bool],
    ) {
        for (g, &is_fresh) in grad_inputs.iter_mut().zip(fresh) {
            if let (Some(g), true) = (g.as_mut(), is_fresh) {
                g.as_slice_mut()
                    .expect("gradient buffers are contiguous")
                    .fill(0.0);
            }
        }
        self.backward(inputs, output, grad_output, grad_inputs);
    }
}
