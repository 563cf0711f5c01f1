//! Users: one statement per way of naming them (`where_user!`).

use super::*;

// Macros rather than consts: sqlx only takes literal SQL, and `concat!`
// only joins literals.
macro_rules! columns {
    () => {
        "id, issuer, subject, login, email, display_name, enabled, created_at, updated_at"
    };
}

/// One shape of `WHERE` for both ways of naming a user, so each statement is
/// written once: bind the id, or the issuer and subject.
macro_rules! where_user {
    () => {
        "($1 IS NOT NULL AND id = $1) OR (issuer = $2 AND subject = $3)"
    };
}

/// One user by id or identity, for code outside this file.
pub(super) const SELECT_USER: &str =
    concat!("SELECT ", columns!(), " FROM users WHERE ", where_user!());

/// The members of organization `$1`, each with `is_default`.
pub(super) const SELECT_MEMBERS: &str = concat!(
    "SELECT ",
    columns!(),
    ", (SELECT is_default FROM memberships m WHERE m.user_id = users.id AND m.org = $1) \
     AS is_default FROM users WHERE id IN (SELECT user_id FROM memberships WHERE org = $1) \
     ORDER BY login, id"
);

/// Runs an `UPDATE ... WHERE where_user!() RETURNING` that sets one column
/// (`$4`) and `updated_at` (`$5`).
pub(super) async fn update_one<'q, T>(
    conn: &mut sqlx::AnyConnection,
    user: &'q UserRef,
    sql: &'static str,
    value: T,
) -> Result<User, StoreError>
where
    T: 'q + Send + sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    let (id, issuer, subject) = binds(user);
    let row: Option<UserRow> = sqlx::query_as(sql)
        .bind(id)
        .bind(issuer)
        .bind(subject)
        .bind(value)
        .bind(now())
        .fetch_optional(conn)
        .await?;
    row.ok_or_else(|| StoreError::NotFound(format!("user {user}")))?
        .try_into()
}

#[derive(FromRow)]
pub(super) struct UserRow {
    pub(super) id: String,
    pub(super) issuer: String,
    pub(super) subject: String,
    pub(super) login: String,
    pub(super) email: Option<String>,
    pub(super) display_name: Option<String>,
    #[sqlx(try_from = "Flag")]
    pub(super) enabled: bool,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        let corrupt = |e: crate::domain::InvalidValue| StoreError::Corrupt {
            id: row.id.clone(),
            reason: e.to_string(),
        };
        Ok(User {
            id: UserId::parse(&row.id).map_err(corrupt)?,
            issuer: IssuerName::parse(&row.issuer).map_err(corrupt)?,
            subject: Subject::parse(&row.subject).map_err(corrupt)?,
            login: Login::parse(&row.login).map_err(corrupt)?,
            email: row
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(corrupt)?,
            display_name: row
                .display_name
                .as_deref()
                .map(DisplayName::parse)
                .transpose()
                .map_err(corrupt)?
                .map(Box::new),
            enabled: row.enabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub(super) fn binds(user: &UserRef) -> (Option<String>, Option<&str>, Option<&str>) {
    match user {
        UserRef::Id(id) => (Some(id.to_string()), None, None),
        UserRef::Identity(issuer, subject) => (None, Some(issuer.as_str()), Some(subject.as_str())),
    }
}

#[async_trait]
impl UserAdmin for SqlStore {
    async fn get(&self, user: &UserRef) -> Result<Option<User>, StoreError> {
        let (id, issuer, subject) = binds(user);
        let sql = concat!("SELECT ", columns!(), " FROM users WHERE ", where_user!());
        let row: Option<UserRow> = sqlx::query_as(sql)
            .bind(id)
            .bind(issuer)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.map(User::try_from).transpose()
    }

    async fn list(&self) -> Result<Vec<User>, StoreError> {
        let sql = concat!(
            "SELECT ",
            columns!(),
            " FROM users ORDER BY issuer, login, id"
        );
        let rows: Vec<UserRow> = sqlx::query_as(sql).fetch_all(&self.pool).await?;
        rows.into_iter().map(User::try_from).collect()
    }

    async fn add(&self, actor: &Actor, user: NewUser) -> Result<User, StoreError> {
        let now = now();
        let sql = concat!(
            "INSERT INTO users (",
            columns!(),
            ") ",
            "VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, $7) RETURNING ",
            columns!()
        );
        let mut tx = self.begin().await?;
        let result = sqlx::query_as::<_, UserRow>(sql)
            .bind(UserId::new().to_string())
            .bind(user.issuer.as_str())
            .bind(user.subject.as_str())
            .bind(user.login.as_str())
            .bind(user.email.as_ref().map(Email::as_str))
            .bind(user.display_name.as_ref().map(DisplayName::as_str))
            .bind(now)
            .fetch_one(&mut *tx)
            .await;
        let added: User = match result {
            Ok(row) => row.try_into()?,
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Duplicate {
                    issuer: user.issuer.to_string(),
                    subject: user.subject.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        commit_audited_user(tx, actor, "user.add", None, Some(&added)).await?;
        Ok(added)
    }

    async fn set_enabled(
        &self,
        actor: &Actor,
        user: &UserRef,
        enabled: bool,
    ) -> Result<User, StoreError> {
        let sql = concat!(
            "UPDATE users SET enabled = $4, updated_at = $5 WHERE ",
            where_user!(),
            " RETURNING ",
            columns!()
        );
        let action = if enabled {
            "user.enable"
        } else {
            "user.disable"
        };
        let mut tx = self.begin().await?;
        let before = user_in(&mut tx, user).await?;
        // Enabling or disabling decides who can act as the user.
        let roles = bound_roles(&mut tx, SubjectRef::User(before.id)).await?;
        actor.authority().over_holder(&roles, Action::Update)?;
        let after = update_one(&mut tx, user, sql, enabled).await?;
        commit_audited_user(tx, actor, action, Some(&before), Some(&after)).await?;
        Ok(after)
    }

    async fn remove(&self, actor: &Actor, user: &UserRef) -> Result<User, StoreError> {
        let (id, issuer, subject) = binds(user);
        let sql = concat!(
            "DELETE FROM users WHERE ",
            where_user!(),
            " RETURNING ",
            columns!()
        );
        let mut tx = self.begin().await?;
        let target = user_in(&mut tx, user).await?;
        let roles = bound_roles(&mut tx, SubjectRef::User(target.id)).await?;
        actor.authority().over_holder(&roles, Action::Delete)?;
        let row: Option<UserRow> = sqlx::query_as(sql)
            .bind(id)
            .bind(issuer)
            .bind(subject)
            .fetch_optional(&mut *tx)
            .await?;
        let removed: User = row
            .ok_or_else(|| StoreError::NotFound(format!("user {user}")))?
            .try_into()?;
        commit_audited_user(tx, actor, "user.remove", Some(&removed), None).await?;
        Ok(removed)
    }
}

impl SqlStore {
    pub(super) async fn rename(&self, user: &UserRef, login: &Login) -> Result<User, StoreError> {
        let sql = concat!(
            "UPDATE users SET login = $4, updated_at = $5 WHERE ",
            where_user!(),
            " RETURNING ",
            columns!()
        );
        let mut conn = self.pool.acquire().await?;
        update_one(&mut conn, user, sql, login.as_str()).await
    }
}
