//! What a token came to, cached per token: the hot path.
//!
//! A cache-hit check used to make three lookups (the verified token, the
//! user, the grants), each a hash of its key and an async cache call. A
//! [`Settled`] entry holds what the three came to (of the verification,
//! only what a check reads: [`Verification`]), found with one SHA-256 and
//! one synchronous lookup, so the whole check runs without an `.await` and its
//! future stays small (a large one was copied whole per check).
//!
//! **Invariant:** an entry is served only while every part of it would still
//! be served by the cache it came from. It keeps the generation each of those
//! caches had when its lookup *began* ([`Stamps`]); an admin write
//! invalidates the user, the grants or the service account in those caches
//! (`crate::freshness`), which makes the entry stale on its next read,
//! without anyone having to find and remove it. It also lives no longer
//! than the user cache's TTL (changes by another process) nor than the
//! token, and its verification is reused no longer than the token cache
//! would keep it. A stale or expired entry sends the check down the full
//! pipeline.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sha2::{Digest, Sha256};

use super::Who;
use crate::{
    directory::Directory,
    domain::{IssuerName, Principal},
    identity::{IdentityVerifier, TokenStamp, VerifiedIdentity, unix_now},
    policy::rbac::Grants,
    store::ServiceAccount,
};

/// A verified token's subject, enabled when it was settled, and its grants
/// (`None` in registered mode).
pub(super) struct Settled {
    pub verified: Verification,
    pub who: Who,
    pub grants: Option<Arc<Grants>>,
    stamps: Stamps,
    /// The end of the user cache's TTL, in whole seconds of the cache's
    /// clock ([`SettledCache::clock`]).
    until: u32,
}

/// What an entry keeps of the token's verification: what a hit reads. Most
/// verified identities are no more than that; only a service account's
/// (the account, judged on read), an authoritative source's (GitHub's
/// login, written back on a rename) and one carrying link keys (its linked
/// groups are matched again when its grants are) carry what a later phase
/// needs, and only those are kept whole. (The whole identity was a sixth of a settled
/// user's memory: BENCHMARKS.md.)
pub(super) struct Verification {
    /// The token's `exp` and the verification's time, seconds since the
    /// Unix epoch as `u32` (until 2106; a later `exp` counts as 2106): an
    /// entry is then 80 bytes, a size class below 96 (BENCHMARKS.md).
    expires_at: u32,
    verified_at: u32,
    whole: Option<Arc<VerifiedIdentity>>,
}

impl Verification {
    fn of(identity: Arc<VerifiedIdentity>) -> Self {
        let keep = identity.service_account.is_some()
            || identity.login_is_authoritative
            || !identity.links.is_empty();
        Self {
            expires_at: u32::try_from(identity.expires_at).unwrap_or(u32::MAX),
            verified_at: u32::try_from(identity.verified_at).unwrap_or(u32::MAX),
            whole: keep.then_some(identity),
        }
    }

    fn account(&self) -> Option<&ServiceAccount> {
        self.whole.as_ref()?.service_account.as_deref()
    }

    /// The identity for the phases that look the subject up again. One
    /// that was not kept whole, always a user's, is rebuilt from the user
    /// (found by its principal) without its login and e-mail claims, which
    /// nothing reads from a source that is not authoritative for them.
    fn identity(&self, who: &Who) -> Option<Arc<VerifiedIdentity>> {
        if let Some(whole) = &self.whole {
            return Some(whole.clone());
        }
        let Who::User(user) = who else {
            return None;
        };
        Some(Arc::new(VerifiedIdentity {
            principal: Arc::new(Principal {
                issuer: user.issuer.clone(),
                subject: user.subject.clone(),
            }),
            login: None,
            login_is_authoritative: false,
            email: None,
            expires_at: self.expires_at.into(),
            verified_at: self.verified_at.into(),
            service_account: None,
            links: Box::default(),
        }))
    }
}

/// The generations of the caches an entry's parts came from, read before
/// their lookups began.
#[derive(Clone, Copy)]
pub(super) struct Stamps {
    token: TokenStamp,
    users: u64,
    grants: u64,
}

impl Stamps {
    /// To be called before the lookups whose results are settled.
    pub fn now(identity: &IdentityVerifier, directory: &Directory) -> Self {
        Self {
            token: identity.stamp(),
            users: directory.users.generation(),
            grants: directory.grants.generation(),
        }
    }

    /// For an identity verified earlier, whose own stamp still holds.
    pub fn with_token(self, token: TokenStamp) -> Self {
        Self { token, ..self }
    }
}

impl Settled {
    /// The verified token's source, for a denial's decision line.
    pub fn issuer(&self) -> Option<IssuerName> {
        match &self.who {
            Who::User(user) => Some(user.issuer.clone()),
            Who::ServiceAccount(_) => Some(self.verified.whole.as_ref()?.principal.issuer.clone()),
        }
    }

    /// Whether every part would still be served by the cache it came from.
    fn is_fresh(&self, identity: &IdentityVerifier, directory: &Directory) -> bool {
        identity.is_fresh(self.verified.account(), self.stamps.token)
            && match &self.who {
                Who::User(user) => directory.users.is_fresh(user, self.stamps.users),
                Who::ServiceAccount(_) => true,
            }
            && (self.grants.is_none()
                || directory
                    .grants
                    .is_fresh(self.who.subject(), self.stamps.grants))
    }
}

/// The token's digest: the cache never holds a usable credential.
pub(super) type TokenKey = [u8; 32];

pub(super) fn key(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

/// What a lookup found.
pub(super) enum Lookup {
    /// Every part fresh: decide from it.
    Hit(Arc<Settled>),
    /// Only the subject's part is old (TTL or invalidation): the token
    /// needs no new verification, the subject a new lookup.
    Verified(Arc<VerifiedIdentity>, TokenStamp),
    Miss,
}

/// Per-token entries, bounded by count; S3-FIFO eviction (quick_cache),
/// whose entries cost about half of moka's (BENCHMARKS.md). Entries are
/// judged on read, so nothing needs removing on invalidation.
pub struct SettledCache {
    cache: quick_cache::sync::Cache<TokenKey, Arc<Settled>>,
    /// Zero: nothing is kept (the user cache is off too).
    ttl: Duration,
    /// How long a verification is trusted (the token cache's `max_ttl`).
    verified_ttl: u64,
    /// Where [`SettledCache::clock`] starts.
    epoch: Instant,
}

impl SettledCache {
    /// An empty cache of the same size and TTLs: a reload that changed the
    /// identity sources starts afresh, while checks still in flight on the
    /// old checker settle into the old cache, never the new.
    pub fn empty_like(&self) -> Self {
        Self {
            cache: quick_cache::sync::Cache::new(self.cache.capacity() as usize),
            ttl: self.ttl,
            verified_ttl: self.verified_ttl,
            epoch: Instant::now(),
        }
    }

    /// `ttl`: the user cache's; `verified_ttl`: the token cache's longest.
    pub fn new(capacity: u64, ttl: Duration, verified_ttl: Duration) -> Self {
        let capacity = usize::try_from(capacity.max(1)).unwrap_or(usize::MAX);
        Self {
            cache: quick_cache::sync::Cache::new(capacity),
            ttl,
            verified_ttl: verified_ttl.as_secs(),
            epoch: Instant::now(),
        }
    }

    /// Entries held (metrics).
    pub fn entry_count(&self) -> usize {
        self.cache.len()
    }

    /// Whole seconds since the cache was made: monotonic, so a clock step
    /// cannot lengthen an entry's TTL. Rounded down, it makes an entry live
    /// up to a second less than the TTL, never more (a TTL under a second
    /// keeps nothing fresh).
    fn clock(&self) -> u32 {
        u32::try_from(self.epoch.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    fn ttl_secs(&self) -> u32 {
        u32::try_from(self.ttl.as_secs()).unwrap_or(u32::MAX)
    }

    pub(super) fn get(
        &self,
        key: &TokenKey,
        identity: &IdentityVerifier,
        directory: &Directory,
    ) -> Lookup {
        let Some(entry) = self.cache.get(key) else {
            return Lookup::Miss;
        };
        // A clock step must not resurrect a token past its `exp`; a token
        // verified longer ago than the token cache keeps one is verified
        // again.
        let now = unix_now();
        let verified = &entry.verified;
        if u64::from(verified.expires_at) <= now
            || now >= u64::from(verified.verified_at).saturating_add(self.verified_ttl)
            || !identity.is_fresh(verified.account(), entry.stamps.token)
        {
            self.cache.remove(key);
            return Lookup::Miss;
        }
        if self.clock() < entry.until && entry.is_fresh(identity, directory) {
            Lookup::Hit(entry)
        } else {
            match verified.identity(&entry.who) {
                Some(identity) => Lookup::Verified(identity, entry.stamps.token),
                None => Lookup::Miss,
            }
        }
    }

    /// Whether the entry was kept (not with a zero TTL).
    pub(super) fn insert(
        &self,
        key: TokenKey,
        identity: Arc<VerifiedIdentity>,
        who: Who,
        grants: Option<Arc<Grants>>,
        stamps: Stamps,
    ) -> bool {
        if self.ttl.is_zero() {
            return false;
        }
        let entry = Settled {
            verified: Verification::of(identity),
            who,
            grants,
            stamps,
            until: self.clock().saturating_add(self.ttl_secs()),
        };
        self.cache.insert(key, Arc::new(entry));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory (issue 11): with its `Arc` counts an entry is one of
    /// mimalloc's 96-byte blocks; a field more moves every settled token
    /// to the next size class.
    #[test]
    fn an_entry_fits_in_80_bytes() {
        assert!(
            std::mem::size_of::<Settled>() <= 80,
            "{}",
            std::mem::size_of::<Settled>()
        );
    }
}
