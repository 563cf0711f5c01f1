//! `export` and `import`: the whole IAM state as JSON lines, so that a team
//! can start on SQLite and move to PostgreSQL (or back). One line per row,
//! `{"table": ..., "row": {column: value}}`, tables in an order where every
//! row comes after what it refers to. Ids and times are kept, so a moved
//! store is the same store. The audit log stays behind: it records what was
//! done to the old store; the import records itself in the new one.

use std::io::{BufRead, Write};

use serde_json::{Map, Value};
use sqlx::{Row, any::AnyRow};

use super::*;

/// How a column is stored and written.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    OptText,
    Int,
    YesNo,
}

use Kind::*;

/// Every table of the IAM state, referenced tables first, with its columns.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "users",
        &[
            ("id", Text),
            ("issuer", Text),
            ("subject", Text),
            ("login", Text),
            ("email", OptText),
            ("display_name", OptText),
            ("enabled", YesNo),
            ("created_at", Int),
            ("updated_at", Int),
        ],
    ),
    ("organizations", &[("name", Text), ("created_at", Int)]),
    (
        "memberships",
        &[
            ("org", Text),
            ("user_id", Text),
            ("is_default", YesNo),
            ("created_at", Int),
        ],
    ),
    (
        "roles",
        &[
            ("id", Text),
            ("org", OptText),
            ("name", Text),
            ("created_at", Int),
        ],
    ),
    (
        "role_permissions",
        &[("role_id", Text), ("resource", Text), ("action", Text)],
    ),
    (
        "service_accounts",
        &[
            ("id", Text),
            ("org", Text),
            ("name", Text),
            ("enabled", YesNo),
            ("created_at", Int),
            ("updated_at", Int),
        ],
    ),
    (
        "service_account_keys",
        &[
            ("id", Text),
            ("service_account_id", Text),
            ("algorithm", Text),
            ("public_key_pem", Text),
            ("created_at", Int),
        ],
    ),
    (
        "role_bindings",
        &[
            ("id", Text),
            ("role_id", Text),
            ("user_id", OptText),
            ("service_account_id", OptText),
            ("created_at", Int),
        ],
    ),
    (
        "org_groups",
        &[
            ("id", Text),
            ("org", Text),
            ("name", Text),
            ("created_at", Int),
            ("link", OptText),
        ],
    ),
    (
        "group_members",
        &[
            ("group_id", Text),
            ("user_id", OptText),
            ("service_account_id", OptText),
            ("created_at", Int),
        ],
    ),
    (
        "group_role_bindings",
        &[
            ("id", Text),
            ("role_id", Text),
            ("group_id", Text),
            ("created_at", Int),
        ],
    ),
];

fn columns(table: &str) -> Option<&'static [(&'static str, Kind)]> {
    TABLES.iter().find(|(t, _)| *t == table).map(|(_, c)| *c)
}

fn value(row: &AnyRow, column: &str, kind: Kind) -> Result<Value, StoreError> {
    Ok(match kind {
        Text => Value::from(row.try_get::<String, _>(column)?),
        OptText => row
            .try_get::<Option<String>, _>(column)?
            .map_or(Value::Null, Value::from),
        Int => Value::from(row.try_get::<i64, _>(column)?),
        YesNo => Value::from(row.try_get::<Flag, _>(column)?.0),
    })
}

impl SqlStore {
    /// Writes every row of the IAM state to `out`; returns how many.
    pub async fn export(&self, out: &mut impl Write) -> Result<usize, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut count = 0;
        for (table, columns) in TABLES {
            let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
            let sql = format!(
                "SELECT {} FROM {table} ORDER BY {}",
                names.join(", "),
                names.join(", ")
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut *conn)
                .await?;
            for row in rows {
                let mut fields = Map::new();
                for (column, kind) in *columns {
                    fields.insert((*column).to_owned(), value(&row, column, *kind)?);
                }
                let line = serde_json::json!({"table": table, "row": fields});
                writeln!(out, "{line}").map_err(|e| StoreError::Transfer(e.to_string()))?;
                count += 1;
            }
        }
        Ok(count)
    }

    /// Loads an export into this store, which must hold no IAM state, in
    /// one transaction: a bad line (named by its number) writes nothing.
    pub async fn import(&self, actor: &Actor, input: impl BufRead) -> Result<usize, StoreError> {
        let mut tx = self.begin().await?;
        for (table, _) in TABLES {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut *tx)
                .await?;
            if n > 0 {
                return Err(StoreError::Conflict(format!(
                    "import needs an empty store, and {table} has {n} rows"
                )));
            }
        }
        let mut count = 0;
        for (i, line) in input.lines().enumerate() {
            let bad = |why: String| StoreError::Transfer(format!("line {}: {why}", i + 1));
            let line = line.map_err(|e| bad(e.to_string()))?;
            if line.trim().is_empty() {
                continue;
            }
            let record: Value = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
            let table = record["table"].as_str().unwrap_or_default();
            let columns = columns(table).ok_or_else(|| bad(format!("unknown table {table:?}")))?;
            let row = record["row"]
                .as_object()
                .ok_or_else(|| bad("no \"row\" object".into()))?;
            let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
            let marks: Vec<String> = (1..=names.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                names.join(", "),
                marks.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (column, kind) in columns {
                let v = row.get(*column).unwrap_or(&Value::Null);
                let wrong = || {
                    bad(format!(
                        "{table}.{column}: {v} is not what the column holds"
                    ))
                };
                query = match kind {
                    Text => query.bind(v.as_str().ok_or_else(wrong)?.to_owned()),
                    OptText if v.is_null() => query.bind(None::<String>),
                    OptText => query.bind(Some(v.as_str().ok_or_else(wrong)?.to_owned())),
                    Int => query.bind(v.as_i64().ok_or_else(wrong)?),
                    YesNo => query.bind(v.as_bool().ok_or_else(wrong)?),
                };
            }
            query
                .execute(&mut *tx)
                .await
                .map_err(|e| bad(e.to_string()))?;
            count += 1;
        }
        let change = Change {
            action: "store.import",
            org: None,
            target: format!("{count} rows"),
            before: None,
            after: None,
        };
        commit_audited(tx, actor, change).await?;
        Ok(count)
    }
}
