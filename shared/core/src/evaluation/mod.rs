//! Evaluating the rule set against one newly stored event (the stream consumer's job): read what
//! the decision needs, decide ([`crate::evaluation::decision::decide`]), then claim and dispatch.

pub mod batch_reads;
pub mod decision;
pub mod group_desk;
pub mod group_window;
pub mod heartbeat;
pub mod overflows;
pub mod ports;
pub mod source;
pub mod window;

use std::sync::Arc;

use crate::delivery::alert::Alert;
use crate::delivery::alerting::{AlertDispatcher, Dispatched};
use crate::evaluation::decision::{
    Cooldown, Decision, Firing, Gathered, StateClaim, Viewed, decide_triggered,
};
use crate::evaluation::ports::{RuleState, WindowStore};
use crate::evaluation::source::RuleSource;
use crate::evaluation::window::{WindowKey, WindowMember, WindowRead};
use crate::model::domain::{Millis, StoredEvent};
use crate::model::ports::{EventStore, PortError};
use crate::model::trace::TraceContext;
use crate::rules::{Action, Condition, GroupBy, Rule, RuleId, RuleSet, WindowCondition};

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
    /// [`crate::absence::scheduling::AbsenceChecker`].) In three steps: gather what every
    /// triggered rule needs, decide them all in one pure call ([`decide_triggered`]), then claim
    /// and dispatch what fires. Safe to repeat for the same event: buckets are keyed by the
    /// event, claims too (a redelivery of the winner wins again), and the ledger refuses a
    /// second delivery.
    pub async fn evaluate(&self, event: &StoredEvent) -> Result<Vec<RuleOutcome>, PortError> {
        let rules = self.rules.current().await?;
        let trigger = Viewed::of(event);
        let triggered: Vec<&Rule> = rules.triggered_by(&trigger.view).collect();
        self.evaluate_triggered(&rules, &trigger, &triggered, None)
            .await
    }

    /// [`Self::evaluate`] for an event already matched against `rules`: `triggered` are the
    /// rules it triggers. What fires is traced under `trace`, the trigger's request.
    pub async fn evaluate_triggered(
        &self,
        rules: &RuleSet,
        trigger: &Viewed<'_>,
        triggered: &[&Rule],
        trace: Option<&TraceContext>,
    ) -> Result<Vec<RuleOutcome>, PortError> {
        let event = trigger.event;
        if let Some(windows) = &self.windows {
            for (rule, absence) in rules.expecting(&trigger.view) {
                let Some(owner) = absence.answered_in(event.user, &trigger.view) else {
                    continue;
                };
                let key = WindowKey::expecting(&rule.id, absence, owner);
                let member = WindowMember {
                    id: event.id.clone(),
                    received_at: event.received_at,
                    amount: 0.0,
                    value: None,
                };
                windows.record(&key, &member).await?;
            }
        }
        let mut gathered = Vec::new();
        for &rule in triggered {
            let state = match &rule.condition {
                // Scheduled by the pipeline; heartbeats are decided by the sweeper.
                Condition::Absence(_) | Condition::Heartbeat(_) => continue,
                // Windows across users are counted per batch ([`group_window`]).
                Condition::Window(window) if window.group_by != GroupBy::User => continue,
                Condition::First => Gathered::First,
                Condition::Window(window) => self.gather_window(rule, window, trigger).await?,
            };
            gathered.push((rule, state));
        }
        let firings: Vec<(&Rule, &StoredEvent, Firing)> = decide_triggered(trigger, &gathered)
            .into_iter()
            .filter_map(|(rule, event, decision)| match decision {
                Decision::Fires(firing) => Some((rule, event, firing)),
                _ => None,
            })
            .collect();
        // Nothing was read of the rules' state in advance: each claim checks it atomically,
        // which is what keeps two workers from both firing.
        let mut claimed = Vec::new();
        for (rule, event, firing) in firings {
            if self.claim(rule, event, firing.claim).await? {
                claimed.push((rule, event, firing));
            }
        }
        let mut outcomes = Vec::new();
        for (rule, event, firing) in claimed {
            let dispatched = self
                .dispatcher
                .dispatch(&alert_of(rule, event, firing).in_trace(trace))
                .await?;
            outcomes.push(RuleOutcome {
                rule_id: rule.id.clone(),
                action: rule.action,
                dispatched,
            });
        }
        Ok(outcomes)
    }

    /// Gathers what a window rule's decisions need: records the trigger in its window bucket,
    /// then reads back its window and the windows of the members received after it and less
    /// than a window later, from the buckets or, without them or past an overflow, from the
    /// user's events; and the later events whose windows the trigger completes.
    async fn gather_window(
        &self,
        rule: &Rule,
        window: &WindowCondition,
        trigger: &Viewed<'_>,
    ) -> Result<Gathered, PortError> {
        let event = trigger.event;
        if !rule.when.matches(&trigger.view) {
            return Ok(Gathered::NoMatch);
        }
        let joining = window.member_of(&event.id, event.received_at, &trigger.view);
        if let Some(windows) = &self.windows {
            let key = WindowKey::new(&rule.id, window, event.user);
            windows.record(&key, &joining).await?;
            let read = windows
                .buckets(&key, key.buckets_around(event.received_at))
                .await?;
            if let WindowRead::Members(members) = read {
                let mut later = Vec::new();
                for member in window.completed_by(&joining, &members) {
                    if let Some(stored) = self
                        .events
                        .get_received(event.user, &member.id, member.received_at)
                        .await?
                    {
                        later.push(stored.event);
                    }
                }
                return Ok(Gathered::Window { members, later });
            }
        }
        if let Some(until) = self.cooling_past(rule, window, event).await? {
            return Ok(Gathered::CoolingDown { until });
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
        let members: Vec<WindowMember> = recent
            .iter()
            .map(Viewed::of)
            .filter(|v| rule.when.matches(&v.view))
            .map(|v| window.member_of(&v.event.id, v.event.received_at, &v.view))
            .collect();
        let later = window
            .completed_by(&joining, &members)
            .into_iter()
            .filter_map(|member| recent.iter().find(|e| e.id == member.id).cloned())
            .collect();
        Ok(Gathered::Window { members, later })
    }

    /// Before an overflowed window is read from the user's events: when the rule cools down for
    /// the user past every decision this gather serves (the trigger's, and those of the later
    /// events it may complete, all less than a window after it), none of them can fire, and the
    /// read is skipped. A user who overflows a bucket sends more than it holds within one
    /// window, so such a rule has usually fired and is cooling down: this is what keeps a heavy
    /// user's records cheap. Never skipped when the cooldown was started by the trigger or by
    /// an event this gather may decide (received less than a window after the trigger), or
    /// when its start is unknown: a retry of the record that claimed it must be able to finish
    /// its alert. (Without buckets, the scan is the reference the buckets are tested against,
    /// and runs as it always did.)
    async fn cooling_past(
        &self,
        rule: &Rule,
        window: &WindowCondition,
        event: &StoredEvent,
    ) -> Result<Option<Millis>, PortError> {
        if self.windows.is_none() || window.cooldown_seconds == 0 {
            return Ok(None);
        }
        let served_until = event
            .received_at
            .plus_millis(u64::from(window.seconds.get()) * 1000);
        Ok(match self.state.cooldown(&rule.id, event.user).await? {
            Some(Cooldown {
                until,
                started_by,
                started_at: Some(started_at),
            }) if until > served_until
                && started_by != event.id
                && !(event.received_at..=served_until).contains(&started_at) =>
            {
                Some(until)
            }
            _ => None,
        })
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
    // The firing's text is the default language's; the other languages are filled from the
    // same trigger and totals.
    let translations = rule.render_translations(trigger, firing.totals.as_ref());
    Alert::new(
        rule,
        firing.alert_id,
        trigger.user,
        firing.event_ids,
        (firing.text, translations),
        firing.fired_at,
    )
}
