//! Remote key sets: OIDC discovery, a JWKS fetched over HTTP, refreshed in the
//! background and on demand when a token names a key we do not know.
//!
//! Three rules keep the provider and us safe:
//! - **never worse**: a failed or empty fetch never replaces the last good
//!   key set, so a provider outage does not turn into refused tokens;
//! - **single flight, rate limited**: an unknown `kid` triggers at most one
//!   fetch per `min_refetch_interval`, however many tokens name random kids;
//! - **start-up never waits**: a provider that is down at start leaves the
//!   issuer without keys (and readiness false) until a fetch succeeds;
//!   while it has none, fetches are retried after 1 s, doubling up to the
//!   refresh bounds (Envoy's `jwt_authn` also retries after 1 s), so a
//!   provider starting alongside us costs seconds of 503s, not minutes;
//! - **one bad key spoils nothing**: a key we cannot use (a P-521 or
//!   encryption key, an unknown `kty`) is skipped, logged once and counted;
//!   only a set with no usable key at all is a failed fetch.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use super::keys::{VerifyKey, key_from_jwk};
use crate::{domain::IssuerName, telemetry::metrics};

/// How a remote key set is found and kept fresh.
#[derive(Debug, Clone)]
pub struct RemoteJwksSettings {
    /// `{issuer}/.well-known/openid-configuration`, when `jwks_uri` is not given.
    pub discovery_url: Option<String>,
    pub jwks_uri: Option<String>,
    /// Background refresh period when the response has no usable max-age.
    pub refresh_interval: Duration,
    /// Bounds for a `Cache-Control: max-age` from the provider.
    pub min_refresh_interval: Duration,
    pub max_refresh_interval: Duration,
    /// At most one fetch per this interval is caused by unknown `kid`s.
    pub min_refetch_interval: Duration,
    /// Per HTTP request.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Error)]
pub enum JwksError {
    #[error("discovery at {url} failed: {reason}")]
    Discovery { url: String, reason: String },
    #[error("fetching the JWKS at {url} failed: {reason}")]
    Fetch { url: String, reason: String },
    #[error("the JWKS at {url} holds no usable key: {reason}")]
    Unusable { url: String, reason: String },
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

/// A JWKS read key by key, so that one key we cannot parse does not lose
/// the others.
#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<Value>,
}

/// The first retry while an issuer has no keys.
const FIRST_RETRY: Duration = Duration::from_secs(1);

pub struct RemoteJwks {
    issuer: IssuerName,
    settings: RemoteJwksSettings,
    client: reqwest::Client,
    jwks_uri: RwLock<Option<String>>,
    keys: RwLock<Arc<Vec<VerifyKey>>>,
    /// When the last on-demand fetch started; the lock is the single flight.
    last_refetch: tokio::sync::Mutex<Option<Instant>>,
    /// Verified tokens to forget when a key disappears, so that removing a
    /// key revokes the tokens it signed at the next refresh, cached or not.
    revokes: std::sync::OnceLock<super::TokenCache>,
    /// Keys skipped as unusable: each is logged once (by `kid` and
    /// reason); `skipped` counts every skip, for monitoring.
    skipped_logged: Mutex<HashSet<String>>,
    skipped: AtomicU64,
}

impl RemoteJwks {
    pub fn new(issuer: IssuerName, settings: RemoteJwksSettings, client: reqwest::Client) -> Self {
        Self {
            issuer,
            jwks_uri: RwLock::new(settings.jwks_uri.clone()),
            settings,
            client,
            keys: RwLock::new(Arc::new(Vec::new())),
            last_refetch: tokio::sync::Mutex::new(None),
            revokes: std::sync::OnceLock::new(),
            skipped_logged: Mutex::new(HashSet::new()),
            skipped: AtomicU64::new(0),
        }
    }

    /// How many keys fetches have skipped as unusable, in all.
    pub fn skipped_keys(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Tokens in `cache` are forgotten whenever a key is removed.
    pub fn revoke_into(&self, cache: super::TokenCache) {
        let _ = self.revokes.set(cache);
    }

    /// The current key set (possibly empty before the first success).
    pub fn keys(&self) -> Arc<Vec<VerifyKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn is_ready(&self) -> bool {
        !self.keys().is_empty()
    }

    /// Fetches the key set now and, on success, replaces the current one.
    /// Returns the provider's max-age, if it sent one.
    pub async fn refresh(&self) -> Result<Option<Duration>, JwksError> {
        let span = tracing::debug_span!("key_set_fetch", issuer = %self.issuer);
        let fetched = tracing::Instrument::instrument(self.fetch(), span).await;
        metrics::key_fetch(self.issuer.as_str(), fetched.is_ok());
        fetched
    }

    async fn fetch(&self) -> Result<Option<Duration>, JwksError> {
        let uri = self.jwks_uri().await?;
        let (set, headers): (RawJwks, _) =
            self.get_json(&uri)
                .await
                .map_err(|reason| JwksError::Fetch {
                    url: uri.clone(),
                    reason,
                })?;
        let max_age = max_age(&headers);
        let keys = self.usable_keys(&set, &uri);
        if keys.is_empty() {
            return Err(JwksError::Unusable {
                url: uri,
                reason: "no usable signing key".into(),
            });
        }
        let previous = std::mem::replace(
            &mut *self.keys.write().unwrap_or_else(|e| e.into_inner()),
            Arc::new(keys),
        );
        let current = self.keys();
        let removed = previous.iter().any(|old| {
            !current
                .iter()
                .any(|k| k.kid == old.kid && k.algorithm == old.algorithm)
        });
        if removed {
            tracing::info!(issuer = %self.issuer, "a signing key was removed; forgetting verified tokens");
            if let Some(cache) = self.revokes.get() {
                cache.invalidate_all();
            }
        }
        Ok(max_age)
    }

    /// The signing keys of `set` we can use; the others are skipped.
    fn usable_keys(&self, set: &RawJwks, uri: &str) -> Vec<VerifyKey> {
        let mut keys = Vec::with_capacity(set.keys.len());
        for value in &set.keys {
            let kid = value.get("kid").and_then(Value::as_str).unwrap_or("");
            let key = serde_json::from_value::<Jwk>(value.clone())
                .map_err(|e| format!("not a JWK we can read: {e}"))
                .and_then(|jwk| {
                    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
                        return Ok(None);
                    }
                    key_from_jwk(&jwk, uri).map(Some).map_err(|e| e.to_string())
                });
            match key {
                Ok(Some(key)) => keys.push(key),
                // An encryption key is not for us: not worth a warning.
                Ok(None) => {}
                Err(reason) => self.skip(kid, &reason),
            }
        }
        keys
    }

    fn skip(&self, kid: &str, reason: &str) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
        let first = self
            .skipped_logged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(format!("{kid}\u{0}{reason}"));
        if first {
            tracing::warn!(issuer = %self.issuer, kid, reason, "skipping a key of the JWKS that cannot be used");
        }
    }

    async fn jwks_uri(&self) -> Result<String, JwksError> {
        if let Some(uri) = self
            .jwks_uri
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(uri);
        }
        let url = self.settings.discovery_url.clone().unwrap_or_default();
        let (discovery, _): (Discovery, _) =
            self.get_json(&url)
                .await
                .map_err(|reason| JwksError::Discovery {
                    url: url.clone(),
                    reason,
                })?;
        *self.jwks_uri.write().unwrap_or_else(|e| e.into_inner()) =
            Some(discovery.jwks_uri.clone());
        Ok(discovery.jwks_uri)
    }

    /// GETs a JSON document; the error says what went wrong, for logs.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<(T, reqwest::header::HeaderMap), String> {
        let response = self
            .client
            .get(url)
            .timeout(self.settings.timeout)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let headers = response.headers().clone();
        let body = response
            .json()
            .await
            .map_err(|e| format!("unexpected document: {e}"))?;
        Ok((body, headers))
    }

    /// Called when a token names a `kid` we lack. Fetches at most once per
    /// `min_refetch_interval`; concurrent callers wait for the one fetch.
    /// Returns whether a fetch happened and succeeded.
    ///
    /// The fetch runs as its own task: when Envoy gives up on the check
    /// (its timeout is shorter than ours) the fetch still completes and the
    /// next check finds the new key, instead of waiting out the interval.
    pub async fn refetch_for_unknown_kid(self: &Arc<Self>) -> bool {
        let this = self.clone();
        let fetch = tokio::spawn(tracing::Instrument::in_current_span(async move {
            let mut last = this.last_refetch.lock().await;
            // Without keys every token is a 503: retry soon, not after the
            // (long) interval that protects a provider from random kids.
            let interval = if this.is_ready() {
                this.settings.min_refetch_interval
            } else {
                FIRST_RETRY.min(this.settings.min_refetch_interval)
            };
            if last.is_some_and(|at| at.elapsed() < interval) {
                return false;
            }
            *last = Some(Instant::now());
            match this.refresh().await {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(issuer = %this.issuer, error = %e, "key refetch failed; keeping the last good keys");
                    false
                }
            }
        }));
        fetch.await.unwrap_or(false)
    }

    /// Refreshes forever: at the provider's max-age (within bounds) or the
    /// configured interval; after a failure, sooner; while there are no
    /// keys at all, after 1 s, doubling up to that.
    pub async fn run_refresher(self: Arc<Self>) {
        let mut backoff = FIRST_RETRY;
        loop {
            let after_failure = self
                .settings
                .min_refresh_interval
                .min(self.settings.refresh_interval);
            let wait = match self.refresh().await {
                Ok(max_age) => {
                    backoff = FIRST_RETRY;
                    max_age
                        .map(|age| {
                            age.clamp(
                                self.settings.min_refresh_interval,
                                self.settings.max_refresh_interval,
                            )
                        })
                        .unwrap_or(self.settings.refresh_interval)
                }
                Err(e) if !self.is_ready() => {
                    tracing::warn!(issuer = %self.issuer, error = %e, retry_in_ms = backoff.as_millis() as u64, "no keys yet; retrying");
                    let wait = backoff.min(after_failure);
                    backoff = (backoff * 2).min(after_failure);
                    wait
                }
                Err(e) => {
                    tracing::warn!(issuer = %self.issuer, error = %e, "key refresh failed; keeping the last good keys");
                    after_failure
                }
            };
            tokio::time::sleep(wait).await;
        }
    }
}

fn max_age(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::CACHE_CONTROL)?.to_str().ok()?;
    value
        .split(',')
        .filter_map(|d| d.trim().strip_prefix("max-age="))
        .find_map(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(max_age(&headers), None);
        headers.insert(
            "cache-control",
            "public, max-age=3600, must-revalidate".parse().unwrap(),
        );
        assert_eq!(max_age(&headers), Some(Duration::from_secs(3600)));
        headers.insert("cache-control", "no-cache".parse().unwrap());
        assert_eq!(max_age(&headers), None);
    }
}
