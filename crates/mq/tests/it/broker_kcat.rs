//! Interop with kcat (librdkafka, Debian's package): the "done when"
//! round trip, and a consumer group resuming after its committed offset.
//!
//! kcat runs as a child process, killed on drop; every wait is bounded.
#![allow(clippy::unwrap_used)] // test helpers unwrap: a failure is the test failing

use crate::broker_support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use broker_support::TestBroker;
use testkit::ChildGuard;

const WAIT: Duration = Duration::from_secs(60);

fn kcat(broker: &TestBroker, args: &[&str]) -> Command {
    let mut command = Command::new("kcat");
    command.arg("-b").arg(broker.bootstrap()).args(args);
    command
}

fn spawn(command: Command, stdin: Stdio) -> ChildGuard {
    spawn_with(command, stdin, Stdio::null())
}

/// kcat with its stderr piped (see [`log_of`]).
fn spawn_logged(command: Command) -> ChildGuard {
    spawn_with(command, Stdio::null(), Stdio::piped())
}

fn spawn_with(mut command: Command, stdin: Stdio, stderr: Stdio) -> ChildGuard {
    ChildGuard(
        command
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("kcat must be installed: scripts/test installs it (apt-get install kcat)"),
    )
}

/// Produces `lines` to `topic` and waits for kcat to finish (it flushes on EOF).
fn produce(broker: &TestBroker, topic: &str, lines: &[String]) {
    produce_with(broker, &["-P", "-t", topic], lines);
}

/// [`produce`] with kcat arguments of the caller's choosing.
fn produce_with(broker: &TestBroker, args: &[&str], lines: &[String]) {
    let mut child = spawn(kcat(broker, args), Stdio::piped());
    let mut stdin = child.0.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    wait_exit(&mut child, "kcat -P");
}

fn wait_exit(child: &mut ChildGuard, what: &str) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(
            started.elapsed() < WAIT,
            "{what} did not exit within {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A reader's lines through a channel (so reads can time out).
fn line_channel(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { return };
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

/// A child's stdout lines; run kcat with `-u` (unbuffered) when reading
/// before it exits.
fn lines_of(child: &mut ChildGuard) -> mpsc::Receiver<String> {
    line_channel(child.0.stdout.take().unwrap())
}

/// kcat's stderr (its `% Group ... rebalanced` notes), line by line.
fn log_of(child: &mut ChildGuard) -> mpsc::Receiver<String> {
    line_channel(child.0.stderr.take().unwrap())
}

/// Reads `n` lines, or panics after [`WAIT`].
fn take(lines: &mpsc::Receiver<String>, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    (0..n)
        .map(|i| {
            let left = deadline.saturating_duration_since(Instant::now());
            lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("only {i} of {n} messages arrived within {WAIT:?}"))
        })
        .collect()
}

fn numbered(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!("message-{i}")).collect()
}

#[test]
fn kcat_produces_and_consumes() {
    let broker = TestBroker::start();
    let sent = numbered(0..20);
    produce(&broker, "demo", &sent);
    let mut consumer = spawn(
        kcat(&broker, &["-C", "-t", "demo", "-e", "-q"]),
        Stdio::null(),
    );
    let lines = lines_of(&mut consumer);
    assert!(wait_exit(&mut consumer, "kcat -C -e").success());
    let received: Vec<String> = lines.try_iter().collect();
    assert_eq!(received, sent);
}

#[test]
fn kcat_idempotent_producer_round_trips() {
    let broker = TestBroker::start();
    let sent = numbered(0..500);
    // librdkafka asks InitProducerId, then numbers its batches per partition.
    produce_with(
        &broker,
        &["-X", "enable.idempotence=true", "-P", "-t", "idem"],
        &sent,
    );
    let mut consumer = spawn(
        kcat(&broker, &["-C", "-t", "idem", "-e", "-q"]),
        Stdio::null(),
    );
    let lines = lines_of(&mut consumer);
    assert!(wait_exit(&mut consumer, "kcat -C -e").success());
    assert_eq!(lines.try_iter().collect::<Vec<_>>(), sent);
}

#[test]
fn a_consumer_group_resumes_after_its_committed_offset() {
    let broker = TestBroker::start();
    produce(&broker, "demo", &numbered(0..10));

    // First run: no committed offset yet, so start from the earliest.
    let mut first = spawn(
        kcat(
            &broker,
            &["-u", "-G", "g1", "-X", "auto.offset.reset=earliest", "demo"],
        ),
        Stdio::null(),
    );
    let lines = lines_of(&mut first);
    assert_eq!(take(&lines, 10), numbered(0..10));
    // Stop it as a user would (Ctrl-C): kcat commits and leaves the group.
    let pid = first.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_exit(&mut first, "kcat -G after SIGINT");

    produce(&broker, "demo", &numbered(10..15));

    // Second run: resumes after the committed offset, so exactly the new five
    // (-e: exit once the end of the partition is reached).
    let mut second = spawn(kcat(&broker, &["-G", "g1", "-e", "demo"]), Stdio::null());
    let lines = lines_of(&mut second);
    assert!(wait_exit(&mut second, "kcat -G -e").success());
    let received: Vec<String> = lines.try_iter().collect();
    assert_eq!(received, numbered(10..15));
}

#[test]
fn a_second_consumer_joining_takes_over_half_the_partitions() {
    let broker = TestBroker::start_with(|c| c.num_partitions = 4);
    produce(&broker, "shared", &numbered(0..4));
    let args = [
        "-u",
        "-G",
        "g2",
        "-X",
        "auto.offset.reset=earliest",
        "shared",
    ];
    let mut a = spawn_logged(kcat(&broker, &args));
    let (a_lines, a_log) = (lines_of(&mut a), log_of(&mut a));
    wait_for_log(&a_log, "assigned:", 1);
    let mut b = spawn_logged(kcat(&broker, &args));
    let (b_lines, b_log) = (lines_of(&mut b), log_of(&mut b));
    // The join of b rebalances the group: a is assigned again (its second
    // assignment), b for the first time.
    wait_for_log(&b_log, "assigned:", 1);
    wait_for_log(&a_log, "assigned:", 1);
    // One message per partition (kcat -p), now that each owns two of them.
    for partition in 0..4u32 {
        let mut producer = spawn(
            kcat(
                &broker,
                &["-P", "-t", "shared", "-p", &partition.to_string()],
            ),
            Stdio::piped(),
        );
        let mut stdin = producer.0.stdin.take().unwrap();
        writeln!(stdin, "late-{partition}").unwrap();
        drop(stdin);
        wait_exit(&mut producer, "kcat -P -p");
    }
    let deadline = Instant::now() + WAIT;
    let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
    while to_a.len() + to_b.len() < 4 {
        assert!(
            Instant::now() < deadline,
            "late messages: a {to_a:?}, b {to_b:?}"
        );
        to_a.extend(
            a_lines
                .recv_timeout(Duration::from_millis(20))
                .ok()
                .filter(|l| l.starts_with("late")),
        );
        to_b.extend(
            b_lines
                .recv_timeout(Duration::from_millis(20))
                .ok()
                .filter(|l| l.starts_with("late")),
        );
    }
    assert!(
        !to_a.is_empty() && !to_b.is_empty(),
        "both consume: a {to_a:?}, b {to_b:?}"
    );
}

/// Waits until `count` lines of `log` contain `needle`.
fn wait_for_log(log: &mpsc::Receiver<String>, needle: &str, count: usize) {
    let deadline = Instant::now() + WAIT;
    let mut found = 0;
    while found < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = log.recv_timeout(left).unwrap_or_else(|_| {
            panic!("kcat did not log {needle:?} {count} times within {WAIT:?}")
        });
        found += usize::from(line.contains(needle));
    }
}

#[test]
fn committed_offsets_survive_a_broker_restart() {
    let broker = TestBroker::start();
    produce(&broker, "kept", &numbered(0..6));
    let args = ["-G", "g3", "-X", "auto.offset.reset=earliest", "-e", "kept"];
    let mut first = spawn(kcat(&broker, &args), Stdio::null());
    let lines = lines_of(&mut first);
    assert!(wait_exit(&mut first, "kcat -G -e").success());
    assert_eq!(lines.try_iter().count(), 6);

    let dir = broker.stop();
    let config = mq::Config {
        data_dir: dir.path().to_path_buf(),
        ..mq::Config::default()
    };
    let broker = TestBroker::start_in(dir, config);
    produce(&broker, "kept", &numbered(6..8));
    let mut second = spawn(kcat(&broker, &args), Stdio::null());
    let lines = lines_of(&mut second);
    assert!(wait_exit(&mut second, "kcat -G -e").success());
    assert_eq!(lines.try_iter().collect::<Vec<_>>(), numbered(6..8));
}
