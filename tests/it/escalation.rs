//! No admin write lets its caller act with permissions the caller does not
//! hold (issue 9, items 1 and 2): the review's examples, then a property
//! over generated worlds, through the real admin API and the real Check.

use std::collections::BTreeSet;

use crate::common::{
    admin::{Admin, user_ref},
    *,
};
use dispatch_authz::proto::admin::{self as pb, role_binding::Subject};
use jsonwebtoken::Algorithm;
use proptest::prelude::*;
use serde_json::json;
use tonic::Code;

fn rbac() -> Options {
    Options {
        authorization: String::new(),
        ..Options::default()
    }
}

/// A service account's token signed with `key` (ES256 fixture or ES384).
fn sa_token(iss: &str, alg: Algorithm, key: &str) -> String {
    let now = now();
    sign(
        alg,
        key,
        None,
        &json!({"iss": iss, "iat": now - 5, "exp": now + 300}),
    )
}

fn denied_code<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    r.expect_err("must be refused").code()
}

/// Item 1, the review's example: olivia (`iam:*` in acme) must not make
/// herself acme/deployer, which holds a global role.
#[tokio::test]
async fn an_org_admin_cannot_take_over_a_service_account_with_a_global_role() {
    let app = spawn_app_with(rbac()).await;
    let mut root = app.bootstrap().await;
    root.org("acme").await.unwrap();
    root.role("acme", "org-admin", &["iam:*"]).await.unwrap();
    root.role("", "deployer", &["function:*"]).await.unwrap();
    app.add_user("olivia", "olivia").await;
    root.member("acme", &user_ref("olivia"), true)
        .await
        .unwrap();
    root.bind("acme", "org-admin", Subject::User(user_ref("olivia")))
        .await
        .unwrap();
    let account = root
        .service_account("acme", "deployer", &[("ES384", "ec384.pub.pem")])
        .await
        .unwrap();
    root.bind(
        "",
        "deployer",
        Subject::ServiceAccount("acme/deployer".into()),
    )
    .await
    .unwrap();
    let mut olivia = Admin::connect(&app, &token(&claims("olivia"))).await;

    let refused = olivia.add_account_key("acme", "deployer").await;
    let message = refused.as_ref().unwrap_err().message().to_owned();
    assert_eq!(denied_code(refused), Code::PermissionDenied);
    assert!(message.contains("global role deployer"), "{message}");
    assert_eq!(
        denied_code(olivia.set_account_enabled("acme", "deployer", false).await),
        Code::PermissionDenied
    );
    assert_eq!(
        denied_code(
            olivia
                .remove_account_key("acme", "deployer", &account.keys[0].id)
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        denied_code(olivia.delete_account("acme", "deployer").await),
        Code::PermissionDenied
    );
    // Nothing changed, and her own key does not work.
    let t = sa_token("acme/deployer", Algorithm::ES256, "ec256.pem");
    let r = app
        .check_on(
            "POST",
            "api.test",
            "/v1/function",
            &[("authorization", &bearer(&t)), ("x-dispatch-org", "acme")],
        )
        .await;
    assert_eq!(code(&r), UNAUTHENTICATED);

    // An account whose roles she covers is hers to manage.
    olivia
        .service_account("acme", "reader", &[("ES384", "ec384.pub.pem")])
        .await
        .unwrap();
    olivia
        .bind(
            "acme",
            "org-admin",
            Subject::ServiceAccount("acme/reader".into()),
        )
        .await
        .unwrap();
    olivia.add_account_key("acme", "reader").await.unwrap();
}

/// Item 2: a default organization set in acme must not silently clear the
/// user's default in globex, and every changed row is audited.
#[tokio::test]
async fn an_org_admin_cannot_move_a_users_default_out_of_another_org() {
    let app = spawn_app_with(rbac()).await;
    let mut root = app.bootstrap().await;
    for org in ["acme", "globex"] {
        root.org(org).await.unwrap();
    }
    root.role("acme", "org-admin", &["iam:*"]).await.unwrap();
    for user in ["olivia", "alice"] {
        app.add_user(user, user).await;
    }
    root.member("acme", &user_ref("olivia"), true)
        .await
        .unwrap();
    root.bind("acme", "org-admin", Subject::User(user_ref("olivia")))
        .await
        .unwrap();
    root.member("globex", &user_ref("alice"), true)
        .await
        .unwrap();
    let mut olivia = Admin::connect(&app, &token(&claims("olivia"))).await;

    let refused = olivia.member("acme", &user_ref("alice"), true).await;
    let message = refused.as_ref().unwrap_err().message().to_owned();
    assert_eq!(denied_code(refused), Code::PermissionDenied);
    assert!(message.contains("default organization"), "{message}");
    assert!(
        !message.contains("globex"),
        "names no other organization: {message}"
    );
    // Not the default: fine, and globex stays alice's default.
    olivia
        .member("acme", &user_ref("alice"), false)
        .await
        .unwrap();
    let members = |org: &'static str| {
        let app = &app;
        async move {
            let mut root = Admin::connect(app, &token(&claims("root"))).await;
            let r = root.req(pb::ListMembersRequest { org: org.into() });
            root.client
                .list_members(r)
                .await
                .unwrap()
                .into_inner()
                .members
        }
    };
    let default_in = |members: &[pb::Member]| {
        members
            .iter()
            .find(|m| m.user.as_ref().unwrap().login == "alice")
            .map(|m| m.default)
    };
    assert_eq!(default_in(&members("globex").await), Some(true));
    assert_eq!(default_in(&members("acme").await), Some(false));

    // A global admin may move it; both rows are in the audit log, each in
    // its organization.
    root.member("acme", &user_ref("alice"), true).await.unwrap();
    assert_eq!(default_in(&members("globex").await), Some(false));
    let globex = root.audit("globex").await;
    let latest = &globex[0];
    assert_eq!(latest.action, "member.update", "{globex:?}");
    assert!(
        latest.before.contains("true") && latest.after.contains("false"),
        "{latest:?}"
    );
    assert_eq!(root.audit("acme").await[0].action, "member.add");
}

// ---- the property ----------------------------------------------------------

const ORGS: [&str; 2] = ["acme", "globex"];
const PERMISSIONS: [&str; 7] = [
    "function:get",
    "function:*",
    "secret:get",
    "iam:*",
    "iam:update",
    "*:get",
    "*:*",
];

/// A role of the generated world: scope (`None` global) and permissions.
#[derive(Debug, Clone)]
struct GenRole {
    org: Option<usize>,
    permissions: Vec<&'static str>,
}

/// A write the caller attempts.
#[derive(Debug, Clone)]
enum Write {
    AddKey(usize),
    RemoveRootKey(usize),
    SetEnabled(usize, bool),
    DeleteAccount(usize),
    Bind(usize, Target),
    Unbind(usize, Target),
    CreateRole(Option<usize>, Vec<&'static str>),
    CreateAccount(usize),
    AddMember(usize, bool),
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Caller,
    Account(usize),
}

#[derive(Debug, Clone)]
struct World {
    roles: Vec<GenRole>,
    caller_orgs: Vec<bool>,
    caller_roles: Vec<usize>,
    /// One service account per organization (`<org>/bot`), its roles.
    account_roles: [Vec<usize>; 2],
    writes: Vec<Write>,
}

fn org_choice() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![Just(None), (0..2usize).prop_map(Some)]
}

fn permissions() -> impl Strategy<Value = Vec<&'static str>> {
    prop::sample::subsequence(PERMISSIONS.to_vec(), 1..3)
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![Just(Target::Caller), (0..2usize).prop_map(Target::Account)]
}

fn write(roles: usize) -> impl Strategy<Value = Write> {
    prop_oneof![
        (0..2usize).prop_map(Write::AddKey),
        (0..2usize).prop_map(Write::RemoveRootKey),
        (0..2usize, any::<bool>()).prop_map(|(a, e)| Write::SetEnabled(a, e)),
        (0..2usize).prop_map(Write::DeleteAccount),
        (0..roles + 1, target()).prop_map(|(r, t)| Write::Bind(r, t)),
        (0..roles, target()).prop_map(|(r, t)| Write::Unbind(r, t)),
        (org_choice(), permissions()).prop_map(|(o, p)| Write::CreateRole(o, p)),
        (0..2usize).prop_map(Write::CreateAccount),
        (0..2usize, any::<bool>()).prop_map(|(o, d)| Write::AddMember(o, d)),
    ]
}

/// Worlds where the caller is an admin of something (role `r0`: `iam:*`
/// and maybe more, in acme or globally, always bound to the caller), with
/// three more random roles: the interesting case, since without `iam` every
/// write is refused at the door.
fn world() -> impl Strategy<Value = World> {
    let admin = (
        prop_oneof![3 => Just(Some(0usize)), 1 => Just(None)],
        prop::sample::subsequence(PERMISSIONS.to_vec(), 0..2),
    )
        .prop_map(|(org, extra)| {
            let mut permissions = vec!["iam:*"];
            permissions.extend(extra.into_iter().filter(|p| *p != "iam:*"));
            GenRole { org, permissions }
        });
    let others = prop::collection::vec(
        (org_choice(), permissions()).prop_map(|(org, permissions)| GenRole { org, permissions }),
        3,
    );
    (
        admin,
        others,
        any::<bool>(),
        prop::sample::subsequence((1..4usize).collect::<Vec<_>>(), 0..3),
        prop::sample::subsequence((0..4usize).collect::<Vec<_>>(), 0..3),
        prop::sample::subsequence((0..4usize).collect::<Vec<_>>(), 0..3),
        prop::collection::vec(write(4), 1..4),
    )
        .prop_map(|(admin, others, in_globex, more, a0, a1, writes)| World {
            roles: std::iter::once(admin).chain(others).collect(),
            caller_orgs: vec![true, in_globex],
            caller_roles: std::iter::once(0).chain(more).collect(),
            account_roles: [a0, a1],
            writes,
        })
}

fn role_ref(roles: &[GenRole], i: usize) -> (String, String) {
    match roles.get(i) {
        Some(r) => (
            r.org.map(|o| ORGS[o].to_owned()).unwrap_or_default(),
            format!("r{i}"),
        ),
        // One past the pool: the role the caller created last, if any.
        None => (String::new(), format!("r{i}")),
    }
}

fn subject(target: Target, accounts: &[String]) -> Subject {
    match target {
        Target::Caller => Subject::User(user_ref("caller")),
        Target::Account(a) => Subject::ServiceAccount(accounts[a].clone()),
    }
}

/// Builds the world as root; bindings the model allows only are made
/// (an org role to a member, or to an account of its org).
async fn build(app: &TestApp, w: &World) -> Admin {
    let mut root = app.bootstrap().await;
    for org in ORGS {
        root.org(org).await.unwrap();
    }
    for (i, r) in w.roles.iter().enumerate() {
        let org = r.org.map(|o| ORGS[o]).unwrap_or("");
        root.role(org, &format!("r{i}"), &r.permissions)
            .await
            .unwrap();
    }
    app.add_user("caller", "caller").await;
    for (o, member) in w.caller_orgs.iter().enumerate() {
        if *member {
            root.member(ORGS[o], &user_ref("caller"), false)
                .await
                .unwrap();
        }
    }
    for &i in &w.caller_roles {
        let (org, name) = role_ref(&w.roles, i);
        let _ = root
            .bind(&org, &name, Subject::User(user_ref("caller")))
            .await;
    }
    for (a, org) in ORGS.iter().enumerate() {
        root.service_account(org, "bot", &[("ES384", "ec384.pub.pem")])
            .await
            .unwrap();
        for &i in &w.account_roles[a] {
            let (role_org, name) = role_ref(&w.roles, i);
            let _ = root
                .bind(
                    &role_org,
                    &name,
                    Subject::ServiceAccount(format!("{org}/bot")),
                )
                .await;
        }
    }
    root
}

const METHODS: [(&str, &str); 4] = [
    ("GET", "get"),
    ("POST", "create"),
    ("PUT", "update"),
    ("DELETE", "delete"),
];

/// Every `(org, resource, action)` Check allows a token.
async fn capability(app: &TestApp, token: &str) -> BTreeSet<String> {
    let mut allowed = BTreeSet::new();
    let auth = bearer(token);
    for org in ORGS {
        for resource in ["function", "secret", "iam"] {
            for (method, action) in METHODS {
                let path = format!("/v1/{resource}");
                let r = app
                    .check_on(
                        method,
                        "api.test",
                        &path,
                        &[("authorization", &auth), ("x-dispatch-org", org)],
                    )
                    .await;
                if code(&r) == OK {
                    allowed.insert(format!("{org}:{resource}:{action}"));
                }
            }
        }
    }
    allowed
}

/// Runs the caller's writes; returns the service accounts (issuers) whose
/// key the caller now holds.
async fn attempt(app: &TestApp, w: &World) -> Vec<String> {
    let mut caller = Admin::connect(app, &token(&claims("caller"))).await;
    let mut root = Admin::connect(app, &token(&claims("root"))).await;
    let mut accounts: Vec<String> = ORGS.iter().map(|o| format!("{o}/bot")).collect();
    let mut keyed = Vec::new();
    let mut roles = w.roles.clone();
    for write in &w.writes {
        match write {
            Write::AddKey(a) => {
                let (org, name) = accounts[*a].split_once('/').unwrap();
                if caller.add_account_key(org, name).await.is_ok() {
                    keyed.push(accounts[*a].clone());
                }
            }
            Write::RemoveRootKey(a) => {
                let (org, name) = accounts[*a].split_once('/').unwrap();
                let r = root.req(pb::ServiceAccountRef {
                    org: org.into(),
                    name: name.into(),
                });
                if let Ok(account) = root.client.get_service_account(r).await {
                    for key in &account.get_ref().keys {
                        if key.algorithm == "ES384" {
                            let _ = caller.remove_account_key(org, name, &key.id).await;
                        }
                    }
                }
            }
            Write::SetEnabled(a, enabled) => {
                let (org, name) = accounts[*a].split_once('/').unwrap();
                let _ = caller.set_account_enabled(org, name, *enabled).await;
            }
            Write::DeleteAccount(a) => {
                let (org, name) = accounts[*a].split_once('/').unwrap();
                let _ = caller.delete_account(org, name).await;
            }
            Write::Bind(r, t) => {
                let (org, name) = role_ref(&roles, *r);
                let _ = caller.bind(&org, &name, subject(*t, &accounts)).await;
            }
            Write::Unbind(r, t) => {
                let (org, name) = role_ref(&roles, *r);
                let _ = caller.unbind(&org, &name, subject(*t, &accounts)).await;
            }
            Write::CreateRole(org, permissions) => {
                let i = roles.len();
                let org_name = org.map(|o| ORGS[o]).unwrap_or("");
                if caller
                    .role(org_name, &format!("r{i}"), permissions)
                    .await
                    .is_ok()
                {
                    roles.push(GenRole {
                        org: *org,
                        permissions: permissions.clone(),
                    });
                }
            }
            Write::CreateAccount(o) => {
                let name = format!("mine{}", accounts.len());
                if caller
                    .service_account(ORGS[*o], &name, &[("ES256", "ec256.pub.pem")])
                    .await
                    .is_ok()
                {
                    // Later writes aim at the account the caller made.
                    let issuer = format!("{}/{name}", ORGS[*o]);
                    keyed.push(issuer.clone());
                    accounts[*o] = issuer;
                }
            }
            Write::AddMember(o, default) => {
                let _ = caller.member(ORGS[*o], &user_ref("caller"), *default).await;
            }
        }
    }
    keyed
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Whatever the world and whatever the caller writes, what the caller
    /// can do afterwards — as themselves, or as any service account whose
    /// key they hold — is within what they could do before.
    #[test]
    fn no_write_lets_its_caller_act_beyond_their_rights(w in world()) {
        let (before, after) = runtime().block_on(async {
            let app = spawn_app_with(rbac()).await;
            build(&app, &w).await;
            let before = capability(&app, &token(&claims("caller"))).await;
            let keyed = attempt(&app, &w).await;
            let mut after = capability(&app, &token(&claims("caller"))).await;
            for issuer in keyed {
                let t = sa_token(&issuer, Algorithm::ES256, "ec256.pem");
                after.extend(capability(&app, &t).await);
            }
            (before, after)
        });
        let gained: Vec<_> = after.difference(&before).collect();
        prop_assert!(gained.is_empty(), "the caller gained {:?}", gained);
    }
}
