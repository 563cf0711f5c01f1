//! The `iam` subcommands as clap parses them.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::proto::admin::{self as pb, role_binding::Subject};

#[derive(Debug, Subcommand)]
pub enum IamCommand {
    /// Create an organization, role, service account, member or role binding.
    Create {
        #[command(subcommand)]
        what: Create,
    },
    /// Show one, or list all when no name is given.
    Get {
        #[command(subcommand)]
        what: Get,
    },
    /// Delete an organization, role, service account, member or role binding.
    Delete {
        #[command(subcommand)]
        what: Delete,
    },
    /// Enable or disable a service account.
    Update {
        #[command(subcommand)]
        what: Update,
    },
}

#[derive(Debug, Subcommand)]
pub enum Create {
    /// An organization (global admins only).
    Organization { name: String },
    /// A role: `--permission RESOURCE:ACTION` (either side `*`), repeatable.
    Role {
        name: String,
        #[command(flatten)]
        scope: RoleScope,
        #[arg(
            long = "permission",
            short = 'p',
            required = true,
            value_name = "RESOURCE:ACTION"
        )]
        permissions: Vec<String>,
    },
    /// A service account, optionally with its first public key.
    #[command(visible_alias = "sa")]
    Serviceaccount {
        name: String,
        #[arg(long)]
        org: String,
        /// PEM public key file.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        #[arg(long, default_value = "RS256")]
        key_algorithm: String,
    },
    /// Add a public key to a service account.
    Key {
        /// The service account's name.
        name: String,
        #[arg(long)]
        org: String,
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        #[arg(long, default_value = "RS256")]
        key_algorithm: String,
    },
    /// Make a user (id or SOURCE:SUBJECT) a member of an organization.
    Member {
        user: String,
        #[arg(long)]
        org: String,
        /// Use this organization when requests send no x-dispatch-org.
        #[arg(long)]
        default: bool,
    },
    /// Bind a role to a user, a service account or a group.
    #[command(visible_alias = "rolebinding")]
    Binding(BindingArgs),
    /// A group of an organization: its members hold the roles bound to it.
    Group {
        name: String,
        #[arg(long)]
        org: String,
    },
    /// Add a user or a service account to a group.
    Groupmember(GroupMemberArgs),
}

/// `--org O --group G` and the member: `--user U` or `--to-service-account ORG/NAME`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("member").required(true).args(["user", "service_account_member"])))]
pub struct GroupMemberArgs {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub group: String,
    /// A user: id or SOURCE:SUBJECT.
    #[arg(long)]
    pub user: Option<String>,
    /// A service account of the organization: ORG/NAME.
    #[arg(long = "to-service-account", value_name = "ORG/NAME")]
    pub service_account_member: Option<String>,
}

impl GroupMemberArgs {
    pub(super) fn message(&self) -> pb::GroupMember {
        use pb::group_member::Member;
        let member = match (&self.user, &self.service_account_member) {
            (Some(user), _) => Member::User(user.clone()),
            (None, Some(sa)) => Member::ServiceAccount(sa.clone()),
            (None, None) => unreachable!("clap requires one"),
        };
        pb::GroupMember {
            org: self.org.clone(),
            group: self.group.clone(),
            member: Some(member),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Get {
    /// One organization, or all (global admins).
    Organization { name: Option<String> },
    /// One role, or the organization's (or the global) roles.
    Role {
        name: Option<String>,
        #[command(flatten)]
        scope: RoleScope,
    },
    /// One service account with its keys, or the organization's.
    #[command(visible_alias = "sa")]
    Serviceaccount {
        name: Option<String>,
        #[arg(long)]
        org: String,
    },
    /// The organization's members.
    Member {
        #[arg(long)]
        org: String,
    },
    /// The bindings of the organization's (or the global) roles.
    #[command(visible_alias = "rolebinding")]
    Binding {
        #[command(flatten)]
        scope: RoleScope,
    },
    /// One group with its members and roles, or the organization's groups.
    Group {
        name: Option<String>,
        #[arg(long)]
        org: String,
    },
    /// The audit log, newest first.
    Audit {
        #[arg(long)]
        org: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum Delete {
    /// An empty organization (global admins only).
    Organization { name: String },
    /// A role and its bindings.
    Role {
        name: String,
        #[command(flatten)]
        scope: RoleScope,
    },
    /// A service account, its keys and bindings.
    #[command(visible_alias = "sa")]
    Serviceaccount {
        name: String,
        #[arg(long)]
        org: String,
    },
    /// Remove a key from a service account (tokens it signed stop working).
    Key {
        name: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        key_id: String,
    },
    /// A membership, and the user's bindings to the organization's roles.
    Member {
        user: String,
        #[arg(long)]
        org: String,
    },
    /// A role binding.
    #[command(visible_alias = "rolebinding")]
    Binding(BindingArgs),
    /// A group, its memberships and its bindings.
    Group {
        name: String,
        #[arg(long)]
        org: String,
    },
    /// Remove a user or a service account from a group.
    Groupmember(GroupMemberArgs),
}

#[derive(Debug, Subcommand)]
pub enum Update {
    /// `--enable` or `--disable` a service account.
    #[command(visible_alias = "sa")]
    Serviceaccount {
        name: String,
        #[arg(long)]
        org: String,
        #[arg(long, conflicts_with = "disable", required_unless_present = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
    /// Link a group to an identity source (`--link SOURCE:CLAIM=VALUE`:
    /// `github:team=acme/platform`, `dex:groups=platform`), or `--unlink` it:
    /// whoever the verified identity says belongs is then a member.
    Group {
        name: String,
        #[arg(long)]
        org: String,
        #[arg(
            long,
            value_name = "SOURCE:CLAIM=VALUE",
            value_parser = clap::builder::NonEmptyStringValueParser::new(),
            conflicts_with = "unlink",
            required_unless_present = "unlink"
        )]
        link: Option<String>,
        #[arg(long)]
        unlink: bool,
    },
}

/// `--org ORG` for an organization's role, `--global` for a global one.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct RoleScope {
    #[arg(long)]
    pub org: Option<String>,
    #[arg(long)]
    pub global: bool,
}

impl RoleScope {
    pub(super) fn org(&self) -> String {
        self.org.clone().unwrap_or_default()
    }
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("subject").required(true).args(["user", "service_account_subject", "group"])))]
pub struct BindingArgs {
    /// The role's name.
    pub role: String,
    #[command(flatten)]
    pub scope: RoleScope,
    /// A user: id or SOURCE:SUBJECT.
    #[arg(long)]
    pub user: Option<String>,
    /// A service account: ORG/NAME.
    #[arg(long = "to-service-account", value_name = "ORG/NAME")]
    pub service_account_subject: Option<String>,
    /// A group: its NAME in --org, or ORG/NAME (for a global role).
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
}

impl BindingArgs {
    pub(super) fn binding(&self) -> pb::RoleBinding {
        let subject = match (&self.user, &self.service_account_subject, &self.group) {
            (Some(user), _, _) => Subject::User(user.clone()),
            (None, Some(sa), _) => Subject::ServiceAccount(sa.clone()),
            (None, None, Some(group)) if group.contains('/') => Subject::Group(group.clone()),
            (None, None, Some(group)) => Subject::Group(format!("{}/{group}", self.scope.org())),
            (None, None, None) => unreachable!("clap requires one"),
        };
        pb::RoleBinding {
            role: Some(pb::RoleRef {
                org: self.scope.org(),
                name: self.role.clone(),
            }),
            subject: Some(subject),
        }
    }
}
