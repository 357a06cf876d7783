//! The narrow interfaces the core needs from the outside world. AWS implementations live in
//! [`crate::aws`]; nothing in the core names an AWS type.

use async_trait::async_trait;

use crate::alerting::{Alert, AlertId, Delivery, OperatorAlert};
use crate::domain::{EventId, Millis, PhoneNumber, StoredEvent, UserId, UserProfile};
use crate::rules::RuleId;
use crate::scheduling::AbsenceCheck;

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

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores the event unless one with the same (user, id) exists. Atomic.
    async fn insert(&self, event: &StoredEvent) -> Result<Insert, PortError>;

    /// A user's events with `from <= received_at <= to`, oldest first.
    async fn received_between(
        &self,
        user: UserId,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<StoredEvent>, PortError>;
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
