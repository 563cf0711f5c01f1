//! The admin API's `ReloadConfiguration`: the server reads its
//! configuration again, as on SIGHUP. `startup` does the reading; the
//! admin API only asks, for a caller with a global role granting
//! `iam:update`.

use tonic::{Request, Response, Status};

use super::{AdminService, Reply};
use crate::{proto::admin as pb, server::admin::convert::status};

/// Reading the configuration again (`startup` does it; SIGHUP too).
#[tonic::async_trait]
pub trait Reload: Send + Sync {
    /// `Err`: the new configuration was refused, naming why; the one in
    /// force stays.
    async fn reload(&self) -> Result<Reloaded, String>;
}

/// What a reload changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reloaded {
    /// Sections that changed and took effect.
    pub changed: Vec<&'static str>,
    /// Sections that changed but need a restart.
    pub needs_restart: Vec<&'static str>,
}

impl AdminService {
    pub(super) async fn reload_asked(
        &self,
        request: Request<pb::ReloadConfigurationRequest>,
    ) -> Reply<pb::ReloadConfigurationResponse> {
        let actor = self.actor(&request).await?;
        self.iam.may_reload(&actor).map_err(status)?;
        let Some(reload) = &self.reload else {
            return Err(Status::unimplemented("this server cannot reload"));
        };
        tracing::info!(actor = %actor, "configuration reload asked through the admin API");
        let reloaded = reload.reload().await.map_err(Status::failed_precondition)?;
        let names = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect();
        Ok(Response::new(pb::ReloadConfigurationResponse {
            changed: names(reloaded.changed),
            needs_restart: names(reloaded.needs_restart),
        }))
    }
}
