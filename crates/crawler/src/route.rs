//! Which crawler node owns a host (the chapter's "consistent hashing across
//! downloaders"): hosts are placed on the `ring` crate's hash ring, so every
//! URL of a host is fetched by one node and per-host politeness holds across
//! the cluster; a node joining or leaving moves only its share of hosts.

use ring::Ring;

/// Virtual nodes per crawler node (spreads hosts evenly over few nodes).
const VNODES: u32 = 64;

/// The host → node map of a cluster.
pub struct Router {
    me: String,
    ring: Ring<String>,
}

impl Router {
    /// A router for node `me` among `nodes` (which must include `me`).
    pub fn new(me: &str, nodes: &[String]) -> anyhow::Result<Self> {
        if !nodes.iter().any(|n| n == me) {
            anyhow::bail!(
                "node {me:?} is not among the peers {nodes:?}: list every node, this one too"
            );
        }
        let mut ring = Ring::new();
        for node in nodes {
            ring.add_server(node.clone(), VNODES)
                .map_err(|e| anyhow::anyhow!("node {node:?}: {e}"))?;
        }
        Ok(Self {
            me: me.to_string(),
            ring,
        })
    }

    /// This node's id.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The node that owns `host` when it is not this one.
    pub fn remote_owner(&self, host: &str) -> Option<&str> {
        let owner = self.ring.owner(host.as_bytes()).map(String::as_str)?;
        (owner != self.me).then_some(owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_has_exactly_one_owner_and_all_nodes_get_some() {
        let nodes: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let routers: Vec<Router> = nodes
            .iter()
            .map(|n| Router::new(n, &nodes).expect("router"))
            .collect();
        let mut per_node = [0usize; 3];
        for i in 0..300 {
            let host = format!("127.0.0.1:{}", 20_000 + i);
            let local: Vec<usize> = (0..3)
                .filter(|n| routers[*n].remote_owner(&host).is_none())
                .collect();
            assert_eq!(local.len(), 1, "{host} owned by {local:?}");
            per_node[local[0]] += 1;
        }
        assert!(per_node.iter().all(|n| *n > 50), "{per_node:?}");
        assert!(Router::new("d", &nodes).is_err());
    }
}
