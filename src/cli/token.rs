//! `token mint`: sign a JWT with a private key, for development and tests.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Sign a JWT with a private key (for development and tests).
    Mint(MintToken),
}

#[derive(Debug, Args)]
pub struct MintToken {
    /// PEM private key (for HS256: a file holding the shared secret).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA or HS256.
    #[arg(long, default_value = "RS256")]
    pub algorithm: String,
    #[arg(long)]
    pub kid: Option<String>,
    /// A service account's token: `iss` = ORG/NAME, no `sub` or `aud`
    /// needed (as Dispatch's CLI signed them).
    #[arg(long, value_name = "ORG/NAME", conflicts_with_all = ["issuer", "subject"])]
    pub service_account: Option<String>,
    /// `iss` claim.
    #[arg(long, required_unless_present = "service_account")]
    pub issuer: Option<String>,
    /// `aud` claim.
    #[arg(long)]
    pub audience: Option<String>,
    /// `sub` claim.
    #[arg(long, required_unless_present = "service_account")]
    pub subject: Option<String>,
    /// `preferred_username` claim.
    #[arg(long)]
    pub login: Option<String>,
    /// `email` claim.
    #[arg(long)]
    pub email: Option<String>,
    /// Lifetime in seconds (negative mints an expired token).
    #[arg(long, default_value_t = 3600, allow_hyphen_values = true)]
    pub ttl_secs: i64,
}

impl MintToken {
    /// A short-lived token for a CLI call as a service account.
    pub(super) fn for_service_account(
        account: &str,
        key: &std::path::Path,
        algorithm: &str,
    ) -> Self {
        Self {
            key: key.to_owned(),
            algorithm: algorithm.to_owned(),
            kid: None,
            service_account: Some(account.to_owned()),
            issuer: None,
            audience: None,
            subject: None,
            login: None,
            email: None,
            ttl_secs: 300,
        }
    }
}

pub(super) fn mint(args: &MintToken) -> anyhow::Result<String> {
    let algorithm: Algorithm = args
        .algorithm
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown algorithm {:?}", args.algorithm))?;
    let bytes = std::fs::read(&args.key)
        .with_context(|| format!("cannot read key {}", args.key.display()))?;
    let key = match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Ok(EncodingKey::from_secret(
            String::from_utf8_lossy(&bytes).trim().as_bytes(),
        )),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&bytes),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&bytes),
        _ => EncodingKey::from_rsa_pem(&bytes),
    }
    .with_context(|| {
        format!(
            "{} is not a PEM private key for {algorithm:?}",
            args.key.display()
        )
    })?;
    let now = crate::domain::unix_now() as i64;
    let mut claims = serde_json::json!({ "iat": now, "exp": now + args.ttl_secs });
    let iss = args.service_account.as_ref().or(args.issuer.as_ref());
    claims["iss"] = iss.cloned().into();
    if let Some(subject) = &args.subject {
        claims["sub"] = subject.clone().into();
        claims["nbf"] = now.into();
    }
    if let Some(audience) = &args.audience {
        claims["aud"] = audience.clone().into();
    }
    if let Some(login) = &args.login {
        claims["preferred_username"] = login.clone().into();
    }
    if let Some(email) = &args.email {
        claims["email"] = email.clone().into();
    }
    let mut header = Header::new(algorithm);
    header.kid = args.kid.clone();
    Ok(jsonwebtoken::encode(&header, &claims, &key)?)
}
