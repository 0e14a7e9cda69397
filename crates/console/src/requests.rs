//! Which counter is each system's request counter, the PromQL that charts
//! them all, and one system's slice of the process's `/metrics` (so the
//! metrics server scrapes every system as a target of its own). HTTP systems
//! count their requests with `service::metrics::count_requests`.
//!
//! The systems predate a shared request counter, and each counts what its
//! protocol calls a request under its own prefix: kv counts commands, mq
//! Kafka requests, the gateway answered requests. This table is the one place
//! that knows which is which; a system missing from it has no request counter
//! (the metrics page says so rather than charting a zero).

/// Each system's request counters (summed per system), with what they count.
pub const REQUEST_COUNTERS: &[(&str, &[&str], &str)] = &[
    (
        "console",
        &["hyperscale_console_requests_total"],
        "HTTP requests",
    ),
    (
        "gateway",
        &["hyperscale_gateway_requests_total"],
        "requests answered",
    ),
    (
        "id",
        &["hyperscale_id_issued_total", "hyperscale_id_refused_total"],
        "IDs issued or refused",
    ),
    ("kv", &["hyperscale_kv_commands_total"], "RESP commands"),
    (
        "metrics",
        &["hyperscale_metrics_requests_total"],
        "HTTP requests",
    ),
    ("mq", &["hyperscale_mq_requests_total"], "Kafka requests"),
    ("s3", &["hyperscale_s3_requests_total"], "S3 API requests"),
    (
        "shortener",
        &[
            "hyperscale_shortener_links_created_total",
            "hyperscale_shortener_cache_hits_total",
            "hyperscale_shortener_cache_misses_total",
        ],
        "links created and looked up",
    ),
];

/// The systems that have a request counter.
pub fn counted_systems() -> impl Iterator<Item = &'static str> {
    REQUEST_COUNTERS.iter().map(|(system, _, _)| *system)
}

/// `sum by (system) (rate({__name__=~"a|b|..."}[1m]))`: every system's
/// request rate, one series each (the `system` label comes from the scrape
/// target, see [`system_exposition`]).
pub fn rate_query() -> String {
    let names: Vec<&str> = REQUEST_COUNTERS
        .iter()
        .flat_map(|(_, names, _)| names.iter().copied())
        .collect();
    format!(
        "sum by (system) (rate({{__name__=~\"{}\"}}[1m]))",
        names.join("|")
    )
}

/// The part of the process's exposition `text` that belongs to `system`:
/// families named `hyperscale_{system}_...` and samples labelled
/// `system="{system}"`, each with its `# HELP`/`# TYPE`/`# UNIT` lines, and
/// the closing `# EOF` that OpenMetrics requires.
pub fn system_exposition(text: &str, system: &str) -> String {
    let prefix = format!("hyperscale_{system}_");
    let label = format!("system=\"{system}\"");
    let mut out = String::new();
    // The comment lines of the family being read, written before its first
    // kept sample (and dropped if none is kept).
    let mut family = String::new();
    let mut pending = String::new();
    for line in text.lines() {
        if line == "# EOF" {
            break;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let name = rest.split_whitespace().nth(1).unwrap_or_default();
            if name != family {
                family = name.to_string();
                pending.clear();
            }
            pending.push_str(line);
            pending.push('\n');
            continue;
        }
        if line.starts_with(&prefix) || line.contains(&label) {
            out.push_str(&pending);
            pending.clear();
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_keeps_one_system_with_its_comments() {
        let text = "# HELP hyperscale_system_up Up.\n# TYPE hyperscale_system_up gauge\n\
                    hyperscale_system_up{system=\"kv\"} 1\nhyperscale_system_up{system=\"mq\"} 1\n\
                    # HELP hyperscale_mq_requests Requests.\n# TYPE hyperscale_mq_requests counter\n\
                    hyperscale_mq_requests_total 3\n\
                    # HELP hyperscale_kv_keys Keys.\n# TYPE hyperscale_kv_keys gauge\nhyperscale_kv_keys 2\n# EOF\n";
        assert_eq!(
            system_exposition(text, "kv"),
            "# HELP hyperscale_system_up Up.\n# TYPE hyperscale_system_up gauge\n\
             hyperscale_system_up{system=\"kv\"} 1\n\
             # HELP hyperscale_kv_keys Keys.\n# TYPE hyperscale_kv_keys gauge\nhyperscale_kv_keys 2\n# EOF\n"
        );
        assert_eq!(system_exposition(text, "s3").trim(), "# EOF");
    }

    #[test]
    fn the_query_names_every_counter() {
        let query = rate_query();
        for (_, names, _) in REQUEST_COUNTERS {
            for name in *names {
                assert!(query.contains(name), "{query}");
            }
        }
        assert!(query.starts_with("sum by (system) (rate({__name__=~\""));
    }
}
