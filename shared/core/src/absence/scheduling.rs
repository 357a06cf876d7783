//! Absence checks ("X not followed by Y within N seconds") once they fall due: held on the
//! delay queue until ripe ([`AbsenceRelay`]), then decided in the user's stream
//! ([`AbsenceChecker`]).

use std::sync::Arc;
use std::time::Duration;

use crate::absence::AbsenceCheck;
use crate::absence::ports::{AbsenceScheduler, DueChecks};
use crate::delivery::alerting::{AlertDispatcher, Dispatched, millis};
use crate::evaluation::alert_of;
use crate::evaluation::decision::{
    AbsenceDecision, RuleMemory, StateClaim, Viewed, decide_absence, decide_absence_with_members,
};
use crate::evaluation::ports::{RuleState, WindowStore};
use crate::evaluation::source::RuleSource;
use crate::evaluation::window::{WindowKey, WindowRead};
use crate::model::clock::Clock;
use crate::model::domain::{Millis, StoredEvent};
use crate::model::ports::{EventStore, PortError};
use crate::rules::{AbsenceCondition, Action, Condition, GroupBy, Rule};

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

/// Decides due absence checks. It runs in the rules function, on the check's record in the
/// user's own stream ([`AbsenceRelay`] put it there), so every event of the user stored before
/// the check has been processed (and, if it answers the check, recorded in the rule's
/// expectation buckets) by the time the check is decided.
#[derive(Clone)]
pub struct AbsenceChecker {
    pub rules: Arc<RuleSource>,
    /// The trigger, and the span after it when the buckets cannot answer.
    pub events: Arc<dyn EventStore>,
    /// Expectation buckets ([`WindowKey::expecting`]): a check reads at most two items. `None`
    /// reads the user's events from the trigger to the due time (the exact scan the buckets
    /// are tested against).
    pub windows: Option<Arc<dyn WindowStore>>,
    /// How long a saved rule takes to reach every function (the rules cache's time to live).
    /// Events are recorded in a rule's buckets only by functions that have loaded it, so the
    /// buckets answer only for triggers received this long after the rule was last saved;
    /// earlier ones read the span from the events.
    pub rules_settle: Duration,
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
        let Condition::Absence(absence) = &rule.condition else {
            return Ok(AbsenceOutcome::RuleWithdrawn);
        };
        let Some((trigger, decision)) = self.decide(rule, absence, check, now).await? else {
            return Ok(AbsenceOutcome::TriggerMissing);
        };
        // The rule's state is not read in advance: the cooldown claim checks it atomically.
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
                        .dispatch(&alert_of(rule, &trigger, firing).in_trace(check.trace.as_ref()))
                        .await?,
                    rule.action,
                ))
            }
        }
    }

    /// The trigger and the decision on it (`None`: the trigger is not stored): from the
    /// expectation buckets when they can answer, else from the user's events in the span.
    async fn decide(
        &self,
        rule: &Rule,
        absence: &AbsenceCondition,
        check: &AbsenceCheck,
        now: Millis,
    ) -> Result<Option<(StoredEvent, Option<AbsenceDecision>)>, PortError> {
        let settled_since = rule
            .saved_at
            .map(|saved| Millis(saved.0.saturating_add(millis(self.rules_settle))));
        // A group's events are not indexed, so a rule grouped across users reads its buckets
        // even before it settled (an answer recorded by nobody in the first seconds after a
        // save may be missed).
        let grouped = absence.group_by != GroupBy::User;
        let buckets = self
            .windows
            .as_ref()
            .filter(|_| grouped || settled_since.is_none_or(|settled| settled < check.received_at));
        if let Some(windows) = buckets {
            let Some(trigger) = self
                .events
                .get_received(check.user, &check.event_id, check.received_at)
                .await?
            else {
                return Ok(None);
            };
            let trigger = trigger.event;
            let Some(owner) = absence.answered_in(check.user, &trigger.view()) else {
                // The rule grouped by a field the trigger lacks since it was scheduled.
                return Ok(Some((trigger, None)));
            };
            let key = WindowKey::expecting(&rule.id, absence, owner);
            match windows.window(&key, check.due_at).await? {
                WindowRead::Members(members) => {
                    let decision = decide_absence_with_members(
                        rule,
                        &trigger,
                        &members,
                        check.due_at,
                        now,
                        &RuleMemory::default(),
                    );
                    return Ok(Some((trigger, decision)));
                }
                // A group's events are not indexed: a group whose expected events filled a
                // bucket (200 in one span) was answered, many times over.
                WindowRead::Overflowed if grouped => {
                    let by = trigger.id.clone();
                    return Ok(Some((trigger, Some(AbsenceDecision::Satisfied { by }))));
                }
                WindowRead::Overflowed => {}
            }
        }
        let events = self
            .events
            .received_between(check.user, check.received_at, check.due_at)
            .await?;
        let Some(trigger) = events.iter().find(|e| e.id == check.event_id) else {
            return Ok(None);
        };
        let decision = decide_absence(
            rule,
            trigger,
            &Viewed::all(&events),
            check.due_at,
            now,
            &RuleMemory::default(),
        );
        Ok(Some((trigger.clone(), decision)))
    }
}

/// What the delay queue's consumer did with a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayOutcome {
    /// Not ripe yet: sent back to the queue.
    Requeued { delay_seconds: u32 },
    /// Put into the user's stream, where the rules function decides it.
    Posted,
}

/// The delay queue's consumer: holds each check until it is ripe, then posts it into the
/// user's stream. A check decided straight from the queue could be decided before the stream
/// consumer had processed an answer stored just before the due time (stream processing lags,
/// by seconds or, behind a backlog, by minutes): a false alert. Behind the user's own records,
/// it is decided after all of them.
#[derive(Clone)]
pub struct AbsenceRelay {
    pub scheduler: Arc<dyn AbsenceScheduler>,
    pub due: Arc<dyn DueChecks>,
    pub clock: Arc<dyn Clock>,
    /// How long after its due time a check is posted: longer than an ingest request can run
    /// (the ingest function's timeout), so every event received by the due time is stored, and
    /// so ahead of the check in the stream, when the check is posted.
    pub settle: Duration,
}

impl AbsenceRelay {
    pub async fn run(&self, check: &AbsenceCheck) -> Result<RelayOutcome, PortError> {
        let now = self.clock.now();
        let ripe = Millis(check.due_at.0.saturating_add(millis(self.settle)));
        if now < ripe {
            let delay_seconds = check.delay_until(now, ripe);
            self.scheduler.schedule(check, delay_seconds).await?;
            return Ok(RelayOutcome::Requeued { delay_seconds });
        }
        self.due.post(check).await?;
        Ok(RelayOutcome::Posted)
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
