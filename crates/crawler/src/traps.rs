//! Spider-trap limits (the chapter's "거미 덫"): pages built to keep a crawler
//! busy forever (`/a/a/a/...`, a calendar with a "next day" link, session ids
//! in every URL). The chapter bounds the URL length; we also bound the depth
//! from a seed, the pages fetched per host, repeated path segments and
//! calendar-like parameters. Each check is a pure function of the URL and
//! counters the frontier keeps, so the rule is tested apart from any I/O.

use url::Url;

/// The limits, each a knob of the crawl.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrapLimits {
    /// Longest URL accepted, in bytes.
    pub url_length_max: usize,
    /// Links followed from a seed before a URL is dropped.
    pub depth_max: u32,
    /// Pages fetched from one host.
    pub pages_per_host_max: u64,
    /// Times one path segment may appear in a path.
    pub repeated_segment_max: usize,
    /// Date-like or counter-like query values a URL may carry before it is
    /// treated as a calendar (0 turns the check off).
    pub calendar_params_max: usize,
    /// Path segments in one URL.
    pub path_segments_max: usize,
}

impl Default for TrapLimits {
    fn default() -> Self {
        Self {
            url_length_max: 2048,
            depth_max: 64,
            pages_per_host_max: 1_000_000,
            repeated_segment_max: 3,
            calendar_params_max: 1,
            path_segments_max: 32,
        }
    }
}

/// Years from now a calendar date may be before it is a trap.
pub const CALENDAR_HORIZON_YEARS: u32 = 2;

/// Which limit a URL hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trap {
    /// Longer than `url_length_max`.
    UrlLength,
    /// Deeper than `depth_max`.
    Depth,
    /// A path segment repeated more than `repeated_segment_max` times.
    RepeatedSegment,
    /// More than `path_segments_max` segments.
    PathSegments,
    /// Calendar-like parameters (dates, years) beyond `calendar_params_max`.
    Calendar,
}

impl Trap {
    /// The stat name.
    pub fn name(self) -> &'static str {
        match self {
            Trap::UrlLength => "url_length",
            Trap::Depth => "depth",
            Trap::RepeatedSegment => "repeated_segment",
            Trap::PathSegments => "path_segments",
            Trap::Calendar => "calendar",
        }
    }
}

/// Checks a discovered URL at `depth` against the limits (host page counts
/// are checked by the frontier when it hands a URL out).
pub fn check(url: &Url, depth: u32, limits: &TrapLimits, now_year: u32) -> Result<(), Trap> {
    if url.as_str().len() > limits.url_length_max {
        return Err(Trap::UrlLength);
    }
    if depth > limits.depth_max {
        return Err(Trap::Depth);
    }
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if segments.len() > limits.path_segments_max {
        return Err(Trap::PathSegments);
    }
    let mut sorted = segments.clone();
    sorted.sort_unstable();
    let mut run = 0;
    for (i, seg) in sorted.iter().enumerate() {
        run = if i > 0 && sorted[i - 1] == *seg {
            run + 1
        } else {
            1
        };
        if run > limits.repeated_segment_max {
            return Err(Trap::RepeatedSegment);
        }
    }
    if limits.calendar_params_max > 0 {
        let dates = url
            .query_pairs()
            .filter(|(_, value)| looks_like_date(value))
            .count()
            + segments.iter().filter(|s| looks_like_date(s)).count();
        let far = url
            .query_pairs()
            .any(|(_, value)| date_beyond(&value, now_year, CALENDAR_HORIZON_YEARS))
            || segments
                .iter()
                .any(|s| date_beyond(s, now_year, CALENDAR_HORIZON_YEARS));
        if dates > limits.calendar_params_max || far {
            return Err(Trap::Calendar);
        }
    }
    Ok(())
}

/// `2024-01-31`, `2024/01`, `20240131`, `2024-01`: the shapes calendars use.
/// A calendar URL with one date is fine (a page per day is a real site); a
/// crawl that has followed "next" long enough to carry two is in the trap, and
/// so is any date more than a year past the crawl's present.
pub fn looks_like_date(text: &str) -> bool {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let seps = text
        .chars()
        .filter(|c| matches!(c, '-' | '/' | '.'))
        .count();
    if digits.len() + seps != text.len() || !(6..=8).contains(&digits.len()) {
        return false;
    }
    let year: u32 = digits[..4].parse().unwrap_or(0);
    let month: u32 = digits[4..6].parse().unwrap_or(0);
    (1900..=2999).contains(&year) && (1..=12).contains(&month)
}

/// A calendar date beyond the horizon (in years) from `now_year` is a trap
/// even alone: calendars link forward without end.
pub fn date_beyond(text: &str, now_year: u32, horizon_years: u32) -> bool {
    if !looks_like_date(text) {
        return false;
    }
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let year: u32 = digits[..4].parse().unwrap_or(0);
    year > now_year + horizon_years || year + horizon_years < now_year
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("valid")
    }

    #[test]
    fn each_limit_fires() {
        let limits = TrapLimits {
            url_length_max: 60,
            depth_max: 3,
            ..TrapLimits::default()
        };
        assert_eq!(check(&url("http://a.b/x"), 3, &limits, 2026), Ok(()));
        assert_eq!(
            check(&url("http://a.b/x"), 4, &limits, 2026),
            Err(Trap::Depth)
        );
        let long = format!("http://a.b/{}", "x".repeat(60));
        assert_eq!(check(&url(&long), 0, &limits, 2026), Err(Trap::UrlLength));
        assert_eq!(
            check(&url("http://a.b/a/b/a/c/a/a"), 0, &limits, 2026),
            Err(Trap::RepeatedSegment)
        );
        assert_eq!(
            check(&url("http://a.b/a/b/a/c/a"), 0, &limits, 2026),
            Ok(())
        );
        assert_eq!(
            check(
                &url("http://a.b/cal?from=2024-01-01&to=2024-01-02"),
                0,
                &limits,
                2026
            ),
            Err(Trap::Calendar)
        );
        assert_eq!(
            check(&url("http://a.b/cal?d=2024-01-01"), 0, &limits, 2026),
            Ok(())
        );
        assert_eq!(
            check(&url("http://a.b/2024/01/?d=2024-01-01"), 0, &limits, 2026),
            Ok(())
        );
        assert_eq!(
            check(
                &url("http://a.b/2024-01-01/?d=2024-01-01"),
                0,
                &limits,
                2026
            ),
            Err(Trap::Calendar)
        );
    }

    #[test]
    fn date_shapes() {
        for yes in ["2024-01-31", "2024/01", "20240131", "2024.12"] {
            assert!(looks_like_date(yes), "{yes}");
        }
        for no in ["12345", "2024-13-01", "abc", "1234567890", "0999-01"] {
            assert!(!looks_like_date(no), "{no}");
        }
        assert!(date_beyond("2031-01-01", 2026, 2));
        assert!(!date_beyond("2027-01-01", 2026, 2));
    }
}
