//! Times the chapter's experiment on the library alone (no CLI), then raw
//! lookups on a 10-server x 200-vnode ring:
//! `cargo run --release -p hyperscale-ring --example simulate -- 1000000`.

use std::time::Instant;

use ring::Ring;
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
    time_lookups(keys);
}

fn time_lookups(keys: u64) {
    let mut ring = Ring::new();
    for i in 0..10 {
        ring.add_server(format!("server-{i}"), 200)
            .expect("valid server");
    }
    let keys: Vec<[u8; 8]> = (0..keys).map(u64::to_le_bytes).collect();
    let started = Instant::now();
    let owned_by_0 = keys
        .iter()
        .filter(|k| ring.owner(&k[..]).is_some_and(|o| o == "server-0"))
        .count();
    let per_owner = started.elapsed().as_nanos() as f64 / keys.len() as f64;
    let started = Instant::now();
    let replicas: usize = keys
        .iter()
        .map(|k| ring.preference_list(&k[..], 3).len())
        .sum();
    let per_list = started.elapsed().as_nanos() as f64 / keys.len() as f64;
    println!(
        "owner(): {per_owner:.0} ns/key (hash + binary search; server-0 owns {owned_by_0}); \
         preference_list(N=3): {per_list:.0} ns/key ({replicas} replicas)"
    );
}
