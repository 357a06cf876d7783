//! Window rules read from window buckets must decide exactly as the scan of the user's events
//! they replaced: a randomized differential test over more than 10,000 events (random gaps,
//! integer and fractional amounts, other event types, redeliveries, users interleaved out of
//! order), run with buckets of the real capacity and with tiny ones that
//! overflow constantly, against the scan kept as the oracle. Every alert must agree: id, events
//! and text (which carries the window's count, sum and distinct values).

use std::collections::HashMap;
use std::sync::Arc;

use cuba_core::evaluation::RuleEvaluator;
use cuba_core::evaluation::batch_reads::UserBatchReads;
use cuba_core::evaluation::ports::WindowStore;
use cuba_core::model::clock::{Clock, ManualClock};
use cuba_core::model::domain::{
    Activity, EventBody, EventId, Feedback, IdOrigin, Millis, Rating, ReceivedEvent, StoredEvent,
    UserId,
};
use cuba_core::model::ports::EventStore;
use cuba_core::rules::RuleSet;
use cuba_memory::{MemoryPorts, MemoryWindows};
use serde_json::{Value, json};

use crate::common::{Dice, START, alert_summaries, assert_same_alerts};

fn rules() -> RuleSet {
    let operator = json!({"type": "notify_operator", "severity": "info"});
    let message = "{{window.count}} payments, {{window.sum}} in all, by {{user}}";
    let document = json!({"rules": [
        {
            "id": "burst",
            "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
            "condition": {"type": "window", "seconds": 300, "count_at_least": 5,
                "sum": {"field": "properties.amount", "at_least": 20000}, "cooldown_seconds": 120},
            "action": operator, "message": message
        },
        {
            "id": "many",
            "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
            "condition": {"type": "window", "seconds": 30, "count_at_least": 4},
            "action": operator, "message": message
        },
        {
            "id": "fractions",
            "when": {"kind": "activity", "noun": "bill", "verb": "paid",
                "properties.amount": {"gte": 100}},
            "condition": {"type": "window", "seconds": 600,
                "sum": {"field": "properties.amount", "at_least": 30000.3}},
            "action": operator, "message": message
        },
        {
            "id": "merchants",
            "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
            "condition": {"type": "window", "seconds": 120,
                "distinct": {"field": "properties.merchant", "at_least": 3}},
            "action": operator,
            "message": "{{window.distinct}} merchants in {{window.count}} payments by {{user}}"
        },
        {
            "id": "moods",
            "when": {"kind": "feedback"},
            "condition": {"type": "window", "seconds": 3600, "count_at_least": 3,
                "cooldown_seconds": 0},
            "action": operator, "message": message
        }
    ]});
    RuleSet::from_json(&document).expect("valid rules")
}

fn event(user: u64, n: u64, at: Millis, dice: &mut Dice) -> ReceivedEvent {
    let body = match dice.below(10) {
        0 => EventBody::Feedback(Feedback {
            rating: Rating::try_from(3).expect("a rating"),
            comment: None,
        }),
        1 => EventBody::Activity(Activity::new("page", "viewed", Default::default())),
        _ => {
            // Whole amounts mostly, some with cents, a few missing or not numbers.
            let amount = match dice.below(20) {
                0 => Value::Null,
                1 => json!("lots"),
                2..=7 => json!(dice.below(900_000) as f64 / 100.0),
                _ => json!(dice.below(9_000)),
            };
            // A few merchants, spelled as text or numbers (7 and 7.0 are one), some missing.
            let merchant = match dice.below(8) {
                0 => Value::Null,
                1 => json!(7),
                2 => json!(7.0),
                n => json!(format!("m{n}")),
            };
            let properties = json!({"amount": amount, "merchant": merchant});
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
            id: EventId::parse(&format!("w{user}-{n:05}")).expect("an event id"),
            received_at: at,
            body,
        },
    }
}

fn evaluator(
    ports: &MemoryPorts,
    rules: RuleSet,
    windows: Option<Arc<dyn WindowStore>>,
) -> RuleEvaluator {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::at(START));
    RuleEvaluator {
        rules: ports.rule_source(rules),
        events: ports.events.clone(),
        windows,
        state: ports.rule_state.clone(),
        dispatcher: ports.dispatcher(clock),
    }
}

/// `batched`: events are stored in batches of random size before they are evaluated, each
/// user's through their own [`UserBatchReads`] (otherwise each event is evaluated as it is stored).
async fn run(capacity: usize, seed: u64, batched: bool) {
    let mut dice = Dice(seed);
    let (buckets, oracle) = (MemoryPorts::new(), MemoryPorts::new());
    let windows: Arc<dyn WindowStore> = Arc::new(MemoryWindows::with_capacity(
        buckets.faults.clone(),
        capacity,
    ));
    let live = evaluator(&buckets, rules(), Some(windows));
    // Batched, the reference is the same buckets read without the batch's shared reads: in a
    // batch, the scan would see the batch's later events before they are evaluated (and
    // recorded in the buckets), and a window they complete may then be counted differently.
    let scan = if batched {
        let windows: Arc<dyn WindowStore> = Arc::new(MemoryWindows::with_capacity(
            oracle.faults.clone(),
            capacity,
        ));
        evaluator(&oracle, rules(), Some(windows))
    } else {
        evaluator(&oracle, rules(), None)
    };
    let users = 40u64;
    let mut clock_of: Vec<u64> = vec![START.0; users as usize];
    let mut sent: Vec<Vec<ReceivedEvent>> = vec![Vec::new(); users as usize];
    let total = 12_000u64;
    // A stream batch: its events are all stored before any is evaluated.
    let mut pending: Vec<(u64, ReceivedEvent)> = Vec::new();
    for n in 0..total {
        // Users take turns at random; each user's clock moves by a random gap, sometimes back a
        // little (two requests of one user racing).
        let user = dice.below(users);
        let slot = user as usize;
        let gap = match dice.below(10) {
            0 => 0,
            1..=5 => dice.below(5_000),
            6..=8 => dice.below(60_000),
            _ => dice.below(900_000),
        };
        clock_of[slot] += gap;
        let at = Millis(
            clock_of[slot]
                - if dice.below(20) == 0 {
                    dice.below(3_000)
                } else {
                    0
                },
        );
        let received = event(user, n, at, &mut dice);
        for evaluator in [&live, &scan] {
            evaluator.events.insert(&received).await.expect("stored");
        }
        pending.push((n, received));
        if batched && dice.below(200) != 0 && n + 1 < total {
            continue;
        }
        // Each user's records of the batch read through one [`UserBatchReads`], as the stream
        // handler's lanes do.
        let mut lanes: HashMap<UserId, RuleEvaluator> = HashMap::new();
        for (_, r) in &pending {
            let user = r.event.user;
            if lanes.contains_key(&user) {
                continue;
            }
            let times = pending
                .iter()
                .filter(|(_, other)| other.event.user == user)
                .map(|(_, other)| other.event.received_at.0);
            let (first, last) = (times.clone().min(), times.max());
            let ahead = last.zip(first).map_or(0, |(last, first)| last - first);
            let mut lane = live.clone();
            lane.events = Arc::new(UserBatchReads::new(
                live.events.clone(),
                user,
                usize::MAX,
                ahead,
            ));
            lanes.insert(user, lane);
        }
        for (n, received) in pending.drain(..) {
            let user = received.event.user;
            let lane = lanes.get(&user).unwrap_or(&live);
            let a = lane.evaluate(&received.event).await.expect("evaluated");
            let b = scan.evaluate(&received.event).await.expect("evaluated");
            assert_eq!(
                a.iter().map(|o| &o.rule_id).collect::<Vec<_>>(),
                b.iter().map(|o| &o.rule_id).collect::<Vec<_>>(),
                "event {n} of user {user}"
            );
            let slot = user.0 as usize;
            sent[slot].push(received);
            // One event in twenty is delivered again later, as a retried stream batch would.
            if dice.below(20) == 0 {
                let earlier = &sent[slot][dice.below(sent[slot].len() as u64) as usize];
                let a = live.evaluate(&earlier.event).await.expect("evaluated");
                let b = scan.evaluate(&earlier.event).await.expect("evaluated");
                assert_eq!(a.len(), b.len(), "redelivery after event {n}");
            }
        }
    }
    if batched {
        let reads = |ports: &MemoryPorts| ports.faults.count("events.received_between");
        let (shared, each) = (reads(&buckets), reads(&oracle));
        assert!(
            shared * 2 < each,
            "{shared} reads of users' events with the batch's shared reads, {each} without"
        );
    }
    let (got, want) = (alert_summaries(&buckets), alert_summaries(&oracle));
    assert!(
        want.len() > 300,
        "the rules fire often enough to compare: {}",
        want.len()
    );
    for rule in ["burst", "many", "fractions", "merchants", "moods"] {
        assert!(
            want.iter().any(|a| a.0.contains(rule)),
            "rule {rule} fired at least once"
        );
    }
    assert_same_alerts(&got, &want);
}

#[tokio::test]
async fn window_buckets_decide_as_the_scan_does() {
    run(
        cuba_core::evaluation::window::MAX_BUCKET_MEMBERS,
        0x9E37_79B9_7F4A_7C15,
        false,
    )
    .await;
}

#[tokio::test]
async fn overflowing_buckets_fall_back_to_the_scan_and_still_agree() {
    run(3, 0xD1B5_4A32_D192_ED03, false).await;
}

/// The stream handler's lanes read a user's overflowed windows once per batch
/// ([`UserBatchReads`]): with tiny buckets, nearly every window is read that way, and every
/// decision is the one reading the events each time makes.
#[tokio::test]
async fn window_reads_shared_across_a_batch_decide_as_the_scan_does() {
    run(3, 0x2545_F491_4F6C_DD1D, true).await;
}

/// A heavy user beside ordinary ones: 2,000 payments in five minutes overflow the burst rule's
/// buckets of the real capacity, where each payment's window would be read from the user's
/// events, thousands of them each time. The rule fires, then cools down past every decision
/// those reads could serve, so they are skipped: the heavy user costs a handful of scans, and
/// every alert (the heavy user's and the ordinary users') is the scan oracle's.
#[tokio::test]
async fn a_heavy_users_overflowed_windows_are_not_read_while_the_rule_cools_down() {
    let document = json!({"rules": [{
        "id": "burst",
        "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
        "condition": {"type": "window", "seconds": 300, "count_at_least": 5,
            "sum": {"field": "properties.amount", "at_least": 20000}, "cooldown_seconds": 600},
        "action": {"type": "notify_operator", "severity": "info"},
        "message": "{{window.count}} payments, {{window.sum}} in all, by {{user}}"
    }]});
    let rules = RuleSet::from_json(&document).expect("valid rules");
    let (buckets, oracle) = (MemoryPorts::new(), MemoryPorts::new());
    let windows: Arc<dyn WindowStore> = buckets.windows.clone();
    let live = evaluator(&buckets, rules.clone(), Some(windows));
    let scan = evaluator(&oracle, rules, None);
    let payment = |user: u64, n: u64, at: Millis| ReceivedEvent {
        trace: None,
        raw: String::new(),
        origin: IdOrigin::Client,
        event: StoredEvent {
            user: UserId(user),
            id: EventId::parse(&format!("h{user}-{n:05}")).expect("an event id"),
            received_at: at,
            body: EventBody::Activity(Activity::new(
                "bill",
                "paid",
                json!({"amount": 5000})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            )),
        },
    };
    const HEAVY: u64 = 2_000;
    for n in 0..HEAVY {
        // Every 150 ms the heavy user pays; every 20 s one of ten ordinary users does.
        let at = Millis(START.0 + n * 150);
        let mut received = vec![payment(1, n, at)];
        if n % 133 == 0 {
            received.push(payment(100 + n % 10, n, at));
        }
        for r in received {
            for evaluator in [&live, &scan] {
                evaluator.events.insert(&r).await.expect("stored");
                evaluator.evaluate(&r.event).await.expect("evaluated");
            }
        }
    }
    let scans = |ports: &MemoryPorts| ports.faults.count("events.received_between");
    let heavy_scans = scans(&buckets);
    assert!(
        heavy_scans < 20,
        "{heavy_scans} scans of the user's events for {HEAVY} payments past the buckets' capacity"
    );
    assert!(scans(&oracle) > 2_000, "the oracle scans every time");
    assert_same_alerts(&alert_summaries(&buckets), &alert_summaries(&oracle));
}

/// A lane's span of a user's events is what a fresh read would return: an event marked invalid
/// through it (a schema saved since intake) leaves it, and a request it covers reads nothing.
#[tokio::test]
async fn a_batchs_span_drops_an_event_marked_invalid_through_it() {
    let ports = MemoryPorts::new();
    let mut dice = Dice(7);
    let stored: Vec<ReceivedEvent> = (0..3)
        .map(|n| event(1, n, Millis(START.0 + n * 1000), &mut dice))
        .collect();
    for received in &stored {
        ports.events.insert(received).await.expect("stored");
    }
    let reads = UserBatchReads::new(ports.events.clone(), UserId(1), usize::MAX, 0);
    assert_eq!(span(&reads).await, 3);
    assert_eq!(span(&reads).await, 3, "from the span");
    assert_eq!(reads.items_read(), 3, "read once");
    reads
        .set_invalid(
            UserId(1),
            &stored[1].event.id,
            stored[1].event.received_at,
            true,
        )
        .await
        .expect("marked");
    assert_eq!(span(&reads).await, 2, "the invalid event left the span");
}

/// The number of user 1's events from `START` to 10 s after, read through `reads`.
async fn span(reads: &UserBatchReads) -> usize {
    reads
        .received_between(UserId(1), START, Millis(START.0 + 10_000))
        .await
        .expect("read")
        .len()
}
