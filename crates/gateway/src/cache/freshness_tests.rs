//! RFC 9111's rules one by one, at exact times.

use super::*;

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn date(ms: u64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
}

const NOW: u64 = 1_700_000_000_000;

#[test]
fn directives_parse_both_ways() {
    let cc = parse(&headers(&[
        ("cache-control", "public, max-age=60, s-maxage=\"120\""),
        (
            "cache-control",
            "stale-while-revalidate=5, private=\"set-cookie, x\"",
        ),
    ]));
    assert!(cc.public && cc.private);
    assert_eq!((cc.max_age, cc.s_maxage), (Some(60), Some(120)));
    assert_eq!(cc.stale_while_revalidate, Some(5));
    let request = parse(&headers(&[(
        "cache-control",
        "max-stale, min-fresh=3, only-if-cached",
    )]));
    assert_eq!(request.max_stale, Some(None));
    assert_eq!(request.min_fresh, Some(3));
    assert!(request.only_if_cached);
    assert!(parse(&headers(&[("pragma", "no-cache")])).no_cache);
    assert!(
        !parse(&headers(&[
            ("pragma", "no-cache"),
            ("cache-control", "max-age=1")
        ]))
        .no_cache
    );
}

#[test]
fn invalid_and_conflicting_max_age_is_stale() {
    assert_eq!(
        parse(&headers(&[("cache-control", "max-age=abc")])).max_age,
        Some(0)
    );
    assert_eq!(
        parse(&headers(&[("cache-control", "max-age=-5")])).max_age,
        Some(0)
    );
    assert_eq!(
        parse(&headers(&[("cache-control", "max-age=5, max-age=10")])).max_age,
        Some(0)
    );
    assert_eq!(
        parse(&headers(&[(
            "cache-control",
            "max-age=99999999999999999999"
        )]))
        .max_age,
        Some(DELTA_SECONDS_MAX)
    );
}

#[test]
fn lifetime_prefers_s_maxage_then_max_age_then_expires() {
    let none = Overrides::default();
    let ok = StatusCode::OK;
    let h = headers(&[("cache-control", "max-age=10, s-maxage=20")]);
    assert_eq!(lifetime_ms(ok, &h, &parse(&h), NOW, &none), 20_000);
    let h = headers(&[
        ("cache-control", "max-age=10"),
        ("expires", &date(NOW + 99_000)),
    ]);
    assert_eq!(lifetime_ms(ok, &h, &parse(&h), NOW, &none), 10_000);
    let h = headers(&[("date", &date(NOW)), ("expires", &date(NOW + 30_000))]);
    assert_eq!(lifetime_ms(ok, &h, &parse(&h), NOW, &none), 30_000);
    let h = headers(&[("expires", "0")]);
    assert_eq!(lifetime_ms(ok, &h, &parse(&h), NOW, &none), 0);
    let h = headers(&[("cache-control", "no-cache, max-age=60")]);
    assert_eq!(lifetime_ms(ok, &h, &parse(&h), NOW, &none), 0);
}

#[test]
fn heuristic_is_off_by_default_and_route_overrides_apply() {
    let ok = StatusCode::OK;
    let h = headers(&[
        ("date", &date(NOW)),
        ("last-modified", &date(NOW - 100_000)),
    ]);
    let cc = parse(&h);
    assert_eq!(lifetime_ms(ok, &h, &cc, NOW, &Overrides::default()), 0);
    let heuristic = Overrides {
        heuristic: true,
        ..Overrides::default()
    };
    assert_eq!(lifetime_ms(ok, &h, &cc, NOW, &heuristic), 10_000);
    let default = Overrides {
        default_ttl_ms: Some(5_000),
        ..Overrides::default()
    };
    assert_eq!(lifetime_ms(ok, &h, &cc, NOW, &default), 5_000);
    let capped = Overrides {
        max_ttl_ms: Some(1_000),
        ..Overrides::default()
    };
    let long = headers(&[("cache-control", "max-age=3600")]);
    assert_eq!(lifetime_ms(ok, &long, &parse(&long), NOW, &capped), 1_000);
}

#[test]
fn age_takes_the_larger_of_apparent_and_corrected() {
    let h = headers(&[("age", "7"), ("date", &date(NOW - 2_000))]);
    assert_eq!(initial_age_ms(&h, NOW - 500, NOW), 7_500);
    let h = headers(&[("date", &date(NOW - 20_000))]);
    assert_eq!(initial_age_ms(&h, NOW, NOW), 20_000);
    let h = headers(&[("age", "bogus")]);
    assert_eq!(initial_age_ms(&h, NOW, NOW), 0);
}

#[test]
fn storability_rules() {
    let ok = StatusCode::OK;
    let empty = HeaderMap::new();
    let check = |request: &HeaderMap, status, response: &HeaderMap, lifetime| {
        storable(
            request,
            &parse(request),
            status,
            response,
            &parse(response),
            lifetime,
        )
    };
    let fresh = headers(&[("cache-control", "max-age=60")]);
    assert_eq!(check(&empty, ok, &fresh, 60_000), Ok(()));
    let h = headers(&[("cache-control", "no-store, max-age=60")]);
    assert_eq!(check(&empty, ok, &h, 60_000), Err(NotStorable::NoStore));
    let no_store_request = headers(&[("cache-control", "no-store")]);
    assert_eq!(
        check(&no_store_request, ok, &fresh, 60_000),
        Err(NotStorable::NoStore)
    );
    let h = headers(&[("cache-control", "private, max-age=60")]);
    assert_eq!(check(&empty, ok, &h, 60_000), Err(NotStorable::Private));
    assert_eq!(
        check(&empty, StatusCode::PARTIAL_CONTENT, &fresh, 60_000),
        Err(NotStorable::Status)
    );
    assert_eq!(
        check(&empty, StatusCode::INTERNAL_SERVER_ERROR, &fresh, 60_000),
        Err(NotStorable::Status)
    );
    let h = headers(&[("cache-control", "max-age=60"), ("vary", "*")]);
    assert_eq!(check(&empty, ok, &h, 60_000), Err(NotStorable::VaryStar));
    let h = headers(&[("cache-control", "max-age=60"), ("set-cookie", "a=b")]);
    assert_eq!(check(&empty, ok, &h, 60_000), Err(NotStorable::SetCookie));
    let authorized = headers(&[("authorization", "Bearer x")]);
    assert_eq!(
        check(&authorized, ok, &fresh, 60_000),
        Err(NotStorable::Authorized)
    );
    let h = headers(&[("cache-control", "public, max-age=60")]);
    assert_eq!(check(&authorized, ok, &h, 60_000), Ok(()));
    assert_eq!(check(&empty, ok, &empty, 0), Err(NotStorable::Useless));
    let validated = headers(&[("etag", "\"v1\"")]);
    assert_eq!(check(&empty, ok, &validated, 0), Ok(()));
}

#[test]
fn request_directives_decide_use() {
    let none = CacheControl::default();
    assert_eq!(usable(&none, 5_000, 10_000, false), Usable::Fresh);
    assert_eq!(usable(&none, 10_000, 10_000, false), Usable::Revalidate);
    let no_cache = CacheControl {
        no_cache: true,
        ..CacheControl::default()
    };
    assert_eq!(usable(&no_cache, 0, 10_000, false), Usable::Revalidate);
    let max_age = CacheControl {
        max_age: Some(2),
        ..CacheControl::default()
    };
    assert_eq!(usable(&max_age, 3_000, 10_000, false), Usable::Revalidate);
    let min_fresh = CacheControl {
        min_fresh: Some(6),
        ..CacheControl::default()
    };
    assert_eq!(usable(&min_fresh, 5_000, 10_000, false), Usable::Revalidate);
    let max_stale = CacheControl {
        max_stale: Some(Some(3)),
        ..CacheControl::default()
    };
    assert_eq!(
        usable(&max_stale, 12_000, 10_000, false),
        Usable::StaleAccepted
    );
    assert_eq!(
        usable(&max_stale, 14_000, 10_000, false),
        Usable::Revalidate
    );
    assert_eq!(usable(&max_stale, 12_000, 10_000, true), Usable::Revalidate);
}
