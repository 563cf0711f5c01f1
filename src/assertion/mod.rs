//! The signed identity: `x-dispatch-identity`, a short-lived JWT the
//! sidecar signs for every allowed subject, so that a service behind the
//! proxy (or an event it emits) can later *prove* who acted. The plain
//! `x-dispatch-*` headers are only as good as every hop that carried them;
//! this one verifies against our published keys (`keys.rs`) with any JWT
//! library.
//!
//! Signing costs more than the rest of a cache-hit check, so a token is
//! kept per subject and organization and reused while it has at least half
//! its lifetime left and its claims and signing key are unchanged. Only
//! with `per_request` (the request id inside, so a token names one request)
//! is every allow signed.

pub mod keys;

use std::{
    borrow::Cow,
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Header, jwk::JwkSet};
use serde::Serialize;

use crate::domain::{OrgName, RoleName, SubjectRef};
pub use keys::{KeyError, KeyRing, SigningAlgorithm, SigningKey};

/// Where the keys come from.
#[derive(Debug)]
pub enum KeyOrigin {
    /// Generated at start, in memory; a new one signs every `rotate`.
    /// One replica only: each would publish its own keys.
    Generated { rotate: Duration },
    /// Read from PKCS#8 PEM files: the first signs, the others are
    /// published. Replicas share them; rotation is an edit and a reload.
    Files(Vec<std::path::PathBuf>),
}

/// `[signed_identity]`, checked.
#[derive(Debug)]
pub struct AssertionSettings {
    pub algorithm: SigningAlgorithm,
    pub ttl: Duration,
    pub issuer: String,
    pub audience: Option<String>,
    pub per_request: bool,
    pub origin: KeyOrigin,
    /// Tokens kept for reuse, one per active (subject, organization): about
    /// 0.8 KiB each (BENCHMARKS.md); beyond, the least used are signed anew.
    pub cache_capacity: usize,
}

/// The keys to start with: read from the files, or generated.
#[derive(Debug)]
pub struct Keys {
    pub signing: SigningKey,
    /// Published too: the keys to sign next (and, on a reload, the ones
    /// still listed).
    pub published: Vec<SigningKey>,
}

/// What is asserted about one allowed caller.
#[derive(Debug, Clone)]
pub struct Assertion<'a> {
    pub subject: SubjectRef,
    /// A user's login, or a service account's `<org>/<name>`.
    pub login: Cow<'a, str>,
    /// The identity source that vouched for the subject.
    pub source: &'a str,
    pub email: Option<&'a str>,
    pub org: Option<&'a OrgName>,
    pub roles: &'a [RoleName],
    /// Dry-run: the reason the roles would have refused.
    pub would_deny: Option<&'static str>,
    pub request_id: Option<&'a str>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    sub: String,
    kind: &'static str,
    login: &'a str,
    idp: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org: Option<&'a str>,
    roles: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    would_deny: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rid: Option<&'a str>,
    iat: u64,
    exp: u64,
}

/// A token kept for reuse, with the claims it was signed over.
struct Signed {
    token: Arc<str>,
    login: Box<str>,
    source: Box<str>,
    email: Option<Box<str>>,
    roles: Box<[RoleName]>,
    would_deny: Option<&'static str>,
    generation: u64,
    reuse_until: Instant,
}

impl Signed {
    fn serves(&self, a: &Assertion<'_>, generation: u64, now: Instant) -> bool {
        now < self.reuse_until
            && generation == self.generation
            && *self.login == *a.login.as_ref()
            && *self.source == *a.source
            && self.email.as_deref() == a.email
            && *self.roles == *a.roles
            && self.would_deny == a.would_deny
    }
}

type CacheKey = (SubjectRef, Option<OrgName>);

pub struct Asserter {
    ring: KeyRing,
    settings: AssertionSettings,
    cache: quick_cache::sync::Cache<CacheKey, Arc<Signed>>,
}

impl std::fmt::Debug for Asserter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Asserter")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Asserter {
    pub fn new(settings: AssertionSettings, keys: Keys) -> Self {
        Self {
            ring: KeyRing::new(keys.signing, keys.published),
            cache: quick_cache::sync::Cache::new(settings.cache_capacity.max(1)),
            settings,
        }
    }

    pub fn settings(&self) -> &AssertionSettings {
        &self.settings
    }

    pub fn ring(&self) -> &KeyRing {
        &self.ring
    }

    /// The published keys (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> JwkSet {
        self.ring.jwks()
    }

    /// How long a verifier may cache the published keys: half the time a
    /// generated key is published before it signs, at most 5 minutes (the
    /// operator who lists a new key file waits that long before moving it
    /// first).
    pub fn jwks_max_age(&self) -> Duration {
        let most = Duration::from_secs(300);
        match self.settings.origin {
            KeyOrigin::Generated { rotate } => (rotate / 2).min(most),
            KeyOrigin::Files(_) => most,
        }
    }

    /// Generated keys: the next one signs. Tokens of the old one verify
    /// until they expire.
    pub fn rotate(&self) -> Result<(), KeyError> {
        let fresh = SigningKey::generate(self.settings.algorithm)?;
        self.ring.rotate(fresh, self.settings.ttl + CLOCK_SKEW);
        Ok(())
    }

    /// Rotates generated keys every configured period, forever (the
    /// server aborts it at stop); configured files rotate by a reload.
    pub async fn rotate_periodically(self: Arc<Self>) {
        let KeyOrigin::Generated { rotate } = self.settings.origin else {
            return;
        };
        loop {
            tokio::time::sleep(rotate).await;
            match self.rotate() {
                Ok(()) => {
                    tracing::info!(kid = %self.ring.current().0.kid(), "signed identity: new signing key")
                }
                Err(error) => tracing::warn!(%error, "signed identity: the key was not rotated"),
            }
        }
    }

    /// Configured keys read again: tokens of a key no longer listed verify
    /// until they expire.
    pub fn replace_keys(&self, keys: Keys) {
        self.ring
            .replace(keys.signing, keys.published, self.settings.ttl + CLOCK_SKEW);
    }

    /// The token for `assertion`: kept, or signed now. `None` only if
    /// signing failed, which a tested key never does; the caller denies.
    pub fn token(&self, assertion: &Assertion<'_>) -> Option<Arc<str>> {
        let now = Instant::now();
        let generation = self.ring.generation();
        if self.settings.per_request {
            return self.sign(assertion, true).map(|(token, _)| token);
        }
        let key = (assertion.subject, assertion.org.cloned());
        if let Some(kept) = self.cache.get(&key)
            && kept.serves(assertion, generation, now)
        {
            return Some(kept.token.clone());
        }
        let (token, generation) = self.sign(assertion, false)?;
        self.cache.insert(
            key,
            Arc::new(Signed {
                token: token.clone(),
                login: assertion.login.as_ref().into(),
                source: assertion.source.into(),
                email: assertion.email.map(Into::into),
                roles: assertion.roles.into(),
                would_deny: assertion.would_deny,
                generation,
                reuse_until: now + self.settings.ttl / 2,
            }),
        );
        Some(token)
    }

    fn sign(&self, a: &Assertion<'_>, with_request: bool) -> Option<(Arc<str>, u64)> {
        let (key, generation) = self.ring.current();
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            iss: &self.settings.issuer,
            aud: self.settings.audience.as_deref(),
            sub: a.subject.id().to_string(),
            kind: a.subject.kind(),
            login: &a.login,
            idp: a.source,
            email: a.email,
            org: a.org.map(OrgName::as_str),
            roles: a.roles.iter().map(RoleName::as_str).collect(),
            would_deny: a.would_deny,
            rid: a.request_id.filter(|_| with_request),
            iat,
            exp: iat + self.settings.ttl.as_secs(),
        };
        let mut header = Header::new(key.algorithm);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &key.key).ok()?;
        Some((token.into(), generation))
    }
}

/// How long past `exp` a retired key stays published: verifiers allow some
/// leeway for clocks (PyJWT and jsonwebtoken: 0–60 s).
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests;
