//! `[signed_identity]`: the `x-dispatch-identity` JWT (`assertion`). Off
//! unless the section is present.

use std::time::Duration;

use figment::value::magic::RelativePathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, within};
use crate::assertion::{AssertionSettings, KeyOrigin, Keys, SigningAlgorithm, SigningKey};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignedIdentityConfig {
    /// `EdDSA` (Ed25519, default) or `ES256` (P-256).
    pub algorithm: SigningAlgorithm,
    /// A token's lifetime.
    pub ttl_secs: u64,
    /// The token's `iss`.
    pub issuer: String,
    /// The token's `aud`, when set.
    pub audience: Option<String>,
    /// Put the request id in the token (`rid`) and sign every allow; by
    /// default a token is reused per subject and organization.
    pub per_request: bool,
    /// PKCS#8 PEM private keys: the first signs, the others are published
    /// (the next key, before it signs). Empty: keys generated in memory,
    /// for one replica.
    pub key_files: Vec<RelativePathBuf>,
    /// Generated keys: a new one signs this often.
    pub rotate_secs: u64,
    /// Tokens kept for reuse (about 0.8 KiB each).
    pub cache_capacity: u64,
}

impl Default for SignedIdentityConfig {
    fn default() -> Self {
        Self {
            algorithm: SigningAlgorithm::default(),
            ttl_secs: 300,
            issuer: "dispatch-authz".into(),
            audience: None,
            per_request: false,
            key_files: Vec::new(),
            rotate_secs: 86_400,
            cache_capacity: 10_000,
        }
    }
}

impl SignedIdentityConfig {
    pub(super) fn compile(&self) -> Result<(AssertionSettings, Keys), ConfigError> {
        within("signed_identity.ttl_secs", self.ttl_secs, 1..=86_400)?;
        if self.issuer.is_empty() {
            return Err(invalid("signed_identity.issuer", "must not be empty"));
        }
        let origin = if self.key_files.is_empty() {
            within(
                "signed_identity.rotate_secs",
                self.rotate_secs,
                1..=31_536_000,
            )?;
            if self.rotate_secs < self.ttl_secs {
                // Else every token's lifetime would publish several keys.
                return Err(invalid(
                    "signed_identity.rotate_secs",
                    "must be at least ttl_secs",
                ));
            }
            KeyOrigin::Generated {
                rotate: Duration::from_secs(self.rotate_secs),
            }
        } else {
            KeyOrigin::Files(
                self.key_files
                    .iter()
                    .map(RelativePathBuf::relative)
                    .collect(),
            )
        };
        within(
            "signed_identity.cache_capacity",
            self.cache_capacity,
            1..=10_000_000,
        )?;
        let settings = AssertionSettings {
            algorithm: self.algorithm,
            ttl: Duration::from_secs(self.ttl_secs),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            per_request: self.per_request,
            origin,
            cache_capacity: self.cache_capacity as usize,
        };
        let keys = read_keys(&settings)?;
        Ok((settings, keys))
    }
}

/// The keys of `settings`: read from its files, or two fresh ones (the
/// signing key and the next).
pub fn read_keys(settings: &AssertionSettings) -> Result<Keys, ConfigError> {
    let field = "signed_identity.key_files";
    let mut keys = match &settings.origin {
        KeyOrigin::Generated { .. } => (0..2)
            .map(|_| SigningKey::generate(settings.algorithm))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(field, e))?,
        KeyOrigin::Files(files) => files
            .iter()
            .map(|file| {
                let pem = std::fs::read(file)
                    .map_err(|e| invalid(field, format!("{}: {e}", file.display())))?;
                SigningKey::from_pem(settings.algorithm, &pem)
                    .map_err(|e| invalid(field, format!("{}: {e}", file.display())))
            })
            .collect::<Result<Vec<_>, _>>()?,
    }
    .into_iter();
    let signing = keys.next().ok_or_else(|| invalid(field, "no key"))?;
    Ok(Keys {
        signing,
        published: keys.collect(),
    })
}
