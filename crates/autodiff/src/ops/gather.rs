//! Message passing: [`Tape::gather_rows`] and the segment sum over a destination-sorted [`Csr`]
//! index, forward and backward.

use super::{Backward, Op};
use crate::tape::{GradSink, Tape, Var};
use std::sync::Arc;

/// A destination-sorted compressed sparse row index for [`Tape::segment_sum`]: output row `j`
/// sums input rows `sources[offsets[j] .. offsets[j + 1]]`, each times its weight (1 if none).
/// Summation order is fixed, so message passing is deterministic.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr {
    /// `n_out + 1` offsets into `sources`.
    pub offsets: Vec<u32>,
    /// Input row of each entry.
    pub sources: Vec<u32>,
    /// Optional weight of each entry (e.g. degree normalisation).
    pub weights: Option<Vec<f32>>,
}

impl Csr {
    /// Builds the index from `(destination, source, weight)` triples (any order; stable within a
    /// destination).
    pub fn from_triples(n_out: usize, triples: &[(u32, u32, f32)]) -> Csr {
        let mut sorted: Vec<(u32, u32, f32)> = triples.to_vec();
        sorted.sort_by_key(|t| t.0);
        let mut offsets = vec![0u32; n_out + 1];
        for t in &sorted {
            offsets[t.0 as usize + 1] += 1;
        }
        for j in 0..n_out {
            offsets[j + 1] += offsets[j];
        }
        Csr {
            offsets,
            sources: sorted.iter().map(|t| t.1).collect(),
            weights: Some(sorted.iter().map(|t| t.2).collect()),
        }
    }

    /// Number of output rows.
    pub fn n_out(&self) -> usize {
        self.offsets.len() - 1
    }

    #[inline(always)]
    fn weight(&self, k: usize) -> f32 {
        self.weights.as_ref().map_or(1.0, |w| w[k])
    }
}

impl Tape {
    // ---- gather / scatter (message passing) -----------------------------------------------------

    /// Output row `i` = row `index[i]` of `x`.
    pub fn gather_rows(&mut self, x: Var, index: Arc<[u32]>) -> Var {
        let (r, c) = self.shape(x);
        let mut out = self.pool.take(index.len(), c);
        let v = &self.nodes[x].value;
        for (i, &src) in index.iter().enumerate() {
            assert!(
                (src as usize) < r,
                "gather_rows: index {src} out of {r} rows"
            );
            out.row_mut(i).assign(&v.row(src as usize));
        }
        let rg = self.rg(x);
        self.push(Op::GatherRows { x, index }, out, rg)
    }

    /// Output row `j` = Σ over the CSR entries of `j` of `weight · x[source]` (segment sum).
    pub fn segment_sum(&mut self, x: Var, csr: Arc<Csr>) -> Var {
        let (r, c) = self.shape(x);
        let mut out = self.pool.take(csr.n_out(), c);
        out.fill(0.0);
        let v = &self.nodes[x].value;
        for j in 0..csr.n_out() {
            let mut dst = out.row_mut(j);
            for k in csr.offsets[j] as usize..csr.offsets[j + 1] as usize {
                let src = csr.sources[k] as usize;
                assert!(src < r, "segment_sum: source {src} out of {r} rows");
                let w = csr.weight(k);
                dst.zip_mut_with(&v.row(src), |d, &e| *d += w * e);
            }
        }
        let rg = self.rg(x);
        self.push(Op::SegmentSum { x, csr }, out, rg)
    }
}

/// The backward rules of the message-passing ops: push the adjoint `g` of the node to its inputs.
pub(super) fn backward(op: &Op, at: &Backward, sink: &mut GradSink) {
    let Backward { g, .. } = *at;
    match op {
        Op::GatherRows { x, index } => {
            if sink.wants(*x) {
                let (dst, fresh) = sink.slot(*x);
                if fresh {
                    dst.fill(0.0);
                }
                for (i, &src) in index.iter().enumerate() {
                    dst.row_mut(src as usize)
                        .zip_mut_with(&g.row(i), |d, &e| *d += e);
                }
            }
        }

        Op::SegmentSum { x, csr } => {
            if sink.wants(*x) {
                let (dst, fresh) = sink.slot(*x);
                if fresh {
                    dst.fill(0.0);
                }
                for j in 0..csr.n_out() {
                    let grow = g.row(j);
                    for k in csr.offsets[j] as usize..csr.offsets[j + 1] as usize {
                        let w = csr.weight(k);
                        dst.row_mut(csr.sources[k] as usize)
                            .zip_mut_with(&grow, |d, &e| *d += w * e);
                    }
                }
            }
        }

        _ => unreachable!("{} is not one of the message-passing ops", op.name()),
    }
}
