//! Evaluating the rule set against one newly stored event (the stream consumer's job): read what
//! the decision needs, decide ([`crate::decision::decide`]), then claim and dispatch.

use std::sync::Arc;

use crate::alert::Alert;
use crate::alerting::{AlertDispatcher, Dispatched};
use crate::decision::{
    Decision, Firing, Quiet, RuleMemory, StateClaim, Viewed, decide, decide_with_members,
};
use crate::domain::StoredEvent;
use crate::ports::{EventStore, PortError, RuleState, WindowStore};
use crate::rules::{Action, Condition, Rule, RuleId, WindowCondition};
use crate::source::RuleSource;
use crate::window::{WindowKey, WindowMember, WindowRead};

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
    /// Window buckets: each window rule's matching events are recorded there and its window is
    /// read in at most two items. `None` reads every window from the user's events (the exact
    /// scan the buckets are tested against).
    pub windows: Option<Arc<dyn WindowStore>>,
    pub state: Arc<dyn RuleState>,
    pub dispatcher: AlertDispatcher,
}

impl RuleEvaluator {
    /// Runs every enabled `first` and `window` rule the event triggers, after recording the
    /// event in the expectation buckets of the absence rules it would answer. (`absence` rules
    /// are scheduled by [`crate::processing::EventPipeline`] and decided by
    /// [`crate::scheduling::AbsenceChecker`].) Safe to repeat for the same event: buckets are
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
            let decision = match &rule.condition {
                Condition::Absence(_) => continue,
                Condition::First => decide(rule, &trigger, &[], &RuleMemory::default()),
                Condition::Window(window) => self.decide_window(rule, window, &trigger).await?,
            };
            let Decision::Fires(firing) = decision else {
                continue;
            };
            if !self.claim(rule, event, firing.claim).await? {
                continue;
            }
            let dispatched = self
                .dispatcher
                .dispatch(&alert_of(rule, event, firing))
                .await?;
            outcomes.push(RuleOutcome {
                rule_id: rule.id.clone(),
                action: rule.action,
                dispatched,
            });
        }
        Ok(outcomes)
    }

    /// Decides a window rule: records the trigger in its window bucket, then reads the window
    /// back from the buckets (or, without them or past an overflow, from the user's events).
    async fn decide_window(
        &self,
        rule: &Rule,
        window: &WindowCondition,
        trigger: &Viewed<'_>,
    ) -> Result<Decision, PortError> {
        let event = trigger.event;
        if !rule.when.matches(&trigger.view) {
            return Ok(Decision::Quiet(Quiet::NoMatch));
        }
        if let Some(windows) = &self.windows {
            let key = WindowKey::new(&rule.id, window, event.user);
            let member = window.member_of(&event.id, event.received_at, &trigger.view);
            windows.record(&key, &member).await?;
            if let WindowRead::Members(members) = windows.window(&key, event.received_at).await? {
                return Ok(decide_with_members(
                    rule,
                    trigger,
                    &members,
                    &RuleMemory::default(),
                ));
            }
        }
        let recent = self
            .events
            .received_between(
                event.user,
                window.starts_after(event.received_at).plus_one(),
                event.received_at,
            )
            .await?;
        Ok(decide(
            rule,
            trigger,
            &Viewed::all(&recent),
            &RuleMemory::default(),
        ))
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
