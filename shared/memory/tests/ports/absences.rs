//! Absence checks decided from expectation buckets must decide exactly as the scan of the user's
//! events from the trigger to the due time that they replaced: a randomized differential test
//! over more than 10,000 events (random gaps, users interleaved, answers of the expected type
//! and of others, triggers that would answer themselves, redelivered events and checks, checks
//! decided late), with buckets of the real capacity and with tiny ones that overflow
//! constantly, against the scan kept as the oracle. Each check is decided, as the stream
//! guarantees, after every event of its user received by its due time. Every outcome and every
//! alert must agree.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use cuba_core::absence::scheduling::{AbsenceChecker, AbsenceOutcome};
use cuba_core::absence::{AbsenceCheck, plan_absence_checks};
use cuba_core::evaluation::RuleEvaluator;
use cuba_core::evaluation::ports::WindowStore;
use cuba_core::model::clock::{Clock, ManualClock};
use cuba_core::model::domain::{
    Activity, EventBody, EventId, Feedback, IdOrigin, Millis, Rating, ReceivedEvent, StoredEvent,
    UserId,
};
use cuba_core::model::ports::EventStore;
use cuba_core::rules::RuleSet;
use cuba_memory::{MemoryPorts, MemoryWindows};
use serde_json::json;

use crate::common::{Dice, START, alert_summaries, assert_same_alerts};

fn rules() -> RuleSet {
    let operator = json!({"type": "notify_operator", "severity": "info"});
    let document = json!({"rules": [
        {
            "id": "no-feedback",
            "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
            "condition": {"type": "absence", "seconds": 900, "expect": {"kind": "feedback"}},
            "action": operator, "message": "no feedback after {{id}}"
        },
        {
            "id": "not-back",
            "when": {"kind": "feedback"},
            "condition": {"type": "absence", "seconds": 60,
                "expect": {"kind": "activity", "noun": "app", "verb": "opened"},
                "cooldown_seconds": 300},
            "action": operator, "message": "{{user}} did not come back"
        },
        {
            // A payment expects a large payment: the trigger itself may match and must not
            // count.
            "id": "no-large-follow-up",
            "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
            "condition": {"type": "absence", "seconds": 120,
                "expect": {"kind": "activity", "noun": "bill", "verb": "paid",
                    "properties.amount": {"gte": 5000}}},
            "action": operator, "message": "no large payment after {{id}}"
        }
    ]});
    RuleSet::from_json(&document).expect("valid rules")
}

fn event(user: u64, n: u64, at: Millis, dice: &mut Dice) -> ReceivedEvent {
    let body = match dice.below(10) {
        0..=2 => EventBody::Feedback(Feedback {
            rating: Rating::try_from(4).expect("a rating"),
            comment: None,
        }),
        3..=4 => EventBody::Activity(Activity::new("app", "opened", Default::default())),
        5 => EventBody::Activity(Activity::new("page", "viewed", Default::default())),
        _ => {
            let properties = json!({"amount": dice.below(10_000)});
            EventBody::Activity(Activity::new(
                "bill",
                "paid",
                properties.as_object().cloned().unwrap_or_default(),
            ))
        }
    };
    ReceivedEvent {
        trace: None,
        raw: String::new(),
        origin: IdOrigin::Client,
        event: StoredEvent {
            user: UserId(user),
            id: EventId::parse(&format!("a{user}-{n:05}")).expect("an event id"),
            received_at: at,
            body,
        },
    }
}

/// One side of the comparison: the stream consumer's evaluator and the checker, on their own
/// ports, with the checker's clock set by the test.
struct Side {
    ports: MemoryPorts,
    clock: ManualClock,
    evaluator: RuleEvaluator,
    checker: AbsenceChecker,
}

fn side(windows: Option<Arc<dyn WindowStore>>, ports: MemoryPorts) -> Side {
    let clock = ManualClock::at(START);
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let rules = ports.rule_source(rules());
    Side {
        evaluator: RuleEvaluator {
            rules: rules.clone(),
            events: ports.events.clone(),
            windows: windows.clone(),
            state: ports.rule_state.clone(),
            dispatcher: ports.dispatcher(shared.clone()),
        },
        checker: AbsenceChecker {
            rules,
            events: ports.events.clone(),
            windows,
            rules_settle: Duration::ZERO,
            state: ports.rule_state.clone(),
            scheduler: ports.queue.clone(),
            dispatcher: ports.dispatcher(shared.clone()),
            clock: shared,
        },
        clock,
        ports,
    }
}

impl Side {
    async fn process(&self, received: &ReceivedEvent) {
        self.evaluator
            .evaluate(&received.event)
            .await
            .expect("evaluated");
    }

    async fn decide(&self, check: &AbsenceCheck, at: Millis) -> AbsenceOutcome {
        self.clock.set(at);
        self.checker.run(check).await.expect("decided")
    }
}

async fn run(capacity: usize, seed: u64) {
    let mut dice = Dice(seed);
    let ports = MemoryPorts::new();
    let windows: Arc<dyn WindowStore> =
        Arc::new(MemoryWindows::with_capacity(ports.faults.clone(), capacity));
    let live = side(Some(windows), ports);
    let scan = side(None, MemoryPorts::new());
    let rules = rules();
    let users = 40u64;
    let mut clock_of: Vec<u64> = vec![START.0; users as usize];
    let mut sent: Vec<Vec<ReceivedEvent>> = vec![Vec::new(); users as usize];
    // Each user's checks, with when they are decided: after every event of theirs received by
    // the due time, sometimes well after (a queue or stream running late).
    let mut pending: Vec<VecDeque<(AbsenceCheck, Millis)>> = vec![VecDeque::new(); users as usize];
    let (mut decided, mut satisfied, mut fired, mut cooling) = (0, 0, 0, 0);
    let total = 12_000u64;
    for n in 0..total {
        let user = dice.below(users);
        let slot = user as usize;
        let gap = match dice.below(10) {
            0 => 0,
            1..=5 => dice.below(20_000),
            6..=8 => dice.below(120_000),
            _ => dice.below(1_200_000),
        };
        clock_of[slot] += gap;
        let at = Millis(clock_of[slot]);
        // Checks whose time has come are decided before this event, as the stream orders them.
        while pending[slot].front().is_some_and(|(_, when)| *when < at) {
            let Some((check, when)) = pending[slot].pop_front() else {
                break;
            };
            let (a, b) = (
                live.decide(&check, when).await,
                scan.decide(&check, when).await,
            );
            assert_eq!(a, b, "check of {} for user {user}", check.event_id);
            decided += 1;
            match a {
                AbsenceOutcome::Satisfied => satisfied += 1,
                AbsenceOutcome::Fired(..) => fired += 1,
                AbsenceOutcome::CoolingDown => cooling += 1,
                _ => {}
            }
            // One check in twenty is delivered again (a retried stream batch).
            if dice.below(20) == 0 {
                let (a, b) = (
                    live.decide(&check, when).await,
                    scan.decide(&check, when).await,
                );
                assert_eq!(a, b, "repeated check of {}", check.event_id);
            }
        }
        let received = event(user, n, at, &mut dice);
        for side in [&live, &scan] {
            side.ports.events.insert(&received).await.expect("stored");
            side.process(&received).await;
        }
        let view = received.event.view();
        let triggered: Vec<&cuba_core::rules::Rule> = rules.triggered_by(&view).collect();
        for check in plan_absence_checks(&triggered, &received.event, received.trace.as_ref()) {
            let late = if dice.below(4) == 0 {
                dice.below(600_000)
            } else {
                dice.below(2_000)
            };
            let when = Millis(check.due_at.0 + late);
            let queue = &mut pending[slot];
            let position = queue.partition_point(|(_, w)| *w <= when);
            queue.insert(position, (check, when));
        }
        sent[slot].push(received);
        // One event in twenty is processed again later (a retried stream batch).
        if dice.below(20) == 0 {
            let earlier = sent[slot][dice.below(sent[slot].len() as u64) as usize].clone();
            for side in [&live, &scan] {
                side.process(&earlier).await;
            }
        }
    }
    for (slot, queue) in pending.iter_mut().enumerate() {
        while let Some((check, when)) = queue.pop_front() {
            let (a, b) = (
                live.decide(&check, when).await,
                scan.decide(&check, when).await,
            );
            assert_eq!(a, b, "check of {} for user {slot}", check.event_id);
            decided += 1;
        }
    }
    assert!(
        decided > 5_000 && satisfied > 500 && fired > 500 && cooling > 50,
        "every outcome is exercised: {decided} decided, {satisfied} satisfied, {fired} fired, \
         {cooling} cooling down"
    );
    let (got, want) = (alert_summaries(&live.ports), alert_summaries(&scan.ports));
    assert_same_alerts(&got, &want);
}

#[tokio::test]
async fn expectation_buckets_decide_as_the_scan_does() {
    run(
        cuba_core::evaluation::window::MAX_BUCKET_MEMBERS,
        0x2545_F491_4F6C_DD1D,
    )
    .await;
}

#[tokio::test]
async fn overflowing_expectation_buckets_fall_back_to_the_scan_and_still_agree() {
    run(3, 0x9E37_79B9_7F4A_7C15).await;
}
