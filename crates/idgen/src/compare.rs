//! The notes' four approaches, measured here instead of asserted.
//!
//! Chapter 7 compares multi-master auto-increment (step K), UUID, a ticket
//! server and snowflake on size, time order, being numeric, and coordination.
//! [`compare`] generates IDs each way on this machine and reports:
//! - `bits`: the size of the value each approach returns;
//! - `sorts_by_time`: measured — a batch from one node, a pause of 2 ms, then
//!   one ID from *another* node; sortable means the later ID compares greater
//!   than every earlier one (multi-master fails: the busy node's counter ran
//!   ahead; UUIDv4 fails: random);
//! - `numeric`: whether the ID's usual text form is all digits;
//! - `ids_per_sec`: one thread generating for a fixed time;
//! - `coordination`: what nodes must agree on (a design fact, not measured).
//!
//! The ticket server is `INCR` on a RESP server (our `kv` or Redis) given by
//! URL; without one that row is reported as skipped, with the reason.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::snowflake::{Generator, GeneratorConfig};

/// One approach's row.
#[derive(Debug, Clone, Serialize)]
pub struct Approach {
    /// The notes' name for it.
    pub name: &'static str,
    /// Size of one ID.
    pub bits: u32,
    /// Measured: a later ID from another node sorts after earlier ones.
    pub sorts_by_time: bool,
    /// Measured: the text form is all digits.
    pub numeric: bool,
    /// What the nodes must agree on.
    pub coordination: &'static str,
    /// Measured on one thread; `None` when skipped.
    pub ids_per_sec: Option<f64>,
    /// One ID, as text.
    pub sample: String,
    /// Why a measurement is missing, or a caveat.
    pub note: Option<String>,
}

/// What to measure.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// How long each approach generates for the rate.
    pub duration: Duration,
    /// K, the number of masters stepping by K.
    pub masters: u64,
    /// `redis://…` of a RESP server for the ticket-server row.
    pub ticket_server: Option<String>,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            duration: Duration::from_millis(300),
            masters: 2,
            ticket_server: None,
        }
    }
}

/// Measures all four approaches (UUID as two rows: v4 and v7).
pub fn compare(options: &CompareOptions) -> Vec<Approach> {
    vec![
        multi_master(options),
        uuid_row("UUID v4", options, uuid::Uuid::new_v4),
        uuid_row("UUID v7", options, uuid::Uuid::now_v7),
        ticket_server(options),
        snowflake(options),
    ]
}

/// Calls `next` for `duration`; returns IDs per second. Reads the clock only
/// every 256 calls so the measurement is of `next`, not of `Instant::now`.
fn rate<T>(duration: Duration, mut next: impl FnMut() -> T) -> f64 {
    let start = Instant::now();
    let mut count = 0u64;
    loop {
        for _ in 0..256 {
            std::hint::black_box(next());
        }
        count += 256;
        let elapsed = start.elapsed();
        if elapsed >= duration {
            return count as f64 / elapsed.as_secs_f64();
        }
    }
}

/// Time-order check: `earlier` from one node, 2 ms pass, then `later` from
/// another node must exceed all of `earlier`.
fn sorts<T: Ord>(earlier: Vec<T>, later: impl FnOnce() -> T) -> bool {
    std::thread::sleep(Duration::from_millis(2));
    let later = later();
    earlier.iter().all(|e| *e < later)
}

/// K databases, database i hands out i, i+K, i+2K, ...
struct MultiMaster {
    next: Vec<u64>,
    step: u64,
}

impl MultiMaster {
    fn new(k: u64) -> Self {
        MultiMaster {
            next: (1..=k).collect(),
            step: k,
        }
    }
    fn issue(&mut self, server: usize) -> u64 {
        let id = self.next[server];
        self.next[server] += self.step;
        id
    }
}

fn multi_master(options: &CompareOptions) -> Approach {
    let k = options.masters.max(2);
    let mut masters = MultiMaster::new(k);
    let mut server = 0usize;
    let ids_per_sec = rate(options.duration, || {
        server = (server + 1) % k as usize;
        masters.issue(server)
    });
    // Server 0 is busy (1,000 IDs), server 1 idle: its next ID is small.
    let mut fresh = MultiMaster::new(k);
    let earlier: Vec<u64> = (0..1000).map(|_| fresh.issue(0)).collect();
    let sorts_by_time = sorts(earlier, || fresh.issue(1));
    Approach {
        name: "multi-master (step K)",
        bits: 64,
        sorts_by_time,
        numeric: true,
        coordination: "K fixed up front; adding or removing a server renumbers every step",
        ids_per_sec: Some(ids_per_sec),
        sample: masters.issue(0).to_string(),
        note: Some(format!(
            "K = {k} in-process counters (no database round trip)"
        )),
    }
}

fn uuid_row(name: &'static str, options: &CompareOptions, make: fn() -> uuid::Uuid) -> Approach {
    let ids_per_sec = rate(options.duration, make);
    let earlier: Vec<uuid::Uuid> = (0..1000).map(|_| make()).collect();
    let sorts_by_time = sorts(earlier, make);
    let sample = make().to_string();
    Approach {
        name,
        bits: 128,
        sorts_by_time,
        numeric: sample.bytes().all(|b| b.is_ascii_digit()),
        coordination: "none",
        ids_per_sec: Some(ids_per_sec),
        sample,
        note: None,
    }
}

fn ticket_server(options: &CompareOptions) -> Approach {
    let mut row = Approach {
        name: "ticket server (INCR)",
        bits: 64,
        sorts_by_time: true,
        numeric: true,
        coordination: "every ID is a round trip to one central server (a SPOF)",
        ids_per_sec: None,
        sample: String::new(),
        note: None,
    };
    let Some(url) = &options.ticket_server else {
        row.note = Some("skipped: pass --ticket-server redis://HOST:PORT to measure".to_owned());
        return row;
    };
    match measure_ticket_server(url, options.duration) {
        Ok((ids_per_sec, sorts_by_time, sample)) => {
            row.ids_per_sec = Some(ids_per_sec);
            row.sorts_by_time = sorts_by_time;
            row.sample = sample.to_string();
            row.note = Some(format!("sequential INCR round trips to {url}"));
        }
        Err(err) => row.note = Some(format!("skipped: {url}: {err}")),
    }
    row
}

fn measure_ticket_server(
    url: &str,
    duration: Duration,
) -> Result<(f64, bool, i64), redis::RedisError> {
    let timeout = Duration::from_secs(2);
    let client = redis::Client::open(url)?;
    let mut conn = client.get_connection_with_timeout(timeout)?;
    conn.set_read_timeout(Some(timeout))?;
    conn.set_write_timeout(Some(timeout))?;
    let key = "hyperscale:idgen:ticket";
    let mut incr = redis::cmd("INCR");
    incr.arg(key);
    // Probe once so a dead server fails here, not inside the timed loop.
    incr.query::<i64>(&mut conn)?;
    let mut failure = None;
    let ids_per_sec = rate(duration, || {
        incr.query::<i64>(&mut conn)
            .map_err(|e| failure = Some(e))
            .unwrap_or(0)
    });
    if let Some(err) = failure {
        return Err(err);
    }
    let earlier: Vec<i64> = (0..100)
        .map(|_| incr.query(&mut conn))
        .collect::<Result<_, _>>()?;
    let mut later = || incr.query::<i64>(&mut conn);
    let mut last = None;
    let sorts_by_time = sorts(earlier, || {
        last = later().ok();
        last.unwrap_or(i64::MIN)
    });
    Ok((ids_per_sec, sorts_by_time, last.unwrap_or_default()))
}

fn snowflake(options: &CompareOptions) -> Approach {
    let config = GeneratorConfig::default();
    let busy = Generator::new(&config);
    let idle = Generator::new(&GeneratorConfig {
        machine: 1,
        ..config
    });
    let (Ok(busy), Ok(idle)) = (busy, idle) else {
        unreachable!("the default config is valid");
    };
    let ids_per_sec = rate(options.duration, || busy.next_id().unwrap_or(0));
    let earlier: Vec<u64> = (0..1000).filter_map(|_| busy.next_id().ok()).collect();
    let sorts_by_time = sorts(earlier, || idle.next_id().unwrap_or(0));
    Approach {
        name: "snowflake",
        bits: 64,
        sorts_by_time,
        numeric: true,
        coordination: "a unique (datacenter, machine) per generator, once: config or lease",
        ids_per_sec: Some(ids_per_sec),
        sample: busy.next_id().map(|id| id.to_string()).unwrap_or_default(),
        note: Some("one generator: at most 4,096 IDs per ms by design".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_measurements_agree_with_the_notes() {
        let options = CompareOptions {
            duration: Duration::from_millis(20),
            ..CompareOptions::default()
        };
        let rows = compare(&options);
        let row = |name: &str| rows.iter().find(|r| r.name.starts_with(name)).unwrap();
        assert!(!row("multi-master").sorts_by_time, "busy master runs ahead");
        assert!(!row("UUID v4").sorts_by_time && !row("UUID v4").numeric);
        assert_eq!(row("UUID v4").bits, 128);
        assert!(row("UUID v7").sorts_by_time);
        assert!(row("snowflake").sorts_by_time && row("snowflake").numeric);
        let ticket = row("ticket");
        assert!(ticket.ids_per_sec.is_none());
        assert!(ticket.note.as_deref().unwrap().contains("--ticket-server"));
        assert!(
            rows.iter()
                .filter(|r| r.ids_per_sec.is_some())
                .all(|r| r.ids_per_sec > Some(0.0))
        );
    }
}
