//! The pure half of a chapter-1 stage (see `up_scale`): the `[topology]`
//! table, its checks, and the boxes it turns into, front to back.

use serde::Deserialize;

/// The `[topology]` table: which tiers a stage has.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Stage {
    /// The stage's title, shown on the console.
    pub stage: String,
    /// Web servers per data center.
    pub web_servers: u8,
    /// The data in a box of its own (`db`); off: the one web server keeps
    /// it in process (the first stage, everything on one server).
    pub data_tier: bool,
    /// Read replicas of `db` (`db-replica-1`, ...).
    pub replicas: u8,
    /// Where web servers read: `primary`, `replica` or `nearest`.
    pub read_from: String,
    /// A cache server (`cache`) the web servers read through.
    pub cache: bool,
    /// How long a value stays in the cache tier.
    pub cache_ttl_ms: u64,
    /// The cache server's memory bound (it evicts least recently used keys).
    pub cache_memory_bytes: u64,
    /// A load balancer (`lb`) in front of the web servers.
    pub load_balancer: bool,
    /// A CDN node (`cdn`, the gateway's edge cache) in front of everything.
    pub cdn: bool,
    /// How long the CDN keeps responses that state no lifetime.
    pub cdn_ttl_ms: u64,
    /// Data centers (each with `web_servers` web servers); empty: one.
    pub datacenters: Vec<gateway::config::DataCenter>,
    /// Sessions in the shared store (`/account` on every web server).
    pub sessions: bool,
    /// First port of the HTTP boxes (front to back).
    pub http_port_base: u16,
    /// Port of `db`; replicas take the next ones, `cache` the tenth after.
    pub kv_port_base: u16,
}

impl Default for Stage {
    fn default() -> Self {
        Stage {
            stage: "Single server".into(),
            web_servers: 1,
            data_tier: false,
            replicas: 0,
            read_from: "primary".into(),
            cache: false,
            cache_ttl_ms: 30_000,
            cache_memory_bytes: 64 << 20,
            load_balancer: false,
            cdn: false,
            cdn_ttl_ms: 10_000,
            datacenters: Vec::new(),
            sessions: false,
            http_port_base: 8000,
            kv_port_base: 6379,
        }
    }
}

/// What one box is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The CDN node: a caching gateway.
    Cdn,
    /// The load balancer: a gateway over the web servers.
    Balancer,
    /// A web server; `machine` is its snowflake machine id (unique).
    Web {
        /// Its data center's index, if there are several.
        datacenter: Option<usize>,
        /// Unique per web server, from 1.
        machine: u64,
    },
    /// The cache server.
    Cache,
    /// The database primary.
    Db,
    /// A read replica of the database.
    Replica,
}

/// One box to start.
#[derive(Debug, Clone)]
pub struct Planned {
    /// Its name (system name and `box` label).
    pub name: String,
    /// What it is.
    pub kind: Kind,
}

impl Stage {
    /// Refuses stages that cannot run, saying what to change.
    pub fn validate(&self) -> anyhow::Result<()> {
        let web_total = usize::from(self.web_servers) * self.datacenters.len().max(1);
        anyhow::ensure!(
            self.web_servers >= 1,
            "[topology] web_servers must be at least 1"
        );
        anyhow::ensure!(
            web_total <= 16,
            "[topology] runs at most 16 web servers (one machine)"
        );
        anyhow::ensure!(
            self.data_tier || (web_total == 1 && self.replicas == 0 && !self.cache),
            "[topology] several web servers, replicas or a cache need `data_tier = true` \
             (the data must leave the web server first)"
        );
        anyhow::ensure!(
            self.load_balancer || web_total == 1,
            "[topology] several web servers need `load_balancer = true`"
        );
        anyhow::ensure!(self.replicas <= 8, "[topology] replicas must be at most 8");
        anyhow::ensure!(
            self.datacenters.len() != 1,
            "[topology] datacenters: list two or more, or none"
        );
        anyhow::ensure!(
            !self.cdn || self.datacenters.is_empty(),
            "[topology] the gateway routes data centers by the client's own address, which a \
             CDN in front would hide: use cdn = false with datacenters"
        );
        anyhow::ensure!(
            self.cache_ttl_ms > 0 && self.cdn_ttl_ms > 0,
            "[topology] cache_ttl_ms and cdn_ttl_ms must not be 0"
        );
        self.read_from
            .parse::<kvclient::replicated::ReadFrom>()
            .map_err(|err| anyhow::anyhow!("[topology] {err}"))?;
        Ok(())
    }
}

/// The boxes of a stage, front to back.
pub fn plan(stage: &Stage) -> Vec<Planned> {
    let mut boxes = Vec::new();
    let mut push = |name: String, kind: Kind| boxes.push(Planned { name, kind });
    if stage.cdn {
        push("cdn".into(), Kind::Cdn);
    }
    if stage.load_balancer {
        push("lb".into(), Kind::Balancer);
    }
    let mut machine = 0;
    if stage.datacenters.is_empty() {
        for i in 1..=stage.web_servers {
            machine += 1;
            let kind = Kind::Web {
                datacenter: None,
                machine,
            };
            push(format!("web-{i}"), kind);
        }
    } else {
        for (dc, center) in stage.datacenters.iter().enumerate() {
            for i in 1..=stage.web_servers {
                machine += 1;
                let kind = Kind::Web {
                    datacenter: Some(dc),
                    machine,
                };
                push(format!("web-{}-{i}", center.name), kind);
            }
        }
    }
    if stage.cache {
        push("cache".into(), Kind::Cache);
    }
    if stage.data_tier {
        push("db".into(), Kind::Db);
        for i in 1..=stage.replicas {
            push(format!("db-replica-{i}"), Kind::Replica);
        }
    }
    boxes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_names_every_tier_front_to_back() {
        let stage = Stage {
            web_servers: 2,
            data_tier: true,
            replicas: 2,
            cache: true,
            load_balancer: true,
            cdn: true,
            ..Stage::default()
        };
        stage.validate().unwrap();
        let names: Vec<String> = plan(&stage).into_iter().map(|b| b.name).collect();
        assert_eq!(
            names,
            [
                "cdn",
                "lb",
                "web-1",
                "web-2",
                "cache",
                "db",
                "db-replica-1",
                "db-replica-2"
            ]
        );
    }

    #[test]
    fn impossible_stages_are_refused_with_the_fix() {
        let two_web = Stage {
            web_servers: 2,
            ..Stage::default()
        };
        let err = two_web.validate().unwrap_err().to_string();
        assert!(err.contains("data_tier = true"), "{err}");
        let no_lb = Stage {
            web_servers: 2,
            data_tier: true,
            ..Stage::default()
        };
        let err = no_lb.validate().unwrap_err().to_string();
        assert!(err.contains("load_balancer = true"), "{err}");
    }
}
