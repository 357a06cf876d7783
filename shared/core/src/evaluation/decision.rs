//! Whether and how a rule fires for a trigger: one pure function, [`decide`], that live
//! evaluation, the admin dry run and the backtest all call, so a change to window, cooldown or
//! first-occurrence semantics is one edit. Absence rules are decided twice: when the trigger
//! arrives (a check falls due later) and when the check runs ([`decide_absence`]).
//!
//! The decision reads only values: the rule, the trigger, the user's recent events and what is
//! known of the rule's state for that user. It returns the claim the caller must win before the
//! alert goes out; live evaluation makes that claim atomically in the rule-state store (so two
//! workers, or a redelivery, never both fire), while the backtest applies it to its own memory.

use crate::delivery::alert::AlertId;
use crate::evaluation::window::WindowMember;
use crate::model::domain::{EventId, Millis, StoredEvent};
use crate::rules::{AbsenceCondition, Condition, GroupKey, HeartbeatCondition, Rule, WindowTotals};

/// What is known of a rule's state for one user. Live evaluation knows nothing in advance (its
/// claims check the state atomically); the dry run reads the store; the backtest simulates it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleMemory {
    /// The event that holds the rule's first-occurrence marker.
    pub first_holder: Option<EventId>,
    /// When the rule's cooldown ends (it may be in the past).
    pub cooldown_until: Option<Millis>,
}

/// The state a firing takes: only one trigger can win it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateClaim {
    /// The rule's first-occurrence marker for the user.
    First,
    /// The rule's cooldown for the user, from the trigger's receive time until `until`.
    Cooldown { until: Millis },
    /// Nothing to claim: the alert ledger's key alone keeps the alert single (absence rules).
    None,
}

impl RuleMemory {
    /// The memory after `trigger` won `claim`.
    pub fn apply(&mut self, claim: StateClaim, trigger: &EventId) {
        match claim {
            StateClaim::First => self.first_holder = Some(trigger.clone()),
            StateClaim::Cooldown { until } => self.cooldown_until = Some(until),
            StateClaim::None => {}
        }
    }
}

/// An alert the rule fires, once its claim is won.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    pub claim: StateClaim,
    pub alert_id: AlertId,
    pub trigger: EventId,
    /// The events that made the alert: the trigger, or every matching event in the window.
    pub event_ids: Vec<EventId>,
    pub totals: Option<WindowTotals>,
    pub text: String,
    pub fired_at: Millis,
}

/// Why a triggered rule stays quiet.
#[derive(Debug, Clone, PartialEq)]
pub enum Quiet {
    /// The trigger does not match the rule's `when`.
    NoMatch,
    /// The rule is disabled.
    Disabled,
    /// A `first` rule already fired for this user, for this event.
    AlreadyHadFirst(EventId),
    /// The window's events do not reach the threshold.
    BelowThreshold(WindowTotals),
    /// The threshold is reached, but the rule fired recently and is cooling down until then.
    CoolingDown { totals: WindowTotals, until: Millis },
    /// A heartbeat rule: the event keeps it from firing until `silent_after` (heartbeats are
    /// decided on a clock, not by events).
    KeepsHeartbeat { silent_after: Millis },
    /// A window across users: the event names no group (it lacks the `group_by` field).
    NoGroup { group_by: String },
    /// A window across users: the threshold is reached, and the group fires already (since
    /// then); it is told once until resolved.
    GroupFiring {
        group: GroupKey,
        since: Millis,
        totals: WindowTotals,
    },
    /// A drop in the fleet's volume (`count_at_most`): decided each minute by the sweeper, not
    /// by an event; the window would hold these totals with the event.
    DecidedOnTheClock { totals: WindowTotals },
    /// The rule cools down until then, past every decision the window could serve, so its
    /// window was not read (an overflowed window is read from the user's events, which for a
    /// user sending thousands is the costliest read there is).
    CoolingDownUnread { until: Millis },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Fires(Firing),
    Quiet(Quiet),
    /// An absence rule: a check falls due then, and fires unless the expected event came.
    SchedulesCheck {
        due_at: Millis,
    },
}

/// A rule's cooldown for a user: until when, and which event's firing started it (a redelivery
/// of that event must still be able to finish its alert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cooldown {
    pub until: Millis,
    pub started_by: EventId,
    /// The starting event's receive time (unknown for a cooldown stored before it was kept).
    pub started_at: Option<Millis>,
}

/// What is known of a heartbeat rule's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Beat {
    /// When a matching event was last seen (or, before any, when the rule was first watched).
    pub last_seen: Millis,
    /// While the rule is firing: when the silence it fired for began (its `last_seen` then).
    pub silent_since: Option<Millis>,
}

impl Beat {
    /// The beat of a rule last saved (enabled, edited) at `saved_at`: sightings are kept only
    /// while a rule is enabled, so a quiet rule is watched from its save at the earliest, and a
    /// rule switched back on after a day is not told silent since the day before. A rule firing
    /// keeps its silence until traffic returns.
    pub fn watched_since(self, saved_at: Option<Millis>) -> Beat {
        match (self.silent_since, saved_at) {
            (None, Some(saved)) => Beat {
                last_seen: self.last_seen.max(saved),
                ..self
            },
            _ => self,
        }
    }
}

/// What a look at a heartbeat rule calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeatStep {
    Nothing,
    /// Silent for longer than the rule allows since `since`: fire.
    Fire {
        since: Millis,
    },
    /// Still silent since `since`: remind ops (reminder `n`).
    Remind {
        since: Millis,
        n: u32,
    },
    /// Matching traffic came back after the silence that began `since`: say it is over.
    Resolve {
        since: Millis,
    },
}

impl HeartbeatCondition {
    /// What the rule's beat calls for at `now`. A silence is told once (and reminded of every
    /// `repeat_seconds` while it lasts); one that ended is resolved before a new one can fire.
    pub fn step(&self, beat: Beat, now: Millis) -> BeatStep {
        match beat.silent_since {
            None if self.is_silent(beat.last_seen, now) => BeatStep::Fire {
                since: beat.last_seen,
            },
            Some(since) if beat.last_seen > since => BeatStep::Resolve { since },
            Some(since) => match self.reminder(since, now) {
                Some(n) => BeatStep::Remind { since, n },
                None => BeatStep::Nothing,
            },
            None => BeatStep::Nothing,
        }
    }

    /// How far apart one function instance writes a rule's sightings: a tenth of its
    /// `seconds`, so the kept sighting is never more than that behind the last event.
    pub fn sighting_step_ms(&self) -> u64 {
        (u64::from(self.seconds.get()) * 100).max(1_000)
    }
}

/// An event with its view (the JSON document rules address), computed once: a backtest decides
/// thousands of triggers over overlapping windows, and must not rebuild each view every time.
#[derive(Debug, Clone, PartialEq)]
pub struct Viewed<'a> {
    pub event: &'a StoredEvent,
    pub view: serde_json::Value,
}

impl<'a> Viewed<'a> {
    pub fn of(event: &'a StoredEvent) -> Self {
        Viewed {
            event,
            view: event.view(),
        }
    }

    /// Every event of `events`, viewed.
    pub fn all(events: &'a [StoredEvent]) -> Vec<Viewed<'a>> {
        events.iter().map(Viewed::of).collect()
    }
}

/// Decides `rule` for `trigger`. `recent` holds the trigger's user's events received up to the
/// trigger (any superset is fine: events of other users, outside the window or not matching
/// `when` are ignored, and the trigger counts once whether it is in `recent` or not); it matters
/// only for window rules.
pub fn decide(
    rule: &Rule,
    trigger: &Viewed<'_>,
    recent: &[Viewed<'_>],
    memory: &RuleMemory,
) -> Decision {
    decide_from(rule, trigger, Recent::Events(recent), memory)
}

/// Decides `rule` for `trigger` as [`decide`] does, with a window rule's members read from its
/// window buckets ([`crate::evaluation::window`]) instead of from the user's events: `members` may hold any
/// superset of the window (the trigger included or not).
pub fn decide_with_members(
    rule: &Rule,
    trigger: &Viewed<'_>,
    members: &[WindowMember],
    memory: &RuleMemory,
) -> Decision {
    decide_from(rule, trigger, Recent::Members(members), memory)
}

/// What a window is counted from.
enum Recent<'a, 'v> {
    Events(&'a [Viewed<'v>]),
    Members(&'a [WindowMember]),
}

fn decide_from(
    rule: &Rule,
    trigger: &Viewed<'_>,
    recent: Recent<'_, '_>,
    memory: &RuleMemory,
) -> Decision {
    let event = trigger.event;
    if !rule.enabled {
        return Decision::Quiet(Quiet::Disabled);
    }
    if !rule.when.matches(&trigger.view) {
        return Decision::Quiet(Quiet::NoMatch);
    }
    let at = event.received_at;
    match &rule.condition {
        Condition::First => match &memory.first_holder {
            Some(holder) if *holder != event.id => {
                Decision::Quiet(Quiet::AlreadyHadFirst(holder.clone()))
            }
            _ => Decision::Fires(Firing {
                claim: StateClaim::First,
                alert_id: AlertId::first(&rule.id, event.user),
                trigger: event.id.clone(),
                event_ids: vec![event.id.clone()],
                totals: None,
                text: rule.render_message(event, None),
                fired_at: at,
            }),
        },
        Condition::Window(window) => {
            let last = window.member_of(&event.id, at, &trigger.view);
            let members = match recent {
                Recent::Events(views) => window.members_ending(
                    &last,
                    views
                        .iter()
                        .filter(|v| v.event.user == event.user && rule.when.matches(&v.view))
                        .map(|v| window.member_of(&v.event.id, v.event.received_at, &v.view)),
                ),
                Recent::Members(members) => window.members_ending(&last, members.iter().cloned()),
            };
            let totals = crate::evaluation::window::tally(&members);
            if !window.is_met(&totals) {
                return Decision::Quiet(Quiet::BelowThreshold(totals));
            }
            if let Some(until) = memory.cooldown_until.filter(|until| *until > at) {
                return Decision::Quiet(Quiet::CoolingDown { totals, until });
            }
            Decision::Fires(Firing {
                claim: StateClaim::Cooldown {
                    until: at.plus_seconds(u64::from(window.cooldown_seconds)),
                },
                alert_id: AlertId::for_trigger(&rule.id, event.user, &event.id),
                trigger: event.id.clone(),
                event_ids: members.into_iter().map(|m| m.id).collect(),
                totals: Some(totals),
                text: rule.render_message(event, Some(&totals)),
                fired_at: at,
            })
        }
        Condition::Absence(absence) => Decision::SchedulesCheck {
            due_at: absence.due_at(at),
        },
        Condition::Heartbeat(heartbeat) => Decision::Quiet(Quiet::KeepsHeartbeat {
            silent_after: at.plus_seconds(u64::from(heartbeat.seconds.get())),
        }),
    }
}

/// What a triggered rule's decision needs, as the evaluator gathered it from the stores.
#[derive(Debug, Clone, PartialEq)]
pub enum Gathered {
    /// A `first` rule: nothing is read in advance, its claim checks its state atomically.
    First,
    /// A window rule whose `when` the trigger does not match.
    NoMatch,
    /// A window rule: the members of the trigger's window and of the windows after it (any
    /// superset, from the window buckets or a scan of the user's events), and the stored events
    /// received after the trigger whose windows it completes
    /// ([`WindowCondition::completed_by`](crate::rules::WindowCondition::completed_by)): they
    /// reached the stream before it (one user's requests racing) and were decided without it.
    Window {
        members: Vec<WindowMember>,
        later: Vec<StoredEvent>,
    },
    /// A window rule cooling down until then, started by another event, past the trigger and
    /// every event its window could complete: nothing to read, nothing can fire.
    CoolingDown { until: Millis },
}

/// Decides every rule `trigger` set off, from what was gathered for each: a rule's decision for
/// the trigger, then for a window rule those of the later events the trigger completes. Pure,
/// and the only place live evaluation decides: the evaluator gathers before and claims and
/// dispatches after.
pub fn decide_triggered<'r, 'e>(
    trigger: &Viewed<'e>,
    gathered: &'e [(&'r Rule, Gathered)],
) -> Vec<(&'r Rule, &'e StoredEvent, Decision)> {
    let memory = RuleMemory::default();
    let mut decided = Vec::new();
    for (rule, state) in gathered {
        match state {
            Gathered::First => {
                decided.push((*rule, trigger.event, decide(rule, trigger, &[], &memory)));
            }
            Gathered::NoMatch => {
                decided.push((*rule, trigger.event, Decision::Quiet(Quiet::NoMatch)));
            }
            Gathered::CoolingDown { until } => {
                let quiet = Quiet::CoolingDownUnread { until: *until };
                decided.push((*rule, trigger.event, Decision::Quiet(quiet)));
            }
            Gathered::Window { members, later } => {
                decided.push((
                    *rule,
                    trigger.event,
                    decide_with_members(rule, trigger, members, &memory),
                ));
                for event in later {
                    let decision = decide_with_members(rule, &Viewed::of(event), members, &memory);
                    decided.push((*rule, event, decision));
                }
            }
        }
    }
    decided
}

/// What an absence check found when it fell due.
#[derive(Debug, Clone, PartialEq)]
pub enum AbsenceDecision {
    /// The expected event arrived in time.
    Satisfied {
        by: EventId,
    },
    /// Nothing arrived, but the rule fired for this user recently and cools down until then.
    CoolingDown {
        until: Millis,
    },
    Fires(Firing),
}

/// Decides an absence rule's check for `trigger`, due at `due` (as scheduled): `after` holds the
/// events received from the trigger until then that could answer it (the user's, or for a rule
/// grouped across users everyone's; a superset is fine); `at` is when the
/// alert fires. A rule with a cooldown measures it between due times, so the answer does not
/// depend on how late the queue delivered the check. Returns `None` when `rule` is not an
/// absence rule.
pub fn decide_absence(
    rule: &Rule,
    trigger: &StoredEvent,
    after: &[Viewed<'_>],
    due: Millis,
    at: Millis,
    memory: &RuleMemory,
) -> Option<AbsenceDecision> {
    let Condition::Absence(absence) = &rule.condition else {
        return None;
    };
    let trigger_view = trigger.view();
    let answer = after
        .iter()
        .find(|v| {
            let e = v.event;
            absence.answers_for(trigger, &trigger_view, e.user, &v.view)
                && answers(trigger, &e.id, e.received_at, due)
                && absence.expect.matches(&v.view)
        })
        .map(|v| v.event.id.clone());
    Some(decide_answered(
        rule, absence, trigger, answer, due, at, memory,
    ))
}

/// [`decide_absence`] over the members of the rule's expectation buckets ([`crate::evaluation::window`]):
/// the user's events that matched `expect` (a superset of the span is fine).
pub fn decide_absence_with_members(
    rule: &Rule,
    trigger: &StoredEvent,
    members: &[WindowMember],
    due: Millis,
    at: Millis,
    memory: &RuleMemory,
) -> Option<AbsenceDecision> {
    let Condition::Absence(absence) = &rule.condition else {
        return None;
    };
    let answer = members
        .iter()
        .filter(|m| answers(trigger, &m.id, m.received_at, due))
        .min_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)))
        .map(|m| m.id.clone());
    Some(decide_answered(
        rule, absence, trigger, answer, due, at, memory,
    ))
}

/// Whether an expected event `id` received `at` answers the check of `trigger` due `due`.
fn answers(trigger: &StoredEvent, id: &EventId, at: Millis, due: Millis) -> bool {
    *id != trigger.id && at >= trigger.received_at && at <= due
}

fn decide_answered(
    rule: &Rule,
    absence: &AbsenceCondition,
    trigger: &StoredEvent,
    answer: Option<EventId>,
    due: Millis,
    at: Millis,
    memory: &RuleMemory,
) -> AbsenceDecision {
    if let Some(by) = answer {
        return AbsenceDecision::Satisfied { by };
    }
    let claim = match absence.cooldown_seconds {
        0 => StateClaim::None,
        seconds => {
            if let Some(until) = memory.cooldown_until.filter(|until| *until > due) {
                return AbsenceDecision::CoolingDown { until };
            }
            StateClaim::Cooldown {
                until: due.plus_seconds(u64::from(seconds)),
            }
        }
    };
    AbsenceDecision::Fires(Firing {
        claim,
        alert_id: AlertId::for_trigger(&rule.id, trigger.user, &trigger.id),
        trigger: trigger.id.clone(),
        event_ids: vec![trigger.id.clone()],
        totals: None,
        text: rule.render_message(trigger, None),
        fired_at: at,
    })
}

#[cfg(test)]
mod tests;
