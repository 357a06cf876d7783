//! The error log's port: where events that failed their schema are kept until replayed.

use async_trait::async_trait;

use crate::model::ports::PortError;

use crate::model::domain::{EventId, Millis, UserId};
use crate::model::listing::Page;
use crate::schemas::error_log::{ErrorEntry, ErrorFilter};
use crate::schemas::{SchemaRef, Violation};

/// The error log: invalid events, kept until they are fixed and replayed.
#[async_trait]
pub trait ErrorLog: Send + Sync {
    /// Records (or, while it is still open, refreshes) the entry for an invalid event. An entry
    /// already replayed is left alone. Safe to repeat.
    async fn record(&self, entry: &ErrorEntry) -> Result<(), PortError>;

    async fn get(&self, user: UserId, id: &EventId) -> Result<Option<ErrorEntry>, PortError>;

    /// Takes the entry for a replay: true when it was open, or when an earlier replay's claim
    /// is older than `stale_before` (that replayer died). False when replayed or being replayed.
    async fn claim_replay(
        &self,
        user: UserId,
        id: &EventId,
        now: Millis,
        stale_before: Millis,
    ) -> Result<bool, PortError>;

    /// Gives a claimed entry back as still open, with the violations a re-validation found.
    async fn reopen(
        &self,
        user: UserId,
        id: &EventId,
        violations: &[Violation],
        schema: Option<&SchemaRef>,
    ) -> Result<(), PortError>;

    async fn mark_replayed(
        &self,
        user: UserId,
        id: &EventId,
        by: &str,
        at: Millis,
    ) -> Result<(), PortError>;

    /// Newest first.
    async fn list(
        &self,
        filter: &ErrorFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<ErrorEntry>, PortError>;
}
