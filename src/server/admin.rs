//! The admin gRPC API (`proto/dispatch/authz/admin/v1/admin.proto`).
//!
//! Each call: authenticate the caller with the Check pipeline's own
//! sources and caches, authorize it (`iam` in the organization concerned,
//! or a global role granting `iam` for anything wider), parse every field
//! into a domain type (a bad one is `INVALID_ARGUMENT` naming the field),
//! run one store transaction (which writes the audit entry), and invalidate
//! exactly the cache entries the write made stale, so the next Check sees it.

use std::sync::Arc;

use tonic::{Code, Request, Response, Status};

use crate::{
    check::{Caller, Checker, ClientHeaders, DenialKind},
    domain::{
        DisplayName, Email, InvalidValue, IssuerName, Login, OrgName, RoleName, ServiceAccountName,
        Subject, SubjectRef,
    },
    identity::keys,
    policy::{
        Action,
        rbac::{Permission, Role, Scope},
    },
    proto::admin::{self as pb, admin_server::Admin},
    store::{
        AccountAdmin, Actor, AuditEntry, AuditLog, BindingAdmin, CheckStore, Membership, NewUser,
        OrgAdmin, Organization, RoleAdmin, RoleBinding, RoleKey, ServiceAccount, SqliteStore,
        StoreError, User, UserAdmin, UserRef,
    },
};

pub use crate::proto::admin::admin_server::AdminServer;

use crate::policy::authority::IAM;

pub struct AdminService {
    checker: Arc<Checker>,
    store: SqliteStore,
    /// Configured identity sources: a user must belong to one.
    sources: Vec<IssuerName>,
}

type Reply<T> = Result<Response<T>, Status>;

impl AdminService {
    pub fn new(checker: Arc<Checker>, store: SqliteStore, sources: Vec<IssuerName>) -> Self {
        Self {
            checker,
            store,
            sources,
        }
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        // gRPC metadata as the headers Check reads the credential from.
        let values = request.metadata().get_all("authorization");
        let headers = ClientHeaders::new(
            values
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|v| ("authorization", v)),
        );
        self.checker.authenticate(&headers).await.map_err(|d| {
            let code = match d.kind {
                DenialKind::Unauthenticated { .. } => Code::Unauthenticated,
                DenialKind::Unavailable => Code::Unavailable,
                DenialKind::Forbidden | DenialKind::InvalidRequest => Code::PermissionDenied,
            };
            Status::new(code, d.message)
        })
    }

    /// `iam:<action>` in `org` (a global role granting it counts).
    async fn in_org<T>(
        &self,
        request: &Request<T>,
        org: &OrgName,
        action: Action,
    ) -> Result<Actor, Status> {
        let caller = self.caller(request).await?;
        caller
            .grants
            .decide(Some(org), IAM, action)
            .map_err(|refused| {
                Status::permission_denied(format!("{IAM}:{action} in {org} is needed: {refused}"))
            })?;
        Ok(Actor::caller(caller.who.subject(), caller.grants))
    }

    /// `iam:<action>` through a global role.
    async fn global<T>(&self, request: &Request<T>, action: Action) -> Result<Actor, Status> {
        let caller = self.caller(request).await?;
        if !caller.grants.globally_grants(IAM, action) {
            return Err(Status::permission_denied(format!(
                "a global role granting {IAM}:{action} is needed"
            )));
        }
        Ok(Actor::caller(caller.who.subject(), caller.grants))
    }

    /// Org roles need `iam` in their organization; global roles a global
    /// role (Dispatch let any org's `iam` writer create global policies).
    async fn for_role<T>(
        &self,
        request: &Request<T>,
        key: &RoleKey,
        action: Action,
    ) -> Result<Actor, Status> {
        match &key.org {
            Some(org) => self.in_org(request, org, action).await,
            None => self.global(request, action).await,
        }
    }

    async fn forget_user(&self, user: &User) {
        let directory = self.checker.directory();
        directory.users.invalidate(user).await;
        directory.grants.invalidate(SubjectRef::User(user.id)).await;
    }

    async fn forget_account(&self, account: &ServiceAccount) {
        let directory = self.checker.directory();
        directory
            .accounts
            .invalidate(&account.org, &account.name)
            .await;
        directory
            .grants
            .invalidate(SubjectRef::ServiceAccount(account.id))
            .await;
        self.checker.identity().forget_service_account(account.id);
    }

    /// The subject a binding names, with the name the reply shows for it
    /// (a user's id, a service account's `ORG/NAME`).
    async fn subject(&self, binding: &pb::RoleBinding) -> Result<(SubjectRef, String), Status> {
        use pb::role_binding::Subject as S;
        match &binding.subject {
            Some(S::User(user)) => {
                let r = field("user", UserRef::parse(user))?;
                let user = self
                    .store
                    .get(&r)
                    .await
                    .map_err(store_status)?
                    .ok_or_else(|| Status::not_found(format!("no user {r}")))?;
                Ok((SubjectRef::User(user.id), user.id.to_string()))
            }
            Some(S::ServiceAccount(account)) => {
                let (org, name) = account_ref(account)?;
                let account = self
                    .store
                    .service_account(&org, &name)
                    .await
                    .map_err(store_status)?
                    .ok_or_else(|| Status::not_found(format!("no service account {org}/{name}")))?;
                Ok((SubjectRef::ServiceAccount(account.id), account.issuer()))
            }
            None => Err(Status::invalid_argument(
                "subject: set user or service_account",
            )),
        }
    }

    /// The caller's actor and the binding a create or delete names. The
    /// caller is authorized on the role before the subject is looked up: a
    /// NOT_FOUND must not tell an unauthorized caller which users exist.
    async fn binding_change(
        &self,
        request: &Request<pb::RoleBinding>,
        action: Action,
    ) -> Result<(Actor, RoleBinding, String), Status> {
        let role = binding_role(request.get_ref())?;
        let actor = self.for_role(request, &role, action).await?;
        let (subject, name) = self.subject(request.get_ref()).await?;
        Ok((actor, RoleBinding { role, subject }, name))
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn get_server_info(
        &self,
        request: Request<pb::GetServerInfoRequest>,
    ) -> Reply<pb::GetServerInfoResponse> {
        self.caller(&request).await?;
        Ok(Response::new(pb::GetServerInfoResponse {
            version: env!("CARGO_PKG_VERSION").into(),
        }))
    }

    // ---- users ----------------------------------------------------------

    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Reply<pb::User> {
        let actor = self.global(&request, Action::Create).await?;
        let r = request.get_ref();
        let issuer = field("issuer", IssuerName::parse(&r.issuer))?;
        if !self.sources.contains(&issuer) {
            return Err(Status::invalid_argument(format!(
                "issuer: {issuer} is not a configured identity source"
            )));
        }
        let user = NewUser {
            issuer,
            subject: field("subject", Subject::parse(&r.subject))?,
            login: field("login", Login::parse(&r.login))?,
            email: optional("email", &r.email, Email::parse)?,
            display_name: optional("display_name", &r.display_name, DisplayName::parse)?,
        };
        let user = self.store.add(&actor, user).await.map_err(store_status)?;
        // A "no such user" answer may be cached for this identity.
        self.forget_user(&user).await;
        Ok(Response::new(user_pb(&user)))
    }

    async fn get_user(&self, request: Request<pb::UserRef>) -> Reply<pb::User> {
        self.global(&request, Action::Get).await?;
        let r = field("user", UserRef::parse(&request.get_ref().user))?;
        let user = self.store.get(&r).await.map_err(store_status)?;
        let user = user.ok_or_else(|| Status::not_found(format!("no user {r}")))?;
        Ok(Response::new(user_pb(&user)))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Reply<pb::ListUsersResponse> {
        self.global(&request, Action::Get).await?;
        let users = self.store.list().await.map_err(store_status)?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.iter().map(user_pb).collect(),
        }))
    }

    async fn set_user_enabled(
        &self,
        request: Request<pb::SetUserEnabledRequest>,
    ) -> Reply<pb::User> {
        let actor = self.global(&request, Action::Update).await?;
        let r = request.get_ref();
        let user_ref = field("user", UserRef::parse(&r.user))?;
        let user = self
            .store
            .set_enabled(&actor, &user_ref, r.enabled)
            .await
            .map_err(store_status)?;
        self.forget_user(&user).await;
        Ok(Response::new(user_pb(&user)))
    }

    async fn delete_user(&self, request: Request<pb::UserRef>) -> Reply<pb::User> {
        let actor = self.global(&request, Action::Delete).await?;
        let r = field("user", UserRef::parse(&request.get_ref().user))?;
        let user = self.store.remove(&actor, &r).await.map_err(store_status)?;
        self.forget_user(&user).await;
        Ok(Response::new(user_pb(&user)))
    }

    // ---- organizations --------------------------------------------------

    async fn create_organization(
        &self,
        request: Request<pb::OrganizationRef>,
    ) -> Reply<pb::Organization> {
        let actor = self.global(&request, Action::Create).await?;
        let name = field("name", OrgName::parse(&request.get_ref().name))?;
        let org = self
            .store
            .create_org(&actor, &name)
            .await
            .map_err(store_status)?;
        self.checker.directory().orgs.invalidate(&name).await;
        Ok(Response::new(org_pb(&org)))
    }

    async fn get_organization(
        &self,
        request: Request<pb::OrganizationRef>,
    ) -> Reply<pb::Organization> {
        let name = field("name", OrgName::parse(&request.get_ref().name))?;
        self.in_org(&request, &name, Action::Get).await?;
        let org = self.store.get_org(&name).await.map_err(store_status)?;
        let org = org.ok_or_else(|| Status::not_found(format!("no organization {name}")))?;
        Ok(Response::new(org_pb(&org)))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Reply<pb::ListOrganizationsResponse> {
        self.global(&request, Action::Get).await?;
        let orgs = self.store.list_orgs().await.map_err(store_status)?;
        Ok(Response::new(pb::ListOrganizationsResponse {
            organizations: orgs.iter().map(org_pb).collect(),
        }))
    }

    async fn delete_organization(
        &self,
        request: Request<pb::OrganizationRef>,
    ) -> Reply<pb::Organization> {
        let actor = self.global(&request, Action::Delete).await?;
        let name = field("name", OrgName::parse(&request.get_ref().name))?;
        let org = self
            .store
            .delete_org(&actor, &name)
            .await
            .map_err(store_status)?;
        self.checker.directory().orgs.invalidate(&name).await;
        Ok(Response::new(org_pb(&org)))
    }

    // ---- memberships ----------------------------------------------------

    async fn add_member(&self, request: Request<pb::AddMemberRequest>) -> Reply<pb::Member> {
        let r = request.get_ref();
        let org = field("org", OrgName::parse(&r.org))?;
        let user = field("user", UserRef::parse(&r.user))?;
        let actor = self.in_org(&request, &org, Action::Create).await?;
        let (user, membership) = self
            .store
            .add_member(&actor, &org, &user, r.default)
            .await
            .map_err(store_status)?;
        self.forget_user(&user).await;
        Ok(Response::new(member_pb(&user, &membership)))
    }

    async fn remove_member(&self, request: Request<pb::RemoveMemberRequest>) -> Reply<pb::Member> {
        let r = request.get_ref();
        let org = field("org", OrgName::parse(&r.org))?;
        let user = field("user", UserRef::parse(&r.user))?;
        let actor = self.in_org(&request, &org, Action::Delete).await?;
        let (user, membership) = self
            .store
            .remove_member(&actor, &org, &user)
            .await
            .map_err(store_status)?;
        self.forget_user(&user).await;
        Ok(Response::new(member_pb(&user, &membership)))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Reply<pb::ListMembersResponse> {
        let org = field("org", OrgName::parse(&request.get_ref().org))?;
        self.in_org(&request, &org, Action::Get).await?;
        let members = self.store.list_members(&org).await.map_err(store_status)?;
        Ok(Response::new(pb::ListMembersResponse {
            members: members.iter().map(|(u, m)| member_pb(u, m)).collect(),
        }))
    }

    // ---- roles ----------------------------------------------------------

    async fn create_role(&self, request: Request<pb::Role>) -> Reply<pb::Role> {
        let r = request.get_ref();
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
        let actor = self.for_role(&request, &key, Action::Create).await?;
        let role = Role {
            name: key.name.clone(),
            scope: key.org.clone().map_or(Scope::Global, Scope::Org),
            permissions,
        };
        let role = self
            .store
            .create_role(&actor, &role)
            .await
            .map_err(store_status)?;
        Ok(Response::new(role_pb(&role)))
    }

    async fn get_role(&self, request: Request<pb::RoleRef>) -> Reply<pb::Role> {
        let key = role_key(&request.get_ref().org, &request.get_ref().name)?;
        self.for_role(&request, &key, Action::Get).await?;
        let role = self.store.get_role(&key).await.map_err(store_status)?;
        let role = role.ok_or_else(|| Status::not_found(format!("no role {key}")))?;
        Ok(Response::new(role_pb(&role)))
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Reply<pb::ListRolesResponse> {
        let org = optional("org", &request.get_ref().org, OrgName::parse)?;
        match &org {
            Some(org) => self.in_org(&request, org, Action::Get).await?,
            None => self.global(&request, Action::Get).await?,
        };
        let roles = self
            .store
            .list_roles(org.as_ref())
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::ListRolesResponse {
            roles: roles.iter().map(role_pb).collect(),
        }))
    }

    async fn delete_role(&self, request: Request<pb::RoleRef>) -> Reply<pb::Role> {
        let key = role_key(&request.get_ref().org, &request.get_ref().name)?;
        let actor = self.for_role(&request, &key, Action::Delete).await?;
        let (role, holders) = self
            .store
            .delete_role(&actor, &key)
            .await
            .map_err(store_status)?;
        for subject in holders {
            self.checker.directory().grants.invalidate(subject).await;
        }
        Ok(Response::new(role_pb(&role)))
    }

    // ---- role bindings --------------------------------------------------

    async fn create_role_binding(
        &self,
        request: Request<pb::RoleBinding>,
    ) -> Reply<pb::RoleBinding> {
        let (actor, binding, name) = self.binding_change(&request, Action::Create).await?;
        self.store
            .bind_role(&actor, &binding)
            .await
            .map_err(store_status)?;
        self.checker
            .directory()
            .grants
            .invalidate(binding.subject)
            .await;
        Ok(Response::new(binding_pb(&binding, name)))
    }

    async fn delete_role_binding(
        &self,
        request: Request<pb::RoleBinding>,
    ) -> Reply<pb::RoleBinding> {
        let (actor, binding, name) = self.binding_change(&request, Action::Delete).await?;
        self.store
            .unbind_role(&actor, &binding)
            .await
            .map_err(store_status)?;
        self.checker
            .directory()
            .grants
            .invalidate(binding.subject)
            .await;
        Ok(Response::new(binding_pb(&binding, name)))
    }

    async fn list_role_bindings(
        &self,
        request: Request<pb::ListRoleBindingsRequest>,
    ) -> Reply<pb::ListRoleBindingsResponse> {
        let org = optional("org", &request.get_ref().org, OrgName::parse)?;
        match &org {
            Some(org) => self.in_org(&request, org, Action::Get).await?,
            None => self.global(&request, Action::Get).await?,
        };
        let bindings = self
            .store
            .list_bindings(org.as_ref())
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::ListRoleBindingsResponse {
            bindings: bindings
                .into_iter()
                .map(|(b, name)| binding_pb(&b, name))
                .collect(),
        }))
    }

    // ---- service accounts -----------------------------------------------

    async fn create_service_account(
        &self,
        request: Request<pb::CreateServiceAccountRequest>,
    ) -> Reply<pb::ServiceAccount> {
        let r = request.get_ref();
        let org = field("org", OrgName::parse(&r.org))?;
        let name = field("name", ServiceAccountName::parse(&r.name))?;
        let keys = r
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| checked_key(&format!("keys[{i}]"), &k.algorithm, &k.pem))
            .collect::<Result<Vec<_>, _>>()?;
        let actor = self.in_org(&request, &org, Action::Create).await?;
        let account = self
            .store
            .create_service_account(&actor, &org, &name, &keys)
            .await
            .map_err(store_status)?;
        self.forget_account(&account).await;
        Ok(Response::new(account_pb(&account)))
    }

    async fn get_service_account(
        &self,
        request: Request<pb::ServiceAccountRef>,
    ) -> Reply<pb::ServiceAccount> {
        let (org, name) = account_fields(&request.get_ref().org, &request.get_ref().name)?;
        self.in_org(&request, &org, Action::Get).await?;
        let account = self
            .store
            .service_account(&org, &name)
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found(format!("no service account {org}/{name}")))?;
        Ok(Response::new(account_pb(&account)))
    }

    async fn list_service_accounts(
        &self,
        request: Request<pb::ListServiceAccountsRequest>,
    ) -> Reply<pb::ListServiceAccountsResponse> {
        let org = field("org", OrgName::parse(&request.get_ref().org))?;
        self.in_org(&request, &org, Action::Get).await?;
        let accounts = self
            .store
            .list_service_accounts(&org)
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::ListServiceAccountsResponse {
            service_accounts: accounts.iter().map(account_pb).collect(),
        }))
    }

    async fn delete_service_account(
        &self,
        request: Request<pb::ServiceAccountRef>,
    ) -> Reply<pb::ServiceAccount> {
        let (org, name) = account_fields(&request.get_ref().org, &request.get_ref().name)?;
        let actor = self.in_org(&request, &org, Action::Delete).await?;
        let account = self
            .store
            .delete_service_account(&actor, &org, &name)
            .await
            .map_err(store_status)?;
        self.forget_account(&account).await;
        Ok(Response::new(account_pb(&account)))
    }

    async fn set_service_account_enabled(
        &self,
        request: Request<pb::SetServiceAccountEnabledRequest>,
    ) -> Reply<pb::ServiceAccount> {
        let r = request.get_ref();
        let (org, name) = account_fields(&r.org, &r.name)?;
        let actor = self.in_org(&request, &org, Action::Update).await?;
        let account = self
            .store
            .set_service_account_enabled(&actor, &org, &name, r.enabled)
            .await
            .map_err(store_status)?;
        self.forget_account(&account).await;
        Ok(Response::new(account_pb(&account)))
    }

    async fn add_service_account_key(
        &self,
        request: Request<pb::AddServiceAccountKeyRequest>,
    ) -> Reply<pb::ServiceAccount> {
        let r = request.get_ref();
        let (org, name) = account_fields(&r.org, &r.name)?;
        let (algorithm, pem) = checked_key("key", &r.algorithm, &r.pem)?;
        let actor = self.in_org(&request, &org, Action::Update).await?;
        let account = self
            .store
            .add_service_account_key(&actor, &org, &name, &algorithm, &pem)
            .await
            .map_err(store_status)?;
        self.forget_account(&account).await;
        Ok(Response::new(account_pb(&account)))
    }

    async fn remove_service_account_key(
        &self,
        request: Request<pb::RemoveServiceAccountKeyRequest>,
    ) -> Reply<pb::ServiceAccount> {
        let r = request.get_ref();
        let (org, name) = account_fields(&r.org, &r.name)?;
        if r.key_id.is_empty() {
            return Err(Status::invalid_argument("key_id: must not be empty"));
        }
        let actor = self.in_org(&request, &org, Action::Update).await?;
        let account = self
            .store
            .remove_service_account_key(&actor, &org, &name, &r.key_id)
            .await
            .map_err(store_status)?;
        self.forget_account(&account).await;
        Ok(Response::new(account_pb(&account)))
    }

    // ---- audit log ------------------------------------------------------

    async fn list_audit_log(
        &self,
        request: Request<pb::ListAuditLogRequest>,
    ) -> Reply<pb::ListAuditLogResponse> {
        let r = request.get_ref();
        let org = optional("org", &r.org, OrgName::parse)?;
        match &org {
            Some(org) => self.in_org(&request, org, Action::Get).await?,
            None => self.global(&request, Action::Get).await?,
        };
        let limit = match r.limit {
            0 => 100,
            n => n.min(1000),
        };
        let entries = self
            .store
            .list_audit(org.as_ref(), limit)
            .await
            .map_err(store_status)?;
        Ok(Response::new(pb::ListAuditLogResponse {
            entries: entries.iter().map(audit_pb).collect(),
        }))
    }
}

// ---- parsing -------------------------------------------------------------

fn field<T>(name: &str, value: Result<T, InvalidValue>) -> Result<T, Status> {
    value.map_err(|e| Status::invalid_argument(format!("{name}: {e}")))
}

/// An empty proto string means "not set".
fn optional<T>(
    name: &str,
    value: &str,
    parse: fn(&str) -> Result<T, InvalidValue>,
) -> Result<Option<T>, Status> {
    if value.is_empty() {
        return Ok(None);
    }
    field(name, parse(value)).map(Some)
}

fn binding_role(binding: &pb::RoleBinding) -> Result<RoleKey, Status> {
    let role = binding
        .role
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("role: required"))?;
    role_key(&role.org, &role.name)
}

fn role_key(org: &str, name: &str) -> Result<RoleKey, Status> {
    Ok(RoleKey {
        org: optional("role.org", org, OrgName::parse)?,
        name: field("role.name", RoleName::parse(name))?,
    })
}

fn account_fields(org: &str, name: &str) -> Result<(OrgName, ServiceAccountName), Status> {
    Ok((
        field("org", OrgName::parse(org))?,
        field("name", ServiceAccountName::parse(name))?,
    ))
}

/// `ORG/NAME`.
fn account_ref(value: &str) -> Result<(OrgName, ServiceAccountName), Status> {
    let (org, name) = value.split_once('/').ok_or_else(|| {
        Status::invalid_argument(format!("service_account: {value:?} is not ORG/NAME"))
    })?;
    account_fields(org, name)
}

/// A public key that parses for its (asymmetric) algorithm.
fn checked_key(field: &str, algorithm: &str, pem: &str) -> Result<(String, String), Status> {
    let alg = keys::parse_public_algorithm(algorithm)
        .map_err(|e| Status::invalid_argument(format!("{field}.algorithm: {e}")))?;
    keys::parse_pem(pem.as_bytes(), alg, None, field)
        .map_err(|e| Status::invalid_argument(format!("{field}.pem: {e}")))?;
    Ok((format!("{alg:?}"), pem.to_owned()))
}

fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::NotFound(what) => Status::not_found(format!("no {what}")),
        StoreError::AlreadyExists(what) => Status::already_exists(format!("{what} already exists")),
        e @ StoreError::Duplicate { .. } => Status::already_exists(e.to_string()),
        StoreError::Conflict(why) => Status::failed_precondition(why),
        StoreError::Overreach(why) => Status::permission_denied(why.to_string()),
        other => {
            tracing::error!(error = %other, "admin API: store failure");
            Status::unavailable("the database is unavailable; retry later")
        }
    }
}

// ---- to the wire ------------------------------------------------------------

fn user_pb(u: &User) -> pb::User {
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

fn org_pb(o: &Organization) -> pb::Organization {
    pb::Organization {
        name: o.name.to_string(),
        created_at: o.created_at,
    }
}

fn member_pb(user: &User, m: &Membership) -> pb::Member {
    pb::Member {
        org: m.org.to_string(),
        user: Some(user_pb(user)),
        default: m.is_default,
    }
}

fn role_ref_pb(key: &RoleKey) -> pb::RoleRef {
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
fn binding_pb(binding: &RoleBinding, name: String) -> pb::RoleBinding {
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

fn role_pb(role: &Role) -> pb::Role {
    let key = RoleKey::of(role);
    pb::Role {
        org: key.org.map(|o| o.to_string()).unwrap_or_default(),
        name: role.name.to_string(),
        permissions: role.permissions.iter().map(ToString::to_string).collect(),
    }
}

fn account_pb(a: &ServiceAccount) -> pb::ServiceAccount {
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

fn audit_pb(e: &AuditEntry) -> pb::AuditEntry {
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
