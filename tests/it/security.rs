//! The ways in that an outside review found (issue 9), each closed and
//! proven through the real Check: one test per attack class, each written
//! to fail before its fix.

use crate::common::{
    admin::{Admin, user_ref},
    *,
};
use dispatch_authz::proto::admin::role_binding::Subject;

fn rbac() -> Options {
    Options {
        authorization: r#"
[[authorization.routes]]
prefix = "/api/orders"
resource = "orders"

[[authorization.routes]]
prefix = "/api"
resource = "shop"
"#
        .into(),
        ..Options::default()
    }
}

/// acme with alice (developer: `function:*`, `shop:get`), and dave, who
/// holds the global role auditor (`*:get`) and is a member of nothing.
async fn world(app: &TestApp) -> Admin {
    let mut admin = app.bootstrap().await;
    admin.org("acme").await.unwrap();
    admin
        .role("acme", "developer", &["function:*", "shop:get"])
        .await
        .unwrap();
    admin.role("", "auditor", &["*:get"]).await.unwrap();
    app.add_user("alice", "alice").await;
    app.add_user("dave", "dave").await;
    admin
        .member("acme", &user_ref("alice"), true)
        .await
        .unwrap();
    admin
        .bind("acme", "developer", Subject::User(user_ref("alice")))
        .await
        .unwrap();
    admin
        .bind("", "auditor", Subject::User(user_ref("dave")))
        .await
        .unwrap();
    admin
}

fn status(r: &envoy_types::pb::envoy::service::auth::v3::CheckResponse) -> i32 {
    if code(r) == OK { 200 } else { denied(r).http }
}

/// Item 3: `..;` is `..` to Java servers; a parameter or a letter case can
/// reach a more specific route. Each is a 400, with or without a token.
#[tokio::test]
async fn paths_that_upstreams_read_differently_are_refused() {
    let app = spawn_app_with(rbac()).await;
    world(&app).await;
    let alice = bearer(&token(&claims("alice")));
    for path in [
        "/healthz/..;/v1/secret/db",
        "/v1/function/..;/secret/db",
        "/api/orders;x/7",
        "/api/ORDERS/7",
        "/api/%6Frders/7",
        "/V1/function/f",
    ] {
        let r = app.check(path, &[]).await;
        assert_eq!(status(&r), 400, "{path} without a token");
        let r = app.check(path, &[("authorization", &alice)]).await;
        assert_eq!(status(&r), 400, "{path} as alice");
    }
    // The readings that agree still work.
    let r = app
        .check("/v1/function/MyFn;v=1", &[("authorization", &alice)])
        .await;
    assert_eq!(status(&r), 200);
    let r = app.check("/healthz", &[]).await;
    assert_eq!(status(&r), 200);
}

/// Item 4: an underscore spelling of our names is ours: read as the
/// organization, and never passed on.
#[tokio::test]
async fn underscore_spellings_are_our_names() {
    let app = spawn_app_with(rbac()).await;
    world(&app).await;
    let alice = bearer(&token(&claims("alice")));
    let r = app
        .check(
            "/v1/function/f",
            &[
                ("authorization", &alice),
                ("x_dispatch_user", "mallory"),
                ("x_dispatch_roles", "admin"),
            ],
        )
        .await;
    assert_eq!(code(&r), OK);
    let removed = removed(&r);
    for name in ["x_dispatch_user", "x_dispatch_roles"] {
        assert!(
            removed.iter().any(|n| n == name),
            "{name} kept: {removed:?}"
        );
    }
    // x_dispatch_org is the organization header: with another one it is
    // "sent twice".
    let r = app
        .check(
            "/v1/function/f",
            &[
                ("authorization", &alice),
                ("x-dispatch-org", "acme"),
                ("x_dispatch_org", "globex"),
            ],
        )
        .await;
    assert_eq!(status(&r), 400);
}

/// Item 5: the caller's token does not go on to the upstream.
#[tokio::test]
async fn the_callers_credential_is_not_passed_on() {
    let app = spawn_app_with(rbac()).await;
    world(&app).await;
    let t = token(&claims("alice"));
    let r = app
        .check("/v1/function/f", &[("authorization", &bearer(&t))])
        .await;
    assert_eq!(code(&r), OK);
    assert!(removed(&r).contains(&"authorization".to_owned()));
    let r = app
        .check(
            "/v1/function/f",
            &[("cookie", &format!("theme=dark; dispatch_token={t}"))],
        )
        .await;
    assert_eq!(code(&r), OK);
    assert_eq!(
        header(&upstream_headers(&r), "cookie"),
        Some("theme=dark"),
        "only the token cookie is cut"
    );
}

#[tokio::test]
async fn forwarding_the_credential_is_an_option() {
    let app = spawn_app_with(Options {
        extra: "forward_credential = true",
        ..rbac()
    })
    .await;
    world(&app).await;
    let r = app
        .check(
            "/v1/function/f",
            &[("authorization", &bearer(&token(&claims("alice"))))],
        )
        .await;
    assert_eq!(code(&r), OK);
    assert!(removed(&r).is_empty(), "{:?}", removed(&r));
}

/// Item 11: a POST naming DELETE is refused, not authorized as `create`.
#[tokio::test]
async fn method_overrides_are_refused_or_authorized_as_the_override() {
    let app = spawn_app_with(rbac()).await;
    world(&app).await;
    let alice = bearer(&token(&claims("alice")));
    // alice may create in shop? No: shop:get only. A GET that names POST.
    let r = app
        .check_on(
            "POST",
            "api.test",
            "/v1/function/f",
            &[
                ("authorization", &alice),
                ("x-http-method-override", "DELETE"),
            ],
        )
        .await;
    assert_eq!(status(&r), 400);
    assert!(
        denied(&r).body["message"]
            .as_str()
            .unwrap()
            .contains("override")
    );
    let r = app
        .check_on(
            "POST",
            "api.test",
            "/v1/function/f?_method=DELETE",
            &[("authorization", &alice)],
        )
        .await;
    assert_eq!(status(&r), 400);

    let app = spawn_app_with(Options {
        extra: r#"method_override = "honour""#,
        ..rbac()
    })
    .await;
    world(&app).await;
    let alice = bearer(&token(&claims("alice")));
    let r = app
        .check_on(
            "GET",
            "api.test",
            "/api/x",
            &[
                ("authorization", &alice),
                ("x-http-method-override", "DELETE"),
            ],
        )
        .await;
    assert_eq!(status(&r), 403, "authorized as delete on shop");
    assert!(
        denied(&r).body["message"]
            .as_str()
            .unwrap()
            .contains("delete on shop")
    );
}

/// Item 12: a global role reaches existing organizations only.
#[tokio::test]
async fn an_organization_that_does_not_exist_is_refused() {
    let app = spawn_app_with(rbac()).await;
    let mut admin = world(&app).await;
    let dave = bearer(&token(&claims("dave")));
    let r = app
        .check(
            "/v1/function",
            &[("authorization", &dave), ("x-dispatch-org", "nosuch")],
        )
        .await;
    assert_eq!(status(&r), 403);
    assert!(
        denied(&r).body["message"]
            .as_str()
            .unwrap()
            .contains("no organization nosuch")
    );
    let r = app
        .check(
            "/v1/function",
            &[("authorization", &dave), ("x-dispatch-org", "acme")],
        )
        .await;
    assert_eq!(code(&r), OK);
    assert_eq!(
        header(&upstream_headers(&r), "x-dispatch-org"),
        Some("acme")
    );
    // Created through the admin API: known at once (the "no" is forgotten).
    admin.org("nosuch").await.unwrap();
    let r = app
        .check(
            "/v1/function",
            &[("authorization", &dave), ("x-dispatch-org", "nosuch")],
        )
        .await;
    assert_eq!(code(&r), OK);
}

/// Item 6: a token naming critical extensions is refused (401).
#[tokio::test]
async fn tokens_with_crit_are_refused() {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let app = spawn_app_with(rbac()).await;
    world(&app).await;
    // A real signature over a header with `crit`.
    let header = serde_json::json!({"alg": "RS256", "kid": "k1", "typ": "JWT", "crit": ["urn:x"], "urn:x": 1});
    let claims = claims("alice");
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa.pem")).unwrap())
        .unwrap();
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &key,
        jsonwebtoken::Algorithm::RS256,
    )
    .unwrap();
    let t = format!("{signing_input}.{signature}");
    let r = app
        .check("/v1/function", &[("authorization", &bearer(&t))])
        .await;
    assert_eq!(status(&r), 401);
    assert!(
        denied(&r).body["message"]
            .as_str()
            .unwrap()
            .contains("crit")
    );
}
