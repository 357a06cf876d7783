//! Windows across users end to end on the memory ports: a fleet window fires once however many
//! users and batches make it, resolves on the sweeper's look, and fires again only past its
//! cooldown; a window per field value fires for the group that reached it; and the counters
//! agree exactly with a scan of the events however they are batched, reordered and redelivered.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use cuba_core::evaluation::group_desk::GroupWindowDesk;
use cuba_core::evaluation::group_window::{GroupContribution, Steps};
use cuba_core::evaluation::ports::GroupWindows;
use cuba_core::model::clock::Clock;
use cuba_core::model::domain::EventBody;
use cuba_core::pipeline::Processed;
use cuba_core::rules::{Condition, GroupKey, RuleSet};
use serde_json::{Value, json};

use crate::common::{Dice, START, World, feedback, paid};

fn fleet_rule(group_by: &str) -> Value {
    json!({
        "id": "payments-surge",
        "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
        "condition": {"type": "window", "seconds": 300, "count_at_least": 5,
                      "sum": {"field": "properties.amount", "at_least": 1}, "group_by": group_by},
        "action": {"type": "notify_operator", "severity": "warning"},
        "message": "{{window.count}} bill payments ({{window.sum}} in all) for {{group}} within 5 minutes"
    })
}

fn world(rule: Value) -> World {
    World::with_rules(RuleSet::from_json(&json!({"rules": [rule]})).expect("a rule"))
}

fn desk(w: &World) -> GroupWindowDesk {
    let clock: Arc<dyn Clock> = Arc::new(w.clock.clone());
    w.ports
        .stream_ports(clock.clone())
        .group_window_desk(w.pipeline.evaluator.rules.clone(), clock)
}

fn paid_type(amount: u64, kind: &str) -> EventBody {
    EventBody::Activity(cuba_core::model::domain::Activity::new(
        "bill",
        "paid",
        json!({"amount": amount, "type": kind})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    ))
}

/// Delivers one batch (each event at its own second) and flushes its windows across users.
async fn batch(w: &World, events: &[(u64, &str, u64, EventBody)]) -> usize {
    let mut grouped = Vec::new();
    for (user, id, second, body) in events {
        w.at_seconds(*second);
        if let Processed::Valid { grouped: adds, .. } = w.deliver(*user, id, body.clone()).await {
            grouped.extend(adds);
        }
    }
    w.pipeline
        .groups
        .flush(&grouped)
        .await
        .expect("flushed")
        .iter()
        .filter(|o| o.dispatched.is_first())
        .count()
}

#[tokio::test]
async fn a_fleet_window_fires_once_across_users_and_batches_and_resolves() {
    let w = world(fleet_rule("all"));
    // Four users' payments: not yet five. Feedback does not count.
    let first: Vec<_> = (1..=4)
        .map(|u| (u, format!("p{u}"), 100 + u, paid(1000)))
        .collect();
    let refs: Vec<_> = first
        .iter()
        .map(|(u, id, s, b)| (*u, id.as_str(), *s, b.clone()))
        .collect();
    assert_eq!(batch(&w, &refs).await, 0);
    assert_eq!(batch(&w, &[(9, "f9", 105, feedback(5))]).await, 0);
    // The fifth user's payment, in the next batch, makes five across users: one alert.
    assert_eq!(batch(&w, &[(5, "p5", 110, paid(3000))]).await, 1);
    // More payments while it fires: nothing more.
    assert_eq!(
        batch(&w, &[(6, "p6", 120, paid(10)), (7, "p7", 130, paid(10))]).await,
        0
    );
    // A redelivered batch counts nothing twice and sends nothing.
    assert_eq!(batch(&w, &[(5, "p5", 110, paid(3000))]).await, 0);
    let alerts = w.ports.notifier.operator_alerts();
    assert_eq!(alerts.len(), 1);
    let fired = serde_json::to_value(&alerts[0]).expect("JSON");
    assert_eq!(fired["status"], "firing");
    assert_eq!(fired["user"], 0);
    assert_eq!(fired["firing_since"], json!(START.plus_seconds(110).0));
    assert_eq!(
        fired["text"],
        "5 bill payments (7000 in all) for all within 5 minutes"
    );

    // The sweeper's look: still met while the payments are within 5 minutes.
    w.at_seconds(390);
    let look = desk(&w).look().await.expect("a look");
    assert_eq!((look.decided, look.resolved), (1, 0));
    // Past the window of the first payments: resolved, once.
    w.at_seconds(420);
    assert_eq!(desk(&w).look().await.expect("a look").resolved, 1);
    assert_eq!(desk(&w).look().await.expect("a look").decided, 0);
    let alerts = w.ports.notifier.operator_alerts();
    assert_eq!(alerts.len(), 2);
    let resolved = serde_json::to_value(&alerts[1]).expect("JSON");
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["firing_since"], json!(START.plus_seconds(110).0));
    assert!(
        resolved["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Resolved: rule payments-surge for all users")),
        "{resolved}"
    );

    // A new burst within the cooldown (5 minutes from the firing at 110 s): recorded, silent.
    let burst = |from: u64, at: u64| -> Vec<(u64, String, u64, EventBody)> {
        (0..5)
            .map(|i| (from + i, format!("q{}", from + i), at, paid(1)))
            .collect()
    };
    let early = burst(20, 400);
    let early: Vec<_> = early
        .iter()
        .map(|(u, id, s, b)| (*u, id.as_str(), *s, b.clone()))
        .collect();
    w.at_seconds(400);
    assert_eq!(batch(&w, &early).await, 0, "cooling down");
    // Past it: fires again.
    let late = burst(40, 411);
    let late: Vec<_> = late
        .iter()
        .map(|(u, id, s, b)| (*u, id.as_str(), *s, b.clone()))
        .collect();
    assert_eq!(batch(&w, &late).await, 1, "a new firing");
}

#[tokio::test]
async fn a_fleet_window_that_stays_met_reminds_once_per_period_until_it_resolves() {
    let mut rule = fleet_rule("all");
    rule["condition"]["repeat_seconds"] = json!(600);
    let w = world(rule);
    // Five payments a minute for 25 minutes: the window stays met.
    let mut reminders = Vec::new();
    for minute in 0..25u64 {
        let events: Vec<_> = (1..=5)
            .map(|u| (u, format!("m{minute}-{u}"), 100 + minute * 60 + u, paid(10)))
            .collect();
        let refs: Vec<_> = events
            .iter()
            .map(|(u, id, s, b)| (*u, id.as_str(), *s, b.clone()))
            .collect();
        batch(&w, &refs).await;
        w.at_seconds(100 + minute * 60 + 30);
        let look = desk(&w).look().await.expect("a look");
        reminders.push(look.reminded);
    }
    // Fired at 105 s; reminded at 705 s and 1305 s (the looks at 730 and 1330 s), once each.
    assert_eq!(reminders.iter().sum::<usize>(), 2, "{reminders:?}");
    let texts: Vec<String> = w
        .ports
        .notifier
        .operator_alerts()
        .iter()
        .map(|a| a.text.clone())
        .collect();
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(
        texts[1].starts_with("Still firing (reminder 1): ")
            && texts[2].starts_with("Still firing (reminder 2): "),
        "{texts:?}"
    );
    // Traffic stops: resolved, and no more reminders.
    w.at_seconds(100 + 25 * 60 + 400);
    let look = desk(&w).look().await.expect("a look");
    assert_eq!((look.resolved, look.reminded), (1, 0));
    w.at_seconds(100 + 25 * 60 + 1000);
    assert_eq!(desk(&w).look().await.expect("a look").reminded, 0);
}

#[tokio::test]
async fn a_window_by_field_fires_for_the_group_that_reached_it() {
    let w = world(fleet_rule("properties.type"));
    let mut events = Vec::new();
    for u in 1..=5 {
        events.push((u, format!("w{u}"), 100 + u, paid_type(100, "water")));
    }
    for u in 1..=4 {
        events.push((10 + u, format!("g{u}"), 100 + u, paid_type(100, "gas")));
    }
    let refs: Vec<_> = events
        .iter()
        .map(|(u, id, s, b)| (*u, id.as_str(), *s, b.clone()))
        .collect();
    assert_eq!(batch(&w, &refs).await, 1);
    let alerts = w.ports.notifier.operator_alerts();
    let texts: Vec<&str> = alerts.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(
        texts,
        ["5 bill payments (500 in all) for water within 5 minutes"]
    );
}

#[tokio::test]
async fn different_users_paying_one_merchant_fire_its_window_and_one_user_does_not() {
    let w = world(json!({
        "id": "merchant-many-payers",
        "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
        "condition": {"type": "window", "seconds": 60, "group_by": "properties.type",
                      "distinct": {"field": "user", "at_least": 3}},
        "action": {"type": "notify_operator", "severity": "critical"},
        "message": "{{window.distinct}} different users paid {{group}} within a minute"
    }));
    // One user paying water five times: one payer.
    let same: Vec<_> = (1..=5)
        .map(|n| (7, format!("s{n}"), 100 + n, paid_type(10, "water")))
        .collect();
    let refs: Vec<_> = same
        .iter()
        .map(|(u, id, s, b)| (*u, id.as_str(), *s, b.clone()))
        .collect();
    assert_eq!(batch(&w, &refs).await, 0);
    // Two more users pay water, one of them twice, and others pay gas: water has three payers.
    assert_eq!(
        batch(
            &w,
            &[
                (8, "a1", 110, paid_type(10, "water")),
                (9, "g1", 111, paid_type(10, "gas")),
                (8, "a2", 112, paid_type(10, "water")),
                (10, "g2", 113, paid_type(10, "gas")),
            ]
        )
        .await,
        0,
        "two payers of water"
    );
    assert_eq!(
        batch(&w, &[(11, "a3", 115, paid_type(10, "water"))]).await,
        1
    );
    let texts: Vec<String> = w
        .ports
        .notifier
        .operator_alerts()
        .iter()
        .map(|a| a.text.clone())
        .collect();
    assert_eq!(texts, ["3 different users paid water within a minute"]);
    // The backtest over the stored payments finds the same firing.
    let rules = w.pipeline.evaluator.rules.current().await.expect("rules");
    let stored: Vec<_> = w.ports.events.all().into_iter().map(|r| r.event).collect();
    let replayed = cuba_core::console::backtest::replay(
        &rules.all()[0],
        &stored,
        START,
        START.plus_seconds(200),
        START.plus_seconds(200),
    );
    let found: Vec<(u64, &str)> = replayed
        .iter()
        .map(|f| (f.fired_at.0, f.text.as_str()))
        .collect();
    assert_eq!(
        found,
        [(
            START.plus_seconds(115).0,
            "3 different users paid water within a minute"
        )]
    );
    // A minute later the first payers left the window: resolved.
    w.at_seconds(172);
    assert_eq!(desk(&w).look().await.expect("a look").resolved, 1);
}

#[tokio::test]
async fn a_drop_in_the_fleets_volume_fires_on_the_clock_and_resolves_when_traffic_returns() {
    let w = world(json!({
        "id": "payments-dropped",
        "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
        "condition": {"type": "window", "seconds": 120, "count_at_most": 2, "group_by": "all"},
        "action": {"type": "notify_operator", "severity": "critical"},
        "message": "only {{window.count}} bill payments in 2 minutes"
    }));
    let look = |seconds: u64| {
        w.at_seconds(seconds);
        async { desk(&w).look().await.expect("a look") }
    };
    // Watched from the first look: a window that never held traffic is not a drop yet.
    assert_eq!(look(0).await.fired, 0);
    assert_eq!(look(60).await.fired, 0);
    // Traffic at 70-110 s: five payments from five users; no event fires a drop.
    let events: Vec<_> = (1..=5)
        .map(|u| (u, format!("d{u}"), 60 + 10 * u, paid(100)))
        .collect();
    let refs: Vec<_> = events
        .iter()
        .map(|(u, id, s, b)| (*u, id.as_str(), *s, b.clone()))
        .collect();
    assert_eq!(batch(&w, &refs).await, 0);
    assert_eq!(look(120).await.fired, 0, "five in the window");
    assert_eq!(look(180).await.fired, 0, "five still");
    // The window ending at 215 s starts after 95 s: the payments at 100 and 110 s are left.
    assert_eq!(look(215).await.fired, 1, "two in two minutes: a drop");
    assert_eq!(look(240).await.fired, 0, "told once");
    let alerts = w.ports.notifier.operator_alerts();
    assert_eq!(alerts.len(), 1);
    let fired = serde_json::to_value(&alerts[0]).expect("JSON");
    assert_eq!(fired["status"], "firing");
    assert_eq!(fired["text"], "only 2 bill payments in 2 minutes");
    // Traffic returns: three payments, and the next look says it is over.
    let back: Vec<_> = (6..=8)
        .map(|u| (u, format!("d{u}"), 250, paid(100)))
        .collect();
    let refs: Vec<_> = back
        .iter()
        .map(|(u, id, s, b)| (*u, id.as_str(), *s, b.clone()))
        .collect();
    assert_eq!(batch(&w, &refs).await, 0);
    assert_eq!(look(260).await.resolved, 1);
    let alerts = w.ports.notifier.operator_alerts();
    assert_eq!(
        serde_json::to_value(&alerts[1]).expect("JSON")["status"],
        "resolved"
    );
    // The backtest looks each whole minute: the first look with two or fewer is at 240 s.
    let rules = w.pipeline.evaluator.rules.current().await.expect("rules");
    let stored: Vec<_> = w.ports.events.all().into_iter().map(|r| r.event).collect();
    let replayed = cuba_core::console::backtest::replay(
        &rules.all()[0],
        &stored,
        START,
        START.plus_seconds(600),
        START.plus_seconds(600),
    );
    let found: Vec<(u64, &str, &str)> = replayed
        .iter()
        .map(|f| (f.fired_at.0, f.text.as_str(), f.trigger_event_id.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (
                START.plus_seconds(240).0,
                "only 0 bill payments in 2 minutes",
                "d5"
            ),
            (
                START.plus_seconds(420).0,
                "only 0 bill payments in 2 minutes",
                "d8"
            )
        ],
        "a drop after the first traffic, resolved by the second, and a drop after it"
    );
}

#[tokio::test]
async fn a_merchant_that_stops_receiving_payments_fires_its_own_drop() {
    let w = world(json!({
        "id": "biller-silent",
        "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
        "condition": {"type": "window", "seconds": 120, "count_at_most": 0,
                      "group_by": "properties.type"},
        "action": {"type": "notify_operator", "severity": "warning"},
        "message": "no {{group}} payment in 2 minutes"
    }));
    // Water and gas paid every 30 s for 3 minutes; then gas stops.
    let mut n = 0;
    for second in (0..=180).step_by(30) {
        for kind in ["water", "gas"] {
            if kind == "gas" && second > 60 {
                continue;
            }
            n += 1;
            batch(&w, &[(n, &format!("b{n}"), second, paid_type(10, kind))]).await;
        }
    }
    let look = |seconds: u64| {
        w.at_seconds(seconds);
        async { desk(&w).look().await.expect("a look") }
    };
    assert_eq!(look(120).await.fired, 0, "both paid within 2 minutes");
    assert_eq!(
        look(179).await.fired,
        0,
        "gas last paid at 60 s: 2 minutes not yet passed"
    );
    assert_eq!(look(185).await.fired, 1, "gas: no payment since 60 s");
    assert_eq!(look(200).await.fired, 0, "told once");
    let alerts = w.ports.notifier.operator_alerts();
    let texts: Vec<&str> = alerts.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(texts, ["no gas payment in 2 minutes"]);
    // Gas is paid again: resolved.
    batch(&w, &[(99, "g-back", 210, paid_type(10, "gas"))]).await;
    assert_eq!(look(220).await.resolved, 1);
    // The backtest finds the same drop, at the first whole minute that sees it.
    let rules = w.pipeline.evaluator.rules.current().await.expect("rules");
    let stored: Vec<_> = w.ports.events.all().into_iter().map(|r| r.event).collect();
    let replayed = cuba_core::console::backtest::replay(
        &rules.all()[0],
        &stored,
        START,
        START.plus_seconds(300),
        START.plus_seconds(300),
    );
    let found: Vec<(u64, &str)> = replayed
        .iter()
        .map(|f| (f.fired_at.0, f.text.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (START.plus_seconds(180).0, "no gas payment in 2 minutes"),
            (START.plus_seconds(300).0, "no water payment in 2 minutes")
        ],
        "the first whole minutes 2 minutes past gas's last payment (60 s) and water's (180 s)"
    );
}

#[test]
fn a_window_across_users_alerts_operators_only_and_keeps_at_most_100_distinct_values() {
    let sms = json!({"rules": [{
        "id": "surge", "when": {"kind": "feedback"},
        "condition": {"type": "window", "seconds": 60, "count_at_least": 3, "group_by": "all"},
        "action": {"type": "sms_user"}, "message": "m"
    }]});
    let problems = format!("{:?}", RuleSet::from_json(&sms).unwrap_err());
    assert!(problems.contains("rules[0].action.type"), "{problems}");
    let distinct = json!({"rules": [{
        "id": "surge", "when": {"kind": "feedback"},
        "condition": {"type": "window", "seconds": 60, "group_by": "properties.merchant",
                      "distinct": {"field": "user", "at_least": 101}},
        "action": {"type": "notify_operator"}, "message": "m"
    }]});
    let problems = format!("{:?}", RuleSet::from_json(&distinct).unwrap_err());
    assert!(
        problems.contains("rules[0].condition.distinct"),
        "{problems}"
    );
    let bad = json!({"rules": [{
        "id": "surge", "when": {"kind": "feedback"},
        "condition": {"type": "window", "seconds": 60, "count_at_least": 3, "group_by": "a..b"},
        "action": {"type": "notify_operator"}, "message": "m"
    }]});
    let problems = format!("{:?}", RuleSet::from_json(&bad).unwrap_err());
    assert!(
        problems.contains("rules[0].condition.group_by"),
        "{problems}"
    );
    let per_user_repeat = json!({"rules": [{
        "id": "surge", "when": {"kind": "feedback"},
        "condition": {"type": "window", "seconds": 60, "count_at_least": 3, "repeat_seconds": 600},
        "action": {"type": "notify_operator"}, "message": "m"
    }]});
    let problems = format!("{:?}", RuleSet::from_json(&per_user_repeat).unwrap_err());
    assert!(
        problems.contains("rules[0].condition.repeat_seconds"),
        "{problems}"
    );
    // A rule of today's language keeps its meaning (and its window's definition).
    let plain = |extra: Option<&str>| {
        let mut condition = json!({"type": "window", "seconds": 60, "count_at_least": 3});
        if let Some(g) = extra {
            condition["group_by"] = json!(g);
        }
        let rules = RuleSet::from_json(&json!({"rules": [{
            "id": "r", "when": {"kind": "feedback"}, "condition": condition,
            "action": {"type": "notify_operator"}, "message": "m"
        }]}))
        .expect("a rule");
        let Condition::Window(w) = &rules.all()[0].condition else {
            panic!("a window");
        };
        w.definition
    };
    assert_eq!(plain(None), plain(Some("user")));
    assert_ne!(plain(None), plain(Some("all")));
}

/// The exact reference: every distinct event's count and amount, per group and step, as a scan
/// of the events would add them up.
#[tokio::test]
async fn counters_agree_with_a_scan_however_batched_reordered_and_redelivered() {
    for seed in [7u64, 1_234_567, 99_999_989] {
        let w = world(json!({
            "id": "by-type",
            "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
            "condition": {"type": "window", "seconds": 120, "sum": {"field": "properties.amount", "at_least": 1e15},
                          "distinct": {"field": "user", "at_least": 100}, "group_by": "properties.type"},
            "action": {"type": "notify_operator"},
            "message": "m"
        }));
        let mut dice = Dice(seed);
        let kinds = ["water", "gas", "power"];
        // 300 events over 10 minutes, each stored once (at its own time).
        let mut stored = Vec::new();
        for n in 0..300u64 {
            let second = dice.below(600);
            let kind = kinds[dice.below(3) as usize];
            let amount = dice.below(10_000);
            w.at_seconds(second);
            let received = w
                .ingest(
                    1 + dice.below(40),
                    &format!("e{n}"),
                    paid_type(amount, kind),
                )
                .await;
            stored.push((received, kind, amount));
        }
        // Delivered in a shuffled order, a fifth of them twice, in batches of 1 to 40; some
        // batches flushed twice (a retry after a crash past the flush).
        let mut order: Vec<usize> = (0..stored.len()).collect();
        order.extend((0..stored.len()).filter(|_| dice.below(5) == 0));
        for i in (1..order.len()).rev() {
            order.swap(i, dice.below(i as u64 + 1) as usize);
        }
        let mut rest = order.as_slice();
        while !rest.is_empty() {
            let take = (1 + dice.below(40) as usize).min(rest.len());
            let (now, later) = rest.split_at(take);
            rest = later;
            let mut grouped: Vec<GroupContribution> = Vec::new();
            for &i in now {
                match w.pipeline.process(&stored[i].0).await.expect("processed") {
                    Processed::Valid { grouped: adds, .. } => grouped.extend(adds),
                    Processed::Invalid(v) => panic!("invalid: {v:?}"),
                }
            }
            let flushes = if dice.below(4) == 0 { 2 } else { 1 };
            for _ in 0..flushes {
                w.pipeline.groups.flush(&grouped).await.expect("flushed");
            }
        }
        let rules = w.pipeline.evaluator.rules.current().await.expect("rules");
        let Condition::Window(window) = &rules.all()[0].condition else {
            panic!("a window rule");
        };
        let steps = Steps::of(window);
        let mut scan: BTreeMap<(&str, u64), (u32, f64)> = BTreeMap::new();
        let mut payers: BTreeMap<(&str, u64), HashSet<u64>> = BTreeMap::new();
        let mut seen = HashSet::new();
        for (received, kind, amount) in &stored {
            if seen.insert(received.event.id.clone()) {
                let step = steps.step_of(received.event.received_at);
                let entry = scan.entry((*kind, step)).or_default();
                entry.0 += 1;
                entry.1 += *amount as f64;
                payers
                    .entry((*kind, step))
                    .or_default()
                    .insert(received.event.user.0);
            }
        }
        for end in (0..=660).step_by(7) {
            let at = START.plus_seconds(end);
            let range = steps.ending(at);
            for kind in kinds {
                let key = cuba_core::evaluation::group_window::GroupWindowKey {
                    rule: rules.all()[0].id.clone(),
                    definition: window.definition,
                    group: GroupKey::stored(kind),
                };
                let got = w
                    .ports
                    .group_windows
                    .totals(&key, steps, range.clone())
                    .await
                    .expect("totals");
                let want = scan
                    .range((kind, *range.start())..=(kind, *range.end()))
                    .fold((0u32, 0.0), |acc, (_, (n, s))| (acc.0 + n, acc.1 + s));
                assert_eq!(
                    (got.count, got.sum),
                    want,
                    "seed {seed}, {kind}, window ending {end} s"
                );
                // Fewer than 100 users: no step is full, so the values are exact.
                let values = w
                    .ports
                    .group_windows
                    .values(&key, steps, range.clone())
                    .await
                    .expect("values");
                let users: HashSet<String> = payers
                    .range((kind, *range.start())..=(kind, *range.end()))
                    .flat_map(|(_, users)| users.iter().map(|u| u.to_string()))
                    .collect();
                assert_eq!(
                    values.len(),
                    users.len(),
                    "seed {seed}, {kind}, window ending {end} s: different users"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_backtest_of_a_fleet_rule_agrees_with_the_live_engine() {
    let w = world(fleet_rule("all"));
    let mut stored = Vec::new();
    // Two bursts ten minutes apart, and a trickle that never makes five in five minutes.
    for (n, second) in [
        10, 20, 30, 40, 50, 60, 70, 700, 710, 720, 730, 740, 1500, 1700, 1900,
    ]
    .into_iter()
    .enumerate()
    {
        w.at_seconds(second);
        let received = w.ingest(1 + n as u64, &format!("b{n}"), paid(100)).await;
        // Live, one event per batch, the sweeper looking each minute in between.
        if let Processed::Valid { grouped, .. } =
            w.pipeline.process(&received).await.expect("processed")
        {
            w.pipeline.groups.flush(&grouped).await.expect("flushed");
        }
        stored.push(received.event);
        let next = [
            10, 20, 30, 40, 50, 60, 70, 700, 710, 720, 730, 740, 1500, 1700, 1900,
        ]
        .get(n + 1)
        .copied()
        .unwrap_or(2000);
        let mut look = (second / 60 + 1) * 60;
        while look < next {
            w.at_seconds(look);
            desk(&w).look().await.expect("a look");
            look += 60;
        }
    }
    let live: Vec<u64> = w
        .ports
        .notifier
        .operator_alerts()
        .iter()
        .filter(|a| serde_json::to_value(a).expect("JSON")["status"] == "firing")
        .map(|a| a.fired_at.0)
        .collect();
    assert_eq!(
        live,
        [START.plus_seconds(50).0, START.plus_seconds(740).0],
        "two bursts, two firings"
    );
    let rules = w.pipeline.evaluator.rules.current().await.expect("rules");
    let replayed = cuba_core::console::backtest::replay(
        &rules.all()[0],
        &stored,
        START,
        START.plus_seconds(2000),
        START.plus_seconds(2000),
    );
    let times: Vec<u64> = replayed.iter().map(|f| f.fired_at.0).collect();
    assert_eq!(times, live);
    assert!(replayed.iter().all(|f| f.user.0 == 0));
    assert_eq!(
        replayed[0].text,
        "5 bill payments (500 in all) for all within 5 minutes"
    );
}

#[tokio::test]
async fn a_users_window_that_alerted_ops_says_when_it_is_over() {
    let w = world(json!({
        "id": "payments-burst-ops",
        "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
        "condition": {"type": "window", "seconds": 300, "count_at_least": 3},
        "action": {"type": "notify_operator", "severity": "warning"},
        "message": "user {{user}} paid {{window.count}} bills in 5 minutes"
    }));
    for (n, second) in [100u64, 110, 120, 130].into_iter().enumerate() {
        w.at_seconds(second);
        w.deliver(42, &format!("u{n}"), paid(10)).await;
    }
    let look = |seconds: u64| {
        w.at_seconds(seconds);
        async { desk(&w).look().await.expect("a look") }
    };
    // Still four in the window at 380 s; at 415 s the payments of 100 and 110 s have left.
    assert_eq!(look(380).await.resolved, 0);
    assert_eq!(look(415).await.resolved, 1);
    assert_eq!(look(500).await.resolved, 0, "told once");
    let alerts = w.ports.notifier.operator_alerts();
    let bodies: Vec<serde_json::Value> = alerts
        .iter()
        .map(|a| serde_json::to_value(a).expect("JSON"))
        .collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0]["text"], "user 42 paid 3 bills in 5 minutes");
    assert_eq!(bodies[1]["status"], "resolved");
    assert_eq!(bodies[1]["user"], 42);
    assert_eq!(bodies[1]["firing_since"], json!(START.plus_seconds(120).0));
    assert!(
        bodies[1]["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Resolved: rule payments-burst-ops for user 42")),
        "{bodies:?}"
    );
}

fn web(session: &str, category: &str, name: &str, data: serde_json::Value) -> EventBody {
    EventBody::Web(cuba_core::model::domain::WebEvent {
        session_id: cuba_core::model::domain::SessionId::parse(session).expect("a session id"),
        category: Some(category.to_owned()),
        name: name.to_owned(),
        data,
        timestamp: START,
    })
}

#[tokio::test]
async fn an_absence_grouped_by_a_field_is_answered_by_any_users_event_of_the_group() {
    let w = world(json!({
        "id": "submitted-not-confirmed",
        "when": {"kind": "web", "category": "form interaction", "name": "submit"},
        "condition": {"type": "absence", "seconds": 60, "group_by": "session_id",
                      "expect": {"kind": "web", "category": "page interaction", "name": "pageview"}},
        "action": {"type": "notify_operator", "severity": "warning"},
        "message": "session {{session_id}}: a form submitted and no page after it"
    }));
    let (one, two) = (
        "6f1c2e0a-1b2c-4d3e-8f40-5a6b7c8d9e01",
        "6f1c2e0a-1b2c-4d3e-8f40-5a6b7c8d9e02",
    );
    let form =
        json!({"host": "cube.app", "path": "/pay", "form": {"first_name": "A", "last_name": "B"}});
    let page = json!({"host": "cube.app", "path": "/done"});
    w.at_seconds(10);
    w.deliver(
        1,
        "s1",
        web(one, "form interaction", "submit", form.clone()),
    )
    .await;
    w.deliver(
        2,
        "s2",
        web(two, "form interaction", "submit", form.clone()),
    )
    .await;
    // Session one's page comes from another user (signed in since); session two's never comes,
    // though user 2 views a page in session one.
    w.at_seconds(30);
    w.deliver(
        7,
        "p1",
        web(one, "page interaction", "pageview", page.clone()),
    )
    .await;
    w.deliver(
        2,
        "p2",
        web(one, "page interaction", "pageview", page.clone()),
    )
    .await;
    w.at_seconds(80);
    let outcomes = w.run_checks().await;
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    let texts: Vec<String> = w
        .ports
        .notifier
        .operator_alerts()
        .iter()
        .map(|a| a.text.clone())
        .collect();
    assert_eq!(
        texts,
        [format!(
            "session {two}: a form submitted and no page after it"
        )]
    );
    // The backtest decides the same.
    let rules = w.pipeline.evaluator.rules.current().await.expect("rules");
    let stored: Vec<_> = w.ports.events.all().into_iter().map(|r| r.event).collect();
    let replayed = cuba_core::console::backtest::replay(
        &rules.all()[0],
        &stored,
        START,
        START.plus_seconds(100),
        START.plus_seconds(100),
    );
    let triggers: Vec<&str> = replayed
        .iter()
        .map(|f| f.trigger_event_id.as_str())
        .collect();
    assert_eq!(triggers, ["s2"]);
}
