//! The narrow interfaces the core needs from the outside world. AWS implementations live in
//! [`crate::aws`]; nothing in the core names an AWS type.

use async_trait::async_trait;

use crate::alerting::{Alert, AlertId, Delivery, OperatorAlert};
use crate::domain::{EventId, Millis, PhoneNumber, SessionId, StoredEvent, UserId, UserProfile};
use crate::rules::RuleId;
use crate::scheduling::AbsenceCheck;
use crate::schemas::{SchemaRef, Violation};

/// Why a port call failed. `Unavailable` is worth retrying; `Corrupt` is not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error("{service} is unavailable: {detail}")]
    Unavailable {
        service: &'static str,
        detail: String,
    },
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("the cursor is not one this listing handed out")]
    InvalidCursor,
}

impl PortError {
    pub fn unavailable(service: &'static str, detail: impl std::fmt::Display) -> Self {
        PortError::Unavailable {
            service,
            detail: detail.to_string(),
        }
    }
}

/// The outcome of storing an event under its (user, id) key.
#[derive(Debug, Clone, PartialEq)]
pub enum Insert {
    Inserted,
    /// An event with this id was already stored for this user; this is the stored copy.
    Duplicate(StoredEvent),
}

/// A stored event with the exact JSON text the client sent for it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    pub event: StoredEvent,
    pub raw: String,
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores the event (and its raw text) unless one with the same (user, id) exists. Atomic.
    async fn insert(&self, event: &ReceivedEvent) -> Result<Insert, PortError>;

    /// Stores many events with batched writes, answering per event in order. An event whose
    /// (user, id) is already stored is reported a duplicate and not written.
    async fn insert_many(&self, events: &[ReceivedEvent]) -> Result<Vec<Insert>, PortError>;

    async fn get(&self, user: UserId, id: &EventId) -> Result<Option<ReceivedEvent>, PortError>;

    /// Marks an event as failing its schema (or, with `false`, as valid again). Events marked
    /// invalid are left out of [`EventStore::received_between`] and
    /// [`EventStore::all_received_between`], so rules never count them.
    async fn set_invalid(&self, user: UserId, id: &EventId, invalid: bool)
    -> Result<(), PortError>;

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

#[async_trait]
pub trait ProfileStore: Send + Sync {
    async fn put_profile(&self, profile: &UserProfile) -> Result<(), PortError>;
    async fn profile(&self, user: UserId) -> Result<Option<UserProfile>, PortError>;
}

/// Per-(rule, user) state that must be claimed atomically.
#[async_trait]
pub trait RuleState: Send + Sync {
    /// True when `event` is the first to claim `rule`'s first-occurrence marker for `user`, or
    /// already holds it (a redelivery of the same event).
    async fn claim_first(
        &self,
        rule: &RuleId,
        user: UserId,
        event: &EventId,
    ) -> Result<bool, PortError>;

    /// True when the rule is not cooling down for `user` at `at` (or `event` itself started the
    /// cooldown); the cooldown then runs until `until`.
    async fn claim_cooldown(
        &self,
        rule: &RuleId,
        user: UserId,
        event: &EventId,
        at: Millis,
        until: Millis,
    ) -> Result<bool, PortError>;

    /// The event that holds the rule's first-occurrence marker for `user`, if any.
    async fn first_holder(&self, rule: &RuleId, user: UserId)
    -> Result<Option<EventId>, PortError>;

    /// When the rule's cooldown for `user` ends (it may be in the past).
    async fn cooldown_until(
        &self,
        rule: &RuleId,
        user: UserId,
    ) -> Result<Option<Millis>, PortError>;
}

/// Whether this worker may deliver an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Deliver it, then settle.
    Claimed,
    /// Delivered (or found undeliverable) before: do nothing.
    AlreadySettled,
    /// Another worker holds a lease on it until `lease_until`: retry after that.
    InFlight { lease_until: Millis },
}

#[async_trait]
pub trait AlertLedger: Send + Sync {
    async fn claim(
        &self,
        alert: &Alert,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Claim, PortError>;
    async fn settle(&self, id: &AlertId, delivery: &Delivery, now: Millis)
    -> Result<(), PortError>;
    /// Gives up a claim after a failed delivery so a retry can claim it at once.
    async fn release(&self, id: &AlertId, error: &str) -> Result<(), PortError>;
}

#[async_trait]
pub trait AbsenceScheduler: Send + Sync {
    async fn schedule(&self, check: &AbsenceCheck, delay_seconds: u32) -> Result<(), PortError>;
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Returns the provider's message id.
    async fn send_sms(&self, phone: &PhoneNumber, text: &str) -> Result<String, PortError>;
    async fn notify_operator(&self, alert: &OperatorAlert) -> Result<String, PortError>;
}

/// A rule as stored: its document (the JSON an operator wrote), version and last editor.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRecord {
    pub id: RuleId,
    pub version: u64,
    pub document: serde_json::Value,
    pub updated_by: String,
    pub updated_at: Millis,
}

/// One entry of a rule's history. `document` is `None` for a deletion.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleRevision {
    pub version: u64,
    pub action: RuleAction,
    pub document: Option<serde_json::Value>,
    pub updated_by: String,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    Seeded,
    Created,
    Updated,
    Enabled,
    Disabled,
    Deleted,
}

impl RuleAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleAction::Seeded => "seeded",
            RuleAction::Created => "created",
            RuleAction::Updated => "updated",
            RuleAction::Enabled => "enabled",
            RuleAction::Disabled => "disabled",
            RuleAction::Deleted => "deleted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleWriteError {
    /// The rule's version is not the one the writer saw (or it exists when creating).
    #[error("the rule was changed by someone else (now at version {current:?})")]
    Conflict { current: Option<u64> },
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Rules with versions and history, written with optimistic concurrency.
#[async_trait]
pub trait RuleStore: Send + Sync {
    /// The rules in force, or `None` when the store was never seeded.
    async fn current(&self) -> Result<Option<Vec<RuleRecord>>, PortError>;

    async fn get(&self, id: &RuleId) -> Result<Option<RuleRecord>, PortError>;

    /// Writes `rules` unless the store was seeded before; true when this call seeded it.
    async fn seed(
        &self,
        rules: &[(RuleId, serde_json::Value)],
        by: &str,
        at: Millis,
    ) -> Result<bool, PortError>;

    /// Replaces (or with `document: None`, deletes) the rule if its version is `expected`
    /// (`0`: the rule must not exist). Returns the new version.
    async fn write(
        &self,
        id: &RuleId,
        expected: u64,
        document: Option<&serde_json::Value>,
        action: RuleAction,
        by: &str,
        at: Millis,
    ) -> Result<u64, RuleWriteError>;

    /// Every revision, newest first.
    async fn history(&self, id: &RuleId) -> Result<Vec<RuleRevision>, PortError>;
}

/// One page of a newest-first listing; `next` is an opaque cursor that resumes after it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Activity,
    Feedback,
    Web,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [EventKind::Activity, EventKind::Feedback, EventKind::Web];

    pub fn parse(raw: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Activity => "activity",
            EventKind::Feedback => "feedback",
            EventKind::Web => "web",
        }
    }
}

/// Which stored events to list.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFilter {
    pub user: Option<UserId>,
    /// A web session; takes precedence over `user`.
    pub session: Option<SessionId>,
    pub kind: Option<EventKind>,
    pub from: Millis,
    pub to: Millis,
}

/// A fired alert as the ledger holds it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AlertEntry {
    pub alert_id: String,
    pub rule_id: String,
    pub user: UserId,
    #[serde(default)]
    pub event_ids: Vec<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    pub text: String,
    pub fired_at: Millis,
    /// `pending`, `sent` or `undeliverable`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Which alerts to list.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertFilter {
    pub user: Option<UserId>,
    pub rule: Option<RuleId>,
    pub from: Millis,
    pub to: Millis,
}

/// Newest-first listings for operators.
#[async_trait]
pub trait Browse: Send + Sync {
    async fn events(
        &self,
        filter: &EventFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<StoredEvent>, PortError>;
    async fn alerts(
        &self,
        filter: &AlertFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<AlertEntry>, PortError>;
    /// When each event (of any user) was received in `[from, to]`; at most `cap` of them.
    async fn event_times(&self, from: Millis, to: Millis, cap: usize) -> Result<Times, PortError>;
    /// When each alert (of any user or rule) fired in `[from, to]`; at most `cap` of them.
    async fn alert_times(&self, from: Millis, to: Millis, cap: usize) -> Result<Times, PortError>;
}

/// Timestamps for a chart, and whether the cap cut them short.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Times {
    pub times: Vec<Millis>,
    pub truncated: bool,
}

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
    /// [`crate::domain::EventType`]'s display form, e.g. `web page interaction/pageview`.
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
    pub event_type: Option<String>,
    pub violation: Option<String>,
    pub status: Option<ErrorStatus>,
    pub from: Millis,
    pub to: Millis,
}

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
