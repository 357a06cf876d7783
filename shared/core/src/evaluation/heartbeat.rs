//! Heartbeat rules: "no event matching `when`, from anyone, for `seconds`". No event can fire
//! one (its absence is the point), so they are decided on a clock: the sweeper looks at each
//! enabled heartbeat rule every minute ([`HeartbeatWatch`]). The stream consumer keeps, per rule,
//! when a matching event was last seen ([`HeartbeatSightings`], written at most ten times per
//! `seconds` per function instance, so a busy rule costs a write now and then, not one per
//! event). A silence fires one operator alert; when matching traffic is back, one more says it
//! is resolved. Both alerts are keyed by the silence (when it began), so a repeated sweep finds
//! them in the ledger and sends nothing twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::delivery::alert::{Alert, AlertId};
use crate::delivery::alerting::{AlertDispatcher, Dispatched};
use crate::evaluation::decision::BeatStep;
use crate::evaluation::ports::RuleState;
use crate::evaluation::source::RuleSource;
use crate::model::clock::Clock;
use crate::model::domain::{Millis, UserId};
use crate::model::ports::{ErrorChain, PortError};
use crate::rules::{Condition, HeartbeatCondition, Rule, RuleId, Translations};

/// Keeps, per heartbeat rule, when a matching event was last seen, for the stream consumer:
/// written when an event is a sighting step later than the last this instance wrote.
pub struct HeartbeatSightings {
    state: Arc<dyn RuleState>,
    written: Mutex<HashMap<RuleId, Millis>>,
}

impl HeartbeatSightings {
    pub fn new(state: Arc<dyn RuleState>) -> Self {
        HeartbeatSightings {
            state,
            written: Mutex::default(),
        }
    }

    /// Notes that an event received `at` matched `rule` (a heartbeat rule).
    pub async fn saw(
        &self,
        rule: &RuleId,
        heartbeat: &HeartbeatCondition,
        at: Millis,
    ) -> Result<(), PortError> {
        let due = {
            let written = self.written.lock().unwrap_or_else(|e| e.into_inner());
            written
                .get(rule)
                .is_none_or(|last| at.0 >= last.0 + heartbeat.sighting_step_ms())
        };
        if !due {
            return Ok(());
        }
        self.state.heartbeat_seen(rule, at).await?;
        let mut written = self.written.lock().unwrap_or_else(|e| e.into_inner());
        let last = written.entry(rule.clone()).or_insert(at);
        *last = (*last).max(at);
        Ok(())
    }
}

/// What one look at the heartbeat rules did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HeartbeatReport {
    /// Heartbeat rules looked at.
    pub watched: usize,
    /// Silences told now.
    pub fired: usize,
    /// Reminders of silences that last, sent now.
    pub reminded: usize,
    /// Silences that ended, told now.
    pub resolved: usize,
}

/// Decides the heartbeat rules on the sweeper's clock.
#[derive(Clone)]
pub struct HeartbeatWatch {
    pub rules: Arc<RuleSource>,
    pub state: Arc<dyn RuleState>,
    pub dispatcher: AlertDispatcher,
    pub clock: Arc<dyn Clock>,
}

impl HeartbeatWatch {
    /// Looks at every enabled heartbeat rule once. A rule whose look fails is logged and left
    /// to the next sweep; the others go on.
    pub async fn look(&self) -> Result<HeartbeatReport, PortError> {
        let rules = self.rules.current().await?;
        let mut report = HeartbeatReport::default();
        for rule in rules.all().iter().filter(|r| r.enabled) {
            let Condition::Heartbeat(heartbeat) = &rule.condition else {
                continue;
            };
            report.watched += 1;
            match self.look_at(rule, heartbeat).await {
                Ok(BeatStep::Fire { .. }) => report.fired += 1,
                Ok(BeatStep::Remind { .. }) => report.reminded += 1,
                Ok(BeatStep::Resolve { .. }) => report.resolved += 1,
                Ok(BeatStep::Nothing) => {}
                Err(error) => {
                    tracing::warn!(rule_id = %rule.id, error = %ErrorChain(&error), "heartbeat look failed");
                }
            }
        }
        Ok(report)
    }

    /// The alert goes first, the state after: a sweep that stops in between is finished by the
    /// next, whose alert the ledger already holds.
    async fn look_at(
        &self,
        rule: &Rule,
        heartbeat: &HeartbeatCondition,
    ) -> Result<BeatStep, PortError> {
        let now = self.clock.now();
        let beat = self
            .state
            .heartbeat(&rule.id, now)
            .await?
            .watched_since(rule.saved_at);
        let step = heartbeat.step(beat, now);
        let (id, (text, translations), silent_since) = match step {
            BeatStep::Nothing => return Ok(step),
            BeatStep::Fire { since } => (
                AlertId::heartbeat_silent(&rule.id, since),
                rule.render_silence(heartbeat.seconds.get(), since),
                Some(since),
            ),
            // The rule's own text again, said to be a reminder (in every language it writes).
            BeatStep::Remind { since, n } => {
                let (text, translations) = rule.render_silence(heartbeat.seconds.get(), since);
                let again = |text: String| format!("Still silent (reminder {n}): {text}");
                (
                    AlertId::heartbeat_reminder(&rule.id, since, n),
                    (
                        again(text),
                        translations
                            .into_iter()
                            .map(|(locale, text)| (locale, again(text)))
                            .collect(),
                    ),
                    Some(since),
                )
            }
            BeatStep::Resolve { since } => (
                AlertId::heartbeat_back(&rule.id, since),
                (
                    format!(
                        "Resolved: rule {} sees matching events again (silent from {} until {})",
                        rule.id,
                        since.utc_text(),
                        beat.last_seen.utc_text()
                    ),
                    Translations::new(),
                ),
                None,
            ),
        };
        let alert = Alert {
            trace: None,
            id,
            rule_id: rule.id.clone(),
            user: UserId(0),
            event_ids: Vec::new(),
            action: rule.action,
            text,
            translations,
            fired_at: now,
        };
        let dispatched = self.dispatcher.dispatch(&alert).await?;
        if dispatched == Dispatched::InFlight {
            // Another sweep holds it: that one moves the state on.
            return Ok(BeatStep::Nothing);
        }
        if let BeatStep::Remind { .. } = step {
            // A reminder changes no state; one an earlier sweep sent is not counted again.
            return Ok(if dispatched.is_first() {
                step
            } else {
                BeatStep::Nothing
            });
        }
        self.state
            .set_heartbeat_silence(&rule.id, silent_since)
            .await?;
        Ok(step)
    }
}

#[cfg(test)]
mod tests {
    use crate::evaluation::decision::{Beat, BeatStep};
    use crate::model::domain::Millis;
    use crate::rules::HeartbeatCondition;

    #[test]
    fn a_heartbeat_rule_saved_after_its_last_sighting_is_watched_from_its_save() {
        let heartbeat = HeartbeatCondition {
            seconds: std::num::NonZeroU32::new(600).unwrap(),
            repeat_seconds: None,
        };
        let quiet = Beat {
            last_seen: Millis(0),
            silent_since: None,
        };
        // Switched back on an hour after its last sighting, looked at a minute later: not silent.
        let switched_on = Millis(3_600_000);
        let now = Millis(3_660_000);
        assert_eq!(
            heartbeat.step(quiet, now),
            BeatStep::Fire { since: Millis(0) }
        );
        assert_eq!(
            heartbeat.step(quiet.watched_since(Some(switched_on)), now),
            BeatStep::Nothing
        );
        // Silent for longer than the rule allows since then: told, from the save.
        assert_eq!(
            heartbeat.step(quiet.watched_since(Some(switched_on)), Millis(4_300_000)),
            BeatStep::Fire { since: switched_on }
        );
        // A firing rule keeps its silence: a save does not make it look resolved.
        let firing = Beat {
            last_seen: Millis(0),
            silent_since: Some(Millis(0)),
        };
        assert_eq!(firing.watched_since(Some(switched_on)), firing);
        assert_eq!(
            quiet.watched_since(None),
            quiet,
            "a shipped rule was never saved"
        );
    }
}
