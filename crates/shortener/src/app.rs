//! The shortener itself, independent of HTTP: shorten a URL, resolve a code.
//!
//! Shorten follows the chapter's flow: validate, look the long URL up first
//! (an existing code is returned, not a new one), otherwise make a code with
//! the configured strategy and store it with set-if-absent.
//!
//! **Dedup keeps expiry semantics.** A code is only reused for a request that
//! would have made the same link: permanent requests share the URL's one
//! permanent code (the URL index, `s:url:…`, holds permanent codes only), and
//! an expiring request always gets a code that expires exactly when it asked
//! — never a permanent code (its link must stop working) nor another
//! expiring code with a different lifetime (it would expire early, or late).
//! With the hash strategy the expiry is part of the hashed input, so two
//! requests for the same URL and the same expiry instant share a code. Every
//! reply carries the returned link as stored, so `expiresMs` is always the
//! real expiry of the code handed out.
//!
//! Resolve reads the
//! bounded in-process cache first (hot links are read far more than written:
//! the chapter's 10:1), then the store.

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use url::Url;

use crate::code::{self, Strategy, UsedCodes};
use crate::config::Config;
use crate::host::{self, OwnAddresses};
use crate::store::{Link, LinkStore};
use crate::validate;

/// A shorten request, as the API receives it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ShortenRequest {
    /// The URL to shorten.
    pub long_url: String,
    /// A custom code instead of a generated one.
    #[serde(default)]
    pub alias: Option<String>,
    /// The link stops resolving after this many seconds.
    #[serde(default)]
    pub expires_in_seconds: Option<u64>,
}

/// Why a request failed; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum ShortenError {
    /// Bad input (400).
    #[error("{0}")]
    Invalid(String),
    /// The alias belongs to another URL (409).
    #[error("alias `{0}` is already taken")]
    AliasTaken(String),
    /// The store is down or slow (503).
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (500).
    #[error("{0}")]
    Internal(String),
}

impl From<kvclient::Error> for ShortenError {
    fn from(err: kvclient::Error) -> Self {
        match err {
            kvclient::Error::Unavailable(_) => Self::Unavailable(err.to_string()),
            kvclient::Error::Store(_) => Self::Internal(err.to_string()),
        }
    }
}

/// The outcome of a shorten request.
#[derive(Debug, Clone)]
pub struct Shortened {
    /// The link (new or existing).
    pub link: Link,
    /// False when the URL already had this code.
    pub created: bool,
}

/// Counters the HTTP layer exposes.
#[derive(Debug, Clone, Default)]
pub struct AppMetrics {
    /// Links created.
    pub created: Counter,
    /// Shorten requests answered with an existing code.
    pub deduplicated: Counter,
    /// Code lookups answered by the in-process cache.
    pub cache_hits: Counter,
    /// Code lookups that went to the store.
    pub cache_misses: Counter,
    /// Hash-strategy collisions resolved.
    pub collisions: Counter,
}

/// The shortener. Shared by every request handler.
pub struct App {
    config: Config,
    store: LinkStore,
    /// Shared, so a hit costs a reference count, not two `String` copies.
    cache: Mutex<LruCache<String, Arc<Link>>>,
    generator: idgen::snowflake::Generator,
    used_codes: UsedCodes,
    own: OwnAddresses,
    /// Counters for `/metrics`.
    pub metrics: AppMetrics,
}

/// Bloom filter size for the hash strategy's used codes; beyond it the false
/// positive rate rises and each miss costs a store read, still correct.
const USED_CODES_EXPECTED: usize = 1_000_000;

impl App {
    /// A shortener over `store` with `config`.
    pub fn new(config: Config, store: LinkStore) -> Result<Self, String> {
        config.redirect_status()?;
        let generator_config = idgen::snowflake::GeneratorConfig {
            datacenter: config.datacenter,
            machine: config.machine,
            ..Default::default()
        };
        let generator =
            idgen::snowflake::Generator::new(&generator_config).map_err(|err| err.to_string())?;
        let capacity = NonZeroUsize::new(config.cache_entries.max(1)).expect("at least 1");
        let own = own_addresses(&config)?;
        Ok(Self {
            store,
            cache: Mutex::new(LruCache::new(capacity)),
            generator,
            used_codes: UsedCodes::new(USED_CODES_EXPECTED),
            own,
            metrics: AppMetrics::default(),
            config,
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The link store (for stats).
    pub fn store(&self) -> &LinkStore {
        &self.store
    }

    /// The link `code` resolves to now, if any.
    pub async fn resolve(&self, code: &str, now_ms: u64) -> Result<Option<Link>, ShortenError> {
        let link = self.resolve_shared(code, now_ms).await?;
        Ok(link.map(|link| Link::clone(&link)))
    }

    /// [`App::resolve`] without copying the link out of the cache (the
    /// redirect path).
    pub async fn resolve_shared(
        &self,
        code: &str,
        now_ms: u64,
    ) -> Result<Option<Arc<Link>>, ShortenError> {
        let cached = self.cache.lock().get(code).cloned();
        if let Some(link) = cached.filter(|link| !link.expired_at(now_ms)) {
            self.metrics.cache_hits.inc();
            return Ok(Some(link));
        }
        self.metrics.cache_misses.inc();
        let link = self
            .store
            .by_code(code)
            .await?
            .filter(|link| !link.expired_at(now_ms))
            .map(Arc::new);
        if let Some(link) = &link {
            self.cache.lock().put(code.to_string(), link.clone());
        }
        Ok(link)
    }

    /// Shortens a URL. See the module doc.
    pub async fn shorten(
        &self,
        request: ShortenRequest,
        now_ms: u64,
    ) -> Result<Shortened, ShortenError> {
        let url: String = validate::long_url(
            request.long_url.trim(),
            self.config.url_bytes_max,
            &self.own,
        )
        .map_err(|invalid| ShortenError::Invalid(invalid.0))?
        .into();
        let expires_ms = request
            .expires_in_seconds
            .map(|seconds| expires_ms(seconds, now_ms))
            .transpose()?;
        let link = Link {
            code: String::new(),
            long_url: url,
            created_ms: now_ms,
            expires_ms,
            custom: false,
        };
        match request.alias {
            Some(alias) => self.shorten_with_alias(link, alias, now_ms).await,
            None => self.shorten_generated(link, now_ms).await,
        }
    }

    async fn shorten_with_alias(
        &self,
        mut link: Link,
        alias: String,
        now_ms: u64,
    ) -> Result<Shortened, ShortenError> {
        validate::alias(&alias).map_err(|invalid| ShortenError::Invalid(invalid.0))?;
        link.code = alias;
        link.custom = true;
        if self.store.insert_if_absent(&link, now_ms).await? {
            self.metrics.created.inc();
            return Ok(Shortened {
                link,
                created: true,
            });
        }
        match self.resolve(&link.code, now_ms).await? {
            // Same alias, same URL: the request is a harmless repeat.
            Some(existing) if existing.long_url == link.long_url => Ok(Shortened {
                link: existing,
                created: false,
            }),
            _ => Err(ShortenError::AliasTaken(link.code)),
        }
    }

    async fn shorten_generated(&self, link: Link, now_ms: u64) -> Result<Shortened, ShortenError> {
        if link.expires_ms.is_some() {
            // Expiring links are not in the URL index: each one lives exactly
            // as long as its request asked (see the module doc).
            let shortened = self.claim_new_code(link, now_ms).await?;
            if shortened.created {
                self.metrics.created.inc();
            }
            return Ok(shortened);
        }
        if let Some(code) = self.store.code_for_url(&link.long_url).await? {
            match self.resolve(&code, now_ms).await? {
                Some(existing)
                    if existing.long_url == link.long_url && existing.expires_ms.is_none() =>
                {
                    self.metrics.deduplicated.inc();
                    return Ok(Shortened {
                        link: existing,
                        created: false,
                    });
                }
                // Expired, replaced, or (in stores written before expiring
                // links left the index) an expiring code: make a permanent one.
                _ => self.store.forget_url(&link.long_url).await?,
            }
        }
        let ours = self.claim_new_code(link, now_ms).await?;
        let winner = self
            .store
            .claim_url(&ours.link.long_url, &ours.link.code, None)
            .await?;
        // A concurrent request for the same URL may have won; return its code.
        if winner != ours.link.code
            && let Some(existing) = self.resolve(&winner, now_ms).await?
            && existing.long_url == ours.link.long_url
            && existing.expires_ms.is_none()
        {
            if ours.created && self.config.strategy == Strategy::Snowflake {
                self.store.remove(&ours.link.code).await?;
            }
            self.metrics.deduplicated.inc();
            return Ok(Shortened {
                link: existing,
                created: false,
            });
        }
        if ours.created {
            self.metrics.created.inc();
        }
        Ok(ours)
    }

    /// Stores `link` under a fresh code, or (hash strategy) finds the code
    /// that already holds the same URL with the same expiry.
    async fn claim_new_code(&self, link: Link, now_ms: u64) -> Result<Shortened, ShortenError> {
        let hash_input = code::hash_input(&link.long_url, link.expires_ms);
        let mut candidate = link;
        for attempt in 0..code::HASH_ATTEMPTS_MAX {
            candidate.code = match self.config.strategy {
                Strategy::Snowflake => {
                    let id = self
                        .generator
                        .next_id()
                        .map_err(|err| ShortenError::Internal(err.to_string()))?;
                    code::snowflake_code(id)
                }
                Strategy::Hash => code::hash_code(&hash_input, attempt),
            };
            let maybe_used = self.config.strategy == Strategy::Hash
                && self.used_codes.may_be_used(&candidate.code);
            let existing = match maybe_used {
                true => self.store.by_code(&candidate.code).await?,
                false => None,
            };
            if let Some(existing) = existing {
                let same = existing.long_url == candidate.long_url
                    && existing.expires_ms == candidate.expires_ms;
                if same && !existing.expired_at(now_ms) {
                    self.metrics.deduplicated.inc();
                    return Ok(Shortened {
                        link: existing,
                        created: false,
                    });
                }
                self.metrics.collisions.inc();
                continue;
            }
            if self.store.insert_if_absent(&candidate, now_ms).await? {
                self.used_codes.insert(&candidate.code);
                return Ok(Shortened {
                    link: candidate,
                    created: true,
                });
            }
            // Taken without the filter knowing (another server): learn and retry.
            self.used_codes.insert(&candidate.code);
            self.metrics.collisions.inc();
        }
        Err(ShortenError::Unavailable(
            "no free code after repeated collisions; try again".into(),
        ))
    }
}

/// The largest number a JavaScript client reads exactly
/// (`Number.MAX_SAFE_INTEGER`); every timestamp we return stays below it.
pub const JS_SAFE_INTEGER_MAX: u64 = (1 << 53) - 1;

/// Longest lifetime a link may ask for: 100 Julian years (36,525 days). With it,
/// `expiresMs` stays a few thousand years below [`JS_SAFE_INTEGER_MAX`]
/// (≈ year 287,000), so JSON clients never round it.
pub const EXPIRES_IN_SECONDS_MAX: u64 = 36_525 * 86_400;

/// When a link asked to live `seconds` expires, in ms since the epoch.
fn expires_ms(seconds: u64, now_ms: u64) -> Result<u64, ShortenError> {
    if seconds == 0 {
        return Err(ShortenError::Invalid(
            "expiresInSeconds must be positive".into(),
        ));
    }
    let expires_ms = seconds
        .checked_mul(1000)
        .and_then(|lifetime_ms| now_ms.checked_add(lifetime_ms))
        .filter(|&expires_ms| {
            seconds <= EXPIRES_IN_SECONDS_MAX && expires_ms <= JS_SAFE_INTEGER_MAX
        });
    expires_ms.ok_or_else(|| {
        ShortenError::Invalid(format!(
            "expiresInSeconds must be at most {EXPIRES_IN_SECONDS_MAX} (100 years); \
             leave it out for a link that never expires"
        ))
    })
}

/// Where this shortener answers, for the loop check (see [`host`]).
fn own_addresses(config: &Config) -> Result<OwnAddresses, String> {
    let public_url = match &config.public_url {
        Some(text) => Some(Url::parse(text).map_err(|err| {
            format!("public_url `{text}` is not a URL ({err}); give one like https://sho.rt")
        })?),
        None => None,
    };
    let interfaces = match config.bind.ip().is_unspecified() {
        true => host::interface_ips(),
        false => Vec::new(),
    };
    Ok(OwnAddresses::new(
        config.bind,
        &interfaces,
        public_url.as_ref(),
    ))
}

/// Shared handle used by the HTTP layer.
pub type SharedApp = Arc<App>;
