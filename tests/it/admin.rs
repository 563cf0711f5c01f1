//! The admin API: who may do what, clear errors, transactions, the audit log.

use crate::common::{
    admin::{Admin, user_ref},
    *,
};
use dispatch_authz::proto::admin::{self as pb, role_binding::Subject};
use tonic::Code;

fn rbac() -> Options {
    Options {
        authorization: String::new(),
        ..Options::default()
    }
}

/// root (global admin); acme with its admin olivia (`iam:*` in acme) and a
/// developer dan (no iam); globex.
async fn setup(app: &TestApp) -> (Admin, Admin, Admin) {
    let mut root = app.bootstrap().await;
    root.org("acme").await.unwrap();
    root.org("globex").await.unwrap();
    root.role("acme", "org-admin", &["iam:*"]).await.unwrap();
    root.role("acme", "developer", &["function:*"])
        .await
        .unwrap();
    root.role("globex", "viewer", &["*:get"]).await.unwrap();
    for (subject, role) in [("olivia", "org-admin"), ("dan", "developer")] {
        app.add_user(subject, subject).await;
        root.member("acme", &user_ref(subject), true).await.unwrap();
        root.bind("acme", role, Subject::User(user_ref(subject)))
            .await
            .unwrap();
    }
    let olivia = Admin::connect(app, &token(&claims("olivia"))).await;
    let dan = Admin::connect(app, &token(&claims("dan"))).await;
    (root, olivia, dan)
}

/// How the audit log names a user of the test issuer.
async fn actor(app: &TestApp, subject: &str) -> String {
    use dispatch_authz::store::{UserAdmin, UserRef};
    let r = UserRef::parse(&user_ref(subject)).unwrap();
    format!("user:{}", app.store.get(&r).await.unwrap().unwrap().id)
}

fn code_of<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> (Code, String) {
    let status = result.expect_err("expected an error");
    (status.code(), status.message().to_owned())
}

#[tokio::test]
async fn a_non_admin_cannot_create_roles_or_touch_iam() {
    let app = spawn_app_with(rbac()).await;
    let (_, _, mut dan) = setup(&app).await;
    let (code, message) = code_of(dan.role("acme", "sneaky", &["*:*"]).await);
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(message.contains("iam:create in acme"), "{message}");
    assert_eq!(
        code_of(dan.member("acme", &user_ref("dan"), true).await).0,
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(
            dan.bind("acme", "org-admin", Subject::User(user_ref("dan")))
                .await
        )
        .0,
        Code::PermissionDenied,
        "no self-promotion"
    );
    // Regression: the subject was looked up before the caller was
    // authorized, so NOT_FOUND told anyone which users exist.
    let ghost = Subject::User(user_ref("ghost"));
    assert_eq!(
        code_of(dan.bind("acme", "org-admin", ghost.clone()).await).0,
        Code::PermissionDenied
    );
    let mut anonymous = Admin::connect(&app, "not-a-token").await;
    assert_eq!(
        code_of(anonymous.bind("acme", "org-admin", ghost).await).0,
        Code::Unauthenticated
    );
}

#[tokio::test]
async fn an_org_admin_works_in_their_org_only_and_never_globally() {
    let app = spawn_app_with(rbac()).await;
    let (mut root, mut olivia, _) = setup(&app).await;
    // In acme: fine, with permissions she holds herself.
    olivia.role("acme", "tester", &["iam:get"]).await.unwrap();
    olivia
        .bind("acme", "tester", Subject::User(user_ref("dan")))
        .await
        .unwrap();
    // A role granting what she does not hold: she may define it, not bind
    // it (she could bind it to a service account she creates and act as
    // that).
    olivia
        .role("acme", "deployer", &["function:get"])
        .await
        .unwrap();
    let (code, message) = code_of(
        olivia
            .bind("acme", "deployer", Subject::User(user_ref("dan")))
            .await,
    );
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(message.contains("which you do not hold"), "{message}");
    // Another org: refused.
    let (code, message) = code_of(olivia.role("globex", "x", &["*:*"]).await);
    assert_eq!(code, Code::PermissionDenied, "{message}");
    assert!(message.contains("in globex"), "{message}");
    // A global role: neither create one...
    let (code, message) = code_of(olivia.role("", "superuser", &["*:*"]).await);
    assert_eq!(code, Code::PermissionDenied);
    assert!(message.contains("global role"), "{message}");
    // ...nor grant an existing one (Dispatch's defect).
    root.role("", "auditor", &["*:get"]).await.unwrap();
    let (code, _) = code_of(
        olivia
            .bind("", "auditor", Subject::User(user_ref("dan")))
            .await,
    );
    assert_eq!(code, Code::PermissionDenied);
    // Users and organizations are global.
    let r = olivia.req(pb::SetUserEnabledRequest {
        user: user_ref("dan"),
        enabled: false,
    });
    assert_eq!(
        code_of(olivia.client.set_user_enabled(r).await).0,
        Code::PermissionDenied
    );
    assert_eq!(
        code_of(olivia.org("initech").await).0,
        Code::PermissionDenied
    );
    // An org role cannot be bound to a non-member (no cross-org grants).
    app.add_user("eve", "eve").await;
    root.member("globex", &user_ref("eve"), true).await.unwrap();
    let (code, message) = code_of(
        olivia
            .bind("acme", "tester", Subject::User(user_ref("eve")))
            .await,
    );
    assert_eq!(code, Code::FailedPrecondition, "{message}");
    assert!(
        message.contains("not a member of organization acme"),
        "{message}"
    );
}

#[tokio::test]
async fn errors_name_the_problem() {
    let app = spawn_app_with(rbac()).await;
    let (mut root, _, _) = setup(&app).await;
    let (code, message) = code_of(root.org("Not Valid").await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        message.starts_with("name: invalid organization"),
        "{message}"
    );
    let (code, message) = code_of(root.org("acme").await);
    assert_eq!(
        (code, message.as_str()),
        (Code::AlreadyExists, "organization acme already exists")
    );
    let (code, message) = code_of(root.role("acme", "r", &["function:fly"]).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.starts_with("permissions[0]"), "{message}");
    let (code, message) = code_of(root.role("initech", "r", &["*:get"]).await);
    assert_eq!(
        (code, message.as_str()),
        (Code::NotFound, "no organization initech")
    );
    let (code, _) = code_of(root.member("acme", "test:nobody", false).await);
    assert_eq!(code, Code::NotFound);
    let (code, message) = code_of(
        root.service_account("acme", "ci", &[("HS256", "ec256.pub.pem")])
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.starts_with("keys[0].algorithm"), "{message}");
    let (code, message) = code_of(
        root.service_account("acme", "ci", &[("ES256", "ec256.pem")])
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("private key"), "{message}");

    let unauthenticated = Admin::connect(&app, "not-a-token").await;
    let mut client = unauthenticated.client.clone();
    let (code, _) = code_of(
        client
            .list_organizations(pb::ListOrganizationsRequest {})
            .await,
    );
    assert_eq!(code, Code::Unauthenticated, "no token");
}

#[tokio::test]
async fn a_failed_write_leaves_nothing_behind() {
    let app = spawn_app_with(rbac()).await;
    let (mut root, _, _) = setup(&app).await;
    let before = root.audit("").await.len();
    // One good key and one bad one: the account must not be created.
    let r = root.req(pb::CreateServiceAccountRequest {
        org: "acme".into(),
        name: "ci".into(),
        keys: vec![
            pb::PublicKey {
                algorithm: "ES256".into(),
                pem: std::fs::read_to_string(fixture("ec256.pub.pem")).unwrap(),
                ..Default::default()
            },
            pb::PublicKey {
                algorithm: "RS256".into(),
                pem: "garbage".into(),
                ..Default::default()
            },
        ],
    });
    assert_eq!(
        code_of(root.client.create_service_account(r).await).0,
        Code::InvalidArgument
    );
    let r = root.req(pb::ServiceAccountRef {
        org: "acme".into(),
        name: "ci".into(),
    });
    assert_eq!(
        code_of(root.client.get_service_account(r).await).0,
        Code::NotFound
    );
    // A non-empty organization is not deleted, and keeps everything.
    let r = root.req(pb::OrganizationRef {
        name: "acme".into(),
    });
    let (code, message) = code_of(root.client.delete_organization(r).await);
    assert_eq!(code, Code::FailedPrecondition);
    assert!(message.contains("2 member(s), 2 role(s)"), "{message}");
    let r = root.req(pb::ListMembersRequest { org: "acme".into() });
    assert_eq!(
        root.client
            .list_members(r)
            .await
            .unwrap()
            .into_inner()
            .members
            .len(),
        2
    );
    assert_eq!(
        root.audit("").await.len(),
        before,
        "refused writes are not audited"
    );
}

#[tokio::test]
async fn every_write_is_in_the_audit_log_with_its_actor() {
    let app = spawn_app_with(rbac()).await;
    let (mut root, mut olivia, _) = setup(&app).await;
    let root_actor = actor(&app, "root").await;
    let olivia_actor = actor(&app, "olivia").await;

    olivia
        .role("acme", "tester", &["function:get"])
        .await
        .unwrap();
    olivia
        .service_account("acme", "ci", &[("ES256", "ec256.pub.pem")])
        .await
        .unwrap();
    root.set_user_enabled(&user_ref("dan"), false)
        .await
        .unwrap();

    let all = root.audit("").await;
    let actions: Vec<(&str, &str)> = all
        .iter()
        .rev()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    let expected = [
        ("user.add", "local:test"),
        ("bootstrap", "local:test"),
        ("organization.create", root_actor.as_str()),
        ("organization.create", root_actor.as_str()),
        ("role.create", root_actor.as_str()),
        ("role.create", root_actor.as_str()),
        ("role.create", root_actor.as_str()),
        ("user.add", "local:test"),
        ("member.add", root_actor.as_str()),
        ("rolebinding.create", root_actor.as_str()),
        ("user.add", "local:test"),
        ("member.add", root_actor.as_str()),
        ("rolebinding.create", root_actor.as_str()),
        ("role.create", olivia_actor.as_str()),
        ("serviceaccount.create", olivia_actor.as_str()),
        ("user.disable", root_actor.as_str()),
    ];
    assert_eq!(actions, expected);
    let disable = &all[0];
    assert!(
        disable.before.contains("\"enabled\":true"),
        "{}",
        disable.before
    );
    assert!(
        disable.after.contains("\"enabled\":false"),
        "{}",
        disable.after
    );
    // An org admin reads their org's entries, not others'.
    let acme = olivia.audit("acme").await;
    assert!(acme.iter().all(|e| e.org == "acme"));
    assert!(acme.iter().any(|e| e.action == "serviceaccount.create"));
    let r = olivia.req(pb::ListAuditLogRequest {
        org: String::new(),
        limit: 10,
    });
    assert_eq!(
        code_of(olivia.client.list_audit_log(r).await).0,
        Code::PermissionDenied
    );
}

/// Regression (issue 9, item 14): membership writes tell a caller without
/// rights nothing about which users exist, and an org admin nothing about
/// users outside their organization.
#[tokio::test]
async fn membership_writes_reveal_no_user() {
    let app = spawn_app_with(rbac()).await;
    let (mut root, mut olivia, mut dan) = setup(&app).await;
    app.add_user("outsider", "outsider").await;
    root.member("globex", &user_ref("outsider"), true)
        .await
        .unwrap();
    let remove = |org: &str, user: String| pb::RemoveMemberRequest {
        org: org.into(),
        user,
    };
    let mut answers = Vec::new();
    for user in [user_ref("outsider"), user_ref("ghost")] {
        let add = dan.member("acme", &user, false).await;
        let r = dan.req(remove("acme", user.clone()));
        let removed = dan.client.remove_member(r).await;
        answers.push((code_of(add), code_of(removed)));
    }
    assert_eq!(answers[0].0.0, Code::PermissionDenied);
    assert_eq!(
        answers[0], answers[1],
        "the same answer for a user and no user"
    );

    let mut answers = Vec::new();
    for (subject, user) in [
        ("outsider", user_ref("outsider")),
        ("ghost", user_ref("ghost")),
    ] {
        let r = olivia.req(remove("acme", user));
        let (code, message) = code_of(olivia.client.remove_member(r).await);
        answers.push((code, message.replace(subject, "USER")));
    }
    assert_eq!(answers[0].0, Code::NotFound);
    assert_eq!(
        answers[0], answers[1],
        "the same answer for a user and no user"
    );
}
