//! Evaluating the rule set against one newly stored event (the stream consumer's job).

use std::sync::Arc;

use crate::alerting::{Alert, AlertDispatcher, AlertId, DispatchError, Dispatched};
use crate::domain::StoredEvent;
use crate::ports::{EventStore, RuleState};
use crate::rulebook::RuleSource;
use crate::rules::{Condition, RuleId};

/// What one rule did for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleOutcome {
    pub rule_id: RuleId,
    pub dispatched: Dispatched,
}

#[derive(Clone)]
pub struct RuleEvaluator {
    pub rules: Arc<dyn RuleSource>,
    pub events: Arc<dyn EventStore>,
    pub state: Arc<dyn RuleState>,
    pub dispatcher: AlertDispatcher,
}

impl RuleEvaluator {
    /// Runs every enabled `first` and `window` rule the event triggers. (`absence` rules are
    /// scheduled by [`crate::processing::EventPipeline`] and run from the delay queue.) Safe to
    /// repeat for the same event: claims are keyed by the event, and the ledger refuses a second
    /// delivery.
    pub async fn evaluate(&self, event: &StoredEvent) -> Result<Vec<RuleOutcome>, DispatchError> {
        let view = event.view();
        let mut outcomes = Vec::new();
        let rules = self.rules.current().await?;
        for rule in rules.triggered_by(&view) {
            let alert = match &rule.condition {
                Condition::Absence(_) => continue,
                Condition::First => {
                    if !self
                        .state
                        .claim_first(&rule.id, event.user, &event.id)
                        .await?
                    {
                        continue;
                    }
                    Alert::new(
                        rule,
                        AlertId::first(&rule.id, event.user),
                        event.user,
                        vec![event.id.clone()],
                        rule.render_message(event, None),
                        event.received_at,
                    )
                }
                Condition::Window(window) => {
                    let from = event
                        .received_at
                        .minus_seconds(u64::from(window.seconds.get()))
                        .plus_one();
                    let in_window = self
                        .events
                        .received_between(event.user, from, event.received_at)
                        .await?;
                    let views: Vec<_> = in_window.iter().map(StoredEvent::view).collect();
                    let totals = window.totals(&rule.when, views.iter());
                    if !window.is_met(&totals) {
                        continue;
                    }
                    let until = event
                        .received_at
                        .plus_seconds(u64::from(window.cooldown_seconds));
                    if !self
                        .state
                        .claim_cooldown(&rule.id, event.user, &event.id, event.received_at, until)
                        .await?
                    {
                        continue;
                    }
                    let event_ids = in_window
                        .iter()
                        .zip(&views)
                        .filter(|(_, v)| rule.when.matches(v))
                        .map(|(e, _)| e.id.clone())
                        .collect();
                    Alert::new(
                        rule,
                        AlertId::for_trigger(&rule.id, event.user, &event.id),
                        event.user,
                        event_ids,
                        rule.render_message(event, Some(&totals)),
                        event.received_at,
                    )
                }
            };
            let dispatched = self.dispatcher.dispatch(&alert).await?;
            outcomes.push(RuleOutcome {
                rule_id: rule.id.clone(),
                dispatched,
            });
        }
        Ok(outcomes)
    }
}
