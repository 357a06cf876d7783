//! The ports every concern shares: why a port call fails, and the stores of events, documents
//! and secrets. Traits only; the AWS implementations live in `cuba-aws`, the in-memory twins in
//! `cuba-memory`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::model::document::{DocumentAction, DocumentId, DocumentRecord, DocumentRevision};
use crate::model::domain::{EventId, Insert, Millis, ReceivedEvent, StoredEvent, UserId};

/// Why a port call failed. `Unavailable` is worth retrying; `Corrupt` is not. The underlying
/// error is kept as the source, so logs can print the whole chain ([`ErrorChain`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PortError {
    #[error("{service} is unavailable")]
    Unavailable {
        service: &'static str,
        #[source]
        cause: Cause,
    },
    #[error("stored data is unreadable: {what}")]
    Corrupt {
        what: String,
        #[source]
        cause: Option<Cause>,
    },
    #[error("the cursor is not one this listing handed out")]
    InvalidCursor,
}

impl PortError {
    /// The service failed with `error` (a timeout, a throttle, a 5xx...).
    pub fn unavailable(
        service: &'static str,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        PortError::Unavailable {
            service,
            cause: Cause::new(error),
        }
    }

    /// The service did not do what was asked, for a reason this crate states.
    pub fn unavailable_because(service: &'static str, reason: impl Into<String>) -> Self {
        PortError::unavailable(service, Reason(reason.into()))
    }

    /// Stored (or to-be-stored) data that cannot be read or written as it is.
    pub fn corrupt(what: impl Into<String>) -> Self {
        PortError::Corrupt {
            what: what.into(),
            cause: None,
        }
    }

    pub fn corrupt_from(
        what: impl Into<String>,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        PortError::Corrupt {
            what: what.into(),
            cause: Some(Cause::new(error)),
        }
    }
}

/// Two port errors are equal when they say the same thing (tests compare them).
impl PartialEq for PortError {
    fn eq(&self, other: &Self) -> bool {
        ErrorChain(self).to_string() == ErrorChain(other).to_string()
    }
}

impl Eq for PortError {}

/// The error underneath a [`PortError`], shared so that port errors stay cheap to clone.
#[derive(Debug, Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(Arc::new(error))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// A reason given in words, where no underlying error exists.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Reason(String);

/// Displays an error and every source under it: `dynamodb is unavailable: service error: ...`.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// Secrets kept out of the functions' configuration (AWS Secrets Manager): read by id.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The secret's current text.
    async fn secret(&self, id: &str) -> Result<String, PortError>;
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores the event (and its raw text) unless one with the same (user, id) exists. Atomic.
    async fn insert(&self, event: &ReceivedEvent) -> Result<Insert, PortError>;

    /// Stores many events, each with the same atomic conditional write as
    /// [`EventStore::insert`], answering per event in order. An event whose (user, id) is already
    /// stored, or stored by an earlier item of the same call, is a duplicate and not written.
    async fn insert_many(&self, events: &[ReceivedEvent]) -> Result<Vec<Insert>, PortError>;

    async fn get(&self, user: UserId, id: &EventId) -> Result<Option<ReceivedEvent>, PortError>;

    /// The event `id` of `user` if it was received at `received_at` (a window member's, an
    /// absence check's trigger: the time is known), which a store keyed by receive time reads
    /// in one step instead of looking the id up first.
    async fn get_received(
        &self,
        user: UserId,
        id: &EventId,
        received_at: Millis,
    ) -> Result<Option<ReceivedEvent>, PortError> {
        Ok(self
            .get(user, id)
            .await?
            .filter(|found| found.event.received_at == received_at))
    }

    /// Marks an event as failing its schema (or, with `false`, as valid again). Events marked
    /// invalid are left out of [`EventStore::received_between`] and
    /// [`EventStore::all_received_between`], so rules never count them.
    /// `received_at` is the event's receive time (the caller holds the event), so a store keyed
    /// by time writes it without looking the id up.
    async fn set_invalid(
        &self,
        user: UserId,
        id: &EventId,
        received_at: Millis,
        invalid: bool,
    ) -> Result<(), PortError>;

    /// A user's events with `from <= received_at <= to`, oldest first.
    async fn received_between(
        &self,
        user: UserId,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<StoredEvent>, PortError>;

    /// Every user's events with `from <= received_at <= to`, at most `limit` of them (in no
    /// particular order); the flag says whether more were left out.
    async fn all_received_between(
        &self,
        from: Millis,
        to: Millis,
        limit: usize,
    ) -> Result<(Vec<StoredEvent>, bool), PortError>;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentWriteError {
    /// The document's version is not the one the writer saw (or it exists when creating).
    #[error("the document was changed by someone else (now at version {current:?})")]
    Conflict { current: Option<u64> },
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Versioned documents (rules, schemas) with history, written with optimistic concurrency.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// The documents in force, or `None` when the store was never seeded.
    async fn current(&self) -> Result<Option<Vec<DocumentRecord>>, PortError>;

    async fn get(&self, id: &DocumentId) -> Result<Option<DocumentRecord>, PortError>;

    /// Writes `documents` unless the store was seeded before; true when this call seeded it.
    async fn seed(
        &self,
        documents: &[(DocumentId, serde_json::Value)],
        by: &str,
        at: Millis,
    ) -> Result<bool, PortError>;

    /// Replaces (or with `document: None`, deletes) the document if its version is `expected`
    /// (`0`: the document must not exist). Returns the new version.
    async fn write(
        &self,
        id: &DocumentId,
        expected: u64,
        document: Option<&serde_json::Value>,
        action: DocumentAction,
        by: &str,
        at: Millis,
    ) -> Result<u64, DocumentWriteError>;

    /// Every revision, newest first.
    async fn history(&self, id: &DocumentId) -> Result<Vec<DocumentRevision>, PortError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("throttled")]
    struct Throttled(#[source] std::io::Error);

    #[test]
    fn a_port_error_keeps_its_cause_as_a_chain() {
        let error = PortError::unavailable(
            "dynamodb",
            Throttled(std::io::Error::other("ProvisionedThroughputExceeded")),
        );
        assert_eq!(error.to_string(), "dynamodb is unavailable");
        assert_eq!(
            ErrorChain(&error).to_string(),
            "dynamodb is unavailable: throttled: ProvisionedThroughputExceeded"
        );
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("throttled"));
        assert_eq!(error.clone(), error, "clones compare equal");
        assert_ne!(
            error,
            PortError::unavailable_because("dynamodb", "throttled")
        );
        assert_eq!(
            ErrorChain(&PortError::corrupt("a bad hour")).to_string(),
            "stored data is unreadable: a bad hour"
        );
    }
}
