//! Graphviz output of a recorded graph, for teaching and debugging: `tape.to_dot()` then
//! `dot -Tsvg graph.dot > graph.svg`.

use crate::ops::Op;
use crate::tape::Tape;
use std::fmt::Write;

impl Tape {
    /// The recorded graph as Graphviz DOT: one box per node with its op name and shape, an arrow
    /// from each input to its consumer. Parameters are drawn green, inputs grey.
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph tape {\n  rankdir=LR;\n  node [shape=box, fontname=monospace];\n",
        );
        for (i, node) in self.nodes.iter().enumerate() {
            let (r, c) = node.value.dim();
            let color = match node.op {
                Op::Param(_) => ", style=filled, fillcolor=palegreen",
                Op::Constant | Op::Variable => ", style=filled, fillcolor=lightgrey",
                _ => "",
            };
            let _ = writeln!(
                out,
                "  n{i} [label=\"#{i} {}\\n{r}×{c}\"{color}];",
                node.op.name()
            );
            for input in node.op.inputs(&self.input_lists) {
                let _ = writeln!(out, "  n{} -> n{i};", input.index());
            }
        }
        out.push_str("}\n");
        out
    }
}
