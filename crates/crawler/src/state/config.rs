//! What the crawl state is configured by and what a worker hands it: the
//! scope of a crawl, the state's knobs, a worker's result.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::fetch::{FetchErrorKind, Response};
use crate::freshness::FreshnessConfig;
use crate::normalize::{domain_of, host_key};
use crate::parse::Extracted;
use crate::politeness::PolitenessConfig;
use crate::traps::TrapLimits;

/// Which discovered URLs are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Only the seeds' hosts.
    #[default]
    SameHost,
    /// The seeds' registrable domains.
    SameDomain,
    /// Anything.
    Any,
}

impl std::str::FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "same-host" => Ok(Self::SameHost),
            "same-domain" => Ok(Self::SameDomain),
            "any" => Ok(Self::Any),
            other => Err(format!(
                "unknown scope {other:?}; use same-host, same-domain or any"
            )),
        }
    }
}

/// The state's knobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// Politeness.
    pub politeness: PolitenessConfig,
    /// Trap limits.
    pub traps: TrapLimits,
    /// Scope.
    pub scope: Scope,
    /// Sort query parameters when normalizing.
    pub sort_query: bool,
    /// Redirect hops followed from one URL.
    pub redirects_max: u32,
    /// Write page bodies to `<data-dir>/pages`.
    pub store_bodies: bool,
    /// URLs the bloom filter is sized for.
    pub expected_urls: usize,
    /// Queue head kept in memory per host.
    pub buffer_per_host: usize,
    /// Revisits of fetched pages.
    pub freshness: FreshnessConfig,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            politeness: PolitenessConfig::default(),
            traps: TrapLimits::default(),
            scope: Scope::SameHost,
            sort_query: true,
            redirects_max: 5,
            store_bodies: true,
            expected_urls: 1_000_000,
            buffer_per_host: 16,
            freshness: FreshnessConfig::default(),
        }
    }
}

/// What a worker brings back for a lease.
pub enum WorkResult {
    /// robots.txt disallows the URL: nothing was requested.
    Disallowed,
    /// No HTTP answer.
    Failed {
        /// Kind.
        kind: FetchErrorKind,
        /// Message.
        message: String,
    },
    /// An HTTP answer, with what its handler extracted.
    Answered {
        /// The response.
        response: Box<Response>,
        /// The handler's output, when one read the body.
        extracted: Option<Extracted>,
    },
}

/// The scope key of a URL (its host or its registrable domain).
pub(super) fn scope_value(scope: Scope, url: &Url) -> String {
    match scope {
        Scope::SameDomain => domain_of(url),
        _ => host_key(url),
    }
}
