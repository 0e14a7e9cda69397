//! The Prometheus text exposition format (0.0.4), hand-written: it is one
//! line per sample and the crates that parse it either pull in a whole
//! client library or allocate a map per line. It also accepts what
//! OpenMetrics text adds on the lines we need (`# EOF`, exemplars after
//! ` # `), so the `prometheus-client` output of every Hyperscale server
//! parses too.
//!
//! ```text
//! # HELP http_requests_total The total number of requests.
//! # TYPE http_requests_total counter
//! http_requests_total{method="post",code="200"} 1027 1395066363000
//! ```
//!
//! Timestamps are read and dropped: every sample is stamped with the
//! scrape's start (Prometheus's `honor_timestamps: false`), which keeps a
//! scrape's samples in one append that cannot be refused as out of order.
//! The whole body fails on the first malformed line, as in Prometheus.

use super::ScrapeError;

/// One parsed sample: labels (`__name__` first) and value.
pub type ParsedSample = (Vec<(String, String)>, f64);

/// Parses `body`; stops with an error past `samples_max` samples.
pub fn parse(body: &str, samples_max: usize) -> Result<Vec<ParsedSample>, ScrapeError> {
    let mut out = Vec::new();
    for (i, line) in body.lines().enumerate() {
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if out.len() >= samples_max {
            return Err(ScrapeError::SampleLimit { limit: samples_max });
        }
        let sample = parse_line(line).map_err(|why| ScrapeError::Parse {
            line: i + 1,
            why: why.to_string(),
        })?;
        out.push(sample);
    }
    Ok(out)
}

fn parse_line(line: &str) -> Result<ParsedSample, &'static str> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !crate::labels::valid_metric_name(name) {
        return Err("invalid metric name");
    }
    let mut labels = vec![("__name__".to_string(), name.to_string())];
    let mut rest = &line[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        rest = parse_labels(r, &mut labels)?;
    }
    // Anything after ` # ` is an OpenMetrics exemplar.
    let rest = rest.split(" # ").next().unwrap_or("");
    let mut fields = rest.split_ascii_whitespace();
    let value = fields.next().ok_or("missing value")?;
    let value = parse_value(value).ok_or("invalid value")?;
    if let Some(ts) = fields.next()
        && ts.parse::<f64>().is_err()
    {
        return Err("invalid timestamp");
    }
    if fields.next().is_some() {
        return Err("unexpected text after the timestamp");
    }
    Ok((labels, value))
}

/// Parses `a="x",b="y"}` (the `{` already consumed); returns what follows.
fn parse_labels<'a>(
    mut s: &'a str,
    labels: &mut Vec<(String, String)>,
) -> Result<&'a str, &'static str> {
    loop {
        s = s.trim_start();
        if let Some(r) = s.strip_prefix('}') {
            return Ok(r);
        }
        let end = s.find(['=', ' ', '\t']).ok_or("unterminated label set")?;
        let name = &s[..end];
        if !crate::labels::valid_label_name(name) {
            return Err("invalid label name");
        }
        s = s[end..].trim_start();
        s = s.strip_prefix('=').ok_or("expected = after a label name")?;
        s = s.trim_start();
        s = s.strip_prefix('"').ok_or("expected a quoted label value")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            match chars.next() {
                None => return Err("unterminated label value"),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, c)) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => return Err("unterminated label value"),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _)| n == name) {
            return Err("duplicate label name");
        }
        labels.push((name.to_string(), value));
        s = s[close + 1..].trim_start();
        if let Some(r) = s.strip_prefix(',') {
            s = r;
        } else if !s.starts_with('}') {
            return Err("expected , or } after a label value");
        }
    }
}

/// Go's `ParseFloat` spellings: decimals, exponents, `NaN`, `+Inf`, `-Inf`.
fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ if s
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> ParsedSample {
        parse(line, 10).unwrap().remove(0)
    }

    #[test]
    fn samples_labels_escapes_and_specials_parse() {
        let body = "# HELP x help\n# TYPE x counter\nx 1\n\
                    y{a=\"1\",b=\"q\\\"\\n\\\\\"} 2.5e3 1395066363000\n\
                    z{} +Inf\nw{a=\"x\",} NaN\n# EOF\n";
        let got = parse(body, 10).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], (vec![("__name__".into(), "x".into())], 1.0));
        assert_eq!(got[1].0[2], ("b".into(), "q\"\n\\".into()));
        assert_eq!(got[1].1, 2500.0);
        assert_eq!(got[2].1, f64::INFINITY);
        assert!(got[3].1.is_nan());
        let ex = one("c_total{a=\"b\"} 3 # {trace_id=\"x\"} 1 1.5");
        assert_eq!(ex.1, 3.0);
    }

    #[test]
    fn malformed_lines_fail_the_body_with_their_line_number() {
        for bad in [
            "x",
            "x{a=1} 1",
            "x{a=\"1\" 1",
            "x{a=\"1\",a=\"2\"} 1",
            "x 1 2 3",
            "x one",
            "x{1a=\"b\"} 1",
            "x 1 t",
        ] {
            match parse(&format!("ok 1\n{bad}\n"), 10) {
                Err(ScrapeError::Parse { line: 2, .. }) => {}
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
        assert!(matches!(
            parse("a 1\nb 2\nc 3\n", 2),
            Err(ScrapeError::SampleLimit { limit: 2 })
        ));
        assert_eq!(one("x{a=\"\"} 1").0.len(), 2);
    }
}
