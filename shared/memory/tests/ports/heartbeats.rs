//! Heartbeat rules end to end on the memory ports: the stream consumer keeps the last sighting
//! (a few writes, not one per event), the watch fires once per silence with the time it began,
//! says when traffic is back, and a repeated look sends nothing twice; a rule that reminds sends
//! one reminder per period while the silence lasts.

use std::sync::Arc;

use cuba_core::evaluation::heartbeat::{HeartbeatReport, HeartbeatWatch};
use cuba_core::evaluation::ports::RuleState;
use cuba_core::model::clock::Clock;
use cuba_core::model::domain::UserId;
use cuba_core::rules::{RuleId, RuleSet};
use serde_json::json;

use crate::common::{START, World, feedback, paid};

fn world() -> World {
    World::with_rules(
        RuleSet::from_json(&json!({"rules": [{
            "id": "payments-flowing",
            "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
            "condition": {"type": "heartbeat", "seconds": 600},
            "action": {"type": "notify_operator", "severity": "critical"},
            "message": "no bill payment from anyone since {{heartbeat.last_seen}}"
        }]}))
        .expect("a heartbeat rule"),
    )
}

fn watch(w: &World) -> HeartbeatWatch {
    let clock: Arc<dyn Clock> = Arc::new(w.clock.clone());
    HeartbeatWatch {
        rules: w.pipeline.evaluator.rules.clone(),
        state: w.ports.rule_state.clone(),
        dispatcher: w.ports.dispatcher(clock.clone()),
        clock,
    }
}

async fn look(w: &World, seconds: u64) -> HeartbeatReport {
    w.at_seconds(seconds);
    watch(w).look().await.expect("a look")
}

#[tokio::test]
async fn a_silence_fires_once_and_is_resolved_when_traffic_returns() {
    let w = world();
    assert_eq!(
        look(&w, 0).await,
        HeartbeatReport {
            watched: 1,
            fired: 0,
            reminded: 0,
            resolved: 0
        },
        "watched from its first look"
    );
    // Payments from many users in a burst: one sighting written, not one per event.
    w.at_seconds(100);
    for user in 1..=50 {
        w.deliver(user, &format!("p{user}"), paid(100)).await;
    }
    assert_eq!(w.ports.faults.count("rule_state.heartbeat_seen"), 1);
    // Feedback does not keep a payments heartbeat alive.
    w.at_seconds(500);
    w.deliver(1, "f1", feedback(5)).await;
    assert_eq!(
        look(&w, 700).await.fired,
        0,
        "600 s after the last payment: not yet"
    );
    assert_eq!(look(&w, 701).await.fired, 1);
    assert_eq!(look(&w, 800).await.fired, 0, "told once per silence");
    let alerts = w.ports.notifier.operator_alerts();
    assert_eq!(alerts.len(), 1);
    let silent = serde_json::to_value(&alerts[0]).expect("JSON");
    assert_eq!(silent["status"], "firing");
    assert_eq!(silent["silent_since"], json!(START.plus_seconds(100).0));
    assert_eq!(silent["user"], 0);
    assert_eq!(silent["severity"], "critical");
    assert_eq!(
        alerts[0].text,
        format!(
            "no bill payment from anyone since {}",
            START.plus_seconds(100).utc_text()
        )
    );

    w.at_seconds(900);
    w.deliver(7, "p-back", paid(100)).await;
    assert_eq!(look(&w, 960).await.resolved, 1);
    assert_eq!(
        look(&w, 1000).await,
        HeartbeatReport {
            watched: 1,
            fired: 0,
            reminded: 0,
            resolved: 0
        }
    );
    let alerts = w.ports.notifier.operator_alerts();
    assert_eq!(alerts.len(), 2);
    let back = serde_json::to_value(&alerts[1]).expect("JSON");
    assert_eq!(back["status"], "resolved");
    assert_eq!(back["silent_since"], silent["silent_since"]);
    assert!(
        alerts[1]
            .text
            .starts_with("Resolved: rule payments-flowing"),
        "{}",
        alerts[1].text
    );
    assert!(alerts.iter().all(|a| a.user == UserId(0)));

    // The next silence is a new one: told again.
    assert_eq!(look(&w, 1501).await.fired, 1);
    assert_eq!(w.ports.notifier.operator_alerts().len(), 3);
}

#[tokio::test]
async fn a_look_repeated_after_a_lost_state_write_sends_nothing_twice() {
    let w = world();
    look(&w, 0).await;
    assert_eq!(look(&w, 601).await.fired, 1);
    // As if the look stopped between its alert and its state write.
    w.ports
        .rule_state
        .set_heartbeat_silence(&RuleId::parse("payments-flowing").expect("an id"), None)
        .await
        .expect("forgotten");
    look(&w, 660).await;
    assert_eq!(
        w.ports.notifier.operator_alerts().len(),
        1,
        "the ledger holds the silence's alert already"
    );
    assert_eq!(look(&w, 720).await.fired, 0, "and the state is moved on");
}

#[tokio::test]
async fn a_reminding_rule_tells_ops_again_each_period_while_the_silence_lasts() {
    let w = World::with_rules(
        RuleSet::from_json(&json!({"rules": [{
            "id": "payments-flowing",
            "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
            "condition": {"type": "heartbeat", "seconds": 600, "repeat_seconds": 1800},
            "action": {"type": "notify_operator", "severity": "critical"},
            "message": "no bill payment from anyone since {{heartbeat.last_seen}}"
        }]}))
        .expect("a reminding heartbeat rule"),
    );
    look(&w, 0).await;
    assert_eq!(look(&w, 601).await.fired, 1);
    // Told at 600 s: reminders at 2,400 s and 4,200 s, each once however often the sweep looks.
    assert_eq!(look(&w, 2_399).await.reminded, 0);
    assert_eq!(look(&w, 2_400).await.reminded, 1);
    assert_eq!(look(&w, 2_460).await.reminded, 0, "one per period");
    assert_eq!(look(&w, 4_300).await.reminded, 1);
    let alerts = w.ports.notifier.operator_alerts();
    assert_eq!(alerts.len(), 3);
    let ids: Vec<&str> = alerts.iter().map(|a| a.alert_id.as_str()).collect();
    let since = START.0;
    assert_eq!(
        ids,
        [
            format!("payments-flowing#0#silent@{since}"),
            format!("payments-flowing#0#silent@{since}.1"),
            format!("payments-flowing#0#silent@{since}.2"),
        ]
    );
    let reminder = serde_json::to_value(&alerts[2]).expect("JSON");
    assert_eq!(reminder["status"], "firing");
    assert_eq!(reminder["silent_since"], json!(since));
    assert!(
        alerts[2]
            .text
            .starts_with("Still silent (reminder 2): no bill payment from anyone since "),
        "{}",
        alerts[2].text
    );
    // Traffic back: resolved, and no more reminders.
    w.at_seconds(4_400);
    w.deliver(1, "p1", paid(100)).await;
    assert_eq!(look(&w, 4_460).await.resolved, 1);
    assert_eq!(look(&w, 6_100).await.reminded, 0);
}
