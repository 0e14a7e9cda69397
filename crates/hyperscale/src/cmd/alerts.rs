//! `hyperscale alerts`: the alert manager (vol. 2, metrics monitoring and
//! alerting). `serve` runs it (Alertmanager's API v2 on :9093, so `amtool`
//! and Prometheus work against it); `list`, `silence`, `history` are its
//! clients (`--json` for scripts); `check` checks rule files as
//! `promtool check rules` does.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use service::{Supervisor, SystemInfo};

use crate::output::{emit, emit_json};

/// Arguments of `hyperscale alerts`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(clap::Subcommand)]
enum Verb {
    /// Run the alert manager (Alertmanager API v2).
    Serve(ServeArgs),
    /// List active alerts (add --silenced / --inhibited to include muted ones).
    List(ListArgs),
    /// Create, list or expire silences.
    Silence(SilenceArgs),
    /// Alert state changes and notification attempts, oldest first.
    History(HistoryArgs),
    /// Check rule files (like `promtool check rules`).
    Check {
        /// Rule files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Alertmanager configuration (YAML: route, receivers, inhibit_rules).
    #[arg(long)]
    config: PathBuf,
    /// Address to listen on (Alertmanager's port).
    #[arg(long, default_value = "127.0.0.1:9093")]
    bind: SocketAddr,
    /// Directory of the journal (silences, history).
    #[arg(long, default_value = "./data/alertmanager")]
    data_dir: PathBuf,
    /// `TOKEN:ROLE` (role `silencer` or `admin`) allowed to change silences;
    /// repeat for more. Without any, changes are open (keep it on 127.0.0.1).
    #[arg(
        long = "token",
        env = "HYPERSCALE_ALERTS_TOKENS",
        value_delimiter = ','
    )]
    tokens: Vec<String>,
    /// Our URL, as notifications link to it.
    #[arg(long)]
    external_url: Option<String>,
    /// Address of `/metrics` and `/healthz` [default: none].
    #[arg(long)]
    admin_bind: Option<SocketAddr>,
}

#[derive(clap::Args)]
struct Client {
    /// Base URL of the alert manager.
    #[arg(
        long,
        default_value = "http://127.0.0.1:9093",
        env = "HYPERSCALE_ALERTS_URL"
    )]
    url: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ListArgs {
    #[command(flatten)]
    client: Client,
    /// Include silenced alerts.
    #[arg(long)]
    silenced: bool,
    /// Include inhibited alerts.
    #[arg(long)]
    inhibited: bool,
    /// Matchers (`alertname=Down`, `severity=~"page|ticket"`).
    matchers: Vec<String>,
}

#[derive(clap::Args)]
struct SilenceArgs {
    #[command(flatten)]
    client: Client,
    /// Token for changes (`Authorization: Bearer`).
    #[arg(long, env = "HYPERSCALE_ALERTS_TOKEN")]
    token: Option<String>,
    #[command(subcommand)]
    verb: SilenceVerb,
}

#[derive(clap::Subcommand)]
enum SilenceVerb {
    /// Silence alerts matching all matchers.
    Add {
        /// Matchers (`alertname=Down`, `instance=~"db.*"`).
        #[arg(required = true)]
        matchers: Vec<String>,
        /// For how long (`2h`, `30m`).
        #[arg(long, default_value = "1h", value_parser = super::metrics::parse_duration_ms)]
        duration: i64,
        /// Why.
        #[arg(long)]
        comment: String,
        /// Who.
        #[arg(long, default_value = "hyperscale")]
        author: String,
    },
    /// List silences.
    List,
    /// Expire a silence now.
    Expire {
        /// Its id.
        id: String,
    },
}

#[derive(clap::Args)]
struct HistoryArgs {
    #[command(flatten)]
    client: Client,
    /// Only `alert`, `notify` or `silence` events.
    #[arg(long)]
    kind: Option<String>,
    /// At most this many (newest).
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

/// How the system is listed.
pub fn info(endpoint: &str) -> SystemInfo {
    SystemInfo {
        name: "alerts".into(),
        title: "Alert manager (routing, silences, delivery)".into(),
        chapter: "vol. 2 metrics monitoring and alerting".into(),
        protocol: "Alertmanager API v2".into(),
        endpoint: endpoint.into(),
        link: Some(format!("http://{endpoint}/api/v2/alerts")),
    }
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.verb {
        Verb::Serve(a) => serve(a),
        Verb::List(a) => list(a),
        Verb::Silence(a) => silence(a),
        Verb::History(a) => history(a),
        Verb::Check { files } => check(&files),
    }
}

fn check(files: &[PathBuf]) -> anyhow::Result<()> {
    let mut bad = 0;
    for f in files {
        match alerting::rules::load_rule_file(f) {
            Ok(rf) => {
                let n: usize = rf.groups.iter().map(|g| g.rules.len()).sum();
                emit(&format!("{}: SUCCESS: {n} rules found\n", f.display()))?;
            }
            Err(errs) => {
                bad += 1;
                for e in errs {
                    emit(&format!("{e}\n"))?;
                }
            }
        }
    }
    if bad > 0 {
        bail!("{bad} rule file(s) are invalid");
    }
    Ok(())
}

/// `TOKEN:ROLE` strings (from `what`: a flag or a config key) as the
/// alert manager's token table.
pub(super) fn parse_tokens(
    tokens: &[String],
    what: &str,
) -> anyhow::Result<BTreeMap<String, alerting::am::Role>> {
    let mut table = BTreeMap::new();
    for t in tokens {
        let (tok, role) = t
            .rsplit_once(':')
            .with_context(|| format!("{what}: write each token as TOKEN:ROLE"))?;
        let role = role
            .parse::<alerting::am::Role>()
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        table.insert(tok.to_string(), role);
    }
    Ok(table)
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.config)
        .with_context(|| format!("cannot read {}", a.config.display()))?;
    let config = alerting::am::parse_config(&text)
        .map_err(|e| anyhow::anyhow!("{}: {e}", a.config.display()))?;
    let tokens = parse_tokens(&a.tokens, "--token")?;
    service::net::prepare_data_dir(&a.data_dir)?;
    let opts = alerting::am::AmOptions {
        data_dir: a.data_dir.clone(),
        tokens,
        external_url: a
            .external_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", a.bind)),
        ..Default::default()
    };
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let am = alerting::am::AlertManager::open(config, opts)
            .with_context(|| format!("cannot open the journal in {}", a.data_dir.display()))?;
        let mut supervisor = Supervisor::new(service::shutdown::on_signals());
        let admin = super::serve::bind_admin(a.admin_bind).await?;
        let listener = service::net::bind(a.bind, "the alert manager").await?;
        let info = info(&listener.local_addr()?.to_string());
        emit(&format!(
            "alert manager listening on http://{}\n",
            info.endpoint
        ))?;
        supervisor.add(info, move |ctx| run_am(am, listener, ctx));
        supervisor.run(admin, Duration::from_secs(3)).await
    })
}

/// Runs the alert manager (its API on `listener`, its flushes and
/// deliveries) until the context's shutdown.
pub(super) async fn run_am(
    am: alerting::am::AlertManager,
    listener: tokio::net::TcpListener,
    ctx: service::SystemContext,
) -> anyhow::Result<()> {
    ctx.health.set_up();
    tokio::spawn(am.clone().run(ctx.shutdown.clone().cancelled_owned()));
    axum::serve(listener, alerting::am::api::router(am))
        .with_graceful_shutdown(ctx.shutdown.cancelled_owned())
        .await
        .context("the alert manager failed")
}

fn call(
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut req = reqwest::Client::new()
            .request(method, &url)
            .timeout(Duration::from_secs(30));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.with_context(|| {
            format!("cannot reach {url} (is `hyperscale alerts serve` running?)")
        })?;
        let status = resp.status();
        let text = resp.text().await.context("cannot read the reply")?;
        if !status.is_success() {
            bail!("{url}: {status}: {}", text.trim());
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    })
}

fn labels_text(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn list(a: ListArgs) -> anyhow::Result<()> {
    let base = a.client.url.trim_end_matches('/');
    let mut url = format!(
        "{base}/api/v2/alerts?silenced={}&inhibited={}",
        a.silenced, a.inhibited
    );
    if !a.matchers.is_empty() {
        url.push_str(&format!(
            "&filter={}",
            url_escape(&format!("{{{}}}", a.matchers.join(",")))
        ));
    }
    let v = call(reqwest::Method::GET, url, None, None)?;
    if a.client.json {
        return emit_json(&v);
    }
    let mut rows = vec![vec![
        "ALERTNAME".to_string(),
        "STATE".into(),
        "STARTS".into(),
        "LABELS".into(),
        "SUMMARY".into(),
    ]];
    for al in v.as_array().into_iter().flatten() {
        let mut l = al["labels"].clone();
        let name = l["alertname"].as_str().unwrap_or_default().to_string();
        if let Some(m) = l.as_object_mut() {
            m.remove("alertname");
        }
        rows.push(vec![
            name,
            al["status"]["state"].as_str().unwrap_or_default().into(),
            al["startsAt"].as_str().unwrap_or_default().into(),
            labels_text(&l),
            al["annotations"]["summary"]
                .as_str()
                .unwrap_or_default()
                .into(),
        ]);
    }
    emit(&crate::table::render(&rows))
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn silence(a: SilenceArgs) -> anyhow::Result<()> {
    let base = a.client.url.trim_end_matches('/').to_string();
    let token = a.token.as_deref();
    match a.verb {
        SilenceVerb::Add {
            matchers,
            duration,
            comment,
            author,
        } => {
            let mut ms = Vec::new();
            for m in &matchers {
                for m in alerting::am::matcher::parse_list(m).map_err(anyhow::Error::msg)? {
                    ms.push(json!({"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal}));
                }
            }
            let now = i64::try_from(clock::now_ms()).unwrap_or(i64::MAX);
            let body = json!({"matchers": ms, "startsAt": alerting::http::rfc3339(Some(now)), "endsAt": alerting::http::rfc3339(Some(now + duration)), "createdBy": author, "comment": comment});
            let v = call(
                reqwest::Method::POST,
                format!("{base}/api/v2/silences"),
                token,
                Some(body),
            )?;
            if a.client.json {
                emit_json(&v)
            } else {
                emit(&format!(
                    "{}\n",
                    v["silenceID"].as_str().unwrap_or_default()
                ))
            }
        }
        SilenceVerb::List => {
            let v = call(
                reqwest::Method::GET,
                format!("{base}/api/v2/silences"),
                None,
                None,
            )?;
            if a.client.json {
                return emit_json(&v);
            }
            let mut rows = vec![vec![
                "ID".to_string(),
                "STATE".into(),
                "MATCHERS".into(),
                "ENDS".into(),
                "CREATED BY".into(),
                "COMMENT".into(),
            ]];
            for s in v.as_array().into_iter().flatten() {
                let ms: Vec<String> = s["matchers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|m| {
                        let op = match (
                            m["isEqual"].as_bool().unwrap_or(true),
                            m["isRegex"].as_bool().unwrap_or(false),
                        ) {
                            (true, false) => "=",
                            (false, false) => "!=",
                            (true, true) => "=~",
                            (false, true) => "!~",
                        };
                        format!(
                            "{}{op}{}",
                            m["name"].as_str().unwrap_or_default(),
                            m["value"]
                        )
                    })
                    .collect();
                rows.push(vec![
                    s["id"].as_str().unwrap_or_default().into(),
                    s["status"]["state"].as_str().unwrap_or_default().into(),
                    ms.join(","),
                    s["endsAt"].as_str().unwrap_or_default().into(),
                    s["createdBy"].as_str().unwrap_or_default().into(),
                    s["comment"].as_str().unwrap_or_default().into(),
                ]);
            }
            emit(&crate::table::render(&rows))
        }
        SilenceVerb::Expire { id } => {
            call(
                reqwest::Method::DELETE,
                format!("{base}/api/v2/silence/{}", url_escape(&id)),
                token,
                None,
            )?;
            emit(&format!("expired {id}\n"))
        }
    }
}

fn history(a: HistoryArgs) -> anyhow::Result<()> {
    let base = a.client.url.trim_end_matches('/');
    let mut url = format!("{base}/api/v1/history?limit={}", a.limit);
    if let Some(k) = &a.kind {
        url.push_str(&format!("&kind={}", url_escape(k)));
    }
    let v = call(reqwest::Method::GET, url, None, None)?;
    if a.client.json {
        return emit_json(&v["events"]);
    }
    let mut rows = vec![vec![
        "TIME".to_string(),
        "KIND".into(),
        "WHAT".into(),
        "RECEIVER".into(),
        "ATTEMPT".into(),
        "LABELS".into(),
    ]];
    for e in v["events"].as_array().into_iter().flatten() {
        rows.push(vec![
            alerting::http::rfc3339(e["t_ms"].as_i64()),
            e["kind"].as_str().unwrap_or_default().into(),
            e["what"].as_str().unwrap_or_default().into(),
            e["receiver"].as_str().unwrap_or_default().into(),
            e["attempt"]
                .as_u64()
                .filter(|n| *n > 0)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            labels_text(&e["labels"]),
        ]);
    }
    emit(&crate::table::render(&rows))
}
