//! Alerts: what a rule fires, how its delivery ended, and the ledger's view of it. The ledger
//! key is derived from what fired the alert, so a retried or duplicated delivery of the same
//! stream record or queue message finds the alert already settled and sends nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::delivery::receipts::SmsReceipt;
use crate::model::domain::{EventId, Millis, UserId};
use crate::model::locality::Locale;
use crate::model::trace::TraceContext;
use crate::rules::{
    Action, GroupKey, OPERATOR_CAP_RULE, Rule, RuleId, SMS_BUDGET_RULE, Severity, Translations,
    text_for,
};

/// `{rule}#{user}#{discriminator}`: rule ids and event ids cannot contain `#`, so distinct
/// alerts never share a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlertId(String);

impl AlertId {
    /// The one alert a `first` rule may ever send a user.
    pub fn first(rule: &RuleId, user: UserId) -> Self {
        AlertId(format!("{rule}#{user}#first"))
    }

    /// The alert a window or absence rule sends for one triggering event.
    pub fn for_trigger(rule: &RuleId, user: UserId, trigger: &EventId) -> Self {
        AlertId(format!("{rule}#{user}#{trigger}"))
    }

    /// The key a verification code SMS counts under in the SMS quotas (it is not an alert, but
    /// the per-phone cap and the daily budget count every SMS Cube sends).
    pub fn verification_code(user: UserId, at: Millis) -> Self {
        AlertId(format!("verify#{user}#{}", at.0))
    }

    /// The one operator alert saying `rule` reached its cap of operator alerts in `hour` (hours
    /// since 1970).
    pub fn operator_cap(rule: &RuleId, hour: u64) -> Self {
        AlertId(format!("{OPERATOR_CAP_RULE}#0#{rule}#hour-{hour}"))
    }

    /// The message gathering `rule`'s operator alerts in `slot` (intervals since 1970), the
    /// `generation`th of that interval (a later one takes the alerts that came after an earlier
    /// one went out).
    pub fn group_notice(rule: &RuleId, slot: u64, generation: u32) -> Self {
        // `@` is in no event id, so no trigger's alert can take this key.
        AlertId(format!("{rule}#0#group@{slot}.{generation}"))
    }

    /// The alert saying heartbeat rule `rule` saw no matching event since `since`.
    pub fn heartbeat_silent(rule: &RuleId, since: Millis) -> Self {
        AlertId(format!("{rule}#0#silent@{}", since.0))
    }

    /// Reminder `n` (1, 2, ...) that heartbeat rule `rule` is still silent since `since`.
    pub fn heartbeat_reminder(rule: &RuleId, since: Millis, n: u32) -> Self {
        AlertId(format!("{rule}#0#silent@{}.{n}", since.0))
    }

    /// The alert saying heartbeat rule `rule`'s silence since `since` is over.
    pub fn heartbeat_back(rule: &RuleId, since: Millis) -> Self {
        AlertId(format!("{rule}#0#back@{}", since.0))
    }

    /// The alert saying `group` of a window across users reached the threshold of `rule` at
    /// `since` (the group's digest keeps the id short and free of `#` whatever the key).
    pub fn group_window_fired(rule: &RuleId, group: &GroupKey, since: Millis) -> Self {
        AlertId(format!("{rule}#0#{}#fired@{}", group.digest(), since.0))
    }

    /// The message saying `user`'s window of `rule`, which alerted ops at `since`, is over.
    pub fn user_window_resolved(rule: &RuleId, user: UserId, since: Millis) -> Self {
        AlertId(format!("{rule}#{user}#resolved@{}", since.0))
    }

    /// Reminder `n` (1, 2, ...) that `group` of a window across users still fires since `since`.
    pub fn group_window_reminder(rule: &RuleId, group: &GroupKey, since: Millis, n: u32) -> Self {
        AlertId(format!("{rule}#0#{}#fired@{}.{n}", group.digest(), since.0))
    }

    /// The message saying the firing of `group` that began `since` is over.
    pub fn group_window_resolved(rule: &RuleId, group: &GroupKey, since: Millis) -> Self {
        AlertId(format!("{rule}#0#{}#resolved@{}", group.digest(), since.0))
    }

    /// What an operator message says of the condition behind this alert: its status, and
    /// when a heartbeat's silence or a window across users' firing began (each `None` for other
    /// alerts).
    pub fn condition_fields(&self) -> (Option<ConditionStatus>, Option<Millis>, Option<Millis>) {
        match self.phase() {
            Some((Phase::Heartbeat, status, since)) => (Some(status), Some(since), None),
            Some((Phase::GroupWindow, status, since)) => (Some(status), None, Some(since)),
            None => (None, None, None),
        }
    }

    fn phase(&self) -> Option<(Phase, ConditionStatus, Millis)> {
        let discriminator = self.0.rsplit('#').next()?;
        let (phase, since) = discriminator.split_once('@')?;
        let (kind, status) = match phase {
            "silent" => (Phase::Heartbeat, ConditionStatus::Firing),
            "back" => (Phase::Heartbeat, ConditionStatus::Resolved),
            "fired" => (Phase::GroupWindow, ConditionStatus::Firing),
            "resolved" => (Phase::GroupWindow, ConditionStatus::Resolved),
            _ => return None,
        };
        // A reminder's id carries its number after the silence's start.
        let since = since.split('.').next()?;
        since.parse().ok().map(|ms| (kind, status, Millis(ms)))
    }

    /// The one operator alert saying the SMS budget of `day` (a UTC day) ran out.
    pub fn budget_exhausted(day: u64) -> Self {
        AlertId(format!("{SMS_BUDGET_RULE}#0#day-{day}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub id: AlertId,
    pub rule_id: RuleId,
    pub user: UserId,
    pub event_ids: Vec<EventId>,
    pub action: Action,
    /// In the rule's default language.
    pub text: String,
    /// In each other language the rule writes (an SMS goes in the user's).
    pub translations: Translations,
    pub fired_at: Millis,
    /// The trace of the request whose event fired it, or whose event's absence did: one
    /// alert's path from the request to the publish is one trace. None for what no single
    /// request caused (windows across users, heartbeats, group messages).
    pub trace: Option<TraceContext>,
}

impl Alert {
    /// The alert, traced under `trace` (the request that caused it).
    pub fn in_trace(self, trace: Option<&TraceContext>) -> Self {
        Alert {
            trace: trace.cloned(),
            ..self
        }
    }

    pub fn new(
        rule: &Rule,
        id: AlertId,
        user: UserId,
        event_ids: Vec<EventId>,
        (text, translations): (String, Translations),
        fired_at: Millis,
    ) -> Self {
        Alert {
            trace: None,
            id,
            rule_id: rule.id.clone(),
            user,
            event_ids,
            action: rule.action,
            text,
            translations,
            fired_at,
        }
    }

    /// The text for a reader of `locale` (`None`: the default language).
    pub fn text_in(&self, locale: Option<&Locale>) -> &str {
        text_for(&self.text, &self.translations, locale)
    }
}

/// How an alert ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent {
        message_id: String,
    },
    /// Recorded instead of silently dropped: no verified phone on file, or the provider refused
    /// the message for good (invalid number, opted out).
    Undeliverable {
        reason: String,
    },
    /// Not sent on purpose: over a per-user or per-phone cap, or the daily SMS budget.
    Suppressed {
        reason: String,
    },
    /// Not sent on purpose: an operator silenced the rule's alerts for now (the reason names
    /// the silence).
    Silenced {
        reason: String,
    },
    /// Handed to the provider without an answer (a timeout, or a worker that stopped while
    /// publishing): it may or may not have gone out. Never sent again automatically, because a
    /// message without an idempotency key cannot be retried without risking a second copy.
    Unconfirmed {
        reason: String,
    },
    /// Not sent on purpose: it could not go out while it was worth sending (its rule's
    /// `expires_after_seconds`), most often because the user's quiet hours outlasted it.
    Expired {
        reason: String,
    },
    /// An operator alert whose rule groups them: gathered into the group message `notice`,
    /// which goes out (or not) on its own.
    Grouped {
        notice: AlertId,
    },
}

impl Delivery {
    pub fn status(&self) -> AlertStatus {
        match self {
            Delivery::Sent { .. } => AlertStatus::Sent,
            Delivery::Undeliverable { .. } => AlertStatus::Undeliverable,
            Delivery::Suppressed { .. } => AlertStatus::Suppressed,
            Delivery::Silenced { .. } => AlertStatus::Silenced,
            Delivery::Unconfirmed { .. } => AlertStatus::Unconfirmed,
            Delivery::Expired { .. } => AlertStatus::Expired,
            Delivery::Grouped { .. } => AlertStatus::Grouped,
        }
    }

    /// What the ledger keeps beside the status: the provider's message id, the group message
    /// that carries it, or why it was not sent.
    pub fn detail(&self) -> (&'static str, &str) {
        match self {
            Delivery::Sent { message_id } => ("message_id", message_id),
            Delivery::Grouped { notice } => ("grouped_in", notice.as_str()),
            Delivery::Undeliverable { reason }
            | Delivery::Suppressed { reason }
            | Delivery::Silenced { reason }
            | Delivery::Unconfirmed { reason }
            | Delivery::Expired { reason } => ("reason", reason),
        }
    }
}

/// What is published on the operator topic: one alert, or a rule's alerts gathered.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OperatorMessage {
    Alert(OperatorAlert),
    Group(OperatorGroup),
}

impl OperatorMessage {
    pub fn rule_id(&self) -> &RuleId {
        match self {
            OperatorMessage::Alert(alert) => &alert.rule_id,
            OperatorMessage::Group(group) => &group.rule_id,
        }
    }

    pub fn severity(&self) -> Severity {
        match self {
            OperatorMessage::Alert(alert) => alert.severity,
            OperatorMessage::Group(group) => group.severity,
        }
    }
}

/// One message for many operator alerts of a rule: how many, over what span, and the first
/// few in full (the rest are in the ledger, under the message's id).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorGroup {
    /// The group message's own id in the ledger.
    pub alert_id: AlertId,
    pub rule_id: RuleId,
    pub severity: Severity,
    /// What the alerts were grouped by: `all` (the rule's alerts, whoever they are about).
    pub group_key: String,
    pub status: ConditionStatus,
    pub count: u64,
    pub first_fired_at: Millis,
    pub last_fired_at: Millis,
    /// The first alerts gathered, at most [`crate::delivery::grouping::GROUP_SAMPLE`].
    pub alerts: Vec<OperatorAlert>,
    pub text: String,
}

/// Whether a message tells of a condition firing or cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionStatus {
    Firing,
    Resolved,
}

/// Which rules' alerts carry a phase in their id.
enum Phase {
    Heartbeat,
    GroupWindow,
}

/// One operator alert as published (alone, or among a group's first alerts).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorAlert {
    pub alert_id: AlertId,
    pub rule_id: RuleId,
    pub severity: Severity,
    pub user: UserId,
    pub event_ids: Vec<EventId>,
    pub text: String,
    pub fired_at: Millis,
    /// A heartbeat rule's alert: `firing` (no matching event since `silent_since`) or
    /// `resolved` (matching events again at `fired_at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ConditionStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silent_since: Option<Millis>,
    /// A window across users' alert (its `status` says which): when the group began firing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firing_since: Option<Millis>,
}

/// Who holds a claim: random for each claim, so two workers claiming one alert in the same
/// millisecond (with the same lease end) are never both its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClaimToken(String);

impl ClaimToken {
    pub fn random() -> Self {
        ClaimToken(uuid::Uuid::new_v4().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A claim a worker asks for: held until `until` by `holder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub until: Millis,
    pub holder: ClaimToken,
}

impl Lease {
    /// A lease until `until` for a new holder.
    pub fn new(until: Millis) -> Self {
        Lease {
            until,
            holder: ClaimToken::random(),
        }
    }
}

/// Whether this worker may deliver an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Deliver it, then settle. Only the lease's holder can move the alert on to `sending`.
    Claimed { lease_until: Millis },
    /// Settled before: do nothing.
    AlreadySettled,
    /// Another worker holds a lease on it until `lease_until`: retry after that.
    InFlight { lease_until: Millis },
    /// A worker began publishing it and stopped (its `sending` lease lapsed): whether the
    /// message went out is unknown, so it must be settled `unconfirmed`, not sent again.
    Abandoned,
}

/// What claiming a group message for publishing found.
#[derive(Debug, Clone, PartialEq)]
pub enum NoticeClaim {
    /// Claimed and closed: its final tally. Deliver it, then settle.
    Claimed(Box<AlertEntry>),
    /// Not claimed: settled, in flight or abandoned, as for an alert.
    Refused(Claim),
}

/// Where an alert's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Claimed by a worker (or released by one that failed) and not yet handed to the provider.
    Pending,
    /// Being handed to the provider: from here on it is never published again.
    Sending,
    /// An SMS held through the user's quiet hours, until its `deliver_at`; then claimed and
    /// sent like a pending one.
    Deferred,
    Sent,
    /// Recorded instead of silently dropped: no verified phone, or refused by the provider.
    Undeliverable,
    /// Over a cap or the daily budget, so not sent.
    Suppressed,
    /// Matched an operator's silence, so not sent.
    Silenced,
    /// Handed to the provider without an answer: it may or may not have gone out.
    Unconfirmed,
    /// Could not go out while it was worth sending, so not sent.
    Expired,
    /// A sent SMS the carrier delivered (its receipt says so).
    Delivered,
    /// A sent SMS the carrier could not deliver (its receipt says why).
    Failed,
    /// An operator alert gathered into its rule's group message (`grouped_in`).
    Grouped,
}

impl AlertStatus {
    /// True once the alert's fate is final.
    pub fn is_settled(self) -> bool {
        !matches!(
            self,
            AlertStatus::Pending | AlertStatus::Sending | AlertStatus::Deferred
        )
    }
}

/// A fired alert as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEntry {
    pub alert_id: AlertId,
    pub rule_id: RuleId,
    pub user: UserId,
    #[serde(default)]
    pub event_ids: Vec<EventId>,
    #[serde(flatten)]
    pub action: Action,
    pub text: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub translations: Translations,
    pub fired_at: Millis,
    pub status: AlertStatus,
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
    /// While `deferred`: when it is due to go out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<Millis>,
    /// A sent SMS's carrier receipt, once it came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<SmsReceipt>,
    /// [`Alert::trace`]: where to look for how the alert came about.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::model::trace::lenient"
    )]
    pub trace: Option<TraceContext>,
    #[serde(flatten)]
    pub group: GroupRecord,
}

/// What grouping adds to a ledger entry: a group message's tally, or the group message a
/// grouped alert went out in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// A group message: how many alerts it gathered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<u64>,
    /// A group message: when the first and the last alerts it gathered fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_member_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_member_at: Option<Millis>,
    /// A group message: the first alerts it gathered (the message carries them in full).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sample: Vec<AlertId>,
    /// A grouped alert: the group message that carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grouped_in: Option<AlertId>,
}

impl AlertEntry {
    /// The alert this entry records, to be delivered again.
    pub fn alert(&self) -> Alert {
        Alert {
            trace: self.trace.clone(),
            id: self.alert_id.clone(),
            rule_id: self.rule_id.clone(),
            user: self.user,
            event_ids: self.event_ids.clone(),
            action: self.action,
            text: self.text.clone(),
            translations: self.translations.clone(),
            fired_at: self.fired_at,
        }
    }

    /// Whether this entry is a group message (not an alert a rule fired).
    pub fn is_group_notice(&self) -> bool {
        self.group.members.is_some()
    }
}

impl AlertEntry {
    /// The entry a worker writes when it claims `alert` for delivery.
    pub fn pending(alert: &Alert) -> Self {
        AlertEntry {
            alert_id: alert.id.clone(),
            rule_id: alert.rule_id.clone(),
            user: alert.user,
            event_ids: alert.event_ids.clone(),
            action: alert.action,
            text: alert.text.clone(),
            translations: alert.translations.clone(),
            fired_at: alert.fired_at,
            trace: alert.trace.clone(),
            status: AlertStatus::Pending,
            message_id: None,
            reason: None,
            settled_at: None,
            attempts: None,
            last_error: None,
            deliver_at: None,
            receipt: None,
            group: GroupRecord::default(),
        }
    }
}

/// Which alerts to list.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertFilter {
    pub user: Option<UserId>,
    pub rule: Option<RuleId>,
    pub from: Millis,
    pub to: Millis,
}
