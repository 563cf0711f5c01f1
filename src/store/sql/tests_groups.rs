//! Groups in the store (issue 15): grants through groups, their removal,
//! the rule against escalation through groups, and what each write says
//! is stale.

use super::test_world::{actor, org, role, user};
use super::*;
use crate::{policy::authority::Authority, store::sql::test_backends::on_both_backends};

fn group(name: &str) -> GroupName {
    GroupName::parse(name).unwrap()
}

/// acme with a `developer` role and a `platform` group bound to it.
async fn world(store: &SqlStore) -> Role {
    store.create_org(&actor(), &org("acme")).await.unwrap();
    store.create_org(&actor(), &org("globex")).await.unwrap();
    let developer = role(Some("acme"), "developer", &["function:*"]);
    store.create_role(&actor(), &developer).await.unwrap();
    store
        .create_group(&actor(), &org("acme"), &group("platform"))
        .await
        .unwrap();
    let binding = GroupBinding {
        role: RoleKey::of(&developer),
        group: group("platform"),
    };
    let stale = store
        .bind_group_role(&actor(), &org("acme"), &binding)
        .await
        .unwrap();
    assert!(stale.is_empty(), "no member yet");
    developer
}

async fn a_group_member_holds_its_roles_until_removed(store: SqlStore) {
    let developer = world(&store).await;
    let alice = user(&store, "alice").await;
    let subject = SubjectRef::User(alice.id);
    let acme = org("acme");
    store
        .add_group_member(&actor(), &acme, &group("platform"), subject)
        .await
        .unwrap();
    let grants = store.load_grants(subject).await.unwrap();
    assert!(grants.member_of.is_empty(), "no membership of its own");
    assert!(grants.belongs_to(&acme), "a member through the group");
    let allowed = grants
        .decide(Some(&acme), "function", Action::Create)
        .unwrap();
    assert_eq!(allowed.groups, [group("platform")]);
    assert_eq!(*grants.groups[0].roles[0], developer);

    store
        .remove_group_member(&actor(), &acme, &group("platform"), subject)
        .await
        .unwrap();
    let grants = store.load_grants(subject).await.unwrap();
    assert!(grants.groups.is_empty());
    assert!(!grants.belongs_to(&acme));
}

async fn writes_name_the_members_they_change(store: SqlStore) {
    let developer = world(&store).await;
    let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
    let acme = org("acme");
    for u in [&alice, &bob] {
        store
            .add_group_member(&actor(), &acme, &group("platform"), SubjectRef::User(u.id))
            .await
            .unwrap();
    }
    let members = |mut v: Vec<SubjectRef>| {
        v.sort();
        v
    };
    let both = members(vec![SubjectRef::User(alice.id), SubjectRef::User(bob.id)]);
    let binding = GroupBinding {
        role: RoleKey::of(&developer),
        group: group("platform"),
    };
    let stale = store
        .unbind_group_role(&actor(), &acme, &binding)
        .await
        .unwrap();
    assert_eq!(members(stale), both);
    store
        .bind_group_role(&actor(), &acme, &binding)
        .await
        .unwrap();
    // Deleting the role: its holders include the group's members.
    let (_, holders) = store
        .delete_role(&actor(), &RoleKey::of(&developer))
        .await
        .unwrap();
    assert_eq!(members(holders), both);
    let (_, stale) = store
        .delete_group(&actor(), &acme, &group("platform"))
        .await
        .unwrap();
    assert_eq!(members(stale), both);
    assert!(store.list_groups(&acme).await.unwrap().is_empty());
}

async fn escalation_through_groups_is_refused(store: SqlStore) {
    world(&store).await;
    let acme = org("acme");
    let admin = role(Some("acme"), "admin", &["*:*"]);
    store.create_role(&actor(), &admin).await.unwrap();
    // mallory may manage acme's IAM but holds no function permission.
    let iam = role(Some("acme"), "iam-only", &["iam:*"]);
    store.create_role(&actor(), &iam).await.unwrap();
    let mallory = user(&store, "mallory").await;
    let subject = SubjectRef::User(mallory.id);
    store
        .add_member(&actor(), &acme, &UserRef::Id(mallory.id), true)
        .await
        .unwrap();
    store
        .bind_role(
            &actor(),
            &RoleBinding {
                role: RoleKey::of(&iam),
                subject,
            },
        )
        .await
        .unwrap();
    let as_mallory = Actor::caller(subject, Arc::new(store.load_grants(subject).await.unwrap()));
    assert!(matches!(as_mallory.authority(), Authority::Caller(_)));

    // Joining a group that holds `developer` (function:*): refused.
    let refused = store
        .add_group_member(&as_mallory, &acme, &group("platform"), subject)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("function:*"), "{refused}");
    // A group of her own, then binding a role she does not hold: refused.
    store
        .create_group(&as_mallory, &acme, &group("mine"))
        .await
        .unwrap();
    let bind = |role: &Role| GroupBinding {
        role: RoleKey::of(role),
        group: group("mine"),
    };
    let refused = store
        .bind_group_role(&as_mallory, &acme, &bind(&admin))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("admin"), "{refused}");
    // Another organization's role, or a global one: refused.
    let foreign = role(Some("globex"), "boss", &["iam:*"]);
    store.create_role(&actor(), &foreign).await.unwrap();
    let refused = store
        .bind_group_role(&actor(), &acme, &bind(&foreign))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("another organization's"),
        "{refused}"
    );
    let global = role(None, "everything", &["iam:*"]);
    store.create_role(&actor(), &global).await.unwrap();
    let refused = store
        .bind_group_role(&as_mallory, &acme, &bind(&global))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("global"), "{refused}");
    // What she holds, she may hand on through her group.
    store
        .bind_group_role(&as_mallory, &acme, &bind(&iam))
        .await
        .unwrap();
    // Nothing was written by the refused attempts.
    assert_eq!(
        store.list_group_bindings(&acme).await.unwrap().len(),
        2,
        "platform's developer and mine's iam-only"
    );
    assert!(
        store
            .list_group_members(&acme, &group("platform"))
            .await
            .unwrap()
            .is_empty()
    );
}

fn link(text: &str) -> GroupLink {
    GroupLink::parse(text).unwrap()
}

/// Linked groups (item 2): read whole with their roles, audited, and
/// linking needs authority over every role of the group (it hands them to
/// whoever the source names), as unlinking does (it takes them away).
async fn linked_groups_are_listed_audited_and_guarded(store: SqlStore) {
    let developer = world(&store).await;
    let acme = org("acme");
    assert!(store.load_linked_groups().await.unwrap().is_empty());
    let team = link("github:team=acme/platform");
    let linked = store
        .link_group(&actor(), &acme, &group("platform"), Some(&team))
        .await
        .unwrap();
    assert_eq!(linked.link.as_ref(), Some(&team));
    let last = &store.list_audit(None, 1).await.unwrap()[0];
    assert_eq!(last.action, "group.link");
    assert!(last.before.as_deref().unwrap().contains("\"link\":null"));
    assert!(
        last.after
            .as_deref()
            .unwrap()
            .contains("github:team=acme/platform")
    );
    let listed = store.list_groups(&acme).await.unwrap();
    assert_eq!(listed[0].link.as_ref(), Some(&team));

    let all = store.load_linked_groups().await.unwrap();
    let issuer = IssuerName::parse("github").unwrap();
    let found = all.matching(&issuer, std::slice::from_ref(&team.key));
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].org.as_str(), found[0].name.as_str()),
        ("acme", "platform")
    );
    assert_eq!(*found[0].roles[0], developer);
    let other = IssuerName::parse("dex").unwrap();
    assert!(
        all.matching(&other, std::slice::from_ref(&team.key))
            .is_empty(),
        "another source's"
    );

    // mallory manages acme's IAM but holds no function permission: she may
    // neither link the developer group elsewhere nor unlink it.
    let iam = role(Some("acme"), "iam-only", &["iam:*"]);
    store.create_role(&actor(), &iam).await.unwrap();
    let mallory = user(&store, "mallory").await;
    let subject = SubjectRef::User(mallory.id);
    store
        .add_member(&actor(), &acme, &UserRef::Id(mallory.id), true)
        .await
        .unwrap();
    let binding = RoleBinding {
        role: RoleKey::of(&iam),
        subject,
    };
    store.bind_role(&actor(), &binding).await.unwrap();
    let as_mallory = Actor::caller(subject, Arc::new(store.load_grants(subject).await.unwrap()));
    for attempt in [Some(link("dex:groups=everyone")), None] {
        let refused = store
            .link_group(&as_mallory, &acme, &group("platform"), attempt.as_ref())
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("function:*"), "{refused}");
    }
    assert_eq!(
        store.list_groups(&acme).await.unwrap()[0].link.as_ref(),
        Some(&team),
        "nothing written"
    );
    // A group of her own roles she may link.
    store
        .create_group(&as_mallory, &acme, &group("mine"))
        .await
        .unwrap();
    let mine = GroupBinding {
        role: RoleKey::of(&iam),
        group: group("mine"),
    };
    store
        .bind_group_role(&as_mallory, &acme, &mine)
        .await
        .unwrap();
    let dex = link("dex:groups=iam");
    store
        .link_group(&as_mallory, &acme, &group("mine"), Some(&dex))
        .await
        .unwrap();
    // Unlinked, a group is no longer among the linked ones.
    store
        .link_group(&actor(), &acme, &group("platform"), None)
        .await
        .unwrap();
    assert_eq!(
        store.list_audit(None, 1).await.unwrap()[0].action,
        "group.unlink"
    );
    let all = store.load_linked_groups().await.unwrap();
    assert!(
        all.matching(&issuer, std::slice::from_ref(&team.key))
            .is_empty()
    );
    assert_eq!(
        all.matching(&other, std::slice::from_ref(&dex.key)).len(),
        1
    );
    let missing = store
        .link_group(&actor(), &acme, &group("nope"), Some(&dex))
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)), "{missing}");
}

/// Leaving an organization takes the user out of its groups too (a group
/// would otherwise keep them a member), with the authority that takes.
async fn leaving_an_organization_leaves_its_groups(store: SqlStore) {
    world(&store).await;
    let acme = org("acme");
    let alice = user(&store, "alice").await;
    let subject = SubjectRef::User(alice.id);
    store
        .add_member(&actor(), &acme, &UserRef::Id(alice.id), true)
        .await
        .unwrap();
    store
        .add_group_member(&actor(), &acme, &group("platform"), subject)
        .await
        .unwrap();
    // An organization admin without function:* may not take developer away.
    let iam = role(Some("acme"), "iam-only", &["iam:*"]);
    store.create_role(&actor(), &iam).await.unwrap();
    let mallory = user(&store, "mallory").await;
    let m = SubjectRef::User(mallory.id);
    store
        .add_member(&actor(), &acme, &UserRef::Id(mallory.id), true)
        .await
        .unwrap();
    let binding = RoleBinding {
        role: RoleKey::of(&iam),
        subject: m,
    };
    store.bind_role(&actor(), &binding).await.unwrap();
    let as_mallory = Actor::caller(m, Arc::new(store.load_grants(m).await.unwrap()));
    let refused = store
        .remove_member(&as_mallory, &acme, &UserRef::Id(alice.id))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("function:*"), "{refused}");
    assert!(store.load_grants(subject).await.unwrap().belongs_to(&acme));

    store
        .remove_member(&actor(), &acme, &UserRef::Id(alice.id))
        .await
        .unwrap();
    let grants = store.load_grants(subject).await.unwrap();
    assert!(grants.groups.is_empty(), "still in {:?}", grants.groups);
    assert!(!grants.belongs_to(&acme));
    let last = &store.list_audit(None, 1).await.unwrap()[0];
    assert_eq!(last.action, "member.remove");
    assert!(
        last.before
            .as_deref()
            .unwrap()
            .contains("\"groups\":[\"platform\"]"),
        "{last:?}"
    );
}

async fn an_organization_with_groups_is_not_deleted(store: SqlStore) {
    store.create_org(&actor(), &org("empty")).await.unwrap();
    store
        .create_group(&actor(), &org("empty"), &group("g"))
        .await
        .unwrap();
    let refused = store.delete_org(&actor(), &org("empty")).await.unwrap_err();
    assert!(refused.to_string().contains("1 group(s)"), "{refused}");
}

on_both_backends!(
    a_group_member_holds_its_roles_until_removed,
    writes_name_the_members_they_change,
    escalation_through_groups_is_refused,
    an_organization_with_groups_is_not_deleted,
    linked_groups_are_listed_audited_and_guarded,
    leaving_an_organization_leaves_its_groups,
);
