//! Reading the configuration again without a restart (SIGHUP, or the admin
//! API's `ReloadConfiguration`).
//!
//! The new file is loaded and compiled like at start; a file that does not
//! compile is refused with its message, counted, and the configuration in
//! force kept. Otherwise a new [`Checker`] is built over the same caches and
//! swapped in whole ([`Live`]): a check in flight ends on the old one.
//!
//! What a reload changes: the request rules (`[check]`, public paths,
//! pass-through headers, `log.sample_allows`), `[authorization]` (mode and
//! routes), `[dry_run]`, the identity sources (`[[issuers]]`, `[github]`,
//! `[service_accounts]`; rebuilt only when they changed, their keys fetched
//! before the swap) and the `[signed_identity]` key files' contents.
//! Listeners, the store, cache sizes, the log format and the other
//! `[signed_identity]` settings need a restart: a reload that changes them
//! says so and leaves them as they are.

use std::{path::PathBuf, sync::Arc, time::Duration};

use serde::Serialize;
use tokio::{sync::Mutex, task::JoinSet};

use super::identity_verifier;
use crate::{
    assertion::KeyOrigin,
    check::{Checker, Live},
    config::{Overrides, Settings, SignedIdentityConfig},
    server::{Reload, Reloaded},
    telemetry::metrics,
};

/// How long a reload waits for a new issuer's keys before swapping anyway
/// (its tokens get 503s until the refresher fetches them).
const FIRST_FETCH: Duration = Duration::from_secs(5);

pub struct Reloader {
    file: Option<PathBuf>,
    overrides: Overrides,
    /// The settings in force; held through a reload, so reloads run one at
    /// a time.
    applied: Mutex<Settings>,
    live: Arc<Live>,
    /// The identity sources' key refreshers, replaced with them.
    refreshers: std::sync::Mutex<JoinSet<()>>,
}

impl Reloader {
    pub fn new(
        file: Option<PathBuf>,
        overrides: Overrides,
        applied: Settings,
        live: Arc<Live>,
    ) -> Self {
        let reloader = Self {
            file,
            overrides,
            applied: Mutex::new(applied),
            live,
            refreshers: Default::default(),
        };
        reloader.refresh_keys_of(&reloader.live.current());
        reloader
    }

    /// Runs the refreshers of `checker`'s remote key sets, stopping the
    /// previous ones.
    fn refresh_keys_of(&self, checker: &Checker) {
        let mut set = JoinSet::new();
        for remote in checker.identity().remote_key_sets() {
            set.spawn(remote.run_refresher());
        }
        *self.refreshers.lock().unwrap_or_else(|p| p.into_inner()) = set;
    }

    /// Reloads on every SIGHUP, until dropped.
    pub async fn on_hangup(self: Arc<Self>) {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: reload through the admin API only");
            return;
        };
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reading the configuration again");
            let _ = self.reload_now().await;
        }
    }

    /// Reads, compiles and swaps in the configuration; logs and counts the
    /// outcome.
    pub async fn reload_now(&self) -> Result<Reloaded, String> {
        let outcome = self.swap().await;
        metrics::config_reload(outcome.is_ok());
        match &outcome {
            Ok(reloaded) => tracing::info!(
                changed = %reloaded.changed.join(","),
                needs_restart = %reloaded.needs_restart.join(","),
                "configuration reloaded"
            ),
            Err(error) => tracing::warn!(
                %error,
                "configuration reload refused: the configuration in force is kept"
            ),
        }
        outcome
    }

    async fn swap(&self) -> Result<Reloaded, String> {
        let mut applied = self.applied.lock().await;
        let settings =
            Settings::load(self.file.as_deref(), &self.overrides).map_err(|e| e.to_string())?;
        let config = settings.compile().map_err(|e| e.to_string())?;
        let reloaded = compare(&applied, &settings);
        let current = self.live.current();
        let identity_changed = ["issuers", "github", "service_accounts"]
            .iter()
            .any(|s| reloaded.changed.contains(s));
        let mut rules = config.request_rules;
        rules.signed_identity = current.signed_identity().cloned();
        if let (Some(asserter), Some((_, keys))) = (&rules.signed_identity, config.signed_identity)
            && matches!(asserter.settings().origin, KeyOrigin::Files(_))
            && !reloaded.needs_restart.contains(&"signed_identity")
        {
            asserter.replace_keys(keys);
        }
        let identity = if identity_changed {
            let identity = identity_verifier(
                config.issuers,
                config.github,
                config.service_accounts,
                config.caches,
                current.directory().accounts.clone(),
            );
            first_fetch(&identity).await;
            Some(identity)
        } else {
            None
        };
        let next = current.reloaded(identity, rules, config.authorization);
        if identity_changed {
            self.refresh_keys_of(&next);
        }
        self.live.replace(next);
        *applied = settings;
        Ok(reloaded)
    }
}

#[tonic::async_trait]
impl Reload for Reloader {
    async fn reload(&self) -> Result<Reloaded, String> {
        self.reload_now().await
    }
}

/// Every remote key set fetched once (at most [`FIRST_FETCH`]), so a new
/// issuer's tokens verify from the swap on.
pub(super) async fn first_fetch(identity: &crate::identity::IdentityVerifier) {
    let mut fetches = JoinSet::new();
    for remote in identity.remote_key_sets() {
        fetches.spawn(async move {
            if let Err(error) = remote.refresh().await {
                tracing::warn!(%error, "reload: a new issuer's keys could not be fetched yet");
            }
        });
    }
    let _ = tokio::time::timeout(FIRST_FETCH, fetches.join_all()).await;
}

/// Which sections differ between `old` and `new`, split into those a reload
/// applies and those that need a restart.
fn compare(old: &Settings, new: &Settings) -> Reloaded {
    fn differs(a: &impl Serialize, b: &impl Serialize) -> bool {
        serde_json::to_value(a).ok() != serde_json::to_value(b).ok()
    }
    let mut reloaded = Reloaded::default();
    let applied = [
        ("check", differs(&old.check, &new.check)),
        (
            "log.sample_allows",
            old.log.sample_allows != new.log.sample_allows,
        ),
        (
            "authorization",
            differs(&old.authorization, &new.authorization),
        ),
        ("dry_run", differs(&old.dry_run, &new.dry_run)),
        (
            "signed_identity.key_files",
            differs(
                &old.signed_identity.as_ref().map(|s| &s.key_files),
                &new.signed_identity.as_ref().map(|s| &s.key_files),
            ),
        ),
        ("issuers", differs(&old.issuers, &new.issuers)),
        ("github", differs(&old.github, &new.github)),
        (
            "service_accounts",
            differs(&old.service_accounts, &new.service_accounts),
        ),
    ];
    let restart = [
        ("server", differs(&old.server, &new.server)),
        ("store", differs(&old.store, &new.store)),
        ("cache", differs(&old.cache, &new.cache)),
        ("log.format", old.log.format != new.log.format),
        ("admin", differs(&old.admin, &new.admin)),
        ("http", differs(&old.http, &new.http)),
        ("operations", differs(&old.operations, &new.operations)),
        (
            "signed_identity",
            differs(
                &old.signed_identity.as_ref().map(without_keys),
                &new.signed_identity.as_ref().map(without_keys),
            ),
        ),
    ];
    reloaded.changed = applied
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect();
    reloaded.needs_restart = restart
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect();
    reloaded
}

/// `[signed_identity]` but its key files, which a reload reads again.
fn without_keys(section: &SignedIdentityConfig) -> SignedIdentityConfig {
    SignedIdentityConfig {
        key_files: Vec::new(),
        ..section.clone()
    }
}
