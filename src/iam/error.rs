//! What an `iam` operation can answer instead of its result.

use thiserror::Error;

use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum IamError {
    /// The caller lacks the permission the operation needs (the message
    /// names it).
    #[error("{0}")]
    Denied(String),
    /// A value is well formed but unacceptable here (the message starts
    /// with the field's name).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IamError {
    pub(crate) fn not_found(what: impl std::fmt::Display) -> Self {
        Self::Store(StoreError::NotFound(what.to_string()))
    }
}
