//! The admin gRPC API (`proto/dispatch/authz/admin/v1/admin.proto`):
//! translation only. Each call authenticates the caller with the Check
//! pipeline's own sources and caches, converts the request into domain
//! values (`convert.rs`: a bad field is `INVALID_ARGUMENT` naming it), makes
//! one call to the [`Iam`] service — which authorizes, writes one audited
//! transaction and invalidates what it made stale — and converts the answer.

mod accounts;
mod bindings;
pub mod convert;
mod reload;

use std::sync::Arc;

use tonic::{Code, Request, Response, Status};

pub use crate::proto::admin::admin_server::AdminServer;
use crate::{
    check::{ClientHeaders, DenialKind, Live},
    domain::OrgName,
    iam::{Iam, IamError},
    policy::rbac::Role,
    proto::admin::{self as pb, admin_server::Admin},
    store::{Actor, NewUser, UserRef},
};
use bindings::Change;
use convert::{
    audit_pb, field, group_fields, group_member, group_pb, link_fields, member_pb, optional,
    org_pb, role_key, role_pb, status, user_pb,
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

    // ---- role bindings (bindings.rs) -------------------------------------

    async fn create_role_binding(
        &self,
        request: Request<pb::RoleBinding>,
    ) -> Reply<pb::RoleBinding> {
        self.change_binding(request, Change::Make).await
    }

    async fn delete_role_binding(
        &self,
        request: Request<pb::RoleBinding>,
    ) -> Reply<pb::RoleBinding> {
        self.change_binding(request, Change::Remove).await
    }

    async fn list_role_bindings(
        &self,
        request: Request<pb::ListRoleBindingsRequest>,
    ) -> Reply<pb::ListRoleBindingsResponse> {
        self.list_bindings(request).await
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

    // ---- service accounts (accounts.rs) -----------------------------------

    async fn create_service_account(
        &self,
        request: Request<pb::CreateServiceAccountRequest>,
    ) -> Reply<pb::ServiceAccount> {
        self.create_account(request).await
    }

    async fn get_service_account(
        &self,
        request: Request<pb::ServiceAccountRef>,
    ) -> Reply<pb::ServiceAccount> {
        self.get_account(request).await
    }

    async fn list_service_accounts(
        &self,
        request: Request<pb::ListServiceAccountsRequest>,
    ) -> Reply<pb::ListServiceAccountsResponse> {
        self.list_accounts(request).await
    }

    async fn delete_service_account(
        &self,
        request: Request<pb::ServiceAccountRef>,
    ) -> Reply<pb::ServiceAccount> {
        self.delete_account(request).await
    }

    async fn set_service_account_enabled(
        &self,
        request: Request<pb::SetServiceAccountEnabledRequest>,
    ) -> Reply<pb::ServiceAccount> {
        self.set_account_enabled(request).await
    }

    async fn add_service_account_key(
        &self,
        request: Request<pb::AddServiceAccountKeyRequest>,
    ) -> Reply<pb::ServiceAccount> {
        self.add_account_key(request).await
    }

    async fn remove_service_account_key(
        &self,
        request: Request<pb::RemoveServiceAccountKeyRequest>,
    ) -> Reply<pb::ServiceAccount> {
        self.remove_account_key(request).await
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
