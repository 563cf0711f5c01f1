//! The world of a run: a seeded store, tokens, and Check requests.

use super::*;

pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: PathBuf,
    pub(crate) hit: Arc<Vec<CheckRequest>>,
    pub(crate) deny: Arc<Vec<CheckRequest>>,
}

pub(crate) async fn setup(args: &RunArgs) -> anyhow::Result<Fixture> {
    let dir = tempfile::tempdir()?;
    let db = match &args.database {
        // An empty database of its own on that server (the seed assumes one).
        Some(url) => StoreLocation::Postgres(fresh_postgres_database(url).await?),
        None => StoreLocation::sqlite(dir.path().join("users.db")),
    };
    let config = dir.path().join("sidecar.toml");
    let capacity = args.users * 2 + 10_000;
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
[store]
database = "{db}"
[cache]
users_capacity = {capacity}
users_ttl_secs = 3600
tokens_capacity = {capacity}
tokens_max_ttl_secs = 3600
[log]
format = "json"
[admin]
listen = "off"
[[issuers]]
name = "load"
issuer = "{ISS}"
audiences = ["dispatch"]
[[issuers.public_keys]]
pem_file = "{key}"
algorithm = "ES256"
"#,
            db = match &db {
                StoreLocation::Postgres(url) => url.clone(),
                StoreLocation::Sqlite(path) => path.display().to_string(),
            },
            key = fixture("ec256.pub.pem").display(),
        ),
    )?;
    let started = Instant::now();
    seed(&db, args.users).await?;
    eprintln!("seeded {} users in {:.1?}", args.users, started.elapsed());
    let started = Instant::now();
    let key = EncodingKey::from_ec_pem(&std::fs::read(fixture("ec256.pem"))?)?;
    let hit = (0..args.users)
        .map(|i| request(&key, &format!("u{i}")))
        .collect();
    let deny = (0..1000)
        .map(|i| request(&key, &format!("nobody{i}")))
        .collect();
    eprintln!(
        "minted {} tokens in {:.1?}",
        args.users + 1000,
        started.elapsed()
    );
    Ok(Fixture {
        dir,
        config,
        hit: Arc::new(hit),
        deny: Arc::new(deny),
    })
}

/// `CREATE DATABASE` on the server `admin` names; the new database's URL.
async fn fresh_postgres_database(admin: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let name = format!("load_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let mut url = url::Url::parse(admin)?;
    url.set_path(&name);
    Ok(url.to_string())
}

/// Through the store's own SQL dialect: `$N`, booleans as `TRUE`.
pub(crate) async fn seed(db: &StoreLocation, users: usize) -> anyhow::Result<()> {
    use dispatch_authz::store::SqlStore;
    let store = SqlStore::open(db, None).await?;
    let mut tx = store.pool().begin().await?;
    let now = unix_now() as i64;
    // The default (RBAC) mode: every user is a member of `load` (default
    // org) holding the role `developer` (`function:*`).
    for sql in [
        "INSERT INTO organizations (name, created_at) VALUES ('load', $1)",
        "INSERT INTO roles (id, org, name, created_at) VALUES ('r1', 'load', 'developer', $1)",
        "INSERT INTO role_permissions (role_id, resource, action) VALUES ('r1', 'function', '*')",
    ] {
        sqlx::query(sql).bind(now).execute(&mut *tx).await?;
    }
    for i in 0..users {
        let id = dispatch_authz::domain::UserId::new().to_string();
        sqlx::query(
            "INSERT INTO users (id, issuer, subject, login, enabled, created_at, updated_at) \
             VALUES ($1, 'load', $2, $3, TRUE, $4, $4)",
        )
        .bind(&id)
        .bind(format!("u{i}"))
        .bind(format!("user{i}"))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO memberships (org, user_id, is_default, created_at) VALUES ('load', $1, TRUE, $2)",
        )
        .bind(&id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO role_bindings (id, role_id, user_id, created_at) VALUES ($1, 'r1', $2, $3)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) fn request(key: &EncodingKey, subject: &str) -> CheckRequest {
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": ISS, "aud": "dispatch", "sub": subject, "iat": now, "exp": now + 7200,
    });
    let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, key).unwrap();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                time: None,
                http: Some(attribute_context::HttpRequest {
                    id: "1".into(),
                    method: "GET".into(),
                    path: "/v1/function/hello?x=1".into(),
                    host: "api.example.com".into(),
                    headers: [
                        ("authorization".to_owned(), format!("Bearer {token}")),
                        (
                            "x-request-id".to_owned(),
                            "6c1f4a8e-0b1d-4f0e-9a3c-2f6e1d0b9c7a".to_owned(),
                        ),
                        ("user-agent".to_owned(), "loadtest".to_owned()),
                    ]
                    .into(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
    }
}
