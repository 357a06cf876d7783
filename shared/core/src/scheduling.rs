//! Running absence checks ("X not followed by Y within N seconds") when they fall due.

use std::sync::Arc;

use crate::absence::AbsenceCheck;
use crate::alerting::{AlertDispatcher, Dispatched};
use crate::clock::Clock;
use crate::decision::{AbsenceDecision, RuleMemory, StateClaim, Viewed, decide_absence};
use crate::domain::Millis;
use crate::evaluation::alert_of;
use crate::ports::{AbsenceScheduler, EventStore, PortError, RuleState};
use crate::rules::Action;
use crate::source::RuleSource;

/// What running a check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbsenceOutcome {
    /// Not due yet: sent back to the queue.
    Requeued { delay_seconds: u32 },
    /// The expected event arrived in time.
    Satisfied,
    /// Nothing arrived: the alert (of the rule's action) was dispatched (or had been already).
    Fired(Dispatched, Action),
    /// Nothing arrived, but the rule fired for this user within its cooldown: no alert.
    CoolingDown,
    /// The rule was deleted, disabled or changed kind since the check was scheduled.
    RuleWithdrawn,
    /// The triggering event is not in the store, so there is nothing to alert about.
    TriggerMissing,
}

#[derive(Clone)]
pub struct AbsenceChecker {
    pub rules: Arc<RuleSource>,
    pub events: Arc<dyn EventStore>,
    /// Cooldowns of absence rules that have one.
    pub state: Arc<dyn RuleState>,
    pub scheduler: Arc<dyn AbsenceScheduler>,
    pub dispatcher: AlertDispatcher,
    pub clock: Arc<dyn Clock>,
}

impl AbsenceChecker {
    pub async fn run(&self, check: &AbsenceCheck) -> Result<AbsenceOutcome, PortError> {
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
        let events = self
            .events
            .received_between(check.user, check.received_at, check.due_at)
            .await?;
        let Some(trigger) = events.iter().find(|e| e.id == check.event_id) else {
            return Ok(AbsenceOutcome::TriggerMissing);
        };
        // The rule's state is not read in advance: the cooldown claim checks it atomically.
        let decision = decide_absence(
            rule,
            trigger,
            &Viewed::all(&events),
            check.due_at,
            now,
            &RuleMemory::default(),
        );
        match decision {
            // The rule changed kind since the check was scheduled.
            None => Ok(AbsenceOutcome::RuleWithdrawn),
            Some(AbsenceDecision::Satisfied { .. }) => Ok(AbsenceOutcome::Satisfied),
            Some(AbsenceDecision::CoolingDown { .. }) => Ok(AbsenceOutcome::CoolingDown),
            Some(AbsenceDecision::Fires(firing)) => {
                if let StateClaim::Cooldown { until } = firing.claim
                    && !self
                        .state
                        .claim_cooldown(&rule.id, check.user, &check.event_id, check.due_at, until)
                        .await?
                {
                    return Ok(AbsenceOutcome::CoolingDown);
                }
                Ok(AbsenceOutcome::Fired(
                    self.dispatcher
                        .dispatch(&alert_of(rule, trigger, firing))
                        .await?,
                    rule.action,
                ))
            }
        }
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
