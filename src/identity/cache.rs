//! The verified-token cache: a hit costs a SHA-256 and a hash-map lookup, no
//! signature verification. Refusals that cost a verification (a bad
//! signature, an expired or wrongly addressed token) are remembered briefly
//! too, so a flood of one well-formed but invalid token is not verified
//! again on every request.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use moka::{Expiry, future::Cache};
use sha2::{Digest, Sha256};

use super::{TokenError, VerifiedIdentity, unix_now};
use crate::{
    domain::ServiceAccountId,
    freshness::{Freshness, Stamped},
    store::ServiceAccount,
};

/// Keyed by the SHA-256 of the token, so the cache never holds a usable
/// credential. Every entry expires at the token's own `exp` or after
/// `max_ttl`, whichever comes first.
#[derive(Clone)]
pub struct TokenCache {
    cache: Cache<[u8; 32], Stamped<Arc<VerifiedIdentity>>>,
    refused: Cache<[u8; 32], Refusal>,
    /// A service account's verified tokens are served only if their
    /// verification began after the account last changed (keys, enabled,
    /// deleted): linearizable with the admin API's invalidations.
    accounts: Freshness<ServiceAccountId>,
    /// The stamp of the last change of any account: refusals from before
    /// it may not hold (a key was added, an account created).
    last_account_change: Arc<AtomicU64>,
    /// Counts [`TokenCache::invalidate_all`] (a signing key was removed).
    revocations: Arc<AtomicU64>,
}

/// A remembered refusal: why, and when (the invalidation stamp, and the
/// wall clock in seconds, for refusals that only time decides).
#[derive(Clone)]
struct Refusal {
    error: TokenError,
    started: u64,
    at: u64,
}

/// When a verification began, as far as later invalidations are concerned:
/// what a cache *outside* this one (the check's per-token answers) keeps
/// beside an identity, to ask [`TokenCache::is_fresh`] later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenStamp {
    accounts: u64,
    revocations: u64,
}

struct UntilTokenExpiry {
    max_ttl: Duration,
}

impl Expiry<[u8; 32], Stamped<Arc<VerifiedIdentity>>> for UntilTokenExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        entry: &Stamped<Arc<VerifiedIdentity>>,
        _created_at: Instant,
    ) -> Option<Duration> {
        let remaining = Duration::from_secs(entry.value.expires_at.saturating_sub(unix_now()));
        Some(remaining.min(self.max_ttl))
    }
}

impl TokenCache {
    pub fn new(capacity: u64, max_ttl: Duration) -> Self {
        let cache = Cache::builder()
            .max_capacity(capacity)
            .expire_after(UntilTokenExpiry { max_ttl })
            .support_invalidation_closures()
            .eviction_listener(|_, _, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    crate::telemetry::metrics::cache_evicted("tokens");
                }
            })
            .build();
        let refused = Cache::builder()
            .max_capacity(REFUSALS_CAPACITY)
            .time_to_live(REFUSAL_TTL)
            .build();
        Self {
            cache,
            refused,
            accounts: Freshness::new(capacity, max_ttl),
            last_account_change: Arc::default(),
            revocations: Arc::default(),
        }
    }

    /// To be read before a verification (or a lookup) begins.
    pub fn stamp(&self) -> TokenStamp {
        TokenStamp {
            accounts: self.accounts.start(),
            revocations: self.revocations.load(Ordering::SeqCst),
        }
    }

    /// Whether `identity`, obtained by a lookup that began at `stamp`, may
    /// still be served: no signing key was removed since, and a service
    /// account's token is judged by the account's last change.
    pub fn is_fresh(&self, account: Option<&ServiceAccount>, stamp: TokenStamp) -> bool {
        self.revocations.load(Ordering::SeqCst) == stamp.revocations
            && account.is_none_or(|account| self.accounts.is_fresh(&account.id, stamp.accounts))
    }

    pub(super) async fn get_or_verify(
        &self,
        token: &str,
        now: u64,
        verify: impl Future<Output = Result<VerifiedIdentity, TokenError>>,
    ) -> Result<Arc<VerifiedIdentity>, TokenError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.cache.get(&key).await {
            // moka's expiry is exact, but a clock step must not resurrect a
            // token: past its `exp` it is verified again (leeway applies).
            let fresh = match &hit.value.service_account {
                Some(account) => self.accounts.is_fresh(&account.id, hit.started),
                None => true,
            };
            if hit.value.expires_at > now && fresh {
                return Ok(hit.value);
            }
            self.cache.invalidate(&key).await;
        }
        // Refusals after hits: the hot path is a known good token.
        if let Some(refusal) = self.refused.get(&key).await {
            if refusal.started >= self.last_account_change.load(Ordering::SeqCst)
                && still_holds(&refusal.error, refusal.at, now)
            {
                return Err(refusal.error);
            }
            self.refused.invalidate(&key).await;
        }
        let started = self.accounts.start();
        let identity = match verify.await {
            Ok(identity) => Arc::new(identity),
            Err(e) => {
                if worth_remembering(&e) {
                    let refusal = Refusal {
                        error: e.clone(),
                        started,
                        at: now,
                    };
                    self.refused.insert(key, refusal).await;
                }
                return Err(e);
            }
        };
        if identity.expires_at > now {
            let entry = Stamped {
                value: identity.clone(),
                started,
            };
            self.cache.insert(key, entry).await;
        }
        Ok(identity)
    }

    /// Drops a verified token that a cache outside this one now holds, by
    /// its SHA-256 (not an invalidation: the token is still good).
    pub async fn release(&self, key: &[u8; 32]) {
        self.cache.invalidate(key).await;
    }

    /// Forgets the verified tokens of one service account. moka applies the
    /// predicate to every entry lazily, but a lookup never returns an entry
    /// the predicate matches, so the next check verifies again.
    pub fn invalidate_service_account(&self, id: ServiceAccountId) {
        let stamp = self.accounts.invalidate(id);
        // A new key or account may make a refused token good.
        self.last_account_change.fetch_max(stamp, Ordering::SeqCst);
        // The stamp already keeps them from being served; this frees them.
        let registered = self.cache.invalidate_entries_if(move |_, entry| {
            entry
                .value
                .service_account
                .as_ref()
                .is_some_and(|a| a.id == id)
        });
        if registered.is_err() {
            // Only possible without support_invalidation_closures().
            self.cache.invalidate_all();
        }
    }

    /// Forgets every verified token (a signing key was removed).
    pub fn invalidate_all(&self) {
        self.revocations.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate_all();
    }

    /// Entries held (metrics; approximate until moka's pending tasks run).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    #[cfg(test)]
    pub async fn sync(&self) {
        self.cache.run_pending_tasks().await;
    }
}

/// How long a refusal is remembered, and how many.
const REFUSAL_TTL: Duration = Duration::from_secs(10);
const REFUSALS_CAPACITY: u64 = 10_000;

/// Refusals that took a verification or a lookup to reach and that the
/// same token would meet again. Not an outage, nor a `kid` we may learn
/// by the next refetch; cheap refusals (malformed, `none`, untrusted `iss`)
/// are answered before any cost anyway.
fn worth_remembering(e: &TokenError) -> bool {
    matches!(
        e,
        TokenError::BadSignature
            | TokenError::Expired
            | TokenError::NotYetValid
            | TokenError::IssuedInFuture
            | TokenError::WrongAudience
            | TokenError::MissingClaim(_)
            | TokenError::BadClaim(_)
            | TokenError::UnknownServiceAccount
            | TokenError::LifetimeTooLong { .. }
    )
}

/// Whether a refusal made at `at` (wall clock, seconds) holds at `now`.
/// Time only makes an expired token more expired, and a token from the
/// future less so: an expiry is re-examined when the clock reads earlier
/// than when it was found (the clock stepped back: found by a test that
/// stepped it forward and back, and was refused a valid token for 10 s),
/// an early token as soon as a second has passed.
fn still_holds(error: &TokenError, at: u64, now: u64) -> bool {
    match error {
        TokenError::Expired => now >= at,
        TokenError::NotYetValid | TokenError::IssuedInFuture => now <= at,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{IssuerName, Principal, Subject},
        store::{ServiceAccount, fixtures},
    };

    fn account_identity(id: ServiceAccountId) -> VerifiedIdentity {
        VerifiedIdentity {
            principal: Arc::new(Principal {
                issuer: IssuerName::parse("service-account").unwrap(),
                subject: Subject::parse("acme/ci").unwrap(),
            }),
            login: None,
            login_is_authoritative: false,
            email: None,
            expires_at: unix_now() + 600,
            verified_at: unix_now(),
            service_account: Some(Arc::new(ServiceAccount {
                id,
                ..fixtures::account("acme", "ci")
            })),
            links: Box::default(),
        }
    }

    /// Regression: a verification that began with the account's old keys
    /// and ended after they were removed must not be served afterwards.
    #[tokio::test]
    async fn a_verification_overtaken_by_an_account_change_is_not_served() {
        let cache = TokenCache::new(100, Duration::from_secs(300));
        let id = ServiceAccountId::new();
        let slow = {
            let cache = cache.clone();
            tokio::spawn(async move {
                let verify = async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(account_identity(id))
                };
                cache.get_or_verify("token", unix_now(), verify).await
            })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        cache.invalidate_service_account(id);
        assert!(slow.await.unwrap().is_ok());
        let verified_again = std::sync::atomic::AtomicBool::new(false);
        let verify = async {
            verified_again.store(true, Ordering::SeqCst);
            Ok(account_identity(id))
        };
        cache
            .get_or_verify("token", unix_now(), verify)
            .await
            .unwrap();
        assert!(
            verified_again.load(Ordering::SeqCst),
            "a stale verification was served"
        );

        let not_again = async { panic!("an undisturbed verification is served from the cache") };
        cache
            .get_or_verify("token", unix_now(), not_again)
            .await
            .unwrap();
    }

    /// Regression (issue 9, item 10): a well-formed but invalid token is
    /// verified once, not on every request.
    #[tokio::test]
    async fn a_refusal_is_remembered_briefly() {
        let cache = TokenCache::new(100, Duration::from_secs(300));
        let verifications = std::sync::atomic::AtomicUsize::new(0);
        for _ in 0..100 {
            let verify = async {
                verifications.fetch_add(1, Ordering::SeqCst);
                Err(TokenError::BadSignature)
            };
            let r = cache.get_or_verify("forged", unix_now(), verify).await;
            assert_eq!(r.unwrap_err(), TokenError::BadSignature);
        }
        assert_eq!(verifications.load(Ordering::SeqCst), 1);
        // Outages and unknown kids are asked again.
        for e in [TokenError::KeysUnavailable, TokenError::UnknownKey] {
            for _ in 0..2 {
                let verify = async {
                    verifications.fetch_add(1, Ordering::SeqCst);
                    Err(e.clone())
                };
                let _ = cache.get_or_verify("other", unix_now(), verify).await;
            }
        }
        assert_eq!(verifications.load(Ordering::SeqCst), 5);
        // An account change forgets refusals: the token may be good now.
        cache.invalidate_service_account(ServiceAccountId::new());
        let verify = async {
            verifications.fetch_add(1, Ordering::SeqCst);
            Err(TokenError::BadSignature)
        };
        let _ = cache.get_or_verify("forged", unix_now(), verify).await;
        assert_eq!(verifications.load(Ordering::SeqCst), 6);
    }

    /// Regression (a stepped clock, `faults::clock`): a refusal that only
    /// time decided is verified again once the clock says otherwise; the
    /// same clock answers from memory.
    #[tokio::test]
    async fn a_refusal_by_time_is_verified_again_when_the_clock_steps() {
        let cache = TokenCache::new(100, Duration::from_secs(300));
        let verifications = std::sync::atomic::AtomicUsize::new(0);
        let now = unix_now();
        let cases = [
            (TokenError::Expired, now - 1, now + 1),
            (TokenError::NotYetValid, now + 1, now - 1),
            (TokenError::IssuedInFuture, now + 1, now - 1),
        ];
        for (i, (error, stepped, unchanged)) in cases.into_iter().enumerate() {
            let token = format!("token-{i}");
            let ask = async |at: u64| {
                let verify = async {
                    verifications.fetch_add(1, Ordering::SeqCst);
                    Err(error.clone())
                };
                let _ = cache.get_or_verify(&token, at, verify).await;
                verifications.load(Ordering::SeqCst)
            };
            let first = ask(now).await;
            assert_eq!(ask(now).await, first, "{error:?}: same clock");
            assert_eq!(ask(unchanged).await, first, "{error:?}: still holds");
            assert_eq!(ask(stepped).await, first + 1, "{error:?}: stepped");
        }
    }
}
