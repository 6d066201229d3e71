//! The session store's error type.

/// A `Result` whose error is [`SessionError`].
pub type Result<T, E = SessionError> = std::result::Result<T, E>;

/// What can go wrong in a session store call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session, encoded, is larger than the store's limit; the stored session is unchanged.
    #[error("session of {size} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Another request changed the session since this one loaded it, and the store's
    /// [`ConflictPolicy`](crate::ConflictPolicy) is `Reject`.
    #[error("the session changed since it was loaded")]
    Conflict,
    /// The session was destroyed or expired after this request loaded it, so its changes were
    /// not saved: a logged-out or expired session never comes back, under its id or any
    /// other. Both framework adapters log this and drop the save.
    #[error("the session was destroyed or expired since it was loaded")]
    Gone,
    /// The stored record is not a session this version can read.
    #[error("stored session is unreadable: {0}")]
    Corrupt(String),
    /// The bank failed (unreachable server, ...); see [`databank_core::Error::is_retryable`].
    #[error(transparent)]
    Databank(#[from] databank_core::Error),
}

impl SessionError {
    /// True when trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SessionError::Databank(e) if e.is_retryable())
    }
}
