//! `dispatch-authz explain` (issue 14): the binary decides one request with
//! the server's configuration, store and code, and prints every step; its
//! verdict is the server's, compared here case by case.

use std::process::Command;

use serde_json::Value;

use crate::common::*;

const BIN: &str = env!("CARGO_BIN_EXE_dispatch-authz");

struct Explained {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn explain(app: &TestApp, args: &[&str]) -> Explained {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(app.dir.path().join("dispatch-authz.toml"))
        .arg("explain")
        .args(args)
        .output()
        .unwrap();
    Explained {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn has(out: &Explained, text: &str) {
    assert!(
        out.stdout.contains(text),
        "{text:?} not in:\n{}{}",
        out.stdout,
        out.stderr
    );
}

#[tokio::test]
async fn explain_prints_every_step_and_decides_as_the_server() {
    let app = spawn_app_with(Options {
        authorization: String::new(),
        ..Default::default()
    })
    .await;
    app.acme_with_alice().await;
    let alice = token(&claims("alice"));
    let auth = bearer(&alice);
    let server = async |path: &str, org: Option<&str>, auth: &str| {
        let mut headers = vec![("authorization", auth)];
        if let Some(org) = org {
            headers.push(("x-dispatch-org", org));
        }
        code(&app.check(path, &headers).await)
    };

    // Granted: the route, the organization, the granting permission.
    let out = explain(
        &app,
        &[
            "--user",
            "test:alice",
            "--org",
            "acme",
            "GET",
            "/v1/function/f",
        ],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    has(&out, "resource function");
    has(&out, "test:alice, as named (no token verified)");
    has(&out, "user alice (");
    has(&out, "acme (x-dispatch-org); a member");
    has(&out, "acme/developer: function:* grants function:get");
    has(&out, "allow; upstream gets x-dispatch-user: alice");
    assert_eq!(server("/v1/function/f", Some("acme"), &auth).await, OK);

    // The same through a token, verified as a check verifies it.
    let out = explain(
        &app,
        &["--token", &alice, "--org", "acme", "GET", "/v1/function/f"],
    );
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    has(&out, "token verified: test:alice");
    assert!(!out.stdout.contains(&alice), "the token is never printed");

    // Refused: which role was considered and why it did not grant.
    let out = explain(
        &app,
        &[
            "--user",
            "test:alice",
            "--org",
            "acme",
            "DELETE",
            "/v1/secret/s",
        ],
    );
    assert_eq!(out.code, Some(2));
    has(&out, "action        delete");
    has(
        &out,
        "acme/developer: no permission grants secret:delete (has function:*)",
    );
    has(&out, "deny 403 not_granted");
    assert_eq!(
        server("/v1/secret/s", Some("acme"), &auth).await,
        PERMISSION_DENIED
    );

    // Not a member, in another organization.
    let out = explain(
        &app,
        &[
            "--user",
            "test:bob",
            "--org",
            "acme",
            "GET",
            "/v1/function/f",
        ],
    );
    assert_eq!(out.code, Some(2));
    has(&out, "acme (x-dispatch-org); not a member");
    has(&out, "deny 403 not_a_member");
    let bob = bearer(&token(&claims("bob")));
    assert_eq!(
        server("/v1/function/f", Some("acme"), &bob).await,
        PERMISSION_DENIED
    );

    // A path with two readings stops at the route.
    let out = explain(
        &app,
        &["--user", "test:alice", "GET", "/v1/function/%2e%2e/secret"],
    );
    assert_eq!(out.code, Some(2));
    has(&out, "deny 400 ambiguous_path");
    assert!(!out.stdout.contains("subject "), "{}", out.stdout);
    assert_eq!(
        server("/v1/function/%2e%2e/secret", None, &auth).await,
        INVALID_ARGUMENT
    );

    // A public path needs no caller... but one must still be named.
    let out = explain(&app, &["--user", "test:nobody", "GET", "/healthz"]);
    assert_eq!(out.code, Some(0));
    has(&out, "a public path");

    // JSON, for scripts.
    let out = explain(
        &app,
        &[
            "--json",
            "--user",
            "test:alice",
            "--org",
            "acme",
            "GET",
            "/v1/function/f",
        ],
    );
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["result"]["decision"], "allow");
    assert_eq!(v["result"]["headers"]["x-dispatch-org"], "acme");
    assert!(
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["phase"] == "role")
    );

    // Bad input: named, exit 1.
    let out = explain(&app, &["--user", "alice", "GET", "/v1/function/f"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("--user \"alice\": expected SOURCE:SUBJECT"),
        "{}",
        out.stderr
    );
    let out = explain(&app, &["GET", "/v1/function/f"]);
    assert_eq!(out.code, Some(2), "clap's usage error");
    assert!(out.stderr.contains("--token"), "{}", out.stderr);
}

/// Issue 15: with a token, explain shows what the source says (the link
/// keys) and the linked group that granted; named without a token, no
/// linked group can match.
#[tokio::test]
async fn explain_shows_the_links_a_token_carries_and_the_group_they_match() {
    use dispatch_authz::proto::admin::{self as pb, role_binding::Subject};
    let app = spawn_app_with(Options {
        authorization: String::new(),
        ..Default::default()
    })
    .await;
    let (mut admin, _) = app.acme_with_alice().await;
    let r = admin.req(pb::GroupRef {
        org: "acme".into(),
        name: "sre".into(),
    });
    admin.client.create_group(r).await.unwrap();
    admin
        .bind("acme", "developer", Subject::Group("acme/sre".into()))
        .await
        .unwrap();
    let r = admin.req(pb::LinkGroupRequest {
        org: "acme".into(),
        name: "sre".into(),
        link: "test:groups=sre".into(),
    });
    admin.client.link_group(r).await.unwrap();
    let bob = token(&crate::rbac::with_groups(claims("bob"), &["sre"]));
    let args = ["--org", "acme", "GET", "/v1/function/f"];
    let out = explain(&app, &[&["--token", bob.as_str()][..], &args].concat());
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    has(&out, "groups=sre");
    has(&out, "through group sre");
    let out = explain(&app, &[&["--user", "test:bob"][..], &args].concat());
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
}
