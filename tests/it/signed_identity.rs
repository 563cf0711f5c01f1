//! The signed identity (issue 14): an allowed subject's `x-dispatch-identity`
//! is a JWT that verifies, as a downstream service would verify it, with
//! the keys the operations listener publishes.

use dispatch_authz::config::{Overrides, Settings};
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::Value;

use crate::common::*;

async fn spawn(section: &str) -> TestApp {
    spawn_app_with(Options {
        authorization: String::new(),
        sources: format!("[signed_identity]\n{section}\n"),
        ..Default::default()
    })
    .await
}

async fn jwks(app: &TestApp) -> (reqwest::StatusCode, Option<String>, String) {
    let url = format!(
        "http://{}/.well-known/jwks.json",
        app.operations_addr.unwrap()
    );
    let response = reqwest::get(url).await.unwrap();
    let cache = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status(), cache, response.text().await.unwrap())
}

/// What a downstream service does: the key named by `kid` from the
/// published set, the algorithm pinned, issuer and audience checked.
fn verify(set: &JwkSet, token: &str, algorithm: Algorithm, audience: &str) -> Value {
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = set.find(&kid).expect("the signing key is published");
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&["dispatch-authz"]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

fn in_acme(auth: &str) -> Vec<(&str, &str)> {
    vec![("authorization", auth), ("x-dispatch-org", "acme")]
}

#[tokio::test]
async fn an_allow_carries_a_signed_identity_that_verifies_with_the_published_keys() {
    let app = spawn("audience = \"functions\"").await;
    let (_admin, alice) = app.acme_with_alice().await;
    let auth = bearer(&token(&claims("alice")));
    let mut headers = in_acme(&auth);
    headers.push(("x-dispatch-identity", "forged"));
    headers.push(("x_dispatch_identity", "forged"));

    let r = app.check("/v1/function/f", &headers).await;
    assert_eq!(code(&r), OK, "{r:?}");
    let set = upstream_headers(&r);
    let signed = header(&set, "x-dispatch-identity").expect("signed identity set");
    assert_ne!(signed, "forged");
    assert_eq!(removed(&r), ["authorization", "x_dispatch_identity"]);

    let (status, cache, body) = jwks(&app).await;
    assert_eq!(status, 200);
    assert_eq!(cache.as_deref(), Some("max-age=300"));
    let published: JwkSet = serde_json::from_str(&body).unwrap();
    assert_eq!(published.keys.len(), 2, "the signing key and the next");
    assert!(!body.contains("\"d\""), "no private part: {body}");
    let claims = verify(&published, signed, Algorithm::EdDSA, "functions");
    assert_eq!(claims["sub"], alice.id.to_string());
    assert_eq!(claims["kind"], "user");
    assert_eq!(claims["login"], "alice");
    assert_eq!(claims["idp"], ISSUER_NAME);
    assert_eq!(claims["org"], "acme");
    assert_eq!(claims["roles"], serde_json::json!(["developer"]));
    assert_eq!(
        claims["exp"].as_u64().unwrap(),
        claims["iat"].as_u64().unwrap() + 300
    );

    // Reused for the subject's next checks: no signature per request.
    let again = app.check("/v1/function/g", &in_acme(&auth)).await;
    assert_eq!(
        header(&upstream_headers(&again), "x-dispatch-identity"),
        Some(signed)
    );

    // A denial vouches for nobody.
    let denied = app.check("/v1/secret/s", &in_acme(&auth)).await;
    assert_eq!(code(&denied), PERMISSION_DENIED);
    assert!(!format!("{denied:?}").contains("x-dispatch-identity"));
}

#[tokio::test]
async fn per_request_tokens_name_the_request() {
    let app = spawn("per_request = true\naudience = \"functions\"").await;
    app.acme_with_alice().await;
    let auth = bearer(&token(&claims("alice")));
    let (_, _, body) = jwks(&app).await;
    let published: JwkSet = serde_json::from_str(&body).unwrap();
    for request_id in ["r-1", "r-2"] {
        let mut headers = in_acme(&auth);
        headers.push(("x-request-id", request_id));
        let r = app.check("/v1/function/f", &headers).await;
        let set = upstream_headers(&r);
        let signed = header(&set, "x-dispatch-identity").unwrap();
        let claims = verify(&published, signed, Algorithm::EdDSA, "functions");
        assert_eq!(claims["rid"], request_id);
    }
}

#[tokio::test]
async fn configured_key_files_sign_and_the_others_are_published() {
    let next = fixture("ed25519.pem");
    let app = spawn(&format!(
        "algorithm = \"ES256\"\naudience = \"a\"\nkey_files = [\"{}\"]",
        fixture("ec256.pem").display()
    ))
    .await;
    app.acme_with_alice().await;
    let auth = bearer(&token(&claims("alice")));
    let r = app.check("/v1/function/f", &in_acme(&auth)).await;
    let set = upstream_headers(&r);
    let signed = header(&set, "x-dispatch-identity").unwrap();
    let (_, _, body) = jwks(&app).await;
    let published: JwkSet = serde_json::from_str(&body).unwrap();
    assert_eq!(published.keys.len(), 1);
    assert_eq!(
        verify(&published, signed, Algorithm::ES256, "a")["login"],
        "alice"
    );

    // A key of another algorithm than the configured one is named.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        format!(
            "[signed_identity]\nalgorithm = \"ES256\"\nkey_files = [\"{}\"]\n",
            next.display()
        ),
    )
    .unwrap();
    let error = Settings::load(Some(&file), &Overrides::default())
        .unwrap()
        .compile()
        .unwrap_err()
        .to_string();
    assert!(error.contains("signed_identity.key_files"), "{error}");
    assert!(error.contains("ed25519.pem"), "{error}");
    assert!(error.contains("ES256"), "{error}");
}

#[tokio::test]
async fn without_the_section_no_identity_is_signed_and_a_forged_one_is_removed() {
    let app = spawn_app_with(Options {
        authorization: String::new(),
        ..Default::default()
    })
    .await;
    app.acme_with_alice().await;
    let auth = bearer(&token(&claims("alice")));
    let mut headers = in_acme(&auth);
    headers.push(("x-dispatch-identity", "forged"));
    let r = app.check("/v1/function/f", &headers).await;
    assert_eq!(code(&r), OK);
    assert_eq!(header(&upstream_headers(&r), "x-dispatch-identity"), None);
    assert_eq!(removed(&r), ["authorization", "x-dispatch-identity"]);
    let (status, _, _) = jwks(&app).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn generated_keys_rotate_and_old_tokens_keep_verifying_until_they_expire() {
    let app = spawn("ttl_secs = 1\nrotate_secs = 1\naudience = \"a\"").await;
    app.acme_with_alice().await;
    let auth = bearer(&token(&claims("alice")));
    let signed = |r: &CheckResponse| {
        header(&upstream_headers(r), "x-dispatch-identity")
            .unwrap()
            .to_owned()
    };
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    let first = signed(&app.check("/v1/function/f", &in_acme(&auth)).await);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let second = signed(&app.check("/v1/function/f", &in_acme(&auth)).await);
    assert_ne!(kid(&first), kid(&second), "rotated");
    let (_, cache, body) = jwks(&app).await;
    assert_eq!(cache.as_deref(), Some("max-age=0"));
    let published: JwkSet = serde_json::from_str(&body).unwrap();
    assert!(
        published.find(&kid(&first)).is_some(),
        "the old key is still published"
    );
    assert!(published.find(&kid(&second)).is_some());
}

#[tokio::test]
async fn configured_keys_rotate_through_reloads_without_a_token_left_unverifiable() {
    let (current, next) = (fixture("ec256.pem"), fixture("ec256-next.pem"));
    let files = |list: &[&std::path::Path]| {
        let quoted: Vec<String> = list
            .iter()
            .map(|f| format!("\"{}\"", f.display()))
            .collect();
        format!("key_files = [{}]", quoted.join(", "))
    };
    let app = spawn(&format!(
        "algorithm = \"ES256\"\naudience = \"a\"\n{}",
        files(&[&current])
    ))
    .await;
    let (mut admin, _) = app.acme_with_alice().await;
    let auth = bearer(&token(&claims("alice")));
    let file = app.dir.path().join("dispatch-authz.toml");
    let mut listed = files(&[&current]);
    let mut step = |list: &[&std::path::Path]| {
        let text = std::fs::read_to_string(&file).unwrap();
        let now = files(list);
        std::fs::write(&file, text.replace(&listed, &now)).unwrap();
        listed = now;
    };
    let kid = |t: &str| jsonwebtoken::decode_header(t).unwrap().kid.unwrap();
    let signed = async || {
        let r = app.check("/v1/function/f", &in_acme(&auth)).await;
        header(&upstream_headers(&r), "x-dispatch-identity")
            .unwrap()
            .to_owned()
    };
    let published = async || {
        let (_, _, body) = jwks(&app).await;
        let set: JwkSet = serde_json::from_str(&body).unwrap();
        set.keys
            .into_iter()
            .map(|k| k.common.key_id.unwrap())
            .collect::<Vec<_>>()
    };
    let old = signed().await;

    // 1. The next key listed second: published, not signing yet.
    step(&[&current, &next]);
    let reloaded = admin.reload().await.unwrap();
    assert_eq!(reloaded.changed, ["signed_identity.key_files"]);
    assert!(reloaded.needs_restart.is_empty());
    assert_eq!(published().await.len(), 2);
    assert_eq!(kid(&signed().await), kid(&old), "the same key signs");

    // 2. Moved first: it signs; both published.
    step(&[&next, &current]);
    admin.reload().await.unwrap();
    let new = signed().await;
    assert_ne!(kid(&new), kid(&old));
    assert_eq!(published().await, [kid(&new), kid(&old)]);

    // 3. The old one dropped: still published until its tokens expired.
    step(&[&next]);
    admin.reload().await.unwrap();
    assert_eq!(published().await, [kid(&new), kid(&old)]);
    let (_, _, body) = jwks(&app).await;
    let set: JwkSet = serde_json::from_str(&body).unwrap();
    verify(&set, &old, Algorithm::ES256, "a");
    verify(&set, &new, Algorithm::ES256, "a");
}
