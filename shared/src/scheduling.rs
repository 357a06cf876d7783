//! Absence checks ("X not followed by Y within N seconds"): planned once an event is validated, run when due.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::alerting::{Alert, AlertDispatcher, AlertId, DispatchError, Dispatched};
use crate::clock::Clock;
use crate::domain::{EventId, Millis, StoredEvent, UserId};
use crate::ports::{AbsenceScheduler, EventStore, PortError};
use crate::rulebook::RuleSource;
use crate::rules::{Condition, RuleId, RuleSet};

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
}

impl AbsenceCheck {
    /// The delay to ask the queue for when sending this check at `now`.
    pub fn delay_from(&self, now: Millis) -> u32 {
        let seconds = now.seconds_until(self.due_at);
        u32::try_from(seconds)
            .unwrap_or(u32::MAX)
            .min(MAX_QUEUE_DELAY_SECONDS)
    }
}

/// The checks that storing `event` calls for: one per enabled absence rule it triggers.
pub fn plan_absence_checks(rules: &RuleSet, event: &StoredEvent) -> Vec<AbsenceCheck> {
    let view = event.view();
    rules
        .triggered_by(&view)
        .filter_map(|rule| match &rule.condition {
            Condition::Absence(absence) => Some(AbsenceCheck {
                rule_id: rule.id.clone(),
                user: event.user,
                event_id: event.id.clone(),
                received_at: event.received_at,
                due_at: event
                    .received_at
                    .plus_seconds(u64::from(absence.seconds.get())),
            }),
            _ => None,
        })
        .collect()
}

/// What running a check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbsenceOutcome {
    /// Not due yet: sent back to the queue.
    Requeued { delay_seconds: u32 },
    /// The expected event arrived in time.
    Satisfied,
    /// Nothing arrived: the alert was dispatched (or had been already).
    Fired(Dispatched),
    /// The rule was deleted, disabled or changed kind since the check was scheduled.
    RuleWithdrawn,
    /// The triggering event is not in the store, so there is nothing to alert about.
    TriggerMissing,
}

#[derive(Clone)]
pub struct AbsenceChecker {
    pub rules: Arc<dyn RuleSource>,
    pub events: Arc<dyn EventStore>,
    pub scheduler: Arc<dyn AbsenceScheduler>,
    pub dispatcher: AlertDispatcher,
    pub clock: Arc<dyn Clock>,
}

impl AbsenceChecker {
    pub async fn run(&self, check: &AbsenceCheck) -> Result<AbsenceOutcome, DispatchError> {
        let now = self.clock.now();
        if now < check.due_at {
            let delay_seconds = check.delay_from(now);
            self.scheduler.schedule(check, delay_seconds).await?;
            return Ok(AbsenceOutcome::Requeued { delay_seconds });
        }
        let rules = self.rules.current().await?;
        let Some(rule) = rules.get(check.rule_id.as_str()).filter(|r| r.enabled) else {
            return Ok(AbsenceOutcome::RuleWithdrawn);
        };
        let Condition::Absence(absence) = &rule.condition else {
            return Ok(AbsenceOutcome::RuleWithdrawn);
        };
        let events = self
            .events
            .received_between(check.user, check.received_at, check.due_at)
            .await?;
        let arrived = events
            .iter()
            .filter(|e| e.id != check.event_id)
            .any(|e| absence.expect.matches(&e.view()));
        if arrived {
            return Ok(AbsenceOutcome::Satisfied);
        }
        let Some(trigger) = events.iter().find(|e| e.id == check.event_id) else {
            return Ok(AbsenceOutcome::TriggerMissing);
        };
        let alert = Alert::new(
            rule,
            AlertId::for_trigger(&rule.id, check.user, &check.event_id),
            check.user,
            vec![check.event_id.clone()],
            rule.render_message(trigger, None),
            now,
        );
        Ok(AbsenceOutcome::Fired(
            self.dispatcher.dispatch(&alert).await?,
        ))
    }
}

/// Schedules every planned check; a failure surfaces as a port error (the stream retries).
pub async fn schedule_all(
    scheduler: &dyn AbsenceScheduler,
    checks: &[AbsenceCheck],
    now: Millis,
) -> Result<(), PortError> {
    for check in checks {
        scheduler.schedule(check, check.delay_from(now)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Activity, EventBody, Feedback, Rating};

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
        let paid = event(EventBody::Activity(Activity {
            noun: "bill".into(),
            verb: "paid".into(),
            ts: None,
            latlong: None,
            time: None,
            properties: Default::default(),
        }));
        let checks = plan_absence_checks(&rules, &paid);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].rule_id.as_str(), "bill-paid-no-feedback");
        assert_eq!(checks[0].due_at, Millis(910_000));

        let feedback = event(EventBody::Feedback(Feedback {
            rating: Rating::try_from(5).unwrap(),
            comment: None,
        }));
        assert!(plan_absence_checks(&rules, &feedback).is_empty());
    }

    #[test]
    fn delays_are_capped_at_the_queue_maximum() {
        let check = AbsenceCheck {
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
