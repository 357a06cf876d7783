//! What evaluating a rule needs from the outside: its per-user state and its window buckets.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use async_trait::async_trait;

use crate::model::ports::PortError;

use crate::evaluation::decision::{Beat, Cooldown};
use crate::evaluation::group_window::{FiringClaim, GroupContribution, GroupWindowKey, Steps};
use crate::evaluation::window::{Recorded, WindowKey, WindowMember, WindowRead};
use crate::model::domain::{EventId, Millis, UserId};
use crate::rules::{GroupKey, RuleId, WindowTotals};

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

    /// The rule's cooldown for `user`, if it ever had one: when it ends (it may be in the past)
    /// and which event started it.
    async fn cooldown(&self, rule: &RuleId, user: UserId) -> Result<Option<Cooldown>, PortError>;

    /// Keeps `at` as when heartbeat rule `rule` last saw a matching event, unless a later
    /// sighting is kept already.
    async fn heartbeat_seen(&self, rule: &RuleId, at: Millis) -> Result<(), PortError>;

    /// Heartbeat rule `rule`'s beat. A rule with none starts being watched `now` (kept as its
    /// last sighting, so a rule that never sees an event falls silent `seconds` after its first
    /// look).
    async fn heartbeat(&self, rule: &RuleId, now: Millis) -> Result<Beat, PortError>;

    /// Records that the rule told of the silence that began `since` (`Some`), or that it told
    /// of its end (`None`).
    async fn set_heartbeat_silence(
        &self,
        rule: &RuleId,
        since: Option<Millis>,
    ) -> Result<(), PortError>;
}

/// The members of window rules' windows, kept in time buckets ([`crate::evaluation::window`]) so that a
/// decision reads at most three items whatever the window's length or the user's rate.
#[async_trait]
pub trait WindowStore: Send + Sync {
    /// Records `member` in the bucket of `key` that holds its time. Repeating it changes
    /// nothing. A bucket already holding [`crate::evaluation::window::MAX_BUCKET_MEMBERS`] others is marked
    /// overflowed instead, and the answer says so.
    async fn record(&self, key: &WindowKey, member: &WindowMember) -> Result<Recorded, PortError>;

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

/// Windows across users ([`crate::evaluation::group_window`]): their counters per step, and
/// which groups are firing.
#[async_trait]
pub trait GroupWindows: Send + Sync {
    /// Adds each contribution's count and amount to its window's step, once per event and
    /// window whatever the repeats (a retried batch, a redelivered record, a replay), and its
    /// distinct value to the step's values unless the step keeps enough already: all of a
    /// call's new contributions are kept, or, on an error, none or some (a repeat keeps the rest).
    async fn add(&self, contributions: &[GroupContribution]) -> Result<(), PortError>;

    /// The count and sum of `key`'s window over `steps` (of grid `grid`), after every add
    /// that returned before the call (`distinct` is left 0: see [`GroupWindows::values`]).
    async fn totals(
        &self,
        key: &GroupWindowKey,
        grid: Steps,
        steps: RangeInclusive<u64>,
    ) -> Result<WindowTotals, PortError>;

    /// The different values `key`'s window holds over `steps`, as its steps keep them (at most
    /// their rule's `at_least` each), after every add that returned before the call.
    async fn values(
        &self,
        key: &GroupWindowKey,
        grid: Steps,
        steps: RangeInclusive<u64>,
    ) -> Result<BTreeSet<String>, PortError>;

    /// Claims `key`'s group as firing from `at`, unless it is firing already or fired after
    /// `quiet_after` (its cooldown).
    async fn claim_firing(
        &self,
        key: &GroupWindowKey,
        at: Millis,
        quiet_after: Millis,
    ) -> Result<FiringClaim, PortError>;

    /// The groups of the rule's window (its `definition`) firing now, and since when.
    async fn firing(
        &self,
        rule: &RuleId,
        definition: u64,
    ) -> Result<Vec<(GroupKey, Millis)>, PortError>;

    /// When the sweeper first looked at the rule's window (its `definition`): `now` on the
    /// first call, kept after. A drop in volume is decided only once a whole window has been
    /// watched, so a rule just saved does not fire on the empty window before it.
    async fn watch(&self, rule: &RuleId, definition: u64, now: Millis)
    -> Result<Millis, PortError>;

    /// Notes that each group was seen at its time (a later sighting kept): the groups a drop
    /// in volume per field value watches.
    async fn seen(
        &self,
        rule: &RuleId,
        definition: u64,
        groups: &[(GroupKey, Millis)],
    ) -> Result<(), PortError>;

    /// The groups of the rule's window seen so far (and not forgotten), with their last sighting.
    async fn known(
        &self,
        rule: &RuleId,
        definition: u64,
    ) -> Result<Vec<(GroupKey, Millis)>, PortError>;

    /// Stops watching `group`, last seen `at` (a later sighting keeps it), and ends its firing
    /// without a word.
    async fn forget(
        &self,
        rule: &RuleId,
        definition: u64,
        group: &GroupKey,
        at: Millis,
    ) -> Result<(), PortError>;

    /// Ends the firing of `key`'s group that began `since` (a later firing is left alone).
    async fn resolve(&self, key: &GroupWindowKey, since: Millis) -> Result<(), PortError>;
}
