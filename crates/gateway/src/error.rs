//! Errors the gateway answers itself, as JSON `{"error": "..."}` with the
//! status that tells a client (and a retrying client library) what happened:
//! 502 the upstream failed, 503 no upstream is available, 504 the upstream
//! was too slow, 413 the body is too large, 408 the client was too slow.

use axum::body::Body;
use http::{HeaderValue, Response, StatusCode, header};

/// A JSON error response with `status` and a message a human can act on.
pub fn json(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(body(message)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::VIA, HeaderValue::from_static(crate::headers::VIA));
    response
}

/// The JSON body of an error: `{"error": message}`.
pub fn body(message: &str) -> String {
    serde_json::json!({ "error": message }).to_string()
}

/// The raw bytes of a 503 sent to a connection refused for `connections_max`,
/// written before hyper is involved (the connection is closed right after).
pub const CONNECTIONS_FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
connection: close\r\n\
content-length: 58\r\n\
\r\n\
{\"error\":\"gateway connection limit reached, retry later\"}\n";

#[cfg(test)]
mod tests {
    #[test]
    fn connections_full_length_is_right() {
        let text = std::str::from_utf8(super::CONNECTIONS_FULL).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body.len(), 58);
    }
}
