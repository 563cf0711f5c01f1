//! Token validation: every way a token is refused, and the ways it is not.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header,
    jwk::{Jwk, JwkSet},
};
use serde_json::{Value, json};

use super::{keys::VerifyKey, *};
use crate::domain::IssuerName;

const RSA: &str = include_str!("../../tests/fixtures/keys/rsa.pem");
const RSA_PUB: &str = include_str!("../../tests/fixtures/keys/rsa.pub.pem");
const RSA_OTHER: &str = include_str!("../../tests/fixtures/keys/rsa-other.pem");
const EC256: &str = include_str!("../../tests/fixtures/keys/ec256.pem");
const EC256_PUB: &str = include_str!("../../tests/fixtures/keys/ec256.pub.pem");
const EC384: &str = include_str!("../../tests/fixtures/keys/ec384.pem");
const EC384_PUB: &str = include_str!("../../tests/fixtures/keys/ec384.pub.pem");
const ED: &str = include_str!("../../tests/fixtures/keys/ed25519.pem");
const ED_PUB: &str = include_str!("../../tests/fixtures/keys/ed25519.pub.pem");

const ISS: &str = "https://issuer.test";
const AUD: &str = "dispatch";

fn encoding_key(alg: Algorithm, pem: &str) -> EncodingKey {
    match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
        Algorithm::HS256 => Ok(EncodingKey::from_secret(pem.as_bytes())),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .unwrap()
}

fn mint(alg: Algorithm, pem: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &encoding_key(alg, pem)).unwrap()
}

fn claims() -> Value {
    let now = unix_now();
    json!({
        "iss": ISS, "aud": AUD, "sub": "1001", "exp": now + 600, "iat": now, "nbf": now,
        "preferred_username": "octocat", "email": "octocat@example.com",
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn pem_key(alg: Algorithm, pem: &str, kid: Option<&str>) -> VerifyKey {
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem.as_bytes()),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem.as_bytes()),
        _ => DecodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .unwrap();
    VerifyKey {
        kid: kid.map(str::to_owned),
        algorithm: alg,
        key,
    }
}

fn issuer(keys: Vec<VerifyKey>) -> JwtIssuer {
    JwtIssuer {
        name: IssuerName::parse("test").unwrap(),
        iss: ISS.into(),
        audiences: vec![AUD.into()],
        keys: KeySource::fixed(keys),
        leeway_secs: 5,
        claims: ClaimMapping::default(),
    }
}

fn verifier(keys: Vec<VerifyKey>) -> IdentityVerifier {
    IdentityVerifier::new(
        vec![issuer(keys)],
        TokenCache::new(1000, Duration::from_secs(300)),
    )
}

fn rsa_verifier() -> IdentityVerifier {
    verifier(vec![pem_key(Algorithm::RS256, RSA_PUB, Some("k1"))])
}

async fn verify(v: &IdentityVerifier, token: &str) -> Result<VerifiedIdentity, TokenError> {
    v.verify(token).await.map(|i| (*i).clone())
}

#[tokio::test]
async fn a_valid_token_yields_the_mapped_identity() {
    let token = mint(Algorithm::RS256, RSA, Some("k1"), &claims());
    let id = verify(&rsa_verifier(), &token).await.unwrap();
    assert_eq!(id.principal.issuer.as_str(), "test");
    assert_eq!(id.principal.subject.as_str(), "1001");
    assert_eq!(id.login.unwrap().as_str(), "octocat");
    assert_eq!(id.email.unwrap().as_str(), "octocat@example.com");
}

#[tokio::test]
async fn every_supported_algorithm_verifies_with_its_pinned_key() {
    let cases = [
        (Algorithm::RS256, RSA, RSA_PUB),
        (Algorithm::RS384, RSA, RSA_PUB),
        (Algorithm::RS512, RSA, RSA_PUB),
        (Algorithm::PS256, RSA, RSA_PUB),
        (Algorithm::ES256, EC256, EC256_PUB),
        (Algorithm::ES384, EC384, EC384_PUB),
        (Algorithm::EdDSA, ED, ED_PUB),
    ];
    for (alg, private, public) in cases {
        let v = verifier(vec![pem_key(alg, public, None)]);
        let token = mint(alg, private, None, &claims());
        assert!(verify(&v, &token).await.is_ok(), "{alg:?} refused");
    }
}

#[tokio::test]
async fn jwks_keys_are_selected_by_kid() {
    let mut set = JwkSet { keys: vec![] };
    for (kid, alg, pem) in [
        ("rsa", Algorithm::RS256, RSA),
        ("ec", Algorithm::ES256, EC256),
        ("ed", Algorithm::EdDSA, ED),
    ] {
        let mut jwk = Jwk::from_encoding_key(&encoding_key(alg, pem), alg).unwrap();
        jwk.common.key_id = Some(kid.into());
        set.keys.push(jwk);
    }
    let keys = keys::keys_from_jwks(&set, "test").unwrap();
    let v = verifier(keys);
    assert!(
        verify(&v, &mint(Algorithm::ES256, EC256, Some("ec"), &claims()))
            .await
            .is_ok()
    );
    assert!(
        verify(&v, &mint(Algorithm::EdDSA, ED, Some("ed"), &claims()))
            .await
            .is_ok()
    );
    // The right key id with another key's algorithm is refused.
    assert_eq!(
        verify(&v, &mint(Algorithm::ES256, EC256, Some("rsa"), &claims())).await,
        Err(TokenError::AlgorithmNotAllowed {
            token: Algorithm::ES256,
            pinned: Algorithm::RS256
        })
    );
}

#[test]
fn symmetric_keys_in_a_jwks_are_refused() {
    let set: JwkSet =
        serde_json::from_value(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}))
            .unwrap();
    let err = keys::keys_from_jwks(&set, "jwks.json").unwrap_err();
    assert!(err.to_string().contains("symmetric"), "{err}");
}

fn forge(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[tokio::test]
async fn rejections_name_the_problem() {
    let v = rsa_verifier();
    let now = unix_now();
    let good = |c: Value| mint(Algorithm::RS256, RSA, Some("k1"), &c);
    let valid = good(claims());
    let hs256_with_public_key = mint(Algorithm::HS256, RSA_PUB, Some("k1"), &claims());
    let cases: Vec<(&str, String, TokenError)> = vec![
        (
            "empty",
            String::new(),
            TokenError::Malformed("token is not a JWT (expected three dot-separated parts)"),
        ),
        (
            "truncated",
            valid[..valid.rfind('.').unwrap()].to_owned(),
            TokenError::Malformed("token is not a JWT (expected three dot-separated parts)"),
        ),
        (
            "not base64",
            "!!!.???.***".into(),
            TokenError::Malformed("token header is not base64url-encoded JSON"),
        ),
        (
            "payload not json",
            format!("{}.bm90IGpzb24.c2ln", valid.split('.').next().unwrap()),
            TokenError::Malformed("token payload is not base64url-encoded JSON"),
        ),
        (
            "alg none",
            forge(&json!({"alg": "none"}), &claims(), b""),
            TokenError::Unsigned,
        ),
        (
            "alg NONE",
            forge(&json!({"alg": "NONE", "kid": "k1"}), &claims(), b""),
            TokenError::Unsigned,
        ),
        (
            // Regression (issue 9, item 6): RFC 7515 §4.1.11.
            "crit names an extension",
            forge(
                &json!({"alg": "RS256", "kid": "k1", "crit": ["exp"], "exp": 1}),
                &claims(),
                b"x",
            ),
            TokenError::CriticalExtension,
        ),
        (
            "crit b64 false",
            forge(
                &json!({"alg": "RS256", "kid": "k1", "b64": false, "crit": ["b64"]}),
                &claims(),
                b"x",
            ),
            TokenError::CriticalExtension,
        ),
        (
            "unknown alg",
            forge(&json!({"alg": "XS999"}), &claims(), b"x"),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            "hs256 signed with the rsa public key",
            hs256_with_public_key,
            TokenError::AlgorithmNotAllowed {
                token: Algorithm::HS256,
                pinned: Algorithm::RS256,
            },
        ),
        (
            "unknown kid",
            mint(Algorithm::RS256, RSA, Some("nope"), &claims()),
            TokenError::UnknownKey,
        ),
        (
            "other key",
            mint(Algorithm::RS256, RSA_OTHER, Some("k1"), &claims()),
            TokenError::BadSignature,
        ),
        (
            "tampered",
            {
                let mut p: Vec<&str> = valid.split('.').collect();
                let c = URL_SAFE_NO_PAD.encode(with(claims(), "sub", json!("0")).to_string());
                p[1] = &c;
                p.join(".")
            },
            TokenError::BadSignature,
        ),
        (
            "wrong iss",
            good(with(claims(), "iss", json!("https://evil.test"))),
            TokenError::UntrustedIssuer,
        ),
        (
            "no iss",
            good(without(claims(), "iss")),
            TokenError::MissingClaim("iss".into()),
        ),
        (
            "wrong aud",
            good(with(claims(), "aud", json!("someone-else"))),
            TokenError::WrongAudience,
        ),
        (
            "no aud",
            good(without(claims(), "aud")),
            TokenError::MissingClaim("aud".into()),
        ),
        (
            "expired",
            good(with(claims(), "exp", json!(now - 60))),
            TokenError::Expired,
        ),
        (
            "no exp",
            good(without(claims(), "exp")),
            TokenError::MissingClaim("exp".into()),
        ),
        (
            "not yet valid",
            good(with(claims(), "nbf", json!(now + 60))),
            TokenError::NotYetValid,
        ),
        (
            "issued in the future",
            good(with(claims(), "iat", json!(now + 60))),
            TokenError::IssuedInFuture,
        ),
        (
            "no subject",
            good(without(claims(), "sub")),
            TokenError::MissingClaim("sub".into()),
        ),
        (
            "object subject",
            good(with(claims(), "sub", json!({"a": 1}))),
            TokenError::Malformed(
                "token has a registered claim (exp, nbf, iss, sub, aud) of the wrong type",
            ),
        ),
        // jsonwebtoken reads a non-numeric exp as absent.
        (
            "string exp",
            good(with(claims(), "exp", json!("soon"))),
            TokenError::MissingClaim("exp".into()),
        ),
        (
            "control chars in subject",
            good(with(claims(), "sub", json!("a\nb"))),
            TokenError::BadClaim("sub".into()),
        ),
    ];
    for (name, token, want) in cases {
        assert_eq!(verify(&v, &token).await, Err(want), "{name}");
    }
}

#[tokio::test]
async fn leeway_tolerates_small_clock_skew() {
    let v = rsa_verifier();
    let now = unix_now();
    let token = mint(
        Algorithm::RS256,
        RSA,
        Some("k1"),
        &with(claims(), "nbf", json!(now + 3)),
    );
    assert!(verify(&v, &token).await.is_ok());
}

#[tokio::test]
async fn numeric_subjects_and_custom_claims_map() {
    let mut iss = issuer(vec![pem_key(Algorithm::RS256, RSA_PUB, None)]);
    iss.claims = ClaimMapping {
        subject: "user_id".into(),
        login: Some("login".into()),
        email: None,
        groups: Vec::new(),
    };
    let v = IdentityVerifier::new(vec![iss], TokenCache::new(10, Duration::from_secs(60)));
    let c = with(
        with(claims(), "user_id", json!(583231)),
        "login",
        json!("octocat"),
    );
    let id = verify(&v, &mint(Algorithm::RS256, RSA, None, &c))
        .await
        .unwrap();
    assert_eq!(id.principal.subject.as_str(), "583231");
    assert_eq!(id.login.unwrap().as_str(), "octocat");
    assert_eq!(id.email, None, "e-mail mapping switched off");
    // A bad optional claim is dropped, not fatal.
    let c = with(with(claims(), "user_id", json!("7")), "login", json!(["x"]));
    let id = verify(&v, &mint(Algorithm::RS256, RSA, None, &c))
        .await
        .unwrap();
    assert_eq!(id.login, None);
}

/// Group claims (issue 15): strings and arrays of strings become link
/// keys, sorted and without duplicates; anything else refuses the token.
#[tokio::test]
async fn group_claims_become_link_keys_or_refuse_the_token() {
    let mut iss = issuer(vec![pem_key(Algorithm::RS256, RSA_PUB, None)]);
    iss.claims.groups = vec!["groups".into(), "repository".into()];
    let v = IdentityVerifier::new(vec![iss], TokenCache::new(10, Duration::from_secs(60)));
    let c = with(
        with(claims(), "groups", json!(["ops", "dev", "ops"])),
        "repository",
        json!("acme/deploy"),
    );
    let id = verify(&v, &mint(Algorithm::RS256, RSA, None, &c))
        .await
        .unwrap();
    let keys: Vec<&str> = id.links.iter().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["groups=dev", "groups=ops", "repository=acme/deploy"]);
    let id = verify(&v, &mint(Algorithm::RS256, RSA, None, &claims()))
        .await
        .unwrap();
    assert!(id.links.is_empty(), "absent claims carry nothing");
    let too_many: Vec<String> = (0..=crate::identity::jwt::MAX_LINKS)
        .map(|i| format!("g{i}"))
        .collect();
    for bad in [
        json!(7),
        json!(["ok", 7]),
        json!({"a": "b"}),
        json!(too_many),
        json!("a\nb"),
    ] {
        let c = with(claims(), "groups", bad.clone());
        let err = verify(&v, &mint(Algorithm::RS256, RSA, None, &c))
            .await
            .unwrap_err();
        assert_eq!(err, TokenError::BadClaim("groups".into()), "{bad}");
    }
}

#[tokio::test]
async fn hmac_works_only_where_configured_as_a_secret() {
    let secret = "dev-secret-dev-secret-dev-secret";
    let v = verifier(vec![VerifyKey {
        kid: None,
        algorithm: Algorithm::HS256,
        key: DecodingKey::from_secret(secret.as_bytes()),
    }]);
    let token = mint(Algorithm::HS256, secret, None, &claims());
    assert!(verify(&v, &token).await.is_ok());
    let rsa_token = mint(Algorithm::RS256, RSA, None, &claims());
    assert!(matches!(
        verify(&v, &rsa_token).await,
        Err(TokenError::AlgorithmNotAllowed { .. })
    ));
}

#[tokio::test]
async fn a_verified_token_is_cached_until_its_expiry() {
    let v = rsa_verifier();
    let token = mint(Algorithm::RS256, RSA, Some("k1"), &claims());
    let first = v.verify(&token).await.unwrap();
    let second = v.verify(&token).await.unwrap();
    assert!(
        Arc::ptr_eq(&first, &second),
        "second call was not a cache hit"
    );
    v.cache.sync().await;
    assert_eq!(v.cache.entry_count(), 1);

    // A token that expires within a second is verified again once it has.
    let short = mint(
        Algorithm::RS256,
        RSA,
        Some("k1"),
        &with(claims(), "exp", json!(unix_now() + 1)),
    );
    let strict = IdentityVerifier::new(
        vec![JwtIssuer {
            leeway_secs: 0,
            ..issuer(vec![pem_key(Algorithm::RS256, RSA_PUB, Some("k1"))])
        }],
        TokenCache::new(10, Duration::from_secs(300)),
    );
    assert!(strict.verify(&short).await.is_ok());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        strict.verify(&short).await.unwrap_err(),
        TokenError::Expired
    );
}

/// Polls a future once, with a waker that does nothing.
fn poll_once<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    f.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
}

/// Regression (an issue-9 leftover): every distinct forged token costs a
/// signature verification, and a flood of them could occupy every core.
/// Verifications of tokens not in the cache take one of a bounded number of
/// slots (cores − 1); a cached token never waits for one.
#[tokio::test]
async fn uncached_verifications_wait_for_a_slot_and_cached_tokens_never_do() {
    let v = rsa_verifier().with_verification_slots(1);
    let known = mint(Algorithm::RS256, RSA, Some("k1"), &claims());
    verify(&v, &known).await.unwrap();
    let held = v.slots.clone().try_acquire_owned().unwrap();

    let cached = std::pin::pin!(v.verify(&known));
    assert!(
        poll_once(cached).is_ready(),
        "a cached token waited for a slot"
    );
    let new = mint(
        Algorithm::RS256,
        RSA,
        Some("k1"),
        &with(claims(), "sub", json!("2002")),
    );
    let mut uncached = std::pin::pin!(v.verify(&new));
    assert!(
        poll_once(uncached.as_mut()).is_pending(),
        "a new token was verified without a slot"
    );
    drop(held);
    assert_eq!(uncached.await.unwrap().principal.subject.as_str(), "2002");
}

/// Issue 16: a GitHub token where no `[github]` is configured is told so,
/// not called a malformed JWT.
#[tokio::test]
async fn a_github_token_without_a_github_source_is_told_so() {
    let v = IdentityVerifier::new(Vec::new(), TokenCache::new(10, Duration::from_secs(60)));
    let err = v
        .verify("ghp_0123456789abcdefghijklmnopqrstuvwxyzAB")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no GitHub source ([github])"),
        "{err}"
    );
}
