//! The hotel reservation service under `hyperscale up`: embedded SQLite
//! under `{data_dir}/hotel`, demo hotels loaded when the database is empty,
//! `/v1` behind an API key (made once and kept), and — when the gateway
//! fronts the process — the booking page and the API reached through the
//! gateway, which rate limits them per client.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use service::Supervisor;

/// Path prefixes the gateway sends to the hotel service.
pub const PREFIXES: [&str; 4] = ["/hotel", "/v1/hotels", "/v1/reservations", "/v1/guests"];

/// Demo data loaded into an empty database: hotels 1..=N.
const DEMO_HOTELS: i64 = 20;
/// Nights on sale in the demo data, from today.
const DEMO_DAYS: i64 = 90;

/// The gateway's rate limits under `up` (the `ratelimit` crate's format):
/// per client address, 120 requests a minute to the booking page and 600 to
/// the hotel API. Other paths are not limited.
const RATE_LIMITS: &str = "\
# Written by `hyperscale up` on every start; set [gateway.ratelimit] rules
# in --config to use your own file instead.
domain: up
descriptors:
  - key: path
    value: /hotel
    descriptors:
      - key: remote_address
        rate_limit: { unit: minute, requests_per_unit: 120 }
  - key: path
    value: /v1
    descriptors:
      - key: remote_address
        rate_limit: { unit: minute, requests_per_unit: 600 }
";

/// Writes the gateway's rules file under `data_dir`; returns its path.
pub async fn write_rate_limits(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = data_dir.join("gateway");
    tokio::fs::create_dir_all(&dir)
        .await
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("ratelimit.yaml");
    tokio::fs::write(&path, RATE_LIMITS)
        .await
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// The API key in `dir/api-key`, made (random, owner-only file) if absent.
async fn api_key(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("api-key");
    match tokio::fs::read_to_string(&path).await {
        Ok(key) if !key.trim().is_empty() => return Ok(key.trim().to_string()),
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
    let mut rng = fastrand::Rng::new();
    let key = format!("hk_{:032x}", rng.u128(..));
    let file = path.clone();
    let written = key.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&file)?;
        out.write_all(written.as_bytes())?;
        out.sync_all()
    })
    .await?
    .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key)
}

/// Starts the hotel service; returns its address and the line `up` prints
/// about it (the page, and how to call the API with the key).
pub async fn add(
    supervisor: &mut Supervisor,
    config: &hotel::Config,
    data_dir: &Path,
    fronted: bool,
    gateway: SocketAddr,
) -> anyhow::Result<(SocketAddr, String)> {
    let mut settings = config.clone();
    settings.data_dir = data_dir.join("hotel");
    tokio::fs::create_dir_all(&settings.data_dir)
        .await
        .with_context(|| format!("cannot create {}", settings.data_dir.display()))?;
    if settings.api_key.is_none() {
        settings.api_key = Some(api_key(&settings.data_dir).await?);
    }
    let key = settings.api_key.clone().unwrap_or_default();
    let listener = super::up::bind_system(settings.bind, "the hotel service", "hotel").await?;
    let addr = listener.local_addr()?;
    let origin = if fronted {
        gateway.to_string()
    } else {
        addr.to_string()
    };
    let info = super::hotel::info(&addr.to_string(), &origin);
    let hotel = hotel::Hotel::open(settings)
        .await
        .context("the hotel service")?;
    hotel.seed_if_empty(DEMO_HOTELS, DEMO_DAYS).await?;
    hotel.register_metrics(supervisor.registry().sub_registry_with_prefix("hotel"));
    supervisor.add(info, move |ctx| hotel.serve(listener, ctx));
    let note = format!(
        "hotel: book at http://{origin}{page}  API: curl -H 'X-API-Key: {key}' http://{origin}/v1/reservations/ID",
        page = hotel::api::page::PAGE_PATH
    );
    Ok((addr, note))
}
