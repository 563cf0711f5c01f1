use super::*;

fn role(scope: &str, name: &str, permissions: &[&str]) -> Arc<Role> {
    Arc::new(Role {
        name: crate::domain::RoleName::parse(name).unwrap(),
        scope: match scope {
            "" => Scope::Global,
            org => Scope::Org(OrgName::parse(org).unwrap()),
        },
        permissions: permissions
            .iter()
            .map(|p| Permission::parse(p).unwrap())
            .collect(),
    })
}

fn caller(member_of: &[&str], roles: Vec<Arc<Role>>) -> Authority {
    Authority::Caller(Arc::new(Grants {
        enabled: true,
        default_org: None,
        member_of: member_of
            .iter()
            .map(|o| OrgName::parse(o).unwrap())
            .collect(),
        roles: roles.into(),
        groups: Box::default(),
    }))
}

/// Regression (issue 9, item 1): an org admin has no authority over a
/// subject holding a global role, nor over a role granting what they lack.
#[test]
fn authority_over_roles() {
    let org_admin = caller(
        &["acme"],
        vec![role("acme", "admin", &["iam:*", "function:*"])],
    );
    let global_iam = caller(&[], vec![role("", "iam", &["iam:*"])]);
    let root = caller(&[], vec![role("", "admin", &["*:*"])]);
    let global_deployer = role("", "deployer", &["function:*"]);
    let acme_dev = role("acme", "dev", &["function:get", "function:create"]);
    let acme_all = role("acme", "all", &["*:*"]);
    let acme_secrets = role("acme", "secrets", &["secret:get"]);
    let globex_dev = role("globex", "dev", &["function:get"]);

    let cases: &[(&Authority, &Arc<Role>, bool)] = &[
        (&org_admin, &acme_dev, true),
        (&org_admin, &acme_all, false),
        (&org_admin, &acme_secrets, false),
        (&org_admin, &globex_dev, false),
        (&org_admin, &global_deployer, false),
        (&global_iam, &global_deployer, false),
        (&global_iam, &acme_dev, false),
        (&root, &global_deployer, true),
        (&root, &acme_all, true),
        (&root, &globex_dev, true),
        (&Authority::Local, &acme_all, true),
    ];
    for (i, (who, r, want)) in cases.iter().enumerate() {
        assert_eq!(
            who.over_role(r, Action::Update).is_ok(),
            *want,
            "case {i}: {}",
            r.name
        );
    }
    let held = [acme_dev.clone(), global_deployer.clone()];
    assert_eq!(
        org_admin.over_holder(&held, Action::Update),
        Err(Overreach::NoGlobalIam {
            role: "deployer".into(),
            action: Action::Update
        })
    );
    assert!(org_admin.over_holder(&held[..1], Action::Update).is_ok());
}

/// `function:*` is held through four separate permissions too; a wildcard
/// resource only through a wildcard.
#[test]
fn wildcards_are_held_only_when_covered() {
    let split = caller(
        &["acme"],
        vec![role(
            "acme",
            "r",
            &[
                "iam:*",
                "function:get",
                "function:create",
                "function:update",
                "function:delete",
            ],
        )],
    );
    assert!(
        split
            .over_role(&role("acme", "w", &["function:*"]), Action::Create)
            .is_ok()
    );
    assert!(
        split
            .over_role(&role("acme", "w", &["*:get"]), Action::Create)
            .is_err()
    );
    let disabled = Authority::Caller(Arc::new(Grants::default()));
    assert!(
        disabled
            .over_role(&role("acme", "w", &["function:get"]), Action::Create)
            .is_err()
    );
}

/// Holding every permission of an organization's role is not enough: iam
/// for the action is needed there too (found by cargo-mutants: with the
/// iam check gone, no unit test failed).
#[test]
fn an_organization_role_needs_iam_there_besides_its_permissions() {
    let developer = caller(&["acme"], vec![role("acme", "developer", &["function:*"])]);
    let acme_dev = role("acme", "dev", &["function:get"]);
    assert_eq!(
        developer.over_role(&acme_dev, Action::Create),
        Err(Overreach::NoIamInOrg {
            org: OrgName::parse("acme").unwrap(),
            action: Action::Create
        })
    );
    let creator = caller(&["acme"], vec![role("acme", "iam", &["iam:create"])]);
    let acme = OrgName::parse("acme").unwrap();
    let globex = OrgName::parse("globex").unwrap();
    assert!(creator.in_org(&acme, Action::Create).is_ok());
    assert!(
        creator.in_org(&acme, Action::Delete).is_err(),
        "another action"
    );
    assert!(
        creator.in_org(&globex, Action::Create).is_err(),
        "another org"
    );
    assert!(Authority::Local.in_org(&globex, Action::Delete).is_ok());
}

/// Local access (the CLI on the database file) has no grants to show.
#[test]
fn only_a_caller_has_grants() {
    assert!(Authority::Local.grants().is_none());
    let grants = caller(&["acme"], Vec::new()).grants().cloned().unwrap();
    assert!(grants.member_of.contains(&OrgName::parse("acme").unwrap()));
}
