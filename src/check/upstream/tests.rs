use std::sync::Arc;

use super::*;
use crate::{
    check::request::ClientHeaders,
    domain::{Email, OrgName, RequestId, RoleName},
    policy::rbac::Allowed,
    store::{User, fixtures},
};

fn user() -> Arc<User> {
    Arc::new(User {
        email: Some(Email::parse("octo@example.com").unwrap()),
        ..fixtures::user("dex", "1", "octocat")
    })
}

fn request<'a>(headers: &[(&'a str, &'a str)]) -> RequestView<'a> {
    RequestView {
        method: "GET",
        host: "api.example.com",
        path: "/",
        request_id: RequestId::parse("req-1"),
        headers: ClientHeaders::new(headers.iter().copied()),
        budget: None,
        removals: Default::default(),
        trace: None,
    }
}

fn credentials() -> CredentialSettings {
    CredentialSettings {
        header: Some("x-forwarded-access-token".into()),
        cookie: Some("session".into()),
        max_token_bytes: 8192,
    }
}

fn headers(permit: &Permit, req: &RequestView<'_>) -> UpstreamHeaders {
    UpstreamRules::default().headers(permit, req, &credentials(), None)
}

fn subject(allowed: Option<Allowed>) -> (Arc<User>, Permit) {
    let u = user();
    let permit = Permit::Subject {
        who: Who::User(u.clone()),
        allowed,
    };
    (u, permit)
}

#[test]
fn an_allowed_user_gets_our_headers_and_forgeries_removed() {
    let req = request(&[
        ("x-dispatch-user", "mallory"),
        ("x-dispatch-user-id", "0"),
        ("x-dispatch-org", "evil"),
        ("X-Dispatch-Admin", "true"),
    ]);
    let (u, permit) = subject(None);
    let h = headers(&permit, &req);
    assert_eq!(
        owned(&h.set),
        vec![
            (names::USER, "octocat".to_owned()),
            (names::USER_ID, u.id.to_string()),
            (names::ISSUER, "dex".to_owned()),
            (names::EMAIL, "octo@example.com".to_owned()),
            (names::SUBJECT_KIND, "user".to_owned()),
            (names::REQUEST_ID, "req-1".to_owned()),
        ]
    );
    assert_eq!(h.remove, ["x-dispatch-admin", "x-dispatch-org"]);

    let (_, permit) = subject(Some(Allowed {
        org: OrgName::parse("acme").unwrap(),
        roles: vec![
            RoleName::parse("builder").unwrap(),
            RoleName::parse("viewer").unwrap(),
        ],
        groups: Vec::new(),
    }));
    let h = headers(&permit, &req);
    assert!(owned(&h.set).contains(&(names::ORG, "acme".to_owned())));
    assert!(owned(&h.set).contains(&(names::ROLES, "builder,viewer".to_owned())));
    assert_eq!(
        h.remove,
        ["x-dispatch-admin"],
        "a set name is never removed"
    );
}

#[test]
fn a_public_path_asserts_no_identity_and_strips_forgeries() {
    let req = request(&[
        ("x-dispatch-user", "mallory"),
        ("x-dispatch-request-id", "f"),
    ]);
    let h = headers(&Permit::PublicPath, &req);
    assert_eq!(owned(&h.set), vec![(names::REQUEST_ID, "req-1".to_owned())]);
    assert_eq!(h.remove, ["x-dispatch-user"]);
}

#[test]
fn without_a_request_id_a_forged_one_is_removed() {
    let mut req = request(&[("x-dispatch-request-id", "forged")]);
    req.request_id = None;
    let h = headers(&Permit::PublicPath, &req);
    assert!(h.set.is_empty());
    assert_eq!(h.remove, ["x-dispatch-request-id"]);
}

/// Regression (issue 9, item 4): underscore spellings of our names are
/// removed, even of a name we set (Envoy sees two different names).
#[test]
fn underscore_spellings_of_our_names_are_removed() {
    let req = request(&[
        ("x_dispatch_user", "mallory"),
        ("x-dispatch_org", "evil"),
        ("x_dispatch_project", "p"),
    ]);
    let (_, permit) = subject(None);
    let h = headers(&permit, &req);
    assert_eq!(
        h.remove,
        ["x-dispatch_org", "x_dispatch_project", "x_dispatch_user"]
    );
    assert!(h.set.iter().all(|(n, _)| !h.remove.iter().any(|r| r == n)));
}

/// Dispatch's client inputs pass by default; anything else of ours does
/// not, and identity names can never be made to pass.
#[test]
fn dispatch_inputs_pass_through_and_identity_names_never_do() {
    let req = request(&[
        ("x-dispatch-blocking", "true"),
        ("x-dispatch-project", "p1"),
        ("x-dispatch-other", "x"),
    ]);
    let h = headers(&Permit::PublicPath, &req);
    assert_eq!(h.remove, ["x-dispatch-other"]);

    let none = UpstreamRules::new(false, &[] as &[&str]).unwrap();
    let h = none.headers(&Permit::PublicPath, &req, &credentials(), None);
    assert_eq!(h.remove.len(), 3, "an empty list passes nothing");

    for bad in [
        "x-dispatch-user",
        "X-Dispatch-Org",
        "x-other",
        "x-dispatch-",
        "x_dispatch_a",
    ] {
        assert!(UpstreamRules::new(false, &[bad]).is_err(), "{bad} accepted");
    }
}

/// Regression (issue 9, item 5): the caller's credential does not reach
/// the upstream unless forwarding is configured.
#[test]
fn the_credential_is_removed_unless_forwarded() {
    let req = request(&[
        ("authorization", "Bearer t"),
        ("x_forwarded_access_token", "t"),
        ("cookie", "a=1; session=t; b=2"),
        ("accept", "*/*"),
    ]);
    let (_, permit) = subject(None);
    let h = headers(&permit, &req);
    assert_eq!(h.remove, ["authorization", "x_forwarded_access_token"]);
    assert!(owned(&h.set).contains(&("cookie", "a=1; b=2".to_owned())));

    let only = request(&[("cookie", "session=t")]);
    let h = headers(&permit, &only);
    assert_eq!(h.remove, ["cookie"]);
    assert!(!h.set.iter().any(|(n, _)| *n == "cookie"));

    let other = request(&[("cookie", "a=1")]);
    let h = headers(&permit, &other);
    assert!(h.remove.is_empty() && !h.set.iter().any(|(n, _)| *n == "cookie"));

    let forward = UpstreamRules::new(true, DEFAULT_PASSTHROUGH).unwrap();
    let h = forward.headers(&permit, &req, &credentials(), None);
    assert!(h.remove.is_empty(), "{:?}", h.remove);
    assert!(!h.set.iter().any(|(n, _)| *n == "cookie"));
}

/// The set headers as owned text, to compare with literals.
fn owned(set: &[(&'static str, HeaderText)]) -> Vec<(&'static str, String)> {
    set.iter().map(|(n, v)| (*n, v.to_string())).collect()
}

fn allowed_through(groups: &[&str]) -> Allowed {
    Allowed {
        org: OrgName::parse("acme").unwrap(),
        roles: vec![RoleName::parse("developer").unwrap()],
        groups: groups
            .iter()
            .map(|g| crate::domain::GroupName::parse(g).unwrap())
            .collect(),
    }
}

/// `x-dispatch-groups` is opt-in, and names the groups that granted the
/// call only when there are some (found unchecked by cargo-mutants).
#[test]
fn the_groups_header_is_set_only_when_asked_and_groups_granted() {
    let req = request(&[]);
    let group_header = |rules: &UpstreamRules, groups: &[&str]| {
        let (_, permit) = subject(Some(allowed_through(groups)));
        let h = rules.headers(&permit, &req, &credentials(), None);
        let found = h.set.iter().find(|(n, _)| *n == names::GROUPS);
        found.map(|(_, v)| v.to_string())
    };
    let on = UpstreamRules::default().with_groups_header(true);
    assert_eq!(
        group_header(&on, &["platform", "sre"]).as_deref(),
        Some("platform,sre")
    );
    assert_eq!(group_header(&on, &[]), None);
    let off = UpstreamRules::default();
    assert_eq!(group_header(&off, &["platform"]), None);
    assert_eq!(
        group_header(&on.with_groups_header(false), &["platform"]),
        None
    );
}

/// The client may send the organization it acts in and the configured
/// pass-through names, each in its canonical spelling only.
#[test]
fn client_inputs_are_the_org_and_the_passthrough_names_exactly() {
    let rules = UpstreamRules::default();
    for name in [
        "x-dispatch-org",
        "x-dispatch-blocking",
        "x-dispatch-project",
    ] {
        assert!(rules.is_client_input(name), "{name}");
    }
    for name in [
        "x_dispatch_org",
        "x-dispatch-user",
        "x-dispatch-other",
        "x-dispatch-orgs",
    ] {
        assert!(!rules.is_client_input(name), "{name}");
    }
    let none = UpstreamRules::new(false, &[] as &[&str]).unwrap();
    assert!(none.is_client_input("x-dispatch-org"));
    assert!(!none.is_client_input("x-dispatch-blocking"));
}

/// What the signed identity asserts: the subject and its source, the
/// organization and roles when roles granted the call, the dry-run reason,
/// the request id; nothing for a public path.
#[test]
fn the_assertion_says_who_where_and_why() {
    let req = request(&[]);
    assert!(assertion(&Permit::PublicPath, &req).is_none());
    let (user, permit) = subject(Some(allowed_through(&[])));
    let a = assertion(&permit, &req).unwrap();
    assert_eq!(a.subject, crate::domain::SubjectRef::User(user.id));
    assert_eq!((a.login.as_ref(), a.source), ("octocat", "dex"));
    assert_eq!(a.email, Some("octo@example.com"));
    assert_eq!(a.org.map(|o| o.as_str()), Some("acme"));
    assert_eq!(a.roles.len(), 1);
    assert_eq!((a.would_deny, a.request_id), (None, Some("req-1")));
    let would = Permit::WouldDeny {
        who: Who::User(user),
        denial: crate::check::Denial::new(crate::check::DenialKind::Forbidden, "no_role", "m"),
    };
    let a = assertion(&would, &req).unwrap();
    assert_eq!((a.would_deny, a.org), (Some("no_role"), None));
}

#[test]
fn lists_are_joined_with_commas() {
    assert_eq!(joined::<&str>(&[]), "");
    assert_eq!(joined(&["a"]), "a");
    assert_eq!(joined(&["a", "b", "c"]), "a,b,c");
}
