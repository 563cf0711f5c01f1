//! JWT verification for one configured issuer.
//!
//! The order of checks matters: the token's shape and header are read first
//! (cheap, and the only way to give `alg: none` a clear answer), then the
//! issuer is picked by the unverified `iss`, then the key by `kid` and the
//! pinned algorithm, and only then does the signature get verified, together
//! with `exp`, `nbf`, `iss` and `aud` by jsonwebtoken.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{
    TokenError, VerifiedIdentity,
    jwks::{RemoteJwks, RemoteJwksSettings},
    keys::VerifyKey,
};
use std::sync::Arc;

use crate::domain::{Email, IssuerName, LinkKey, Login, Principal, Subject};

/// Which claims carry the subject, the login and the e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    pub subject: String,
    pub login: Option<String>,
    pub email: Option<String>,
    /// Claims whose values groups may be linked to (`groups`,
    /// `repository`): a string, or an array of strings.
    pub groups: Vec<String>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            subject: "sub".into(),
            login: Some("preferred_username".into()),
            email: Some("email".into()),
            groups: Vec::new(),
        }
    }
}

/// Where an issuer's keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// Read from files at start-up.
    Static(Arc<Vec<VerifyKey>>),
    /// Fetched from the provider and refreshed.
    Remote(Arc<RemoteJwks>),
}

impl KeySource {
    pub fn fixed(keys: Vec<VerifyKey>) -> Self {
        Self::Static(Arc::new(keys))
    }

    pub fn current(&self) -> Arc<Vec<VerifyKey>> {
        match self {
            Self::Static(keys) => keys.clone(),
            Self::Remote(remote) => remote.keys(),
        }
    }
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Static(keys) => f.debug_tuple("Static").field(keys).finish(),
            Self::Remote(_) => f.write_str("Remote"),
        }
    }
}

/// One trusted issuer: the `iss` it signs as, the audiences it must name, and
/// its keys.
#[derive(Debug, Clone)]
pub struct JwtIssuer {
    pub name: IssuerName,
    pub iss: String,
    pub audiences: Vec<String>,
    pub keys: KeySource,
    pub leeway_secs: u64,
    pub claims: ClaimMapping,
}

/// An issuer as configured and checked: a [`JwtIssuer`] whose remote keys
/// are not fetched yet.
#[derive(Debug, Clone)]
pub struct IssuerConfig {
    pub name: IssuerName,
    pub iss: String,
    pub audiences: Vec<String>,
    pub keys: KeyConfig,
    pub leeway_secs: u64,
    pub claims: ClaimMapping,
}

/// Where an issuer's keys come from.
#[derive(Debug, Clone)]
pub enum KeyConfig {
    /// Read from files (each pinned to its algorithm).
    Fixed(Vec<VerifyKey>),
    /// Fetched from the provider (discovery or a JWKS URL).
    Remote(RemoteJwksSettings),
}

impl IssuerConfig {
    /// The issuer, with its remote key set (fetched by its refresher, on
    /// the shared HTTP client).
    pub fn build(self, http: &reqwest::Client) -> JwtIssuer {
        let keys = match self.keys {
            KeyConfig::Fixed(keys) => KeySource::fixed(keys),
            KeyConfig::Remote(settings) => KeySource::Remote(Arc::new(RemoteJwks::new(
                self.name.clone(),
                settings,
                http.clone(),
            ))),
        };
        JwtIssuer {
            name: self.name,
            iss: self.iss,
            audiences: self.audiences,
            keys,
            leeway_secs: self.leeway_secs,
            claims: self.claims,
        }
    }
}

/// The JOSE header fields we read. `alg` is kept as a string so that
/// `none` and unknown names get their own answers.
#[derive(Debug, Deserialize)]
pub(super) struct RawHeader {
    pub alg: String,
    #[serde(default)]
    pub kid: Option<String>,
    /// RFC 7515 §4.1.11: extensions the recipient must understand. We
    /// understand none (`b64: false` among them would change what is
    /// signed), so any `crit` refuses the token.
    #[serde(default)]
    pub crit: Option<Value>,
}

/// A token split into its parts, header and payload decoded but nothing
/// verified yet.
pub(super) struct Unverified<'t> {
    pub token: &'t str,
    pub header: RawHeader,
    pub payload: Map<String, Value>,
}

impl<'t> Unverified<'t> {
    pub fn parse(token: &'t str) -> Result<Self, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(_signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed(
                "token is not a JWT (expected three dot-separated parts)",
            ));
        };
        let header: RawHeader = decode_part(header).ok_or(TokenError::Malformed(
            "token header is not base64url-encoded JSON",
        ))?;
        if header.crit.is_some() {
            return Err(TokenError::CriticalExtension);
        }
        let payload: Map<String, Value> = decode_part(payload).ok_or(TokenError::Malformed(
            "token payload is not base64url-encoded JSON",
        ))?;
        Ok(Self {
            token,
            header,
            payload,
        })
    }

    pub fn iss(&self) -> Result<&str, TokenError> {
        match self.payload.get("iss") {
            Some(Value::String(iss)) => Ok(iss),
            Some(_) => Err(TokenError::BadClaim("iss".into())),
            None => Err(TokenError::MissingClaim("iss".into())),
        }
    }
}

fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The token's own algorithm, refusing `none` with a message of its own.
pub(super) fn header_algorithm(header: &RawHeader) -> Result<Algorithm, TokenError> {
    if header.alg.eq_ignore_ascii_case("none") {
        return Err(TokenError::Unsigned);
    }
    header
        .alg
        .parse()
        .map_err(|_| TokenError::UnsupportedAlgorithm)
}

impl JwtIssuer {
    pub(super) fn verify(
        &self,
        token: &Unverified<'_>,
        now: u64,
        keys: &[VerifyKey],
    ) -> Result<VerifiedIdentity, TokenError> {
        let alg = header_algorithm(&token.header)?;
        if keys.is_empty() {
            return Err(TokenError::KeysUnavailable);
        }
        let claims = verify_with_keys(token, alg, keys, |key| {
            self.verify_with(token.token, &key.key, alg)
        })?;
        self.identity(&claims, now)
    }

    fn verify_with(
        &self,
        token: &str,
        key: &DecodingKey,
        alg: Algorithm,
    ) -> Result<Map<String, Value>, TokenError> {
        let mut validation = Validation::new(alg);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.iss]);
        validation.set_audience(&self.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| map_jwt_error(e.into_kind()))
    }

    fn identity(
        &self,
        claims: &Map<String, Value>,
        now: u64,
    ) -> Result<VerifiedIdentity, TokenError> {
        let expires_at = expiry(claims, now, self.leeway_secs)?;
        let subject = claim_string(claims, &self.claims.subject)?
            .ok_or_else(|| TokenError::MissingClaim(self.claims.subject.clone()))?;
        let subject = Subject::parse(&subject)
            .map_err(|_| TokenError::BadClaim(self.claims.subject.clone()))?;
        let login = optional_claim(claims, self.claims.login.as_deref(), Login::parse)?;
        let email = optional_claim(claims, self.claims.email.as_deref(), Email::parse)?;
        let links = link_keys(claims, &self.claims.groups)?;
        Ok(VerifiedIdentity {
            principal: Arc::new(Principal {
                issuer: self.name.clone(),
                subject,
            }),
            login,
            login_is_authoritative: false,
            email,
            expires_at,
            verified_at: now,
            service_account: None,
            links,
        })
    }
}

/// Tries the keys the token's `kid` selects, each only with its pinned
/// algorithm, until `decode` verifies with one: the one key loop of every
/// JWT source (configured issuers, service accounts).
pub(super) fn verify_with_keys(
    token: &Unverified<'_>,
    alg: Algorithm,
    keys: &[VerifyKey],
    decode: impl Fn(&VerifyKey) -> Result<Map<String, Value>, TokenError>,
) -> Result<Map<String, Value>, TokenError> {
    let mut last_error = TokenError::UnknownKey;
    for key in candidate_keys(keys, token.header.kid.as_deref())? {
        if key.algorithm != alg {
            last_error = TokenError::AlgorithmNotAllowed {
                token: alg,
                pinned: key.algorithm,
            };
            continue;
        }
        match decode(key) {
            Ok(claims) => return Ok(claims),
            Err(TokenError::BadSignature) => last_error = TokenError::BadSignature,
            Err(other) => return Err(other),
        }
    }
    Err(last_error)
}

/// The token's `exp`, once jsonwebtoken has checked it, after refusing an
/// `iat` in the future (jsonwebtoken does not look at `iat`).
pub(super) fn expiry(
    claims: &Map<String, Value>,
    now: u64,
    leeway_secs: u64,
) -> Result<u64, TokenError> {
    if let Some(iat) = claims.get("iat") {
        let iat = iat
            .as_u64()
            .ok_or_else(|| TokenError::BadClaim("iat".into()))?;
        if iat > now + leeway_secs {
            return Err(TokenError::IssuedInFuture);
        }
    }
    claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or_else(|| TokenError::BadClaim("exp".into()))
}

/// Keys with the token's `kid`, or every key when the token names none
/// (issuers with a single key, such as Dispatch service accounts, often leave
/// `kid` out).
fn candidate_keys<'k>(
    keys: &'k [VerifyKey],
    kid: Option<&str>,
) -> Result<Vec<&'k VerifyKey>, TokenError> {
    let keys: Vec<&VerifyKey> = match kid {
        Some(kid) => keys
            .iter()
            .filter(|k| k.kid.as_deref() == Some(kid))
            .collect(),
        None => keys.iter().collect(),
    };
    if keys.is_empty() {
        return Err(TokenError::UnknownKey);
    }
    Ok(keys)
}

/// A claim as a string; numbers are accepted because some issuers (GitHub)
/// use numeric ids.
fn claim_string(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
        Some(_) => Err(TokenError::BadClaim(name.to_owned())),
    }
}

/// The most values an identity's group claims may carry together: a
/// token with more is refused (`bad_claim`) rather than cut, since which
/// values a cut would drop is arbitrary.
pub const MAX_LINKS: usize = 1000;

/// The values of the configured group claims, as link keys. A claim that
/// is absent contributes nothing; one that is neither a string nor an array
/// of strings, or a value no link could name, refuses the token: a group
/// claim that cannot be read fully is a doubt.
fn link_keys(claims: &Map<String, Value>, names: &[String]) -> Result<Box<[LinkKey]>, TokenError> {
    let mut keys = Vec::new();
    for name in names {
        let bad = || TokenError::BadClaim(name.clone());
        let values: Vec<&str> = match claims.get(name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(value)) => vec![value.as_str()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().ok_or_else(bad))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad()),
        };
        if keys.len() + values.len() > MAX_LINKS {
            return Err(bad());
        }
        for value in values {
            keys.push(LinkKey::new(name, value).map_err(|_| bad())?);
        }
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys.into_boxed_slice())
}

/// Optional claims that are present but unusable are left out rather than
/// failing the token: they are informational, the subject is what counts.
fn optional_claim<T, E>(
    claims: &Map<String, Value>,
    name: Option<&str>,
    parse: fn(&str) -> Result<T, E>,
) -> Result<Option<T>, TokenError> {
    let Some(name) = name else { return Ok(None) };
    Ok(claim_string(claims, name)
        .ok()
        .flatten()
        .and_then(|v| parse(&v).ok()))
}

pub(super) fn map_jwt_error(kind: ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::UntrustedIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim),
        ErrorKind::InvalidClaimFormat(claim) => TokenError::BadClaim(claim),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            TokenError::UnsupportedAlgorithm
        }
        // Header and payload were decoded before: only the signature is left.
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
            TokenError::Malformed("token signature is not valid base64url")
        }
        // The payload parsed as JSON before, so this is a registered claim of
        // the wrong type (`"exp": "soon"`, `"sub": {}`).
        ErrorKind::Json(_) => TokenError::Malformed(
            "token has a registered claim (exp, nbf, iss, sub, aud) of the wrong type",
        ),
        _ => TokenError::BadSignature,
    }
}
