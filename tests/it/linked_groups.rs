//! Groups linked to an identity source (issue 15, item 2): a GitHub team
//! read from the GitHub API with the token, or a value of an issuer's
//! group claim. Membership comes from the verified identity only; a source
//! dropping a member takes effect when the token's cached verification
//! ends, an admin's unlinking on the very next check.

use std::time::{Duration, Instant};

use dispatch_authz::proto::admin::{self as pb, role_binding::Subject};
use serde_json::json;
use tonic::Code;

use crate::common::{
    admin::{Admin, user_ref},
    fake_github::{FakeGithub, account},
    fake_oidc::FakeOidc,
    *,
};

const GITHUB_TOKEN: &str = "gho_linkedGroupsToken00000000000000000000";

/// acme's group `NAME`, holding acme's developer role (`function:*`),
/// linked to `link`.
async fn linked_group(admin: &mut Admin, name: &str, link: &str) {
    let r = admin.req(pb::GroupRef {
        org: "acme".into(),
        name: name.into(),
    });
    admin.client.create_group(r).await.unwrap();
    let group = Subject::Group(format!("acme/{name}"));
    admin.bind("acme", "developer", group).await.unwrap();
    let linked = set_link(admin, name, link).await.unwrap();
    assert_eq!(linked.link, link);
}

async fn set_link(admin: &mut Admin, name: &str, link: &str) -> Result<pb::Group, tonic::Status> {
    let r = admin.req(pb::LinkGroupRequest {
        org: "acme".into(),
        name: name.into(),
        link: link.into(),
    });
    admin.client.link_group(r).await.map(|r| r.into_inner())
}

/// Polls until `check` answers `want`; the time it took (at most 10 s).
async fn until(want: i32, check: impl AsyncFn() -> i32) -> Duration {
    let started = Instant::now();
    loop {
        let got = check().await;
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still {got}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_github_team_gives_its_roles_until_github_drops_the_member_and_the_cache_ends() {
    let github = FakeGithub::start().await;
    let mut octocat = account(583231, "octocat");
    // GitHub spells the organization as its owner chose; links are lower case.
    octocat.teams = vec![("Acme".into(), "platform".into())];
    github.add_token(GITHUB_TOKEN, octocat);
    let app = spawn_app_with(Options {
        authorization: String::new(),
        extra: "groups_header = true",
        sources: format!(
            "\n[github]\napi_url = \"{}\"\ncache_ttl_secs = 2\nread_teams = true\n",
            github.url
        ),
        ..Default::default()
    })
    .await;
    let (mut admin, _) = app.acme_with_alice().await;
    app.add_user_of("github", "583231", "octocat").await;
    let auth = bearer(GITHUB_TOKEN);
    let in_acme = [("authorization", auth.as_str()), ("x-dispatch-org", "acme")];
    let check = async || code(&app.check("/v1/function/f", &in_acme).await);
    assert_eq!(check().await, PERMISSION_DENIED, "no link yet");

    linked_group(&mut admin, "platform", "github:team=acme/platform").await;
    let r = app.check("/v1/function/f", &in_acme).await;
    assert_eq!(code(&r), OK, "the link counts at once: {r:?}");
    let set = upstream_headers(&r);
    assert_eq!(header(&set, "x-dispatch-groups"), Some("platform"));
    assert_eq!(header(&set, "x-dispatch-roles"), Some("developer"));

    // GitHub takes octocat out of the team: the token's cached answer
    // still says member until the cache's 2 s end, then GitHub is asked.
    let dropped = Instant::now();
    github.set_teams(583231, &[("acme", "sre")]);
    assert_eq!(check().await, OK, "within the token's cache life");
    until(PERMISSION_DENIED, check).await;
    assert!(
        dropped.elapsed() >= Duration::from_millis(900),
        "refused before the cached answer could end: {:?}",
        dropped.elapsed()
    );

    // Back in the team: allowed once the cache ends again. An admin's
    // unlinking takes effect on the very next check, whatever is cached.
    github.set_teams(583231, &[("acme", "platform")]);
    until(OK, check).await;
    set_link(&mut admin, "platform", "").await.unwrap();
    assert_eq!(check().await, PERMISSION_DENIED, "unlinked: at once");
    let audit = admin.audit("acme").await;
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"group.link"), "{actions:?}");
    assert!(actions.contains(&"group.unlink"), "{actions:?}");
}

/// Without `read_teams`, no team is read and a team link gives nothing.
#[tokio::test]
async fn teams_are_read_only_when_configured() {
    let github = FakeGithub::start().await;
    let mut octocat = account(583231, "octocat");
    octocat.teams = vec![("acme".into(), "platform".into())];
    github.add_token(GITHUB_TOKEN, octocat);
    let app = spawn_app_with(Options {
        authorization: String::new(),
        sources: format!("\n[github]\napi_url = \"{}\"\n", github.url),
        ..Default::default()
    })
    .await;
    let (mut admin, _) = app.acme_with_alice().await;
    app.add_user_of("github", "583231", "octocat").await;
    linked_group(&mut admin, "platform", "github:team=acme/platform").await;
    let auth = bearer(GITHUB_TOKEN);
    let in_acme = [("authorization", auth.as_str()), ("x-dispatch-org", "acme")];
    let r = app.check("/v1/function/f", &in_acme).await;
    assert_eq!(code(&r), PERMISSION_DENIED);
    assert_eq!(github.calls(), 1, "GET /user only");
}

#[tokio::test]
async fn an_oidc_group_claim_gives_its_roles_to_the_tokens_that_carry_it() {
    let provider = FakeOidc::start().await;
    provider.add_key("a", "rsa.pem");
    let app = spawn_app_with(Options {
        authorization: String::new(),
        extra: "groups_header = true",
        sources: format!(
            r#"
[[issuers]]
name = "dex"
issuer = "{url}"
audiences = ["{AUD}"]
discovery = true
group_claims = ["groups"]
"#,
            url = provider.url
        ),
        ..Default::default()
    })
    .await;
    let (mut admin, _) = app.acme_with_alice().await;
    app.add_user_of("dex", "dora", "dora").await;
    linked_group(&mut admin, "sre", "dex:groups=sre").await;
    let ask = async |groups: serde_json::Value| {
        let token = provider.token_with("a", "dora", json!({ "groups": groups }));
        let auth = bearer(&token);
        let headers = [("authorization", auth.as_str()), ("x-dispatch-org", "acme")];
        app.check("/v1/function/f", &headers).await
    };
    until(OK, async || code(&ask(json!(["dev", "sre"])).await)).await;
    let r = ask(json!("sre")).await;
    assert_eq!(code(&r), OK, "a single string counts as one value");
    assert_eq!(
        header(&upstream_headers(&r), "x-dispatch-groups"),
        Some("sre")
    );
    // Values that only look alike, or none: not a member of acme.
    for groups in [json!(["SRE", "sre-team", "sr"]), json!([]), json!(null)] {
        let r = ask(groups.clone()).await;
        assert_eq!(code(&r), PERMISSION_DENIED, "{groups}");
        assert!(
            denied(&r)
                .body
                .to_string()
                .contains("not a member of organization acme")
        );
    }
    // A claim that cannot be read fully refuses the token.
    let r = ask(json!(["sre", 7])).await;
    assert_eq!(code(&r), UNAUTHENTICATED);
    assert!(
        denied(&r).body.to_string().contains("groups"),
        "{}",
        denied(&r).body
    );
    // Another source's token with the same value: no.
    app.add_user("dora", "dora-test").await;
    let test_token = token(&crate::rbac::with_groups(claims("dora"), &["sre"]));
    let auth = bearer(&test_token);
    let headers = [("authorization", auth.as_str()), ("x-dispatch-org", "acme")];
    assert_eq!(
        code(&app.check("/v1/function/f", &headers).await),
        PERMISSION_DENIED
    );
}

/// A forged `x-dispatch-groups` or a header naming a team proves nothing.
#[tokio::test]
async fn nothing_the_client_writes_makes_it_a_member() {
    let app = spawn_app_with(Options {
        authorization: String::new(),
        extra: "groups_header = true",
        ..Default::default()
    })
    .await;
    let (mut admin, _) = app.acme_with_alice().await;
    app.add_user("carol", "carol").await;
    linked_group(&mut admin, "sre", "test:groups=sre").await;
    let auth = bearer(&token(&claims("carol")));
    let forged = [
        ("authorization", auth.as_str()),
        ("x-dispatch-org", "acme"),
        ("x-dispatch-groups", "sre"),
        ("groups", "sre"),
        ("x-forwarded-groups", "sre"),
    ];
    let r = app.check("/v1/function/f", &forged).await;
    assert_ne!(code(&r), OK, "{r:?}");
}

/// Linking hands the group's roles to whoever the source names: it needs
/// authority over every role bound to the group, as adding members does.
#[tokio::test]
async fn linking_a_group_needs_authority_over_its_roles() {
    let app = spawn_app_with(Options {
        authorization: String::new(),
        ..Default::default()
    })
    .await;
    let (mut admin, _) = app.acme_with_alice().await;
    admin.role("acme", "iam-only", &["iam:*"]).await.unwrap();
    app.add_user("mallory", "mallory").await;
    admin
        .member("acme", &user_ref("mallory"), true)
        .await
        .unwrap();
    admin
        .bind("acme", "iam-only", Subject::User(user_ref("mallory")))
        .await
        .unwrap();
    linked_group(&mut admin, "platform", "test:groups=platform").await;
    let mut mallory = Admin::connect(&app, &token(&claims("mallory"))).await;
    // Her own token says `interns`: linking developers to it would make
    // her one. Refused, and so is unlinking (taking roles away).
    for link in ["test:groups=interns", ""] {
        let refused = set_link(&mut mallory, "platform", link).await.unwrap_err();
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        assert!(refused.message().contains("function:*"), "{refused:?}");
    }
    let r = admin.req(pb::GroupRef {
        org: "acme".into(),
        name: "platform".into(),
    });
    let group = admin.client.get_group(r).await.unwrap().into_inner();
    assert_eq!(group.link, "test:groups=platform", "nothing written");
    let interns = token(&crate::rbac::with_groups(claims("mallory"), &["interns"]));
    let auth = bearer(&interns);
    let r = app
        .check("/v1/function/f", &[("authorization", auth.as_str())])
        .await;
    assert_eq!(code(&r), PERMISSION_DENIED);
    // A malformed link is refused with its reason.
    let refused = set_link(&mut admin, "platform", "team=acme")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("SOURCE:CLAIM=VALUE"),
        "{refused:?}"
    );
}
