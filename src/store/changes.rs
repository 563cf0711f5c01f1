//! What other replicas changed, as PostgreSQL's `NOTIFY` reports it
//! (`migrations/postgres/*_notify.sql`): the keys of the cached entries a
//! committed write touched. SQLite has no such feed: a single process owns
//! its file, and the CLI's writes are seen within the caches' lifetimes.

use serde::Deserialize;
use sqlx::postgres::PgListener;

use super::StoreError;
use crate::domain::{
    IssuerName, OrgName, ServiceAccountId, ServiceAccountName, Subject, SubjectRef, UserId,
};

/// The channel the triggers notify.
pub const CHANNEL: &str = "dispatch_authz_changes";

/// One row a committed write touched, by the keys the caches use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    User {
        id: UserId,
        issuer: IssuerName,
        subject: Subject,
    },
    Grants(SubjectRef),
    Account {
        id: ServiceAccountId,
        org: OrgName,
        name: ServiceAccountName,
    },
    Org(OrgName),
    /// A linked group changed (`20261201000005_group_links.sql`).
    LinkedGroups,
}

/// What the feed says next.
#[derive(Debug)]
pub enum News {
    Changed(Changed),
    /// The connection was lost (and is being made again): whatever changed
    /// meanwhile is unknown, so every cached entry is suspect.
    Lost,
}

/// The payload as the trigger writes it.
#[derive(Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
enum Payload {
    User {
        id: String,
        issuer: String,
        subject: String,
    },
    Grants {
        user: Option<String>,
        account: Option<String>,
    },
    Account {
        id: String,
        org: String,
        name: String,
    },
    Org {
        name: String,
    },
    Linked,
}

impl Payload {
    fn parse(self) -> Option<Changed> {
        Some(match self {
            Self::User {
                id,
                issuer,
                subject,
            } => Changed::User {
                id: UserId::parse(&id).ok()?,
                issuer: IssuerName::parse(&issuer).ok()?,
                subject: Subject::parse(&subject).ok()?,
            },
            Self::Grants {
                user: Some(user), ..
            } => Changed::Grants(SubjectRef::User(UserId::parse(&user).ok()?)),
            Self::Grants {
                account: Some(account),
                ..
            } => Changed::Grants(SubjectRef::ServiceAccount(
                ServiceAccountId::parse(&account).ok()?,
            )),
            Self::Grants { .. } => return None,
            Self::Account { id, org, name } => Changed::Account {
                id: ServiceAccountId::parse(&id).ok()?,
                org: OrgName::parse(&org).ok()?,
                name: ServiceAccountName::parse(&name).ok()?,
            },
            Self::Org { name } => Changed::Org(OrgName::parse(&name).ok()?),
            Self::Linked => Changed::LinkedGroups,
        })
    }
}

/// A listening connection to PostgreSQL.
pub struct ChangeFeed {
    listener: PgListener,
}

impl ChangeFeed {
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut listener = PgListener::connect(url).await?;
        // On a lost connection, say so at once: reconnecting inside the
        // listener waited out a pool timeout (30 s) before anyone knew, and
        // the caches were trusted all that time (found by stopping
        // PostgreSQL under two replicas). The follower reconnects itself.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        Ok(Self { listener })
    }

    /// The next change, or the news that the connection was lost. An
    /// error: it could not be made again yet (the caller waits and asks
    /// again). A payload that does not parse counts as a loss: the safe
    /// reading of "something changed, we cannot tell what".
    pub async fn next(&mut self) -> Result<News, StoreError> {
        let Some(notification) = self.listener.try_recv().await? else {
            return Ok(News::Lost);
        };
        let parsed = serde_json::from_str::<Payload>(notification.payload())
            .ok()
            .and_then(Payload::parse);
        Ok(parsed.map_or(News::Lost, News::Changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_into_keys_and_nonsense_does_not() {
        let id = UserId::new();
        let user = format!(r#"{{"k":"user","id":"{id}","issuer":"dex","subject":"42"}}"#);
        let parsed = serde_json::from_str::<Payload>(&user).unwrap().parse();
        assert_eq!(
            parsed,
            Some(Changed::User {
                id,
                issuer: IssuerName::parse("dex").unwrap(),
                subject: Subject::parse("42").unwrap(),
            })
        );
        let grants = format!(r#"{{"k":"grants","user":"{id}","account":null}}"#);
        assert_eq!(
            serde_json::from_str::<Payload>(&grants).unwrap().parse(),
            Some(Changed::Grants(SubjectRef::User(id)))
        );
        let bad = r#"{"k":"grants","user":"not-a-uuid"}"#;
        assert_eq!(serde_json::from_str::<Payload>(bad).unwrap().parse(), None);
        assert!(serde_json::from_str::<Payload>(r#"{"k":"what"}"#).is_err());
        let linked = serde_json::from_str::<Payload>(r#"{"k":"linked"}"#).unwrap();
        assert_eq!(linked.parse(), Some(Changed::LinkedGroups));
    }
}
