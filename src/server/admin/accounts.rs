//! Service accounts over the admin API: an organization's non-human
//! callers and the public keys their tokens are verified with.

use tonic::{Request, Status};

use super::{
    AdminService, Reply,
    convert::{account_fields, account_pb},
    org, reply,
};
use crate::{iam::PublicKey, proto::admin as pb};

impl AdminService {
    pub(super) async fn create_account(
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

    pub(super) async fn get_account(
        &self,
        request: Request<pb::ServiceAccountRef>,
    ) -> Reply<pb::ServiceAccount> {
        let actor = self.actor(&request).await?;
        let (org, name) = account_fields(&request.get_ref().org, &request.get_ref().name)?;
        reply(self.iam.get_account(&actor, &org, &name).await, |a| {
            account_pb(&a)
        })
    }

    pub(super) async fn list_accounts(
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

    pub(super) async fn delete_account(
        &self,
        request: Request<pb::ServiceAccountRef>,
    ) -> Reply<pb::ServiceAccount> {
        let actor = self.actor(&request).await?;
        let (org, name) = account_fields(&request.get_ref().org, &request.get_ref().name)?;
        reply(self.iam.delete_account(&actor, &org, &name).await, |a| {
            account_pb(&a)
        })
    }

    pub(super) async fn set_account_enabled(
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

    pub(super) async fn add_account_key(
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

    pub(super) async fn remove_account_key(
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
}
