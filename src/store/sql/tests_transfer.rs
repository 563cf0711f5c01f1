//! Issue 12, item 5: `export` from one backend and `import` into another
//! gives the same store, in one transaction or not at all.

use super::*;
use crate::{
    domain::{IssuerName, Login, Subject},
    store::{NewUser, sql::test_backends::on_both_backends},
};

fn actor() -> Actor {
    Actor::local("test")
}

/// A SQLite store with some of everything: users (one disabled, one with
/// an email), an organization with a default member, an org and a global
/// role, bindings of a user and of a service account with a key.
async fn populated() -> (tempfile::TempDir, SqlStore) {
    let dir = tempfile::tempdir().unwrap();
    let location = StoreLocation::sqlite(dir.path().join("source.db"));
    let store = SqlStore::open(&location, None).await.unwrap();
    let mut users = Vec::new();
    for (subject, email) in [("alice", Some("a@example.com")), ("bob", None)] {
        let new = NewUser {
            issuer: IssuerName::parse("dex").unwrap(),
            subject: Subject::parse(subject).unwrap(),
            login: Login::parse(subject).unwrap(),
            email: email.map(|e| Email::parse(e).unwrap()),
            display_name: None,
        };
        users.push(store.add(&actor(), new).await.unwrap());
    }
    store
        .set_enabled(&actor(), &UserRef::Id(users[1].id), false)
        .await
        .unwrap();
    let acme = OrgName::parse("acme").unwrap();
    store.create_org(&actor(), &acme).await.unwrap();
    store
        .add_member(&actor(), &acme, &UserRef::Id(users[0].id), true)
        .await
        .unwrap();
    let dev = Role {
        name: RoleName::parse("dev").unwrap(),
        scope: Scope::Org(acme.clone()),
        permissions: vec![
            Permission::parse("function:*").unwrap(),
            Permission::parse("image:get").unwrap(),
        ],
    };
    store.create_role(&actor(), &dev).await.unwrap();
    store
        .bootstrap(&actor(), &UserRef::Id(users[0].id))
        .await
        .unwrap();
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keys/ec256.pub.pem"
    ))
    .unwrap();
    let ci = ServiceAccountName::parse("ci").unwrap();
    let account = store
        .create_service_account(&actor(), &acme, &ci, &[("ES256".into(), pem)])
        .await
        .unwrap();
    for subject in [
        SubjectRef::User(users[0].id),
        SubjectRef::ServiceAccount(account.id),
    ] {
        let binding = RoleBinding {
            role: RoleKey::of(&dev),
            subject,
        };
        store.bind_role(&actor(), &binding).await.unwrap();
    }
    // A group linked to an identity source (issue 15), holding dev.
    let platform = GroupName::parse("platform").unwrap();
    store
        .create_group(&actor(), &acme, &platform)
        .await
        .unwrap();
    let link = GroupLink::parse("dex:groups=platform").unwrap();
    store
        .link_group(&actor(), &acme, &platform, Some(&link))
        .await
        .unwrap();
    let binding = GroupBinding {
        role: RoleKey::of(&dev),
        group: platform,
    };
    store
        .bind_group_role(&actor(), &acme, &binding)
        .await
        .unwrap();
    (dir, store)
}

async fn exported(store: &SqlStore) -> Vec<u8> {
    let mut out = Vec::new();
    store.export(&mut out).await.unwrap();
    out
}

async fn a_moved_store_is_the_same_store(target: SqlStore) {
    let (_dir, source) = populated().await;
    let export = exported(&source).await;
    let rows = target.import(&actor(), &export[..]).await.unwrap();
    assert_eq!(rows, String::from_utf8_lossy(&export).lines().count());
    assert!(rows >= 12, "{rows}");
    // Row for row (ids and times kept), and read back the same way.
    assert_eq!(exported(&target).await, export);
    let alice = UserRef::parse("dex:alice").unwrap();
    let moved = target.get(&alice).await.unwrap().unwrap();
    assert_eq!(Some(moved.clone()), source.get(&alice).await.unwrap());
    let subject = SubjectRef::User(moved.id);
    assert_eq!(
        target.load_grants(subject).await.unwrap(),
        source.load_grants(subject).await.unwrap()
    );
    let dex = IssuerName::parse("dex").unwrap();
    let key = [crate::domain::LinkKey::new("groups", "platform").unwrap()];
    let linked = target
        .load_linked_groups()
        .await
        .unwrap()
        .matching(&dex, &key);
    assert_eq!(linked.len(), 1, "the group's link moved");
    assert_eq!(
        linked,
        source
            .load_linked_groups()
            .await
            .unwrap()
            .matching(&dex, &key)
    );
    assert!(target.has_global_admin().await.unwrap());
    // The import is audited in the new store.
    let audit = target.list_audit(None, 10).await.unwrap();
    assert!(
        audit.iter().any(|e| e.action == "store.import"),
        "{audit:?}"
    );
}

async fn an_import_is_all_or_nothing(target: SqlStore) {
    let (_dir, source) = populated().await;
    let export = String::from_utf8(exported(&source).await).unwrap();
    // A bad line near the end: nothing before it stays.
    let mut lines: Vec<&str> = export.lines().collect();
    let last = lines.len() - 1;
    lines.insert(last, r#"{"table":"users","row":{"id":7}}"#);
    let broken = lines.join("\n");
    let err = target
        .import(&actor(), broken.as_bytes())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!("line {}", last + 1)),
        "{err}"
    );
    assert!(
        exported(&target).await.is_empty(),
        "a failed import left rows"
    );
    // Not JSON at all.
    let err = target.import(&actor(), &b"hello\n"[..]).await.unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    // Into a store that is not empty: refused, and it stays as it was.
    target.import(&actor(), export.as_bytes()).await.unwrap();
    let err = target
        .import(&actor(), export.as_bytes())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(exported(&target).await, export.as_bytes());
}

on_both_backends!(a_moved_store_is_the_same_store, an_import_is_all_or_nothing);
