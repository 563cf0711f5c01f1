//! The decision table: (subject, x-dispatch-org, method, path) → decision.

use std::sync::Arc;

use super::*;
use crate::policy::{RequestPath, RouteMap};

fn org(name: &str) -> OrgName {
    OrgName::parse(name).unwrap()
}

fn role(name: &str, scope: Option<&str>, permissions: &[&str]) -> Arc<Role> {
    Arc::new(Role {
        name: RoleName::parse(name).unwrap(),
        scope: scope.map_or(Scope::Global, |o| Scope::Org(org(o))),
        permissions: permissions
            .iter()
            .map(|p| Permission::parse(p).unwrap())
            .collect(),
    })
}

fn grants(
    enabled: bool,
    default: Option<&str>,
    member_of: &[&str],
    roles: Vec<Arc<Role>>,
) -> Grants {
    Grants {
        enabled,
        default_org: default.map(org),
        member_of: member_of.iter().map(|o| org(o)).collect(),
        roles: roles.into(),
        groups: Box::default(),
    }
}

fn group(org_name: &str, name: &str, roles: Vec<Arc<Role>>) -> Arc<GroupGrant> {
    Arc::new(GroupGrant {
        org: org(org_name),
        name: GroupName::parse(name).unwrap(),
        roles: roles.into(),
    })
}

fn with_groups(grants: Grants, groups: Vec<Arc<GroupGrant>>) -> Grants {
    Grants {
        groups: groups.into(),
        ..grants
    }
}

fn subject(name: &str) -> Grants {
    let developer = role(
        "developer",
        Some("acme"),
        &["function:*", "runs:*", "image:get", "baseimage:get"],
    );
    let viewer = role("viewer", Some("beta"), &["*:get"]);
    let deployer = role(
        "deployer",
        Some("acme"),
        &[
            "function:create",
            "function:update",
            "image:*",
            "baseimage:*",
        ],
    );
    let iam_admin = role("iam-admin", Some("beta"), &["iam:*"]);
    let admin = role("admin", None, &["*:*"]);
    match name {
        "alice" => grants(true, Some("acme"), &["acme"], vec![developer]),
        "bob" => grants(true, Some("acme"), &["acme", "beta"], vec![viewer]),
        "root" => grants(true, None, &[], vec![admin]),
        "carol" => grants(false, Some("acme"), &["acme"], vec![developer]),
        "dave" => grants(true, Some("acme"), &["acme"], vec![]),
        "svc" => grants(true, Some("acme"), &["acme"], vec![deployer]),
        // A role bound in an org the subject is no longer a member of.
        "eve" => grants(
            true,
            None,
            &["beta"],
            vec![iam_admin, role("developer", Some("acme"), &["*:*"])],
        ),
        // In acme only through a group bound to acme's developer role.
        "gina" => with_groups(
            grants(true, Some("acme"), &[], vec![]),
            vec![group("acme", "platform", vec![developer.clone()])],
        ),
        // A member with a role of their own, and a group's on top.
        "hank" => with_groups(
            grants(true, Some("acme"), &["acme"], vec![deployer]),
            vec![group(
                "acme",
                "readers",
                vec![role("reader", Some("acme"), &["*:get"])],
            )],
        ),
        // A group of beta: nothing in acme.
        "ivan" => with_groups(
            grants(true, None, &[], vec![]),
            vec![group("beta", "ops", vec![viewer])],
        ),
        other => panic!("unknown subject {other}"),
    }
}

#[derive(Debug, PartialEq)]
enum Want {
    Allow(String, Vec<String>),
    Disabled,
    NoOrg,
    NotAMember,
    NotGranted,
    /// No resource (unmatched route) or no action (unknown method).
    NoQuestion,
}

fn decide(who: &str, org_header: Option<&str>, method: &str, path: &str) -> Want {
    let routes = RouteMap::dispatch();
    let Some(action) = Action::from_method(method) else {
        return Want::NoQuestion;
    };
    let path = RequestPath::parse(path).unwrap();
    let Some(resource) = routes.resource("api.example.com", &path) else {
        return Want::NoQuestion;
    };
    let header = org_header.map(org);
    match subject(who).decide(header.as_ref(), resource, action) {
        Ok(allowed) => Want::Allow(
            allowed.org.to_string(),
            allowed.roles.iter().map(|r| r.to_string()).collect(),
        ),
        Err(Refused::Disabled) => Want::Disabled,
        Err(Refused::NoOrg) => Want::NoOrg,
        Err(Refused::NotAMember(_)) => Want::NotAMember,
        Err(Refused::NotGranted { .. }) => Want::NotGranted,
    }
}

#[allow(non_snake_case)]
fn Allow(org: &str, roles: &[&str]) -> Want {
    Want::Allow(
        org.to_owned(),
        roles.iter().map(|r| (*r).to_owned()).collect(),
    )
}

#[test]
fn the_decision_table() {
    use Want::{Disabled, NoOrg, NoQuestion, NotAMember, NotGranted};
    #[rustfmt::skip]
    let rows: &[(&str, Option<&str>, &str, &str, Want)] = &[
        // A developer in their default org.
        ("alice", None, "GET", "/v1/function", Allow("acme", &["developer"])),
        ("alice", None, "POST", "/v1/function", Allow("acme", &["developer"])),
        ("alice", None, "DELETE", "/v1/function/hello", Allow("acme", &["developer"])),
        ("alice", Some("acme"), "POST", "/v1/runs?functionName=f", Allow("acme", &["developer"])),
        // Images (roadmap 1.4): read-only for developers.
        ("alice", None, "GET", "/v1/image/py3", Allow("acme", &["developer"])),
        ("alice", None, "POST", "/v1/image", NotGranted),
        ("alice", None, "GET", "/v1/baseimage", Allow("acme", &["developer"])),
        ("alice", None, "DELETE", "/v1/baseimage/python3", NotGranted),
        ("alice", None, "GET", "/v1/secret/db", NotGranted),
        ("alice", None, "GET", "/v1/iam/policy", NotGranted),
        // Cross-org attempts.
        ("alice", Some("beta"), "GET", "/v1/function", NotAMember),
        ("alice", Some("globex"), "GET", "/v1/function", NotAMember),
        // A member of two orgs: roles apply only where they are bound.
        ("bob", Some("beta"), "GET", "/v1/secret", Allow("beta", &["viewer"])),
        ("bob", Some("beta"), "PUT", "/v1/secret/x", NotGranted),
        ("bob", None, "GET", "/v1/function", NotGranted),
        ("bob", Some("acme"), "GET", "/v1/function", NotGranted),
        // A global role: any org, member or not, every resource.
        ("root", Some("acme"), "DELETE", "/v1/iam/policy/x", Allow("acme", &["admin"])),
        ("root", Some("globex"), "POST", "/v1/baseimage", Allow("globex", &["admin"])),
        ("root", None, "GET", "/v1/function", NoOrg),
        // Disabled subjects are denied whatever they hold.
        ("carol", None, "GET", "/v1/function", Disabled),
        // Members without roles can do nothing.
        ("dave", None, "GET", "/v1/function", NotGranted),
        ("dave", Some("acme"), "GET", "/v1/event", NotGranted),
        // A service account's narrow role.
        ("svc", None, "POST", "/v1/function", Allow("acme", &["deployer"])),
        ("svc", None, "PATCH", "/v1/function/f", Allow("acme", &["deployer"])),
        ("svc", None, "DELETE", "/v1/function/f", NotGranted),
        ("svc", None, "GET", "/v1/function", NotGranted),
        ("svc", None, "POST", "/v1/baseimage", Allow("acme", &["deployer"])),
        // A stale binding in an org the subject left does not count.
        ("eve", Some("acme"), "GET", "/v1/function", NotAMember),
        ("eve", Some("beta"), "POST", "/v1/iam/serviceaccount", Allow("beta", &["iam-admin"])),
        ("eve", Some("beta"), "GET", "/v1/function", NotGranted),
        ("eve", None, "GET", "/v1/iam", NoOrg),
        // Groups (roadmap 1.3): a group of an org makes one a member there,
        // and its roles are held there, beside one's own.
        ("gina", None, "POST", "/v1/function", Allow("acme", &["developer"])),
        ("gina", Some("acme"), "GET", "/v1/secret/db", NotGranted),
        ("gina", Some("beta"), "GET", "/v1/function", NotAMember),
        ("hank", None, "GET", "/v1/secret/db", Allow("acme", &["deployer", "reader"])),
        ("hank", None, "POST", "/v1/function", Allow("acme", &["deployer", "reader"])),
        ("hank", None, "DELETE", "/v1/function/f", NotGranted),
        ("ivan", Some("beta"), "GET", "/v1/function", Allow("beta", &["viewer"])),
        ("ivan", Some("acme"), "GET", "/v1/function", NotAMember),
        ("ivan", None, "GET", "/v1/function", NoOrg),
        // Unmatched routes and unknown methods never reach RBAC.
        ("root", Some("acme"), "GET", "/v1/functions", NoQuestion),
        ("root", Some("acme"), "GET", "/admin", NoQuestion),
        ("root", Some("acme"), "OPTIONS", "/v1/function", NoQuestion),
        ("root", Some("acme"), "TRACE", "/v1/function", NoQuestion),
    ];
    for (who, org_header, method, path, want) in rows {
        assert_eq!(
            &decide(who, *org_header, method, path),
            want,
            "{who} {org_header:?} {method} {path}"
        );
    }
}

/// The groups that mattered: those whose roles granted the request.
#[test]
fn an_allow_names_the_groups_whose_roles_granted_it() {
    let groups = |who: &str, resource: &str, action| {
        let allowed = subject(who).decide(None, resource, action).unwrap();
        allowed
            .groups
            .iter()
            .map(|g| g.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(groups("gina", "function", Action::Create), ["platform"]);
    assert_eq!(groups("hank", "secret", Action::Get), ["readers"]);
    // Granted by hank's own role: no group mattered.
    assert!(groups("hank", "function", Action::Create).is_empty());
    assert!(groups("alice", "function", Action::Get).is_empty());
}

#[test]
fn permissions_parse_with_wildcards() {
    assert!(
        Permission::parse("function:get")
            .unwrap()
            .grants("function", Action::Get)
    );
    assert!(
        !Permission::parse("function:get")
            .unwrap()
            .grants("function", Action::Create)
    );
    assert!(
        Permission::parse("*:get")
            .unwrap()
            .grants("iam", Action::Get)
    );
    assert!(
        Permission::parse("iam:*")
            .unwrap()
            .grants("iam", Action::Delete)
    );
    for bad in [
        "function",
        "function:read",
        ":get",
        "Func:get",
        "a b:get",
        "a.b:get",
    ] {
        assert!(Permission::parse(bad).is_none(), "{bad}");
    }
    // A resource may hold '-', '_' and digits (found unchecked by
    // cargo-mutants).
    for resource in ["base-image", "base_image", "v2"] {
        let permission = Permission::parse(&format!("{resource}:delete")).unwrap();
        assert!(permission.grants(resource, Action::Delete), "{resource}");
        assert_eq!(permission.resource_str(), resource);
    }
}

/// `explain`'s role-by-role account agrees with the decision itself, for
/// every subject of the table, organization, resource and action.
#[test]
fn verdicts_agree_with_the_decision() {
    let actions = [Action::Get, Action::Create, Action::Update, Action::Delete];
    for who in [
        "alice", "bob", "root", "carol", "dave", "svc", "eve", "gina", "hank", "ivan",
    ] {
        let grants = subject(who);
        for o in ["acme", "beta"] {
            for resource in ["function", "image", "iam", "secret"] {
                for action in actions {
                    let verdicts = grants.verdicts(&org(o), resource, action);
                    let granted = verdicts.iter().any(|v| v.applies && v.granting.is_some());
                    let member = grants.belongs_to(&org(o))
                        || grants.roles.iter().any(|r| r.scope == Scope::Global);
                    let decided = grants.decide(Some(&org(o)), resource, action).is_ok();
                    assert_eq!(
                        decided,
                        grants.enabled && member && granted,
                        "{who} {o} {resource}:{action}"
                    );
                }
            }
        }
    }
}

/// Linked groups (issue 15): matched by source and exact key, added once
/// to the subject's own grants, and never enabling a disabled subject.
#[test]
fn linked_groups_match_their_source_and_key_exactly() {
    use crate::domain::{GroupLink, IssuerName, LinkKey};
    let developer = role("developer", Some("acme"), &["function:*"]);
    let platform = group("acme", "platform", vec![developer]);
    let link = GroupLink::parse("github:team=acme/platform").unwrap();
    let linked = LinkedGroups::new([(link.clone(), platform.clone())]);
    let github = IssuerName::parse("github").unwrap();
    let dex = IssuerName::parse("dex").unwrap();
    let key = |text: &str| {
        let (claim, value) = text.split_once('=').unwrap();
        LinkKey::new(claim, value).unwrap()
    };
    let found = linked.matching(&github, &[key("team=acme/platform")]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0], platform);
    for (issuer, keys) in [
        (&dex, vec![key("team=acme/platform")]),
        (&github, vec![key("team=acme/Platform")]),
        (&github, vec![key("team=acme/platform-x")]),
        (&github, vec![key("groups=acme/platform")]),
        (&github, vec![]),
    ] {
        assert!(
            linked.matching(issuer, &keys).is_empty(),
            "{issuer} {keys:?}"
        );
    }

    let own = grants(true, None, &[], vec![]);
    let with = own.with_linked(vec![platform.clone(), platform.clone()]);
    assert_eq!(with.groups.len(), 1, "added once");
    let allowed = with
        .decide(Some(&org("acme")), "function", Action::Create)
        .unwrap();
    assert_eq!(allowed.groups, [GroupName::parse("platform").unwrap()]);
    let already =
        with_groups(own.clone(), vec![platform.clone()]).with_linked(vec![platform.clone()]);
    assert_eq!(
        already.groups.len(),
        1,
        "a database member is not counted twice"
    );
    let disabled = grants(false, None, &[], vec![]).with_linked(vec![platform.clone()]);
    assert_eq!(
        disabled.decide(Some(&org("acme")), "function", Action::Create),
        Err(Refused::Disabled)
    );
    // Groups of the same name in two organizations, or two names in one,
    // are two groups (found unchecked by cargo-mutants).
    let viewer = role("viewer", Some("globex"), &["*:get"]);
    let globex_platform = group("globex", "platform", vec![viewer]);
    let acme_sre = group("acme", "sre", vec![]);
    let both = own.with_linked(vec![platform, globex_platform, acme_sre]);
    assert_eq!(both.groups.len(), 3);
    assert!(linked.matching(&dex, &[]).is_empty() && !linked.is_empty());
    assert!(LinkedGroups::new([]).is_empty());
}
