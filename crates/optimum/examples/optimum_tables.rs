//! Prints the tables of `docs/optimality.md`: every optimum and bound the `optimum` module
//! computes for the reference instances.
//!
//! Run: `cargo run --release -p hdpo-optimum --example optimum_tables`

use std::time::Instant;

use hdpo_optimum as opt;
use opt::backlog::{backlog_clipped_normal, backlog_normal, backlog_poisson};
use opt::lost_sales::{
    DiscreteDemand, DpSettings, LostSalesInstance, base_stock_cost, best_base_stock,
    best_capped_base_stock, capped_base_stock_cost, solve_lost_sales,
};
use opt::serial::{SerialSystem, solve_serial_clipped_normal};
use opt::transshipment::transshipment_lower_bound;

fn multi_store_parameters(stores: usize) -> (Vec<f64>, Vec<f64>) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/instances/multi_store_parameters.json"
    );
    let text = std::fs::read_to_string(path).expect("multi_store_parameters.json");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let read = |key: &str| -> Vec<f64> {
        json["stores_50"][key].as_array().unwrap()[..stores]
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    (read("mean"), read("std"))
}

fn format_levels(levels: &[f64]) -> String {
    let parts: Vec<String> = levels.iter().map(|l| format!("{l:.2}")).collect();
    format!("[{}]", parts.join(", "))
}

fn main() {
    println!("## Lost sales (Poisson 5, h = 1)");
    println!(
        "| L | p | optimum | span | iters | time | best S | base-stock cost | gap % | capped (S, cap) | capped cost | gap % |"
    );
    for lead_time in 1..=4 {
        for penalty in [4.0, 9.0, 19.0, 39.0] {
            let instance = LostSalesInstance::reference(lead_time, penalty);
            let clock = Instant::now();
            let optimum = solve_lost_sales(&instance, &DpSettings::default()).unwrap();
            let elapsed = clock.elapsed();
            let base = best_base_stock(&instance).unwrap();
            let capped = best_capped_base_stock(&instance).unwrap();
            println!(
                "| {lead_time} | {penalty} | {:.4} | {:.0e} | {} | {:.2} s | {} | {:.4} | {:.2} | ({}, {}) | {:.4} | {:.2} |",
                optimum.average_cost,
                optimum.span_gap,
                optimum.iterations,
                elapsed.as_secs_f64(),
                base.level,
                base.average_cost,
                100.0 * (base.average_cost / optimum.average_cost - 1.0),
                capped.level,
                capped.cap.unwrap(),
                capped.average_cost,
                100.0 * (capped.average_cost / optimum.average_cost - 1.0),
            );
            // A wider state space leaves the optimum unchanged.
            let wider = DpSettings {
                max_inventory_position: Some(optimum.max_inventory_position + 8),
                ..DpSettings::default()
            };
            let wide = solve_lost_sales(&instance, &wider).unwrap();
            println!(
                "|   | S̄ = {}: {:.10}; S̄ + 8: {:.10} (difference {:.1e}) |",
                optimum.max_inventory_position,
                optimum.average_cost,
                wide.average_cost,
                wide.average_cost - optimum.average_cost
            );
            // Full scans confirm the descent searches.
            let top = instance.newsvendor_position().unwrap() + 3;
            let scan_base = (0..=top)
                .map(|s| base_stock_cost(&instance, s).unwrap().average_cost)
                .fold(f64::INFINITY, f64::min);
            let mut scan_capped = f64::INFINITY;
            for s in base.level.saturating_sub(2)..=top {
                for cap in 1..=12.min(s) {
                    scan_capped = scan_capped.min(
                        capped_base_stock_cost(&instance, s, cap)
                            .unwrap()
                            .average_cost,
                    );
                }
            }
            println!(
                "|   | full scans: base {:.6} (search {:.6}), capped {:.6} (search {:.6}) |",
                scan_base, base.average_cost, scan_capped, capped.average_cost
            );
        }
    }
    let tiny = LostSalesInstance {
        lead_time: 1,
        demand: DiscreteDemand::Pmf(vec![0.5, 0.0, 0.5]),
        holding_cost: 1.0,
        lost_sale_penalty: 3.0,
    };
    let settings = DpSettings {
        max_inventory_position: Some(4),
        ..DpSettings::default()
    };
    let tiny_solution = solve_lost_sales(&tiny, &settings).unwrap();
    let tiny_orders: Vec<usize> = (0..=4)
        .map(|x0| tiny_solution.order(&[x0]).unwrap())
        .collect();
    println!(
        "## Tiny case (L = 1, demand 0/2, h = 1, p = 3): cost {:.10}, orders by on-hand 0..=4: {:?}",
        tiny_solution.average_cost, tiny_orders
    );
    println!("## Backlog N(5, 1.6): analytic (unclipped) / clipped lattice Δ = 0.01 / Poisson(5)");
    for lead_time in [1usize, 4, 7, 10, 15, 20] {
        let mut line = format!("| {lead_time} |");
        for penalty in [4.0, 9.0, 19.0, 39.0] {
            let analytic = backlog_normal(5.0, 1.6, lead_time, 1.0, penalty).unwrap();
            let clipped = backlog_clipped_normal(5.0, 1.6, lead_time, 1.0, penalty, 0.01).unwrap();
            let poisson = backlog_poisson(5.0, lead_time, 1.0, penalty).unwrap();
            line += &format!(
                " {:.4} (S {:.3}) / {:.4} / {:.4} (S {}) |",
                analytic.average_cost,
                analytic.level,
                clipped.average_cost,
                poisson.average_cost,
                poisson.level
            );
        }
        println!("{line}");
    }
    println!("## Serial, L_s = 4, p = 9, sizes 2..7 (Δ = 0.02 and Δ = 0.01)");
    for locations in 2..=7 {
        let system = SerialSystem::reference(locations, 4, 9.0).unwrap();
        let coarse = solve_serial_clipped_normal(&system, 5.0, 2.0, 0.02).unwrap();
        let fine = solve_serial_clipped_normal(&system, 5.0, 2.0, 0.01).unwrap();
        println!(
            "| {locations} | {:.4} | {:.4} | levels {} | echelon acct {:.4} | in-transit {:.4} |",
            coarse.average_cost,
            fine.average_cost,
            format_levels(&fine.echelon_levels),
            fine.echelon_accounting_cost,
            fine.in_transit_holding
        );
    }
    println!("## Serial, 4 locations, L_s × p (Δ = 0.01)");
    for store_lead_time in 1..=4 {
        let mut line = format!("| {store_lead_time} |");
        for penalty in [4.0, 9.0, 19.0, 39.0] {
            let system = SerialSystem::reference(4, store_lead_time, penalty).unwrap();
            let optimum = solve_serial_clipped_normal(&system, 5.0, 2.0, 0.01).unwrap();
            line += &format!(
                " {:.4} {} |",
                optimum.average_cost,
                format_levels(&optimum.echelon_levels)
            );
        }
        println!("{line}");
    }
    println!("## Transshipment lower bounds (ρ = 0.5)");
    for stores in [3, 5, 10, 20, 30, 50] {
        let (means, stds) = multi_store_parameters(stores);
        let mut line = format!("| {stores} |");
        for (store_lead_time, penalty) in [(2, 4.0), (2, 9.0), (4, 9.0), (6, 4.0), (6, 9.0)] {
            let bound =
                transshipment_lower_bound(&means, &stds, 0.5, store_lead_time, 3, 1.0, penalty)
                    .unwrap();
            line += &format!(" {:.6} |", bound.per_store_cost);
        }
        println!("{line}");
    }
}
