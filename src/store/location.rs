//! Where the store lives: a SQLite file (the zero-configuration default) or
//! a PostgreSQL server, for several replicas sharing one truth.

use std::{
    fmt,
    path::{Path, PathBuf},
};

/// The `store.database` setting, read: a `postgres://` or `postgresql://`
/// URL, or else a SQLite file's path.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    /// A libpq-style URL (`sslmode` and the other parameters sqlx knows).
    /// It may hold a password: shown only with it masked.
    Postgres(String),
}

impl StoreLocation {
    pub fn parse(value: &str) -> Self {
        let scheme = value.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgres" | "postgresql") => Self::Postgres(value.to_owned()),
            _ => Self::Sqlite(PathBuf::from(value)),
        }
    }

    pub fn sqlite(path: impl AsRef<Path>) -> Self {
        Self::Sqlite(path.as_ref().to_path_buf())
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }
}

/// The path, or the URL with its password masked: safe for logs and errors.
impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => path.display().fmt(f),
            Self::Postgres(url) => f.write_str(&masked(url)),
        }
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreLocation({self})")
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, and a
/// `password=` parameter likewise. A URL that does not parse is not shown.
fn masked(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "postgres://<unparsable URL>".into();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k.eq_ignore_ascii_case("password") {
                "***".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    if !pairs.is_empty() {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_anything_else_a_file() {
        assert!(StoreLocation::parse("postgres://u@h/db").is_postgres());
        assert!(StoreLocation::parse("PostgreSQL://u@h/db").is_postgres());
        assert_eq!(
            StoreLocation::parse("dispatch-authz.db"),
            StoreLocation::sqlite("dispatch-authz.db")
        );
        assert_eq!(
            StoreLocation::parse("/var/lib/x:y.db"),
            StoreLocation::sqlite("/var/lib/x:y.db")
        );
    }

    #[test]
    fn a_password_never_shows() {
        for url in [
            "postgres://app:hunter2@db.internal:5432/authz?sslmode=require",
            "postgres://app@db.internal/authz?password=hunter2&sslmode=verify-full",
        ] {
            let location = StoreLocation::parse(url);
            for shown in [location.to_string(), format!("{location:?}")] {
                assert!(!shown.contains("hunter2"), "{shown}");
                assert!(
                    shown.contains("db.internal") && shown.contains("sslmode"),
                    "{shown}"
                );
            }
        }
        assert!(
            !StoreLocation::parse("postgres://a:hunter2@[bad")
                .to_string()
                .contains("hunter2")
        );
    }
}
