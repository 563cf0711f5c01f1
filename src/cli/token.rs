//! `token mint`: sign a JWT with a private key, for development and tests.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use jsonwebtoken::Header;

use super::keys::{PrivateKey, read_private_key};

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
    /// Taken from the key (RS256 for RSA, ES256/ES384, EdDSA); set it for an
    /// HMAC secret (HS256), or PS256 etc. with an RSA key.
    #[arg(long)]
    pub algorithm: Option<String>,
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
        algorithm: Option<&str>,
    ) -> Self {
        Self {
            key: key.to_owned(),
            algorithm: algorithm.map(str::to_owned),
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
    let PrivateKey { algorithm, key } = read_private_key(&args.key, args.algorithm.as_deref())?;
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
