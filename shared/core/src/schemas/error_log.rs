//! The error log's entries: events that failed their schema, kept until fixed and replayed.

use crate::model::domain::{EventId, Millis, UserId};
use crate::schemas::{SchemaRef, Violation};

/// Where an error-log entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorStatus {
    /// Invalid; waiting for a schema fix and a replay.
    Open,
    /// A replay claimed it (at `claimed_at`) and is processing the event.
    Replaying,
    /// Replayed: found valid and processed as a normal event.
    Replayed,
}

/// An event that failed its schema, as the error log keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorEntry {
    pub user: UserId,
    /// The event's id (the error log shares the events table's key).
    pub id: EventId,
    pub received_at: Millis,
    /// [`crate::model::domain::EventType`]'s display form, e.g. `web page interaction/pageview`.
    pub event_type: String,
    /// The event exactly as the client sent it.
    pub raw: String,
    pub violations: Vec<Violation>,
    /// The violations' kinds, once each, for filtering.
    pub violation_kinds: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaRef>,
    pub status: ErrorStatus,
    pub logged_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayed_by: Option<String>,
}

/// Which error-log entries to list.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorFilter {
    /// One user's entries only.
    pub user: Option<UserId>,
    pub event_type: Option<String>,
    pub violation: Option<String>,
    pub status: Option<ErrorStatus>,
    pub from: Millis,
    pub to: Millis,
}
