//! A long script makes other clients get `BUSY` after
//! `busy-reply-threshold`; `SCRIPT KILL` from another client stops it
//! (unless it wrote), and the server goes on serving.

use crate::common;

use common::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_clients_get_busy_and_script_kill_stops_a_script() {
    let server = TestServer::start().await;
    let mut admin = server.raw().await;
    admin
        .roundtrip(&["CONFIG", "SET", "busy-reply-threshold", "200"], "+OK\r\n")
        .await;
    let mut runner = server.raw().await;
    let script = "local i = 0 while true do i = i + 1 end";
    runner
        .send(&kv::protocol::encode_request(&[
            b"EVAL",
            script.as_bytes(),
            b"0",
        ]))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let mut other = server.raw().await;
    other
        .roundtrip(
            &["GET", "k"],
            "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n",
        )
        .await;
    other
        .roundtrip(
            &["FUNCTION", "KILL"],
            "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n",
        )
        .await;
    other.roundtrip(&["SCRIPT", "KILL"], "+OK\r\n").await;
    let reply = runner.read_until(b"\r\n").await;
    let reply = String::from_utf8_lossy(&reply);
    assert!(
        reply.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "),
        "{reply}"
    );
    other.roundtrip(&["SET", "k", "v"], "+OK\r\n").await;
    other
        .roundtrip(
            &["SCRIPT", "KILL"],
            "-NOTBUSY No scripts in execution right now.\r\n",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_that_wrote_cannot_be_killed() {
    let server = TestServer::start().await;
    let mut admin = server.raw().await;
    admin
        .roundtrip(&["CONFIG", "SET", "busy-reply-threshold", "100"], "+OK\r\n")
        .await;
    let mut runner = server.raw().await;
    // Writes, then spins for about a second.
    let script = "redis.call('SET', 'w', 1) local t = redis.call('TIME') local s = tonumber(t[1]) * 1e6 + tonumber(t[2]) local n = 0 while true do n = n + 1 if n % 100000 == 0 then local u = redis.call('TIME') if tonumber(u[1]) * 1e6 + tonumber(u[2]) - s > 1e6 then break end end end return n > 0";
    runner
        .send(&kv::protocol::encode_request(&[
            b"EVAL",
            script.as_bytes(),
            b"0",
        ]))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut other = server.raw().await;
    other
        .roundtrip(
            &["SCRIPT", "KILL"],
            "-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.\r\n",
        )
        .await;
    runner.expect(b":1\r\n").await;
    other.roundtrip(&["GET", "w"], "$1\r\n1\r\n").await;
}
