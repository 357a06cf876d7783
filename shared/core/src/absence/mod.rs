//! Absence checks ("X not followed by Y within N seconds"): the message on the delay queue, and
//! which checks a validated event calls for.

pub mod ports;
pub mod scheduling;

use serde::{Deserialize, Serialize};

use crate::model::domain::{EventId, Millis, StoredEvent, UserId};
use crate::model::trace::TraceContext;
use crate::rules::{Condition, Rule, RuleId};

/// SQS refuses a longer `DelaySeconds`; checks due later are re-enqueued until due.
pub const MAX_QUEUE_DELAY_SECONDS: u32 = 900;

/// The message on the delay queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbsenceCheck {
    pub rule_id: RuleId,
    pub user: UserId,
    pub event_id: EventId,
    /// The trigger's receive time: the window starts here.
    pub received_at: Millis,
    pub due_at: Millis,
    /// The trigger's trace ([`ReceivedEvent::trace`]): the check, whenever it is decided, is
    /// part of the request that caused it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::model::trace::lenient"
    )]
    pub trace: Option<TraceContext>,
}

impl AbsenceCheck {
    /// The delay to ask the queue for when sending this check at `now`.
    pub fn delay_from(&self, now: Millis) -> u32 {
        self.delay_until(now, self.due_at)
    }

    /// The delay to ask the queue for at `now` to see this check again at `then` (or as
    /// close as the queue's maximum delay allows).
    pub fn delay_until(&self, now: Millis, then: Millis) -> u32 {
        let seconds = now.seconds_until(then);
        u32::try_from(seconds)
            .unwrap_or(u32::MAX)
            .min(MAX_QUEUE_DELAY_SECONDS)
    }
}

/// The checks that storing `event` calls for: one per absence rule among `triggered` (the
/// enabled rules the event triggers, matched once for scheduling and evaluation alike), each in
/// the event's `trace`.
pub fn plan_absence_checks(
    triggered: &[&Rule],
    event: &StoredEvent,
    trace: Option<&TraceContext>,
) -> Vec<AbsenceCheck> {
    let view = event.view();
    triggered
        .iter()
        .filter_map(|rule| match &rule.condition {
            // A trigger without the group's field has no group to wait on.
            Condition::Absence(absence) if absence.answered_in(event.user, &view).is_none() => None,
            Condition::Absence(absence) => Some(AbsenceCheck {
                trace: trace.cloned(),
                rule_id: rule.id.clone(),
                user: event.user,
                event_id: event.id.clone(),
                received_at: event.received_at,
                due_at: absence.due_at(event.received_at),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::domain::{Activity, EventBody, Feedback, Rating};
    use crate::rules::RuleSet;

    fn event(body: EventBody) -> StoredEvent {
        StoredEvent {
            user: UserId(3),
            id: EventId::parse("e1").unwrap(),
            received_at: Millis(10_000),
            body,
        }
    }

    #[test]
    fn a_bill_payment_plans_one_check_per_absence_rule() {
        let rules = RuleSet::default_rules().unwrap();
        let paid = event(EventBody::Activity(Activity::new(
            "bill",
            "paid",
            Default::default(),
        )));
        let view = paid.view();
        let triggered: Vec<&Rule> = rules.triggered_by(&view).collect();
        let trace: TraceContext = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
            .parse()
            .unwrap();
        let checks = plan_absence_checks(&triggered, &paid, Some(&trace));
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].rule_id.as_str(), "bill-paid-no-feedback");
        assert_eq!(checks[0].due_at, Millis(910_000));
        assert_eq!(checks[0].trace.as_ref(), Some(&trace));
        assert_eq!(plan_absence_checks(&triggered, &paid, None)[0].trace, None);

        let feedback = event(EventBody::Feedback(Feedback {
            rating: Rating::try_from(5).unwrap(),
            comment: None,
        }));
        let view = feedback.view();
        let triggered: Vec<&Rule> = rules.triggered_by(&view).collect();
        assert!(plan_absence_checks(&triggered, &feedback, Some(&trace)).is_empty());
    }

    #[test]
    fn delays_are_capped_at_the_queue_maximum() {
        let check = AbsenceCheck {
            trace: None,
            rule_id: RuleId::parse("r").unwrap(),
            user: UserId(1),
            event_id: EventId::parse("e").unwrap(),
            received_at: Millis(0),
            due_at: Millis(3_600_000),
        };
        assert_eq!(check.delay_from(Millis(0)), 900);
        assert_eq!(check.delay_from(Millis(3_000_000)), 600);
        assert_eq!(check.delay_from(Millis(3_599_001)), 1);
        assert_eq!(check.delay_from(Millis(4_000_000)), 0);
    }
}
