//! Identity: from a bearer token to a verified `(issuer, subject)`.
//!
//! The sources: JWT issuers with local keys (JWKS file, PEM public keys, a
//! development-only HMAC secret) or remote ones (OIDC discovery, JWKS URL),
//! GitHub OAuth tokens judged by the GitHub API, and service accounts' own
//! signed tokens (`iss = "<org>/<name>"`) verified with their registered keys.
//!
//! **Invariant:** a token is never logged, stored or put into an error
//! message; the cache keys it by its SHA-256 digest.

mod cache;
pub mod github;
pub mod jwks;
mod jwt;
pub mod keys;
pub mod limiter;
pub mod service_account;

use std::{collections::HashMap, sync::Arc};

use jsonwebtoken::Algorithm;
use thiserror::Error;
use tokio::sync::Semaphore;

pub use cache::{TokenCache, TokenStamp};
pub use jwt::{ClaimMapping, IssuerConfig, JwtIssuer, KeyConfig, KeySource};

use crate::{
    domain::{Email, LinkKey, Login, Principal, ServiceAccountId},
    store::ServiceAccount,
};

/// What a valid token proves. Cached until the token's `exp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// Shared with the user cache's key, so a cache hit allocates nothing.
    pub principal: Arc<Principal>,
    /// The login the token claims; informational (the store's login is what
    /// gets injected; a settled token keeps this and `email` only from an
    /// authoritative source, `check::settled`)...
    pub login: Option<Login>,
    /// ...unless the source is authoritative for it (GitHub): then a changed
    /// login is written back to the user store.
    pub login_is_authoritative: bool,
    pub email: Option<Email>,
    /// The token's `exp`, seconds since the Unix epoch.
    pub expires_at: u64,
    /// When the verification ran (seconds since the Unix epoch). A verified
    /// token is trusted at most the token cache's `max_ttl` from then, so
    /// what it was judged against (a service account changed by another
    /// process, say) is read again.
    pub verified_at: u64,
    /// Set when the token is a service account's: the account as it was
    /// when the token was verified (its id is what roles are bound to).
    pub service_account: Option<Arc<ServiceAccount>>,
    /// What the source says the identity belongs to, as groups may be
    /// linked to (`domain::GroupLink`): the GitHub teams read with the
    /// token, the values of an issuer's `group_claims`. Sorted, no
    /// duplicates; empty for most identities.
    pub links: Box<[LinkKey]>,
}

/// Why a token was refused. The messages go to the client in the 401 body
/// and to the decision log: they name the problem and never echo the token,
/// its claims' values or key material.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("{0}")]
    Malformed(&'static str),
    #[error("unsigned tokens (alg \"none\") are not accepted")]
    Unsigned,
    #[error("token names critical header extensions (crit) that are not supported")]
    CriticalExtension,
    #[error("token algorithm is not supported")]
    UnsupportedAlgorithm,
    #[error("token issuer is not trusted")]
    UntrustedIssuer,
    #[error("token key id (kid) is not known for its issuer")]
    UnknownKey,
    #[error("the token issuer's keys are not available yet; retry later")]
    KeysUnavailable,
    #[error("token algorithm {token:?} does not match the key's pinned algorithm {pinned:?}")]
    AlgorithmNotAllowed { token: Algorithm, pinned: Algorithm },
    #[error("token signature is invalid")]
    BadSignature,
    #[error("{0}")]
    Rejected(&'static str),
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet (nbf)")]
    NotYetValid,
    #[error("token was issued in the future (iat)")]
    IssuedInFuture,
    #[error("token audience is not accepted")]
    WrongAudience,
    #[error("token has no {0} claim")]
    MissingClaim(String),
    /// The identity provider could not answer (down, slow, rate limited).
    #[error("the identity provider {source_name} is unavailable; retry later")]
    ProviderUnavailable { source_name: String },
    /// Valid, but the source's requirements (organization, team) are not met.
    #[error("{0}")]
    NotAuthorized(String),
    #[error("token claim {0} has an unusable value")]
    BadClaim(String),
    #[error("token issuer names no known service account")]
    UnknownServiceAccount,
    #[error(
        "token lives too long: a service account token may live at most {max_secs} s from iat to exp"
    )]
    LifetimeTooLong { max_secs: u64 },
}

impl TokenError {
    /// A short stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_token",
            Self::Unsigned => "unsigned_token",
            Self::CriticalExtension => "critical_extension",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::UnknownKey => "unknown_key",
            Self::KeysUnavailable => "issuer_keys_unavailable",
            Self::AlgorithmNotAllowed { .. } => "algorithm_not_allowed",
            Self::BadSignature => "bad_signature",
            Self::Rejected(_) => "token_rejected",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::IssuedInFuture => "token_issued_in_future",
            Self::WrongAudience => "wrong_audience",
            Self::MissingClaim(_) => "missing_claim",
            Self::ProviderUnavailable { .. } => "provider_unavailable",
            Self::NotAuthorized(_) => "requirement_not_met",
            Self::BadClaim(_) => "bad_claim",
            Self::UnknownServiceAccount => "unknown_service_account",
            Self::LifetimeTooLong { .. } => "token_lifetime_too_long",
        }
    }
}

/// Every configured source: JWT issuers found by the `iss` their tokens
/// carry (in front of a cache of verified tokens), and GitHub tokens.
pub struct IdentityVerifier {
    by_iss: HashMap<String, Arc<JwtIssuer>>,
    github: Option<Arc<github::GithubSource>>,
    service_accounts: Option<service_account::ServiceAccountSource>,
    cache: TokenCache,
    /// Signature verifications of tokens not in the cache run in one of
    /// these slots (cores − 1 by default): a flood of distinct forged tokens,
    /// each a verification, can then never occupy every core, and cached
    /// tokens, which need no slot, keep being answered.
    slots: Arc<Semaphore>,
}

/// Cores minus one, at least one.
fn default_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}

impl IdentityVerifier {
    pub fn new(issuers: Vec<JwtIssuer>, cache: TokenCache) -> Self {
        for issuer in &issuers {
            if let KeySource::Remote(remote) = &issuer.keys {
                remote.revoke_into(cache.clone());
            }
        }
        let by_iss = issuers
            .into_iter()
            .map(|i| (i.iss.clone(), Arc::new(i)))
            .collect();
        Self {
            by_iss,
            github: None,
            service_accounts: None,
            cache,
            slots: Arc::new(Semaphore::new(default_slots())),
        }
    }

    /// How many uncached signature verifications may run at once.
    pub fn with_verification_slots(mut self, slots: usize) -> Self {
        self.slots = Arc::new(Semaphore::new(slots.max(1)));
        self
    }

    /// Waits for a verification slot. The semaphore is never closed.
    async fn slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.slots.acquire().await.ok()
    }

    /// Adds service accounts (`iss = "<org>/<name>"`) as a source.
    pub fn with_service_accounts(
        mut self,
        source: Option<service_account::ServiceAccountSource>,
    ) -> Self {
        self.service_accounts = source;
        self
    }

    /// Forgets the verified tokens of one service account (its keys
    /// changed, or it was disabled or deleted).
    pub fn forget_service_account(&self, id: ServiceAccountId) {
        self.cache.invalidate_service_account(id);
    }

    /// Every verified service-account token is to be verified again.
    pub fn forget_all_service_accounts(&self) {
        self.cache.invalidate_all();
    }

    /// To be read before [`IdentityVerifier::verify`]; see
    /// [`IdentityVerifier::is_fresh`].
    pub fn stamp(&self) -> TokenStamp {
        self.cache.stamp()
    }

    /// Whether an identity that a verification begun at `stamp` returned
    /// may still be served (kept by a cache outside this module): no key
    /// was revoked since, and its service account, if it is one's, has not
    /// changed.
    pub fn is_fresh(&self, account: Option<&ServiceAccount>, stamp: TokenStamp) -> bool {
        self.cache.is_fresh(account, stamp)
    }

    /// Drops a verified token, by its SHA-256, that the check's per-token
    /// cache now holds.
    pub async fn release(&self, key: &[u8; 32]) {
        self.cache.release(key).await;
    }

    /// Adds the GitHub token source.
    pub fn with_github(mut self, github: Option<github::GithubSource>) -> Self {
        self.github = github.map(Arc::new);
        self
    }

    /// Verifies `token`, from the cache when it was verified before.
    pub async fn verify(&self, token: &str) -> Result<Arc<VerifiedIdentity>, TokenError> {
        if github::looks_like_github_token(token) {
            return match &self.github {
                Some(github) => github.verify(token).await,
                // Said plainly, rather than "malformed JWT".
                None => Err(TokenError::Rejected(
                    "a GitHub token, but no GitHub source ([github]) is configured here",
                )),
            };
        }
        let now = unix_now();
        self.cache
            .get_or_verify(token, now, self.verify_uncached(token, now))
            .await
    }

    /// Verifies without the cache: the cold path (also for benchmarks).
    pub async fn verify_uncached(
        &self,
        token: &str,
        now: u64,
    ) -> Result<VerifiedIdentity, TokenError> {
        let unverified = jwt::Unverified::parse(token)?;
        // Refuse `none` before looking at the issuer, so the answer is the
        // same whoever the token claims to come from.
        jwt::header_algorithm(&unverified.header)?;
        let iss = unverified.iss()?;
        let Some(issuer) = self.by_iss.get(iss) else {
            return match (&self.service_accounts, service_account::parse_issuer(iss)) {
                (Some(accounts), Some((org, name))) => {
                    let _slot = self.slot().await;
                    accounts.verify(&unverified, &org, &name, now).await
                }
                _ => Err(TokenError::UntrustedIssuer),
            };
        };
        let keys = issuer.keys.current();
        let first = {
            let _slot = self.slot().await;
            issuer.verify(&unverified, now, &keys)
        };
        match first {
            // A key we lack may be new: ask the provider (rate limited; no
            // slot is held while waiting for it).
            Err(TokenError::UnknownKey | TokenError::KeysUnavailable) => match &issuer.keys {
                KeySource::Remote(remote) if remote.refetch_for_unknown_kid().await => {
                    let _slot = self.slot().await;
                    issuer.verify(&unverified, now, &remote.keys())
                }
                _ if keys.is_empty() => Err(TokenError::KeysUnavailable),
                _ => Err(TokenError::UnknownKey),
            },
            other => other,
        }
    }

    /// Remote key sets, for the background refresher and readiness.
    pub fn remote_key_sets(&self) -> Vec<Arc<jwks::RemoteJwks>> {
        self.by_iss
            .values()
            .filter_map(|i| match &i.keys {
                KeySource::Remote(r) => Some(r.clone()),
                KeySource::Static(_) => None,
            })
            .collect()
    }

    /// Whether every issuer has keys to verify with.
    /// Verified tokens held by the token cache (metrics).
    pub fn cached_tokens(&self) -> u64 {
        self.cache.entry_count()
    }

    pub fn is_ready(&self) -> bool {
        self.remote_key_sets().iter().all(|r| r.is_ready())
    }
}

/// Re-exported where token lifetimes are judged.
pub use crate::domain::unix_now;

#[cfg(test)]
mod tests;
