//! The S3 API's request counter, `requests_total{method, class}`: what the
//! console's metrics page charts as the store's request rate, and the first
//! thing to look at when clients report errors (the `class` label splits
//! 2xx/3xx/4xx/5xx, so a burst of `AccessDenied` shows as 4xx).
//!
//! Counted where the connection hands a request to `s3s`, so every request is
//! counted once whatever the operation, including those refused before they
//! reach our code (bad signatures, unknown operations).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Labels of one request: its HTTP method and the class of its status.
type Labels = [(&'static str, &'static str); 2];

/// The store's request counters (cheap to clone: clones share the counts).
#[derive(Clone, Default, Debug)]
pub struct Metrics {
    requests: Family<Labels, Counter>,
}

impl Metrics {
    /// Registers the counters in `registry` (under its prefix: `up` uses `s3`,
    /// giving `hyperscale_s3_requests_total`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "requests",
            "S3 API requests answered, by HTTP method and status class",
            self.requests.clone(),
        );
        // Every usual series exists from the start at zero, so a rate over
        // them is 0 rather than absent before the first request.
        for method in ["GET", "PUT", "POST", "HEAD", "DELETE"] {
            for class in ["2xx", "4xx", "5xx"] {
                self.count(method, class);
            }
        }
    }

    /// Counts one answered request.
    pub fn record(&self, method: &hyper::Method, status: Option<hyper::StatusCode>) {
        let labels = [
            ("method", method_label(method)),
            ("class", class_label(status)),
        ];
        self.requests.get_or_create(&labels).inc();
    }

    /// Requests counted so far with `method` and status `class` (e.g. `"2xx"`).
    pub fn count(&self, method: &str, class: &str) -> u64 {
        let labels = [
            ("method", method_label_str(method)),
            ("class", class_str(class)),
        ];
        self.requests.get_or_create(&labels).get()
    }
}

/// The method as a label: S3's methods by name, anything else `other` (a
/// client cannot grow the label set).
fn method_label(method: &hyper::Method) -> &'static str {
    method_label_str(method.as_str())
}

fn method_label_str(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "PUT" => "PUT",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// `2xx`..`5xx`, or `error` when the connection failed before a response.
fn class_label(status: Option<hyper::StatusCode>) -> &'static str {
    match status.map(|s| s.as_u16() / 100) {
        Some(1) => "1xx",
        Some(2) => "2xx",
        Some(3) => "3xx",
        Some(4) => "4xx",
        Some(5) => "5xx",
        _ => "error",
    }
}

fn class_str(class: &str) -> &'static str {
    match class {
        "1xx" => "1xx",
        "2xx" => "2xx",
        "3xx" => "3xx",
        "4xx" => "4xx",
        "5xx" => "5xx",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_method_and_class_and_folds_unknown_methods() {
        let m = Metrics::default();
        m.record(&hyper::Method::GET, Some(hyper::StatusCode::OK));
        m.record(&hyper::Method::GET, Some(hyper::StatusCode::OK));
        m.record(&hyper::Method::PUT, Some(hyper::StatusCode::FORBIDDEN));
        m.record(&hyper::Method::from_bytes(b"BREW").unwrap(), None);
        assert_eq!(m.count("GET", "2xx"), 2);
        assert_eq!(m.count("PUT", "4xx"), 1);
        assert_eq!(m.count("other", "error"), 1);
        let mut registry = Registry::with_prefix("hyperscale_s3");
        m.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("hyperscale_s3_requests_total{method=\"GET\",class=\"2xx\"} 2"),
            "{text}"
        );
    }
}
