//! `hyperscale up`'s hotel service, checked from outside (issue 17's "done
//! when"): the console links the booking page, the page (through the
//! gateway) lists the seeded hotel, a booking posted by its form shows in
//! `GET /v1/reservations/{id}` (which needs the printed API key), a
//! re-posted form books once, and the gateway rate limits the page.
//! Called by the `up` test with the addresses from its table.

use crate::common::{get, request};

/// The hidden fields of the page's first booking form.
fn first_form(page: &str) -> Vec<(String, String)> {
    let start = page.find("<form method=\"post\"").expect("a booking form");
    let form = &page[start..start + page[start..].find("</form>").unwrap()];
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(at) = rest.find("type=\"hidden\" name=\"") {
        rest = &rest[at + "type=\"hidden\" name=\"".len()..];
        let name = &rest[..rest.find('"').unwrap()];
        let value_at = rest.find("value=\"").unwrap() + "value=\"".len();
        let value = &rest[value_at..value_at + rest[value_at..].find('"').unwrap()];
        fields.push((name.to_string(), value.to_string()));
    }
    fields
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    &fields.iter().find(|(n, _)| n == name).unwrap().1
}

/// `line` is `up`'s `hotel:` line: `hotel: book at URL  API: curl -H
/// 'X-API-Key: KEY' ...`.
pub fn check(console: &str, gateway: &str, line: &str) {
    let words: Vec<&str> = line.split_whitespace().collect();
    let page_url = words[words.iter().position(|w| *w == "at").unwrap() + 1];
    assert_eq!(page_url, format!("http://{gateway}/hotel/"), "{line}");
    let key =
        words[words.iter().position(|w| *w == "'X-API-Key:").unwrap() + 1].trim_end_matches('\'');
    assert!(key.len() >= 32, "{line}");

    let (status, console_page) = get(&format!("http://{console}/"));
    assert_eq!(status, 200);
    assert!(
        console_page.contains(&format!("href=\"{page_url}\"")),
        "the console links the booking page: {console_page}"
    );

    // The page through the gateway: hotel 1 (seeded) and tomorrow's stay.
    let (status, page) = get(page_url);
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Hotel 1") && page.contains("Standard"),
        "{page}"
    );
    let fields = first_form(&page);
    let id = field(&fields, "reservation_id").to_string();
    let form: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .chain(["guest_id=alice".into(), "rooms=2".into()])
        .collect();
    let form = form.join("&");
    let post = |body: &str| {
        request(
            "POST",
            &format!("http://{gateway}/hotel/book"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body,
        )
    };
    let (status, booked) = post(&form);
    assert_eq!(status, 201, "{booked}");
    assert!(booked.contains(&id), "{booked}");
    // A double click (or a reload re-posting the form) books once.
    let (status, again) = post(&form);
    assert_eq!(status, 200, "{again}");
    assert!(
        again.contains(&id) && again.contains("booked once"),
        "{again}"
    );

    // The API needs the key, through the gateway too.
    let reservation_url = format!("http://{gateway}/v1/reservations/{id}");
    let (status, _) = get(&reservation_url);
    assert_eq!(status, 401);
    let with_key = |url: &str| request("GET", url, &[("X-API-Key", key)], "");
    let (status, json) = with_key(&reservation_url);
    assert_eq!(status, 200, "{json}");
    let reservation: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(reservation["reservation_id"], id.as_str(), "{json}");
    assert_eq!(reservation["guest_id"], "alice", "{json}");
    assert_eq!(reservation["rooms"], 2, "{json}");
    assert_eq!(reservation["status"], "pending", "{json}");
    assert_eq!(
        reservation["hotel_id"].to_string(),
        field(&fields, "hotel_id"),
        "{json}"
    );
    assert_eq!(
        reservation["check_in"],
        field(&fields, "check_in"),
        "{json}"
    );
    // Its rooms are counted once, on every night of the stay.
    let availability = format!(
        "http://{gateway}/v1/hotels/{}/availability?room_type={}&check_in={}&check_out={}",
        field(&fields, "hotel_id"),
        field(&fields, "room_type_id"),
        field(&fields, "check_in"),
        field(&fields, "check_out")
    );
    let (status, json) = with_key(&availability);
    assert_eq!(status, 200, "{json}");
    let availability: serde_json::Value = serde_json::from_str(&json).unwrap();
    let nights = availability["room_types"][0]["nights"].as_array().unwrap();
    assert!(!nights.is_empty(), "{json}");
    for night in nights {
        assert_eq!(night["total_reserved"], 2, "{json}");
    }

    // The gateway rate limits the page (120 a minute per client).
    let limited = (0..200).any(|_| get(&format!("{page_url}?hotel_id=0")).0 == 429);
    assert!(limited, "no 429 after 200 page requests");
}
