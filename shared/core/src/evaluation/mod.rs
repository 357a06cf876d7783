//! Evaluating the rule set against one newly stored event (the stream consumer's job): read what
//! the decision needs, decide ([`crate::evaluation::decision::decide`]), then claim and dispatch.

pub mod decision;
pub mod ports;
pub mod source;
pub mod window;

use std::borrow::Cow;
use std::sync::Arc;

use crate::delivery::alert::Alert;
use crate::delivery::alerting::{AlertDispatcher, Dispatched};
use crate::evaluation::decision::{
    Decision, Firing, Quiet, RuleMemory, StateClaim, Viewed, decide, decide_with_members,
};
use crate::evaluation::ports::{RuleState, WindowStore};
use crate::evaluation::source::RuleSource;
use crate::evaluation::window::{WindowKey, WindowMember, WindowRead};
use crate::model::domain::{Millis, StoredEvent};
use crate::model::ports::{EventStore, PortError};
use crate::rules::{Action, Condition, Rule, RuleId, WindowCondition};

/// What one rule did for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOutcome {
    pub rule_id: RuleId,
    /// What the rule does when it fires (for counting alerts by action).
    pub action: Action,
    pub dispatched: Dispatched,
}

#[derive(Clone)]
pub struct RuleEvaluator {
    pub rules: Arc<RuleSource>,
    /// Where a window is read from when no window buckets are kept (or one overflowed).
    pub events: Arc<dyn EventStore>,
    /// Window buckets: each window rule's matching events are recorded there, and its window
    /// (with the later windows the event completes) is read in at most three items. `None`
    /// reads every window from the user's events (the exact scan the buckets are tested
    /// against).
    pub windows: Option<Arc<dyn WindowStore>>,
    pub state: Arc<dyn RuleState>,
    pub dispatcher: AlertDispatcher,
}

impl RuleEvaluator {
    /// Runs every enabled `first` and `window` rule the event triggers, after recording the
    /// event in the expectation buckets of the absence rules it would answer. (`absence` rules
    /// are scheduled by [`crate::pipeline::EventPipeline`] and decided by
    /// [`crate::absence::scheduling::AbsenceChecker`].) Safe to repeat for the same event: buckets are
    /// keyed by the event, claims too, and the ledger refuses a second delivery.
    pub async fn evaluate(&self, event: &StoredEvent) -> Result<Vec<RuleOutcome>, PortError> {
        let trigger = Viewed::of(event);
        let mut outcomes = Vec::new();
        let rules = self.rules.current().await?;
        if let Some(windows) = &self.windows {
            for (rule, absence) in rules.expecting(&trigger.view) {
                let key = WindowKey::expecting(&rule.id, absence, event.user);
                let member = WindowMember {
                    id: event.id.clone(),
                    received_at: event.received_at,
                    amount: 0.0,
                };
                windows.record(&key, &member).await?;
            }
        }
        for rule in rules.triggered_by(&trigger.view) {
            // Nothing is read of the rule's state in advance: the claim below checks it
            // atomically, which is what keeps two workers from both firing.
            let decided = match &rule.condition {
                Condition::Absence(_) => continue,
                Condition::First => vec![(
                    Cow::Borrowed(event),
                    decide(rule, &trigger, &[], &RuleMemory::default()),
                )],
                Condition::Window(window) => self.decide_window(rule, window, &trigger).await?,
            };
            for (decided_event, decision) in decided {
                let Decision::Fires(firing) = decision else {
                    continue;
                };
                if !self.claim(rule, &decided_event, firing.claim).await? {
                    continue;
                }
                let dispatched = self
                    .dispatcher
                    .dispatch(&alert_of(rule, &decided_event, firing))
                    .await?;
                outcomes.push(RuleOutcome {
                    rule_id: rule.id.clone(),
                    action: rule.action,
                    dispatched,
                });
            }
        }
        Ok(outcomes)
    }

    /// Decides a window rule: records the trigger in its window bucket, then reads back its
    /// window and the windows of the members received after it and less than a window later
    /// (from the buckets, or, without them or past an overflow, from the user's events). The
    /// decisions: the trigger's, then those of the later events whose windows it completes
    /// ([`WindowCondition::completed_by`]): they reached the stream before it (one user's
    /// requests racing) and were decided without it.
    async fn decide_window<'e>(
        &self,
        rule: &Rule,
        window: &WindowCondition,
        trigger: &Viewed<'e>,
    ) -> Result<Vec<(Cow<'e, StoredEvent>, Decision)>, PortError> {
        let event = trigger.event;
        if !rule.when.matches(&trigger.view) {
            return Ok(vec![(
                Cow::Borrowed(event),
                Decision::Quiet(Quiet::NoMatch),
            )]);
        }
        let memory = RuleMemory::default();
        let joining = window.member_of(&event.id, event.received_at, &trigger.view);
        if let Some(windows) = &self.windows {
            let key = WindowKey::new(&rule.id, window, event.user);
            windows.record(&key, &joining).await?;
            let read = windows
                .buckets(&key, key.buckets_around(event.received_at))
                .await?;
            if let WindowRead::Members(members) = read {
                let mut decided = vec![(
                    Cow::Borrowed(event),
                    decide_with_members(rule, trigger, &members, &memory),
                )];
                for later in window.completed_by(&joining, &members) {
                    if let Some(stored) = self.events.get(event.user, &later.id).await? {
                        let decision = decide_with_members(
                            rule,
                            &Viewed::of(&stored.event),
                            &members,
                            &memory,
                        );
                        decided.push((Cow::Owned(stored.event), decision));
                    }
                }
                return Ok(decided);
            }
        }
        let horizon = Millis(event.received_at.0 + u64::from(window.seconds.get()) * 1000 - 1);
        let recent = self
            .events
            .received_between(
                event.user,
                window.starts_after(event.received_at).plus_one(),
                horizon,
            )
            .await?;
        let viewed = Viewed::all(&recent);
        let mut decided = vec![(
            Cow::Borrowed(event),
            decide(rule, trigger, &viewed, &memory),
        )];
        let members: Vec<WindowMember> = viewed
            .iter()
            .filter(|v| rule.when.matches(&v.view))
            .map(|v| window.member_of(&v.event.id, v.event.received_at, &v.view))
            .collect();
        for later in window.completed_by(&joining, &members) {
            if let Some(stored) = recent.iter().find(|e| e.id == later.id) {
                let decision = decide(rule, &Viewed::of(stored), &viewed, &memory);
                decided.push((Cow::Owned(stored.clone()), decision));
            }
        }
        Ok(decided)
    }

    async fn claim(
        &self,
        rule: &Rule,
        event: &StoredEvent,
        claim: StateClaim,
    ) -> Result<bool, PortError> {
        match claim {
            StateClaim::First => {
                self.state
                    .claim_first(&rule.id, event.user, &event.id)
                    .await
            }
            StateClaim::Cooldown { until } => {
                self.state
                    .claim_cooldown(&rule.id, event.user, &event.id, event.received_at, until)
                    .await
            }
            StateClaim::None => Ok(true),
        }
    }
}

/// The alert a firing sends.
pub fn alert_of(rule: &Rule, trigger: &StoredEvent, firing: Firing) -> Alert {
    Alert::new(
        rule,
        firing.alert_id,
        trigger.user,
        firing.event_ids,
        firing.text,
        firing.fired_at,
    )
}
