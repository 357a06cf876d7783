//! Window rules in a bounded number of reads. Each event that matches a window rule is recorded
//! as a [`WindowMember`] in a bucket of that (rule, user): buckets as long as the window, so the
//! window ending at any instant lies in at most two of them, read together (with the next, for
//! the later windows a late member completes: [`WindowCondition::completed_by`]) whatever the
//! window's length or the user's rate. A member is keyed by its event id, so recording it again (a
//! redelivered or replayed record) changes nothing. A bucket keeps at most
//! [`MAX_BUCKET_MEMBERS`]; past that it is marked overflowed and the evaluator reads that window
//! from the events instead (exact, at the old cost, for the one user sending that much).
//!
//! Absence rules keep expectation buckets the same way ([`WindowKey::expecting`]): the events
//! that would answer their checks, so a check reads at most two items instead of the user's
//! events since the trigger.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::model::domain::{EventId, Millis, UserId};
use crate::rules::{AbsenceCondition, RuleId, WindowCondition, WindowTotals, distinct_value};

/// Members a bucket keeps before it overflows: the bucket item then stays near 10 KB, so an
/// update costs a handful of write units at most.
pub const MAX_BUCKET_MEMBERS: usize = 200;

/// An event as a window rule counts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowMember {
    pub id: EventId,
    pub received_at: Millis,
    /// What the event adds to the rule's sum (0 for count-only rules, or when the field is
    /// missing or not a number).
    pub amount: f64,
    /// Its value of the rule's `distinct` field ([`crate::rules::distinct_value`]), if the
    /// rule has one and the event a value there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Whose window: one rule's definition for one user. A rule whose `when`, window length or sum
/// field changes gets a new `definition`, so it starts from empty buckets rather than counting
/// members that its old definition chose.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowKey {
    pub rule: RuleId,
    pub definition: u64,
    pub user: UserId,
    /// Each bucket's length: the window's.
    pub bucket_ms: u64,
}

impl WindowKey {
    pub fn new(rule: &RuleId, window: &WindowCondition, user: UserId) -> Self {
        WindowKey {
            rule: rule.clone(),
            definition: window.definition,
            user,
            bucket_ms: u64::from(window.seconds.get()) * 1000,
        }
    }

    /// The expectation buckets of an absence rule for one user: the events that would answer
    /// its checks. A check spans `[trigger, due]`, one millisecond longer than the rule's
    /// `seconds` because both ends count, so the buckets are that long and
    /// [`WindowKey::buckets_ending`] the due time covers the span whole.
    pub fn expecting(rule: &RuleId, absence: &AbsenceCondition, user: UserId) -> Self {
        WindowKey {
            rule: rule.clone(),
            definition: absence.definition,
            user,
            bucket_ms: u64::from(absence.seconds.get()) * 1000 + 1,
        }
    }

    /// The bucket holding a member received `at`.
    pub fn bucket_of(&self, at: Millis) -> u64 {
        at.0 / self.bucket_ms
    }

    /// The buckets that hold the window ending `at` (received in `(at - window, at]`): the
    /// window is exactly one bucket long, so it touches at most two.
    pub fn buckets_ending(&self, at: Millis) -> RangeInclusive<u64> {
        let first = self.bucket_of(Millis((at.0 + 1).saturating_sub(self.bucket_ms)));
        first..=self.bucket_of(at)
    }

    /// The buckets that hold every window a member received `at` belongs to: the one ending at
    /// it, and those of members received after it and less than a window later (at most three
    /// buckets).
    pub fn buckets_around(&self, at: Millis) -> RangeInclusive<u64> {
        let first = self.bucket_of(Millis((at.0 + 1).saturating_sub(self.bucket_ms)));
        first..=self.bucket_of(Millis(at.0 + self.bucket_ms - 1))
    }

    /// When a bucket may be forgotten: a window that could still read it has ended.
    pub fn bucket_expires_at(&self, bucket: u64) -> Millis {
        Millis((bucket + 2) * self.bucket_ms)
    }
}

impl WindowCondition {
    /// `event`'s member of this window: its id, time and what it adds to the sum.
    pub fn member_of(
        &self,
        id: &EventId,
        received_at: Millis,
        view: &serde_json::Value,
    ) -> WindowMember {
        let amount = self
            .threshold
            .sum()
            .and_then(|s| s.field.lookup(view))
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0);
        WindowMember {
            id: id.clone(),
            received_at,
            amount,
            value: self
                .threshold
                .distinct()
                .and_then(|d| distinct_value(d.field.lookup(view))),
        }
    }
}

impl WindowCondition {
    /// The members of the window ending at `last` (received in the window's length up to it),
    /// `last` included once, in one canonical order (receive time, then id) so that every
    /// source of members sums fractions alike.
    pub fn members_ending(
        &self,
        last: &WindowMember,
        candidates: impl IntoIterator<Item = WindowMember>,
    ) -> Vec<WindowMember> {
        let from = self.starts_after(last.received_at);
        let mut members: Vec<WindowMember> = candidates
            .into_iter()
            .filter(|m| {
                m.id != last.id && m.received_at > from && m.received_at <= last.received_at
            })
            .collect();
        members.push(last.clone());
        members.sort_by(|a, b| (a.received_at, a.id.as_str()).cmp(&(b.received_at, b.id.as_str())));
        members
    }

    /// The members received after `joining` and less than a window later whose windows it
    /// completes: met with it, not without it. They reached the stream first (one user's
    /// requests racing, or a redelivery), so they were decided without it and must be decided
    /// again. Members received at the same instant as `joining` are not among them: each of
    /// those windows already counts the others processed before it.
    pub fn completed_by(
        &self,
        joining: &WindowMember,
        members: &[WindowMember],
    ) -> Vec<WindowMember> {
        let horizon = joining.received_at.0 + u64::from(self.seconds.get()) * 1000;
        let later = |m: &&WindowMember| {
            m.id != joining.id && m.received_at > joining.received_at && m.received_at.0 < horizon
        };
        // Members arrive in order almost always: then nothing is later, and nothing is copied.
        if !members.iter().any(|m| later(&m)) {
            return Vec::new();
        }
        let others: Vec<WindowMember> = members
            .iter()
            .filter(|m| m.id != joining.id)
            .cloned()
            .collect();
        let with = || {
            others
                .iter()
                .cloned()
                .chain(std::iter::once(joining.clone()))
        };
        let mut completed: Vec<WindowMember> = others
            .iter()
            .filter(later)
            .filter(|m| {
                self.is_met(&tally(&self.members_ending(m, with())))
                    && !self.is_met(&tally(&self.members_ending(m, others.iter().cloned())))
            })
            .cloned()
            .collect();
        // In the order received, as they would have been decided: the first claims the rule's
        // cooldown, whatever order the members came in.
        completed
            .sort_by(|a, b| (a.received_at, a.id.as_str()).cmp(&(b.received_at, b.id.as_str())));
        completed
    }
}

/// Totals over a window's members, in the order given.
pub fn tally(members: &[WindowMember]) -> WindowTotals {
    let values: std::collections::HashSet<&str> =
        members.iter().filter_map(|m| m.value.as_deref()).collect();
    WindowTotals {
        count: u32::try_from(members.len()).unwrap_or(u32::MAX),
        sum: members.iter().map(|m| m.amount).sum(),
        distinct: u32::try_from(values.len()).unwrap_or(u32::MAX),
    }
}

/// What recording a member did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The member is in its bucket (added now, or by an earlier record of the same event).
    Kept,
    /// The bucket was full: it is marked overflowed, for good (it is never read as members
    /// again, so a bucket seen overflowed need not be recorded into or read again).
    Overflowed,
}

/// What a read of a window's buckets found.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowRead {
    Members(Vec<WindowMember>),
    /// A bucket holds more than [`MAX_BUCKET_MEMBERS`]: read the window from the events.
    Overflowed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Condition, RuleSet};

    /// A member received `seconds` after an instant far from the epoch.
    fn member(id: &str, seconds: u64) -> WindowMember {
        WindowMember {
            id: EventId::parse(id).unwrap(),
            received_at: Millis(1_750_000_000_000 + seconds * 1000),
            amount: 0.0,
            value: None,
        }
    }

    #[test]
    fn a_late_member_completes_the_later_windows_it_belongs_to() {
        let document = serde_json::json!({"rules": [{
            "id": "three", "when": {"kind": "feedback"},
            "condition": {"type": "window", "seconds": 60, "count_at_least": 3},
            "action": {"type": "notify_operator", "severity": "info"}, "message": "three"
        }]});
        let rules = RuleSet::from_json(&document).unwrap();
        let Condition::Window(window) = &rules.all()[0].condition else {
            panic!("a window rule");
        };
        let late = member("b", 10);
        let ids = |members: Vec<WindowMember>| -> Vec<String> {
            members
                .into_iter()
                .map(|m| m.id.as_str().to_owned())
                .collect()
        };
        // c's window (-40 s, 20 s] now holds a, b and c; d's (10 s, 70 s] does not hold b.
        let members = [
            member("a", 0),
            member("c", 20),
            member("d", 70),
            late.clone(),
        ];
        assert_eq!(ids(window.completed_by(&late, &members)), ["c"]);
        // A window met without the late member was decided with enough already.
        let met = [member("a", 0), member("x", 5), member("c", 20)];
        assert!(window.completed_by(&late, &met).is_empty());
        // A member of the same instant counts the late one in its own window already.
        let same = [member("a", 0), member("c", 10)];
        assert!(window.completed_by(&late, &same).is_empty());
        // A window ending a full length later starts after the late member.
        let beyond = [member("a", 0), member("c", 69), member("e", 70)];
        assert!(window.completed_by(&late, &beyond).is_empty());
    }

    #[test]
    fn the_buckets_around_a_member_hold_every_window_it_belongs_to() {
        let key = WindowKey {
            rule: RuleId::parse("r").unwrap(),
            definition: 0,
            user: UserId(1),
            bucket_ms: 60_000,
        };
        for at in [0u64, 1, 59_999, 60_000, 60_001, 119_999, 1_234_567] {
            let read = key.buckets_around(Millis(at));
            assert!(read.clone().count() <= 3, "{read:?}");
            // The windows ending anywhere from `at` to just under a window later.
            for end in [at, at + 30_000, at + 59_999] {
                for bucket in key.buckets_ending(Millis(end)) {
                    assert!(read.contains(&bucket), "at {at}: window ending {end}");
                }
            }
        }
    }

    #[test]
    fn a_checks_whole_span_lies_in_the_buckets_read_at_its_due_time() {
        let rules = RuleSet::default_rules().unwrap();
        let rule = &rules.all()[2];
        let Condition::Absence(absence) = &rule.condition else {
            panic!("the third seed rule is an absence rule");
        };
        let key = WindowKey::expecting(&rule.id, absence, UserId(1));
        let b = key.bucket_ms;
        for trigger in [0, 1, b - 1, b, b + 1, 5 * b - 1, 123_456_789] {
            let due = absence.due_at(Millis(trigger));
            let read = key.buckets_ending(due);
            assert!(read.clone().count() <= 2, "{read:?}");
            for end in [trigger, due.0] {
                assert!(
                    read.contains(&key.bucket_of(Millis(end))),
                    "trigger {trigger}: the bucket of {end} is read"
                );
            }
        }
    }
}
