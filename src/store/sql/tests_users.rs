use super::*;
use crate::store::sql::test_backends::on_both_backends;

fn actor() -> Actor {
    Actor::local("test")
}

fn new_user(subject: &str, login: &str) -> NewUser {
    NewUser {
        issuer: IssuerName::parse("dex").unwrap(),
        subject: Subject::parse(subject).unwrap(),
        login: Login::parse(login).unwrap(),
        email: Some(Email::parse("o@example.com").unwrap()),
        display_name: None,
    }
}

async fn users_round_trip_and_duplicates_are_refused(store: SqlStore) {
    let added = store.add(&actor(), new_user("1", "octocat")).await.unwrap();
    assert!(added.enabled);
    let by_identity = UserRef::parse("dex:1").unwrap();
    assert_eq!(store.get(&by_identity).await.unwrap(), Some(added.clone()));
    assert_eq!(
        store.get(&UserRef::Id(added.id)).await.unwrap(),
        Some(added.clone())
    );

    let err = store
        .add(&actor(), new_user("1", "someone-else"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate { .. }), "{err}");
    assert_eq!(
        store.list().await.unwrap().len(),
        1,
        "the duplicate left a row"
    );

    let disabled = store
        .set_enabled(&actor(), &by_identity, false)
        .await
        .unwrap();
    assert!(!disabled.enabled);
    store
        .remove(&actor(), &UserRef::Id(added.id))
        .await
        .unwrap();
    assert_eq!(store.get(&by_identity).await.unwrap(), None);
    assert!(matches!(
        store.remove(&actor(), &by_identity).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn reopening_keeps_users_and_reapplies_no_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.db");
    SqlStore::open(&StoreLocation::sqlite(&path), None)
        .await
        .unwrap()
        .add(&actor(), new_user("2", "hubot"))
        .await
        .unwrap();
    let store = SqlStore::open(&StoreLocation::sqlite(&path), None)
        .await
        .unwrap();
    assert_eq!(store.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_missing_directory_is_a_clear_error() {
    let err = SqlStore::open(&StoreLocation::sqlite("/nonexistent/dir/users.db"), None)
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("/nonexistent/dir/users.db"),
        "{err}"
    );
}

/// Memory (issue 11): a user found for a principal keeps the principal's
/// issuer and subject, not copies of its own.
async fn a_user_found_by_identity_shares_the_callers_strings(store: SqlStore) {
    let added = store.add(&actor(), new_user("7", "octocat")).await.unwrap();
    let issuer = IssuerName::parse("dex").unwrap();
    let subject = Subject::parse("7").unwrap();
    let found = store
        .find_by_identity(&issuer, &subject)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, added);
    assert!(Arc::ptr_eq(&found.issuer.shared(), &issuer.shared()));
    assert!(Arc::ptr_eq(&found.subject.shared(), &subject.shared()));
}

/// Memory (issue 11): with its `Arc` counts a cached user is one of
/// mimalloc's 128-byte blocks; 8 bytes more and every cached user takes
/// 160.
#[test]
fn a_user_fits_in_112_bytes() {
    assert!(
        std::mem::size_of::<User>() <= 112,
        "{}",
        std::mem::size_of::<User>()
    );
}

on_both_backends!(
    users_round_trip_and_duplicates_are_refused,
    a_user_found_by_identity_shares_the_callers_strings,
);

/// `sslmode` in the URL is honoured: the test server speaks no TLS, so
/// `require` must fail to connect (naming the cause) and `disable` work.
#[tokio::test]
async fn sslmode_in_the_url_is_honoured() {
    let Some(url) = crate::store::sql::test_backends::fresh_postgres_database().await else {
        return;
    };
    let with = |mode: &str| StoreLocation::Postgres(format!("{url}?sslmode={mode}"));
    let err = SqlStore::open(&with("require"), None).await.err().unwrap();
    let shown = format!("{err}").to_lowercase();
    assert!(shown.contains("tls") || shown.contains("ssl"), "{shown}");
    SqlStore::open(&with("disable"), None).await.unwrap();
}
