//! Bearer tokens, read and compared one way for every server.
//!
//! Several endpoints take a shared secret in `Authorization: Bearer <token>`
//! (the admin endpoint's stop/start, the gateway's purge, the hotel API key,
//! the crawler cluster). Reading the header and comparing the secret are
//! the same two steps each time; the comparison must not stop at the first
//! differing byte, or its timing tells an attacker how much of a guess was
//! right.

use axum::http::{HeaderMap, header};

/// The token of `Authorization: Bearer <token>`, if the request sent one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
}

/// Whether `given` equals `expected`, comparing every byte (no timing oracle
/// beyond the length).
pub fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether the request carries `Authorization: Bearer <expected>`.
pub fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    bearer(headers).is_some_and(|given| same_secret(given.as_bytes(), expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn only_the_exact_bearer_token_matches() {
        let mut headers = HeaderMap::new();
        assert!(!bearer_matches(&headers, "s3cret"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert_eq!(bearer(&headers), Some("s3cret"));
        assert!(bearer_matches(&headers, "s3cret"));
        assert!(!bearer_matches(&headers, "s3cre"));
        assert!(!bearer_matches(&headers, "s3cret!"));
        assert!(!bearer_matches(&headers, "S3cret"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic s3cret"),
        );
        assert_eq!(bearer(&headers), None);
        assert!(!bearer_matches(&headers, "s3cret"));
    }
}
