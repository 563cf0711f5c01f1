//! Service accounts, as Dispatch had them: the client signs its own JWT with
//! `iss = "<org>/<name>"`, and we verify it with a public key registered for
//! that account through the admin API.
//!
//! Fixed against Dispatch: `iat` and `exp` are required and the token may
//! live at most `max_token_lifetime` from `iat` to `exp` (a self-signed
//! token cannot be revoked, so its life is short; measured from `iat`, a
//! long-lived token cannot wait until it falls within the bound); `aud` is
//! checked when configured; the algorithm is pinned per registered key; and
//! the account is a subject of its own kind, never a bare name that could
//! match a user.
//!
//! The account's keys are in the database, so every claim that can be
//! judged without them is judged first, and lookups of accounts not in the
//! cache are bounded ([`super::limiter`]): a flood of unsigned tokens with
//! random `org/name` issuers costs neither a query each nor cryptography.

use std::sync::Arc;

use jsonwebtoken::Validation;
use serde_json::{Map, Value};

use super::{
    TokenError, VerifiedIdentity,
    jwt::{self, Unverified},
    keys::{self, VerifyKey},
    limiter::{ColdLimiter, LimiterSettings},
};
use crate::{
    directory::ServiceAccountCache,
    domain::{IssuerName, OrgName, Principal, ServiceAccountName, Subject},
    store::ServiceAccount,
};

/// The issuer name service-account principals are logged under. Reserved:
/// no configured issuer may use it.
pub const ISSUER_NAME: &str = "service-account";

#[derive(Debug, Clone)]
pub struct ServiceAccountSettings {
    pub max_token_lifetime_secs: u64,
    /// Accepted `aud` values; empty means `aud` is not checked (Dispatch's
    /// tokens carry none).
    pub audiences: Vec<String>,
    pub leeway_secs: u64,
    /// Bounds on lookups of accounts not in the cache.
    pub lookups: LimiterSettings,
}

impl Default for ServiceAccountSettings {
    fn default() -> Self {
        Self {
            max_token_lifetime_secs: 3600,
            audiences: Vec::new(),
            leeway_secs: 60,
            lookups: LimiterSettings {
                per_second: 200,
                concurrent: 16,
            },
        }
    }
}

pub struct ServiceAccountSource {
    accounts: ServiceAccountCache,
    settings: ServiceAccountSettings,
    limiter: ColdLimiter,
}

/// `"<org>/<name>"`, both slugs; anything else is not a service account.
pub fn parse_issuer(iss: &str) -> Option<(OrgName, ServiceAccountName)> {
    let (org, name) = iss.split_once('/')?;
    Some((
        OrgName::parse(org).ok()?,
        ServiceAccountName::parse(name).ok()?,
    ))
}

impl ServiceAccountSource {
    pub fn new(accounts: ServiceAccountCache, settings: ServiceAccountSettings) -> Self {
        Self {
            limiter: ColdLimiter::new(settings.lookups),
            accounts,
            settings,
        }
    }

    pub(super) async fn verify(
        &self,
        token: &Unverified<'_>,
        org: &OrgName,
        name: &ServiceAccountName,
        now: u64,
    ) -> Result<VerifiedIdentity, TokenError> {
        let alg = jwt::header_algorithm(&token.header)?;
        // Judged on the payload before its signature is: the signature, when
        // it verifies, covers exactly these claims.
        let expires_at = self.lifetime(&token.payload, now)?;
        let unavailable = || TokenError::ProviderUnavailable {
            source_name: "service accounts (database)".into(),
        };
        let _permit = match self.accounts.is_cached(org, name) {
            true => None,
            false => Some(self.limiter.try_acquire().map_err(|_| unavailable())?),
        };
        let account = self
            .accounts
            .find(org, name)
            .await
            .map_err(|_| unavailable())?
            .ok_or(TokenError::UnknownServiceAccount)?;
        let keys = registered_keys(&account);
        jwt::verify_with_keys(token, alg, &keys, |key| {
            self.decode(token.token, key, &account)
        })?;
        Ok(identity(account, expires_at, now))
    }

    fn decode(
        &self,
        token: &str,
        key: &VerifyKey,
        account: &ServiceAccount,
    ) -> Result<Map<String, Value>, TokenError> {
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = self.settings.leeway_secs;
        validation.validate_nbf = true;
        validation.set_issuer(&[account.issuer()]);
        if self.settings.audiences.is_empty() {
            validation.validate_aud = false;
            validation.set_required_spec_claims(&["exp", "iss"]);
        } else {
            validation.set_audience(&self.settings.audiences);
            validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        }
        jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map(|data| data.claims)
            .map_err(|e| jwt::map_jwt_error(e.into_kind()))
    }

    /// `exp`, once `iat` and `exp` are present, `iat` is not in the future,
    /// `exp` is not past and the token lives at most the maximum from `iat`.
    fn lifetime(&self, claims: &Map<String, Value>, now: u64) -> Result<u64, TokenError> {
        let s = &self.settings;
        let iat = match claims.get("iat") {
            None => return Err(TokenError::MissingClaim("iat".into())),
            Some(iat) => iat
                .as_u64()
                .ok_or_else(|| TokenError::BadClaim("iat".into()))?,
        };
        if !claims.contains_key("exp") {
            return Err(TokenError::MissingClaim("exp".into()));
        }
        let expires_at = jwt::expiry(claims, now, s.leeway_secs)?;
        if expires_at + s.leeway_secs < now {
            return Err(TokenError::Expired);
        }
        if expires_at.saturating_sub(iat) > s.max_token_lifetime_secs {
            return Err(TokenError::LifetimeTooLong {
                max_secs: s.max_token_lifetime_secs,
            });
        }
        Ok(expires_at)
    }
}

fn identity(account: Arc<ServiceAccount>, expires_at: u64, now: u64) -> VerifiedIdentity {
    let subject = Subject::parse(&account.issuer()).expect("org/name is a valid subject");
    VerifiedIdentity {
        principal: Arc::new(Principal {
            issuer: IssuerName::parse(ISSUER_NAME).expect("a valid issuer name"),
            subject,
        }),
        login: None,
        login_is_authoritative: false,
        email: None,
        expires_at,
        verified_at: now,
        service_account: Some(account),
        links: Box::default(),
    }
}

/// The account's keys, each pinned to its registered algorithm. A key that
/// no longer parses (it was checked when registered) is skipped.
fn registered_keys(account: &ServiceAccount) -> Vec<VerifyKey> {
    account
        .keys
        .iter()
        .filter_map(|k| {
            let algorithm = keys::parse_public_algorithm(&k.algorithm).ok()?;
            keys::parse_pem(
                k.public_key_pem.as_bytes(),
                algorithm,
                Some(k.id.clone()),
                &k.id,
            )
            .ok()
        })
        .collect()
}
