//! Roles and organizations through the real Check: a world built with the
//! admin API, then a table of (subject, x-dispatch-org, method, host, path)
//! → expected decision and headers.

use crate::common::{
    admin::{Admin, user_ref},
    *,
};
use dispatch_authz::proto::admin::role_binding::Subject;
use jsonwebtoken::Algorithm;
use serde_json::json;

/// RBAC (the default mode) with Dispatch's routes plus two of our own.
pub(crate) fn rbac() -> Options {
    Options {
        authorization: r#"
[[authorization.routes]]
prefix = "/api/orders"
resource = "orders"

[[authorization.routes]]
prefix = "/api"
resource = "shop"
host = "shop.test"
"#
        .into(),
        ..Options::default()
    }
}

/// The world of the table:
/// - acme: alice (default org; developer), bob (viewer; no default org),
///   erin (member, no role), frank (developer; also in globex as viewer),
///   service account acme/ci (builder);
/// - globex: carol (default org; admin);
/// - dave holds the global role auditor (`*:get`) and is a member of none;
/// - root is the bootstrap global admin (`*:*`).
pub(crate) async fn world(app: &TestApp) -> Admin {
    let mut admin = app.bootstrap().await;
    for org in ["acme", "globex"] {
        admin.org(org).await.unwrap();
    }
    let developer = ["function:*", "image:get", "baseimage:get", "orders:get"];
    admin.role("acme", "developer", &developer).await.unwrap();
    admin.role("acme", "viewer", &["*:get"]).await.unwrap();
    let builder = ["image:create", "baseimage:create", "function:update"];
    admin.role("acme", "builder", &builder).await.unwrap();
    admin.role("globex", "admin", &["*:*"]).await.unwrap();
    admin.role("globex", "viewer", &["*:get"]).await.unwrap();
    admin.role("", "auditor", &["*:get"]).await.unwrap();
    for (subject, login) in [
        ("alice", "alice"),
        ("bob", "bob"),
        ("carol", "carol"),
        ("dave", "dave"),
        ("erin", "erin"),
        ("frank", "frank"),
    ] {
        app.add_user(subject, login).await;
    }
    let memberships = [
        ("acme", "alice", true),
        ("acme", "bob", false),
        ("acme", "erin", true),
        ("acme", "frank", false),
        ("globex", "frank", false),
        ("globex", "carol", true),
    ];
    for (org, user, default) in memberships {
        admin.member(org, &user_ref(user), default).await.unwrap();
    }
    let bindings = [
        ("acme", "developer", "alice"),
        ("acme", "viewer", "bob"),
        ("acme", "developer", "frank"),
        ("globex", "viewer", "frank"),
        ("globex", "admin", "carol"),
        ("", "auditor", "dave"),
    ];
    for (org, role, user) in bindings {
        admin
            .bind(org, role, Subject::User(user_ref(user)))
            .await
            .unwrap();
    }
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

/// A service account's self-signed token (Dispatch's shape: no sub, no aud).
fn sa_token(iss: &str, alg: Algorithm, key: &str, lifetime: u64) -> String {
    let now = now();
    sign(
        alg,
        key,
        None,
        &json!({"iss": iss, "iat": now - 60, "exp": now + lifetime}),
    )
}

/// A row's request headers: its credential, forged identity headers (which
/// must be overwritten) and `x-dispatch-org` unless the row names none.
pub(crate) fn row_headers<'a>(authorization: &'a str, org: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut headers = vec![
        ("authorization", authorization),
        ("x-dispatch-user", "mallory"),
        ("x-dispatch-roles", "admin"),
    ];
    if !org.is_empty() {
        headers.push(("x-dispatch-org", org));
    }
    headers
}

pub(crate) fn credential(who: &str) -> String {
    match who {
        "ci" => sa_token("acme/ci", Algorithm::ES256, "ec256.pem", 600),
        // Their identity provider's `groups` claim (issue 15): lena is in
        // sre, which acme links a group to; mona only in look-alikes.
        "lena" => token(&with_groups(claims("lena"), &["sre", "oncall"])),
        "mona" => token(&with_groups(claims("mona"), &["SRE", "sre-bots", "sr"])),
        user => token(&claims(user)),
    }
}

/// `claims` with a `groups` claim.
pub(crate) fn with_groups(mut claims: serde_json::Value, groups: &[&str]) -> serde_json::Value {
    claims["groups"] = json!(groups);
    claims
}

/// What a row expects: an allow in `org` with `roles`, or a denial with an
/// HTTP status and the reason's message fragment.
#[derive(Clone)]
pub(crate) enum Want {
    Allow(&'static str, &'static str),
    Deny(i32, &'static str),
}
use Want::{Allow, Deny};

#[tokio::test]
async fn the_decision_table() {
    let app = spawn_app_with(rbac()).await;
    world(&app).await;
    // Through the wire, over a world built with the admin API: a row of
    // each kind. The whole table runs in `pipeline.rs`.
    #[rustfmt::skip]
    let table: &[(&str, &str, &str, &str, &str, Want)] = &[
        // who, x-dispatch-org, method, host, path → want
        ("alice", "", "GET", "api.test", "/v1/function/hello", Allow("acme", "developer")),
        ("alice", "", "POST", "api.test", "/v1/image", Deny(403, "no role grants create on image")),
        ("alice", "globex", "GET", "api.test", "/v1/function", Deny(403, "not a member of organization globex")),
        ("alice", "ACME", "GET", "api.test", "/v1/function", Deny(400, "x-dispatch-org")),
        ("alice", "", "GET", "api.test", "/v1/function/%2e%2e/secret", Deny(400, "")),
        ("bob", "acme", "GET", "api.test", "/v1/secret/db", Allow("acme", "viewer")),
        ("dave", "acme", "GET", "api.test", "/v1/function", Allow("acme", "auditor")),
        ("frank", "globex", "GET", "api.test", "/v1/event/subscriptions", Allow("globex", "viewer")),
        ("root", "acme", "DELETE", "api.test", "/v1/serviceinstance/x", Allow("acme", "admin")),
        ("root", "", "GET", "api.test", "/v1/function", Deny(403, "no organization")),
        ("ci", "", "POST", "api.test", "/v1/image", Allow("acme", "builder")),
        ("ci", "globex", "POST", "api.test", "/v1/image", Deny(403, "not a member of organization globex")),
        ("nobody", "acme", "GET", "api.test", "/v1/function", Deny(403, "not registered")),
    ];
    let mut failures = Vec::new();
    for (i, (who, org, method, host, path, want)) in table.iter().enumerate() {
        let auth = bearer(&credential(who));
        let headers = row_headers(&auth, org);
        let r = app.check_on(method, host, path, &headers).await;
        let row = format!("row {i}: {who} {org:?} {method} {host}{path}");
        match want {
            Allow(want_org, want_roles) => {
                if code(&r) != OK {
                    failures.push(format!("{row}: denied {:?}", denied(&r).body));
                    continue;
                }
                let h = upstream_headers(&r);
                let (user, kind) = match *who {
                    "ci" => ("acme/ci", "service-account"),
                    user => (user, "user"),
                };
                let got = (
                    header(&h, "x-dispatch-org"),
                    header(&h, "x-dispatch-roles"),
                    header(&h, "x-dispatch-user"),
                    header(&h, "x-dispatch-subject-kind"),
                );
                let expected = (Some(*want_org), Some(*want_roles), Some(user), Some(kind));
                if got != expected {
                    failures.push(format!("{row}: headers {got:?}, want {expected:?}"));
                }
                // The forged x-dispatch-* were overwritten; only the
                // caller's credential is removed.
                if removed(&r) != ["authorization"] {
                    failures.push(format!("{row}: removes {:?}", removed(&r)));
                }
            }
            Deny(status, fragment) => {
                if code(&r) == OK {
                    failures.push(format!("{row}: allowed, want {status}"));
                    continue;
                }
                let d = denied(&r);
                let message = d.body["message"].as_str().unwrap_or_default();
                if d.http != *status || !message.contains(fragment) {
                    failures.push(format!(
                        "{row}: {} {message:?}, want {status} containing {fragment:?}",
                        d.http
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn x_dispatch_org_sent_twice_is_refused() {
    let app = spawn_app_with(rbac()).await;
    world(&app).await;
    let auth = bearer(&credential("frank"));
    let r = app
        .check_on(
            "GET",
            "api.test",
            "/v1/function",
            &[("authorization", &auth), ("x-dispatch-org", "acme,globex")],
        )
        .await;
    assert_eq!(denied(&r).http, 400);
}

#[tokio::test]
async fn a_removed_binding_or_disabled_user_is_denied_on_the_very_next_check() {
    let app = spawn_app_with(rbac()).await;
    let mut admin = world(&app).await;
    let auth = bearer(&credential("alice"));
    let headers = [("authorization", auth.as_str())];
    let check = || app.check_on("GET", "api.test", "/v1/function", &headers);
    assert_eq!(code(&check().await), OK, "cached now");

    admin
        .unbind("acme", "developer", Subject::User(user_ref("alice")))
        .await
        .unwrap();
    assert_eq!(denied(&check().await).http, 403, "binding removed");

    admin
        .bind("acme", "developer", Subject::User(user_ref("alice")))
        .await
        .unwrap();
    assert_eq!(code(&check().await), OK, "binding restored");

    admin
        .set_user_enabled(&user_ref("alice"), false)
        .await
        .unwrap();
    let d = denied(&check().await);
    assert_eq!(
        (d.http, d.body["message"].as_str()),
        (403, Some("user is disabled"))
    );
}

#[tokio::test]
async fn registered_mode_allows_any_enabled_user_without_roles() {
    let app = spawn_app().await;
    app.add_user("erin", "erin").await;
    let r = app
        .check_on(
            "DELETE",
            "api.test",
            "/anything",
            &[
                ("authorization", &bearer(&credential("erin"))),
                ("x-dispatch-org", "evil"),
            ],
        )
        .await;
    assert_eq!(code(&r), OK);
    let h = upstream_headers(&r);
    assert_eq!(header(&h, "x-dispatch-subject-kind"), Some("user"));
    assert_eq!(header(&h, "x-dispatch-org"), None);
    assert_eq!(
        removed(&r),
        ["authorization", "x-dispatch-org"],
        "an org we did not verify is removed"
    );
}

#[tokio::test]
async fn a_grants_lookup_that_fails_is_a_503_denial() {
    let app = spawn_app_with(rbac()).await;
    let mut admin = world(&app).await;
    let auth = bearer(&credential("alice"));
    let headers = [("authorization", auth.as_str())];
    let check = || app.check_on("GET", "api.test", "/v1/function", &headers);
    assert_eq!(code(&check().await), OK, "user and grants cached");
    // A write that invalidates alice's grants (not her user entry), then a
    // database that cannot answer the grants query.
    admin
        .unbind("acme", "developer", Subject::User(user_ref("alice")))
        .await
        .unwrap();
    sqlx::query("ALTER TABLE role_bindings RENAME TO role_bindings_gone")
        .execute(app.store.pool())
        .await
        .unwrap();
    let r = check().await;
    assert_eq!(code(&r), UNAVAILABLE);
    let d = denied(&r);
    assert_eq!(d.http, 503);
    assert!(
        d.headers.contains(&("retry-after".into(), "5".into())),
        "{:?}",
        d.headers
    );
}
