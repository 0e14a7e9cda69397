use super::*;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The default number of seeds: enough to meet every fault many times,
/// small enough for a debug `cargo test` on a shared machine.
const SEEDS_DEFAULT: u64 = 300;

#[test]
fn the_cluster_keeps_its_promises_under_faults() {
    let seeds: Vec<u64> = match env_u64("KV_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("KV_SIM_SEEDS").unwrap_or(SEEDS_DEFAULT)).collect(),
    };
    let mut failures = Vec::new();
    let mut total = Report::default();
    let (mut conflicts, mut disk_losses) = (0, 0);
    for &seed in &seeds {
        match run(seed) {
            Ok(r) => {
                total.acked += r.acked;
                total.reads_ok += r.reads_ok;
                total.failed += r.failed;
                total.superseded += r.superseded;
                total.increments += r.increments;
                total.messages += r.messages;
                total.lost += r.lost;
                total.siblings_max = total.siblings_max.max(r.siblings_max);
                total.convergence_ms = total.convergence_ms.max(r.convergence_ms);
                total.all_up_ms = total.all_up_ms.max(r.all_up_ms);
                total.detect_down_ms = total.detect_down_ms.max(r.detect_down_ms);
                total.detect_up_ms = total.detect_up_ms.max(r.detect_up_ms);
                conflicts += usize::from(r.conflicts_kept);
                disk_losses += usize::from(r.disk_lost);
            }
            Err(why) => failures.push(format!("seed {seed}: {why}")),
        }
    }
    eprintln!(
        "{} seeds: {} acked writes, {} reads, {} failed or timed-out requests, {} versions \
         replaced by descendants, up to {} siblings per key, concurrent pair kept in {} runs, \
         {} runs with a lost disk, {} increments counted; slowest: convergence {} ms after heal, all up {} ms, \
         down detected {} ms, up detected {} ms; {} messages, {} lost",
        seeds.len(),
        total.acked,
        total.reads_ok,
        total.failed,
        total.superseded,
        total.siblings_max,
        conflicts,
        disk_losses,
        total.increments,
        total.convergence_ms,
        total.all_up_ms,
        total.detect_down_ms,
        total.detect_up_ms,
        total.messages,
        total.lost,
    );
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The runs exercised what they claim to.
    if seeds.len() >= 50 {
        assert!(total.acked > 50 * seeds.len());
        assert!(total.superseded > 0 && total.siblings_max >= 2);
        assert!(conflicts > seeds.len() / 4 && disk_losses > 0);
        assert!(total.increments > 10 * seeds.len() as i64);
    }
}

/// Under a strict quorum with `W + R > N` and no failures, every key's
/// history (reads, blind writes, read-modify-writes, plain sets) is
/// linearizable, over the same seeds as the chaos runs.
#[test]
fn strict_quorum_histories_without_failures_are_linearizable() {
    let seeds: Vec<u64> = match env_u64("KV_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("KV_SIM_SEEDS").unwrap_or(SEEDS_DEFAULT)).collect(),
    };
    let mut failures = Vec::new();
    let mut total = strict_quorum::Checked::default();
    for &seed in &seeds {
        match strict_quorum::run(seed) {
            Ok(c) => {
                total.calls += c.calls;
                total.sibling_reads += c.sibling_reads;
                total.overlapping += c.overlapping;
            }
            Err(why) => failures.push(format!("seed {seed}: {why}")),
        }
    }
    eprintln!(
        "{} strict-quorum seeds: {} calls checked, {} overlapping their predecessor, \
         {} reads returned siblings",
        seeds.len(),
        total.calls,
        total.overlapping,
        total.sibling_reads
    );
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if seeds.len() >= 50 {
        assert!(total.calls > 100 * seeds.len());
        assert!(total.overlapping > seeds.len() && total.sibling_reads > seeds.len());
    }
}

/// Both sides of a partition update a counter, a set and a hash; after
/// the heal no increment is lost, an add concurrent with a remove that
/// did not see it survives, and the later hash write wins.
#[test]
fn crdt_updates_on_both_sides_of_a_partition_merge() {
    let seeds = env_u64("KV_SIM_CRDT_SEEDS").unwrap_or(20);
    let failures: Vec<String> = (0..seeds)
        .filter_map(|seed| {
            crdt::partitioned_updates(seed)
                .err()
                .map(|e| format!("seed {seed}: {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// SWIM's indirect probe against the notes' plain gossip: false-down events
/// (a healthy node marked down) among five nodes under heavy packet loss.
/// Gossip of whole membership lists is itself redundant (a heartbeat
/// reaches a node by many paths), so at 50% loss there were hardly any
/// false downs to prevent; at 65% there are, and probes prevent about half.
#[test]
fn indirect_probes_cut_false_downs_under_packet_loss() {
    let seeds = env_u64("KV_SIM_SWIM_SEEDS").unwrap_or(8);
    let loss_percent = 65;
    let duration_ms = 30_000;
    let plain = membership::Config {
        probe: false,
        ..membership::Config::default()
    };
    let direct = membership::Config {
        indirect_probes: 0,
        ..membership::Config::default()
    };
    let swim = membership::Config::default();
    let count = |config| -> usize {
        (0..seeds)
            .map(|seed| false_downs(seed, config, loss_percent, duration_ms))
            .sum()
    };
    let (plain, direct, swim) = (count(plain), count(direct), count(swim));
    eprintln!(
        "false downs in {seeds} runs of 5 nodes x {} s at {loss_percent}% loss: \
         plain gossip {plain}, direct probe {direct}, direct + 2 indirect {swim}",
        duration_ms / 1_000
    );
    assert!(plain > 0, "the loss rate must provoke false downs");
    assert!(
        swim < plain && swim <= direct,
        "{swim} vs {direct} vs {plain}"
    );
}

/// A node joins and another leaves while clients write under a strict
/// quorum: no acknowledged write lost, histories linearizable.
#[test]
fn join_and_leave_under_load_lose_nothing_and_stay_linearizable() {
    let seeds: Vec<u64> = match env_u64("KV_SIM_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("KV_SIM_SEEDS").unwrap_or(SEEDS_DEFAULT) / 4).collect(),
    };
    let mut failures = Vec::new();
    let (mut acked, mut streamed, mut join_ms) = (0, 0, 0);
    for &seed in &seeds {
        match membership_change::run(seed) {
            Ok(s) => {
                acked += s.acked;
                streamed += s.streamed;
                join_ms = join_ms.max(s.join_ms).max(s.leave_ms);
            }
            Err(why) => failures.push(format!("seed {seed}: {why}")),
        }
    }
    eprintln!(
        "{} membership-change seeds: {acked} acknowledged writes kept, {streamed} keys on new nodes, slowest change {join_ms} ms",
        seeds.len()
    );
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(acked > 10 * seeds.len() && streamed > 0);
}

/// A replica partitioned away during a delete and past the grace period
/// does not resurrect the value; the tombstone is purged everywhere only
/// after the heal, once anti-entropy has given it that replica.
#[test]
fn tombstones_are_collected_only_once_every_replica_has_them() {
    let seeds = env_u64("KV_SIM_TOMBSTONE_SEEDS").unwrap_or(20);
    let failures: Vec<String> = (0..seeds)
        .filter_map(|seed| {
            tombstones::run(seed)
                .err()
                .map(|e| format!("seed {seed}: {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
