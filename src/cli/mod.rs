//! The command line: the binary's edge, where errors become messages (and
//! the only place `anyhow` is used).

mod iam;

use std::{path::PathBuf, process::ExitCode};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::{
    config::{Config, Overrides, Settings},
    domain::{DisplayName, Email, IssuerName, Login, Subject},
    startup::{self, App, shutdown_signal},
    store::{Actor, NewUser, User, UserRef},
    telemetry::{self, LogFormat},
};

/// dispatch-authz: the identity layer for Envoy (ext_authz).
///
/// Envoy asks dispatch-authz about every request. It verifies the caller's
/// bearer token (a JWT from a configured issuer, a GitHub token, or a service
/// account's own signed token), looks the subject up in its own database,
/// decides with organizations and roles, and allows the request with
/// x-dispatch-user, x-dispatch-org and related headers set, or refuses it
/// with 401, 403 or 503.
///
/// Start with `dispatch-authz serve` and `dispatch-authz bootstrap`; then
/// manage organizations, roles and members with `dispatch-authz iam`.
#[derive(Debug, Parser)]
#[command(name = "dispatch-authz", version, propagate_version = true)]
pub struct Cli {
    /// TOML configuration file (see README.md, "Configuration").
    #[arg(
        long,
        short,
        global = true,
        env = "DISPATCH_AUTHZ_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// SQLite database file [default: dispatch-authz.db].
    #[arg(long, global = true, value_name = "PATH")]
    pub database: Option<PathBuf>,

    /// Log format (RUST_LOG sets the level) [default: pretty].
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the ext_authz gRPC server until SIGTERM or Ctrl-C.
    Serve {
        /// HOST:PORT or unix:PATH [default: 127.0.0.1:50051].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Create the database if needed and apply migrations, then exit.
    Migrate,
    /// Manage users. With --server, through the admin API (changes take
    /// effect at once); without, in the database file (a running server
    /// sees them within cache.users_ttl_secs, default 30 s).
    Users {
        #[command(flatten)]
        connection: iam::Connection,
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Make a user the first global admin (role `admin`, `*:*`), adding the
    /// user if needed. Works on the database file; refuses if a global
    /// admin exists.
    Bootstrap(AddUser),
    /// Organizations, roles, service accounts, members and role bindings,
    /// through the admin API of a running server.
    Iam {
        #[command(flatten)]
        connection: iam::Connection,
        #[command(subcommand)]
        command: iam::IamCommand,
    },
    /// Developer tools for tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Register a user: the source (by configured name) and its subject,
    /// e.g. `--source github --github-id 583231 --login octocat`.
    Add(AddUser),
    /// List users.
    List {
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one user, by id or SOURCE:SUBJECT.
    Show { user: String },
    /// Refuse the user's requests from now on (within the cache TTL).
    Disable { user: String },
    /// Allow a disabled user again.
    Enable { user: String },
    /// Delete a user.
    Remove { user: String },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["subject", "github_id"])))]
pub struct AddUser {
    /// Configured source name: an issuers[].name (e.g. dex) or the github source.
    #[arg(long, visible_alias = "issuer", value_name = "NAME")]
    pub source: String,
    /// The source's stable subject (the token's subject claim).
    #[arg(long)]
    pub subject: Option<String>,
    /// GitHub's numeric user id (the subject for the github source).
    #[arg(long, value_name = "ID")]
    pub github_id: Option<u64>,
    /// Login, injected as x-dispatch-user.
    #[arg(long)]
    pub login: String,
    #[arg(long)]
    pub email: Option<String>,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
}

impl AddUser {
    /// `--subject`, or `--github-id` (GitHub's subject).
    fn subject(&self) -> String {
        match (self.github_id, &self.subject) {
            (Some(id), _) => id.to_string(),
            (None, Some(subject)) => subject.clone(),
            (None, None) => unreachable!("clap requires one of them"),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Sign a JWT with a private key (for development and tests).
    Mint(MintToken),
}

#[derive(Debug, Args)]
pub struct MintToken {
    /// PEM private key (for HS256: a file holding the shared secret).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA or HS256.
    #[arg(long, default_value = "RS256")]
    pub algorithm: String,
    #[arg(long)]
    pub kid: Option<String>,
    /// A service account's token: `iss` = ORG/NAME, no `sub` or `aud`
    /// needed (as Dispatch's CLI signed them).
    #[arg(long, value_name = "ORG/NAME", conflicts_with_all = ["issuer", "subject"])]
    pub service_account: Option<String>,
    /// `iss` claim.
    #[arg(long, required_unless_present = "service_account")]
    pub issuer: Option<String>,
    /// `aud` claim.
    #[arg(long)]
    pub audience: Option<String>,
    /// `sub` claim.
    #[arg(long, required_unless_present = "service_account")]
    pub subject: Option<String>,
    /// `preferred_username` claim.
    #[arg(long)]
    pub login: Option<String>,
    /// `email` claim.
    #[arg(long)]
    pub email: Option<String>,
    /// Lifetime in seconds (negative mints an expired token).
    #[arg(long, default_value_t = 3600, allow_hyphen_values = true)]
    pub ttl_secs: i64,
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let listen = match &cli.command {
        Command::Serve { listen } => listen.clone(),
        _ => None,
    };
    let overrides = Overrides {
        listen,
        database: cli.database.clone(),
        log_format: cli.log_format,
    };
    if let Command::Token {
        command: TokenCommand::Mint(args),
    } = &cli.command
    {
        println!("{}", mint(args)?);
        return Ok(ExitCode::SUCCESS);
    }
    let config = Settings::load(cli.config.as_deref(), &overrides)?.compile()?;
    let _log = telemetry::init(config.log_format);
    match cli.command {
        Command::Serve { .. } => {
            let app = App::build(config).await?;
            app.run_until_stopped(shutdown_signal()).await?;
        }
        Command::Migrate => {
            startup::migrate(&config).await?;
            println!("database {} is up to date", config.database.display());
        }
        Command::Users {
            connection,
            command,
        } => match connection.server {
            Some(_) => iam::users(&connection, command).await?,
            None => users(command, &config).await?,
        },
        Command::Iam {
            connection,
            command,
        } => iam::run(&connection, command).await?,
        Command::Bootstrap(add) => bootstrap(&add, &config).await?,
        Command::Token { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn users(command: UsersCommand, config: &Config) -> anyhow::Result<()> {
    let iam = startup::local_iam(config).await?;
    let actor = local_actor();
    match command {
        UsersCommand::Add(add) => {
            let user = iam.create_user(&actor, new_user(&add, config)?).await?;
            print_user(&user);
        }
        UsersCommand::List { json } => {
            let users = iam.list_users(&actor).await?;
            if json {
                for user in &users {
                    println!("{}", user_json(user));
                }
            } else {
                print_table(&users);
            }
        }
        UsersCommand::Show { user } => {
            let r = UserRef::parse(&user)?;
            print_user(&iam.get_user(&actor, &r).await?);
        }
        UsersCommand::Disable { user } => print_user(
            &iam.set_user_enabled(&actor, &UserRef::parse(&user)?, false)
                .await?,
        ),
        UsersCommand::Enable { user } => print_user(
            &iam.set_user_enabled(&actor, &UserRef::parse(&user)?, true)
                .await?,
        ),
        UsersCommand::Remove { user } => {
            let removed = iam.delete_user(&actor, &UserRef::parse(&user)?).await?;
            println!(
                "removed {} ({}:{})",
                removed.id, removed.issuer, removed.subject
            );
        }
    }
    Ok(())
}

async fn bootstrap(add: &AddUser, config: &Config) -> anyhow::Result<()> {
    let iam = startup::local_iam(config).await?;
    if iam.has_global_admin().await? {
        bail!(
            "a global admin exists already; add more through the admin API (dispatch-authz iam ...)"
        );
    }
    let actor = local_actor();
    let new = new_user(add, config)?;
    let r = UserRef::Identity(new.issuer.clone(), new.subject.clone());
    let user = match iam.find_user(&actor, &r).await? {
        Some(user) => user,
        None => iam.create_user(&actor, new).await?,
    };
    iam.bootstrap(&actor, &user).await?;
    print_user(&user);
    println!("is now a global admin (role admin, permission *:*)");
    Ok(())
}

/// Who runs a local (database-file) command, for the audit log.
fn local_actor() -> Actor {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    Actor::local(&user)
}

fn new_user(add: &AddUser, config: &Config) -> anyhow::Result<NewUser> {
    let issuer = IssuerName::parse(&add.source)?;
    let sources = config.source_names();
    if !sources.contains(&&issuer) {
        let known: Vec<&str> = sources.iter().map(|i| i.as_str()).collect();
        bail!(
            "source \"{issuer}\" is not configured (configured: {}); pass --config with the server's configuration",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        );
    }
    Ok(NewUser {
        issuer,
        subject: Subject::parse(&add.subject())?,
        login: Login::parse(&add.login)?,
        email: add.email.as_deref().map(Email::parse).transpose()?,
        display_name: add.name.as_deref().map(DisplayName::parse).transpose()?,
    })
}

fn timestamp(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

fn user_json(user: &User) -> serde_json::Value {
    serde_json::json!({
        "id": user.id.to_string(),
        "source": user.issuer.as_str(),
        "subject": user.subject.as_str(),
        "login": user.login.as_str(),
        "email": user.email.as_ref().map(Email::as_str),
        "display_name": user.display_name.as_ref().map(DisplayName::as_str),
        "enabled": user.enabled,
        "created_at": timestamp(user.created_at),
        "updated_at": timestamp(user.updated_at),
    })
}

fn print_user(user: &User) {
    let json = user_json(user);
    for (key, value) in json.as_object().into_iter().flatten() {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        println!("{key:<13}{value}");
    }
}

fn print_table(users: &[User]) {
    println!(
        "{:<36}  {:<16}  {:<24}  {:<20}  ENABLED",
        "ID", "SOURCE", "SUBJECT", "LOGIN"
    );
    for u in users {
        println!(
            "{:<36}  {:<16}  {:<24}  {:<20}  {}",
            u.id.to_string(),
            u.issuer.as_str(),
            u.subject.as_str(),
            u.login.as_str(),
            if u.enabled { "yes" } else { "no" }
        );
    }
}

impl MintToken {
    /// A short-lived token for a CLI call as a service account.
    fn for_service_account(account: &str, key: &std::path::Path, algorithm: &str) -> Self {
        Self {
            key: key.to_owned(),
            algorithm: algorithm.to_owned(),
            kid: None,
            service_account: Some(account.to_owned()),
            issuer: None,
            audience: None,
            subject: None,
            login: None,
            email: None,
            ttl_secs: 300,
        }
    }
}

fn mint(args: &MintToken) -> anyhow::Result<String> {
    let algorithm: Algorithm = args
        .algorithm
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown algorithm {:?}", args.algorithm))?;
    let bytes = std::fs::read(&args.key)
        .with_context(|| format!("cannot read key {}", args.key.display()))?;
    let key = match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Ok(EncodingKey::from_secret(
            String::from_utf8_lossy(&bytes).trim().as_bytes(),
        )),
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(&bytes),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(&bytes),
        _ => EncodingKey::from_rsa_pem(&bytes),
    }
    .with_context(|| {
        format!(
            "{} is not a PEM private key for {algorithm:?}",
            args.key.display()
        )
    })?;
    let now = crate::identity::unix_now() as i64;
    let mut claims = serde_json::json!({ "iat": now, "exp": now + args.ttl_secs });
    let iss = args.service_account.as_ref().or(args.issuer.as_ref());
    claims["iss"] = iss.cloned().into();
    if let Some(subject) = &args.subject {
        claims["sub"] = subject.clone().into();
        claims["nbf"] = now.into();
    }
    if let Some(audience) = &args.audience {
        claims["aud"] = audience.clone().into();
    }
    if let Some(login) = &args.login {
        claims["preferred_username"] = login.clone().into();
    }
    if let Some(email) = &args.email {
        claims["email"] = email.clone().into();
    }
    let mut header = Header::new(algorithm);
    header.kid = args.kid.clone();
    Ok(jsonwebtoken::encode(&header, &claims, &key)?)
}
