//! `[cache]`: sizes and lifetimes of the check path's caches.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, within};
use crate::directory::CacheSettings;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub users_capacity: u64,
    pub users_ttl_secs: u64,
    pub users_negative_ttl_secs: u64,
    pub tokens_capacity: u64,
    pub tokens_max_ttl_secs: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            users_capacity: 100_000,
            users_ttl_secs: 30,
            users_negative_ttl_secs: 5,
            tokens_capacity: 100_000,
            tokens_max_ttl_secs: 300,
        }
    }
}

/// The checked cache settings.
#[derive(Debug, Clone, Copy)]
pub struct Caches {
    pub users: CacheSettings,
    pub tokens_capacity: u64,
    pub tokens_max_ttl: Duration,
}

impl CacheConfig {
    pub(super) fn compile(&self) -> Result<Caches, ConfigError> {
        within("cache.users_capacity", self.users_capacity, 1..=100_000_000)?;
        within(
            "cache.tokens_capacity",
            self.tokens_capacity,
            1..=100_000_000,
        )?;
        within("cache.users_ttl_secs", self.users_ttl_secs, 0..=86_400)?;
        within(
            "cache.users_negative_ttl_secs",
            self.users_negative_ttl_secs,
            0..=86_400,
        )?;
        within(
            "cache.tokens_max_ttl_secs",
            self.tokens_max_ttl_secs,
            0..=86_400,
        )?;
        Ok(Caches {
            users: CacheSettings {
                capacity: self.users_capacity,
                ttl: Duration::from_secs(self.users_ttl_secs),
                negative_ttl: Duration::from_secs(self.users_negative_ttl_secs),
            },
            tokens_capacity: self.tokens_capacity,
            tokens_max_ttl: Duration::from_secs(self.tokens_max_ttl_secs),
        })
    }
}
