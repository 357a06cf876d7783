//! Grouped operator notifications, in the manner of Alertmanager's `group_wait` and
//! `group_interval`: a rule that groups its operator alerts gathers them into one message per
//! interval instead of publishing each. Every alert keeps its ledger entry (settled `grouped`,
//! naming the message that carries it); the message is a ledger entry of its own, held
//! `deferred` until it is due, when the sweeper closes it (no alert joins it after that) and
//! publishes it.
//!
//! Messages are keyed by the rule, the interval the alerts were dispatched in (its `slot`) and a
//! generation: the first message of a slot takes the alerts until it goes out, a later one
//! those that came after. When the rule was quiet in the previous slot, the slot's first
//! message goes out `wait_seconds` after its first alert (one alert reaches ops within about a
//! minute); otherwise at the slot's end, so a rule that keeps firing makes one message per
//! interval.

use crate::delivery::alert::{
    AlertEntry, AlertId, ConditionStatus, GroupRecord, OperatorAlert, OperatorGroup,
};
use crate::model::domain::{Millis, UserId};
use crate::rules::{Action, Grouping, RuleId, Severity, Translations};

/// The alerts a group message carries in full (the rest are counted, and listed in the
/// ledger under the message's id).
pub const GROUP_SAMPLE: usize = 5;

/// Messages one rule may gather in one interval before an alert gives up (and is retried):
/// each later one takes the alerts that came after an earlier one went out, so a few suffice.
pub const MAX_NOTICES_PER_SLOT: u32 = 8;

impl Grouping {
    fn interval_ms(&self) -> u64 {
        u64::from(self.interval_seconds) * 1000
    }

    /// The interval an alert dispatched `at` is gathered in.
    pub fn slot(&self, at: Millis) -> u64 {
        at.0 / self.interval_ms()
    }

    /// When the `generation`th message of `slot`, opened `now`, goes out: `wait_seconds` after
    /// its first alert when it is the slot's first and the rule was quiet the slot before,
    /// otherwise at the slot's end.
    pub fn due(&self, slot: u64, generation: u32, now: Millis, quiet_before: bool) -> Millis {
        let slot_end = Millis((slot + 1) * self.interval_ms());
        if generation == 0 && quiet_before {
            now.plus_seconds(u64::from(self.wait_seconds))
        } else {
            slot_end.max(now)
        }
    }
}

impl Grouping {
    /// How many group messages alerts dispatched at `times` make, as the live gathering makes
    /// them (a message taken to go out the moment it is due): what a backtest reports.
    pub fn messages_for(&self, times: impl IntoIterator<Item = Millis>) -> usize {
        let mut times: Vec<Millis> = times.into_iter().collect();
        times.sort();
        // Per slot: messages opened so far, and when the last one opened goes out.
        let mut slots: std::collections::BTreeMap<u64, (u32, Millis)> = Default::default();
        let mut messages = 0;
        for at in times {
            let slot = self.slot(at);
            if let Some((_, due)) = slots.get(&slot)
                && at < *due
            {
                continue;
            }
            let quiet_before = slot.checked_sub(1).is_none_or(|s| !slots.contains_key(&s));
            let opened = slots.get(&slot).map_or(0, |(n, _)| *n);
            let due = self.due(slot, opened, at, quiet_before);
            slots.insert(slot, (opened + 1, due));
            messages += 1;
        }
        messages
    }
}

/// A group message being gathered.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupNotice {
    pub id: AlertId,
    pub rule_id: RuleId,
    pub severity: Severity,
    pub grouping: Grouping,
    /// When its first alert opened it.
    pub opened_at: Millis,
    /// When the sweeper sends it.
    pub due: Millis,
}

impl GroupNotice {
    /// The ledger entry a new message starts as: `deferred` until due, with nothing gathered.
    pub fn entry(&self) -> AlertEntry {
        AlertEntry {
            alert_id: self.id.clone(),
            rule_id: self.rule_id.clone(),
            user: UserId(0),
            event_ids: Vec::new(),
            action: Action::NotifyOperator {
                severity: self.severity,
                grouping: Some(self.grouping),
            },
            text: format!("Rule {}'s operator alerts, grouped", self.rule_id),
            translations: Translations::new(),
            fired_at: self.opened_at,
            status: crate::delivery::alert::AlertStatus::Deferred,
            message_id: None,
            reason: None,
            settled_at: None,
            attempts: None,
            last_error: None,
            deliver_at: Some(self.due),
            receipt: None,
            trace: None,
            group: GroupRecord {
                members: Some(0),
                ..GroupRecord::default()
            },
        }
    }
}

/// The message a closed group notice publishes: its tally, and its first alerts in full
/// (`sample`: the ledger entries of the ids it kept, as many as could be read).
pub fn group_message(notice: &AlertEntry, sample: &[AlertEntry]) -> OperatorGroup {
    let severity = match notice.action {
        Action::NotifyOperator { severity, .. } => severity,
        Action::SmsUser { .. } => Severity::Info,
    };
    let count = notice.group.members.unwrap_or(0);
    let first = notice.group.first_member_at.unwrap_or(notice.fired_at);
    let last = notice.group.last_member_at.unwrap_or(first);
    let alerts: Vec<OperatorAlert> = sample
        .iter()
        .take(GROUP_SAMPLE)
        .map(|entry| (entry, entry.alert_id.condition_fields()))
        .map(
            |(entry, (status, silent_since, firing_since))| OperatorAlert {
                alert_id: entry.alert_id.clone(),
                rule_id: entry.rule_id.clone(),
                severity,
                user: entry.user,
                event_ids: entry.event_ids.clone(),
                text: entry.text.clone(),
                fired_at: entry.fired_at,
                status,
                silent_since,
                firing_since,
            },
        )
        .collect();
    let text = match (count, alerts.first()) {
        (1, Some(alert)) => alert.text.clone(),
        _ => format!(
            "Rule {} fired {count} alerts from {} to {}{}",
            notice.rule_id,
            first.utc_text(),
            last.utc_text(),
            match alerts.first() {
                Some(alert) => format!("; the first: {}", alert.text),
                None => String::new(),
            }
        ),
    };
    OperatorGroup {
        alert_id: notice.alert_id.clone(),
        rule_id: notice.rule_id.clone(),
        severity,
        group_key: "all".into(),
        status: ConditionStatus::Firing,
        count,
        first_fired_at: first,
        last_fired_at: last,
        alerts,
        text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUPING: Grouping = Grouping {
        wait_seconds: 30,
        interval_seconds: 300,
    };

    #[test]
    fn a_quiet_rules_first_alert_goes_out_after_the_wait_a_busy_rules_at_the_intervals_end() {
        let now = Millis(1_750_000_123_000);
        let slot = GROUPING.slot(now);
        let slot_end = Millis((slot + 1) * 300_000);
        assert_eq!(GROUPING.due(slot, 0, now, true), now.plus_seconds(30));
        assert_eq!(GROUPING.due(slot, 0, now, false), slot_end);
        // A later message of the slot takes what came after the first went out.
        assert_eq!(GROUPING.due(slot, 1, now, true), slot_end);
        // Every alert of one interval falls in one slot.
        assert_eq!(GROUPING.slot(Millis(slot * 300_000)), slot);
        assert_eq!(GROUPING.slot(Millis(slot_end.0 - 1)), slot);
        assert_eq!(GROUPING.slot(slot_end), slot + 1);
    }

    #[test]
    fn a_backtest_counts_the_messages_live_gathering_makes() {
        let slot_start = GROUPING.slot(Millis(1_750_000_200_000)) * 300_000;
        let at = |s: u64| Millis(slot_start + s * 1000);
        assert_eq!(GROUPING.messages_for([]), 0);
        // A burst inside the wait: one message.
        assert_eq!(GROUPING.messages_for((0..1000).map(|i| at(10 + i % 20))), 1);
        // Then more later in the slot: a second, at its end; the next slot, busy: a third.
        let alerts = [at(10), at(20), at(100), at(200), at(310), at(590)];
        assert_eq!(GROUPING.messages_for(alerts), 3);
        // A slot left quiet: the wait applies again, and then the interval's end.
        assert_eq!(
            GROUPING.messages_for([at(10), at(700), at(720), at(750)]),
            3
        );
    }

    #[test]
    fn a_group_message_counts_its_alerts_and_carries_the_first_in_full() {
        let rule = RuleId::parse("no-feedback").unwrap();
        let notice = GroupNotice {
            id: AlertId::group_notice(&rule, 7, 0),
            rule_id: rule.clone(),
            severity: Severity::Warning,
            grouping: GROUPING,
            opened_at: Millis(1_000),
            due: Millis(31_000),
        };
        let mut entry = notice.entry();
        assert!(entry.is_group_notice());
        entry.group.members = Some(1000);
        entry.group.first_member_at = Some(Millis(1_000));
        entry.group.last_member_at = Some(Millis(29_000));
        let member = |n: u64| {
            let alert = crate::delivery::alert::Alert {
                trace: None,
                id: AlertId::first(&rule, UserId(n)),
                rule_id: rule.clone(),
                user: UserId(n),
                event_ids: Vec::new(),
                action: entry.action,
                text: format!("no feedback from user {n}"),
                translations: Translations::new(),
                fired_at: Millis(1_000 * n),
            };
            AlertEntry::pending(&alert)
        };
        let sample: Vec<AlertEntry> = (1..=9).map(member).collect();
        let message = group_message(&entry, &sample);
        assert_eq!(message.count, 1000);
        assert_eq!(message.alerts.len(), GROUP_SAMPLE);
        assert_eq!(message.alerts[0].user, UserId(1));
        assert_eq!(
            message.text,
            "Rule no-feedback fired 1000 alerts from 1970-01-01T00:00:01Z to \
             1970-01-01T00:00:29Z; the first: no feedback from user 1"
        );
        let body =
            serde_json::to_value(crate::delivery::alert::OperatorMessage::Group(message)).unwrap();
        assert_eq!(body["kind"], "group");
        assert_eq!(body["status"], "firing");
        assert_eq!(body["group_key"], "all");
        // One alert alone reads as itself.
        entry.group.members = Some(1);
        assert_eq!(
            group_message(&entry, &sample[..1]).text,
            "no feedback from user 1"
        );
    }
}
