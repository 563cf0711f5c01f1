//! Remote key sets: OIDC discovery, a JWKS fetched over HTTP, refreshed in the
//! background and on demand when a token names a key we do not know.
//!
//! Three rules keep the provider and us safe:
//! - **never worse**: a failed or empty fetch never replaces the last good
//!   key set, so a provider outage does not turn into refused tokens;
//! - **single flight, rate limited**: an unknown `kid` triggers at most one
//!   fetch per `min_refetch_interval`, however many tokens name random kids;
//! - **start-up never waits**: a provider that is down at start leaves the
//!   issuer without keys (and readiness false) until a fetch succeeds.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use thiserror::Error;

use super::keys::{VerifyKey, keys_from_jwks};
use crate::domain::IssuerName;

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
        }
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
        let uri = self.jwks_uri().await?;
        let (set, headers): (JwkSet, _) =
            self.get_json(&uri)
                .await
                .map_err(|reason| JwksError::Fetch {
                    url: uri.clone(),
                    reason,
                })?;
        let max_age = max_age(&headers);
        let keys = keys_from_jwks(&set, &uri).map_err(|e| JwksError::Unusable {
            url: uri.clone(),
            reason: e.to_string(),
        })?;
        if keys.is_empty() {
            return Err(JwksError::Unusable {
                url: uri,
                reason: "no signing keys".into(),
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
        let fetch = tokio::spawn(async move {
            let mut last = this.last_refetch.lock().await;
            if last.is_some_and(|at| at.elapsed() < this.settings.min_refetch_interval) {
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
        });
        fetch.await.unwrap_or(false)
    }

    /// Refreshes forever: at the provider's max-age (within bounds) or the
    /// configured interval; after a failure, sooner.
    pub async fn run_refresher(self: Arc<Self>) {
        loop {
            let wait = match self.refresh().await {
                Ok(max_age) => max_age
                    .map(|age| {
                        age.clamp(
                            self.settings.min_refresh_interval,
                            self.settings.max_refresh_interval,
                        )
                    })
                    .unwrap_or(self.settings.refresh_interval),
                Err(e) => {
                    tracing::warn!(issuer = %self.issuer, error = %e, "key refresh failed; keeping the last good keys");
                    self.settings
                        .min_refresh_interval
                        .min(self.settings.refresh_interval)
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
