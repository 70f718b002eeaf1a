//! Step 1 of `docs/autodiff.md`: reverse-mode automatic differentiation on scalars, in one page.
//!
//! A `Tape` is a `Vec` of nodes in the order they were computed. A `Var` is the index of a node:
//! it is `Copy`, so there is no `Rc`, no `RefCell` and no lifetime to fight. Every node remembers
//! its op and its inputs; `backward` walks the tape from the end and applies the chain rule.
//!
//! Run: `cargo run --release -p hdpo-autodiff --example scalar_tape`

/// Handle of a node: its position on the tape.
#[derive(Clone, Copy, Debug)]
struct Var(usize);

/// What produced a node. The inputs are handles to earlier nodes.
#[derive(Clone, Copy, Debug)]
enum Op {
    Input,
    Add(Var, Var),
    Mul(Var, Var),
    Tanh(Var),
    Relu(Var),
    Exp(Var),
}

#[derive(Default)]
struct Tape {
    ops: Vec<Op>,
    values: Vec<f64>,
}

impl Tape {
    fn push(&mut self, op: Op, value: f64) -> Var {
        self.ops.push(op);
        self.values.push(value);
        Var(self.values.len() - 1)
    }
    fn value(&self, v: Var) -> f64 {
        self.values[v.0]
    }

    // ---- forward: compute the value now, remember how it was made --------------------------------
    fn input(&mut self, x: f64) -> Var {
        self.push(Op::Input, x)
    }
    fn add(&mut self, a: Var, b: Var) -> Var {
        self.push(Op::Add(a, b), self.value(a) + self.value(b))
    }
    fn mul(&mut self, a: Var, b: Var) -> Var {
        self.push(Op::Mul(a, b), self.value(a) * self.value(b))
    }
    fn tanh(&mut self, a: Var) -> Var {
        self.push(Op::Tanh(a), self.value(a).tanh())
    }
    fn relu(&mut self, a: Var) -> Var {
        self.push(Op::Relu(a), self.value(a).max(0.0))
    }
    fn exp(&mut self, a: Var) -> Var {
        self.push(Op::Exp(a), self.value(a).exp())
    }

    // ---- backward: the same ops, in the same order, each pushing its adjoint to its inputs -------
    /// Returns `adj` with `adj[i] = d(loss)/d(node i)`.
    fn backward(&self, loss: Var) -> Vec<f64> {
        let mut adj = vec![0.0; self.values.len()];
        adj[loss.0] = 1.0; // d(loss)/d(loss)
        // Every node was pushed after its inputs, so walking the indices backwards visits a node only
        // once all of its consumers have added their share to its adjoint.
        for i in (0..=loss.0).rev() {
            let g = adj[i]; // d(loss)/d(node i), complete by now
            let y = self.values[i];
            match self.ops[i] {
                Op::Input => {}
                // y = a + b:   dy/da = 1, dy/db = 1
                Op::Add(a, b) => {
                    adj[a.0] += g;
                    adj[b.0] += g;
                }
                // y = a · b:   dy/da = b, dy/db = a
                Op::Mul(a, b) => {
                    adj[a.0] += g * self.value(b);
                    adj[b.0] += g * self.value(a);
                }
                // y = tanh a:  dy/da = 1 − y²
                Op::Tanh(a) => adj[a.0] += g * (1.0 - y * y),
                // y = max(a, 0):  dy/da = 1 if a > 0, else 0 (0 at the kink, as in PyTorch)
                Op::Relu(a) => adj[a.0] += if self.value(a) > 0.0 { g } else { 0.0 },
                // y = eᵃ:      dy/da = y
                Op::Exp(a) => adj[a.0] += g * y,
            }
        }
        adj
    }
}

/// The function of the demo: f(x, w, b) = tanh(w·x + b) · eˣ + relu(x · b). Note that `x` is used
/// three times: its adjoint is the sum of three paths, hence the `+=` above.
fn f(t: &mut Tape, x: Var, w: Var, b: Var) -> Var {
    let wx = t.mul(w, x);
    let z = t.add(wx, b);
    let h = t.tanh(z);
    let e = t.exp(x);
    let he = t.mul(h, e);
    let xb = t.mul(x, b);
    let r = t.relu(xb);
    t.add(he, r)
}

fn main() {
    let inputs = [0.5, -1.5, 2.0]; // x, w, b
    let mut t = Tape::default();
    let vars: Vec<Var> = inputs.iter().map(|&v| t.input(v)).collect();
    let out = f(&mut t, vars[0], vars[1], vars[2]);
    let adj = t.backward(out);
    println!(
        "f(x, w, b) = {:.6}   ({} nodes on the tape)",
        t.value(out),
        t.ops.len()
    );

    // Check every partial derivative against a central finite difference (f evaluated twice).
    let eval = |xs: [f64; 3]| {
        let mut t = Tape::default();
        let (x, w, b) = (t.input(xs[0]), t.input(xs[1]), t.input(xs[2]));
        let y = f(&mut t, x, w, b);
        t.value(y)
    };
    let h = 1e-6;
    for (k, name) in ["x", "w", "b"].iter().enumerate() {
        let (mut plus, mut minus) = (inputs, inputs);
        plus[k] += h;
        minus[k] -= h;
        let numeric = (eval(plus) - eval(minus)) / (2.0 * h);
        let analytic = adj[vars[k].0];
        println!("df/d{name}: tape {analytic:+.9}   finite difference {numeric:+.9}");
        assert!(
            (analytic - numeric).abs() < 1e-6,
            "gradient of {name} is wrong"
        );
    }
}
