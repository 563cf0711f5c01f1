//! Proto ↔ domain: every request field parsed into its domain type (a bad
//! one is `INVALID_ARGUMENT` naming the field), every answer built from
//! domain values, every `IamError` mapped to its gRPC code.

use tonic::Status;

use crate::{
    domain::{
        DisplayName, Email, GroupLink, GroupName, InvalidValue, IssuerName, Login, OrgName,
        RoleName, ServiceAccountName, Subject, SubjectRef,
    },
    iam::{IamError, SubjectName},
    policy::rbac::{Permission, Role, Scope},
    proto::admin as pb,
    store::{
        AuditEntry, Group, GroupBinding, Membership, NewUser, Organization, RoleBinding, RoleKey,
        ServiceAccount, StoreError, User, UserRef,
    },
};

impl TryFrom<&pb::CreateUserRequest> for NewUser {
    type Error = Status;

    fn try_from(r: &pb::CreateUserRequest) -> Result<Self, Status> {
        Ok(NewUser {
            issuer: field("issuer", IssuerName::parse(&r.issuer))?,
            subject: field("subject", Subject::parse(&r.subject))?,
            login: field("login", Login::parse(&r.login))?,
            email: optional("email", &r.email, Email::parse)?,
            display_name: optional("display_name", &r.display_name, DisplayName::parse)?,
        })
    }
}

impl TryFrom<&pb::Role> for Role {
    type Error = Status;

    fn try_from(r: &pb::Role) -> Result<Self, Status> {
        let key = role_key(&r.org, &r.name)?;
        if r.permissions.is_empty() {
            return Err(Status::invalid_argument(
                "permissions: a role needs at least one RESOURCE:ACTION",
            ));
        }
        let permissions = r
            .permissions
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Permission::parse(p).ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "permissions[{i}]: {p:?} is not RESOURCE:ACTION (action get, create, \
                         update, delete; either side may be *)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Role {
            name: key.name,
            scope: key.org.map_or(Scope::Global, Scope::Org),
            permissions,
        })
    }
}

/// A role binding as a request names it.
pub struct Bind {
    pub role: RoleKey,
    pub target: Bound,
}

/// Who a binding gives the role to.
pub enum Bound {
    Subject(SubjectName),
    Group(OrgName, GroupName),
}

impl TryFrom<&pb::RoleBinding> for Bind {
    type Error = Status;

    fn try_from(binding: &pb::RoleBinding) -> Result<Self, Status> {
        use pb::role_binding::Subject as S;
        let role = binding
            .role
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("role: required"))?;
        let role = role_key(&role.org, &role.name)?;
        let target = match &binding.subject {
            Some(S::User(user)) => {
                Bound::Subject(SubjectName::User(field("user", UserRef::parse(user))?))
            }
            Some(S::ServiceAccount(account)) => {
                let (org, name) = account_ref(account)?;
                Bound::Subject(SubjectName::ServiceAccount(org, name))
            }
            Some(S::Group(group)) => {
                let (org, name) = group_ref(group)?;
                Bound::Group(org, name)
            }
            None => {
                return Err(Status::invalid_argument(
                    "subject: set user, service_account or group",
                ));
            }
        };
        Ok(Self { role, target })
    }
}

pub fn status(e: IamError) -> Status {
    match e {
        IamError::Denied(why) => Status::permission_denied(why),
        IamError::Invalid(why) => Status::invalid_argument(why),
        IamError::Store(e) => {
            crate::telemetry::metrics::database_error("admin");
            store_status(e)
        }
    }
}

pub fn field<T>(name: &str, value: Result<T, InvalidValue>) -> Result<T, Status> {
    value.map_err(|e| Status::invalid_argument(format!("{name}: {e}")))
}

/// An empty proto string means "not set".
pub fn optional<T>(
    name: &str,
    value: &str,
    parse: fn(&str) -> Result<T, InvalidValue>,
) -> Result<Option<T>, Status> {
    if value.is_empty() {
        return Ok(None);
    }
    field(name, parse(value)).map(Some)
}

pub fn role_key(org: &str, name: &str) -> Result<RoleKey, Status> {
    Ok(RoleKey {
        org: optional("role.org", org, OrgName::parse)?,
        name: field("role.name", RoleName::parse(name))?,
    })
}

pub fn account_fields(org: &str, name: &str) -> Result<(OrgName, ServiceAccountName), Status> {
    Ok((
        field("org", OrgName::parse(org))?,
        field("name", ServiceAccountName::parse(name))?,
    ))
}

/// `ORG/NAME`.
pub fn account_ref(value: &str) -> Result<(OrgName, ServiceAccountName), Status> {
    let (org, name) = value.split_once('/').ok_or_else(|| {
        Status::invalid_argument(format!("service_account: {value:?} is not ORG/NAME"))
    })?;
    account_fields(org, name)
}

fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::NotFound(what) => Status::not_found(format!("no {what}")),
        StoreError::AlreadyExists(what) => Status::already_exists(format!("{what} already exists")),
        e @ StoreError::Duplicate { .. } => Status::already_exists(e.to_string()),
        StoreError::Conflict(why) => Status::failed_precondition(why),
        StoreError::Overreach(why) => Status::permission_denied(why.to_string()),
        // gRPC's code for "a concurrency conflict: retry the whole request".
        e @ StoreError::Contended(_) => Status::aborted(e.to_string()),
        other => {
            tracing::error!(error = %other, "admin API: store failure");
            Status::unavailable("the database is unavailable; retry later")
        }
    }
}

// ---- to the wire ------------------------------------------------------------

pub fn user_pb(u: &User) -> pb::User {
    pb::User {
        id: u.id.to_string(),
        issuer: u.issuer.to_string(),
        subject: u.subject.to_string(),
        login: u.login.to_string(),
        email: u
            .email
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        display_name: u
            .display_name
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        enabled: u.enabled,
        created_at: u.created_at,
        updated_at: u.updated_at,
    }
}

pub fn org_pb(o: &Organization) -> pb::Organization {
    pb::Organization {
        name: o.name.to_string(),
        created_at: o.created_at,
    }
}

pub fn member_pb(user: &User, m: &Membership) -> pb::Member {
    pb::Member {
        org: m.org.to_string(),
        user: Some(user_pb(user)),
        default: m.is_default,
    }
}

pub fn role_ref_pb(key: &RoleKey) -> pb::RoleRef {
    pb::RoleRef {
        org: key
            .org
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        name: key.name.to_string(),
    }
}

/// `name`: a user's id or a service account's `ORG/NAME`.
pub fn group_fields(group: &pb::GroupRef) -> Result<(OrgName, GroupName), Status> {
    Ok((
        field("org", OrgName::parse(&group.org))?,
        field("name", GroupName::parse(&group.name))?,
    ))
}

pub fn group_member(m: &pb::GroupMember) -> Result<(OrgName, GroupName, SubjectName), Status> {
    use pb::group_member::Member;
    let member = match &m.member {
        Some(Member::User(user)) => SubjectName::User(field("user", UserRef::parse(user))?),
        Some(Member::ServiceAccount(account)) => {
            let (org, name) = account_ref(account)?;
            SubjectName::ServiceAccount(org, name)
        }
        None => {
            return Err(Status::invalid_argument(
                "member: set user or service_account",
            ));
        }
    };
    Ok((
        field("org", OrgName::parse(&m.org))?,
        field("group", GroupName::parse(&m.group))?,
        member,
    ))
}

/// `ORG/NAME` of a group.
pub fn group_ref(value: &str) -> Result<(OrgName, GroupName), Status> {
    let (org, name) = value
        .split_once('/')
        .ok_or_else(|| Status::invalid_argument(format!("group: {value:?} is not ORG/NAME")))?;
    Ok((
        field("group", OrgName::parse(org))?,
        field("group", GroupName::parse(name))?,
    ))
}

pub fn group_pb(group: &Group, members: Vec<String>, roles: &[RoleKey]) -> pb::Group {
    pb::Group {
        org: group.org.to_string(),
        name: group.name.to_string(),
        members,
        roles: roles.iter().map(role_ref_pb).collect(),
        link: group
            .link
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    }
}

/// The group and its new link (`None`: unlink).
pub fn link_fields(
    request: &pb::LinkGroupRequest,
) -> Result<(OrgName, GroupName, Option<GroupLink>), Status> {
    let link = match request.link.as_str() {
        "" => None,
        text => Some(field("link", GroupLink::parse(text))?),
    };
    Ok((
        field("org", OrgName::parse(&request.org))?,
        field("name", GroupName::parse(&request.name))?,
        link,
    ))
}

pub fn group_binding_pb(binding: &GroupBinding, org: &OrgName) -> pb::RoleBinding {
    pb::RoleBinding {
        role: Some(role_ref_pb(&binding.role)),
        subject: Some(pb::role_binding::Subject::Group(format!(
            "{org}/{}",
            binding.group
        ))),
    }
}

pub fn binding_pb(binding: &RoleBinding, name: String) -> pb::RoleBinding {
    use pb::role_binding::Subject as S;
    let subject = match binding.subject {
        SubjectRef::User(_) => S::User(name),
        SubjectRef::ServiceAccount(_) => S::ServiceAccount(name),
    };
    pb::RoleBinding {
        role: Some(role_ref_pb(&binding.role)),
        subject: Some(subject),
    }
}

pub fn role_pb(role: &Role) -> pb::Role {
    let key = RoleKey::of(role);
    pb::Role {
        org: key.org.map(|o| o.to_string()).unwrap_or_default(),
        name: role.name.to_string(),
        permissions: role.permissions.iter().map(ToString::to_string).collect(),
    }
}

pub fn account_pb(a: &ServiceAccount) -> pb::ServiceAccount {
    pb::ServiceAccount {
        id: a.id.to_string(),
        org: a.org.to_string(),
        name: a.name.to_string(),
        enabled: a.enabled,
        keys: a
            .keys
            .iter()
            .map(|k| pb::PublicKey {
                id: k.id.clone(),
                algorithm: k.algorithm.clone(),
                pem: k.public_key_pem.clone(),
                created_at: k.created_at,
            })
            .collect(),
        created_at: a.created_at,
        updated_at: a.updated_at,
    }
}

pub fn audit_pb(e: &AuditEntry) -> pb::AuditEntry {
    pb::AuditEntry {
        id: e.id,
        at: e.at,
        actor: e.actor.clone(),
        action: e.action.clone(),
        org: e.org.clone().unwrap_or_default(),
        target: e.target.clone(),
        before: e.before.clone().unwrap_or_default(),
        after: e.after.clone().unwrap_or_default(),
    }
}
