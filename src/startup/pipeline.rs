//! The check pipeline as the server, a reload and `explain` assemble it
//! from the configuration.

use std::sync::Arc;

use super::{StartupError, open_existing_store};
use crate::{
    assertion::Asserter,
    check::{Checker, SettledCache},
    config::Config,
    directory::{Directory, GrantsCache, LinkedCache, OrgCache, ServiceAccountCache, UserCache},
    identity::{
        IdentityVerifier, TokenCache, github::GithubSource, service_account::ServiceAccountSource,
    },
    store::CheckStore,
};

/// The check pipeline over `store`, as the server assembles it: the
/// configured identity sources (remote keys fetched by refreshers the
/// caller runs), the caches, the request rules and the authorization mode.
/// Tests build it over an in-memory store to decide without the wire.
pub fn checker(store: Arc<dyn CheckStore>, mut config: Config) -> Checker {
    let caches = config.caches;
    config.request_rules.signed_identity = config
        .signed_identity
        .map(|(settings, keys)| Arc::new(Asserter::new(settings, keys)));
    let accounts = ServiceAccountCache::new(store.clone(), caches.users);
    let identity = identity_verifier(
        config.issuers,
        config.github,
        config.service_accounts,
        caches,
        accounts.clone(),
    );
    let directory = Directory {
        users: UserCache::new(store.clone(), caches.users),
        grants: GrantsCache::new(store.clone(), caches.users),
        linked: LinkedCache::new(store.clone(), caches.users),
        orgs: OrgCache::new(store, caches.users),
        accounts,
    };
    Checker::new(
        identity,
        directory,
        SettledCache::new(
            caches.tokens_capacity,
            caches.users.ttl,
            caches.tokens_max_ttl,
        ),
        config.request_rules,
        config.authorization,
    )
}

/// The configured identity sources, with a token cache of their own;
/// service accounts are read through `accounts` (the directory's cache).
pub(super) fn identity_verifier(
    issuers: Vec<crate::identity::IssuerConfig>,
    github: Option<crate::identity::github::GithubSettings>,
    service_accounts: Option<crate::identity::service_account::ServiceAccountSettings>,
    caches: crate::config::Caches,
    accounts: ServiceAccountCache,
) -> IdentityVerifier {
    let http = http_client();
    let issuers = issuers.into_iter().map(|i| i.build(&http)).collect();
    let github = github.map(|g| GithubSource::new(g, http.clone()));
    IdentityVerifier::new(
        issuers,
        TokenCache::new(caches.tokens_capacity, caches.tokens_max_ttl),
    )
    .with_github(github)
    .with_service_accounts(
        service_accounts.map(|settings| ServiceAccountSource::new(accounts, settings)),
    )
}

/// The check pipeline as `serve` would build it, for `explain`: the
/// configured store, and every remote key set fetched once.
pub async fn explainer(config: Config) -> Result<Checker, StartupError> {
    let store = open_existing_store(&config).await?;
    let checker = checker(Arc::new(store), config);
    super::reload::first_fetch(checker.identity()).await;
    Ok(checker)
}

/// The client for identity providers and the GitHub API: one connection
/// pool, rustls with the system's trust store.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("dispatch-authz/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(2))
        .tcp_nodelay(true)
        .build()
        .unwrap_or_default()
}
