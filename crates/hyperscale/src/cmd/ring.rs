//! `hyperscale ring`: consistent hashing (chapter 5) from the command line.
//!
//! - `simulate` runs the chapter's experiment: load spread per virtual node
//!   count, keys moved when a server joins or leaves, and modulo hashing for
//!   contrast.
//! - `locate` shows which server owns each key and its preference list.
//! - `shares` shows each server's exact share of the hash space, the way to
//!   see heterogeneity (`--weight big=400`) at work.

use anyhow::{Context, bail};
use clap::Subcommand;
use ring::Ring;
use ring::simulate::{SimulationConfig, SimulationReport, simulate};

use crate::output::{emit, emit_json};
use crate::table;

/// Arguments of `hyperscale ring`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Measure load spread and key movement for several virtual node counts.
    Simulate(SimulateArgs),
    /// Print the owner and preference list of each key.
    Locate(LocateArgs),
    /// Print each server's share of the hash space.
    Shares(ShareArgs),
}

#[derive(clap::Args)]
struct SimulateArgs {
    /// Servers in the cluster (named server-0, server-1, ...).
    #[arg(long, default_value_t = 10)]
    servers: usize,
    /// Virtual node counts to compare, one table row each.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,200")]
    vnodes: Vec<u32>,
    /// Synthetic keys to place (time grows linearly; memory does not).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Seed of the synthetic keys.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The servers of a ring given on the command line.
#[derive(clap::Args)]
struct RingSpec {
    /// Server ids, comma-separated (hashed by their text: `a#0`, `a#1`, ...).
    #[arg(long, value_delimiter = ',', required = true)]
    servers: Vec<String>,
    /// Virtual nodes per server.
    #[arg(long, default_value_t = 100)]
    vnodes: u32,
    /// A different virtual node count for one server, `ID=VNODES`; repeat
    /// for several (heterogeneity: a server twice as big gets twice as many).
    #[arg(long = "weight", value_name = "ID=VNODES")]
    weights: Vec<String>,
}

#[derive(clap::Args)]
struct LocateArgs {
    #[command(flatten)]
    ring: RingSpec,
    /// Length of the preference list (replication factor N).
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Keys to locate (their UTF-8 bytes are hashed).
    #[arg(required = true)]
    keys: Vec<String>,
}

#[derive(clap::Args)]
struct ShareArgs {
    #[command(flatten)]
    ring: RingSpec,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        Verb::Simulate(args) => run_simulate(args),
        Verb::Locate(args) => run_locate(args),
        Verb::Shares(args) => run_shares(args),
    }
}

fn run_simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let config = SimulationConfig {
        key_seed: args.seed,
        ..SimulationConfig::new(args.servers, args.vnodes, args.keys)
    };
    let report = simulate(&config).context("cannot run the simulation")?;
    if args.json {
        emit_json(&report)?;
    } else {
        emit(&simulation_text(&report))?;
    }
    Ok(())
}

fn simulation_text(report: &SimulationReport) -> String {
    let n = report.servers;
    let mut out = format!(
        "{} keys over {n} servers; server-{n} joins, server-{} leaves\n\n",
        report.keys,
        n - 1
    );
    let mut rows = vec![
        [
            "vnodes/server",
            "load std-dev",
            "min load",
            "max load",
            "moved on add",
            "moved on remove",
            "ideal add",
            "ideal remove",
        ]
        .map(String::from),
    ];
    let pct = |x: f64| format!("{x:.1}%");
    for row in &report.rows {
        rows.push([
            row.vnodes_per_server.to_string(),
            pct(row.load.std_dev_pct),
            pct(row.load.min_pct),
            pct(row.load.max_pct),
            pct(row.moved_on_add_pct),
            pct(row.moved_on_remove_pct),
            pct(report.ideal_add_pct),
            pct(report.ideal_remove_pct),
        ]);
    }
    out.push_str(&table::render(&rows));
    out.push_str(&format!(
        "\nhash % n for contrast: {n} -> {} servers moves {}, {n} -> {} moves {} of keys\n",
        n + 1,
        pct(report.modulo.moved_on_add_pct),
        n - 1,
        pct(report.modulo.moved_on_remove_pct),
    ));
    out.push_str(
        "(load columns are % of the mean; ideal = the k/n share a consistent hash should move)\n",
    );
    out
}

fn build_ring(spec: &RingSpec) -> anyhow::Result<Ring<String>> {
    let mut ring = Ring::new();
    for server in &spec.servers {
        let server = server.trim();
        if server.is_empty() {
            bail!("--servers has an empty id; write ids separated by commas, e.g. a,b,c");
        }
        ring.add_server(server.to_owned(), spec.vnodes)?;
    }
    for weight in &spec.weights {
        let (id, vnodes) = weight.rsplit_once('=').with_context(|| {
            format!("--weight `{weight}` must look like ID=VNODES, e.g. big=400")
        })?;
        let vnodes: u32 = vnodes.parse().with_context(|| {
            format!("--weight `{weight}`: `{vnodes}` is not a virtual node count")
        })?;
        let id = id.to_owned();
        ring.remove_server(&id).with_context(|| {
            format!("--weight `{weight}` names a server missing from --servers")
        })?;
        ring.add_server(id, vnodes)?;
    }
    Ok(ring)
}

#[derive(serde::Serialize)]
struct Location<'a> {
    key: &'a str,
    position: u64,
    owner: &'a str,
    preference_list: Vec<&'a str>,
}

fn run_locate(args: LocateArgs) -> anyhow::Result<()> {
    let ring = build_ring(&args.ring)?;
    let locations: Vec<Location<'_>> = args
        .keys
        .iter()
        .map(|key| Location {
            key,
            position: ring::key_position(key.as_bytes()),
            owner: ring.owner(key.as_bytes()).expect("ring has servers"),
            preference_list: ring
                .preference_list(key.as_bytes(), args.replicas)
                .into_iter()
                .map(String::as_str)
                .collect(),
        })
        .collect();
    if args.json {
        emit_json(&locations)?;
        return Ok(());
    }
    let mut rows = vec![["key", "position", "owner", "preference list"].map(String::from)];
    for l in &locations {
        rows.push([
            l.key.to_owned(),
            format!("{:#018x}", l.position),
            l.owner.to_owned(),
            l.preference_list.join(", "),
        ]);
    }
    emit(&table::render(&rows))?;
    Ok(())
}

#[derive(serde::Serialize)]
struct Share<'a> {
    server: &'a str,
    vnodes: u32,
    share_pct: f64,
}

fn run_shares(args: ShareArgs) -> anyhow::Result<()> {
    let ring = build_ring(&args.ring)?;
    let shares: Vec<Share<'_>> = ring
        .ownership()
        .into_iter()
        .map(|(id, share)| Share {
            server: id,
            vnodes: ring.vnodes_of(id).expect("listed servers are on the ring"),
            share_pct: share * 100.0,
        })
        .collect();
    if args.json {
        emit_json(&shares)?;
        return Ok(());
    }
    let total_vnodes = ring.vnode_count() as f64;
    let mut rows = vec![["server", "vnodes", "share of keys", "fair share"].map(String::from)];
    for s in &shares {
        rows.push([
            s.server.to_owned(),
            s.vnodes.to_string(),
            format!("{:.2}%", s.share_pct),
            format!("{:.2}%", f64::from(s.vnodes) / total_vnodes * 100.0),
        ]);
    }
    emit(&table::render(&rows))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn spec(line: &str) -> RingSpec {
        let cli =
            Cli::try_parse_from(format!("ring locate {line} key").split_whitespace()).unwrap();
        match cli.args.verb {
            Verb::Locate(args) => args.ring,
            _ => unreachable!("parsed a locate"),
        }
    }

    #[test]
    fn weights_give_a_server_more_virtual_nodes() {
        let ring = build_ring(&spec("--servers a,b,big --vnodes 10 --weight big=40")).unwrap();
        assert_eq!(ring.vnodes_of(&"big".to_owned()), Some(40));
        assert_eq!(ring.vnodes_of(&"a".to_owned()), Some(10));
        assert_eq!(ring.vnode_count(), 60);
    }

    #[test]
    fn bad_ring_specs_are_refused_with_a_reason() {
        let error = |line: &str| format!("{:#}", build_ring(&spec(line)).unwrap_err());
        assert!(error("--servers a,a").contains("already on the ring"));
        assert!(error("--servers a,b --weight c=5").contains("missing from --servers"));
        assert!(error("--servers a,b --weight a5").contains("ID=VNODES"));
        assert!(error("--servers a,b --weight a=x").contains("not a virtual node count"));
        assert!(error("--servers a,b --vnodes 0").contains("at least 1"));
        assert!(error("--servers a,,b").contains("empty id"));
    }

    #[test]
    fn simulation_table_has_a_row_per_vnode_count_and_the_modulo_line() {
        let report = simulate(&SimulationConfig::new(5, vec![1, 50], 2_000)).unwrap();
        let text = simulation_text(&report);
        assert!(
            text.starts_with("2000 keys over 5 servers; server-5 joins, server-4 leaves"),
            "{text}"
        );
        assert!(text.contains("vnodes/server  load std-dev"), "{text}");
        assert!(text.lines().any(|l| l.starts_with("50 ")), "{text}");
        assert!(
            text.contains("hash % n for contrast: 5 -> 6 servers moves"),
            "{text}"
        );
        assert!(
            text.contains("16.7%") && text.contains("20.0%"),
            "ideal shares: {text}"
        );
    }

    #[test]
    fn simulate_refuses_a_single_server() {
        let cli =
            Cli::try_parse_from(["ring", "simulate", "--servers", "1", "--keys", "10"]).unwrap();
        let error = format!("{:#}", run(cli.args).unwrap_err());
        assert!(error.contains("between 2 and"), "{error}");
    }
}
