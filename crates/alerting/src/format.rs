//! Numbers as Prometheus's templates and API print them: Go's
//! `strconv.FormatFloat` (`%g`, `%e`, shortest or fixed precision) and the
//! `humanize*` functions of Prometheus's template library.
//!
//! Why a module: alert values appear in annotations, in `/api/v1/alerts`
//! and in notifications; they must read exactly as Prometheus writes them,
//! and Rust's float formatting differs from Go's (`1e6` vs `1e+06`).

/// Prometheus's `humanize`: SI prefixes, 4 significant digits.
pub fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_float(v, 'g', Some(4));
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", go_float(v, 'g', Some(4)))
}

/// Prometheus's `humanize1024`: binary prefixes.
pub fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return go_float(v, 'g', Some(4));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", go_float(v, 'g', Some(4)))
}

/// Prometheus's `humanizeDuration` of seconds: `1d 2h 3m 4s`, `1.5ms`.
pub fn humanize_duration(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{}s", go_float(v, 'g', Some(4)));
    }
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if a >= 1.0 {
        let secs = a as i64;
        let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
        if d != 0 {
            return format!("{sign}{d}d {h}h {m}m {s}s");
        }
        if h != 0 {
            return format!("{sign}{h}h {m}m {s}s");
        }
        if m != 0 {
            return format!("{sign}{m}m {s}s");
        }
        return format!("{sign}{}s", go_float(a, 'g', Some(4)));
    }
    let mut a = a;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if a >= 1.0 {
            break;
        }
        prefix = p;
        a *= 1000.0;
    }
    format!("{sign}{}{prefix}s", go_float(a, 'g', Some(4)))
}

/// A `float64` as Go's `strconv.FormatFloat(v, fmt, prec, 64)` writes it
/// (`fmt` is `'g'` or `'e'`; `prec` `None` is the shortest exact form, as
/// `%v` and `{{ $value }}` print). Prometheus's `value` fields and every
/// humanized number go through it.
pub fn go_float(v: f64, fmt: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    // Decimal digits and exponent: "d.ddde±x" from Rust's exact formatting.
    let sci = match (fmt, prec) {
        (_, None) => format!("{:e}", v.abs()),
        ('e', Some(p)) => format!("{:.*e}", p, v.abs()),
        (_, Some(p)) => format!("{:.*e}", p.max(1) - 1, v.abs()),
    };
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let neg = if v.is_sign_negative() { "-" } else { "" };
    let fmt_e = |digits: &str, decimals: usize| {
        let mut m = digits[..1].to_string();
        if decimals > 0 {
            m.push('.');
            let frac: String = digits[1..]
                .chars()
                .chain(std::iter::repeat('0'))
                .take(decimals)
                .collect();
            m.push_str(&frac);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{neg}{m}e{sign}{:02}", exp.abs())
    };
    if fmt == 'e' {
        let decimals = match prec {
            Some(p) => p,
            None => digits.trim_end_matches('0').len().max(1) - 1,
        };
        return fmt_e(&digits, decimals);
    }
    // %g: trailing zeros are not significant.
    let trimmed = digits.trim_end_matches('0');
    digits = if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    };
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let shortest = prec.is_none();
    let mut p = prec.map(|p| p.max(1) as i32).unwrap_or(nd);
    let mut eprec = p;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if shortest {
        eprec = 6;
    }
    if exp < -4 || exp >= eprec {
        if p > nd {
            p = nd;
        }
        return fmt_e(&digits, (p - 1).max(0) as usize);
    }
    if p > dp {
        p = nd;
    }
    let decimals = (p - dp).max(0) as usize;
    // Fixed notation from the digits and the decimal point position.
    let mut int_part = String::new();
    let mut frac = String::new();
    for i in 0..dp.max(1) {
        int_part.push(if i >= 0 && i < nd && dp > 0 {
            digits.as_bytes()[i as usize] as char
        } else {
            '0'
        });
    }
    for i in 0..decimals as i32 {
        let idx = dp + i;
        frac.push(if idx >= 0 && idx < nd {
            digits.as_bytes()[idx as usize] as char
        } else {
            '0'
        });
    }
    if decimals > 0 {
        format!("{neg}{int_part}.{frac}")
    } else {
        format!("{neg}{int_part}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_matches_go() {
        let cases = [
            (1.0, 'g', None, "1"),
            (0.5, 'g', None, "0.5"),
            (1e6, 'g', None, "1e+06"),
            (123456.0, 'g', None, "123456"),
            (1234567.0, 'g', None, "1.234567e+06"),
            (0.0001, 'g', None, "0.0001"),
            (0.00001, 'g', None, "1e-05"),
            (1.5, 'g', Some(4), "1.5"),
            (12345.0, 'g', Some(4), "1.234e+04"),
            (999.5, 'g', Some(4), "999.5"),
            (1.0, 'e', None, "1e+00"),
            (0.25, 'e', None, "2.5e-01"),
            (-3.0, 'g', None, "-3"),
            (0.0, 'g', None, "0"),
        ];
        for (v, f, p, want) in cases {
            assert_eq!(go_float(v, f, p), want, "{v} {f} {p:?}");
        }
    }

    #[test]
    fn humanize_matches_prometheus() {
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.0012), "1.2m");
        assert_eq!(humanize(12.0), "12");
        assert_eq!(humanize1024(2048.0), "2ki");
        assert_eq!(humanize_duration(3661.0), "1h 1m 1s");
        assert_eq!(humanize_duration(0.0015), "1.5ms");
    }
}
