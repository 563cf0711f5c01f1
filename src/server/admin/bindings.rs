//! Role bindings over the admin API: a role bound to a subject, or to a
//! group of an organization, made and removed alike.

use tonic::{Request, Response};

use super::{
    AdminService, Reply,
    convert::{Bind, Bound, binding_pb, group_binding_pb, optional, status},
    reply,
};
use crate::{domain::OrgName, proto::admin as pb, store::GroupBinding};

/// What a binding request does.
#[derive(Clone, Copy)]
pub(super) enum Change {
    Make,
    Remove,
}

impl AdminService {
    pub(super) async fn change_binding(
        &self,
        request: Request<pb::RoleBinding>,
        change: Change,
    ) -> Reply<pb::RoleBinding> {
        let actor = self.actor(&request).await?;
        let Bind { role, target } = Bind::try_from(request.get_ref())?;
        match target {
            Bound::Subject(subject) => {
                let result = match change {
                    Change::Make => self.iam.bind(&actor, role, &subject).await,
                    Change::Remove => self.iam.unbind(&actor, role, &subject).await,
                };
                reply(result, |(binding, name)| binding_pb(&binding, name))
            }
            Bound::Group(org, group) => {
                let binding = GroupBinding { role, group };
                let result = match change {
                    Change::Make => self.iam.bind_group(&actor, &org, &binding).await,
                    Change::Remove => self.iam.unbind_group(&actor, &org, &binding).await,
                };
                reply(result, |()| group_binding_pb(&binding, &org))
            }
        }
    }

    pub(super) async fn list_bindings(
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
}
