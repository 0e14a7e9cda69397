use super::*;

fn normal(path: &str) -> String {
    normalize_path(path)
        .unwrap_or_else(|err| panic!("{path}: {err}"))
        .to_string()
}

#[test]
fn the_issue_variants_all_become_the_plain_path() {
    for variant in [
        "/limited/",
        "//limited/",
        "/./limited/",
        "/x/../limited/",
        "/%6cimited/",
        "/%6Cimited/",
        "/%2flimited/",
        "/%2Flimited/",
        "///limited//",
        "/limited/.",
        "/limited/x/..",
        "/%2e/limited/",
        "/x/%2e%2e/limited/",
    ] {
        assert_eq!(normal(variant), "/limited/", "{variant}");
    }
}

#[test]
fn traversal_above_the_root_is_rejected() {
    for path in [
        "/../../../../etc/passwd",
        "/..",
        "/a/../..",
        "/%2e%2e/etc/passwd",
        "/a/%2e%2E/%2E./x",
        "/%2f..%2f..%2fetc",
    ] {
        assert_eq!(normalize_path(path), Err(Reject::AboveRoot), "{path}");
    }
    // Climbing back down after reaching the root is fine.
    assert_eq!(normal("/a/../b/./c/../d"), "/b/d");
}

#[test]
fn bad_escapes_nul_and_non_paths_are_rejected() {
    assert_eq!(normalize_path("/a%2"), Err(Reject::BadEscape));
    assert_eq!(normalize_path("/a%zz"), Err(Reject::BadEscape));
    assert_eq!(normalize_path("/a%00b"), Err(Reject::Nul));
    assert_eq!(normalize_path("*"), Err(Reject::NotAPath));
    assert_eq!(normalize_path(""), Err(Reject::NotAPath));
}

#[test]
fn escapes_are_canonical_and_reserved_bytes_stay_escaped() {
    assert_eq!(normal("/a%20b"), "/a%20b");
    assert_eq!(normal("/caf%c3%a9"), "/caf%C3%A9");
    assert_eq!(
        normal("/q%3fx"),
        "/q%3Fx",
        "an encoded ? must not start a query"
    );
    assert_eq!(normal("/p%25"), "/p%25");
    assert_eq!(normal("/%7euser/%21"), "/~user/!");
    assert_eq!(normal("/a\"b"), "/a%22b");
}

#[test]
fn canonical_paths_are_borrowed() {
    for path in [
        "/",
        "/a",
        "/a/",
        "/api/v1/users:search",
        "/a%20b",
        "/~x/y.z",
    ] {
        let normalized = normalize_path(path).unwrap();
        assert!(normalized.is_unchanged(), "{path}");
        assert_eq!(normalized.as_str(), path);
    }
    for path in ["//", "/a/./", "/%41", "/a%2f", "/a%2a", "/%e9"] {
        assert!(!normalize_path(path).unwrap().is_unchanged(), "{path}");
    }
}

#[test]
fn trailing_slashes_follow_rfc_3986() {
    assert_eq!(normal("/"), "/");
    assert_eq!(normal("//"), "/");
    assert_eq!(normal("/a/b/.."), "/a/");
    assert_eq!(normal("/a/."), "/a/");
    assert_eq!(normal("/a//"), "/a/");
    assert_eq!(normal("/a/.."), "/");
}
