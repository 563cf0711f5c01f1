//! The audit log: every admin write appends its entry in its own
//! transaction, so a change and its record exist together or not at all.

use super::*;

/// What one audit entry records.
pub(super) struct Change<'a> {
    pub(super) action: &'static str,
    pub(super) org: Option<&'a OrgName>,
    pub(super) target: String,
    pub(super) before: Option<Value>,
    pub(super) after: Option<Value>,
}

pub(super) async fn record(
    tx: &mut AnyConnection,
    actor: &Actor,
    change: Change<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, org, target, before, after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(now())
    .bind(actor.as_str())
    .bind(change.action)
    .bind(change.org.map(OrgName::as_str))
    .bind(change.target)
    .bind(change.before.map(|v| v.to_string()))
    .bind(change.after.map(|v| v.to_string()))
    .execute(tx)
    .await?;
    Ok(())
}

/// Appends the change's audit entry and commits: how every admin write
/// ends, so that no write can be committed without its entry.
pub(super) async fn commit_audited(
    mut tx: Transaction<'static, Any>,
    actor: &Actor,
    change: Change<'_>,
) -> Result<(), StoreError> {
    let operation = change.action;
    let committed = async {
        record(&mut tx, actor, change).await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    crate::telemetry::metrics::admin_write(operation, committed.is_ok());
    committed
}

pub(super) async fn commit_audited_user(
    tx: Transaction<'static, Any>,
    actor: &Actor,
    action: &'static str,
    before: Option<&User>,
    after: Option<&User>,
) -> Result<(), StoreError> {
    let user = after.or(before).expect("a user before or after");
    let change = Change {
        action,
        org: None,
        target: SubjectRef::User(user.id).to_string(),
        before: before.map(Snapshot::snapshot),
        after: after.map(Snapshot::snapshot),
    };
    commit_audited(tx, actor, change).await
}

#[async_trait]
impl AuditLog for SqlStore {
    /// Newest first; one organization's entries, or all.
    async fn list_audit(
        &self,
        org: Option<&OrgName>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        type Row = (
            i64,
            i64,
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT id, at, actor, action, org, target, before, after FROM audit_log \
             WHERE $1 IS NULL OR org = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(org.map(OrgName::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, at, actor, action, org, target, before, after)| AuditEntry {
                    id,
                    at,
                    actor,
                    action,
                    org,
                    target,
                    before,
                    after,
                },
            )
            .collect())
    }
}
