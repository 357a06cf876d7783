//! Window rules in a bounded number of reads. Each event that matches a window rule is recorded
//! as a [`WindowMember`] in a bucket of that (rule, user): buckets as long as the window, so the
//! window ending at any instant lies in at most two of them, read together whatever the window's
//! length or the user's rate. A member is keyed by its event id, so recording it again (a
//! redelivered or replayed record) changes nothing. A bucket keeps at most
//! [`MAX_BUCKET_MEMBERS`]; past that it is marked overflowed and the evaluator reads that window
//! from the events instead (exact, at the old cost, for the one user sending that much).
//!
//! Absence rules keep expectation buckets the same way ([`WindowKey::expecting`]): the events
//! that would answer their checks, so a check reads at most two items instead of the user's
//! events since the trigger.

use serde::{Deserialize, Serialize};

use crate::domain::{EventId, Millis, UserId};
use crate::rules::{AbsenceCondition, RuleId, WindowCondition, WindowThreshold, WindowTotals};

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
    pub fn buckets_ending(&self, at: Millis) -> Vec<u64> {
        let first = self.bucket_of(Millis((at.0 + 1).saturating_sub(self.bucket_ms)));
        (first..=self.bucket_of(at)).collect()
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
        let amount = match &self.threshold {
            WindowThreshold::Count(_) => 0.0,
            WindowThreshold::Sum(s) | WindowThreshold::CountAndSum(_, s) => s
                .field
                .lookup(view)
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(0.0),
        };
        WindowMember {
            id: id.clone(),
            received_at,
            amount,
        }
    }
}

/// Totals over a window's members, in the order given.
pub fn tally(members: &[WindowMember]) -> WindowTotals {
    members
        .iter()
        .fold(WindowTotals { count: 0, sum: 0.0 }, |acc, m| WindowTotals {
            count: acc.count.saturating_add(1),
            sum: acc.sum + m.amount,
        })
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
            assert!(read.len() <= 2, "{read:?}");
            for end in [trigger, due.0] {
                assert!(
                    read.contains(&key.bucket_of(Millis(end))),
                    "trigger {trigger}: the bucket of {end} is read"
                );
            }
        }
    }
}
