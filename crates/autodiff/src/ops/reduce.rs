//! Reductions (sums and means over everything, each row or each column) and the row softmax,
//! forward and backward.

use super::{Backward, Op};
use crate::tape::{GradSink, Tape, Var};

/// Which reduction an [`Op::Reduce`] performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// Sum of all elements → `(1, 1)`.
    SumAll,
    /// Mean of all elements → `(1, 1)`.
    MeanAll,
    /// Sum of each row → `(r, 1)`.
    RowSums,
    /// Mean of each row → `(r, 1)`.
    RowMeans,
    /// Sum of each column → `(1, c)`.
    ColSums,
    /// Mean of each column → `(1, c)`.
    ColMeans,
}

impl Tape {
    // ---- reductions -----------------------------------------------------------------------------

    /// A sum or mean over all elements, rows or columns.
    pub fn reduce(&mut self, kind: Reduce, x: Var) -> Var {
        let v = &self.nodes[x].value;
        let (r, c) = v.dim();
        let out = match kind {
            Reduce::SumAll | Reduce::MeanAll => {
                let total: f64 = v.iter().map(|&e| e as f64).sum();
                let total = if kind == Reduce::MeanAll {
                    total / (r * c) as f64
                } else {
                    total
                };
                let mut o = self.pool.take(1, 1);
                o[[0, 0]] = total as f32;
                o
            }
            Reduce::RowSums | Reduce::RowMeans => {
                let div = if kind == Reduce::RowMeans {
                    c as f32
                } else {
                    1.0
                };
                let mut o = self.pool.take(r, 1);
                for (o, row) in o.iter_mut().zip(v.rows()) {
                    *o = row.sum() / div;
                }
                o
            }
            Reduce::ColSums | Reduce::ColMeans => {
                let div = if kind == Reduce::ColMeans {
                    r as f32
                } else {
                    1.0
                };
                let mut o = self.pool.take(1, c);
                o.fill(0.0);
                for row in v.rows() {
                    o.row_mut(0).zip_mut_with(&row, |a, &b| *a += b);
                }
                o.mapv_inplace(|e| e / div);
                o
            }
        };
        let rg = self.rg(x);
        self.push(Op::Reduce { kind, x }, out, rg)
    }
    /// Sum of all elements → `(1, 1)`.
    pub fn sum_all(&mut self, x: Var) -> Var {
        self.reduce(Reduce::SumAll, x)
    }
    /// Mean of all elements → `(1, 1)`.
    pub fn mean_all(&mut self, x: Var) -> Var {
        self.reduce(Reduce::MeanAll, x)
    }
    /// Sum of each row → `(r, 1)`.
    pub fn row_sums(&mut self, x: Var) -> Var {
        self.reduce(Reduce::RowSums, x)
    }
    /// Mean of each row → `(r, 1)`.
    pub fn row_means(&mut self, x: Var) -> Var {
        self.reduce(Reduce::RowMeans, x)
    }
    /// Sum of each column → `(1, c)`.
    pub fn col_sums(&mut self, x: Var) -> Var {
        self.reduce(Reduce::ColSums, x)
    }
    /// Mean of each column → `(1, c)`.
    pub fn col_means(&mut self, x: Var) -> Var {
        self.reduce(Reduce::ColMeans, x)
    }
}

impl Tape {
    /// Softmax over each row (max-subtracted, stable).
    pub fn softmax_rows(&mut self, x: Var) -> Var {
        let mut out = self.pool.take_like(&self.nodes[x].value);
        out.assign(&self.nodes[x].value);
        for mut row in out.rows_mut() {
            let m = row.fold(f32::NEG_INFINITY, |m, &e| m.max(e));
            row.mapv_inplace(|e| (e - m).exp());
            let total = row.sum();
            row.mapv_inplace(|e| e / total);
        }
        let rg = self.rg(x);
        self.push(Op::SoftmaxRows { x }, out, rg)
    }
}

/// The backward rules of the reductions: push the adjoint `g` of the node to its inputs.
pub(super) fn backward(op: &Op, at: &Backward, sink: &mut GradSink) {
    let Backward { g, out, .. } = *at;
    let val = |v: Var| at.val(v);
    match op {
        Op::Reduce { kind, x } => {
            if sink.wants(*x) {
                let (r, c) = val(*x).dim();
                let (dst, fresh) = sink.slot(*x);
                match kind {
                    Reduce::SumAll | Reduce::MeanAll => {
                        let scale = if *kind == Reduce::MeanAll {
                            1.0 / (r * c) as f32
                        } else {
                            1.0
                        };
                        let v = g[[0, 0]] * scale;
                        if fresh {
                            dst.fill(v);
                        } else {
                            dst.mapv_inplace(|d| d + v);
                        }
                    }
                    Reduce::RowSums | Reduce::RowMeans => {
                        let scale = if *kind == Reduce::RowMeans {
                            1.0 / c as f32
                        } else {
                            1.0
                        };
                        for (mut row, &gi) in dst.rows_mut().into_iter().zip(g.iter()) {
                            let v = gi * scale;
                            if fresh {
                                row.fill(v);
                            } else {
                                row.mapv_inplace(|d| d + v);
                            }
                        }
                    }
                    Reduce::ColSums | Reduce::ColMeans => {
                        let scale = if *kind == Reduce::ColMeans {
                            1.0 / r as f32
                        } else {
                            1.0
                        };
                        let grow = g.row(0);
                        for mut row in dst.rows_mut() {
                            if fresh {
                                row.zip_mut_with(&grow, |d, &e| *d = e * scale);
                            } else {
                                row.zip_mut_with(&grow, |d, &e| *d += e * scale);
                            }
                        }
                    }
                }
            }
        }

        Op::SoftmaxRows { x } => {
            // dx = y ⊙ (g − Σ_j g_j y_j), row by row
            if sink.wants(*x) {
                let (dst, fresh) = sink.slot(*x);
                for ((mut drow, grow), yrow) in
                    dst.rows_mut().into_iter().zip(g.rows()).zip(out.rows())
                {
                    let dot: f32 = grow.iter().zip(yrow.iter()).map(|(a, b)| a * b).sum();
                    for ((d, &gi), &yi) in drow.iter_mut().zip(grow.iter()).zip(yrow.iter()) {
                        let v = yi * (gi - dot);
                        if fresh {
                            *d = v;
                        } else {
                            *d += v;
                        }
                    }
                }
            }
        }

        _ => unreachable!("{} is not one of the reductions", op.name()),
    }
}
