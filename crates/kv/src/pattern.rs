//! Glob-style patterns, as `KEYS`, `SCAN MATCH` and `PSUBSCRIBE` use them.
//!
//! Redis's syntax: `*` any run, `?` any one byte, `[abc]`, `[^a]`, `[a-z]`
//! classes, `\x` a literal. Matching is iterative with one backtrack point
//! (the last `*`), so it is O(pattern × text) at worst: a hostile pattern
//! like `a*a*a*a*b` cannot make the server spin (Redis's recursive matcher
//! needed a recursion cap for that).

/// Whether `text` matches the glob `pattern`.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            if pattern[p] == b'*' {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            if let Some(next) = match_one(pattern, p, text[t]) {
                p = next;
                t += 1;
                continue;
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches one pattern token at `p` against byte `c`; the index after the
/// token if it matches.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(p + 1),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == c).then_some(p + 2),
        b'[' => match_class(pattern, p + 1, c),
        literal => (literal == c).then_some(p + 1),
    }
}

/// Matches a `[...]` class starting after the `[`; an unclosed class runs to
/// the end of the pattern (as in Redis).
fn match_class(pattern: &[u8], mut p: usize, c: u8) -> Option<usize> {
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut matched = false;
    while p < pattern.len() && pattern[p] != b']' {
        if pattern[p] == b'\\' && p + 1 < pattern.len() {
            matched |= pattern[p + 1] == c;
            p += 2;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' && pattern[p + 2] != b']' {
            let (lo, hi) = (
                pattern[p].min(pattern[p + 2]),
                pattern[p].max(pattern[p + 2]),
            );
            matched |= (lo..=hi).contains(&c);
            p += 3;
        } else {
            matched |= pattern[p] == c;
            p += 1;
        }
    }
    let end = if p < pattern.len() { p + 1 } else { p };
    (matched != negate).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::glob_match as m;

    #[test]
    fn redis_glob_semantics() {
        assert!(m(b"*", b""));
        assert!(m(b"*", b"anything"));
        assert!(m(b"h?llo", b"hello"));
        assert!(m(b"h*llo", b"heeeello"));
        assert!(m(b"h[ae]llo", b"hallo"));
        assert!(!m(b"h[ae]llo", b"hillo"));
        assert!(m(b"h[^e]llo", b"hallo"));
        assert!(!m(b"h[^e]llo", b"hello"));
        assert!(m(b"h[a-b]llo", b"hbllo"));
        assert!(m(b"news.*", b"news.tech"));
        assert!(!m(b"news.*", b"new"));
        assert!(m(b"a\\*b", b"a*b"));
        assert!(!m(b"a\\*b", b"axb"));
        assert!(m(b"*a*b", b"xxaxxb"));
        assert!(!m(b"a*a*a*a*a*a*a*a*b", &[b'a'; 5000]));
    }
}
