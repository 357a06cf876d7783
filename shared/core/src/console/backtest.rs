//! Replaying stored events through one rule to see what it would have fired. Pure: it calls the
//! same decision as the live engine ([`crate::evaluation::decision::decide`]) and simulates the state the
//! live engine keeps in its rule-state store (first markers, cooldowns).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::evaluation::decision::{
    AbsenceDecision, Decision, Firing, RuleMemory, Viewed, decide, decide_absence,
};
use crate::evaluation::group_window::{GroupContribution, Steps, totals_over};
use crate::model::domain::{EventId, Millis, StoredEvent, UserId};
use crate::rules::{
    Condition, GroupBy, GroupKey, HeartbeatCondition, Rule, Translations, WindowCondition,
    WindowTotals,
};

/// An alert the rule would have fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WouldFire {
    pub user: UserId,
    pub trigger_event_id: EventId,
    /// When the live engine would have fired it: the trigger's receive time, or for an absence
    /// rule the moment its check fell due.
    pub fired_at: Millis,
    pub event_ids: Vec<EventId>,
    pub text: String,
    /// What the text was filled from, for the preview's other languages.
    #[serde(skip)]
    pub totals: Option<WindowTotals>,
}

/// Replays `events` (any users, any order) through `rule`. Triggers received in
/// `[from, to]` count; events outside that span only serve as context (an absence rule looks
/// past `to` for the expected event). Absence checks not yet due at `now` are left out. The
/// replay starts with no state: a `first` rule fires for the first matching event in the span.
pub fn replay(
    rule: &Rule,
    events: &[StoredEvent],
    from: Millis,
    to: Millis,
    now: Millis,
) -> Vec<WouldFire> {
    if let Condition::Heartbeat(heartbeat) = &rule.condition {
        return silences(rule, heartbeat, events, (from, to), now);
    }
    if let Condition::Absence(absence) = &rule.condition
        && absence.group_by != GroupBy::User
    {
        return group_absences(rule, events, (from, to), now);
    }
    if let Condition::Window(window) = &rule.condition
        && window.group_by != GroupBy::User
    {
        if window.threshold.at_most().is_some() {
            return drops(rule, window, events, (from, to), now);
        }
        return group_firings(rule, window, events, (from, to));
    }
    let mut by_user: BTreeMap<UserId, Vec<&StoredEvent>> = BTreeMap::new();
    for event in events {
        by_user.entry(event.user).or_default().push(event);
    }
    let mut fired = Vec::new();
    for (user, mut history) in by_user {
        history.sort_by(|a, b| (a.received_at, a.id.as_str()).cmp(&(b.received_at, b.id.as_str())));
        let history: Vec<Viewed<'_>> = history.into_iter().map(Viewed::of).collect();
        let mut memory = RuleMemory::default();
        // Events before `window_start` are older than any window still open: the span of
        // `recent` handed to the decision stays bounded by the window, not the history.
        let mut window_start = 0;
        for (i, trigger) in history.iter().enumerate() {
            let at = trigger.event.received_at;
            if at < from || at > to {
                continue;
            }
            if let Condition::Window(window) = &rule.condition {
                let opens_after = window.starts_after(at);
                while history[window_start].event.received_at <= opens_after {
                    window_start += 1;
                }
            }
            match decide(rule, trigger, &history[window_start..=i], &memory) {
                Decision::Fires(firing) => {
                    memory.apply(firing.claim, &trigger.event.id);
                    fired.push(would_fire(user, firing));
                }
                Decision::SchedulesCheck { due_at } if due_at <= now => {
                    let since = history.partition_point(|v| v.event.received_at < at);
                    if let Some(AbsenceDecision::Fires(firing)) = decide_absence(
                        rule,
                        trigger.event,
                        &history[since..],
                        due_at,
                        due_at,
                        &memory,
                    ) {
                        memory.apply(firing.claim, &trigger.event.id);
                        fired.push(would_fire(user, firing));
                    }
                }
                Decision::SchedulesCheck { .. } | Decision::Quiet(_) => {}
            }
        }
    }
    fired.sort_by_key(|f| (f.fired_at, f.user));
    fired
}

/// A window across users' firings: the events matching `when` that name a group, in the order
/// received, each deciding its group's window (its steps, as the live counters keep them) at
/// its own time; a group fires when met and neither firing nor cooling down, and is resolved
/// once a minute's look (the sweeper's) finds its window no longer met before the group's next
/// event. (Live, a group is decided at each batch's latest event: the same firings, or a
/// moment later.) The alert is about no user (user 0); its trigger is the event that made it.
fn group_firings(
    rule: &Rule,
    window: &WindowCondition,
    events: &[StoredEvent],
    (from, to): (Millis, Millis),
) -> Vec<WouldFire> {
    let steps = Steps::of(window);
    let members = contributions(rule, events);
    // Per group: each step's count and sum so far, when it began firing, when it last fired,
    // when its last event came.
    #[derive(Default)]
    struct Group {
        steps: BTreeMap<u64, (u64, f64)>,
        /// Each step's different values, kept as the store keeps them (up to `at_least`).
        values: BTreeMap<u64, std::collections::BTreeSet<String>>,
        firing: Option<Millis>,
        last_fired: Option<Millis>,
        last_event: Option<Millis>,
    }
    let totals_at = |group: &Group, at: Millis| {
        let range = steps.ending(at);
        let mut totals = totals_over(
            group
                .steps
                .range(range.clone())
                .map(|(step, (n, sum))| (*step, *n, *sum)),
            &range,
        );
        let values: std::collections::BTreeSet<&String> =
            group.values.range(range).flat_map(|(_, v)| v).collect();
        totals.distinct = u32::try_from(values.len()).unwrap_or(u32::MAX);
        totals
    };
    let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
    let mut fired = Vec::new();
    for (event, contribution) in members {
        let at = event.received_at;
        let group = groups.entry(contribution.key.group.clone()).or_default();
        // The sweeper looked every minute since the group's last event: between its events a
        // window only loses events, so the last look before this one says whether it ended.
        if group.firing.is_some() {
            let look = Millis(at.0 / 60_000 * 60_000);
            if group.last_event.is_some_and(|last| look > last)
                && !window.is_met(&totals_at(group, look))
            {
                group.firing = None;
            }
        }
        let counted = group.steps.entry(steps.step_of(at)).or_default();
        counted.0 += 1;
        counted.1 += contribution.amount;
        if let Some(d) = &contribution.distinct {
            let held = group.values.entry(steps.step_of(at)).or_default();
            if held.len() < d.keep as usize {
                held.insert(d.value.clone());
            }
        }
        group.last_event = Some(at);
        let totals = totals_at(group, at);
        let cooling = group
            .last_fired
            .is_some_and(|last| last > at.minus_seconds(u64::from(window.cooldown_seconds)));
        if group.firing.is_some() || cooling || !window.is_met(&totals) {
            continue;
        }
        group.firing = Some(at);
        group.last_fired = Some(at);
        if at < from || at > to {
            continue;
        }
        let (text, _) = rule.render_group(&contribution.key.group, &totals);
        fired.push(WouldFire {
            user: UserId(0),
            trigger_event_id: event.id.clone(),
            fired_at: at,
            event_ids: vec![event.id.clone()],
            text,
            totals: Some(totals),
        });
    }
    fired
}

/// An absence rule grouped across users: each trigger in the span (in the order received)
/// checked against every user's events from it to its due time (before `now`), the cooldown
/// kept per trigger's user as the live engine keeps it.
fn group_absences(
    rule: &Rule,
    events: &[StoredEvent],
    (from, to): (Millis, Millis),
    now: Millis,
) -> Vec<WouldFire> {
    let mut all: Vec<&StoredEvent> = events.iter().collect();
    all.sort_by(|a, b| (a.received_at, a.id.as_str()).cmp(&(b.received_at, b.id.as_str())));
    let views: Vec<Viewed<'_>> = all.into_iter().map(Viewed::of).collect();
    let mut memories: BTreeMap<UserId, RuleMemory> = BTreeMap::new();
    let mut fired = Vec::new();
    for (i, trigger) in views.iter().enumerate() {
        let at = trigger.event.received_at;
        if at < from || at > to {
            continue;
        }
        let memory = memories.entry(trigger.event.user).or_default();
        let Decision::SchedulesCheck { due_at } = decide(rule, trigger, &[], memory) else {
            continue;
        };
        if due_at > now {
            continue;
        }
        // What a check would be scheduled for: a trigger with its group's field.
        let Condition::Absence(absence) = &rule.condition else {
            continue;
        };
        if absence
            .answered_in(trigger.event.user, &trigger.view)
            .is_none()
        {
            continue;
        }
        let until = i + views[i..].partition_point(|v| v.event.received_at <= due_at);
        if let Some(AbsenceDecision::Fires(firing)) = decide_absence(
            rule,
            trigger.event,
            &views[i..until],
            due_at,
            due_at,
            memory,
        ) {
            memory.apply(firing.claim, &trigger.event.id);
            fired.push(would_fire(trigger.event.user, firing));
        }
    }
    fired.sort_by_key(|f| (f.fired_at, f.user));
    fired
}

/// A drop in volume (`count_at_most`): the sweeper's look each whole minute, for the fleet from
/// a window after `from` (for a field's groups, from each group's first event), to `to` (and
/// `now`), over the matching events, as the counters keep them;
/// fired when met and neither firing nor cooling down, resolved at the first look that finds
/// it no longer met. The alert is about no user (user 0); its trigger is the last matching event
/// before the look (a drop with none before it in the events read has no known start and is
/// not counted).
fn drops(
    rule: &Rule,
    window: &WindowCondition,
    events: &[StoredEvent],
    (from, to): (Millis, Millis),
    now: Millis,
) -> Vec<WouldFire> {
    let mut groups: BTreeMap<GroupKey, Vec<(&StoredEvent, f64)>> = BTreeMap::new();
    for (event, c) in contributions(rule, events) {
        groups
            .entry(c.key.group)
            .or_default()
            .push((event, c.amount));
    }
    let end = to.min(now);
    let mut fired = Vec::new();
    if window.group_by == GroupBy::All {
        let members = groups.remove(&GroupKey::stored("all")).unwrap_or_default();
        let first_look = from.plus_seconds(u64::from(window.seconds.get()));
        fired.extend(group_drops(
            rule,
            window,
            GroupKey::stored("all"),
            members,
            first_look,
            end,
        ));
    } else {
        // A field's group is watched once seen: its first looks find its first events.
        for (group, members) in groups {
            let seen = members
                .iter()
                .map(|(e, _)| e.received_at)
                .min()
                .unwrap_or(from);
            fired.extend(group_drops(
                rule,
                window,
                group,
                members,
                seen.max(from),
                end,
            ));
        }
    }
    fired.sort_by_key(|f| f.fired_at);
    fired
}

/// The events a window across users counts, with what each adds: those matching `when` that
/// name a group, in the order received, each once.
fn contributions<'e>(
    rule: &Rule,
    events: &'e [StoredEvent],
) -> Vec<(&'e StoredEvent, GroupContribution)> {
    let mut members: Vec<(&StoredEvent, GroupContribution)> = events
        .iter()
        .filter_map(|event| {
            let viewed = Viewed::of(event);
            if !rule.when.matches(&viewed.view) {
                return None;
            }
            GroupContribution::of(rule, &event.id, event.received_at, &viewed.view)
                .map(|c| (event, c))
        })
        .collect();
    members.sort_by(|a, b| {
        (a.0.received_at, a.0.id.as_str()).cmp(&(b.0.received_at, b.0.id.as_str()))
    });
    members.dedup_by(|a, b| a.0.id == b.0.id);
    members
}

/// One group's drops: the looks each whole minute from `first_look` to `end`, over its
/// members (in the order received, each once).
fn group_drops(
    rule: &Rule,
    window: &WindowCondition,
    group: GroupKey,
    members: Vec<(&StoredEvent, f64)>,
    first_look: Millis,
    end: Millis,
) -> Vec<WouldFire> {
    let steps = Steps::of(window);
    let at: Vec<u64> = members.iter().map(|(e, _)| e.received_at.0).collect();
    let mut fired = Vec::new();
    let mut firing = false;
    let mut last_fired: Option<Millis> = None;
    let mut look = Millis(first_look.0.div_ceil(60_000) * 60_000);
    while look <= end {
        let range = steps.ending(look);
        let start = range.start() * steps.step_ms;
        let (lo, hi) = (
            at.partition_point(|t| *t < start),
            at.partition_point(|t| *t <= look.0),
        );
        let totals = WindowTotals {
            count: u32::try_from(hi - lo).unwrap_or(u32::MAX),
            sum: members[lo..hi].iter().map(|(_, amount)| amount).sum(),
            distinct: 0,
        };
        let met = window.is_met(&totals);
        if firing && !met {
            firing = false;
        } else if !firing && met {
            let cooling = last_fired
                .is_some_and(|last| last > look.minus_seconds(u64::from(window.cooldown_seconds)));
            if let Some((last, _)) = members[..hi].last().filter(|_| !cooling) {
                firing = true;
                last_fired = Some(look);
                let (text, _) = rule.render_group(&group, &totals);
                fired.push(WouldFire {
                    user: UserId(0),
                    trigger_event_id: last.id.clone(),
                    fired_at: look,
                    event_ids: vec![last.id.clone()],
                    text,
                    totals: Some(totals),
                });
            }
        }
        look = look.plus_seconds(60);
    }
    fired
}

/// A heartbeat rule's silences: each gap between matching events (from anyone) longer than its
/// `seconds`, fired when it became one (`seconds` after the last event before it), if that falls
/// in `[from, to]` and before `now`. The alert is about no user (user 0); its trigger is the
/// last event before the silence. A silence with no event before it (none in the context read)
/// has no known start, so it is not counted. A rule that reminds adds each reminder due while
/// the silence still lasts.
fn silences(
    rule: &Rule,
    heartbeat: &HeartbeatCondition,
    events: &[StoredEvent],
    (from, to): (Millis, Millis),
    now: Millis,
) -> Vec<WouldFire> {
    let seconds = heartbeat.seconds.get();
    let mut matching: Vec<&StoredEvent> = events
        .iter()
        .filter(|e| rule.when.matches(&e.view()))
        .collect();
    matching.sort_by(|a, b| (a.received_at, a.id.as_str()).cmp(&(b.received_at, b.id.as_str())));
    let next_times = matching
        .iter()
        .skip(1)
        .map(|e| Some(e.received_at))
        .chain(std::iter::once(None));
    let mut told = Vec::new();
    for (last, next) in matching.iter().zip(next_times) {
        // The silence ends with the next matching event, or lasts to the span's end.
        let end = next.unwrap_or_else(|| now.min(to.plus_one()));
        if !heartbeat.is_silent(last.received_at, end) {
            continue;
        }
        let text = rule.render_silence(seconds, last.received_at).0;
        let mut tell = |fired_at: Millis, text: String| {
            if (from..=to).contains(&fired_at) && fired_at <= now {
                told.push(WouldFire {
                    user: UserId(0),
                    trigger_event_id: last.id.clone(),
                    fired_at,
                    event_ids: vec![last.id.clone()],
                    text,
                    totals: None,
                });
            }
        };
        tell(heartbeat.told_at(last.received_at), text.clone());
        // Its reminders, each due while the silence still lasts.
        for n in 1.. {
            match heartbeat.reminder_at(last.received_at, n) {
                Some(at) if at < end && at <= to => {
                    tell(at, format!("Still silent (reminder {n}): {text}"));
                }
                _ => break,
            }
        }
    }
    told
}

/// The rule's message as one real event in the span renders it: the newest alert it would have
/// fired, or else (so an operator sees the text before any threshold is reached) the newest
/// event matching `when`, with the window's totals at that event for a window rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessagePreview {
    pub user: UserId,
    pub event_id: EventId,
    pub received_at: Millis,
    /// Whether the rule would have fired on (or, for an absence rule, because of) this event.
    pub fires: bool,
    pub text: String,
    /// The text in each language the rule writes besides its default.
    #[serde(skip_serializing_if = "Translations::is_empty")]
    pub translations: Translations,
}

pub fn preview(
    rule: &Rule,
    events: &[StoredEvent],
    fired: &[WouldFire],
    from: Millis,
    to: Millis,
) -> Option<MessagePreview> {
    if let Some(alert) = fired.iter().max_by_key(|f| f.fired_at) {
        // A heartbeat's alert is about no user: its trigger is anyone's last event.
        let heartbeat = match &rule.condition {
            Condition::Heartbeat(h) => Some(h.seconds.get()),
            _ => None,
        };
        let trigger = events.iter().find(|e| {
            e.id == alert.trigger_event_id && (heartbeat.is_some() || e.user == alert.user)
        })?;
        let translations = match heartbeat {
            Some(seconds) => rule.render_silence(seconds, trigger.received_at).1,
            None => rule.render_translations(trigger, alert.totals.as_ref()),
        };
        return Some(MessagePreview {
            user: alert.user,
            event_id: trigger.id.clone(),
            received_at: trigger.received_at,
            fires: true,
            text: alert.text.clone(),
            translations,
        });
    }
    // Newest first, so only the events after the last match get a view built.
    let mut in_span: Vec<&StoredEvent> = events
        .iter()
        .filter(|e| (from..=to).contains(&e.received_at))
        .collect();
    in_span.sort_by(|a, b| (b.received_at, b.id.as_str()).cmp(&(a.received_at, a.id.as_str())));
    let (trigger, view) = in_span
        .into_iter()
        .map(|e| (e, e.view()))
        .find(|(_, view)| rule.when.matches(view))?;
    let totals = match &rule.condition {
        Condition::Window(window) => {
            let opens_after = window.starts_after(trigger.received_at);
            let views: Vec<_> = events
                .iter()
                .filter(|e| {
                    e.user == trigger.user
                        && e.received_at > opens_after
                        && e.received_at <= trigger.received_at
                })
                .map(StoredEvent::view)
                .collect();
            let mut totals = window.totals(&rule.when, views.iter());
            if totals.count == 0 {
                totals = window.tally([&view]);
            }
            Some(totals)
        }
        _ => None,
    };
    Some(MessagePreview {
        user: trigger.user,
        event_id: trigger.id.clone(),
        received_at: trigger.received_at,
        fires: false,
        text: rule.render_message(trigger, totals.as_ref()),
        translations: rule.render_translations(trigger, totals.as_ref()),
    })
}

fn would_fire(user: UserId, firing: Firing) -> WouldFire {
    WouldFire {
        user,
        trigger_event_id: firing.trigger,
        fired_at: firing.fired_at,
        event_ids: firing.event_ids,
        text: firing.text,
        totals: firing.totals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{feedback, paid, seed_rule};

    const FROM: Millis = Millis(0);
    const TO: Millis = Millis(u64::MAX / 2);
    const NOW: Millis = Millis(u64::MAX / 2);

    #[test]
    fn the_preview_is_the_newest_alert_or_else_the_newest_matching_event() {
        let rule = seed_rule(1);
        let events = [
            paid(1, "a", 0, 5000),
            paid(1, "b", 10, 6000),
            feedback(1, "c", 20),
        ];
        let fired = replay(&rule, &events, FROM, TO, NOW);
        assert!(fired.is_empty());
        let quiet = preview(&rule, &events, &fired, FROM, TO).unwrap();
        assert_eq!((quiet.event_id.as_str(), quiet.fires), ("b", false));
        assert_eq!(
            quiet.text,
            "Cube alert: 2 bill payments totalling 11000 in the last 5 minutes. Not you? Call us."
        );

        let burst: Vec<_> = (0..5)
            .map(|i| paid(2, &format!("p{i}"), i * 10, 5000))
            .collect();
        let fired = replay(&rule, &burst, FROM, TO, NOW);
        let firing = preview(&rule, &burst, &fired, FROM, TO).unwrap();
        assert_eq!((firing.event_id.as_str(), firing.fires), ("p4", true));
        assert_eq!(firing.text, fired[0].text);

        assert_eq!(preview(&rule, &[feedback(1, "f", 0)], &[], FROM, TO), None);
    }

    #[test]
    fn first_fires_once_per_user() {
        let events = [
            paid(1, "a", 0, 10),
            paid(1, "b", 5, 10),
            paid(2, "c", 7, 10),
            feedback(3, "d", 1),
        ];
        let fired = replay(&seed_rule(0), &events, FROM, TO, NOW);
        let got: Vec<_> = fired
            .iter()
            .map(|f| (f.user.0, f.trigger_event_id.as_str()))
            .collect();
        assert_eq!(got, [(1, "a"), (2, "c")]);
        assert_eq!(
            fired[0].text,
            "Thanks for your first bill payment on Cube: 10 for gas."
        );
    }

    #[test]
    fn window_fires_once_per_burst_and_again_after_the_cooldown() {
        let mut events: Vec<_> = (0..6)
            .map(|i| paid(1, &format!("p{i}"), i * 10, 5000))
            .collect();
        // Spread out: never five within five minutes.
        events.extend((0..5).map(|i| paid(2, &format!("q{i}"), i * 100, 5000)));
        // A second burst for user 1 after the cooldown.
        events.extend((0..5).map(|i| paid(1, &format!("r{i}"), 1000 + i, 5000)));
        let fired = replay(&seed_rule(1), &events, FROM, TO, NOW);
        let got: Vec<_> = fired
            .iter()
            .map(|f| (f.user.0, f.trigger_event_id.as_str()))
            .collect();
        assert_eq!(got, [(1, "p4"), (1, "r4")]);
        assert_eq!(fired[0].event_ids.len(), 5);
        assert!(fired[0].text.contains("5 bill payments totalling 25000"));
    }

    #[test]
    fn absence_fires_where_no_feedback_followed_in_time() {
        let events = [
            paid(1, "a", 0, 10),
            feedback(1, "f", 600),
            paid(2, "b", 0, 10),
            feedback(2, "g", 901),
            paid(3, "c", 0, 10),
        ];
        let fired = replay(&seed_rule(2), &events, FROM, TO, NOW);
        let got: Vec<_> = fired.iter().map(|f| (f.user.0, f.fired_at)).collect();
        assert_eq!(got, [(2, Millis(1_900_000)), (3, Millis(1_900_000))]);

        let not_yet_due = replay(&seed_rule(2), &events, FROM, TO, Millis(1_500_000));
        assert!(not_yet_due.is_empty());
    }

    #[test]
    fn only_triggers_inside_the_span_count() {
        let events = [paid(1, "early", 0, 10), paid(1, "inside", 100, 10)];
        let fired = replay(
            &seed_rule(0),
            &events,
            Millis(1_050_000),
            Millis(1_200_000),
            NOW,
        );
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].trigger_event_id.as_str(), "inside");
    }

    #[test]
    fn a_heartbeat_fires_once_for_each_silence_longer_than_its_seconds() {
        let rule = Rule::from_json(
            &serde_json::json!({"id": "payments-flowing", "when": {"kind": "activity", "noun": "bill"},
                "condition": {"type": "heartbeat", "seconds": 600},
                "action": {"type": "notify_operator", "severity": "critical"},
                "message": "no bill payment since {{heartbeat.last_seen}} ({{heartbeat.seconds}} s)"}),
            "$",
        )
        .unwrap();
        // Payments from several users every few minutes, then an hour's gap, then a gap that
        // runs to the end of the span; feedback never keeps a payment heartbeat alive.
        let events = [
            paid(1, "a", 0, 100),
            paid(2, "b", 300, 100),
            paid(3, "c", 800, 100),
            feedback(4, "f", 2000),
            paid(1, "d", 4400, 100),
        ];
        let at = |s: u64| Millis(1_000_000 + s * 1000);
        let fired = replay(&rule, &events, FROM, at(6000), at(6000));
        let summary: Vec<(&str, Millis, UserId)> = fired
            .iter()
            .map(|f| (f.trigger_event_id.as_str(), f.fired_at, f.user))
            .collect();
        assert_eq!(
            summary,
            [("c", at(1400), UserId(0)), ("d", at(5000), UserId(0))]
        );
        assert_eq!(
            fired[0].text,
            "no bill payment since 1970-01-01T00:30:00Z (600 s)"
        );
        // A silence not yet long enough at the span's end is not one.
        assert_eq!(replay(&rule, &events, FROM, at(4900), at(6000)).len(), 1);
        let shown = preview(&rule, &events, &fired, FROM, at(6000)).unwrap();
        assert_eq!((shown.event_id.as_str(), shown.fires), ("d", true));
    }

    #[test]
    fn a_reminding_heartbeat_adds_each_reminder_due_while_the_silence_lasts() {
        let rule = Rule::from_json(
            &serde_json::json!({"id": "payments-flowing", "when": {"kind": "activity", "noun": "bill"},
                "condition": {"type": "heartbeat", "seconds": 600, "repeat_seconds": 1200},
                "action": {"type": "notify_operator"}, "message": "silent"}),
            "$",
        )
        .unwrap();
        // Silent from 0 s to 4,000 s: told at 600 s, reminded at 1,800 s and 3,000 s (the next
        // would be at 4,200 s, after the payment).
        let events = [paid(1, "a", 0, 100), paid(2, "b", 4000, 100)];
        let at = |s: u64| Millis(1_000_000 + s * 1000);
        let fired = replay(&rule, &events, FROM, at(4100), at(4100));
        let summary: Vec<(Millis, &str)> = fired
            .iter()
            .map(|f| (f.fired_at, f.text.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (at(600), "silent"),
                (at(1800), "Still silent (reminder 1): silent"),
                (at(3000), "Still silent (reminder 2): silent"),
            ]
        );
    }
}
