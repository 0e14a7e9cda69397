//! Latency numbers every programmer should know, and what they teach.
//!
//! Jeff Dean's table (popularised with Peter Norvig), as the book prints it
//! (2010-era hardware: SSDs and networks are faster today, but the *ratios*,
//! which are the lesson, still hold within an order of magnitude). The
//! lessons are the notes' own, each backed by a ratio computed from the
//! table rather than asserted.

use serde::Serialize;

use crate::units::exact;

/// One operation and how long it takes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyRow {
    /// What is done.
    pub operation: &'static str,
    /// How long it takes, in nanoseconds.
    pub latency_ns: f64,
}

impl LatencyRow {
    /// The latency in the largest unit keeping it at 1 or more: `0.5 ns`,
    /// `10 µs`, `150 ms`.
    pub fn text(&self) -> String {
        duration_text(self.latency_ns)
    }

    /// The latency scaled so an L1 cache hit takes one second: a sense of
    /// proportion in human time (a disk seek becomes 7.7 months).
    pub fn human_scale_text(&self) -> String {
        human_seconds(self.latency_ns / TABLE[0].latency_ns)
    }
}

/// Jeff Dean's latency numbers, fastest first.
pub const TABLE: [LatencyRow; 13] = [
    row("L1 cache reference", 0.5),
    row("Branch mispredict", 5.0),
    row("L2 cache reference", 7.0),
    row("Mutex lock/unlock", 100.0),
    row("Main memory reference", 100.0),
    row("Compress 1 KB with Zippy", 10_000.0),
    row("Send 2 KB over 1 Gbps network", 20_000.0),
    row("Read 1 MB sequentially from memory", 250_000.0),
    row("Round trip within the same datacenter", 500_000.0),
    row("Disk seek", 10_000_000.0),
    row("Read 1 MB sequentially from the network", 10_000_000.0),
    row("Read 1 MB sequentially from disk", 30_000_000.0),
    row("Send packet CA -> Netherlands -> CA", 150_000_000.0),
];

const fn row(operation: &'static str, latency_ns: f64) -> LatencyRow {
    LatencyRow {
        operation,
        latency_ns,
    }
}

fn latency_of(operation: &str) -> f64 {
    TABLE
        .iter()
        .find(|r| r.operation == operation)
        .map(|r| r.latency_ns)
        .expect("lessons name operations of the table")
}

/// A lesson from the notes and the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lesson {
    /// The lesson, as the notes state it.
    pub lesson: &'static str,
    /// The table's evidence for it.
    pub evidence: String,
}

/// The notes' lessons (모든 프로그래머가 알아야 하는 응답지연 값), with evidence.
pub fn lessons() -> Vec<Lesson> {
    let memory_mb = latency_of("Read 1 MB sequentially from memory");
    let disk_mb = latency_of("Read 1 MB sequentially from disk");
    let seek = latency_of("Disk seek");
    let memory_ref = latency_of("Main memory reference");
    let compress = latency_of("Compress 1 KB with Zippy");
    let send = latency_of("Send 2 KB over 1 Gbps network");
    let local_rtt = latency_of("Round trip within the same datacenter");
    let remote_rtt = latency_of("Send packet CA -> Netherlands -> CA");
    vec![
        Lesson {
            lesson: "Memory is fast but the disk is slow.",
            evidence: format!(
                "reading 1 MB from memory ({}) is {:.0}x faster than from disk ({})",
                duration_text(memory_mb),
                disk_mb / memory_mb,
                duration_text(disk_mb)
            ),
        },
        Lesson {
            lesson: "Avoid disk seeks if possible.",
            evidence: format!(
                "one seek ({}) costs as much as {} main memory references",
                duration_text(seek),
                exact(seek / memory_ref)
            ),
        },
        Lesson {
            lesson: "Simple compression algorithms are fast.",
            evidence: format!("compressing 1 KB takes {}", duration_text(compress)),
        },
        Lesson {
            lesson: "Compress data before sending it over the internet if possible.",
            evidence: format!(
                "compressing 1 KB ({}) costs half of sending 2 KB over 1 Gbps ({}), \
                 and far less than any wide-area round trip",
                duration_text(compress),
                duration_text(send)
            ),
        },
        Lesson {
            lesson: "Data centers are usually in different regions, and it takes time to send data between them.",
            evidence: format!(
                "a California-Netherlands round trip ({}) is {:.0} round trips inside one datacenter ({})",
                duration_text(remote_rtt),
                remote_rtt / local_rtt,
                duration_text(local_rtt)
            ),
        },
    ]
}

/// `0.5 ns`, `10 µs`, `150 ms`: up to two decimals, zeros trimmed.
pub fn duration_text(ns: f64) -> String {
    let (value, unit) = match ns {
        ns if ns >= 1e9 => (ns / 1e9, "s"),
        ns if ns >= 1e6 => (ns / 1e6, "ms"),
        ns if ns >= 1e3 => (ns / 1e3, "µs"),
        ns => (ns, "ns"),
    };
    let text = format!("{value:.2}");
    format!(
        "{} {unit}",
        text.trim_end_matches('0').trim_end_matches('.')
    )
}

fn human_seconds(seconds: f64) -> String {
    const UNITS: [(&str, f64); 5] = [
        ("years", 365.25 * 86_400.0),
        ("days", 86_400.0),
        ("hours", 3_600.0),
        ("minutes", 60.0),
        ("seconds", 1.0),
    ];
    let (unit, scale) = UNITS
        .iter()
        .copied()
        .find(|&(_, scale)| seconds >= scale)
        .unwrap_or(("seconds", 1.0));
    let text = format!("{:.1}", seconds / scale);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    let unit = if text == "1" {
        unit.trim_end_matches('s')
    } else {
        unit
    };
    format!("{text} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_formatted() {
        assert!(TABLE.windows(2).all(|w| w[0].latency_ns <= w[1].latency_ns));
        assert_eq!(TABLE[0].text(), "0.5 ns");
        assert_eq!(TABLE[5].text(), "10 µs");
        assert_eq!(TABLE[12].text(), "150 ms");
        assert_eq!(TABLE[0].human_scale_text(), "1 second");
        assert_eq!(TABLE[4].human_scale_text(), "3.3 minutes");
        assert_eq!(TABLE[12].human_scale_text(), "9.5 years");
    }

    #[test]
    fn lessons_carry_computed_evidence() {
        let lessons = lessons();
        assert_eq!(lessons.len(), 5);
        assert!(
            lessons[0].evidence.contains("120x"),
            "{}",
            lessons[0].evidence
        );
        assert!(
            lessons[1].evidence.contains("100,000"),
            "{}",
            lessons[1].evidence
        );
        assert!(
            lessons[4].evidence.contains("300 round trips"),
            "{}",
            lessons[4].evidence
        );
    }
}
