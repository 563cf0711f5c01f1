//! The admin gRPC API (`proto/dispatch/authz/admin/v1/admin.proto`):
//! translation only. Each call authenticates the caller with the Check
//! pipeline's own sources and caches, converts the request into domain
//! values (`convert.rs`: a bad field is `INVALID_ARGUMENT` naming it), makes
//! one call to the [`Iam`] service — which authorizes, writes one audited
//! transaction and invalidates what it made stale — and converts the answer.

pub mod convert;
mod reload;

use std::sync::Arc;

use tonic::{Code, Request, Response, Status};

pub use crate::proto::admin::admin_server::AdminServer;
use crate::{
    check::{ClientHeaders, DenialKind, Live},
    domain::OrgName,
    iam::{Iam, IamError, PublicKey},
    policy::rbac::Role,
    proto::admin::{self as pb, admin_server::Admin},
    store::{Actor, GroupBinding, NewUser, UserRef},
};
use convert::{
    Bind, Bound, account_fields, account_pb, audit_pb, binding_pb, field, group_binding_pb,
    group_fields, group_member, group_pb, link_fields, member_pb, optional, org_pb, role_key,
    role_pb, status, user_pb,
};
pub use reload::{Reload, Reloaded};

pub struct AdminService {
    checker: Arc<Live>,
    iam: Arc<Iam>,
    reload: Option<Arc<dyn Reload>>,
}

type Reply<T> = Result<Response<T>, Status>;

impl AdminService {
    pub fn new(checker: Arc<Live>, iam: Arc<Iam>) -> Self {
        Self {
            checker,
            iam,
            reload: None,
        }
    }

    /// Serves `ReloadConfiguration` with `reload`.
    pub fn with_reload(mut self, reload: Arc<dyn Reload>) -> Self {
        self.reload = Some(reload);
        self
    }

    /// The authenticated caller, as the actor of what it asks.
    async fn actor<T>(&self, request: &Request<T>) -> Result<Actor, Status> {
        // gRPC metadata as the headers Check reads the credential from.
        let values = request.metadata().get_all("authorization");
        let headers = ClientHeaders::new(
            values
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(|v| ("authorization", v)),
        );
        let caller = self
            .checker
            .current()
            .authenticate(&headers)
            .await
            .map_err(|d| {
                let code = match d.kind {
                    DenialKind::Unauthenticated { .. } => Code::Unauthenticated,
                    DenialKind::Unavailable => Code::Unavailable,
                    DenialKind::Forbidden | DenialKind::InvalidRequest => Code::PermissionDenied,
                };
                Status::new(code, d.message)
            })?;
        Ok(Actor::caller(caller.who.subject(), caller.grants))
    }
}

fn reply<T, U>(result: Result<T, IamError>, to_pb: impl FnOnce(T) -> U) -> Reply<U> {
    result
        .map(|value| Response::new(to_pb(value)))
        .map_err(status)
}

fn user_ref(value: &str) -> Result<UserRef, Status> {
    field("user", UserRef::parse(value))
}

fn org(value: &str) -> Result<OrgName, Status> {
    field("org", OrgName::parse(value))
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn get_server_info(
        &self,
        request: Request<pb::GetServerInfoRequest>,
    ) -> Reply<pb::GetServerInfoResponse> {
        self.actor(&request).await?;
        Ok(Response::new(pb::GetServerInfoResponse {
            version: env!("CARGO_PKG_VERSION").into(),
        }))
    }

    async fn reload_configuration(
        &self,
        request: Request<pb::ReloadConfigurationRequest>,
    ) -> Reply<pb::ReloadConfigurationResponse> {
        self.reload_asked(request).await
    }

    // ---- users ----------------------------------------------------------

    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Reply<pb::User> {
        let actor = self.actor(&request).await?;
        let new = NewUser::try_from(request.get_ref())?;
        reply(self.iam.create_user(&actor, new).await, |u| user_pb(&u))
    }

    async fn get_user(&self, request: Request<pb::UserRef>) -> Reply<pb::User> {
        let actor = self.actor(&request).await?;
        let user = user_ref(&request.get_ref().user)?;
        reply(self.iam.get_user(&actor, &user).await, |u| user_pb(&u))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Reply<pb::ListUsersResponse> {
        let actor = self.actor(&request).await?;
        reply(self.iam.list_users(&actor).await, |users| {
            pb::ListUsersResponse {
                users: users.iter().map(user_pb).collect(),
            }
        })
    }

    async fn set_user_enabled(
        &self,
        request: Request<pb::SetUserEnabledRequest>,
    ) -> Reply<pb::User> {
        let actor = self.actor(&request).await?;
        let r = request.get_ref();
        let user = user_ref(&r.user)?;
        let result = self.iam.set_user_enabled(&actor, &user, r.enabled).await;
        reply(result, |u| user_pb(&u))
    }

    async fn delete_user(&self, request: Request<pb::UserRef>) -> Reply<pb::User> {
        let actor = self.actor(&request).await?;
        let user = user_ref(&request.get_ref().user)?;
        reply(self.iam.delete_user(&actor, &user).await, |u| user_pb(&u))
    }

    // ---- organizations --------------------------------------------------

    async fn create_organization(
        &self,
        request: Request<pb::OrganizationRef>,
    ) -> Reply<pb::Organization> {
        let actor = self.actor(&request).await?;
        let name = field("name", OrgName::parse(&request.get_ref().name))?;
        reply(self.iam.create_org(&actor, &name).await, |o| org_pb(&o))
    }

    async fn get_organization(
        &self,
        request: Request<pb::OrganizationRef>,
    ) -> Reply<pb::Organization> {
        let actor = self.actor(&request).await?;
        let name = field("name", OrgName::parse(&request.get_ref().name))?;
        reply(self.iam.get_org(&actor, &name).await, |o| org_pb(&o))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Reply<pb::ListOrganizationsResponse> {
        let actor = self.actor(&request).await?;
        reply(self.iam.list_orgs(&actor).await, |orgs| {
            pb::ListOrganizationsResponse {
                organizations: orgs.iter().map(org_pb).collect(),
            }
        })
    }

    async fn delete_organization(
        &self,
        request: Request<pb::OrganizationRef>,
    ) -> Reply<pb::Organization> {
        let actor = self.actor(&request).await?;
        let name = field("name", OrgName::parse(&request.get_ref().name))?;
        reply(self.iam.delete_org(&actor, &name).await, |o| org_pb(&o))
    }

    // ---- memberships ----------------------------------------------------

    async fn add_member(&self, request: Request<pb::AddMemberRequest>) -> Reply<pb::Member> {
        let actor = self.actor(&request).await?;
        let r = request.get_ref();
        let (org, user) = (org(&r.org)?, user_ref(&r.user)?);
        let result = self.iam.add_member(&actor, &org, &user, r.default).await;
        reply(result, |(u, m)| member_pb(&u, &m))
    }

    async fn remove_member(&self, request: Request<pb::RemoveMemberRequest>) -> Reply<pb::Member> {
        let actor = self.actor(&request).await?;
        let r = request.get_ref();
        let (org, user) = (org(&r.org)?, user_ref(&r.user)?);
        let result = self.iam.remove_member(&actor, &org, &user).await;
        reply(result, |(u, m)| member_pb(&u, &m))
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Reply<pb::ListMembersResponse> {
        let actor = self.actor(&request).await?;
        let org = org(&request.get_ref().org)?;
        reply(self.iam.list_members(&actor, &org).await, |members| {
            pb::ListMembersResponse {
                members: members.iter().map(|(u, m)| member_pb(u, m)).collect(),
            }
        })
    }

    // ---- roles ----------------------------------------------------------

    async fn create_role(&self, request: Request<pb::Role>) -> Reply<pb::Role> {
        let actor = self.actor(&request).await?;
        let role = Role::try_from(request.get_ref())?;
        reply(self.iam.create_role(&actor, &role).await, |r| role_pb(&r))
    }

    async fn get_role(&self, request: Request<pb::RoleRef>) -> Reply<pb::Role> {
        let actor = self.actor(&request).await?;
        let key = role_key(&request.get_ref().org, &request.get_ref().name)?;
        reply(self.iam.get_role(&actor, &key).await, |r| role_pb(&r))
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Reply<pb::ListRolesResponse> {
        let actor = self.actor(&request).await?;
        let org = optional("org", &request.get_ref().org, OrgName::parse)?;
        reply(self.iam.list_roles(&actor, org.as_ref()).await, |roles| {
            pb::ListRolesResponse {
                roles: roles.iter().map(role_pb).collect(),
            }
        })
    }

    async fn delete_role(&self, request: Request<pb::RoleRef>) -> Reply<pb::Role> {
        let actor = self.actor(&request).await?;
        let key = role_key(&request.get_ref().org, &request.get_ref().name)?;
        reply(self.iam.delete_role(&actor, &key).await, |r| role_pb(&r))
    }

    // ---- role bindings --------------------------------------------------

    async fn create_role_binding(
        &self,
        request: Request<pb::RoleBinding>,
    ) -> Reply<pb::RoleBinding> {
        let actor = self.actor(&request).await?;
        let Bind { role, target } = Bind::try_from(request.get_ref())?;
        match target {
            Bound::Subject(subject) => {
                let result = self.iam.bind(&actor, role, &subject).await;
                reply(result, |(binding, name)| binding_pb(&binding, name))
            }
            Bound::Group(org, group) => {
                let binding = GroupBinding { role, group };
                let result = self.iam.bind_group(&actor, &org, &binding).await;
                reply(result, |()| group_binding_pb(&binding, &org))
            }
        }
    }

    async fn delete_role_binding(
        &self,
        request: Request<pb::RoleBinding>,
    ) -> Reply<pb::RoleBinding> {
        let actor = self.actor(&request).await?;
        let Bind { role, target } = Bind::try_from(request.get_ref())?;
        match target {
            Bound::Subject(subject) => {
                let result = self.iam.unbind(&actor, role, &subject).await;
                reply(result, |(binding, name)| binding_pb(&binding, name))
            }
            Bound::Group(org, group) => {
                let binding = GroupBinding { role, group };
                let result = self.iam.unbind_group(&actor, &org, &binding).await;
                reply(result, |()| group_binding_pb(&binding, &org))
            }
        }
    }

    async fn list_role_bindings(
        &self,
        request: Request<pb::ListRoleBindingsRequest>,
    ) -> Reply<pb::ListRoleBindingsResponse> {
        let actor = self.actor(&request).await?;
        let org = optional("org", &request.get_ref().org, OrgName::parse)?;
        let mut bindings: Vec<pb::RoleBinding> = self
            .iam
            .list_bindings(&actor, org.as_ref())
            .await
            .map_err(status)?
            .into_iter()
            .map(|(b, name)| binding_pb(&b, name))
            .collect();
        // An organization's listing also has the bindings to its groups.
        if let Some(org) = &org {
            let groups = self
                .iam
                .list_group_bindings(&actor, org)
                .await
                .map_err(status)?;
            bindings.extend(groups.iter().map(|b| group_binding_pb(b, org)));
        }
        Ok(Response::new(pb::ListRoleBindingsResponse { bindings }))
    }

    // ---- groups -----------------------------------------------------------

    async fn create_group(&self, request: Request<pb::GroupRef>) -> Reply<pb::Group> {
        let actor = self.actor(&request).await?;
        let (org, name) = group_fields(request.get_ref())?;
        let result = self.iam.create_group(&actor, &org, &name).await;
        reply(result, |g| group_pb(&g, Vec::new(), &[]))
    }

    async fn get_group(&self, request: Request<pb::GroupRef>) -> Reply<pb::Group> {
        let actor = self.actor(&request).await?;
        let (org, name) = group_fields(request.get_ref())?;
        let result = self.iam.get_group(&actor, &org, &name).await;
        reply(result, |(g, members, roles)| group_pb(&g, members, &roles))
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Reply<pb::ListGroupsResponse> {
        let actor = self.actor(&request).await?;
        let org = self::org(&request.get_ref().org)?;
        let result = self.iam.list_groups(&actor, &org).await;
        reply(result, |groups| pb::ListGroupsResponse {
            groups: groups
                .iter()
                .map(|g| group_pb(g, Vec::new(), &[]))
                .collect(),
        })
    }

    async fn delete_group(&self, request: Request<pb::GroupRef>) -> Reply<pb::Group> {
        let actor = self.actor(&request).await?;
        let (org, name) = group_fields(request.get_ref())?;
        let result = self.iam.delete_group(&actor, &org, &name).await;
        reply(result, |g| group_pb(&g, Vec::new(), &[]))
    }

    async fn add_group_member(&self, request: Request<pb::GroupMember>) -> Reply<pb::GroupMember> {
        let actor = self.actor(&request).await?;
        let (org, name, member) = group_member(request.get_ref())?;
        let result = self
            .iam
            .add_group_member(&actor, &org, &name, &member)
            .await;
        reply(result, |_| request.into_inner())
    }

    async fn link_group(&self, request: Request<pb::LinkGroupRequest>) -> Reply<pb::Group> {
        let actor = self.actor(&request).await?;
        let (org, name, link) = link_fields(request.get_ref())?;
        let result = self
            .iam
            .link_group(&actor, &org, &name, link.as_ref())
            .await;
        reply(result, |g| group_pb(&g, Vec::new(), &[]))
    }

    async fn remove_group_member(
        &self,
        request: Request<pb::GroupMember>,
    ) -> Reply<pb::GroupMember> {
        let actor = self.actor(&request).await?;
        let (org, name, member) = group_member(request.get_ref())?;
        let result = self
            .iam
            .remove_group_member(&actor, &org, &name, &member)
            .await;
        reply(result, |_| request.into_inner())
    }

    // ---- service accounts -----------------------------------------------

    async fn create_service_account(
        &self,
        request: Request<pb::CreateServiceAccountRequest>,
    ) -> Reply<pb::ServiceAccount> {
        let actor = self.actor(&request).await?;
        let r = request.get_ref();
        let (org, name) = account_fields(&r.org, &r.name)?;
        let keys = r
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| PublicKey::parse(&format!("keys[{i}]"), &k.algorithm, &k.pem))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Status::invalid_argument)?;
        let result = self.iam.create_account(&actor, &org, &name, &keys).await;
        reply(result, |a| account_pb(&a))
    }

    async fn get_service_account(
        &self,
        request: Request<pb::ServiceAccountRef>,
    ) -> Reply<pb::ServiceAccount> {
        let actor = self.actor(&request).await?;
        let (org, name) = account_fields(&request.get_ref().org, &request.get_ref().name)?;
        reply(self.iam.get_account(&actor, &org, &name).await, |a| {
            account_pb(&a)
        })
    }

    async fn list_service_accounts(
        &self,
        request: Request<pb::ListServiceAccountsRequest>,
    ) -> Reply<pb::ListServiceAccountsResponse> {
        let actor = self.actor(&request).await?;
        let org = org(&request.get_ref().org)?;
        reply(self.iam.list_accounts(&actor, &org).await, |accounts| {
            pb::ListServiceAccountsResponse {
                service_accounts: accounts.iter().map(account_pb).collect(),
            }
        })
    }

    async fn delete_service_account(
        &self,
        request: Request<pb::ServiceAccountRef>,
    ) -> Reply<pb::ServiceAccount> {
        let actor = self.actor(&request).await?;
        let (org, name) = account_fields(&request.get_ref().org, &request.get_ref().name)?;
        reply(self.iam.delete_account(&actor, &org, &name).await, |a| {
            account_pb(&a)
        })
    }

    async fn set_service_account_enabled(
        &self,
        request: Request<pb::SetServiceAccountEnabledRequest>,
    ) -> Reply<pb::ServiceAccount> {
        let actor = self.actor(&request).await?;
        let r = request.get_ref();
        let (org, name) = account_fields(&r.org, &r.name)?;
        let result = self
            .iam
            .set_account_enabled(&actor, &org, &name, r.enabled)
            .await;
        reply(result, |a| account_pb(&a))
    }

    async fn add_service_account_key(
        &self,
        request: Request<pb::AddServiceAccountKeyRequest>,
    ) -> Reply<pb::ServiceAccount> {
        let actor = self.actor(&request).await?;
        let r = request.get_ref();
        let (org, name) = account_fields(&r.org, &r.name)?;
        let key =
            PublicKey::parse("key", &r.algorithm, &r.pem).map_err(Status::invalid_argument)?;
        let result = self.iam.add_account_key(&actor, &org, &name, &key).await;
        reply(result, |a| account_pb(&a))
    }

    async fn remove_service_account_key(
        &self,
        request: Request<pb::RemoveServiceAccountKeyRequest>,
    ) -> Reply<pb::ServiceAccount> {
        let actor = self.actor(&request).await?;
        let r = request.get_ref();
        let (org, name) = account_fields(&r.org, &r.name)?;
        if r.key_id.is_empty() {
            return Err(Status::invalid_argument("key_id: must not be empty"));
        }
        let result = self
            .iam
            .remove_account_key(&actor, &org, &name, &r.key_id)
            .await;
        reply(result, |a| account_pb(&a))
    }

    // ---- audit log ------------------------------------------------------

    async fn list_audit_log(
        &self,
        request: Request<pb::ListAuditLogRequest>,
    ) -> Reply<pb::ListAuditLogResponse> {
        let actor = self.actor(&request).await?;
        let r = request.get_ref();
        let org = optional("org", &r.org, OrgName::parse)?;
        let result = self.iam.audit_log(&actor, org.as_ref(), r.limit).await;
        reply(result, |entries| pb::ListAuditLogResponse {
            entries: entries.iter().map(audit_pb).collect(),
        })
    }
}
