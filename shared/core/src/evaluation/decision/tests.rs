use super::*;
use crate::fixtures::{feedback, paid, seed_rule as seed};
use crate::model::domain::UserId;

/// [`decide`] over plain events.
fn d(rule: &Rule, trigger: &StoredEvent, recent: &[StoredEvent], memory: &RuleMemory) -> Decision {
    decide(rule, &Viewed::of(trigger), &Viewed::all(recent), memory)
}

fn da(
    rule: &Rule,
    trigger: &StoredEvent,
    after: &[StoredEvent],
    due: Millis,
    at: Millis,
) -> Option<AbsenceDecision> {
    decide_absence(
        rule,
        trigger,
        &Viewed::all(after),
        due,
        at,
        &RuleMemory::default(),
    )
}

#[test]
fn first_fires_unless_another_event_holds_the_marker() {
    let rule = seed(0);
    let event = paid(1, "a", 0, 10);
    let Decision::Fires(firing) = d(&rule, &event, &[], &RuleMemory::default()) else {
        panic!("a first payment fires");
    };
    assert_eq!(firing.claim, StateClaim::First);
    assert_eq!(firing.alert_id, AlertId::first(&rule.id, UserId(1)));
    let mut memory = RuleMemory::default();
    memory.apply(firing.claim, &event.id);
    assert!(
        matches!(d(&rule, &event, &[], &memory), Decision::Fires(_)),
        "a redelivery of the holder fires again (the ledger then finds it settled)"
    );
    assert_eq!(
        d(&rule, &paid(1, "b", 5, 10), &[], &memory),
        Decision::Quiet(Quiet::AlreadyHadFirst(event.id.clone()))
    );
    assert_eq!(
        d(&rule, &feedback(1, "f", 1), &[], &RuleMemory::default()),
        Decision::Quiet(Quiet::NoMatch)
    );
}

#[test]
fn window_counts_the_trigger_once_and_only_the_span() {
    let rule = seed(1);
    let history: Vec<_> = (0..5)
        .map(|i| paid(1, &format!("p{i}"), i * 10, 5000))
        .collect();
    let trigger = &history[4];
    let Decision::Fires(firing) = d(&rule, trigger, &history, &RuleMemory::default()) else {
        panic!("five payments of 5000 within five minutes fire");
    };
    assert_eq!(
        firing.totals,
        Some(WindowTotals {
            count: 5,
            sum: 25000.0,
            distinct: 0,
        })
    );
    assert_eq!(firing.event_ids.len(), 5);
    assert_eq!(
        firing.claim,
        StateClaim::Cooldown {
            until: trigger.received_at.plus_seconds(300)
        }
    );
    // Without the trigger in `recent` the answer is the same.
    assert!(matches!(
        d(&rule, trigger, &history[..4], &RuleMemory::default()),
        Decision::Fires(_)
    ));
    // The first payment is exactly 300 s before a trigger at 300 s: outside the window.
    let late = paid(1, "late", 300, 5000);
    let mut longer = history.clone();
    longer.push(late.clone());
    assert!(matches!(
        d(&rule, &late, &longer, &RuleMemory::default()),
        Decision::Fires(Firing {
            totals: Some(WindowTotals { count: 5, .. }),
            ..
        })
    ));
    // Another user's payments never count.
    let other = paid(2, "q", 45, 5000);
    assert!(matches!(
        d(&rule, &other, &history, &RuleMemory::default()),
        Decision::Quiet(Quiet::BelowThreshold(WindowTotals { count: 1, .. }))
    ));
}

#[test]
fn every_triggered_rule_is_decided_in_one_call_later_members_after_the_trigger() {
    let (first, window) = (seed(0), seed(1));
    let Condition::Window(condition) = &window.condition else {
        panic!("the second seed rule is a window rule");
    };
    // Four payments reached the stream before a late fifth one received earlier than the
    // last: the late one completes the last one's window.
    let history: Vec<_> = [0, 10, 20, 40]
        .iter()
        .enumerate()
        .map(|(i, at)| paid(1, &format!("p{i}"), *at, 5000))
        .collect();
    let late = paid(1, "late", 30, 5000);
    let trigger = Viewed::of(&late);
    let member = |e: &StoredEvent| condition.member_of(&e.id, e.received_at, &e.view());
    let members: Vec<WindowMember> = history.iter().chain([&late]).map(member).collect();
    let gathered = vec![
        (&first, Gathered::First),
        (
            &window,
            Gathered::Window {
                members,
                later: vec![history[3].clone()],
            },
        ),
        (&window, Gathered::NoMatch),
    ];
    let decided = decide_triggered(&trigger, &gathered);
    let summary: Vec<(&str, &str, bool)> = decided
        .iter()
        .map(|(rule, event, decision)| {
            (
                rule.id.as_str(),
                event.id.as_str(),
                matches!(decision, Decision::Fires(_)),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (first.id.as_str(), "late", true),
            // The late payment's own window holds four payments; the last one's holds five.
            (window.id.as_str(), "late", false),
            (window.id.as_str(), "p3", true),
            (window.id.as_str(), "late", false),
        ]
    );
    assert_eq!(decided[3].2, Decision::Quiet(Quiet::NoMatch));
}

#[test]
fn cooldown_silences_until_it_ends() {
    let rule = seed(1);
    let history: Vec<_> = (0..6).map(|i| paid(1, &format!("p{i}"), i, 5000)).collect();
    let memory = RuleMemory {
        first_holder: None,
        cooldown_until: Some(history[5].received_at.plus_seconds(1)),
    };
    assert!(matches!(
        d(&rule, &history[5], &history, &memory),
        Decision::Quiet(Quiet::CoolingDown { .. })
    ));
    let ended = RuleMemory {
        first_holder: None,
        cooldown_until: Some(history[5].received_at),
    };
    assert!(matches!(
        d(&rule, &history[5], &history, &ended),
        Decision::Fires(_)
    ));
}

#[test]
fn absence_schedules_then_fires_unless_answered_in_time() {
    let rule = seed(2);
    let trigger = paid(1, "a", 0, 10);
    assert_eq!(
        d(&rule, &trigger, &[], &RuleMemory::default()),
        Decision::SchedulesCheck {
            due_at: trigger.received_at.plus_seconds(900)
        }
    );
    let due = trigger.received_at.plus_seconds(900);
    let answered = [trigger.clone(), feedback(1, "f", 900)];
    assert_eq!(
        da(&rule, &trigger, &answered, due, due),
        Some(AbsenceDecision::Satisfied {
            by: EventId::parse("f").unwrap()
        })
    );
    let late = [trigger.clone(), feedback(1, "f", 901), feedback(2, "g", 10)];
    assert!(matches!(
        da(&rule, &trigger, &late, due, due),
        Some(AbsenceDecision::Fires(Firing {
            claim: StateClaim::None,
            ..
        }))
    ));
    assert_eq!(da(&seed(0), &trigger, &late, due, due), None);
}

#[test]
fn absence_over_bucket_members_counts_both_ends_of_the_span_only() {
    let rule = seed(2);
    let trigger = paid(1, "a", 0, 10);
    let due = trigger.received_at.plus_seconds(900);
    let member = |id: &str, at: Millis| WindowMember {
        id: EventId::parse(id).unwrap(),
        received_at: at,
        amount: 0.0,
        value: None,
    };
    let decide = |members: &[WindowMember]| {
        decide_absence_with_members(&rule, &trigger, members, due, due, &RuleMemory::default())
    };
    for answer in [trigger.received_at, due] {
        assert_eq!(
            decide(&[member("f", answer)]),
            Some(AbsenceDecision::Satisfied {
                by: EventId::parse("f").unwrap()
            }),
            "an answer at {answer:?} counts"
        );
    }
    let outside = [
        member("a", trigger.received_at),
        member("early", Millis(trigger.received_at.0 - 1)),
        member("late", Millis(due.0 + 1)),
    ];
    assert!(matches!(decide(&outside), Some(AbsenceDecision::Fires(_))));
    // The earliest answer is named, whatever order the buckets gave.
    let two = [
        member("g", Millis(due.0 - 5)),
        member("f", Millis(due.0 - 9)),
    ];
    assert_eq!(
        decide(&two),
        Some(AbsenceDecision::Satisfied {
            by: EventId::parse("f").unwrap()
        })
    );
    assert_eq!(
        decide_absence_with_members(&seed(0), &trigger, &two, due, due, &RuleMemory::default()),
        None
    );
}

#[test]
fn an_absence_cooldown_is_measured_between_due_times() {
    let mut rule = seed(2);
    if let Condition::Absence(absence) = &mut rule.condition {
        absence.cooldown_seconds = 3_600;
    }
    let first = paid(1, "a", 0, 10);
    let due = first.received_at.plus_seconds(900);
    let Some(AbsenceDecision::Fires(firing)) = decide_absence(
        &rule,
        &first,
        &[],
        due,
        due.plus_seconds(30),
        &RuleMemory::default(),
    ) else {
        panic!("an unanswered payment fires");
    };
    assert_eq!(
        firing.claim,
        StateClaim::Cooldown {
            until: due.plus_seconds(3_600)
        },
        "from the due time, not from when the queue delivered the check"
    );
    let mut memory = RuleMemory::default();
    memory.apply(firing.claim, &first.id);
    let second = paid(1, "b", 60, 10);
    let second_due = second.received_at.plus_seconds(900);
    assert_eq!(
        decide_absence(&rule, &second, &[], second_due, second_due, &memory),
        Some(AbsenceDecision::CoolingDown {
            until: due.plus_seconds(3_600)
        })
    );
    let late = paid(1, "c", 3_600, 10);
    let late_due = late.received_at.plus_seconds(900);
    assert!(matches!(
        decide_absence(&rule, &late, &[], late_due, late_due, &memory),
        Some(AbsenceDecision::Fires(_))
    ));
    assert!(
        matches!(
            da(&seed(2), &first, &[], due, due),
            Some(AbsenceDecision::Fires(Firing {
                claim: StateClaim::None,
                ..
            }))
        ),
        "without a cooldown every unanswered payment alerts"
    );
}

#[test]
fn disabled_rules_never_fire() {
    let mut rule = seed(0);
    rule.enabled = false;
    assert_eq!(
        d(&rule, &paid(1, "a", 0, 10), &[], &RuleMemory::default()),
        Decision::Quiet(Quiet::Disabled)
    );
}
