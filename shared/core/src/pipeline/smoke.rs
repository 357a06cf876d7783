//! A deployment's smoke test: one synthetic event of a reserved user
//! ([`UserId::is_synthetic`]), stored through the events port, run through the pipeline of the
//! version under test against a fixed rule and schema (never the operators', which may change
//! at any time), and its alert recorded in the ledger and handed to [`NoOneNotified`]: nothing
//! reaches a phone or the operator topic. The rules function runs it when invoked with
//! `{"smoke_test": {"run": "<id>"}}`, which is what a deployment's pre-traffic check asks of the
//! new version before any traffic moves to it.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{Value, json};

use super::{EventPipeline, Processed};
use crate::delivery::alert::{AlertId, AlertStatus, OperatorMessage};
use crate::delivery::alerting::Dispatched;
use crate::delivery::ports::{AlertLedger, Notifier, PublishError};
use crate::evaluation::source::DocumentSource;
use crate::model::clock::Clock;
use crate::model::document::{DocumentSet, InvalidDocument};
use crate::model::domain::{
    Activity, EventBody, EventId, IdOrigin, PhoneNumber, ReceivedEvent, StoredEvent, UserId,
};
use crate::model::ports::{EventStore, PortError};
use crate::rules::{RuleId, RuleSet};
use crate::schemas::SchemaSet;

/// The smoke test's one rule: a first `cuba/smoke-test` event of a user alerts the operators.
pub const SMOKE_RULE: &str = "cuba-smoke-test";

fn smoke_rule() -> Value {
    json!({
        "id": SMOKE_RULE,
        "description": "A deployment's smoke test: recorded, never sent.",
        "when": {"noun": "cuba", "verb": "smoke-test"},
        "condition": {"type": "first"},
        "action": {"type": "notify_operator", "severity": "info"},
        "message": "Cuba smoke test {{properties.run}} for user {{user}}",
    })
}

fn smoke_schema() -> Value {
    json!({
        "id": "cuba-smoke-test",
        "match": {"kind": "activity", "noun": "cuba", "verb": "smoke-test"},
        "schema": {
            "type": "object",
            "required": ["run"],
            "properties": {"run": {"type": "string", "minLength": 1}},
            "additionalProperties": false,
        },
    })
}

fn smoke_rule_id() -> RuleId {
    // A constant id, checked by the unit test that parses the smoke rule.
    RuleId::parse(SMOKE_RULE).unwrap_or_else(|_| unreachable!("{SMOKE_RULE} is a valid rule id"))
}

/// A set that never changes.
pub struct FixedDocuments<S>(Arc<S>);

impl<S: DocumentSet> FixedDocuments<S> {
    /// The set `documents` make, each read as version 1.
    pub fn parse(documents: &[Value]) -> Result<Self, InvalidDocument> {
        let parsed = documents
            .iter()
            .map(|document| S::parse(document, 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FixedDocuments(Arc::new(S::assemble(parsed))))
    }
}

#[async_trait]
impl<S: DocumentSet> DocumentSource<S> for FixedDocuments<S> {
    async fn current(&self) -> Result<Arc<S>, PortError> {
        Ok(self.0.clone())
    }

    async fn fresh(&self) -> Result<Arc<S>, PortError> {
        Ok(self.0.clone())
    }
}

/// The smoke test's rules and schemas.
pub fn smoke_documents()
-> Result<(FixedDocuments<RuleSet>, FixedDocuments<SchemaSet>), InvalidDocument> {
    Ok((
        FixedDocuments::parse(&[smoke_rule()])?,
        FixedDocuments::parse(&[smoke_schema()])?,
    ))
}

/// Where the smoke test's alerts go: nowhere. Answers a message id of its own, so the ledger
/// records the alert as handed over, and the test sees the whole delivery path run.
pub struct NoOneNotified;

#[async_trait]
impl Notifier for NoOneNotified {
    async fn send_sms(&self, _phone: &PhoneNumber, _text: &str) -> Result<String, PublishError> {
        Ok("smoke-test (not sent)".to_owned())
    }

    async fn notify_operator(&self, _message: &OperatorMessage) -> Result<String, PublishError> {
        Ok("smoke-test (not sent)".to_owned())
    }
}

/// What a smoke run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmokeReport {
    pub passed: bool,
    pub run: String,
    pub user: UserId,
    pub event_id: EventId,
    pub alert_id: AlertId,
    /// The alert's status in the ledger, when it got there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_status: Option<AlertStatus>,
    /// The step that failed, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// The smoke test over a pipeline built with [`smoke_documents`] and a dispatcher whose
/// notifier is [`NoOneNotified`].
pub struct SmokeTest {
    pub pipeline: EventPipeline,
    pub events: Arc<dyn EventStore>,
    pub ledger: Arc<dyn AlertLedger>,
    pub clock: Arc<dyn Clock>,
}

impl SmokeTest {
    /// Runs the test as run `run` (a deployment's id): the same run acts as the same reserved
    /// user, so a run repeated finds its alert already recorded and passes again.
    pub async fn run(&self, run: &str) -> SmokeReport {
        let user = UserId::synthetic(run);
        let now = self.clock.now();
        let event_id = EventId::minted_at(now);
        let mut report = SmokeReport {
            passed: false,
            run: run.to_owned(),
            user,
            event_id: event_id.clone(),
            alert_id: AlertId::first(&smoke_rule_id(), user),
            alert_status: None,
            failure: None,
        };
        match self.steps(&mut report, now).await {
            Ok(()) => report.passed = true,
            Err(failure) => report.failure = Some(failure),
        }
        report
    }

    async fn steps(
        &self,
        report: &mut SmokeReport,
        now: crate::model::domain::Millis,
    ) -> Result<(), String> {
        let mut properties = serde_json::Map::new();
        properties.insert("run".into(), Value::String(report.run.clone()));
        let received = ReceivedEvent {
            trace: None,
            event: StoredEvent {
                user: report.user,
                id: report.event_id.clone(),
                received_at: now,
                body: EventBody::Activity(Activity {
                    noun: "cuba".into(),
                    verb: "smoke-test".into(),
                    ts: None,
                    latlong: None,
                    time: None,
                    properties,
                }),
            },
            raw: String::new(),
            origin: IdOrigin::Minted,
        };
        self.events
            .insert(&received)
            .await
            .map_err(|e| format!("storing the event: {e}"))?;
        let processed = self
            .pipeline
            .process(&received)
            .await
            .map_err(|e| format!("evaluating the event: {e}"))?;
        let (matched, outcomes) = match processed {
            Processed::Valid {
                matched, outcomes, ..
            } => (matched, outcomes),
            Processed::Invalid(violations) => {
                return Err(format!(
                    "the event failed the smoke test's schema: {violations:?}"
                ));
            }
        };
        if !matched.iter().any(|rule| rule.as_str() == SMOKE_RULE) {
            return Err("the smoke test's rule did not match its event".to_owned());
        }
        // A repeated run (the same user) matches without firing: its first alert is recorded.
        let outcome = outcomes.iter().find(|o| o.rule_id.as_str() == SMOKE_RULE);
        if let Some(outcome) = outcome
            && matches!(
                outcome.dispatched,
                Dispatched::InFlight | Dispatched::Deferred { .. }
            )
        {
            return Err(format!(
                "the alert was not settled: {}",
                outcome.dispatched.counted_as()
            ));
        }
        let entry = self
            .ledger
            .entry(&report.alert_id)
            .await
            .map_err(|e| format!("reading the alert back: {e}"))?
            .ok_or("the alert is not in the ledger")?;
        report.alert_status = Some(entry.status);
        match entry.status {
            // Handed to no one, held back by an operator's silence of every rule, or over the
            // operator cap (`OperatorAlertsPerRulePerHour` counts the smoke rule's alerts too:
            // a small cap and a second deployment within the hour must not fail the check).
            AlertStatus::Sent | AlertStatus::Silenced | AlertStatus::Suppressed => Ok(()),
            other => Err(format!("the alert was recorded as {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smoke_documents_parse_and_the_rule_id_is_valid() {
        let (rules, _schemas) = smoke_documents().expect("the smoke test's documents");
        assert_eq!(rules.0.all().len(), 1);
        assert_eq!(smoke_rule_id().as_str(), SMOKE_RULE);
    }

    #[test]
    fn a_run_is_one_synthetic_user_and_runs_differ() {
        let user = UserId::synthetic("d-1");
        assert!(user.is_synthetic());
        assert_eq!(user, UserId::synthetic("d-1"));
        assert_ne!(user, UserId::synthetic("d-2"));
        assert!(UserId::synthetic("").is_synthetic());
        assert!(!UserId(1).is_synthetic());
        assert!(!UserId(u64::MAX).is_synthetic());
        assert!(
            *UserId::SYNTHETIC.end() < 1 << 53,
            "JavaScript reads them exactly"
        );
    }
}
