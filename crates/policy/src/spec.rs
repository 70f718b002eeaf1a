//! Policy specifications: the architecture and hyper-parameters of every policy, as plain serde
//! data (`kind = "..."` in TOML/JSON). A spec plus a [`hdpo_autodiff::ParamStore`] is a complete
//! policy; [`PolicySpec::default_for`] gives the reference's defaults (spec §6.2) for a setting.

use crate::mlp::Activation;
use crate::observation::NetworkShape;
use serde::{Deserialize, Serialize};

/// Every policy hdpo knows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// unknown keys in a `[policy]` table are errors, like everywhere in a configuration
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicySpec {
    /// MLP on the store pipelines of stores without a warehouse (§4.1), one output per store:
    /// `order = softplus(MLP(pipelines) + 1)` (the reference), or an order-up-to level
    /// ([`OneStoreOutput::Level`]).
    VanillaOneStore {
        /// Hidden widths (default `[32, 32, 32]`).
        hidden: Vec<usize>,
        /// Hidden activation (default ELU).
        activation: Activation,
        /// Pipelines are multiplied by this before the MLP (the reference: 1, no scaling).
        #[serde(default = "one")]
        input_scale: f32,
        /// What the MLP's output means; absent in older policy files: [`OneStoreOutput::Order`].
        /// Not written when it is `Order`, so configurations (and the fingerprints of
        /// `hdpo reproduce` cells) written before it existed stay the same.
        #[serde(default, skip_serializing_if = "OneStoreOutput::is_order")]
        output: OneStoreOutput,
        /// With [`OneStoreOutput::Level`], the level of the untrained net in units of stock (the
        /// output bias starts at `input_scale · initial_level`); ignored with
        /// [`OneStoreOutput::Order`]. Absent in older policy files: 0 (and not written when 0).
        #[serde(default, skip_serializing_if = "is_zero")]
        initial_level: f32,
    },
    /// One base-stock level for every store: `order = max(S − inventory position, 0)` (§4.2).
    BaseStock {
        /// Initial level `S` (takes effect, unlike the reference).
        initial_level: f32,
    },
    /// Base stock with a cap: `order = clamp(S − IP, 0, cap)` (§4.3).
    CappedBaseStock {
        /// Initial level.
        initial_level: f32,
        /// Initial cap.
        initial_cap: f32,
    },
    /// Echelon base-stock levels for a serial chain (§4.4).
    EchelonStock {
        /// Initial increments `x_k` (store first); `None` = the reference's `softplus(10)` each.
        initial_increments: Option<Vec<f32>>,
    },
    /// MLP for the serial chain: sigmoid shares of each location's upstream on-hand (§4.5).
    VanillaSerial {
        /// Hidden widths (default `[32, 32]`).
        hidden: Vec<usize>,
        /// Hidden activation.
        activation: Activation,
        /// Pipelines divided by the mean demand of the chain ([`crate::DemandScales`]) before the
        /// MLP. `false` (and absent in older policy files) is the reference: raw units.
        #[serde(default)]
        demand_scaling: bool,
    },
    /// MLP for warehouse(s) + stores, softmax allocation with a keep share (§4.6).
    VanillaWarehouse {
        /// Hidden widths (default `[512, 512, 512]`; transshipment `[256, 256, 256]`).
        hidden: Vec<usize>,
        /// Hidden activation.
        activation: Activation,
        /// Transshipment center: ships all of its stock.
        transshipment: bool,
        /// Pipelines divided by the mean demand their location serves ([`crate::DemandScales`])
        /// before the MLP. `false` (and absent in older policy files) is the reference: raw units.
        #[serde(default)]
        demand_scaling: bool,
    },
    /// The symmetry-aware network: context MLP, shared per-store MLP, warehouse MLP (§4.7).
    SymmetryAware {
        /// Context hidden widths (default `[256]`).
        context_hidden: Vec<usize>,
        /// Context size (default 256).
        context_size: usize,
        /// Per-store hidden widths (default `[32, 32]`).
        store_hidden: Vec<usize>,
        /// Warehouse hidden widths (default `[16, 16]`).
        warehouse_hidden: Vec<usize>,
        /// Transshipment center.
        transshipment: bool,
        /// Stores and the warehouse measured in units of the mean demand they serve
        /// ([`crate::DemandScales`]): pipelines divided by that scale, a store's mean shown relative
        /// to the average store and its std as a coefficient of variation, and each store's desired
        /// quantity `mean × softplus(·)`. `false` (and absent in older policy files) is the
        /// reference: raw units.
        #[serde(default)]
        demand_scaling: bool,
    },
    /// Graph message passing over the network topology (§4.8).
    Gnn {
        /// Embedding width (default 32).
        width: usize,
        /// Hidden widths of each of the five MLPs (default `[32, 32]`).
        hidden: Vec<usize>,
        /// Message-passing rounds; `None` = `E + 1` for serial chains, 1 otherwise.
        rounds: Option<usize>,
        /// Transshipment center.
        transshipment: bool,
        /// Initial bias of the output head (default 5.0).
        output_bias: f32,
        /// Measure every node in units of the mean demand it serves (a store: its mean; a
        /// warehouse or echelon: the mean demand of the stores below it): pipelines are divided by
        /// that scale before the network, and each edge's desired flow is `scale × softplus(·)`,
        /// so an untrained net with output bias `ln(e − 1)` asks for about one period of mean
        /// demand on every edge. `false` (and absent in older policy files) is the reference: raw
        /// units in and out.
        #[serde(default)]
        demand_scaling: bool,
    },
    /// MLP over pipelines, past demands and costs (§4.9), for real data.
    DataDriven {
        /// Hidden widths (default `[64, 64]`).
        hidden: Vec<usize>,
        /// Hidden activation.
        activation: Activation,
    },
    /// Non-admissible oracle: orders exactly the demand that its order will meet (§4.11). A struct
    /// variant without fields (not a unit variant) so that serde rejects unknown keys in its table
    /// too; it reads and writes as `kind = "just_in_time"` either way.
    JustInTime {},
}

fn one() -> f32 {
    1.0
}

fn is_zero(x: &f32) -> bool {
    *x == 0.0
}

/// What the output of the one-store MLP ([`PolicySpec::VanillaOneStore`]) means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OneStoreOutput {
    /// The order: `order = softplus(MLP(x) + 1)` in units of stock (the reference).
    #[default]
    Order,
    /// An order-up-to level measured like the inputs: with `u` the input scale and `IP` the
    /// store's inventory position (the sum of its pipeline), `order = max(MLP(u · x) − u · IP, 0) / u`.
    /// A net whose output does not depend on the state is a base-stock policy, so the optimal
    /// policy of a backlogged store is in the family exactly.
    Level,
}

impl OneStoreOutput {
    /// True for [`OneStoreOutput::Order`] (the default, not written to files).
    pub fn is_order(&self) -> bool {
        *self == OneStoreOutput::Order
    }
}

/// One line per policy kind, for `hdpo policies`.
pub const POLICY_KINDS: &[(&str, &str)] = &[
    (
        "vanilla_one_store",
        "MLP 3×32 ELU on the pipelines of stores without a warehouse",
    ),
    (
        "base_stock",
        "one trainable base-stock level (optimal for backlogged one-store)",
    ),
    (
        "capped_base_stock",
        "trainable base-stock level and order cap",
    ),
    (
        "echelon_stock",
        "trainable echelon base-stock levels for the serial chain (optimal there)",
    ),
    (
        "vanilla_serial",
        "MLP 2×32 ELU, sigmoid shares of upstream stock, serial chain",
    ),
    (
        "vanilla_warehouse",
        "MLP ELU (3×256 by default) with softmax allocation, warehouse(s) + stores",
    ),
    (
        "symmetry_aware",
        "context net + shared per-store net + warehouse net, one warehouse",
    ),
    (
        "gnn",
        "graph message passing over the network topology, any network",
    ),
    ("data_driven", "MLP over pipelines, past demands and costs"),
    (
        "just_in_time",
        "non-admissible oracle: orders the demand it will meet (a bound, not a policy)",
    ),
];

impl PolicySpec {
    /// The snake_case kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            PolicySpec::VanillaOneStore { .. } => "vanilla_one_store",
            PolicySpec::BaseStock { .. } => "base_stock",
            PolicySpec::CappedBaseStock { .. } => "capped_base_stock",
            PolicySpec::EchelonStock { .. } => "echelon_stock",
            PolicySpec::VanillaSerial { .. } => "vanilla_serial",
            PolicySpec::VanillaWarehouse { .. } => "vanilla_warehouse",
            PolicySpec::SymmetryAware { .. } => "symmetry_aware",
            PolicySpec::Gnn { .. } => "gnn",
            PolicySpec::DataDriven { .. } => "data_driven",
            PolicySpec::JustInTime { .. } => "just_in_time",
        }
    }

    /// The default spec of a policy kind for a network (hyper-parameters of spec §6.2).
    /// `transshipment` marks a transshipment center.
    pub fn default_for(
        kind: &str,
        shape: &NetworkShape,
        transshipment: bool,
    ) -> Option<PolicySpec> {
        let elu = Activation::Elu;
        Some(match kind {
            "vanilla_one_store" => PolicySpec::VanillaOneStore {
                hidden: vec![32, 32, 32],
                activation: elu,
                input_scale: 1.0,
                output: OneStoreOutput::Order,
                initial_level: 0.0,
            },
            "base_stock" => PolicySpec::BaseStock {
                initial_level: 10.0,
            },
            "capped_base_stock" => PolicySpec::CappedBaseStock {
                initial_level: 10.0,
                initial_cap: 10.0,
            },
            "echelon_stock" => PolicySpec::EchelonStock {
                initial_increments: None,
            },
            "vanilla_serial" => PolicySpec::VanillaSerial {
                hidden: vec![32, 32],
                activation: elu,
                demand_scaling: false,
            },
            "vanilla_warehouse" => PolicySpec::VanillaWarehouse {
                hidden: if transshipment {
                    vec![256, 256, 256]
                } else {
                    vec![512, 512, 512]
                },
                activation: elu,
                transshipment,
                demand_scaling: false,
            },
            "symmetry_aware" => PolicySpec::SymmetryAware {
                context_hidden: vec![256],
                context_size: 256,
                store_hidden: vec![32, 32],
                warehouse_hidden: vec![16, 16],
                transshipment,
                demand_scaling: false,
            },
            "gnn" => PolicySpec::Gnn {
                width: 32,
                hidden: vec![32, 32],
                rounds: None,
                transshipment,
                output_bias: 5.0,
                demand_scaling: false,
            },
            "data_driven" => PolicySpec::DataDriven {
                hidden: vec![64, 64],
                activation: elu,
            },
            "just_in_time" => PolicySpec::JustInTime {},
            _ => return None,
        })
        .filter(|_| shape.n_stores > 0)
    }

    /// The reference's learning rate for this policy (spec §6.2).
    pub fn default_learning_rate(&self) -> f32 {
        match self {
            PolicySpec::VanillaOneStore { .. } => 3e-3,
            PolicySpec::BaseStock { .. } => 0.5,
            PolicySpec::CappedBaseStock { .. } => 1.0,
            PolicySpec::EchelonStock { .. } => 0.5,
            PolicySpec::VanillaSerial { .. } => 1e-2,
            PolicySpec::VanillaWarehouse {
                transshipment: true,
                ..
            } => 1e-4,
            PolicySpec::VanillaWarehouse { .. } => 3e-4,
            PolicySpec::SymmetryAware { .. } => 1e-3,
            PolicySpec::Gnn { .. } => 1e-3,
            PolicySpec::DataDriven { .. } => 3e-3,
            PolicySpec::JustInTime { .. } => 0.0,
        }
    }

    /// The reference's gradient-clipping norm (only the GNN configs clip).
    pub fn default_grad_clip(&self) -> Option<f32> {
        matches!(self, PolicySpec::Gnn { .. }).then_some(1.0)
    }
}
