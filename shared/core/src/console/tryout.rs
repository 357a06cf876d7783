//! Trying a rule out without storing or sending anything: the admin dry run. It reads what the
//! live engine would know (the user's recent events, the rule's state) and asks the same
//! decision ([`crate::evaluation::decision::decide`]).

use crate::evaluation::decision::{Decision, RuleMemory, Viewed, decide};
use crate::evaluation::ports::RuleState;
use crate::model::domain::StoredEvent;
use crate::model::ports::{EventStore, PortError};
use crate::rules::{Condition, Rule};

/// What `rule` would do if `event` (not stored) arrived now. A disabled rule is tried as if it
/// were enabled: the operator is asking what it would do.
pub async fn dry_run(
    rule: &Rule,
    event: &StoredEvent,
    events: &dyn EventStore,
    state: &dyn RuleState,
) -> Result<Decision, PortError> {
    let rule = Rule {
        enabled: true,
        ..rule.clone()
    };
    let trigger = Viewed::of(event);
    if !rule.when.matches(&trigger.view) {
        return Ok(decide(&rule, &trigger, &[], &RuleMemory::default()));
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
