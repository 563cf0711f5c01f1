use std::sync::Arc;

use super::*;
use crate::{
    check::request::ClientHeaders,
    domain::{Email, IssuerName, Login, OrgName, RequestId, RoleName, Subject, UserId},
    policy::rbac::Allowed,
    store::User,
};

fn user() -> Arc<User> {
    Arc::new(User {
        id: UserId::new(),
        issuer: IssuerName::parse("dex").unwrap(),
        subject: Subject::parse("1").unwrap(),
        login: Login::parse("octocat").unwrap(),
        email: Some(Email::parse("octo@example.com").unwrap()),
        display_name: None,
        enabled: true,
        created_at: 0,
        updated_at: 0,
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
