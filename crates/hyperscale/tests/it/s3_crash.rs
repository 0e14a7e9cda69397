//! `kill -9` of `hyperscale s3 serve` during a stream of PUTs (boto3, four threads,
//! objects of one or two data-store chunks): after a restart every acknowledged object
//! reads back byte for byte, and every object listed is whole (each object's bytes are
//! derived from its key, so even a PUT that committed unacknowledged is checked).
//! Three rounds on one data directory.

use std::time::Duration;

use crate::common::{Guard, serve};
use crate::s3_harness::{PutStream, create_key, verify};

fn start(data: &str) -> (Guard, String) {
    let (guard, _lines, banner) = serve(
        ["s3", "serve", "--bind", "127.0.0.1:0", "--data-dir", data],
        Duration::from_secs(30),
    );
    let addr = banner
        .strip_prefix("s3 listening on ")
        .unwrap_or_else(|| panic!("unexpected banner {banner:?}"))
        .to_string();
    (guard, format!("http://{addr}"))
}

#[test]
fn acknowledged_puts_survive_kill_9_of_the_s3_server() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("s3");
    let data = data.to_str().unwrap();
    let key = create_key(data);
    let mut acked: Vec<String> = Vec::new();
    for round in 0..3 {
        let (mut server, endpoint) = start(data);
        let writer = PutStream::start(&endpoint, &key, round);
        // Kill after a number of acknowledgements that varies by round.
        acked.extend(writer.take(15 + 10 * round as usize));
        server.0.kill().unwrap();
        server.0.wait().unwrap();
        // The writer's threads fail; keep what it acknowledged before.
        acked.extend(writer.stop());

        let (_server, endpoint) = start(data);
        verify(&endpoint, &key, &acked, &format!("round {round}"));
    }
}
