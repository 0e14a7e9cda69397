//! The booking page: public while `/v1` needs its key, a form books once
//! however often it is posted, rooms are counted like an API booking, sold
//! out and bad input are answered with a page and the right status, and
//! what the page prints is escaped.

use hotel::Mode;

use crate::support::{Db, Server, day};

/// A server whose `/v1` needs a key; hotel 1 (named `name`) has 3 rooms of
/// type 1 for the next 10 nights.
async fn server(name: &str) -> Server {
    let server = Server::start(Db::Sqlite, Mode::Constraint, 1.0, |config| {
        config.api_key = Some("secret".into());
    })
    .await;
    let store = server.booker.store();
    store.put_hotel(1, name, 0).await.unwrap();
    store.put_room_type(1, 1, "Standard", 10_000).await.unwrap();
    let dates: Vec<String> = (0..10).map(day).collect();
    store.set_inventory(1, 1, &dates, 3, 100).await.unwrap();
    server
}

async fn get_page(server: &Server, path: &str) -> (u16, String) {
    let response = server.client.get(server.url(path)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post_form(server: &Server, form: &[(&str, String)]) -> (u16, String) {
    let response = server
        .client
        .post(server.url("/hotel/book"))
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The `reservation_id` of the page's first form.
fn form_key(page: &str) -> String {
    let at = page
        .find("name=\"reservation_id\" value=\"")
        .expect("a form")
        + 29;
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

fn form(id: &str, rooms: &str) -> Vec<(&'static str, String)> {
    vec![
        ("reservation_id", id.to_string()),
        ("hotel_id", "1".into()),
        ("room_type_id", "1".into()),
        ("check_in", day(1)),
        ("check_out", day(3)),
        ("guest_id", "alice".into()),
        ("rooms", rooms.to_string()),
    ]
}

#[tokio::test]
async fn a_form_books_once_and_counts_like_the_api() {
    let server = server("Grand").await;
    let (status, _) = server.get("/v1/hotels/1").await;
    assert_eq!(status, 401, "the API keeps its key");
    let query = format!(
        "/hotel/?hotel_id=1&check_in={}&check_out={}",
        day(1),
        day(3)
    );
    let (status, page) = get_page(&server, &query).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Grand") && page.contains("Standard"),
        "{page}"
    );
    assert!(page.contains("<td>3</td>"), "3 rooms left: {page}");
    // Each rendering carries its own key.
    let (_, again) = get_page(&server, &query).await;
    let key = form_key(&page);
    assert_ne!(key, form_key(&again));

    let (status, booked) = post_form(&server, &form(&key, "2")).await;
    assert_eq!(status, 201, "{booked}");
    assert!(
        booked.contains(&key) && booked.contains("pending"),
        "{booked}"
    );
    let (status, replay) = post_form(&server, &form(&key, "2")).await;
    assert_eq!(status, 200, "{replay}");
    assert!(replay.contains("booked once"), "{replay}");
    assert_eq!(server.reserved(1, 3).await, [2, 2]);
    let reservation = server.booker.store().reservation(&key).await.unwrap();
    let reservation = reservation.expect("the page's booking is a reservation");
    assert_eq!(
        (reservation.guest_id.as_str(), reservation.rooms),
        ("alice", 2)
    );

    // The same key with another body is refused, as in the API.
    let (status, page) = post_form(&server, &form(&key, "1")).await;
    assert_eq!(status, 422, "{page}");
    // One room left: the page says so, and two more are refused.
    let (_, page) = get_page(&server, &query).await;
    assert!(page.contains("<td>1</td>"), "{page}");
    let (status, page) = post_form(&server, &form("web-other", "2")).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("Not booked"), "{page}");
    assert_eq!(server.reserved(1, 3).await, [2, 2]);
    let (status, _) = post_form(&server, &form("web-last", "1")).await;
    assert_eq!(status, 201);
    let (_, page) = get_page(&server, &query).await;
    assert!(page.contains("sold out"), "{page}");
    assert!(!page.contains("<form method=\"post\""), "{page}");
}

#[tokio::test]
async fn bad_input_is_a_page_with_the_right_status() {
    let server = server("<b>Grand</b> & co").await;
    let (status, page) = get_page(&server, "/hotel/").await;
    assert_eq!(status, 200, "defaults: hotel 1, tomorrow: {page}");
    assert!(page.contains("&lt;b&gt;Grand&lt;/b&gt; &amp; co"), "{page}");
    assert!(!page.contains("<b>Grand"), "{page}");
    let yesterday = format!(
        "/hotel/?hotel_id=1&check_in={}&check_out={}",
        day(-1),
        day(1)
    );
    for (path, status, needle) in [
        ("/hotel/?hotel_id=7".to_string(), 404, "no hotel 7"),
        ("/hotel/?hotel_id=x".to_string(), 400, "hotel must be"),
        (
            "/hotel/?hotel_id=1&check_in=2030-02-30".to_string(),
            400,
            "not a date",
        ),
        (yesterday, 400, "in the past"),
        (
            "/hotel/?hotel_id=1&check_in=<script>".to_string(),
            400,
            "&lt;script&gt;",
        ),
    ] {
        let (got, page) = get_page(&server, &path).await;
        assert_eq!(got, status, "{path}: {page}");
        assert!(page.contains(needle), "{path}: {page}");
        assert!(!page.contains("<script>"), "{path}: {page}");
    }
    let mut rooms = form("web-1", "many");
    let (status, page) = post_form(&server, &rooms).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("rooms must be a whole number"), "{page}");
    rooms[6].1 = "11".into();
    let (status, page) = post_form(&server, &rooms).await;
    assert_eq!(status, 400, "{page}");
    let mut guest = form("web-1", "1");
    guest[5].1 = "a b".into();
    let (status, page) = post_form(&server, &guest).await;
    assert!(status == 400 && page.contains("guest_id must be"), "{page}");
    // A form without its fields is refused whole.
    let (status, page) = post_form(&server, &[("hotel_id", "1".to_string())]).await;
    assert_eq!(status, 422, "{page}");
    assert_eq!(server.reserved(1, 3).await, [0, 0]);
}
