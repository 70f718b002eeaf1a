//! Ops that move elements without arithmetic on them, and the two pipeline ops: column
//! concatenation and slices, reshape, the pipeline advance [`Tape::shift_left`] and
//! [`Tape::add_at_column`] (an order landing in its lead-time slot), forward and backward.

use super::{Backward, Op};
use crate::kernels;
use crate::tape::{GradSink, Tape, Var};
use ndarray::{Array2, s};
use std::sync::Arc;

impl Tape {
    // ---- layout ---------------------------------------------------------------------------------

    /// Concatenates inputs with equal row counts side by side.
    pub fn concat_cols(&mut self, parts: &[Var]) -> Var {
        assert!(!parts.is_empty(), "concat_cols: no inputs");
        let r = self.shape(parts[0]).0;
        for &p in parts {
            assert_eq!(self.shape(p).0, r, "concat_cols: row counts differ");
        }
        self.pack_cols(parts, r)
    }

    /// Concatenates the parts side by side after viewing each one's row-major data as `rows`
    /// rows: a part of `n` elements contributes `n / rows` columns. One node for what would be a
    /// [`Tape::reshape`] of each part and a [`Tape::concat_cols`] — e.g. the `(B·E, L)` pipelines
    /// of `E` echelons become `E·L` columns of their sample's row. Same values and gradients.
    ///
    /// # Panics
    /// If there are no parts or a part's element count is not a multiple of `rows`.
    pub fn pack_cols(&mut self, parts: &[Var], rows: usize) -> Var {
        assert!(
            !parts.is_empty() && rows > 0,
            "pack_cols: no inputs or no rows"
        );
        let width = |v: &Array2<f32>| {
            assert!(
                v.len().is_multiple_of(rows),
                "pack_cols: a part of {} elements is not {rows} rows",
                v.len()
            );
            v.len() / rows
        };
        let c: usize = parts.iter().map(|&p| width(&self.nodes[p].value)).sum();
        let mut out = self.pool.take(rows, c);
        let o = out.as_slice_mut().expect("standard layout");
        let mut col = 0;
        for &p in parts {
            let v = &self.nodes[p].value;
            let w = width(v);
            let vs = v.as_slice().expect("standard layout");
            kernels::copy_columns((o, c, col), (vs, w, 0), w, false);
            col += w;
        }
        let rg = parts.iter().any(|&p| self.rg(p));
        let (start, len) = self.push_inputs(parts);
        self.push(Op::Concat { start, len }, out, rg)
    }

    /// Columns `start .. start + width` of `x`.
    pub fn slice_cols(&mut self, x: Var, start: usize, width: usize) -> Var {
        let (r, c) = self.shape(x);
        assert!(
            start + width <= c,
            "slice_cols: {start}+{width} > {c} columns"
        );
        let mut out = self.pool.take(r, width);
        let xs = self.nodes[x].value.as_slice().expect("standard layout");
        let o = out.as_slice_mut().expect("standard layout");
        kernels::copy_columns((o, width, 0), (xs, c, start), width, false);
        let rg = self.rg(x);
        self.push(Op::SliceCols { x, start }, out, rg)
    }

    /// Column `j` of `x` as an `(r, 1)` tensor.
    pub fn column(&mut self, x: Var, j: usize) -> Var {
        self.slice_cols(x, j, 1)
    }

    /// Reinterprets the row-major data of `x` with a new shape (same element count). To the
    /// same shape it is `x` itself (no copy, no node).
    pub fn reshape(&mut self, x: Var, rows: usize, cols: usize) -> Var {
        let (r, c) = self.shape(x);
        assert_eq!(r * c, rows * cols, "reshape: {r}x{c} into {rows}x{cols}");
        if (r, c) == (rows, cols) {
            return x;
        }
        let mut out = self.pool.take(rows, cols);
        out.as_slice_mut()
            .expect("standard layout")
            .copy_from_slice(self.nodes[x].value.as_slice().expect("standard layout"));
        let rg = self.rg(x);
        self.push(Op::Reshape { x }, out, rg)
    }
}

impl Tape {
    // ---- pipeline ops ---------------------------------------------------------------------------

    /// Advances pipelines one period: column `j` ← column `j + 1`, the last column ← 0.
    pub fn shift_left(&mut self, x: Var) -> Var {
        let (r, c) = self.shape(x);
        let mut out = self.pool.take(r, c);
        out.slice_mut(s![.., ..c - 1])
            .assign(&self.nodes[x].value.slice(s![.., 1..]));
        out.column_mut(c - 1).fill(0.0);
        let rg = self.rg(x);
        self.push(Op::ShiftLeft { x }, out, rg)
    }

    /// `x` with `v[i]` (`v: (r, 1)`) added at column `cols[i]` of row `i`: an order arriving in the
    /// pipeline slot of its lead time (slot `lead_time − 1`).
    pub fn add_at_column(&mut self, x: Var, v: Var, cols: Arc<[u32]>) -> Var {
        let (r, c) = self.shape(x);
        assert_eq!(self.shape(v), (r, 1), "add_at_column: v must be ({r}, 1)");
        assert_eq!(cols.len(), r, "add_at_column: one column index per row");
        let mut out = self.pool.take(r, c);
        out.assign(&self.nodes[x].value);
        let vv = &self.nodes[v].value;
        for (i, &col) in cols.iter().enumerate() {
            assert!((col as usize) < c, "add_at_column: column {col} out of {c}");
            out[[i, col as usize]] += vv[[i, 0]];
        }
        let rg = self.rg(x) || self.rg(v);
        self.push(Op::AddAtColumn { x, v, cols }, out, rg)
    }
}

/// The backward rules of the shape and pipeline ops: push the adjoint `g` of the node to its inputs.
pub(super) fn backward(op: &Op, at: &Backward, sink: &mut GradSink) {
    let Backward { lists, g, .. } = *at;
    let val = |v: Var| at.val(v);
    match op {
        Op::Concat { start, len } => {
            let (gs, c) = (g.as_slice().expect("standard layout"), g.ncols());
            let mut col = 0;
            for &p in &lists[*start as usize..(*start + *len) as usize] {
                // each part as g's rows (see `pack_cols`)
                let w = val(p).len() / g.nrows();
                if sink.wants(p) {
                    // the part's columns of g, written or added into its adjoint
                    let (dst, fresh) = sink.slot(p);
                    let d = dst.as_slice_mut().expect("standard layout");
                    kernels::copy_columns((d, w, 0), (gs, c, col), w, !fresh);
                }
                col += w;
            }
        }

        Op::SliceCols { x, start } => {
            if sink.wants(*x) {
                let w = g.ncols();
                let (dst, fresh) = sink.slot(*x);
                if fresh {
                    dst.fill(0.0);
                }
                let c = dst.ncols();
                let d = dst.as_slice_mut().expect("standard layout");
                let gs = g.as_slice().expect("standard layout");
                kernels::copy_columns((d, c, *start), (gs, w, 0), w, true);
            }
        }

        Op::Reshape { x } => {
            if sink.wants(*x) {
                let (dst, fresh) = sink.slot(*x);
                let gs = g.as_slice().expect("standard layout");
                let d = dst.as_slice_mut().expect("standard layout");
                if fresh {
                    d.copy_from_slice(gs);
                } else {
                    d.iter_mut().zip(gs).for_each(|(d, &e)| *d += e);
                }
            }
        }

        Op::ShiftLeft { x } => {
            // out[:, j] = x[:, j+1]  ⇒  dx[:, j+1] += g[:, j], dx[:, 0] gets nothing
            if sink.wants(*x) {
                let c = g.ncols();
                let (dst, fresh) = sink.slot(*x);
                if fresh {
                    dst.column_mut(0).fill(0.0);
                    dst.slice_mut(s![.., 1..]).assign(&g.slice(s![.., ..c - 1]));
                } else {
                    let mut tail = dst.slice_mut(s![.., 1..]);
                    tail += &g.slice(s![.., ..c - 1]);
                }
            }
        }

        Op::AddAtColumn { x, v, cols } => {
            if sink.wants(*x) {
                sink.accumulate(*x, g);
            }
            if sink.wants(*v) {
                let (dst, fresh) = sink.slot(*v);
                for (i, &col) in cols.iter().enumerate() {
                    let e = g[[i, col as usize]];
                    if fresh {
                        dst[[i, 0]] = e;
                    } else {
                        dst[[i, 0]] += e;
                    }
                }
            }
        }

        _ => unreachable!("{} is not one of the shape and pipeline ops", op.name()),
    }
}
