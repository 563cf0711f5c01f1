//! Service accounts: tokens the client signs itself with
//! `iss = "<org>/<name>"`, verified with the account's registered keys.

use crate::common::{admin::Admin, *};
use dispatch_authz::proto::admin::{self as pb, role_binding::Subject};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

fn options(extra: &str) -> Options {
    Options {
        authorization: String::new(),
        sources: extra.into(),
        ..Options::default()
    }
}

/// acme/ci with an ES256 key (`ec256`) and the role `builder` (`image:*`);
/// globex exists too.
async fn setup(app: &TestApp) -> Admin {
    let mut admin = app.bootstrap().await;
    admin.org("acme").await.unwrap();
    admin.org("globex").await.unwrap();
    admin.role("acme", "builder", &["image:*"]).await.unwrap();
    admin
        .service_account("acme", "ci", &[("ES256", "ec256.pub.pem")])
        .await
        .unwrap();
    admin
        .bind("acme", "builder", Subject::ServiceAccount("acme/ci".into()))
        .await
        .unwrap();
    admin
}

fn claims_for(iss: &str, lifetime: i64) -> Value {
    let now = now() as i64;
    json!({"iss": iss, "iat": now - 60, "exp": now + lifetime})
}

async fn check(app: &TestApp, token: &str) -> envoy_types::ext_authz::v3::pb::CheckResponse {
    app.check_on(
        "POST",
        "api.test",
        "/v1/image",
        &[("authorization", &bearer(token))],
    )
    .await
}

fn message(r: &envoy_types::ext_authz::v3::pb::CheckResponse) -> (i32, String) {
    let d = denied(r);
    (
        d.http,
        d.body["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_valid_token_is_allowed_as_the_service_account() {
    let app = spawn_app_with(options("")).await;
    setup(&app).await;
    let token = sign(
        Algorithm::ES256,
        "ec256.pem",
        None,
        // iat is a minute ago: 3600 s from iat to exp, the maximum.
        &claims_for("acme/ci", 3540),
    );
    let r = check(&app, &token).await;
    assert_eq!(code(&r), OK, "{r:?}");
    let h = upstream_headers(&r);
    assert_eq!(header(&h, "x-dispatch-user"), Some("acme/ci"));
    assert_eq!(
        header(&h, "x-dispatch-subject-kind"),
        Some("service-account")
    );
    assert_eq!(header(&h, "x-dispatch-org"), Some("acme"));
    assert_eq!(header(&h, "x-dispatch-roles"), Some("builder"));
    assert_eq!(header(&h, "x-dispatch-issuer"), Some("service-account"));
    // Regression (issue 9, item 14): the access log knows who called.
    let meta = r
        .dynamic_metadata
        .as_ref()
        .expect("metadata for access logs");
    let field = |k: &str| match meta.fields.get(k).and_then(|v| v.kind.as_ref()) {
        Some(envoy_types::pb::google::protobuf::value::Kind::StringValue(s)) => s.clone(),
        other => panic!("{k}: {other:?}"),
    };
    assert_eq!(field("login"), "acme/ci");
    assert_eq!(field("user_id"), header(&h, "x-dispatch-user-id").unwrap());
    assert_eq!(field("decision_id").len(), 21);
    // No more than the access log reads (issue 11): the rest is in headers.
    assert_eq!(meta.fields.len(), 3, "{:?}", meta.fields.keys());
}

#[tokio::test]
async fn bad_service_account_tokens_are_refused_with_the_reason() {
    let app = spawn_app_with(options("")).await;
    let mut admin = setup(&app).await;
    // Same name in another org, with its own key.
    admin
        .service_account("globex", "ci", &[("RS256", "rsa-other.pub.pem")])
        .await
        .unwrap();
    let es = |claims: &Value| sign(Algorithm::ES256, "ec256.pem", None, claims);
    let cases: Vec<(&str, String, i32, &str)> = vec![
        (
            "signed by acme/ci's key, but claiming globex/ci",
            es(&claims_for("globex/ci", 600)),
            401,
            "pinned algorithm",
        ),
        (
            "signed with RS256, but not with globex/ci's key",
            sign(
                Algorithm::RS256,
                "rsa.pem",
                None,
                &claims_for("globex/ci", 600),
            ),
            401,
            "signature is invalid",
        ),
        (
            "an org with no such account",
            es(&claims_for("globex/deploy", 600)),
            401,
            "no known service account",
        ),
        (
            "unknown account",
            es(&claims_for("acme/deploy", 600)),
            401,
            "no known service account",
        ),
        (
            "lifetime over the 1 h default",
            es(&claims_for("acme/ci", 2 * 3600)),
            401,
            "at most 3600 s from iat to exp",
        ),
        (
            // Regression (issue 9, item 14): measured from `iat`, not from
            // now, a long-lived token never falls within the bound.
            "issued ten hours ago, expiring in half an hour",
            es(&json!({"iss": "acme/ci", "iat": now() - 36_000, "exp": now() + 1800})),
            401,
            "at most 3600 s from iat to exp",
        ),
        (
            "no iat",
            es(&json!({"iss": "acme/ci", "exp": now() + 600})),
            401,
            "iat",
        ),
        ("expired", es(&claims_for("acme/ci", -600)), 401, "expired"),
        (
            "no exp",
            es(&json!({"iss": "acme/ci", "iat": now()})),
            401,
            "exp",
        ),
        (
            "signed with another key",
            sign(
                Algorithm::ES256,
                "ec256.pem",
                None,
                &claims_for("acme/ci", 600),
            )
            .rsplit_once('.')
            .map(|(head, _)| format!("{head}.AAAA"))
            .unwrap(),
            401,
            "",
        ),
        (
            "RS256 against the pinned ES256 key",
            sign(
                Algorithm::RS256,
                "rsa.pem",
                None,
                &claims_for("acme/ci", 600),
            ),
            401,
            "pinned algorithm",
        ),
        (
            "HS256 keyed with the public key",
            {
                let pem = std::fs::read(fixture("ec256.pub.pem")).unwrap();
                let header = jsonwebtoken::Header::new(Algorithm::HS256);
                let key = jsonwebtoken::EncodingKey::from_secret(&pem);
                jsonwebtoken::encode(&header, &claims_for("acme/ci", 600), &key).unwrap()
            },
            401,
            "pinned algorithm",
        ),
        (
            "alg none",
            {
                use base64::Engine;
                let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                let header = b64.encode(br#"{"alg":"none"}"#);
                let body = b64.encode(claims_for("acme/ci", 600).to_string());
                format!("{header}.{body}.")
            },
            401,
            "alg \"none\"",
        ),
    ];
    for (what, token, status, fragment) in cases {
        let r = check(&app, &token).await;
        assert_ne!(code(&r), OK, "{what}: allowed");
        let (http, message) = message(&r);
        assert_eq!(http, status, "{what}: {message}");
        assert!(message.contains(fragment), "{what}: {message:?}");
    }
}

#[tokio::test]
async fn a_key_rotated_out_stops_working_at_once_and_the_new_one_works() {
    let app = spawn_app_with(options("")).await;
    let mut admin = setup(&app).await;
    let old = sign(
        Algorithm::ES256,
        "ec256.pem",
        None,
        &claims_for("acme/ci", 600),
    );
    assert_eq!(
        code(&check(&app, &old).await),
        OK,
        "old key works (and is cached)"
    );

    let r = admin.req(pb::AddServiceAccountKeyRequest {
        org: "acme".into(),
        name: "ci".into(),
        algorithm: "EdDSA".into(),
        pem: std::fs::read_to_string(fixture("ed25519.pub.pem")).unwrap(),
    });
    let account = admin
        .client
        .add_service_account_key(r)
        .await
        .unwrap()
        .into_inner();
    let old_key = account
        .keys
        .iter()
        .find(|k| k.algorithm == "ES256")
        .unwrap();
    let new_key = account
        .keys
        .iter()
        .find(|k| k.algorithm == "EdDSA")
        .unwrap();
    let new = sign(
        Algorithm::EdDSA,
        "ed25519.pem",
        Some(&new_key.id),
        &claims_for("acme/ci", 600),
    );
    assert_eq!(code(&check(&app, &new).await), OK, "new key works at once");

    let r = admin.req(pb::RemoveServiceAccountKeyRequest {
        org: "acme".into(),
        name: "ci".into(),
        key_id: old_key.id.clone(),
    });
    admin.client.remove_service_account_key(r).await.unwrap();
    let r = check(&app, &old).await;
    assert_eq!(
        message(&r).0,
        401,
        "a cached token of a removed key must not survive"
    );
    assert_eq!(code(&check(&app, &new).await), OK);
}

#[tokio::test]
async fn a_disabled_account_is_refused_on_the_next_check() {
    let app = spawn_app_with(options("")).await;
    let mut admin = setup(&app).await;
    let token = sign(
        Algorithm::ES256,
        "ec256.pem",
        None,
        &claims_for("acme/ci", 600),
    );
    assert_eq!(code(&check(&app, &token).await), OK);
    let r = admin.req(pb::SetServiceAccountEnabledRequest {
        org: "acme".into(),
        name: "ci".into(),
        enabled: false,
    });
    admin.client.set_service_account_enabled(r).await.unwrap();
    assert_eq!(
        message(&check(&app, &token).await),
        (403, "service account is disabled".into())
    );
}

#[tokio::test]
async fn audience_and_lifetime_are_configurable() {
    let app = spawn_app_with(options(
        "[service_accounts]\naudiences = [\"dispatch\"]\nmax_token_lifetime_secs = 300\n",
    ))
    .await;
    setup(&app).await;
    let es = |claims: &Value| sign(Algorithm::ES256, "ec256.pem", None, claims);
    let mut claims = claims_for("acme/ci", 200);
    assert_eq!(
        message(&check(&app, &es(&claims)).await).0,
        401,
        "aud required"
    );
    claims["aud"] = "dispatch".into();
    assert_eq!(code(&check(&app, &es(&claims)).await), OK);
    claims["aud"] = "elsewhere".into();
    assert_eq!(message(&check(&app, &es(&claims)).await).0, 401);
    let mut long = claims_for("acme/ci", 600);
    long["aud"] = "dispatch".into();
    let (status, text) = message(&check(&app, &es(&long)).await);
    assert_eq!(status, 401);
    assert!(text.contains("at most 300 s"), "{text}");
}

/// Regression (issue 9, item 10): tokens naming random `org/name` issuers
/// reached the database before any cryptography, one query each. Claims
/// that need no key are judged first, and lookups of accounts not in the
/// cache are bounded: beyond the bound a 503 without a query, while a known
/// account keeps working.
#[tokio::test]
async fn a_flood_of_random_issuers_costs_a_bounded_number_of_lookups() {
    let app = spawn_app_with(options("[service_accounts]\nlookups_per_sec = 5\n")).await;
    setup(&app).await;
    let es = |claims: &Value| sign(Algorithm::ES256, "ec256.pem", None, claims);
    let good = es(&claims_for("acme/ci", 600));
    assert_eq!(code(&check(&app, &good).await), OK);

    // Without `iat` (or too long-lived): refused before any lookup, so these
    // spend nothing of the bound.
    for n in 0..20 {
        let t = es(&json!({"iss": format!("acme/x{n}"), "exp": now() + 600}));
        assert_eq!(message(&check(&app, &t).await).0, 401);
    }
    // Well-formed claims, random issuers.
    let mut unknown = 0;
    let mut unavailable = 0;
    for n in 0..50 {
        let t = es(&claims_for(&format!("acme/flood{n}"), 600));
        let r = check(&app, &t).await;
        match message(&r) {
            (401, m) if m.contains("no known service account") => unknown += 1,
            (503, _) => unavailable += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(unknown <= 6, "{unknown} lookups for 50 random issuers");
    assert!(unavailable >= 44, "{unavailable}");
    assert_eq!(
        code(&check(&app, &good).await),
        OK,
        "a known account still works"
    );
}
