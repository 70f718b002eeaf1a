//! Fused operations defined outside this crate. A simulator step that would take a dozen primitive
//! nodes per period can instead be one [`CustomOp`] node with a hand-written vector–Jacobian product
//! (VJP): fewer buffers, one pass over memory, and the formulas in one place.
//!
//! The backward pass hands each input's adjoint buffer over as an [`InputGrad`], which carries the
//! tape's decision for that input: [`WriteOrAdd::Write`] when the input has no adjoint yet (the
//! buffer's contents are unspecified and every element must be written, which saves a zero fill),
//! [`WriteOrAdd::Add`] when the buffer holds the adjoint so far (which saves a separate pass adding
//! into it).

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

    /// Delivers the vector–Jacobian product `grad_output · ∂output/∂input_k` into `grad_inputs[k]`
    /// for every `k` where it is `Some`, written or added as its [`InputGrad::write_or_add`] says
    /// (an op that only knows how to add uses [`InputGrad::zeroed_for_adding`]). `None` means
    /// input `k` needs no gradient: skip that work.
    fn backward(
        &self,
        inputs: &[&Array2<f32>],
        output: &Array2<f32>,
        grad_output: &Array2<f32>,
        grad_inputs: &mut [Option<InputGrad>],
    );
}

/// Whether a contribution to an adjoint is written over the buffer or added into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOrAdd {
    /// The buffer has unspecified contents: overwrite every element.
    Write,
    /// The buffer holds the adjoint so far: add into it.
    Add,
}

impl WriteOrAdd {
    /// True for [`WriteOrAdd::Write`].
    #[inline(always)]
    pub fn is_write(self) -> bool {
        self == WriteOrAdd::Write
    }

    /// Writes or adds `v` into one element.
    #[inline(always)]
    pub fn put(self, d: &mut f32, v: f32) {
        if self.is_write() {
            *d = v;
        } else {
            *d += v;
        }
    }
}

/// One input's adjoint buffer in a [`CustomOp::backward`] pass, with the decision whether to
/// write it or add into it.
#[derive(Debug)]
pub struct InputGrad {
    buffer: Array2<f32>,
    write_or_add: WriteOrAdd,
}

impl InputGrad {
    /// A buffer with unspecified contents, to be overwritten (its input has no adjoint yet).
    pub fn write(buffer: Array2<f32>) -> InputGrad {
        InputGrad {
            buffer,
            write_or_add: WriteOrAdd::Write,
        }
    }

    /// A buffer holding its input's adjoint so far, to be added into.
    pub fn add(buffer: Array2<f32>) -> InputGrad {
        InputGrad {
            buffer,
            write_or_add: WriteOrAdd::Add,
        }
    }

    /// Whether to write or add.
    #[inline(always)]
    pub fn write_or_add(&self) -> WriteOrAdd {
        self.write_or_add
    }

    /// The buffer as a flat slice (row-major) and whether to write or add into it.
    #[inline(always)]
    pub fn parts(&mut self) -> (&mut [f32], WriteOrAdd) {
        let flat = self
            .buffer
            .as_slice_mut()
            .expect("gradient buffers are contiguous");
        (flat, self.write_or_add)
    }

    /// The buffer, for an op that only adds: zero-filled first if it was to be written (after
    /// which it is to be added into).
    pub fn zeroed_for_adding(&mut self) -> &mut Array2<f32> {
        if self.write_or_add.is_write() {
            self.buffer.fill(0.0);
            self.write_or_add = WriteOrAdd::Add;
        }
        &mut self.buffer
    }

    /// The buffer, read-only.
    pub fn buffer(&self) -> &Array2<f32> {
        &self.buffer
    }

    /// The buffer back, once the backward pass has delivered into it.
    pub fn into_buffer(self) -> Array2<f32> {
        self.buffer
    }
}
