//! Private keys for `token mint` (and `--service-account` calls): read from
//! PEM in whichever form common tools write (PKCS#8, SEC1 `EC PRIVATE
//! KEY`, PKCS#1 `RSA PRIVATE KEY`), with the algorithm taken from the key.
//! Only an HMAC secret, which is not PEM, needs `--algorithm`.

use std::path::Path;

use anyhow::{Context, bail};
use aws_lc_rs::{
    encoding::AsDer,
    rsa::KeyPair as RsaKeyPair,
    signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
        Ed25519KeyPair,
    },
};
use base64::{Engine, engine::general_purpose::STANDARD};
use jsonwebtoken::{Algorithm, EncodingKey};

pub struct PrivateKey {
    pub algorithm: Algorithm,
    pub key: EncodingKey,
}

/// The key in `path`, and its algorithm: `requested` if it suits the key
/// (RSA keys sign RS* or PS*), else the key's own (RS256 for RSA).
pub fn read_private_key(path: &Path, requested: Option<&str>) -> anyhow::Result<PrivateKey> {
    let requested: Option<Algorithm> = requested
        .map(|name| {
            name.parse()
                .map_err(|_| anyhow::anyhow!("unknown algorithm {name:?}"))
        })
        .transpose()?;
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read key {}", path.display()))?;
    if let Some(alg @ (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)) = requested {
        let secret = String::from_utf8_lossy(&bytes).trim().to_owned();
        return Ok(PrivateKey {
            algorithm: alg,
            key: EncodingKey::from_secret(secret.as_bytes()),
        });
    }
    let not_a_key = || {
        anyhow::anyhow!(
            "{} is not a PEM private key (PKCS#8, SEC1 or PKCS#1); for an HMAC secret pass \
             --algorithm HS256",
            path.display()
        )
    };
    let (label, der) = pem_block(&bytes).ok_or_else(not_a_key)?;
    let (own, key) = match label.as_str() {
        "RSA PRIVATE KEY" => {
            RsaKeyPair::from_der(&der).map_err(|_| not_a_key())?;
            (Algorithm::RS256, EncodingKey::from_rsa_pem(&bytes)?)
        }
        "EC PRIVATE KEY" | "PRIVATE KEY" => {
            if let Some((alg, pkcs8)) = ec_pkcs8(&der) {
                (alg, EncodingKey::from_ec_der(&pkcs8))
            } else if label == "PRIVATE KEY" && Ed25519KeyPair::from_pkcs8(&der).is_ok() {
                (Algorithm::EdDSA, EncodingKey::from_ed_der(&der))
            } else if label == "PRIVATE KEY" && RsaKeyPair::from_pkcs8(&der).is_ok() {
                (Algorithm::RS256, EncodingKey::from_rsa_pem(&bytes)?)
            } else {
                return Err(not_a_key());
            }
        }
        _ => return Err(not_a_key()),
    };
    let rsa_family = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ];
    let algorithm = match requested {
        None => own,
        Some(alg) if alg == own => alg,
        Some(alg) if own == Algorithm::RS256 && rsa_family.contains(&alg) => alg,
        Some(alg) => bail!(
            "{} holds a key for {own:?}, not {alg:?} (leave --algorithm out: the key decides)",
            path.display()
        ),
    };
    Ok(PrivateKey { algorithm, key })
}

/// An EC key (SEC1 or PKCS#8) on P-256 or P-384, as PKCS#8, which is what
/// jsonwebtoken reads.
fn ec_pkcs8(der: &[u8]) -> Option<(Algorithm, Vec<u8>)> {
    [
        (Algorithm::ES256, &ECDSA_P256_SHA256_FIXED_SIGNING),
        (Algorithm::ES384, &ECDSA_P384_SHA384_FIXED_SIGNING),
    ]
    .into_iter()
    .find_map(|(alg, curve)| {
        let pair = EcdsaKeyPair::from_private_key_der(curve, der).ok()?;
        Some((alg, pair.to_pkcs8v1().ok()?.as_ref().to_vec()))
    })
}

/// The first PEM block: its label and its bytes.
fn pem_block(text: &[u8]) -> Option<(String, Vec<u8>)> {
    let text = std::str::from_utf8(text).ok()?;
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let (label, rest) = rest.split_once("-----")?;
    let end = rest.find(&format!("-----END {label}-----"))?;
    let body: String = rest[..end].split_whitespace().collect();
    Some((label.to_owned(), STANDARD.decode(body).ok()?))
}

/// A fresh P-256 key pair as PEM: PKCS#8 private key, SubjectPublicKeyInfo
/// public key (`dispatch-authz init`).
pub fn generate_es256() -> anyhow::Result<(String, String)> {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|_| anyhow::anyhow!("could not generate a key"))?;
    let private = pair
        .to_pkcs8v1()
        .map_err(|_| anyhow::anyhow!("could not encode the key"))?;
    let public = aws_lc_rs::signature::KeyPair::public_key(&pair)
        .as_der()
        .map_err(|_| anyhow::anyhow!("could not encode the public key"))?;
    Ok((
        pem("PRIVATE KEY", private.as_ref()),
        pem("PUBLIC KEY", public.as_ref()),
    ))
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}
