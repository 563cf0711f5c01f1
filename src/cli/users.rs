//! `users ...` on the database file and `bootstrap`: the operator's local
//! commands, through the same `iam` service as the admin API.

use anyhow::bail;
use clap::{Args, Subcommand};

use super::output;
use crate::{
    config::Config,
    domain::{DisplayName, Email, IssuerName, Login, Subject},
    startup,
    store::{Actor, NewUser, User, UserRef},
};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Register a user: the source (by configured name) and its subject,
    /// e.g. `--source github --github-id 583231 --login octocat`.
    Add(AddUser),
    /// List users (`--json`: JSON lines).
    List,
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
    pub(super) fn subject(&self) -> String {
        match (self.github_id, &self.subject) {
            (Some(id), _) => id.to_string(),
            (None, Some(subject)) => subject.clone(),
            (None, None) => unreachable!("clap requires one of them"),
        }
    }
}

pub(super) async fn users(command: UsersCommand, config: &Config) -> anyhow::Result<()> {
    let iam = match command {
        UsersCommand::List | UsersCommand::Show { .. } => {
            startup::local_iam_read_only(config).await?
        }
        _ => startup::local_iam(config).await?,
    };
    let actor = local_actor();
    match command {
        UsersCommand::Add(add) => {
            let user = iam.create_user(&actor, new_user(&add, config)?).await?;
            print_user(&user);
        }
        UsersCommand::List => {
            let users: Vec<_> = iam
                .list_users(&actor)
                .await?
                .iter()
                .map(user_json)
                .collect();
            output::many(output::format(), &users, USER_COLUMNS);
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

pub(super) async fn bootstrap(add: &AddUser, config: &Config) -> anyhow::Result<()> {
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
pub(super) fn local_actor() -> Actor {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    Actor::local(&user)
}

fn new_user(add: &AddUser, config: &Config) -> anyhow::Result<NewUser> {
    let issuer = IssuerName::parse(&add.source)?;
    let sources = config.source_names();
    if !sources.contains(&&issuer) {
        let known: Vec<&str> = sources.iter().map(|i| i.as_str()).collect();
        if known.is_empty() {
            bail!(
                "source \"{issuer}\" is not configured: no identity source is. Pass --config \
                 with the server's configuration, or make a development one with \
                 `dispatch-authz init DIR` (its source is \"dev\")"
            );
        }
        bail!(
            "source \"{issuer}\" is not configured (configured: {}); pass --config with the server's configuration",
            known.join(", ")
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

fn user_json(user: &User) -> serde_json::Value {
    serde_json::json!({
        "id": user.id.to_string(),
        "source": user.issuer.as_str(),
        "subject": user.subject.as_str(),
        "login": user.login.as_str(),
        "email": user.email.as_ref().map(Email::as_str),
        "display_name": user.display_name.as_deref().map(DisplayName::as_str),
        "enabled": user.enabled,
        "created_at": output::timestamp(user.created_at),
        "updated_at": output::timestamp(user.updated_at),
    })
}

/// The columns of a user table, with or without `--server`.
pub(super) const USER_COLUMNS: &[&str] = &["id", "source", "subject", "login", "enabled"];

fn print_user(user: &User) {
    output::one(output::format(), &user_json(user));
}
