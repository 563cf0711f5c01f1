//! Following the other replicas (PostgreSQL only): every write another
//! replica commits arrives as a `NOTIFY` with the keys it touched, and the
//! matching cache entries are forgotten here, as this replica's own writes
//! forget theirs.
//!
//! Never serving stale after losing the channel: whatever changed while
//! nobody listened is unknown, so on every loss, and again once listening
//! anew, every cached entry is forgotten. While the channel cannot be made
//! again, the caches are emptied at every retry (at most a second apart), so
//! a check is decided on what the database says now, or, when it is down,
//! refused with a 503 like any check it cannot verify.
//!
//! Until it first listens, the replica is not ready (`/readyz`, gRPC
//! health): a cache it filled before would be forgotten (a check that hit
//! it once might not the next time, found by a test failing in CI).

use std::time::Duration;

use tracing::{info, warn};

use super::{
    Stale,
    forget::{forget_account, forget_user},
};
use crate::{
    check::{Checker, Live, Replicas},
    domain::Principal,
    store::changes::{ChangeFeed, Changed, News},
};

const FIRST_RETRY: Duration = Duration::from_millis(100);
/// A listening connection to a healthy server takes milliseconds. Without
/// this bound a connect to a server that went away waited out the listener's
/// pool timeout (30 s), with nothing forgotten meanwhile: the caches filled
/// before the first connect were served while the database was down (found
/// by the outage test, failing once in CI).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Also the longest a cache may be refilled without anyone listening.
const LAST_RETRY: Duration = Duration::from_secs(1);

/// Runs until dropped (aborted with the server).
pub async fn follow(url: String, live: std::sync::Arc<Live>) {
    let mut retry = FIRST_RETRY;
    loop {
        match tokio::time::timeout(CONNECT_TIMEOUT, ChangeFeed::connect(&url)).await {
            Ok(Ok(mut feed)) => {
                // Listening from here on: what was cached before may predate
                // a change that nobody heard.
                forget_everything(&live.current());
                live.set_replicas(Replicas::Following);
                info!("following other replicas' changes");
                retry = FIRST_RETRY;
                loop {
                    match feed.next().await {
                        Ok(News::Changed(changed)) => {
                            forget_changed(&live.current(), changed).await
                        }
                        lost => {
                            let error = lost.err().map(tracing::field::display);
                            warn!(
                                error,
                                "lost the change feed: caches emptied until it is back"
                            );
                            live.set_replicas(Replicas::Lost);
                            break;
                        }
                    }
                }
            }
            Ok(Err(error)) => warn!(%error, "cannot follow other replicas' changes yet; retrying"),
            Err(_) => warn!("cannot follow other replicas' changes yet (no answer); retrying"),
        }
        forget_everything(&live.current());
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}

async fn forget_changed(checker: &Checker, changed: Changed) {
    use crate::iam::Forget;
    match changed {
        Changed::User {
            id,
            issuer,
            subject,
        } => forget_user(checker, id, Principal { issuer, subject }).await,
        Changed::Grants(subject) => checker.forget(&[Stale::Grants(subject)]).await,
        Changed::Account { id, org, name } => forget_account(checker, id, &org, &name).await,
        Changed::Org(org) => checker.forget(&[Stale::Org(org)]).await,
        Changed::LinkedGroups => checker.forget(&[Stale::LinkedGroups]).await,
    }
}

fn forget_everything(checker: &Checker) {
    checker.directory().invalidate_all();
    checker.identity().forget_all_service_accounts();
}
