//! `dispatch-authz iam ...` and `users --server ...`: the CLI over the admin
//! API, shaped like Dispatch's `dispatch iam create|get|delete ...`.
//! Replies are printed as JSON, one object per line.

mod commands;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use tonic::{Request, transport::Channel};

pub use commands::IamCommand;
use commands::{Create, Delete, Get, Update};

use super::{MintToken, UsersCommand, output, token::mint};
use crate::{
    config::DEFAULT_ADMIN_LISTEN,
    proto::admin::{self as pb, admin_client::AdminClient},
};

/// How to reach and authenticate to the admin API.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Admin API address [iam default: http://127.0.0.1:50052]. For
    /// `users`, going through the server (rather than the database file)
    /// makes changes take effect on the very next check.
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token of the caller (a user's JWT or GitHub token).
    #[arg(long, global = true, env = "DISPATCH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Authenticate as this service account (ORG/NAME) with a token signed
    /// on the spot with --key, as Dispatch's CLI did.
    #[arg(long, global = true, value_name = "ORG/NAME", requires = "key")]
    pub service_account: Option<String>,
    /// The service account's private key (PEM).
    #[arg(long, global = true, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Print JSON lines instead of a table (times ISO-8601, absent values
    /// null: the same with or without --server).
    #[arg(long, global = true)]
    pub json: bool,
    /// Algorithm of --key [default: the key's own].
    #[arg(long, global = true)]
    pub algorithm: Option<String>,
}

struct Admin {
    client: AdminClient<Channel>,
    authorization: String,
}

impl Admin {
    async fn connect(connection: &Connection) -> anyhow::Result<Self> {
        let token = match (
            &connection.token,
            &connection.service_account,
            &connection.key,
        ) {
            (_, Some(account), Some(key)) => mint(&MintToken::for_service_account(
                account,
                key,
                connection.algorithm.as_deref(),
            ))?,
            (Some(token), _, _) => token.clone(),
            _ => bail!(
                "no credential: pass --token (or set DISPATCH_TOKEN), or --service-account with --key"
            ),
        };
        let server = connection
            .server
            .clone()
            .unwrap_or_else(|| format!("http://{DEFAULT_ADMIN_LISTEN}"));
        let client = AdminClient::connect(server.clone())
            .await
            .with_context(|| format!("cannot reach the admin API at {server}"))?;
        Ok(Self {
            client,
            authorization: format!("Bearer {token}"),
        })
    }

    fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Ok(value) = self.authorization.parse() {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }
}

fn print<T: serde::Serialize>(item: &T) {
    output::one(output::format(), &output::record(item));
}

fn print_all<T: serde::Serialize>(items: &[T]) {
    let records: Vec<_> = items.iter().map(output::record).collect();
    let columns: &[&str] = match items.first().map(output::record) {
        // Users: the columns `users list` shows on the database file too.
        Some(r) if r.get("login").is_some() => super::users::USER_COLUMNS,
        Some(r) if r.get("actor").is_some() => &["at", "actor", "action", "org", "target"],
        _ => &[],
    };
    output::many(output::format(), &records, columns);
}

fn status(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", e.code(), e.message())
}

fn read(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

macro_rules! call {
    ($admin:expr, $method:ident, $message:expr) => {{
        let request = $admin.request($message);
        $admin
            .client
            .$method(request)
            .await
            .map_err(status)?
            .into_inner()
    }};
}

pub async fn run(connection: &Connection, command: IamCommand) -> anyhow::Result<()> {
    let mut a = Admin::connect(connection).await?;
    match command {
        IamCommand::Create { what } => create(&mut a, what).await,
        IamCommand::Get { what } => get(&mut a, what).await,
        IamCommand::Delete { what } => delete(&mut a, what).await,
        IamCommand::Update { what } => update(&mut a, what).await,
    }
}

async fn update(a: &mut Admin, what: Update) -> anyhow::Result<()> {
    match what {
        Update::Serviceaccount {
            name,
            org,
            enable,
            disable: _,
        } => {
            let message = pb::SetServiceAccountEnabledRequest {
                org,
                name,
                enabled: enable,
            };
            print(&call!(a, set_service_account_enabled, message));
        }
        Update::Group {
            name,
            org,
            link,
            unlink: _,
        } => {
            let message = pb::LinkGroupRequest {
                org,
                name,
                link: link.unwrap_or_default(),
            };
            print(&call!(a, link_group, message));
        }
    }
    Ok(())
}

async fn create(a: &mut Admin, what: Create) -> anyhow::Result<()> {
    match what {
        Create::Organization { name } => {
            print(&call!(a, create_organization, pb::OrganizationRef { name }))
        }
        Create::Role {
            name,
            scope,
            permissions,
        } => {
            let role = pb::Role {
                org: scope.org(),
                name,
                permissions,
            };
            print(&call!(a, create_role, role))
        }
        Create::Serviceaccount {
            name,
            org,
            public_key,
            key_algorithm,
        } => {
            let keys = match public_key {
                Some(path) => vec![pb::PublicKey {
                    algorithm: key_algorithm,
                    pem: read(&path)?,
                    ..Default::default()
                }],
                None => Vec::new(),
            };
            let message = pb::CreateServiceAccountRequest { org, name, keys };
            print(&call!(a, create_service_account, message))
        }
        Create::Key {
            name,
            org,
            public_key,
            key_algorithm,
        } => {
            let message = pb::AddServiceAccountKeyRequest {
                org,
                name,
                algorithm: key_algorithm,
                pem: read(&public_key)?,
            };
            print(&call!(a, add_service_account_key, message))
        }
        Create::Member { user, org, default } => {
            let message = pb::AddMemberRequest { org, user, default };
            print(&call!(a, add_member, message))
        }
        Create::Binding(args) => print(&call!(a, create_role_binding, args.binding())),
        Create::Group { name, org } => print(&call!(a, create_group, pb::GroupRef { org, name })),
        Create::Groupmember(args) => print(&call!(a, add_group_member, args.message())),
    }
    Ok(())
}

async fn get(a: &mut Admin, what: Get) -> anyhow::Result<()> {
    match what {
        Get::Organization { name: Some(name) } => {
            print(&call!(a, get_organization, pb::OrganizationRef { name }))
        }
        Get::Organization { name: None } => {
            let list = call!(a, list_organizations, pb::ListOrganizationsRequest {});
            print_all(&list.organizations);
        }
        Get::Role {
            name: Some(name),
            scope,
        } => print(&call!(
            a,
            get_role,
            pb::RoleRef {
                org: scope.org(),
                name
            }
        )),
        Get::Role { name: None, scope } => {
            let list = call!(a, list_roles, pb::ListRolesRequest { org: scope.org() });
            print_all(&list.roles);
        }
        Get::Serviceaccount {
            name: Some(name),
            org,
        } => print(&call!(
            a,
            get_service_account,
            pb::ServiceAccountRef { org, name }
        )),
        Get::Serviceaccount { name: None, org } => {
            let message = pb::ListServiceAccountsRequest { org };
            let list = call!(a, list_service_accounts, message);
            print_all(&list.service_accounts);
        }
        Get::Group {
            name: Some(name),
            org,
        } => print(&call!(a, get_group, pb::GroupRef { org, name })),
        Get::Group { name: None, org } => {
            let list = call!(a, list_groups, pb::ListGroupsRequest { org });
            print_all(&list.groups);
        }
        Get::Member { org } => {
            let list = call!(a, list_members, pb::ListMembersRequest { org });
            print_all(&list.members);
        }
        Get::Binding { scope } => {
            let message = pb::ListRoleBindingsRequest { org: scope.org() };
            let list = call!(a, list_role_bindings, message);
            print_all(&list.bindings);
        }
        Get::Audit { org, limit } => {
            let message = pb::ListAuditLogRequest {
                org: org.unwrap_or_default(),
                limit,
            };
            let list = call!(a, list_audit_log, message);
            print_all(&list.entries);
        }
    }
    Ok(())
}

async fn delete(a: &mut Admin, what: Delete) -> anyhow::Result<()> {
    match what {
        Delete::Organization { name } => {
            print(&call!(a, delete_organization, pb::OrganizationRef { name }))
        }
        Delete::Role { name, scope } => print(&call!(
            a,
            delete_role,
            pb::RoleRef {
                org: scope.org(),
                name
            }
        )),
        Delete::Serviceaccount { name, org } => print(&call!(
            a,
            delete_service_account,
            pb::ServiceAccountRef { org, name }
        )),
        Delete::Key { name, org, key_id } => {
            let message = pb::RemoveServiceAccountKeyRequest { org, name, key_id };
            print(&call!(a, remove_service_account_key, message))
        }
        Delete::Member { user, org } => print(&call!(
            a,
            remove_member,
            pb::RemoveMemberRequest { org, user }
        )),
        Delete::Binding(args) => print(&call!(a, delete_role_binding, args.binding())),
        Delete::Group { name, org } => print(&call!(a, delete_group, pb::GroupRef { org, name })),
        Delete::Groupmember(args) => print(&call!(a, remove_group_member, args.message())),
    }
    Ok(())
}

/// `users ... --server URL`: the same user commands, through the admin API
/// (so the running server invalidates its caches at once).
/// `dispatch-authz reload`: the server reads its configuration again.
pub async fn reload(connection: &Connection) -> anyhow::Result<()> {
    let mut a = Admin::connect(connection).await?;
    print(&call!(
        a,
        reload_configuration,
        pb::ReloadConfigurationRequest {}
    ));
    Ok(())
}

pub async fn users(connection: &Connection, command: UsersCommand) -> anyhow::Result<()> {
    let mut a = Admin::connect(connection).await?;
    match command {
        UsersCommand::Add(add) => {
            let message = pb::CreateUserRequest {
                subject: add.subject(),
                issuer: add.source,
                login: add.login,
                email: add.email.unwrap_or_default(),
                display_name: add.name.unwrap_or_default(),
            };
            print(&call!(a, create_user, message));
        }
        UsersCommand::List => {
            let list = call!(a, list_users, pb::ListUsersRequest {});
            print_all(&list.users);
        }
        UsersCommand::Show { user } => print(&call!(a, get_user, pb::UserRef { user })),
        UsersCommand::Disable { user } => {
            let message = pb::SetUserEnabledRequest {
                user,
                enabled: false,
            };
            print(&call!(a, set_user_enabled, message));
        }
        UsersCommand::Enable { user } => {
            let message = pb::SetUserEnabledRequest {
                user,
                enabled: true,
            };
            print(&call!(a, set_user_enabled, message));
        }
        UsersCommand::Remove { user } => print(&call!(a, delete_user, pb::UserRef { user })),
    }
    Ok(())
}
