//! Evaluating the rule set against one newly stored event (the stream consumer's job): read what
//! the decision needs, decide ([`crate::decision::decide`]), then claim and dispatch.

use std::sync::Arc;

use crate::alert::Alert;
use crate::alerting::{AlertDispatcher, Dispatched};
use crate::decision::{Decision, Firing, RuleMemory, StateClaim, Viewed, decide};
use crate::domain::StoredEvent;
use crate::ports::{EventStore, PortError, RuleState};
use crate::rules::{Action, Condition, Rule, RuleId};
use crate::source::RuleSource;

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
    pub events: Arc<dyn EventStore>,
    pub state: Arc<dyn RuleState>,
    pub dispatcher: AlertDispatcher,
}

impl RuleEvaluator {
    /// Runs every enabled `first` and `window` rule the event triggers. (`absence` rules are
    /// scheduled by [`crate::processing::EventPipeline`] and run from the delay queue.) Safe to
    /// repeat for the same event: claims are keyed by the event, and the ledger refuses a second
    /// delivery.
    pub async fn evaluate(&self, event: &StoredEvent) -> Result<Vec<RuleOutcome>, PortError> {
        let trigger = Viewed::of(event);
        let mut outcomes = Vec::new();
        let rules = self.rules.current().await?;
        for rule in rules.triggered_by(&trigger.view) {
            let recent = match &rule.condition {
                Condition::Absence(_) => continue,
                Condition::First => Vec::new(),
                Condition::Window(window) => {
                    self.events
                        .received_between(
                            event.user,
                            window.starts_after(event.received_at).plus_one(),
                            event.received_at,
                        )
                        .await?
                }
            };
            // Nothing is read of the rule's state in advance: the claim below checks it
            // atomically, which is what keeps two workers from both firing.
            let decision = decide(
                rule,
                &trigger,
                &Viewed::all(&recent),
                &RuleMemory::default(),
            );
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
