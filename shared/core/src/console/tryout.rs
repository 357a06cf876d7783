//! Trying a rule out without storing or sending anything: the admin dry run. It reads what the
//! live engine would know (the user's recent events, the rule's state) and asks the same
//! decision ([`crate::evaluation::decision::decide`]).

use crate::evaluation::decision::{
    Decision, Firing, Quiet, RuleMemory, StateClaim, Viewed, decide,
};
use crate::evaluation::group_window::{GroupContribution, fired_alert};
use crate::evaluation::ports::{GroupWindows, RuleState};
use crate::model::domain::StoredEvent;
use crate::model::ports::{EventStore, PortError};
use crate::rules::{Condition, GroupBy, Rule, WindowCondition};

/// What `rule` would do if `event` (not stored) arrived now. A disabled rule is tried as if it
/// were enabled: the operator is asking what it would do.
pub async fn dry_run(
    rule: &Rule,
    event: &StoredEvent,
    events: &dyn EventStore,
    state: &dyn RuleState,
    groups: &dyn GroupWindows,
) -> Result<Decision, PortError> {
    let rule = Rule {
        enabled: true,
        ..rule.clone()
    };
    let trigger = Viewed::of(event);
    if !rule.when.matches(&trigger.view) {
        return Ok(decide(&rule, &trigger, &[], &RuleMemory::default()));
    }
    if let Condition::Window(window) = &rule.condition
        && window.group_by != GroupBy::User
    {
        return group_dry_run(&rule, window, event, &trigger, groups).await;
    }
    let (recent, memory) = match &rule.condition {
        Condition::First => (
            Vec::new(),
            RuleMemory {
                first_holder: state.first_holder(&rule.id, event.user).await?,
                cooldown_until: None,
            },
        ),
        Condition::Window(window) => (
            events
                .received_between(
                    event.user,
                    window.starts_after(event.received_at).plus_one(),
                    event.received_at,
                )
                .await?,
            RuleMemory {
                first_holder: None,
                cooldown_until: state.cooldown(&rule.id, event.user).await?.map(|c| c.until),
            },
        ),
        Condition::Absence(_) | Condition::Heartbeat(_) => (Vec::new(), RuleMemory::default()),
    };
    Ok(decide(&rule, &trigger, &Viewed::all(&recent), &memory))
}

/// A window across users: its group's window as counted now, with the event added. (Whether
/// the group is cooling down from an earlier firing is not read: the live engine checks that
/// when it claims the firing.)
async fn group_dry_run(
    rule: &Rule,
    window: &WindowCondition,
    event: &StoredEvent,
    trigger: &Viewed<'_>,
    groups: &dyn GroupWindows,
) -> Result<Decision, PortError> {
    let Some(c) = GroupContribution::of(rule, &event.id, event.received_at, &trigger.view) else {
        return Ok(Decision::Quiet(Quiet::NoGroup {
            group_by: window.group_by.as_str().to_owned(),
        }));
    };
    let mut totals = groups
        .totals(&c.key, c.steps, c.steps.ending(event.received_at))
        .await?;
    totals.count = totals.count.saturating_add(1);
    totals.sum += c.amount;
    if let Some(d) = &c.distinct {
        let mut values = groups
            .values(&c.key, c.steps, c.steps.ending(event.received_at))
            .await?;
        values.insert(d.value.clone());
        totals.distinct = u32::try_from(values.len()).unwrap_or(u32::MAX);
    }
    if window.threshold.at_most().is_some() {
        return Ok(Decision::Quiet(Quiet::DecidedOnTheClock { totals }));
    }
    if !window.is_met(&totals) {
        return Ok(Decision::Quiet(Quiet::BelowThreshold(totals)));
    }
    let firing = groups.firing(&rule.id, window.definition).await?;
    if let Some((_, since)) = firing.iter().find(|(g, _)| *g == c.key.group) {
        return Ok(Decision::Quiet(Quiet::GroupFiring {
            group: c.key.group.clone(),
            since: *since,
            totals,
        }));
    }
    let alert = fired_alert(rule, &c.key.group, event.received_at, &totals);
    Ok(Decision::Fires(Firing {
        claim: StateClaim::None,
        alert_id: alert.id,
        trigger: event.id.clone(),
        event_ids: vec![event.id.clone()],
        totals: Some(totals),
        text: alert.text,
        fired_at: event.received_at,
    }))
}
