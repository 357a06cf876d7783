//! What delivering an alert needs from the outside: the ledger, the provider, SMS quotas and
//! the users' profiles.

use async_trait::async_trait;

use crate::model::ports::PortError;

use crate::delivery::alert::{
    Alert, AlertEntry, AlertId, Claim, ClaimToken, Delivery, Lease, NoticeClaim, OperatorMessage,
};
use crate::delivery::grouping::GroupNotice;
use crate::delivery::receipts::SmsReceipt;
use crate::model::domain::{Millis, PhoneNumber, UserId, UserProfile};
use crate::rules::RuleId;

#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// Writes the profile with `version` one above `expected` (0: no profile was read): false
    /// when someone else wrote it since.
    async fn save(&self, profile: &UserProfile, expected: u64) -> Result<bool, PortError>;
    async fn profile(&self, user: UserId) -> Result<Option<UserProfile>, PortError>;
    /// Spends one attempt at the user's pending code, if it is still the one hashed `code_hash`
    /// and has an attempt left, in one atomic step: answers the attempts left after it, or
    /// `None` when there was none to spend. However many guesses arrive at once, a code is
    /// compared at most as often as it had attempts. It leaves the profile's version alone, so
    /// a wrong guess never makes a concurrent right one conflict.
    async fn spend_attempt(&self, user: UserId, code_hash: &str) -> Result<Option<u8>, PortError>;
}

/// The alert ledger: one entry per alert id, moving `pending` → `sending` → settled. Only a
/// claim's holder can move an entry to `sending`, and an entry in `sending` is never handed out
/// again: that is what keeps a message from being published twice.
#[async_trait]
pub trait AlertLedger: Send + Sync {
    /// Takes an alert that is new, or `pending` with a lapsed lease, or `deferred` and due, for
    /// `lease`. A repeat of a
    /// claim that took effect (same holder) is recognised as the caller's own; another holder's
    /// claim, even in the same millisecond for the same lease end, is not. A `sending` entry
    /// whose lease lapsed is [`Claim::Abandoned`].
    async fn claim(&self, alert: &Alert, now: Millis, lease: &Lease) -> Result<Claim, PortError>;

    /// Moves the claim `holder` holds to `sending` until `sending_until`: false when the claim
    /// was lost (its lease lapsed and another worker took it). Safe to repeat.
    async fn mark_sending(
        &self,
        id: &AlertId,
        holder: &ClaimToken,
        sending_until: Millis,
    ) -> Result<bool, PortError>;

    /// Holds the claim `holder` holds as `deferred` until `deliver_at`, when it can be claimed
    /// again (the sweeper finds it among the unsettled alerts): false when the claim was lost.
    /// Safe to repeat.
    async fn defer(
        &self,
        id: &AlertId,
        holder: &ClaimToken,
        deliver_at: Millis,
        reason: &str,
    ) -> Result<bool, PortError>;

    /// Records how the alert ended. Safe to repeat.
    async fn settle(&self, id: &AlertId, delivery: &Delivery, now: Millis)
    -> Result<(), PortError>;

    /// Gives an unsettled alert back as `pending` after a delivery known not to have happened,
    /// so a retry can claim it at once.
    async fn release(&self, id: &AlertId, error: &str) -> Result<(), PortError>;

    /// Links a sent SMS's provider message id to its alert, and marks the alert as awaiting its
    /// carrier receipt until `receipt_due`. Answers a receipt that arrived before the link (the
    /// caller applies it). Safe to repeat.
    async fn await_receipt(
        &self,
        id: &AlertId,
        message_id: &str,
        receipt_due: Millis,
    ) -> Result<Option<SmsReceipt>, PortError>;

    /// Keeps `receipt` under its message id, and answers the alert linked to it, if the link
    /// was written already. Safe to repeat.
    async fn receive_receipt(
        &self,
        receipt: &SmsReceipt,
        now: Millis,
    ) -> Result<Option<AlertId>, PortError>;

    /// Settles a sent alert `delivered` or `failed` with its receipt (a later receipt for the
    /// same message replaces it). Safe to repeat.
    async fn apply_receipt(
        &self,
        id: &AlertId,
        receipt: &SmsReceipt,
        now: Millis,
    ) -> Result<(), PortError>;

    /// Sent SMS still without a receipt at `before`, at most `limit`: each is answered once
    /// (it stops awaiting), so a sweep counts it once.
    async fn overdue_receipts(
        &self,
        before: Millis,
        limit: usize,
    ) -> Result<Vec<AlertEntry>, PortError>;

    /// One entry as it stands now (a strongly consistent read).
    async fn entry(&self, id: &AlertId) -> Result<Option<AlertEntry>, PortError>;

    /// Gathers the claimed operator alert `member` into the open group message `notice`,
    /// creating it (`deferred` until `notice.due`) if it does not exist, and keeping the
    /// member's id among the message's first alerts while fewer than `sample` are kept: false
    /// when the message is closed (claimed for publishing, or settled). Not keyed by member: a
    /// member gathered again after its settle failed is counted twice (the count errs on the
    /// side of more).
    async fn gather(
        &self,
        notice: &GroupNotice,
        member: &Alert,
        sample: usize,
    ) -> Result<bool, PortError>;

    /// Claims a group message that is due (or whose publisher's claim lapsed) for `lease`, in
    /// the same step closing it: no alert joins it after this.
    async fn claim_notice(
        &self,
        id: &AlertId,
        now: Millis,
        lease: &Lease,
    ) -> Result<NoticeClaim, PortError>;

    /// Unsettled alerts (`pending`, `sending` or `deferred`) whose lease (for a deferred one:
    /// its `deliver_at`) ended before `lapsed_before`, at most `limit` of them, the longest
    /// lapsed first: what the sweeper re-drives, reports or releases.
    async fn stuck(
        &self,
        lapsed_before: Millis,
        limit: usize,
    ) -> Result<Vec<AlertEntry>, PortError>;
}

/// Operator alerts counted per rule and hour, so no rule can flood the operator topic.
#[async_trait]
pub trait OperatorQuotas: Send + Sync {
    /// Counts one operator alert of `rule` in `hour` (hours since 1970) unless `cap` are
    /// counted there already: true when it counts. Not keyed by alert: a retried delivery may
    /// count twice (the cap errs on the side of publishing less).
    async fn take(&self, rule: &RuleId, hour: u64, cap: u32) -> Result<bool, PortError>;
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
    async fn notify_operator(&self, message: &OperatorMessage) -> Result<String, PublishError>;
}

/// Whose SMS count an alert goes into.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SmsQuota {
    /// A user's SMS on one day of their own calendar (the date on their zone's clock): a cap
    /// per user is a cap per day as the user lives it.
    UserDay(UserId, jiff::civil::Date),
    /// Alerts counted by number, whoever owns it: many accounts naming one victim's phone share
    /// it.
    Phone(PhoneNumber),
    /// Verification codes texted to a number, whichever accounts asked: apart from the alert
    /// quotas, so that asking for codes to someone's number cannot spend what their alerts need.
    CodesTo(PhoneNumber),
}

/// Which daily SMS budget a message is counted in: alerts and verification codes each have
/// their own, so that code requests (which any account can make) never spend the alerts'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmsBudget {
    Alerts,
    Codes,
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

    /// Counts one SMS in `budget` of UTC day `day` (days since 1970) unless `cap` are counted
    /// there already: true when it counts. Not keyed by alert, so a retried delivery may count
    /// twice: the budget errs on the side of sending less.
    async fn take_budget(&self, budget: SmsBudget, day: u64, cap: u32) -> Result<bool, PortError>;

    /// Takes `alert` out of `quota` again (an SMS counted there that will not be sent); a no-op
    /// when it is not counted there.
    async fn give_back(&self, quota: &SmsQuota, alert: &AlertId) -> Result<(), PortError>;

    /// Gives one unit of `budget` of UTC day `day` back (an SMS counted there that will not be
    /// sent); never takes a count below zero.
    async fn give_back_budget(&self, budget: SmsBudget, day: u64) -> Result<(), PortError>;
}
