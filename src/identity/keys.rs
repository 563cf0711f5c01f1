//! Verification keys, each pinned to exactly one algorithm.
//!
//! The algorithm comes from the key (JWK `alg`, the curve, or the configured
//! `algorithm` of a PEM key), never from the token. A token whose header names
//! another algorithm is refused before any cryptography runs, which is what
//! closes the classic "HS256 signed with the RSA public key" and `alg: none`
//! attacks.

use std::{path::Path, str::FromStr};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse},
};
use thiserror::Error;

/// A key that can verify tokens of one algorithm.
#[derive(Clone)]
pub struct VerifyKey {
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key material itself stays out of debug output.
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Why a key could not be loaded. Never contains key material.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a JWKS document: {reason}")]
    BadJwks { path: String, reason: String },
    #[error("{path} holds no usable signing key")]
    EmptyJwks { path: String },
    #[error("key {kid:?} in {path}: {reason}")]
    BadJwk {
        path: String,
        kid: Option<String>,
        reason: String,
    },
    #[error("{path}: {reason}")]
    BadPem { path: String, reason: String },
    #[error(
        "unknown algorithm {0:?} (expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
    )]
    UnknownAlgorithm(String),
    #[error("algorithm {0:?} is not allowed for a public key")]
    SymmetricAlgorithm(String),
}

/// Parses an asymmetric algorithm name; HMAC names are refused because an
/// HMAC "public key" is a shared secret.
pub fn parse_public_algorithm(name: &str) -> Result<Algorithm, KeyError> {
    let algorithm =
        Algorithm::from_str(name).map_err(|_| KeyError::UnknownAlgorithm(name.to_owned()))?;
    if matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    ) {
        return Err(KeyError::SymmetricAlgorithm(name.to_owned()));
    }
    Ok(algorithm)
}

/// Loads a PEM public key (SPKI or PKCS#1 RSA) for the given algorithm.
pub fn load_pem(
    path: &Path,
    algorithm: Algorithm,
    kid: Option<String>,
) -> Result<VerifyKey, KeyError> {
    let display = path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| KeyError::Read {
        path: display.clone(),
        source,
    })?;
    parse_pem(&pem, algorithm, kid, &display)
}

/// Parses a PEM public key; `source` names it in errors (a path, a key id).
pub fn parse_pem(
    pem: &[u8],
    algorithm: Algorithm,
    kid: Option<String>,
    source: &str,
) -> Result<VerifyKey, KeyError> {
    if pem
        .windows(b"PRIVATE KEY".len())
        .any(|w| w == b"PRIVATE KEY")
    {
        return Err(KeyError::BadPem {
            path: source.to_owned(),
            reason: "this is a private key; configure the public key only".into(),
        });
    }
    let key = match algorithm {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => DecodingKey::from_rsa_pem(pem),
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
        other => return Err(KeyError::SymmetricAlgorithm(format!("{other:?}"))),
    }
    .map_err(|e| KeyError::BadPem {
        path: source.to_owned(),
        reason: format!("not a PEM public key for {algorithm:?} ({e})"),
    })?;
    Ok(VerifyKey {
        kid,
        algorithm,
        key,
    })
}

/// Loads every signing key of a JWKS file. Encryption keys are skipped;
/// symmetric (`oct`) keys and keys whose algorithm cannot be pinned are errors,
/// so a mistake in the file shows at start-up rather than as refused tokens.
pub fn load_jwks_file(path: &Path) -> Result<Vec<VerifyKey>, KeyError> {
    let display = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: display.clone(),
        source,
    })?;
    let set: JwkSet = serde_json::from_str(&text).map_err(|e| KeyError::BadJwks {
        path: display.clone(),
        reason: e.to_string(),
    })?;
    let keys = keys_from_jwks(&set, &display)?;
    if keys.is_empty() {
        return Err(KeyError::EmptyJwks { path: display });
    }
    Ok(keys)
}

pub fn keys_from_jwks(set: &JwkSet, source: &str) -> Result<Vec<VerifyKey>, KeyError> {
    set.keys
        .iter()
        .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .map(|jwk| key_from_jwk(jwk, source))
        .collect()
}

pub(super) fn key_from_jwk(jwk: &Jwk, source: &str) -> Result<VerifyKey, KeyError> {
    let kid = jwk.common.key_id.clone();
    let bad = |reason: String| KeyError::BadJwk {
        path: source.to_owned(),
        kid: kid.clone(),
        reason,
    };
    let algorithm = jwk_algorithm(jwk).map_err(bad)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(e.to_string()))?;
    Ok(VerifyKey {
        kid: kid.clone(),
        algorithm,
        key,
    })
}

/// The one algorithm a JWK may verify: its `alg` when given (and consistent
/// with the key type), else the curve's algorithm; RSA keys without `alg`
/// default to RS256, the algorithm OIDC requires providers to support.
fn jwk_algorithm(jwk: &Jwk) -> Result<Algorithm, String> {
    let declared = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => Some(signing_algorithm(alg)?),
    };
    let (family_ok, default): (fn(Algorithm) -> bool, Option<Algorithm>) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (
            |a| {
                matches!(
                    a,
                    Algorithm::RS256
                        | Algorithm::RS384
                        | Algorithm::RS512
                        | Algorithm::PS256
                        | Algorithm::PS384
                        | Algorithm::PS512
                )
            },
            Some(Algorithm::RS256),
        ),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => (|a| a == Algorithm::ES256, Some(Algorithm::ES256)),
            EllipticCurve::P384 => (|a| a == Algorithm::ES384, Some(Algorithm::ES384)),
            _ => return Err("unsupported elliptic curve".into()),
        },
        AlgorithmParameters::OctetKeyPair(_) => (|a| a == Algorithm::EdDSA, Some(Algorithm::EdDSA)),
        AlgorithmParameters::OctetKey(_) => {
            return Err(
                "symmetric (oct) keys are not accepted from a JWKS; use hmac_secret for development"
                    .into(),
            );
        }
        _ => return Err("unsupported key type".into()),
    };
    match (declared, default) {
        (Some(alg), _) if family_ok(alg) => Ok(alg),
        (Some(alg), _) => Err(format!("alg {alg:?} does not fit the key type")),
        (None, Some(alg)) => Ok(alg),
        (None, None) => Err("no algorithm".into()),
    }
}

fn signing_algorithm(alg: KeyAlgorithm) -> Result<Algorithm, String> {
    Ok(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        other => {
            return Err(format!(
                "alg {other:?} is not an accepted signing algorithm"
            ));
        }
    })
}
