//! The tape (a Wengert list): an arena of nodes in the order they were computed, addressed by `Copy`
//! handles ([`Var`]). Each node stores its operation ([`Op`], a closed enum defined in `ops.rs`) and its
//! forward value. [`Tape::backward`] walks the nodes from the loss back to the first one and lets each
//! node push its adjoint to its inputs (`ops.rs` holds the rule of every op). Adjoints are written on
//! first use and accumulated in place after.
//!
//! All tensors are `ndarray::Array2<f32>` in standard (row-major) layout: rows = batch × entities,
//! columns = features or pipeline slots. Buffers are recycled: [`Tape::reset`] hands every value and
//! adjoint back to a [`BufferPool`] keyed by length, so a training loop that records the same graph
//! every step stops allocating after the first step.

use crate::ops::Op;
use crate::params::{Grads, ParamId, ParamStore};
use ndarray::Array2;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Handle of a node on a [`Tape`]. Only meaningful for the tape that created it, until its next reset.
///
/// A handle carries the *stamp* of the recording it belongs to: every tape takes a fresh stamp when
/// it is created and at every [`Tape::reset`], so using a handle on another tape, or after a reset,
/// panics with a message that says so instead of silently reading whatever node now sits at its
/// position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Var {
    index: u32,
    stamp: u32,
}

impl Var {
    /// Position of the node on its tape.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// A stamp no live recording has used (unique until 2³² tapes and resets; a repeat after that can
/// only hide a misuse, never reject a valid handle).
fn fresh_stamp() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One recorded computation: what was done, the result, and whether a gradient must flow through it.
pub(crate) struct Node {
    pub(crate) op: Op,
    pub(crate) value: Array2<f32>,
    pub(crate) requires_grad: bool,
    /// How many recorded ops read this node (an op that reads it twice counts twice).
    pub(crate) consumers: u32,
}

/// Recycled `Vec<f32>` buffers, keyed by length. A step that records the same shapes every time
/// takes from the pool exactly what the previous step gave back.
///
/// The pool keeps at most as many buffers of a length as were taken in the current or the previous
/// step (see [`BufferPool::end_step`]), so arrays handed to the tape from outside (e.g.
/// [`Tape::constant`] with a fresh array every step) do not make it grow without bound.
#[derive(Default)]
pub struct BufferPool {
    shelves: HashMap<usize, Shelf, BuildHasherDefault<LengthHasher>>,
}

/// Hashes the pool's keys, buffer lengths, with one multiplication and a rotation (the high bits
/// of the product are the well-mixed ones): the standard SipHash cost more than the rest of a
/// `take`.
#[derive(Default)]
struct LengthHasher(u64);

impl Hasher for LengthHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

/// The pool's buffers of one length, and how many of that length were taken in this step and in
/// the previous one.
#[derive(Default)]
struct Shelf {
    free: Vec<Vec<f32>>,
    taken_now: usize,
    taken_before: usize,
}

impl BufferPool {
    /// A buffer of shape `(rows, cols)` with unspecified contents: the caller overwrites every element.
    pub fn take(&mut self, rows: usize, cols: usize) -> Array2<f32> {
        let len = rows * cols;
        let shelf = self.shelves.entry(len).or_default();
        shelf.taken_now += 1;
        let data = shelf.free.pop().unwrap_or_else(|| vec![0.0; len]);
        Array2::from_shape_vec((rows, cols), data).expect("pool buffer has the requested length")
    }

    /// A zero-filled buffer of shape `(rows, cols)`.
    pub fn take_zeroed(&mut self, rows: usize, cols: usize) -> Array2<f32> {
        let mut a = self.take(rows, cols);
        a.as_slice_mut()
            .expect("pool buffers are contiguous")
            .fill(0.0);
        a
    }

    /// Hands a buffer back for reuse.
    pub fn give(&mut self, array: Array2<f32>) {
        if !array.is_standard_layout() || array.is_empty() {
            return;
        }
        let (data, offset) = array.into_raw_vec_and_offset();
        if offset.is_some_and(|o| o != 0) {
            return;
        }
        let shelf = self.shelves.entry(data.len()).or_default();
        if shelf.free.len() < shelf.taken_now.max(shelf.taken_before) {
            shelf.free.push(data);
        }
    }

    /// Marks the end of a step: the takes of this step become the cap of the next one (shelves
    /// left with no buffer and no takes are dropped).
    pub fn end_step(&mut self) {
        self.shelves.retain(|_, shelf| {
            shelf.taken_before = std::mem::take(&mut shelf.taken_now);
            shelf.taken_before > 0 || !shelf.free.is_empty()
        });
    }

    /// Number of buffers currently waiting for reuse.
    pub fn len(&self) -> usize {
        self.shelves.values().map(|shelf| shelf.free.len()).sum()
    }

    /// True when no buffer is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The recording of one computation, reusable across steps.
///
/// ```
/// use hdpo_autodiff::{ParamStore, Tape};
/// use ndarray::array;
/// let mut store = ParamStore::new();
/// let w = store.add("w", array![[2.0f32]]);
/// let mut tape = Tape::new();
/// let x = tape.constant(array![[3.0f32]]);
/// let wv = tape.param(&store, w);
/// let y = tape.mul(x, wv);          // y = 6
/// let loss = tape.sum_all(y);
/// let mut grads = store.zero_grads();
/// tape.backward(loss, &mut grads);
/// assert_eq!(grads.get(w)[[0, 0]], 3.0); // dy/dw = x
/// ```
pub struct Tape {
    pub(crate) nodes: Nodes,
    pub(crate) grads: Vec<Option<Array2<f32>>>,
    /// During [`Tape::backward`]: `folded[i]` says that node `i`'s adjoint was delivered already
    /// multiplied by the derivative of its activation (see [`GradSink::fold_activation`]).
    folded: Vec<bool>,
    /// During [`Tape::backward`]: the transposes of the weights that folded input gradients read
    /// as `wᵀ`, by node, each made once instead of once per period (see [`GradSink::transpose`]).
    transposes: Vec<(usize, Vec<f32>)>,
    /// Input lists of ops with a variable number of inputs (concat, custom ops), as ranges into this.
    pub(crate) input_lists: Vec<Var>,
    /// The node of each parameter used since the last reset, so a parameter is copied once per step.
    param_vars: Vec<Option<Var>>,
    pub(crate) pool: BufferPool,
    recording: bool,
}

/// The nodes of a tape, indexed by position (`usize`, inside the engine) or by handle ([`Var`]):
/// indexing by handle checks that the handle carries the stamp of the current recording.
pub(crate) struct Nodes {
    list: Vec<Node>,
    /// The stamp of the current recording, carried by every [`Var`] it hands out.
    stamp: u32,
}

impl std::ops::Deref for Nodes {
    type Target = Vec<Node>;
    fn deref(&self) -> &Vec<Node> {
        &self.list
    }
}

impl std::ops::DerefMut for Nodes {
    fn deref_mut(&mut self) -> &mut Vec<Node> {
        &mut self.list
    }
}

impl std::ops::Index<usize> for Nodes {
    type Output = Node;
    fn index(&self, i: usize) -> &Node {
        &self.list[i]
    }
}

impl std::ops::Index<Var> for Nodes {
    type Output = Node;
    fn index(&self, v: Var) -> &Node {
        assert!(
            v.stamp == self.stamp && v.index() < self.list.len(),
            "Var #{} does not belong to this tape's current recording: it was made by another \
             tape, or before this tape's last reset()",
            v.index
        );
        &self.list[v.index()]
    }
}

impl Default for Tape {
    fn default() -> Self {
        Self::new()
    }
}

impl Tape {
    /// An empty tape in recording mode.
    pub fn new() -> Self {
        Tape {
            nodes: Nodes {
                list: Vec::new(),
                stamp: fresh_stamp(),
            },
            grads: Vec::new(),
            folded: Vec::new(),
            transposes: Vec::new(),
            input_lists: Vec::new(),
            param_vars: Vec::new(),
            pool: BufferPool::default(),
            recording: true,
        }
    }

    /// An empty tape in no-grad mode: ops compute values but record no graph (see [`Tape::set_recording`]).
    pub fn no_grad() -> Self {
        let mut t = Self::new();
        t.recording = false;
        t
    }

    /// Switches recording on or off. With recording off, the same user code runs, every result is a
    /// constant, and [`Tape::backward`] has nothing to do. Evaluation loops call [`Tape::reset`] every
    /// period so memory stays flat.
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// True when ops are recorded for a backward pass.
    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// Forgets every node and recycles all buffers. Handles from before the reset become invalid.
    pub fn reset(&mut self) {
        for node in self.nodes.drain(..) {
            self.pool.give(node.value);
        }
        for g in self.grads.drain(..).flatten() {
            self.pool.give(g);
        }
        self.input_lists.clear();
        self.param_vars.iter_mut().for_each(|v| *v = None);
        self.pool.end_step();
        self.nodes.stamp = fresh_stamp();
    }

    /// The handle of the most recently pushed node.
    fn last_var(&self) -> Var {
        Var {
            index: self.nodes.len() as u32 - 1,
            stamp: self.nodes.stamp,
        }
    }

    /// Number of recycled buffers waiting in the pool (for tests and diagnostics).
    pub fn pooled_buffers(&self) -> usize {
        self.pool.len()
    }

    /// Number of adjoints that the last [`Tape::backward`] delivered with an activation's
    /// derivative folded in (a fused layer read only by another layer; for tests and diagnostics).
    pub fn folded_adjoints(&self) -> usize {
        self.folded.iter().filter(|&&f| f).count()
    }

    /// Number of nodes recorded since the last reset.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when nothing has been recorded since the last reset.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Number of `f32` values the recorded nodes hold (their forward values, not the adjoints of
    /// a backward pass): what a recording costs in memory, for estimates before a large one.
    pub fn value_floats(&self) -> usize {
        self.nodes.iter().map(|node| node.value.len()).sum()
    }

    /// The forward value of a node.
    pub fn value(&self, v: Var) -> &Array2<f32> {
        &self.nodes[v].value
    }

    /// The shape `(rows, cols)` of a node's value.
    pub fn shape(&self, v: Var) -> (usize, usize) {
        self.nodes[v].value.dim()
    }

    /// The scalar value of a `(1, 1)` node.
    pub fn scalar(&self, v: Var) -> f32 {
        let a = self.value(v);
        assert_eq!(
            a.dim(),
            (1, 1),
            "scalar() needs a (1, 1) node, got {:?}",
            a.dim()
        );
        a[[0, 0]]
    }

    /// The adjoint d(loss)/d(v) after [`Tape::backward`] for a variable ([`Tape::variable`]) that a
    /// gradient reached; `None` otherwise. Adjoints of intermediate nodes are recycled during the
    /// sweep and are not kept.
    pub fn grad(&self, v: Var) -> Option<&Array2<f32>> {
        let _ = &self.nodes[v];
        self.grads.get(v.index()).and_then(|g| g.as_ref())
    }

    /// True when a gradient will flow through this node.
    pub fn requires_grad(&self, v: Var) -> bool {
        self.nodes[v].requires_grad
    }

    /// Borrows a pooled buffer of shape `(rows, cols)` with unspecified contents (for custom ops and
    /// callers that want to fill a constant without allocating).
    pub fn take_buffer(&mut self, rows: usize, cols: usize) -> Array2<f32> {
        self.pool.take(rows, cols)
    }

    // ---- leaves ---------------------------------------------------------------------------------

    /// A constant input (no gradient). Takes ownership of the array; its buffer is recycled at reset.
    pub fn constant(&mut self, value: Array2<f32>) -> Var {
        let value = self.standardize(value);
        self.push_leaf(Op::Constant, value, false)
    }

    /// A constant input copied from a view into a pooled buffer (no allocation in steady state).
    pub fn constant_from(&mut self, value: ndarray::ArrayView2<f32>) -> Var {
        let (r, c) = value.dim();
        let mut buf = self.pool.take(r, c);
        buf.assign(&value);
        self.push_leaf(Op::Constant, buf, false)
    }

    /// A constant filled with one value.
    pub fn full(&mut self, rows: usize, cols: usize, value: f32) -> Var {
        let mut buf = self.pool.take(rows, cols);
        buf.fill(value);
        self.push_leaf(Op::Constant, buf, false)
    }

    /// A leaf that receives a gradient (read it with [`Tape::grad`] after backward). Used by
    /// gradient checks and by callers that want d(loss)/d(input).
    pub fn variable(&mut self, value: Array2<f32>) -> Var {
        let value = self.standardize(value);
        let rec = self.recording;
        self.push_leaf(Op::Variable, value, rec)
    }

    /// The node of parameter `id`. The first use after a reset copies the value onto the tape; later
    /// uses return the same node, so its gradient is accumulated once into [`Grads`].
    pub fn param(&mut self, store: &ParamStore, id: ParamId) -> Var {
        if self.param_vars.len() < store.len() {
            self.param_vars.resize(store.len(), None);
        }
        if let Some(v) = self.param_vars[id.index()] {
            return v;
        }
        let src = store.value(id);
        let mut buf = self.pool.take(src.nrows(), src.ncols());
        buf.assign(src);
        let rec = self.recording;
        let v = self.push_leaf(Op::Param(id), buf, rec);
        self.param_vars[id.index()] = Some(v);
        v
    }

    fn standardize(&mut self, value: Array2<f32>) -> Array2<f32> {
        if value.is_standard_layout() {
            value
        } else {
            let mut buf = self.pool.take(value.nrows(), value.ncols());
            buf.assign(&value);
            buf
        }
    }

    fn push_leaf(&mut self, op: Op, value: Array2<f32>, requires_grad: bool) -> Var {
        let op = if self.recording { op } else { Op::Constant };
        self.nodes.push(Node {
            op,
            value,
            requires_grad,
            consumers: 0,
        });
        self.last_var()
    }

    /// Appends the result of an op. In no-grad mode (or when no input needs a gradient) the op is
    /// stored as a constant so the backward sweep skips it.
    pub(crate) fn push(&mut self, op: Op, value: Array2<f32>, inputs_require_grad: bool) -> Var {
        let requires_grad = self.recording && inputs_require_grad;
        let op = if requires_grad { op } else { Op::Constant };
        let nodes = &mut self.nodes.list;
        op.for_each_input(&self.input_lists, |v| nodes[v.index()].consumers += 1);
        self.nodes.push(Node {
            op,
            value,
            requires_grad,
            consumers: 0,
        });
        self.last_var()
    }

    /// Stores a variable-length input list and returns its range (for `Op::Concat`, `Op::Custom`).
    pub(crate) fn push_inputs(&mut self, inputs: &[Var]) -> (u32, u32) {
        let start = self.input_lists.len() as u32;
        self.input_lists.extend_from_slice(inputs);
        (start, inputs.len() as u32)
    }

    // ---- backward -------------------------------------------------------------------------------

    /// Reverse sweep from `loss` (a `(1, 1)` node): seeds d(loss)/d(loss) = 1, visits every node from
    /// `loss` down to the first, and lets each push its adjoint to its inputs. Parameter adjoints are
    /// **added** into `grads` (so several losses or shards can accumulate; zero `grads` first for a
    /// fresh gradient). The adjoints of variables stay readable with [`Tape::grad`] until the next
    /// reset; the others are recycled during the sweep.
    pub fn backward(&mut self, loss: Var, grads: &mut Grads) {
        assert_eq!(
            self.shape(loss),
            (1, 1),
            "backward() starts from a (1, 1) loss"
        );
        for g in self.grads.drain(..).flatten() {
            self.pool.give(g);
        }
        self.grads.resize_with(self.nodes.len(), || None);
        self.folded.clear();
        self.folded.resize(self.nodes.len(), false);
        self.transposes.clear();
        if !self.nodes[loss].requires_grad {
            return;
        }
        let mut seed = self.pool.take(1, 1);
        seed.fill(1.0);
        self.grads[loss.index()] = Some(seed);

        for i in (0..=loss.index()).rev() {
            if !self.nodes[i].requires_grad {
                continue;
            }
            let Some(g) = self.grads[i].take() else {
                continue;
            };
            let mut sink = GradSink {
                nodes: &self.nodes,
                grads: &mut self.grads,
                folded: &mut self.folded,
                transposes: &mut self.transposes,
                pool: &mut self.pool,
            };
            crate::ops::backward_node(
                &self.nodes[i].op,
                i,
                &self.nodes,
                &self.input_lists,
                &g,
                &mut sink,
                grads,
            );
            // Only variables keep their adjoint for `Tape::grad`. Every other adjoint goes back to
            // the pool at once, so the next adjoint of its size is written into a buffer that is
            // still in cache instead of a cold one.
            if matches!(self.nodes[i].op, Op::Variable) {
                self.grads[i] = Some(g);
            } else {
                self.pool.give(g);
            }
        }
    }
}

/// An adjoint buffer and whether it is fresh (its contents unspecified: write, do not add).
pub type Slot<'a> = (&'a mut Array2<f32>, bool);

/// Where backward rules write adjoints: the first write to an input's adjoint takes a pooled buffer
/// and overwrites it (`fresh == true`), later writes add into it.
pub struct GradSink<'a> {
    pub(crate) nodes: &'a [Node],
    pub(crate) grads: &'a mut Vec<Option<Array2<f32>>>,
    pub(crate) folded: &'a mut [bool],
    pub(crate) transposes: &'a mut Vec<(usize, Vec<f32>)>,
    pub(crate) pool: &'a mut BufferPool,
}

impl GradSink<'_> {
    /// The activation of `v`'s fused layer when the backward rule that is about to write `v`'s
    /// adjoint may *fold* that activation's derivative into it (write `g ⊙ act'(v)` instead of `g`,
    /// then mark it with [`GradSink::mark_folded`]): `v` is the output of an [`Op::LinearAct`],
    /// read by this one op only, and no adjoint has reached it yet. The layer's own backward rule
    /// then skips its pass `g ⊙ act'(y)` over memory.
    pub(crate) fn fold_activation(&self, v: Var) -> Option<crate::ops::Unary> {
        let node = &self.nodes[v.index()];
        match node.op {
            Op::LinearAct { act, .. } if node.consumers == 1 && self.grads[v.index()].is_none() => {
                Some(act)
            }
            _ => None,
        }
    }

    /// `wᵀ` for node `w` (value `n×k`, so `wᵀ: k×n`), made at its first use in this backward pass
    /// and kept for the next (the same weight is read once per period). Hand it back with
    /// [`GradSink::keep_transpose`].
    pub(crate) fn transpose(&mut self, w: Var) -> Vec<f32> {
        let i = w.index();
        if let Some(at) = self.transposes.iter().position(|(j, _)| *j == i) {
            return self.transposes.swap_remove(at).1;
        }
        let value = &self.nodes[i].value;
        let (n, k) = value.dim();
        let mut bt = Vec::new();
        crate::gemm::transpose(&mut bt, value.as_slice().expect("standard layout"), k, n);
        bt
    }

    /// Keeps `wᵀ` (from [`GradSink::transpose`]) for the rest of this backward pass.
    pub(crate) fn keep_transpose(&mut self, w: Var, bt: Vec<f32>) {
        self.transposes.push((w.index(), bt));
    }

    /// Records that `v`'s adjoint already holds the derivative of its activation.
    pub(crate) fn mark_folded(&mut self, v: Var) {
        self.folded[v.index()] = true;
    }

    /// True when node `i`'s adjoint was delivered with its activation's derivative folded in.
    pub(crate) fn is_folded(&self, i: usize) -> bool {
        self.folded[i]
    }

    /// True when a gradient must be delivered to `v`.
    pub fn wants(&self, v: Var) -> bool {
        self.nodes[v.index()].requires_grad
    }

    /// The adjoint buffer of `v` and whether it is fresh (contents unspecified: overwrite, don't add).
    pub fn slot(&mut self, v: Var) -> (&mut Array2<f32>, bool) {
        let i = v.index();
        let fresh = self.grads[i].is_none();
        if fresh {
            let (r, c) = self.nodes[i].value.dim();
            self.grads[i] = Some(self.pool.take(r, c));
        }
        (self.grads[i].as_mut().expect("slot was just filled"), fresh)
    }

    /// [`GradSink::slot`] for two different nodes at once (a layer's weight and bias, written in
    /// one pass).
    pub fn slot_pair(&mut self, v: Var, u: Var) -> (Slot<'_>, Slot<'_>) {
        let (i, j) = (v.index(), u.index());
        assert_ne!(i, j, "slot_pair: two different nodes");
        let fresh_v = self.slot(v).1;
        let fresh_u = self.slot(u).1;
        let (low, high) = self.grads.split_at_mut(i.max(j));
        let (at_low, at_high) = (low[i.min(j)].as_mut(), high[0].as_mut());
        let (at_low, at_high) = (
            at_low.expect("slot was just filled"),
            at_high.expect("slot was just filled"),
        );
        if i < j {
            ((at_low, fresh_v), (at_high, fresh_u))
        } else {
            ((at_high, fresh_v), (at_low, fresh_u))
        }
    }

    /// A scratch buffer from the pool (give it back with [`GradSink::give`]).
    pub fn scratch(&mut self, rows: usize, cols: usize) -> Array2<f32> {
        self.pool.take(rows, cols)
    }

    /// Returns a scratch buffer to the pool.
    pub fn give(&mut self, a: Array2<f32>) {
        self.pool.give(a);
    }

    /// Takes `v`'s adjoint out of the sink if it has one (its slot becomes empty): custom ops
    /// borrow it to add into, and [`GradSink::accumulate_owned`] puts it back.
    pub fn take_existing(&mut self, v: Var) -> Option<Array2<f32>> {
        self.grads[v.index()].take()
    }

    /// Hands a finished adjoint contribution for `v` over: stored as is if `v` has none yet,
    /// otherwise added and the buffer recycled.
    pub fn accumulate_owned(&mut self, v: Var, delta: Array2<f32>) {
        let i = v.index();
        match self.grads[i].as_mut() {
            None => self.grads[i] = Some(delta),
            Some(dst) => {
                *dst += &delta;
                self.pool.give(delta);
            }
        }
    }

    /// Adds (or writes, if fresh) a whole array into the adjoint of `v`.
    pub fn accumulate(&mut self, v: Var, delta: &Array2<f32>) {
        let (dst, fresh) = self.slot(v);
        if fresh {
            dst.assign(delta);
        } else {
            *dst += delta;
        }
    }
}
