//! The shell's Kafka clients: `hyperscale mq topics|produce|consume|groups`.
//!
//! Each verb connects to `--bootstrap` (default 127.0.0.1:9092) with
//! `mq::client`, does one thing and reports through `output` (tables from
//! `table`, or JSON with `--json`). Failures (broker down, unknown topic, a
//! Kafka error code) end as one line on stderr and a non-zero exit.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Duration;

use anyhow::{Context, bail};
use mq::client::Client;
use mq::client::consumer::{ConsumeOptions, Consumer};
use mq::client::producer::{Outgoing, Producer};

use crate::output::{emit, emit_json, note};
use crate::table::render;

const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";
/// Most lines sent in one produce request.
const PRODUCE_BATCH_MAX: usize = 1000;

#[derive(clap::Args)]
pub(super) struct Connect {
    /// A broker to reach the cluster through (HOST:PORT).
    #[arg(long, default_value = DEFAULT_BOOTSTRAP)]
    pub(super) bootstrap: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(super) json: bool,
}

/// Arguments of `hyperscale mq topics`.
#[derive(clap::Args)]
pub struct TopicsArgs {
    #[command(subcommand)]
    verb: TopicsVerb,
}

#[derive(clap::Subcommand)]
enum TopicsVerb {
    /// Create a topic.
    Create {
        /// Its name (1-249 of a-z A-Z 0-9 . _ -).
        topic: String,
        /// How many partitions.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// A topic setting KEY=VALUE (retention.ms, retention.bytes,
        /// segment.bytes, cleanup.policy=delete|compact, ...); repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        #[command(flatten)]
        connect: Connect,
    },
    /// List topics with their partition counts.
    List {
        #[command(flatten)]
        connect: Connect,
    },
    /// Partitions of a topic with their leader, offsets and size on disk.
    Describe {
        /// The topic.
        topic: String,
        #[command(flatten)]
        connect: Connect,
    },
    /// Delete a topic and its data.
    Delete {
        /// The topic.
        topic: String,
        #[command(flatten)]
        connect: Connect,
    },
}

/// Arguments of `hyperscale mq produce`.
#[derive(clap::Args)]
pub struct ProduceArgs {
    /// The topic (it must exist).
    topic: String,
    /// Split each line at the first SEP into key and value (lines without
    /// it are sent unkeyed).
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Send every record to this partition (default: by key, else round-robin).
    #[arg(long)]
    partition: Option<i32>,
    /// Acknowledgements to wait for: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    #[command(flatten)]
    connect: Connect,
}

/// Arguments of `hyperscale mq consume`.
#[derive(clap::Args)]
pub struct ConsumeArgs {
    /// The topic.
    topic: String,
    /// Start at the oldest record when no offset is committed (default: only new ones).
    #[arg(long)]
    from_beginning: bool,
    /// Consume as a member of this group, committing offsets after each batch.
    #[arg(long)]
    group: Option<String>,
    /// Stop after this many records.
    #[arg(long)]
    max_messages: Option<u64>,
    /// Stop when no record arrives for this long (default: never).
    #[arg(long)]
    timeout_ms: Option<u64>,
    #[command(flatten)]
    connect: Connect,
}

/// Arguments of `hyperscale mq groups`.
#[derive(clap::Args)]
pub struct GroupsArgs {
    #[command(subcommand)]
    verb: GroupsVerb,
}

#[derive(clap::Subcommand)]
enum GroupsVerb {
    /// List consumer groups.
    List {
        #[command(flatten)]
        connect: Connect,
    },
    /// Members, assignment, committed offset, end offset and lag of a group.
    Describe {
        /// The group id.
        group: String,
        #[command(flatten)]
        connect: Connect,
    },
}

pub(super) fn block_on<T>(work: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(work)
}

pub(super) fn row(cells: &[&dyn ToString]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Parses `KEY=VALUE` topic settings.
fn parse_configs(configs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    configs
        .iter()
        .map(|c| match c.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--config {c:?} is not KEY=VALUE (e.g. --config retention.ms=86400000)"),
        })
        .collect()
}

/// Parses `--acks`.
fn parse_acks(acks: &str) -> anyhow::Result<i16> {
    match acks {
        "0" => Ok(0),
        "1" => Ok(1),
        "all" | "-1" => Ok(-1),
        other => bail!("--acks {other:?}: use 0, 1 or all"),
    }
}

/// Splits a line into key and value at the first `separator`.
fn split_line(line: &str, separator: Option<&str>) -> Outgoing {
    match separator.and_then(|sep| line.split_once(sep)) {
        Some((key, value)) => Outgoing::new(value).key(key),
        None => Outgoing::new(line),
    }
}

/// Runs `hyperscale mq topics`.
pub fn topics(args: TopicsArgs) -> anyhow::Result<()> {
    match args.verb {
        TopicsVerb::Create {
            topic,
            partitions,
            configs,
            connect,
        } => {
            let configs = parse_configs(&configs)?;
            block_on(async {
                let mut client = Client::connect(&connect.bootstrap).await?;
                client.create_topic(&topic, partitions, &configs).await
            })?;
            if connect.json {
                emit_json(&serde_json::json!({
                    "created": topic, "partitions": partitions, "configs": configs,
                }))
            } else {
                emit(&format!(
                    "created topic {topic} with {partitions} partition(s)\n"
                ))
            }
        }
        TopicsVerb::List { connect } => {
            let topics = block_on(async {
                Client::connect(&connect.bootstrap)
                    .await?
                    .list_topics()
                    .await
            })?;
            if connect.json {
                return emit_json(&topics);
            }
            let mut rows = vec![row(&[&"TOPIC", &"PARTITIONS"])];
            rows.extend(topics.iter().map(|t| row(&[&t.name, &t.partitions])));
            emit(&render(&rows))
        }
        TopicsVerb::Describe { topic, connect } => {
            let description = block_on(async {
                Client::connect(&connect.bootstrap)
                    .await?
                    .describe_topic(&topic)
                    .await
            })?;
            if connect.json {
                return emit_json(&description);
            }
            let mut rows = vec![row(&[
                &"PARTITION",
                &"LEADER",
                &"REPLICAS",
                &"ISR",
                &"START",
                &"END",
                &"SIZE_BYTES",
            ])];
            rows.extend(description.partitions.iter().map(|p| {
                let size = p.size_bytes.map_or("?".to_string(), |s| s.to_string());
                let list =
                    |ids: &[i32]| ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
                row(&[
                    &p.partition,
                    &p.leader,
                    &list(&p.replicas),
                    &list(&p.isr),
                    &p.start_offset,
                    &p.end_offset,
                    &size,
                ])
            }));
            emit(&format!("topic {topic}\n{}", render(&rows)))
        }
        TopicsVerb::Delete { topic, connect } => {
            block_on(async {
                Client::connect(&connect.bootstrap)
                    .await?
                    .delete_topic(&topic)
                    .await
            })?;
            if connect.json {
                emit_json(&serde_json::json!({ "deleted": topic }))
            } else {
                emit(&format!("deleted topic {topic}\n"))
            }
        }
    }
}

/// Runs `hyperscale mq produce`: stdin is read on a thread, and whatever
/// lines have arrived (up to a batch) go out in one request, so piped input
/// is batched and typed input is sent line by line.
pub fn produce(args: ProduceArgs) -> anyhow::Result<()> {
    let acks = parse_acks(&args.acks)?;
    let (lines_in, mut lines) =
        tokio::sync::mpsc::channel::<std::io::Result<String>>(PRODUCE_BATCH_MAX);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if lines_in.blocking_send(line).is_err() {
                return;
            }
        }
    });
    let (records, batches) = block_on(async {
        let mut client = Client::connect(&args.connect.bootstrap).await?;
        let mut producer = Producer::new(&mut client, &args.topic, acks).await?;
        let (mut records, mut batches) = (0usize, Vec::new());
        while let Some(first) = lines.recv().await {
            let mut batch = vec![first.context("cannot read stdin")?];
            while batch.len() < PRODUCE_BATCH_MAX {
                match lines.try_recv() {
                    Ok(line) => batch.push(line.context("cannot read stdin")?),
                    Err(_) => break,
                }
            }
            let outgoing: Vec<Outgoing> = batch
                .iter()
                .map(|line| split_line(line, args.key_separator.as_deref()))
                .collect();
            let sent = producer
                .send(&mut client, &outgoing, args.partition)
                .await?;
            records += outgoing.len();
            batches.extend(sent);
        }
        Ok((records, batches))
    })?;
    if args.connect.json {
        emit_json(&serde_json::json!({
            "topic": args.topic, "records": records, "batches": batches,
        }))
    } else {
        note(&format!("produced {records} record(s) to {}\n", args.topic));
        Ok(())
    }
}

/// Runs `hyperscale mq consume`: values one per line, or one JSON object per
/// record with `--json`; Ctrl-C stops it (offsets are committed after each
/// batch, so at most the last batch is read again by the group).
pub fn consume(args: ConsumeArgs) -> anyhow::Result<()> {
    let options = ConsumeOptions {
        topics: vec![args.topic.clone()],
        group: args.group.clone(),
        from_beginning: args.from_beginning,
        max_messages: args.max_messages,
        idle_timeout: args.timeout_ms.map(Duration::from_millis),
        ..ConsumeOptions::default()
    };
    let json = args.connect.json;
    block_on(async move {
        let mut client = Client::connect(&args.connect.bootstrap).await?;
        let consumer = Consumer::start(&mut client, options).await?;
        let print = |m: &mq::client::consumer::Message| {
            if json {
                emit(&format!("{}\n", serde_json::to_value(m)?))
            } else {
                let text = m
                    .value
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                emit(&format!("{text}\n"))
            }
        };
        tokio::select! {
            done = consumer.run(&mut client, print) => done.map(|_| ()),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

/// Runs `hyperscale mq groups`.
pub fn groups(args: GroupsArgs) -> anyhow::Result<()> {
    match args.verb {
        GroupsVerb::List { connect } => {
            let groups = block_on(async {
                Client::connect(&connect.bootstrap)
                    .await?
                    .list_groups()
                    .await
            })?;
            if connect.json {
                return emit_json(&groups);
            }
            let mut rows = vec![row(&[&"GROUP", &"STATE", &"PROTOCOL_TYPE"])];
            rows.extend(
                groups
                    .iter()
                    .map(|g| row(&[&g.group, &g.state, &g.protocol_type])),
            );
            emit(&render(&rows))
        }
        GroupsVerb::Describe { group, connect } => {
            let described = block_on(async {
                Client::connect(&connect.bootstrap)
                    .await?
                    .describe_group(&group)
                    .await
            })?;
            if connect.json {
                return emit_json(&described);
            }
            let dash = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
            let mut rows = vec![row(&[
                &"TOPIC",
                &"PARTITION",
                &"COMMITTED",
                &"END",
                &"LAG",
                &"MEMBER",
            ])];
            rows.extend(described.partitions.iter().map(|p| {
                let member = p.member_id.clone().unwrap_or_else(|| "-".into());
                row(&[
                    &p.topic,
                    &p.partition,
                    &dash(p.committed_offset),
                    &p.end_offset,
                    &dash(p.lag),
                    &member,
                ])
            }));
            let mut text = format!(
                "group {group}: {}, {} member(s){}\n",
                described.state,
                described.members.len(),
                if described.protocol.is_empty() {
                    String::new()
                } else {
                    format!(", assignor {}", described.protocol)
                },
            );
            for m in &described.members {
                let assigned: Vec<String> = m
                    .assignment
                    .iter()
                    .map(|(t, ps)| format!("{t}:{ps:?}"))
                    .collect();
                text.push_str(&format!(
                    "  member {} ({}): {}\n",
                    m.member_id,
                    m.client_id,
                    assigned.join(" ")
                ));
            }
            text.push_str(&render(&rows));
            emit(&text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_and_acks_parse_or_explain() {
        let configs =
            parse_configs(&["retention.ms=1000".into(), "cleanup.policy=compact".into()]).unwrap();
        assert_eq!(configs["retention.ms"], "1000");
        assert!(parse_configs(&["retention.ms".into()]).is_err());
        assert_eq!(parse_acks("all").unwrap(), -1);
        assert_eq!(parse_acks("0").unwrap(), 0);
        assert!(parse_acks("2").is_err());
    }

    #[test]
    fn lines_split_at_the_first_separator() {
        let keyed = split_line("k:v:w", Some(":"));
        assert_eq!(keyed.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(keyed.value, b"v:w");
        assert_eq!(split_line("plain", Some(":")).key, None);
        assert_eq!(split_line("k:v", None).value, b"k:v");
    }
}
