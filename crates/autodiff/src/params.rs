//! Parameters live outside the tape. A [`ParamStore`] owns the values of every trainable tensor of a
//! model; a [`Grads`] holds one gradient buffer per parameter. The tape only borrows the values (it
//! copies a parameter into a node when the parameter is first used after a reset), so several tapes,
//! one per batch shard, can share one store and each fill their own `Grads`.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Index of a parameter in a [`ParamStore`]. `Copy`, cheap, and stable for the life of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ParamId(pub u32);

impl ParamId {
    /// The position of this parameter in its store.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The trainable tensors of a model, each with a name (for reports and checkpoints).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamStore {
    names: Vec<String>,
    values: Vec<Array2<f32>>,
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a parameter and returns its id.
    pub fn add(&mut self, name: impl Into<String>, value: Array2<f32>) -> ParamId {
        let value = if value.is_standard_layout() {
            value
        } else {
            value.as_standard_layout().into_owned()
        };
        self.names.push(name.into());
        self.values.push(value);
        ParamId(self.values.len() as u32 - 1)
    }

    /// Number of parameter tensors.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the store holds no parameter.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Total number of scalars over all parameters.
    pub fn num_scalars(&self) -> usize {
        self.values.iter().map(|v| v.len()).sum()
    }

    /// All ids, in insertion order.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> + '_ {
        (0..self.values.len() as u32).map(ParamId)
    }

    /// The value of a parameter.
    pub fn value(&self, id: ParamId) -> &Array2<f32> {
        &self.values[id.index()]
    }

    /// The value of a parameter, mutable (for initialisation and optimizers).
    pub fn value_mut(&mut self, id: ParamId) -> &mut Array2<f32> {
        &mut self.values[id.index()]
    }

    /// The name given at [`ParamStore::add`].
    pub fn name(&self, id: ParamId) -> &str {
        &self.names[id.index()]
    }

    /// Looks a parameter up by name.
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| ParamId(i as u32))
    }

    /// A zeroed gradient buffer for every parameter.
    pub fn zero_grads(&self) -> Grads {
        Grads {
            values: self
                .values
                .iter()
                .map(|v| Array2::zeros(v.raw_dim()))
                .collect(),
        }
    }

    /// True when `other` has the same parameter names and shapes in the same order.
    pub fn same_layout(&self, other: &ParamStore) -> bool {
        self.names == other.names
            && self.values.len() == other.values.len()
            && self
                .values
                .iter()
                .zip(&other.values)
                .all(|(a, b)| a.dim() == b.dim())
    }
}

/// One gradient tensor per parameter of a [`ParamStore`], in the same order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grads {
    values: Vec<Array2<f32>>,
}

impl Grads {
    /// The gradient of one parameter.
    pub fn get(&self, id: ParamId) -> &Array2<f32> {
        &self.values[id.index()]
    }

    /// The gradient of one parameter, mutable.
    pub fn get_mut(&mut self, id: ParamId) -> &mut Array2<f32> {
        &mut self.values[id.index()]
    }

    /// Iterates over the gradient tensors in parameter order.
    pub fn iter(&self) -> impl Iterator<Item = &Array2<f32>> {
        self.values.iter()
    }

    /// Sets every gradient to zero (keeps the buffers).
    pub fn zero(&mut self) {
        for g in &mut self.values {
            g.fill(0.0);
        }
    }

    /// `self += other`, element by element (used to reduce shard gradients in a fixed order).
    pub fn add_assign(&mut self, other: &Grads) {
        for (a, b) in self.values.iter_mut().zip(&other.values) {
            *a += b;
        }
    }

    /// Multiplies every gradient by `factor`.
    pub fn scale(&mut self, factor: f32) {
        for g in &mut self.values {
            g.mapv_inplace(|x| x * factor);
        }
    }

    /// The global L2 norm over all gradients (accumulated in f64).
    pub fn global_norm(&self) -> f64 {
        self.values
            .iter()
            .flat_map(|g| g.iter())
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt()
    }

    /// True when every entry is finite.
    pub fn all_finite(&self) -> bool {
        self.values.iter().all(|g| g.iter().all(|x| x.is_finite()))
    }
}
