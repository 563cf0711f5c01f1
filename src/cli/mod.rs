//! The command line: the binary's edge, where errors become messages (and
//! the only place `anyhow` is used).

mod explain;
mod health;
mod iam;
mod init;
mod keys;
mod output;
mod token;
mod users;

use std::{io::Write, path::PathBuf, process::ExitCode};

use anyhow::Context;

use clap::{Parser, Subcommand};

pub use token::{MintToken, TokenCommand};
pub use users::{AddUser, UsersCommand};

use crate::{
    config::{Overrides, Settings},
    startup::{self, App, shutdown_signal},
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

    /// SQLite database file, or a postgres:// URL [default: dispatch-authz.db].
    #[arg(long, global = true, value_name = "PATH|URL")]
    pub database: Option<String>,

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
    /// Write the whole IAM state (users, organizations, members, roles,
    /// bindings, service accounts and their keys) as JSON lines.
    Export {
        /// The file to write [default: standard output].
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Load an export into an empty store, in one transaction (for moving
    /// from SQLite to PostgreSQL: `--database postgres://...`).
    Import {
        /// The export to read.
        #[arg(value_name = "FILE")]
        input: PathBuf,
    },
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
    /// Make a running server read its configuration file again (as SIGHUP
    /// does), through the admin API; needs a global role granting
    /// iam:update. Prints what changed and what needs a restart.
    Reload {
        #[command(flatten)]
        connection: iam::Connection,
    },
    /// Decide one request as the server would (its configuration, its
    /// store, its code) and print every step: path reading, route, action,
    /// organization, each role considered and what granted it or why
    /// nothing did. Exit status 0 on allow, 2 on deny.
    Explain(explain::Explain),
    /// Ask the running server (server.listen of the configuration) whether
    /// it is healthy, over gRPC health: exit 0 when SERVING. For a
    /// container's HEALTHCHECK or a probe that can only run a command.
    Healthcheck {
        /// Ask for readiness (keys loaded, database answering) instead of
        /// liveness.
        #[arg(long)]
        ready: bool,
    },
    /// Write a working development setup into DIR: a configuration whose
    /// issuer "dev" trusts a fresh key pair, the private key (for `token
    /// mint`) and, once served, the database. Never overwrites.
    Init {
        #[arg(default_value = "dispatch-authz-dev")]
        dir: PathBuf,
    },
    /// Developer tools for tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
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
    match &cli.command {
        Command::Token {
            command: TokenCommand::Mint(args),
        } => {
            println!("{}", token::mint(args)?);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Init { dir } => {
            init::init(dir)?;
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    if let Command::Users { connection, .. } | Command::Iam { connection, .. } = &cli.command {
        output::set_format(output::Format::json(connection.json));
    }
    let settings = Settings::load(cli.config.as_deref(), &overrides)?;
    let config = settings.compile()?;
    let _log = telemetry::init(config.log_format)?;
    match cli.command {
        Command::Serve { .. } => {
            let app = App::build(config)
                .await?
                .reloadable(cli.config.clone(), overrides, settings);
            app.run_until_stopped(shutdown_signal()).await?;
        }
        Command::Migrate => {
            startup::migrate(&config).await?;
            println!("database {} is up to date", config.database);
        }
        Command::Users {
            connection,
            command,
        } => match connection.server {
            Some(_) => iam::users(&connection, command).await?,
            None => users::users(command, &config).await?,
        },
        Command::Iam {
            connection,
            command,
        } => iam::run(&connection, command).await?,
        Command::Bootstrap(add) => users::bootstrap(&add, &config).await?,
        Command::Healthcheck { ready } => {
            let service = if ready {
                "envoy.service.auth.v3.Authorization"
            } else {
                ""
            };
            health::healthcheck(&config, service).await?;
        }
        Command::Reload { connection } => iam::reload(&connection).await?,
        Command::Explain(args) => return explain::explain(&args, config).await,
        Command::Export { output } => {
            let store = startup::open_existing_store(&config).await?;
            let rows = match output {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut out = std::io::BufWriter::new(file);
                    let rows = store.export(&mut out).await?;
                    out.flush()?;
                    rows
                }
                None => store.export(&mut std::io::stdout().lock()).await?,
            };
            eprintln!("exported {rows} rows from {}", config.database);
        }
        Command::Import { input } => {
            let store = startup::open_store(&config).await?;
            let file = std::fs::File::open(&input)
                .with_context(|| format!("cannot read {}", input.display()))?;
            let actor = users::local_actor();
            let rows = store.import(&actor, std::io::BufReader::new(file)).await?;
            println!("imported {rows} rows into {}", config.database);
        }
        Command::Token { .. } | Command::Init { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}
