//! Data-parallel gradients over batch shards. A batch is cut into a fixed number of shards; each
//! shard records its own tape on a rayon thread and writes its own [`Grads`]; the shard gradients are
//! then added **in shard order**. Because the shard count and the reduction order do not depend on
//! the number of threads, the result is bit-identical with 1 or 2 (or 64) threads.

use crate::params::{Grads, ParamStore};
use crate::tape::{Tape, Var};
use rayon::prelude::*;

/// One reusable tape and gradient buffer per shard (their buffer pools persist across steps).
pub struct ShardedTapes {
    tapes: Vec<Tape>,
    grads: Vec<Option<Grads>>,
}

impl ShardedTapes {
    /// `n_shards` empty tapes.
    pub fn new(n_shards: usize) -> Self {
        assert!(n_shards > 0, "at least one shard");
        ShardedTapes {
            tapes: (0..n_shards).map(|_| Tape::new()).collect(),
            grads: vec![None; n_shards],
        }
    }

    /// Number of shards.
    pub fn n_shards(&self) -> usize {
        self.tapes.len()
    }

    /// Runs `loss_of_shard(shard, tape, store)` on every shard in parallel, back-propagates each
    /// shard's loss, and returns the per-shard loss values and the gradient summed in shard order.
    /// The closure must build the shard's loss so that the shard losses **add up** to the batch
    /// loss (e.g. divide by the whole batch size, not the shard's).
    pub fn gradients<F>(&mut self, store: &ParamStore, loss_of_shard: F) -> (Vec<f32>, Grads)
    where
        F: Fn(usize, &mut Tape, &ParamStore) -> Var + Sync,
    {
        let (out, grads) = self
            .try_gradients(store, |k, tape, store| {
                Ok::<_, ()>((loss_of_shard(k, tape, store), ()))
            })
            .expect("infallible");
        (out.into_iter().map(|(loss, ())| loss).collect(), grads)
    }

    /// Like [`ShardedTapes::gradients`] for a fallible closure that also returns a per-shard value
    /// (e.g. the shard's reported cost). The first error in shard order is returned.
    pub fn try_gradients<F, T, E>(
        &mut self,
        store: &ParamStore,
        loss_of_shard: F,
    ) -> Result<(Vec<(f32, T)>, Grads), E>
    where
        F: Fn(usize, &mut Tape, &ParamStore) -> Result<(Var, T), E> + Sync,
        T: Send,
        E: Send,
    {
        let results: Vec<Result<(f32, T), E>> = self
            .tapes
            .par_iter_mut()
            .zip(self.grads.par_iter_mut())
            .enumerate()
            .map(|(shard, (tape, grads))| {
                tape.reset();
                let g = grads.get_or_insert_with(|| store.zero_grads());
                g.zero();
                let (loss, extra) = loss_of_shard(shard, tape, store)?;
                tape.backward(loss, g);
                Ok((tape.scalar(loss), extra))
            })
            .collect();
        let results: Vec<(f32, T)> = results.into_iter().collect::<Result<_, E>>()?;
        let mut total = self.grads[0].clone().expect("shard 0 ran");
        for g in self.grads[1..].iter().flatten() {
            total.add_assign(g);
        }
        Ok((results, total))
    }
}
