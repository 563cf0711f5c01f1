use super::test_world::{actor, org, role, user};
use super::*;
use crate::store::sql::test_backends::on_both_backends;

async fn grants_reflect_memberships_bindings_and_their_removal(store: SqlStore) {
    let alice = user(&store, "alice").await;
    let subject = SubjectRef::User(alice.id);
    let acme = org("acme");
    store.create_org(&actor(), &acme).await.unwrap();
    store
        .add_member(&actor(), &acme, &UserRef::Id(alice.id), true)
        .await
        .unwrap();
    let dev = role(Some("acme"), "dev", &["function:*", "image:get"]);
    store.create_role(&actor(), &dev).await.unwrap();
    let binding = RoleBinding {
        role: RoleKey::of(&dev),
        subject,
    };
    store.bind_role(&actor(), &binding).await.unwrap();

    let grants = store.load_grants(subject).await.unwrap();
    assert!(grants.enabled);
    assert_eq!(grants.default_org, Some(acme.clone()));
    assert_eq!(grants.roles.len(), 1);
    assert_eq!(*grants.roles[0], dev, "permissions round-trip");

    let again = store.bind_role(&actor(), &binding).await.unwrap_err();
    assert!(matches!(again, StoreError::AlreadyExists(_)), "{again}");

    // Leaving the organization drops its role bindings too.
    store
        .remove_member(&actor(), &acme, &UserRef::Id(alice.id))
        .await
        .unwrap();
    let grants = store.load_grants(subject).await.unwrap();
    assert!(grants.member_of.is_empty() && grants.roles.is_empty());
    assert!(store.list_bindings(Some(&acme)).await.unwrap().is_empty());
}

async fn removing_a_user_removes_what_it_held_and_is_audited(store: SqlStore) {
    let bob = user(&store, "bob").await;
    let acme = org("acme");
    store.create_org(&actor(), &acme).await.unwrap();
    store
        .add_member(&actor(), &acme, &UserRef::Id(bob.id), false)
        .await
        .unwrap();
    let viewer = role(Some("acme"), "viewer", &["*:get"]);
    store.create_role(&actor(), &viewer).await.unwrap();
    let binding = RoleBinding {
        role: RoleKey::of(&viewer),
        subject: SubjectRef::User(bob.id),
    };
    store.bind_role(&actor(), &binding).await.unwrap();
    store.remove(&actor(), &UserRef::Id(bob.id)).await.unwrap();
    assert!(store.list_members(&acme).await.unwrap().is_empty());
    assert!(store.list_bindings(Some(&acme)).await.unwrap().is_empty());
    let last = &store.list_audit(None, 1).await.unwrap()[0];
    assert_eq!(last.action, "user.remove");
    assert!(
        last.before
            .as_deref()
            .unwrap()
            .contains("\"login\":\"bob\"")
    );
    assert_eq!(last.after, None);
    // The organization is empty of members but still has a role.
    let err = store.delete_org(&actor(), &acme).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    store
        .delete_role(&actor(), &RoleKey::of(&viewer))
        .await
        .unwrap();
    store.delete_org(&actor(), &acme).await.unwrap();
}

async fn bootstrap_happens_once(store: SqlStore) {
    let root = user(&store, "root").await;
    assert!(!store.has_global_admin().await.unwrap());
    let admin = store
        .bootstrap(&actor(), &UserRef::Id(root.id))
        .await
        .unwrap();
    assert_eq!(admin, role(None, "admin", &["*:*"]));
    assert!(store.has_global_admin().await.unwrap());
    let grants = store.load_grants(SubjectRef::User(root.id)).await.unwrap();
    assert!(grants.globally_grants("iam", crate::policy::Action::Delete));
    let other = user(&store, "other").await;
    let err = store
        .bootstrap(&actor(), &UserRef::Id(other.id))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

/// Regression (issue 9, item 14): bootstrap widened an existing global
/// role `admin`, and with it everyone who held it.
async fn bootstrap_never_widens_an_existing_role(store: SqlStore) {
    let viewer = role(None, "admin", &["function:get"]);
    store.create_role(&actor(), &viewer).await.unwrap();
    let holder = user(&store, "holder").await;
    let binding = RoleBinding {
        role: RoleKey::of(&viewer),
        subject: SubjectRef::User(holder.id),
    };
    store.bind_role(&actor(), &binding).await.unwrap();
    let root = user(&store, "root").await;
    let err = store
        .bootstrap(&actor(), &UserRef::Id(root.id))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("will not widen"), "{err}");
    assert_eq!(
        store.get_role(&RoleKey::of(&viewer)).await.unwrap(),
        Some(viewer)
    );
    assert!(!store.has_global_admin().await.unwrap());
}

/// Regression: any global role granting some `iam` action counted as a
/// global admin, so an auditor (`*:get`) made `bootstrap` refuse while nobody
/// could administer anything. A global admin holds every `iam` action.
async fn only_a_subject_holding_every_iam_action_globally_is_a_global_admin(store: SqlStore) {
    let auditor = role(None, "auditor", &["*:get"]);
    let writer = role(None, "iam-writer", &["iam:create", "iam:update"]);
    let deleter = role(None, "iam-deleter", &["iam:delete", "iam:get"]);
    for r in [&auditor, &writer, &deleter] {
        store.create_role(&actor(), r).await.unwrap();
    }
    let bind = |r: &Role, who: &User| RoleBinding {
        role: RoleKey::of(r),
        subject: SubjectRef::User(who.id),
    };
    let dave = user(&store, "dave").await;
    store
        .bind_role(&actor(), &bind(&auditor, &dave))
        .await
        .unwrap();
    let erin = user(&store, "erin").await;
    store
        .bind_role(&actor(), &bind(&writer, &erin))
        .await
        .unwrap();
    assert!(
        !store.has_global_admin().await.unwrap(),
        "get, or create and update, is not all of iam"
    );
    // Two roles of one subject that together grant every iam action do.
    store
        .bind_role(&actor(), &bind(&deleter, &erin))
        .await
        .unwrap();
    assert!(store.has_global_admin().await.unwrap());
    store
        .unbind_role(&actor(), &bind(&deleter, &erin))
        .await
        .unwrap();
    let root = user(&store, "root").await;
    store
        .bootstrap(&actor(), &UserRef::Id(root.id))
        .await
        .unwrap();
    assert!(store.has_global_admin().await.unwrap());
}

async fn a_service_account_is_a_member_of_its_org_only(store: SqlStore) {
    let (acme, globex) = (org("acme"), org("globex"));
    store.create_org(&actor(), &acme).await.unwrap();
    store.create_org(&actor(), &globex).await.unwrap();
    let name = ServiceAccountName::parse("ci").unwrap();
    let account = store
        .create_service_account(&actor(), &acme, &name, &[])
        .await
        .unwrap();
    let subject = SubjectRef::ServiceAccount(account.id);
    let foreign = role(Some("globex"), "admin", &["*:*"]);
    store.create_role(&actor(), &foreign).await.unwrap();
    let binding = RoleBinding {
        role: RoleKey::of(&foreign),
        subject,
    };
    let err = store.bind_role(&actor(), &binding).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let grants = store.load_grants(subject).await.unwrap();
    assert_eq!(grants.default_org, Some(acme.clone()));
    assert_eq!(grants.member_of.into_iter().collect::<Vec<_>>(), [acme]);
}

on_both_backends!(
    grants_reflect_memberships_bindings_and_their_removal,
    removing_a_user_removes_what_it_held_and_is_audited,
    bootstrap_happens_once,
    bootstrap_never_widens_an_existing_role,
    only_a_subject_holding_every_iam_action_globally_is_a_global_admin,
    a_service_account_is_a_member_of_its_org_only,
);
