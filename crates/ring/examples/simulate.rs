//! Times the chapter's experiment on the library alone (no CLI):
//! `cargo run --release -p hyperscale-ring --example simulate -- 1000000`.

use std::time::Instant;

use ring::simulate::{SimulationConfig, simulate};

fn main() {
    let keys: u64 = std::env::args()
        .nth(1)
        .map(|arg| arg.parse().expect("the argument is a key count"))
        .unwrap_or(1_000_000);
    let started = Instant::now();
    let report =
        simulate(&SimulationConfig::new(10, vec![1, 10, 100, 200], keys)).expect("valid config");
    let elapsed = started.elapsed();
    for row in &report.rows {
        println!(
            "{:>4} vnodes: load std-dev {:>5.1}%, moved on add {:>5.1}%, on remove {:>5.1}%",
            row.vnodes_per_server,
            row.load.std_dev_pct,
            row.moved_on_add_pct,
            row.moved_on_remove_pct
        );
    }
    println!(
        "{keys} keys x {} rows in {:.2} s",
        report.rows.len(),
        elapsed.as_secs_f64()
    );
}
