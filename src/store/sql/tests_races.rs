//! Issue 12, item 4: the invariants SQLite's single writer kept for free
//! hold when two replicas (two stores with their own pools, one database)
//! write at once. Each race runs many times; a write that loses may fail
//! (and can be retried), but no interleaving leaves a broken state.

use super::test_world::{actor, user};
use super::*;
use crate::store::sql::test_backends::on_both_backends_twice;

/// Concurrent bootstraps through both replicas: exactly one global admin.
async fn one_bootstrap_wins(a: SqlStore, b: SqlStore) {
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(user(&a, &format!("root{i}")).await);
    }
    let attempts: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let who = UserRef::Id(u.id);
            tokio::spawn(async move { store.bootstrap(&actor(), &who).await })
        })
        .collect();
    let mut results = Vec::new();
    for attempt in attempts {
        results.push(attempt.await.unwrap());
    }
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "{results:?}");
    let admins = a.list_bindings(None).await.unwrap();
    assert_eq!(admins.len(), 1, "{admins:?}");
}

/// A binding to an organization's role races the member's removal: after
/// both, a non-member holds no role of that organization.
async fn no_binding_survives_its_members_removal(a: SqlStore, b: SqlStore) {
    let acme = OrgName::parse("acme").unwrap();
    a.create_org(&actor(), &acme).await.unwrap();
    let dev = Role {
        name: RoleName::parse("dev").unwrap(),
        scope: Scope::Org(acme.clone()),
        permissions: vec![Permission::parse("function:get").unwrap()],
    };
    a.create_role(&actor(), &dev).await.unwrap();
    for i in 0..20 {
        let u = user(&a, &format!("member{i}")).await;
        let who = UserRef::Id(u.id);
        a.add_member(&actor(), &acme, &who, false).await.unwrap();
        let binding = RoleBinding {
            role: RoleKey::of(&dev),
            subject: SubjectRef::User(u.id),
        };
        let (bound, removed) = tokio::join!(
            tokio::spawn({
                let a = a.clone();
                async move { a.bind_role(&actor(), &binding).await }
            }),
            tokio::spawn({
                let (b, acme, who) = (b.clone(), acme.clone(), who.clone());
                async move { b.remove_member(&actor(), &acme, &who).await }
            }),
        );
        let (bound, removed) = (bound.unwrap(), removed.unwrap());
        assert!(bound.is_ok() || removed.is_ok(), "{bound:?} {removed:?}");
        for result in [bound.as_ref().map(drop), removed.as_ref().map(drop)] {
            assert!(
                matches!(
                    result,
                    Ok(())
                        | Err(StoreError::Contended(_)
                            | StoreError::Conflict(_)
                            | StoreError::NotFound(_))
                ),
                "round {i}: {result:?}"
            );
        }
        let grants = a.load_grants(SubjectRef::User(u.id)).await.unwrap();
        if !grants.member_of.contains(&acme) {
            assert!(grants.roles.is_empty(), "round {i}: {bound:?} {removed:?}");
        }
    }
}

/// A binding races its role's deletion: no binding to a removed role.
async fn no_binding_to_a_removed_role(a: SqlStore, b: SqlStore) {
    let acme = OrgName::parse("acme").unwrap();
    a.create_org(&actor(), &acme).await.unwrap();
    let u = user(&a, "member").await;
    a.add_member(&actor(), &acme, &UserRef::Id(u.id), false)
        .await
        .unwrap();
    for i in 0..20 {
        let role = Role {
            name: RoleName::parse(&format!("r{i}")).unwrap(),
            scope: Scope::Org(acme.clone()),
            permissions: vec![Permission::parse("function:get").unwrap()],
        };
        a.create_role(&actor(), &role).await.unwrap();
        let key = RoleKey::of(&role);
        let binding = RoleBinding {
            role: key.clone(),
            subject: SubjectRef::User(u.id),
        };
        let (bound, deleted) = tokio::join!(
            tokio::spawn({
                let a = a.clone();
                async move { a.bind_role(&actor(), &binding).await }
            }),
            tokio::spawn({
                let b = b.clone();
                async move { b.delete_role(&actor(), &key).await }
            }),
        );
        let (bound, deleted) = (bound.unwrap(), deleted.unwrap());
        for result in [bound.map(drop), deleted.map(drop)] {
            assert!(
                matches!(
                    result,
                    Ok(())
                        | Err(StoreError::Contended(_)
                            | StoreError::Conflict(_)
                            | StoreError::NotFound(_))
                ),
                "round {i}: {result:?}"
            );
        }
        // Whichever won (the deletion may be the one that lost), every role
        // the subject holds exists.
        let grants = a.load_grants(SubjectRef::User(u.id)).await.unwrap();
        for held in grants.roles.iter() {
            let exists = a.get_role(&RoleKey::of(held)).await.unwrap();
            assert!(exists.is_some(), "round {i}: a binding outlived its role");
        }
    }
}

on_both_backends_twice!(
    one_bootstrap_wins,
    no_binding_survives_its_members_removal,
    no_binding_to_a_removed_role,
);
