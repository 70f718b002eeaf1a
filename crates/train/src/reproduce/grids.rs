//! The experiment grids: the cells of every [`Experiment`](super::Experiment), in table order —
//! setting, policy, overrides, training scenarios and the published values of
//! [`crate::published`] for each. One function per experiment.

use crate::published::{self, Published};

use super::experiment::{Cell, Experiment};

impl Experiment {
    /// The cells of the experiment, in table order.
    pub fn cells(self) -> Vec<Cell> {
        match self {
            Experiment::OneStoreLost => one_store_lost_cells(),
            Experiment::OneStoreBacklogged => one_store_backlogged_cells(),
            Experiment::Serial => serial_cells(),
            Experiment::OneWarehouse => one_warehouse_cells(),
            Experiment::Transshipment => transshipment_cells(),
            Experiment::ManyWarehouses => many_warehouses_cells(),
            Experiment::IdenticalStores => identical_stores_cells(),
        }
    }
}

fn p_text(p: f64) -> String {
    format!("{p}")
}

const PENALTIES: [f64; 4] = [4.0, 9.0, 19.0, 39.0];
const SCENARIOS: [usize; 3] = [128, 1024, 8192];
const STORE_COUNTS: [usize; 6] = [3, 5, 10, 20, 30, 50];

/// The cells of one table that crosses a lead time with a penalty (`L × p`) on one setting and
/// policy: they differ only in those two overrides and in what was published for them.
struct LeadTimePenaltyGrid<'a> {
    group: &'a str,
    setting: &'a str,
    policy: &'a str,
    /// Prepended to the row key `L{l}-p{p}` (e.g. `"4loc-"`); the id is `{row key}-{policy}`.
    row_prefix: &'a str,
    /// The table's name for the lead time column (`"L"`, or `"L_s"` for the store of a chain).
    lead_time_label: &'a str,
}

impl LeadTimePenaltyGrid<'_> {
    fn cell(&self, l: usize, p: f64, published: Published) -> Cell {
        let row_key = format!("{}L{l}-p{p}", self.row_prefix);
        Cell {
            id: format!("{row_key}-{}", self.policy),
            group: self.group.into(),
            setting: self.setting.into(),
            policy: self.policy.into(),
            overrides: vec![
                ("setting.stores.lead_time".into(), l.to_string()),
                ("setting.stores.underage_cost".into(), p_text(p)),
            ],
            scenarios: None,
            labels: vec![
                (self.lead_time_label.into(), l.to_string()),
                ("p".into(), p_text(p)),
            ],
            row_key,
            published,
        }
    }
}

fn one_store_lost_cells() -> Vec<Cell> {
    let grid = LeadTimePenaltyGrid {
        group: "Zipkin instances, Poisson(5), h = 1",
        setting: "one_store_lost",
        policy: "vanilla_one_store",
        row_prefix: "",
        lead_time_label: "L",
    };
    let mut cells = Vec::new();
    for l in 1..=4 {
        for p in PENALTIES {
            cells.push(grid.cell(l, p, published::one_store_lost(l, p)));
        }
    }
    cells
}

fn one_store_backlogged_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for policy in ["vanilla_one_store", "base_stock"] {
        let group = format!("{policy}, N(5, 1.6) clipped, h = 1");
        let grid = LeadTimePenaltyGrid {
            group: &group,
            setting: "one_store_backlogged",
            policy,
            row_prefix: "",
            lead_time_label: "L",
        };
        for l in [1usize, 4, 7, 10, 15, 20] {
            for p in PENALTIES {
                cells.push(grid.cell(l, p, published::one_store_backlogged(l, p, policy)));
            }
        }
    }
    cells
}

fn serial_cells() -> Vec<Cell> {
    let grid = LeadTimePenaltyGrid {
        group: "4 locations, store lead time L_s × penalty p (vanilla MLP)",
        setting: "serial_system",
        policy: "vanilla_serial",
        row_prefix: "4loc-",
        lead_time_label: "L_s",
    };
    let mut cells = Vec::new();
    for l in 1..=4 {
        for p in PENALTIES {
            cells.push(grid.cell(l, p, published::serial_grid(l, p, "vanilla_serial")));
        }
    }
    for n in 3..=7 {
        for scenarios in SCENARIOS {
            for policy in ["gnn", "vanilla_serial"] {
                cells.push(Cell {
                    id: format!("{n}loc-s{scenarios}-{policy}"),
                    group: "3–7 locations (L_s = 4, p = 9) × training scenarios".into(),
                    setting: format!("serial_system_{n}"),
                    policy: policy.into(),
                    overrides: Vec::new(),
                    scenarios: Some(scenarios),
                    labels: vec![("locations".into(), n.to_string())],
                    row_key: format!("{n}loc"),
                    published: published::serial_sizes(n, scenarios, policy),
                });
            }
        }
    }
    for n in 3..=7 {
        cells.push(Cell {
            id: format!("{n}loc-echelon_stock"),
            group: "3–7 locations, echelon-stock policy (optimal family)".into(),
            setting: format!("serial_system_{n}"),
            policy: "echelon_stock".into(),
            overrides: Vec::new(),
            scenarios: None,
            labels: vec![("locations".into(), n.to_string())],
            row_key: format!("{n}loc"),
            published: published::serial_sizes(n, 0, "echelon_stock"),
        });
    }
    cells
}

fn one_warehouse_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for n in STORE_COUNTS {
        for scenarios in SCENARIOS {
            for policy in ["gnn", "vanilla_warehouse", "symmetry_aware"] {
                cells.push(Cell {
                    id: format!("n{n}-s{scenarios}-{policy}"),
                    group: "one warehouse, lost sales, reference stores".into(),
                    setting: "one_warehouse_lost".into(),
                    policy: policy.into(),
                    overrides: vec![("setting.network.n_stores".into(), n.to_string())],
                    scenarios: Some(scenarios),
                    labels: vec![("stores".into(), n.to_string())],
                    row_key: format!("n{n}"),
                    published: published::one_warehouse(n, scenarios, policy),
                });
            }
        }
    }
    cells
}

fn transshipment_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for n in STORE_COUNTS {
        for scenarios in SCENARIOS {
            for policy in ["gnn", "vanilla_warehouse"] {
                cells.push(Cell {
                    id: format!("n{n}-L4-p9-s{scenarios}-{policy}"),
                    group: "v3 grid: store L = 4, p = 9, correlation 0.5".into(),
                    setting: "transshipment_backlogged".into(),
                    policy: policy.into(),
                    overrides: vec![
                        ("setting.network.n_stores".into(), n.to_string()),
                        ("setting.stores.lead_time".into(), "4".into()),
                        ("setting.stores.underage_cost".into(), "9".into()),
                    ],
                    scenarios: Some(scenarios),
                    labels: vec![("stores".into(), n.to_string())],
                    row_key: format!("n{n}-L4-p9"),
                    published: published::transshipment_grid(n, scenarios, policy),
                });
            }
        }
    }
    for &(n, l, p, ..) in published::TRANSSHIPMENT_TABLE11 {
        cells.push(Cell {
            id: format!("n{n}-L{l}-p{p}-vanilla_warehouse"),
            group: "published vanilla rows (32,768 scenarios, correlation 0.5)".into(),
            setting: "transshipment_backlogged".into(),
            policy: "vanilla_warehouse".into(),
            overrides: vec![
                ("setting.network.n_stores".into(), n.to_string()),
                ("setting.stores.lead_time".into(), l.to_string()),
                ("setting.stores.underage_cost".into(), p_text(p)),
            ],
            scenarios: None,
            labels: vec![
                ("stores".into(), n.to_string()),
                ("L_s".into(), l.to_string()),
                ("p".into(), p_text(p)),
            ],
            row_key: format!("n{n}-L{l}-p{p}"),
            published: published::transshipment_table11(n, l, p),
        });
    }
    cells
}

fn many_warehouses_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for (w, n) in hdpo_sim::settings::MANY_WAREHOUSE_SIZES {
        for scenarios in SCENARIOS {
            for policy in ["gnn", "vanilla_warehouse"] {
                cells.push(Cell {
                    id: format!("w{w}-n{n}-s{scenarios}-{policy}"),
                    group: "many warehouses, lost sales, edge costs".into(),
                    setting: format!("many_warehouses_lost_{w}x{n}"),
                    policy: policy.into(),
                    overrides: Vec::new(),
                    scenarios: Some(scenarios),
                    labels: vec![
                        ("warehouses".into(), w.to_string()),
                        ("stores".into(), n.to_string()),
                    ],
                    row_key: format!("w{w}-n{n}"),
                    published: published::many_warehouses(w, n, scenarios, policy),
                });
            }
        }
    }
    cells
}

fn identical_stores_cells() -> Vec<Cell> {
    let mut cells = Vec::new();
    for n in [3, 10, 20, 30, 50] {
        for scenarios in SCENARIOS {
            for policy in ["gnn", "vanilla_one_store"] {
                cells.push(Cell {
                    id: format!("n{n}-s{scenarios}-{policy}"),
                    group: "identical independent stores, Poisson(5), L = 3, p = 9".into(),
                    setting: "identical_stores_lost".into(),
                    policy: policy.into(),
                    overrides: vec![("setting.network.n_stores".into(), n.to_string())],
                    scenarios: Some(scenarios),
                    labels: vec![("stores".into(), n.to_string())],
                    row_key: format!("n{n}"),
                    published: published::identical_stores(n, scenarios, policy),
                });
            }
        }
    }
    cells
}
