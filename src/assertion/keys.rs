//! The keys the identity assertion is signed with, and the key set that
//! publishes them.
//!
//! A downstream service verifies against `/.well-known/jwks.json`, which it
//! caches. So a key is published *before* it signs (`next`), and after it
//! stops signing it stays published until the last token it signed has
//! expired (`retired`): rotation never leaves a valid token without its key.
//! Only asymmetric algorithms exist here: a published HMAC key would let
//! anyone mint identities.

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use jsonwebtoken::{
    EncodingKey,
    jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash},
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The signature algorithms offered: the two the issue names, both with
/// small keys and cheap signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    #[default]
    EdDSA,
    ES256,
}

impl SigningAlgorithm {
    fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("not a PKCS#8 PEM private key for {algorithm:?}: {reason}")]
    Unreadable {
        algorithm: SigningAlgorithm,
        reason: String,
    },
    #[error("could not generate a {0:?} key")]
    Generate(SigningAlgorithm),
}

/// One private key, with its public half as a JWK whose `kid` is its
/// RFC 7638 thumbprint (the same key always has the same id, on every
/// replica that loads it).
pub struct SigningKey {
    pub(super) algorithm: jsonwebtoken::Algorithm,
    pub(super) key: EncodingKey,
    pub(super) kid: String,
    jwk: Jwk,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key, kept in memory only.
    pub fn generate(algorithm: SigningAlgorithm) -> Result<Self, KeyError> {
        let failed = |_| KeyError::Generate(algorithm);
        let der = match algorithm {
            SigningAlgorithm::EdDSA => Ed25519KeyPair::generate()
                .and_then(|k| k.to_pkcs8v1())
                .map_err(failed)?,
            SigningAlgorithm::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|k| k.to_pkcs8v1())
                .map_err(failed)?,
        };
        let key = match algorithm {
            SigningAlgorithm::EdDSA => EncodingKey::from_ed_der(der.as_ref()),
            SigningAlgorithm::ES256 => EncodingKey::from_ec_der(der.as_ref()),
        };
        Self::new(algorithm, key).map_err(|_| KeyError::Generate(algorithm))
    }

    /// A PKCS#8 PEM private key (`openssl genpkey -algorithm ed25519`, or
    /// `-algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
    pub fn from_pem(algorithm: SigningAlgorithm, pem: &[u8]) -> Result<Self, KeyError> {
        let unreadable = |reason: String| KeyError::Unreadable { algorithm, reason };
        let key = match algorithm {
            SigningAlgorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            SigningAlgorithm::ES256 => EncodingKey::from_ec_pem(pem),
        }
        .map_err(|e| unreadable(e.to_string()))?;
        Self::new(algorithm, key).map_err(unreadable)
    }

    fn new(algorithm: SigningAlgorithm, key: EncodingKey) -> Result<Self, String> {
        let algorithm = algorithm.jwt();
        let mut jwk = Jwk::from_encoding_key(&key, algorithm).map_err(|e| e.to_string())?;
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| e.to_string())?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        // Signing with the key proves it usable before it is published.
        let probe = jsonwebtoken::Header::new(algorithm);
        jsonwebtoken::encode(&probe, &serde_json::json!({}), &key).map_err(|e| e.to_string())?;
        Ok(Self {
            algorithm,
            key,
            kid,
            jwk,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
}

/// The signing key, the one published to sign next, and the retired ones
/// still published.
pub struct KeyRing {
    ring: RwLock<Ring>,
    /// Bumped whenever the signing key changes: a cached token signed by
    /// another key is signed anew.
    generation: AtomicU64,
}

struct Ring {
    current: Arc<SigningKey>,
    /// Published, not signing yet.
    next: Vec<Arc<SigningKey>>,
    retired: Vec<(Arc<SigningKey>, Instant)>,
}

impl KeyRing {
    /// The first key signs; the others are published (the next ones).
    pub fn new(current: SigningKey, next: Vec<SigningKey>) -> Self {
        Self {
            ring: RwLock::new(Ring {
                current: Arc::new(current),
                next: next.into_iter().map(Arc::new).collect(),
                retired: Vec::new(),
            }),
            generation: AtomicU64::new(0),
        }
    }

    pub fn current(&self) -> (Arc<SigningKey>, u64) {
        let ring = self.ring.read().unwrap_or_else(|p| p.into_inner());
        (
            ring.current.clone(),
            self.generation.load(Ordering::Acquire),
        )
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Generated keys: the next key signs from now on, `fresh` is published
    /// as the one after it, and the old signing key stays published for
    /// `keep` (the token lifetime).
    pub fn rotate(&self, fresh: SigningKey, keep: Duration) {
        let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
        ring.next.push(Arc::new(fresh));
        let next = ring.next.remove(0);
        let old = std::mem::replace(&mut ring.current, next);
        ring.retired.push((old, Instant::now() + keep));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Configured keys, read again: the first signs, the rest are
    /// published; a key no longer listed stays published for `keep`.
    pub fn replace(&self, current: SigningKey, next: Vec<SigningKey>, keep: Duration) {
        let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
        let listed: Vec<&str> = std::iter::once(current.kid())
            .chain(next.iter().map(SigningKey::kid))
            .collect();
        let changed = ring.current.kid() != current.kid();
        let dropped: Vec<Arc<SigningKey>> = std::iter::once(ring.current.clone())
            .chain(ring.next.iter().cloned())
            .filter(|k| !listed.contains(&k.kid()))
            .collect();
        let until = Instant::now() + keep;
        ring.retired.retain(|(k, _)| !listed.contains(&k.kid()));
        ring.retired.extend(dropped.into_iter().map(|k| (k, until)));
        ring.current = Arc::new(current);
        ring.next = next.into_iter().map(Arc::new).collect();
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The published set: signing, next, and retired keys whose tokens may
    /// still be valid.
    pub fn jwks(&self) -> JwkSet {
        let mut ring = self.ring.write().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        ring.retired.retain(|(_, until)| *until > now);
        let keys = std::iter::once(&ring.current)
            .chain(&ring.next)
            .chain(ring.retired.iter().map(|(k, _)| k))
            .map(|k| k.jwk.clone())
            .collect();
        JwkSet { keys }
    }
}

#[cfg(test)]
mod tests;
