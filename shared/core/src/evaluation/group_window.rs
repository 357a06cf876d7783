//! Windows across users: `group_by` a field (a merchant's payments from every user) or `all`
//! (the whole fleet). A user's window keeps its members ([`crate::evaluation::window`]); a group
//! may take every event of the fleet, so its window is kept as counters instead:
//!
//! - **Steps.** A window is 60 steps of 1/60 of its length (whole seconds): the window ending at
//!   an instant is the step holding it and the 59 before, so its far edge is exact to one step
//!   (5 s for a 5-minute window). Counts per step are exact.
//! - **Once per event.** The stream consumer gathers a batch's [`GroupContribution`]s and hands
//!   them to [`crate::evaluation::group_desk::GroupWindowDesk::flush`] at the batch's end: the store adds each event's count and
//!   amount to its step once, whatever the retries, redeliveries and replays
//!   ([`crate::evaluation::ports::GroupWindows::add`]), and spreads a group's counters over shards so that no item takes
//!   every batch of the fleet.
//! - **Different values.** A rule with `distinct` keeps each step's values as a set (adding a
//!   value twice changes nothing), at most its `at_least` per step: a step holding that many
//!   meets the threshold in every window it is in. A window's count is the union's size.
//! - **Fire once, resolve.** After adding, each group the batch touched is decided at its latest
//!   event: met, and neither firing nor cooling down, it claims the group's firing
//!   ([`crate::evaluation::ports::GroupWindows::claim_firing`]) and sends one operator alert. The sweeper looks at every
//!   firing group each minute ([`crate::evaluation::group_desk::GroupWindowDesk::look`]): still met, its alert is sent if a
//!   crash lost it; no longer met, a resolve message goes and the group is quiet again (it may
//!   fire again once its cooldown from the last firing has passed).

use std::ops::RangeInclusive;

use crate::delivery::alert::{Alert, AlertId};
use crate::model::domain::{EventId, Millis, UserId};
use crate::rules::{
    Condition, GroupKey, Rule, RuleId, Translations, WindowCondition, WindowTotals,
};

/// How many steps a window across users is cut into.
pub const STEPS_PER_WINDOW: u64 = 60;

/// A window across users sums an event's amount as at most this (in either sign), to 6
/// decimal places: the counters stay exact decimals however many events add up.
pub const MAX_AMOUNT: f64 = 1e20;

/// The step grid of a window across users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Steps {
    pub step_ms: u64,
    /// Steps in one window (60, or fewer for a window shorter than a minute).
    pub per_window: u64,
}

impl Steps {
    pub fn of(window: &WindowCondition) -> Steps {
        let seconds = u64::from(window.seconds.get());
        let step_seconds = seconds.div_ceil(STEPS_PER_WINDOW);
        Steps {
            step_ms: step_seconds * 1000,
            per_window: seconds.div_ceil(step_seconds),
        }
    }

    pub fn step_of(&self, at: Millis) -> u64 {
        at.0 / self.step_ms
    }

    /// The steps of the window ending at `at`: the one holding `at` and those before it.
    pub fn ending(&self, at: Millis) -> RangeInclusive<u64> {
        let last = self.step_of(at);
        last.saturating_sub(self.per_window - 1)..=last
    }

    /// When a step's counts may be forgotten: no window that reads it ends later.
    pub fn forgotten_at(&self, step: u64) -> Millis {
        Millis((step + 2 * self.per_window) * self.step_ms)
    }
}

/// Whose window: one rule's definition for one group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupWindowKey {
    pub rule: RuleId,
    pub definition: u64,
    pub group: GroupKey,
}

/// One event as a window across users counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupContribution {
    pub key: GroupWindowKey,
    pub steps: Steps,
    pub event: EventId,
    pub received_at: Millis,
    /// What it adds to the rule's sum (0 without a sum, or when the field is not a number),
    /// within [`MAX_AMOUNT`] and to 6 decimal places.
    pub amount: f64,
    /// Its value of the rule's `distinct` field, when the rule has one and the event a value.
    pub distinct: Option<DistinctValue>,
}

/// A value a window across users counts apart from the others (a user paying a merchant).
#[derive(Debug, Clone, PartialEq)]
pub struct DistinctValue {
    /// As [`crate::rules::distinct_value`] tells values apart.
    pub value: String,
    /// How many values a step keeps: the rule's `at_least`. A step that holds that many meets
    /// the threshold in every window it is in, so more are not needed.
    pub keep: u32,
}

impl GroupContribution {
    /// The event's contribution to `rule`'s window, if the rule is a window across users and
    /// the event (its view, matching the rule's `when`) names a group.
    pub fn of(
        rule: &Rule,
        event: &EventId,
        received_at: Millis,
        view: &serde_json::Value,
    ) -> Option<GroupContribution> {
        let Condition::Window(window) = &rule.condition else {
            return None;
        };
        let group = window.group_by.group_of(view)?;
        let member = window.member_of(event, received_at, view);
        // Kept as a decimal with at most 20 + 6 digits, so that any number of them add up
        // within a stored number's 38 (see [`MAX_AMOUNT`]).
        let amount = (member.amount.clamp(-MAX_AMOUNT, MAX_AMOUNT) * 1e6).round() / 1e6;
        Some(GroupContribution {
            key: GroupWindowKey {
                rule: rule.id.clone(),
                definition: window.definition,
                group,
            },
            steps: Steps::of(window),
            event: event.clone(),
            received_at,
            amount,
            distinct: window
                .threshold
                .distinct()
                .zip(member.value)
                .map(|(d, value)| DistinctValue {
                    value,
                    keep: d.at_least,
                }),
        })
    }
}

/// What a claim on a group's firing found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FiringClaim {
    /// The group fires now, from `since` (this claim's time): its alert is to be sent.
    Fired { since: Millis },
    /// The group was firing already, since then.
    Firing { since: Millis },
    /// Not firing, but it fired less than its cooldown before.
    CoolingDown,
}

/// The alert a group's firing from `since` sends: the rule's message, its placeholders filled
/// from the group and the window's totals.
pub fn fired_alert(rule: &Rule, group: &GroupKey, since: Millis, totals: &WindowTotals) -> Alert {
    let (text, translations) = rule.render_group(group, totals);
    Alert {
        trace: None,
        id: AlertId::group_window_fired(&rule.id, group, since),
        rule_id: rule.id.clone(),
        user: UserId(0),
        event_ids: Vec::new(),
        action: rule.action,
        text,
        translations,
        fired_at: since,
    }
}

/// Reminder `n` that the group firing since `since` is still met: the rule's text again, said
/// to be a reminder (in every language it writes).
pub fn reminder_alert(
    rule: &Rule,
    group: &GroupKey,
    since: Millis,
    n: u32,
    now: Millis,
    totals: &WindowTotals,
) -> Alert {
    let (text, translations) = rule.render_group(group, totals);
    let again = |text: String| format!("Still firing (reminder {n}): {text}");
    Alert {
        trace: None,
        id: AlertId::group_window_reminder(&rule.id, group, since, n),
        rule_id: rule.id.clone(),
        user: UserId(0),
        event_ids: Vec::new(),
        action: rule.action,
        text: again(text),
        translations: translations
            .into_iter()
            .map(|(locale, text)| (locale, again(text)))
            .collect(),
        fired_at: now,
    }
}

/// The message saying the group that fired `since` is below its threshold at `now`.
pub fn resolved_alert(
    rule: &Rule,
    group: &GroupKey,
    since: Millis,
    now: Millis,
    totals: &WindowTotals,
) -> Alert {
    let text = format!(
        "Resolved: rule {} for {} is below its threshold (fired {}, resolved {}; the window now \
         holds {} events)",
        rule.id,
        group_text(group),
        since.utc_text(),
        now.utc_text(),
        totals.count
    );
    Alert {
        trace: None,
        id: AlertId::group_window_resolved(&rule.id, group, since),
        rule_id: rule.id.clone(),
        user: UserId(0),
        event_ids: Vec::new(),
        action: rule.action,
        text,
        translations: Translations::new(),
        fired_at: now,
    }
}

/// The message saying `user`'s window of `rule`, which alerted ops at `since`, is below its
/// threshold at `now`.
pub fn user_resolved_alert(
    rule: &Rule,
    user: UserId,
    since: Millis,
    now: Millis,
    totals: &WindowTotals,
) -> Alert {
    let text = format!(
        "Resolved: rule {} for user {} is below its threshold (fired {}, resolved {}; the window \
         now holds {} events)",
        rule.id,
        user.0,
        since.utc_text(),
        now.utc_text(),
        totals.count
    );
    Alert {
        trace: None,
        id: AlertId::user_window_resolved(&rule.id, user, since),
        rule_id: rule.id.clone(),
        user,
        event_ids: Vec::new(),
        action: rule.action,
        text,
        translations: Translations::new(),
        fired_at: now,
    }
}

/// A group as messages name it.
fn group_text(group: &GroupKey) -> String {
    match group.as_str() {
        "all" => "all users".to_owned(),
        key => format!("group {key}"),
    }
}

/// Totals over `steps` of a window's counters, as a store keeps them: `(step, count, sum)`.
pub fn totals_over(
    counters: impl IntoIterator<Item = (u64, u64, f64)>,
    steps: &RangeInclusive<u64>,
) -> WindowTotals {
    let mut totals = WindowTotals {
        count: 0,
        sum: 0.0,
        distinct: 0,
    };
    let mut count: u64 = 0;
    for (step, n, sum) in counters {
        if steps.contains(&step) {
            count += n;
            totals.sum += sum;
        }
    }
    totals.count = u32::try_from(count).unwrap_or(u32::MAX);
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{GroupBy, RuleSet};

    fn window(seconds: u32) -> WindowCondition {
        let document = serde_json::json!({"rules": [{
            "id": "fleet", "when": {"kind": "feedback"},
            "condition": {"type": "window", "seconds": seconds, "count_at_least": 3, "group_by": "all"},
            "action": {"type": "notify_operator", "severity": "info"}, "message": "m"
        }]});
        let rules = RuleSet::from_json(&document).unwrap();
        let Condition::Window(window) = &rules.all()[0].condition else {
            panic!("a window rule");
        };
        window.clone()
    }

    #[test]
    fn a_window_is_sixty_steps_of_whole_seconds_its_far_edge_exact_to_one_step() {
        for (seconds, step_ms, per_window) in [
            (300, 5_000, 60),
            (60, 1_000, 60),
            (1, 1_000, 1),
            (90, 2_000, 45),
            (86_400, 1_440_000, 60),
        ] {
            let steps = Steps::of(&window(seconds));
            assert_eq!((steps.step_ms, steps.per_window), (step_ms, per_window));
            // The window ending anywhere holds between its length less one step and its length.
            for at in [0, 1, step_ms - 1, step_ms, 1_750_000_123_456] {
                let range = steps.ending(Millis(at));
                let first_ms = range.start() * step_ms;
                let span = at + 1 - first_ms;
                assert!(
                    span <= u64::from(seconds) * 1000,
                    "{seconds} s at {at}: {span}"
                );
                if at >= u64::from(seconds) * 1000 {
                    assert!(
                        span + step_ms > u64::from(seconds) * 1000,
                        "{seconds} s at {at}: {span}"
                    );
                }
            }
        }
    }

    #[test]
    fn totals_count_only_the_windows_steps() {
        let totals = totals_over(
            [(9, 5, 10.0), (10, 2, 1.5), (12, 1, 4.0), (13, 7, 0.0)],
            &(10..=12),
        );
        assert_eq!((totals.count, totals.sum), (3, 5.5));
    }

    #[test]
    fn a_group_by_field_counts_events_with_the_field_only() {
        let by_merchant = GroupBy::parse("properties.merchant").unwrap();
        let view =
            |merchant: serde_json::Value| serde_json::json!({"properties": {"merchant": merchant}});
        assert_eq!(
            by_merchant
                .group_of(&view(serde_json::json!("acme")))
                .map(|k| k.as_str().to_owned()),
            Some("acme".to_owned())
        );
        assert_eq!(
            by_merchant.group_of(&view(serde_json::json!(7.0))),
            by_merchant.group_of(&view(serde_json::json!(7)))
        );
        assert_eq!(by_merchant.group_of(&view(serde_json::Value::Null)), None);
        assert_eq!(by_merchant.group_of(&serde_json::json!({})), None);
        let long = "m".repeat(100);
        let key = by_merchant
            .group_of(&view(serde_json::json!(long)))
            .unwrap();
        assert!(key.as_str().starts_with('#') && key.as_str().len() == 17);
        assert_eq!(
            GroupBy::User.group_of(&view(serde_json::json!("acme"))),
            None
        );
        assert_eq!(
            GroupBy::All
                .group_of(&serde_json::json!({}))
                .map(|k| k.as_str().to_owned()),
            Some("all".to_owned())
        );
    }
}
