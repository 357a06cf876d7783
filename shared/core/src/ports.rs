//! The narrow interfaces the core needs from the outside world: traits only. The data they
//! carry lives beside the domain ([`crate::domain`], [`crate::alert`], [`crate::absence`],
//! [`crate::document`], [`crate::error_log`], [`crate::listing`]). The AWS implementations live
//! in the `cuba-aws` crate and in-memory twins in `cuba-memory`; nothing here names a cloud.

use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;

use async_trait::async_trait;

use crate::absence::AbsenceCheck;
use crate::activity::MinuteCounts;
use crate::alert::{Alert, AlertEntry, AlertFilter, AlertId, Claim, Delivery, OperatorAlert};
use crate::document::{DocumentAction, DocumentId, DocumentRecord, DocumentRevision};
use crate::domain::{
    EventId, Insert, Millis, PhoneNumber, ReceivedEvent, StoredEvent, UserId, UserProfile,
};
use crate::error_log::{ErrorEntry, ErrorFilter};
use crate::listing::{EventFilter, Page};
use crate::rules::RuleId;
use crate::schemas::{SchemaRef, Violation};
use crate::window::{WindowKey, WindowMember, WindowRead};

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
    /// Writes the profile with `version` one above `expected` (0: no profile was read): false
    /// when someone else wrote it since.
    async fn save(&self, profile: &UserProfile, expected: u64) -> Result<bool, PortError>;
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

/// The members of window rules' windows, kept in time buckets ([`crate::window`]) so that a
/// decision reads at most three items whatever the window's length or the user's rate.
#[async_trait]
pub trait WindowStore: Send + Sync {
    /// Records `member` in the bucket of `key` that holds its time. Repeating it changes
    /// nothing. A bucket already holding [`crate::window::MAX_BUCKET_MEMBERS`] others is marked
    /// overflowed instead.
    async fn record(&self, key: &WindowKey, member: &WindowMember) -> Result<(), PortError>;

    /// The members of `key`'s `buckets` (at most three), read after every record made before
    /// the call; [`WindowRead::Overflowed`] if any of them overflowed.
    async fn buckets(
        &self,
        key: &WindowKey,
        buckets: RangeInclusive<u64>,
    ) -> Result<WindowRead, PortError>;

    /// The members of the buckets holding `key`'s window ending `at` (whole buckets: a
    /// superset of the window).
    async fn window(&self, key: &WindowKey, at: Millis) -> Result<WindowRead, PortError> {
        self.buckets(key, key.buckets_ending(at)).await
    }
}

/// The alert ledger: one entry per alert id, moving `pending` → `sending` → settled. Only a
/// claim's holder can move an entry to `sending`, and an entry in `sending` is never handed out
/// again: that is what keeps a message from being published twice.
#[async_trait]
pub trait AlertLedger: Send + Sync {
    /// Takes an alert that is new, or `pending` with a lapsed lease, until `lease_until` (which
    /// is the claim's token). A repeat of a claim that took effect (same `lease_until`) is
    /// recognised as the caller's own. A `sending` entry whose lease lapsed is
    /// [`Claim::Abandoned`].
    async fn claim(
        &self,
        alert: &Alert,
        now: Millis,
        lease_until: Millis,
    ) -> Result<Claim, PortError>;

    /// Moves the claim holding `claimed_until` to `sending` until `sending_until`: false when
    /// the claim was lost (its lease lapsed and another worker took it). Safe to repeat.
    async fn mark_sending(
        &self,
        id: &AlertId,
        claimed_until: Millis,
        sending_until: Millis,
    ) -> Result<bool, PortError>;

    /// Records how the alert ended. Safe to repeat.
    async fn settle(&self, id: &AlertId, delivery: &Delivery, now: Millis)
    -> Result<(), PortError>;

    /// Gives an unsettled alert back as `pending` after a delivery known not to have happened,
    /// so a retry can claim it at once.
    async fn release(&self, id: &AlertId, error: &str) -> Result<(), PortError>;

    /// Unsettled alerts (`pending` or `sending`) whose lease ended before `lapsed_before`, at
    /// most `limit` of them: what the sweeper re-drives or reports.
    async fn stuck(
        &self,
        lapsed_before: Millis,
        limit: usize,
    ) -> Result<Vec<AlertEntry>, PortError>;
}

#[async_trait]
pub trait AbsenceScheduler: Send + Sync {
    async fn schedule(&self, check: &AbsenceCheck, delay_seconds: u32) -> Result<(), PortError>;
}

/// Ripe absence checks, handed to the rules function through the user's own stream: a posted
/// check reaches the stream consumer after every event of that user stored before it. Posting
/// the same check again changes nothing.
#[async_trait]
pub trait DueChecks: Send + Sync {
    async fn post(&self, check: &AbsenceCheck) -> Result<(), PortError>;
}

/// Why a message was not (known to be) published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The provider answered that it will never take this message (an invalid or opted-out
    /// number, a sandbox account): settle it `undeliverable`.
    #[error("the provider refused the message: {reason}")]
    Refused { reason: String },
    /// The provider answered that it did not take the message (throttled, internal error), or
    /// no request left this process: safe to try again.
    #[error(transparent)]
    NotSent(PortError),
    /// No answer came: the message may or may not have gone out.
    #[error("no answer from the provider; the message may have gone out")]
    Unanswered(#[source] PortError),
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Returns the provider's message id.
    async fn send_sms(&self, phone: &PhoneNumber, text: &str) -> Result<String, PublishError>;
    async fn notify_operator(&self, alert: &OperatorAlert) -> Result<String, PublishError>;
}

/// Whose rolling 24-hour SMS count an alert goes into.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SmsQuota {
    User(UserId),
    /// Counted by number, whoever owns it: many accounts naming one victim's phone share it.
    Phone(PhoneNumber),
}

/// Counters that cap how many SMS go out.
#[async_trait]
pub trait SmsQuotas: Send + Sync {
    /// Counts `alert` in `quota`'s last 24 hours unless `cap` other alerts count there already:
    /// true when it counts (now, or from an earlier try of the same alert).
    async fn take(
        &self,
        quota: &SmsQuota,
        cap: u32,
        alert: &AlertId,
        now: Millis,
    ) -> Result<bool, PortError>;

    /// Counts one SMS in the budget of UTC day `day` (days since 1970) unless `budget` are
    /// counted already: true when it counts. Not keyed by alert, so a retried delivery may
    /// count twice: the budget errs on the side of sending less.
    async fn take_budget(&self, day: u64, budget: u32) -> Result<bool, PortError>;
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
}

/// Events and alerts counted per minute for the dashboard, so that a chart reads a few small
/// items rather than every event.
#[async_trait]
pub trait ActivityTally: Send + Sync {
    /// Adds `counts` to the tally. Not keyed by event: a redelivered stream batch counts again,
    /// so the tally may run a little high (it is a chart, not a ledger).
    async fn add(&self, counts: &MinuteCounts) -> Result<(), PortError>;

    /// The counts of every minute in `[from, to)`.
    async fn counts(&self, from: Millis, to: Millis) -> Result<MinuteCounts, PortError>;
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
