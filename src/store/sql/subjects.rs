//! Naming a subject in SQL: a user or a service account, by id.

use super::*;

pub(super) async fn user_in(conn: &mut AnyConnection, user: &UserRef) -> Result<User, StoreError> {
    let (id, issuer, subject) = binds(user);
    let row: Option<UserRow> = sqlx::query_as(SELECT_USER)
        .bind(id)
        .bind(issuer)
        .bind(subject)
        .fetch_optional(conn)
        .await?;
    row.ok_or_else(|| StoreError::NotFound(format!("user {user}")))?
        .try_into()
}

pub(super) fn subject_columns(subject: SubjectRef) -> (Option<String>, Option<String>) {
    match subject {
        SubjectRef::User(id) => (Some(id.to_string()), None),
        SubjectRef::ServiceAccount(id) => (None, Some(id.to_string())),
    }
}

pub(super) fn subject_row(user: Option<&str>, sa: Option<&str>) -> Result<SubjectRef, StoreError> {
    match (user, sa) {
        (Some(u), None) => Ok(SubjectRef::User(UserId::parse(u).map_err(corrupt(u))?)),
        (None, Some(s)) => Ok(SubjectRef::ServiceAccount(
            ServiceAccountId::parse(s).map_err(corrupt(s))?,
        )),
        _ => Err(StoreError::Corrupt {
            id: "role binding".into(),
            reason: "neither or both of user and service account".into(),
        }),
    }
}

pub(super) async fn subject_exists(
    conn: &mut AnyConnection,
    subject: SubjectRef,
) -> Result<(), StoreError> {
    let (user_id, sa_id) = subject_columns(subject);
    let (n,): (i64,) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM users WHERE id = $1) + \
                (SELECT COUNT(*) FROM service_accounts WHERE id = $2)",
    )
    .bind(user_id)
    .bind(sa_id)
    .fetch_one(conn)
    .await?;
    if n == 0 {
        return Err(StoreError::NotFound(subject.to_string()));
    }
    Ok(())
}

/// An org role can only be bound to a member of its organization (or one
/// of its service accounts): no cross-org grants.
pub(super) async fn subject_in_org(
    conn: &mut AnyConnection,
    subject: SubjectRef,
    org: &OrgName,
) -> Result<(), StoreError> {
    subject_exists(conn, subject).await?;
    let (user_id, sa_id) = subject_columns(subject);
    let (n,): (i64,) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM memberships WHERE user_id = $1 AND org = $3) + \
                (SELECT COUNT(*) FROM service_accounts WHERE id = $2 AND org = $3)",
    )
    .bind(user_id)
    .bind(sa_id)
    .bind(org.as_str())
    .fetch_one(conn)
    .await?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "{subject} is not a member of organization {org}; add the membership first"
        )));
    }
    Ok(())
}
