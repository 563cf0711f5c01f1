//! The admin API from a test: a client that sends a bearer token, and
//! helpers for the calls most tests make to set up a world.

use dispatch_authz::{
    proto::admin::{self as pb, admin_client::AdminClient, role_binding::Subject},
    store::{Actor, BindingAdmin, UserRef},
};
use tonic::{Request, Status, transport::Channel};

use super::{TestApp, claims, token};

pub struct Admin {
    pub client: AdminClient<Channel>,
    authorization: String,
}

impl Admin {
    pub async fn connect(app: &TestApp, token: &str) -> Self {
        let addr = app.admin_addr.expect("the admin API is on");
        Self::connect_to(&addr.to_string(), token).await
    }

    /// The admin API at `addr` (a `serve` process's).
    pub async fn connect_to(addr: &str, token: &str) -> Self {
        let client = AdminClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        Self {
            client,
            authorization: format!("Bearer {token}"),
        }
    }

    pub fn req<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.authorization.parse().unwrap());
        request
    }

    pub async fn reload(&mut self) -> Result<pb::ReloadConfigurationResponse, Status> {
        let r = self.req(pb::ReloadConfigurationRequest {});
        self.client
            .reload_configuration(r)
            .await
            .map(|r| r.into_inner())
    }

    pub async fn org(&mut self, name: &str) -> Result<pb::Organization, Status> {
        let r = self.req(pb::OrganizationRef { name: name.into() });
        self.client
            .create_organization(r)
            .await
            .map(|r| r.into_inner())
    }

    /// A role; `org` empty for a global one.
    pub async fn role(
        &mut self,
        org: &str,
        name: &str,
        permissions: &[&str],
    ) -> Result<pb::Role, Status> {
        let r = self.req(pb::Role {
            org: org.into(),
            name: name.into(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
        });
        self.client.create_role(r).await.map(|r| r.into_inner())
    }

    pub async fn member(
        &mut self,
        org: &str,
        user: &str,
        default: bool,
    ) -> Result<pb::Member, Status> {
        let r = self.req(pb::AddMemberRequest {
            org: org.into(),
            user: user.into(),
            default,
        });
        self.client.add_member(r).await.map(|r| r.into_inner())
    }

    pub fn binding(org: &str, role: &str, subject: Subject) -> pb::RoleBinding {
        pb::RoleBinding {
            role: Some(pb::RoleRef {
                org: org.into(),
                name: role.into(),
            }),
            subject: Some(subject),
        }
    }

    pub async fn bind(
        &mut self,
        org: &str,
        role: &str,
        subject: Subject,
    ) -> Result<pb::RoleBinding, Status> {
        let r = self.req(Self::binding(org, role, subject));
        self.client
            .create_role_binding(r)
            .await
            .map(|r| r.into_inner())
    }

    pub async fn unbind(
        &mut self,
        org: &str,
        role: &str,
        subject: Subject,
    ) -> Result<pb::RoleBinding, Status> {
        let r = self.req(Self::binding(org, role, subject));
        self.client
            .delete_role_binding(r)
            .await
            .map(|r| r.into_inner())
    }

    pub async fn service_account(
        &mut self,
        org: &str,
        name: &str,
        keys: &[(&str, &str)],
    ) -> Result<pb::ServiceAccount, Status> {
        let keys = keys
            .iter()
            .map(|(algorithm, file)| pb::PublicKey {
                algorithm: algorithm.to_string(),
                pem: std::fs::read_to_string(super::fixture(file)).unwrap(),
                ..Default::default()
            })
            .collect();
        let r = self.req(pb::CreateServiceAccountRequest {
            org: org.into(),
            name: name.into(),
            keys,
        });
        self.client
            .create_service_account(r)
            .await
            .map(|r| r.into_inner())
    }

    /// Registers the fixture key `ec256.pub.pem` (ES256) for `org/name`.
    pub async fn add_account_key(
        &mut self,
        org: &str,
        name: &str,
    ) -> Result<pb::ServiceAccount, Status> {
        let r = self.req(pb::AddServiceAccountKeyRequest {
            org: org.into(),
            name: name.into(),
            algorithm: "ES256".into(),
            pem: std::fs::read_to_string(super::fixture("ec256.pub.pem")).unwrap(),
        });
        self.client
            .add_service_account_key(r)
            .await
            .map(|r| r.into_inner())
    }

    pub async fn remove_account_key(
        &mut self,
        org: &str,
        name: &str,
        key_id: &str,
    ) -> Result<pb::ServiceAccount, Status> {
        let r = self.req(pb::RemoveServiceAccountKeyRequest {
            org: org.into(),
            name: name.into(),
            key_id: key_id.into(),
        });
        self.client
            .remove_service_account_key(r)
            .await
            .map(|r| r.into_inner())
    }

    pub async fn set_account_enabled(
        &mut self,
        org: &str,
        name: &str,
        enabled: bool,
    ) -> Result<pb::ServiceAccount, Status> {
        let r = self.req(pb::SetServiceAccountEnabledRequest {
            org: org.into(),
            name: name.into(),
            enabled,
        });
        self.client
            .set_service_account_enabled(r)
            .await
            .map(|r| r.into_inner())
    }

    pub async fn delete_account(
        &mut self,
        org: &str,
        name: &str,
    ) -> Result<pb::ServiceAccount, Status> {
        let r = self.req(pb::ServiceAccountRef {
            org: org.into(),
            name: name.into(),
        });
        self.client
            .delete_service_account(r)
            .await
            .map(|r| r.into_inner())
    }

    pub async fn set_user_enabled(
        &mut self,
        user: &str,
        enabled: bool,
    ) -> Result<pb::User, Status> {
        let r = self.req(pb::SetUserEnabledRequest {
            user: user.into(),
            enabled,
        });
        self.client
            .set_user_enabled(r)
            .await
            .map(|r| r.into_inner())
    }

    pub async fn audit(&mut self, org: &str) -> Vec<pb::AuditEntry> {
        let r = self.req(pb::ListAuditLogRequest {
            org: org.into(),
            limit: 1000,
        });
        self.client
            .list_audit_log(r)
            .await
            .unwrap()
            .into_inner()
            .entries
    }
}

/// `test:SUBJECT`, how the admin API names a user of the test issuer.
pub fn user_ref(subject: &str) -> String {
    format!("{}:{subject}", super::ISSUER_NAME)
}

impl TestApp {
    /// Adds a user with subject `root` and makes it the first global admin
    /// (as `dispatch-authz bootstrap` does); returns an admin client as root.
    pub async fn bootstrap(&self) -> Admin {
        let root = self.add_user("root", "root").await;
        self.store
            .bootstrap(&Actor::local("test"), &UserRef::Id(root.id))
            .await
            .unwrap();
        Admin::connect(self, &token(&claims("root"))).await
    }

    /// The world the proxy, HTTP and dry-run tests share: organizations
    /// acme and globex, a `developer` role (`function:*`) in acme, alice a
    /// member of acme bound to it, bob registered with no membership.
    /// Returns the admin client and alice.
    pub async fn acme_with_alice(&self) -> (Admin, dispatch_authz::store::User) {
        let mut admin = self.bootstrap().await;
        admin.org("acme").await.unwrap();
        admin.org("globex").await.unwrap();
        admin
            .role("acme", "developer", &["function:*"])
            .await
            .unwrap();
        let alice = self.add_user("alice", "alice").await;
        admin
            .member("acme", &user_ref("alice"), true)
            .await
            .unwrap();
        admin
            .bind("acme", "developer", Subject::User(user_ref("alice")))
            .await
            .unwrap();
        self.add_user("bob", "bob").await;
        (admin, alice)
    }
}
