//! Path-prefix routing: which pool serves a request.
//!
//! An API gateway fronts several services; the simplest useful routing is by
//! path prefix (`/api/users` → the users pool, `/` → the web pool), the
//! longest prefix winning, as in nginx `location /prefix`. Prefixes match at
//! segment boundaries: `/api` matches `/api` and `/api/x`, not `/apix`.

use std::sync::Arc;

use http::uri::PathAndQuery;

use crate::config::Route;

/// A compiled route.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The prefix.
    pub prefix: String,
    /// The prefix as the `route` metric label.
    pub label: Arc<String>,
    /// Index of the pool in the gateway's pool list.
    pub pool: usize,
    /// Remove the prefix before forwarding.
    pub strip_prefix: bool,
    /// The route's edge-cache settings, when caching is enabled on it.
    pub cache: Option<Arc<crate::cache::config::RouteCache>>,
    /// (data center, pool index) pairs, when the route spans data centers.
    pub datacenter_pools: Vec<(String, usize)>,
}

/// The route table, longest prefix first.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    routes: Vec<Compiled>,
}

impl Routes {
    /// Compiles `routes`; `pool_index` maps a pool name to its index (the
    /// config was validated, so every name resolves).
    pub fn new(routes: &[Route], pool_index: impl Fn(&str) -> Option<usize>) -> Self {
        let mut compiled: Vec<Compiled> = routes
            .iter()
            .filter_map(|route| {
                let datacenter_pools: Vec<(String, usize)> = route
                    .datacenter_pools
                    .iter()
                    .filter_map(|(dc, pool)| Some((dc.clone(), pool_index(pool)?)))
                    .collect();
                let pool = pool_index(&route.pool)
                    .or_else(|| datacenter_pools.first().map(|(_, pool)| *pool))?;
                Some(Compiled {
                    prefix: route.prefix.clone(),
                    label: Arc::new(route.prefix.clone()),
                    pool,
                    datacenter_pools,
                    strip_prefix: route.strip_prefix,
                    cache: route
                        .cache
                        .as_ref()
                        .filter(|cache| cache.enabled)
                        .map(|cache| Arc::new(cache.clone())),
                })
            })
            .collect();
        compiled.sort_by_key(|route| std::cmp::Reverse(route.prefix.len()));
        Self { routes: compiled }
    }

    /// The index of the route for `path`, if any.
    pub fn find(&self, path: &str) -> Option<usize> {
        self.routes
            .iter()
            .position(|route| prefix_matches(&route.prefix, path))
    }

    /// The route at `index` (from [`Routes::find`]).
    pub fn get(&self, index: usize) -> &Compiled {
        &self.routes[index]
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        None => false,
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
    }
}

/// The path to forward: `path` without the route's prefix when stripping,
/// never empty.
pub fn upstream_path<'a>(route: &Compiled, path: &'a str) -> &'a str {
    if !route.strip_prefix {
        return path;
    }
    // A prefix ending in `/` keeps that slash for the rest (`/api/` strips
    // `/api/users` to `/users`, not `users`).
    let cut = route
        .prefix
        .strip_suffix('/')
        .unwrap_or(&route.prefix)
        .len();
    let rest = &path[cut.min(path.len())..];
    if rest.is_empty() { "/" } else { rest }
}

/// The request target to send upstream. Without stripping it is the
/// client's own (a cheap clone, no re-parsing: this runs per request).
pub fn upstream_target(
    route: &Compiled,
    uri: &http::Uri,
) -> Result<PathAndQuery, http::uri::InvalidUri> {
    if !route.strip_prefix {
        return Ok(uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")));
    }
    let path = upstream_path(route, uri.path());
    match uri.query() {
        Some(query) => PathAndQuery::try_from(format!("{path}?{query}")),
        None => PathAndQuery::try_from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Routes {
        let table = [("/", "web"), ("/api", "api"), ("/api/admin/", "admin")];
        let config: Vec<Route> = table
            .iter()
            .map(|(prefix, pool)| Route {
                prefix: prefix.to_string(),
                pool: pool.to_string(),
                strip_prefix: true,
                ..Default::default()
            })
            .collect();
        Routes::new(&config, |name| {
            ["web", "api", "admin"].iter().position(|p| *p == name)
        })
    }

    #[test]
    fn longest_prefix_wins_at_segment_boundaries() {
        let routes = routes();
        let pool = |path| routes.get(routes.find(path).unwrap()).pool;
        assert_eq!(pool("/api/users"), 1);
        assert_eq!(pool("/api"), 1);
        assert_eq!(pool("/apix"), 0);
        assert_eq!(pool("/api/admin/x"), 2);
        assert_eq!(pool("/"), 0);
    }

    #[test]
    fn stripping_never_leaves_an_empty_path() {
        let routes = routes();
        let api = routes.get(routes.find("/api").unwrap());
        assert_eq!(upstream_path(api, "/api"), "/");
        assert_eq!(upstream_path(api, "/api/users"), "/users");
        let admin = routes.get(routes.find("/api/admin/x").unwrap());
        assert_eq!(upstream_path(admin, "/api/admin/x"), "/x");
        assert_eq!(upstream_path(admin, "/api/admin/"), "/");
    }
}
