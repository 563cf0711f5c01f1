//! How long a change made through one replica takes to reach another
//! (issue 12): two sidecars on one PostgreSQL database, a user allowed and
//! cached by replica B; the user is disabled through replica A's store and B
//! is asked every millisecond until it refuses. Then the user is enabled
//! again and B is asked until it allows. Reports the median and the worst
//! of `--rounds` each.
//!
//! ```sh
//! eval "$(scripts/postgres.sh start "$(mktemp -d)")"
//! cargo run --release --example replica_lag -- --postgres "$DISPATCH_TEST_POSTGRES_URL"
//! ```

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use clap::Parser;
use dispatch_authz::{
    config::{Overrides, Settings},
    domain::{IssuerName, Login, Subject},
    identity::unix_now,
    startup::App,
    store::{Actor, NewUser, UserAdmin, UserRef},
};
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, attribute_context, authorization_client::AuthorizationClient,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sqlx::Connection;

const ISS: &str = "https://issuer.replica-lag";

#[derive(Parser)]
struct Args {
    /// A PostgreSQL server where databases may be created.
    #[arg(long)]
    postgres: String,
    /// Disable/enable rounds.
    #[arg(long, default_value_t = 100)]
    rounds: usize,
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/keys/{name}"))
}

async fn fresh_database(admin: &str) -> anyhow::Result<String> {
    let name = format!("lag_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let mut url = url::Url::parse(admin)?;
    url.set_path(&name);
    Ok(url.to_string())
}

/// A replica on `database`, serving until the process ends.
async fn replica(dir: &std::path::Path, name: &str, database: &str) -> anyhow::Result<App> {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
[store]
database = "{database}"
[cache]
users_ttl_secs = 3600
[admin]
listen = "off"
[operations]
listen = "off"
[authorization]
mode = "registered"
[[issuers]]
name = "lag"
issuer = "{ISS}"
audiences = ["dispatch"]
[[issuers.public_keys]]
pem_file = "{key}"
algorithm = "ES256"
"#,
            key = fixture("ec256.pub.pem").display(),
        ),
    )?;
    let config = Settings::load(Some(&config), &Overrides::default())?.compile()?;
    Ok(App::build(config).await?)
}

fn request(token: &str) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(attribute_context::Request {
                time: None,
                http: Some(attribute_context::HttpRequest {
                    method: "GET".into(),
                    path: "/".into(),
                    host: "api.example.com".into(),
                    headers: [("authorization".to_owned(), format!("Bearer {token}"))].into(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let database = fresh_database(&args.postgres).await?;
    let dir = tempfile::tempdir()?;
    let a = replica(dir.path(), "a", &database).await?;
    let b = replica(dir.path(), "b", &database).await?;
    let store = a.store().clone();
    let b_addr = b.local_addr().expect("tcp");
    tokio::spawn(a.run_until_stopped(std::future::pending()));
    tokio::spawn(b.run_until_stopped(std::future::pending()));
    // Let both follow the change feed before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let actor = Actor::local("replica-lag");
    let user = store
        .add(
            &actor,
            NewUser {
                issuer: IssuerName::parse("lag")?,
                subject: Subject::parse("u1")?,
                login: Login::parse("user1")?,
                email: None,
                display_name: None,
            },
        )
        .await?;
    let key = EncodingKey::from_ec_pem(&std::fs::read(fixture("ec256.pem"))?)?;
    let now = unix_now();
    let claims = serde_json::json!({
        "iss": ISS, "aud": "dispatch", "sub": "u1", "iat": now, "exp": now + 3600,
    });
    let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key)?;
    let mut client = AuthorizationClient::connect(format!("http://{b_addr}")).await?;
    let mut status = async || -> anyhow::Result<i32> {
        let answer = client.check(request(&token)).await?.into_inner();
        Ok(answer.status.map_or(-1, |s| s.code))
    };
    // Until B answers `want`; how long that took.
    async fn until(
        want: i32,
        status: &mut impl AsyncFnMut() -> anyhow::Result<i32>,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        while status().await? != want {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(10),
                "no change seen in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(started.elapsed())
    }
    const OK: i32 = 0;
    const DENIED: i32 = 7;
    until(OK, &mut status).await?;
    let who = UserRef::Id(user.id);
    let (mut refused, mut allowed) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        store.set_enabled(&actor, &who, false).await?;
        refused.push(until(DENIED, &mut status).await?);
        store.set_enabled(&actor, &who, true).await?;
        allowed.push(until(OK, &mut status).await?);
    }
    for (what, mut times) in [
        ("disable -> refused", refused),
        ("enable -> allowed", allowed),
    ] {
        times.sort();
        println!(
            "{what}: median {:.1} ms, worst {:.1} ms over {} rounds",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            times.len()
        );
    }
    Ok(())
}
