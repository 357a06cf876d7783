//! Grouped operator notifications at delivery: a grouping rule's alerts are each recorded
//! `grouped` and gathered into one message per interval, which the sweeper publishes when it
//! is due: `wait_seconds` after a quiet rule's first alert, at the interval's end while the rule
//! keeps firing. A silence made after the alerts were gathered holds the message too.

use std::sync::Arc;

use crate::common::World;
use cuba_core::delivery::alert::{Alert, AlertId, AlertStatus, Delivery};
use cuba_core::delivery::alerting::Dispatched;
use cuba_core::delivery::grouping::GROUP_SAMPLE;
use cuba_core::delivery::silences::{SilenceRequest, SilenceStore};
use cuba_core::model::clock::Clock;
use cuba_core::model::domain::{EventId, Millis, UserId};
use cuba_core::rules::{Action, Grouping, RuleId, Severity};

const GROUPING: Grouping = Grouping {
    wait_seconds: 30,
    interval_seconds: 300,
};

fn rule() -> RuleId {
    RuleId::parse("no-feedback").expect("a rule id")
}

fn operator_alert(w: &World, user: u64, event: &str) -> Alert {
    let trigger = EventId::parse(event).expect("an id");
    Alert {
        trace: None,
        id: AlertId::for_trigger(&rule(), UserId(user), &trigger),
        rule_id: rule(),
        user: UserId(user),
        event_ids: vec![trigger],
        action: Action::NotifyOperator {
            severity: Severity::Warning,
            grouping: Some(GROUPING),
        },
        text: format!("no feedback from user {user}"),
        translations: Default::default(),
        fired_at: w.clock.now(),
    }
}

/// Dispatches `n` alerts now (users from `first_user`): answers the group message each went in.
async fn fire(w: &World, first_user: u64, n: u64) -> Vec<AlertId> {
    let dispatcher = w.ports.dispatcher(Arc::new(w.clock.clone()));
    let mut notices = Vec::new();
    for user in first_user..first_user + n {
        let alert = operator_alert(w, user, &format!("e{user}"));
        match dispatcher.dispatch(&alert).await {
            Ok(Dispatched::Delivered(Delivery::Grouped { notice })) => notices.push(notice),
            other => panic!("alert {user}: {other:?}"),
        }
    }
    notices.dedup();
    notices
}

fn set(w: &World, at: Millis) {
    w.clock.set(at);
}

#[tokio::test]
async fn hundreds_of_alerts_make_one_message_per_interval() {
    let w = World::new();
    let slot = GROUPING.slot(w.clock.now());
    let slot_start = Millis(slot * 300_000);
    let slot_end = Millis((slot + 1) * 300_000);
    // Early in an interval, so the wait ends inside it.
    set(&w, slot_start.plus_seconds(10));
    let opened = w.clock.now();
    let first = fire(&w, 1, 200).await;
    assert_eq!(first.len(), 1, "one message gathers them all: {first:?}");
    assert!(w.ports.notifier.operator_alerts().is_empty());
    let grouped = w
        .ledger()
        .into_iter()
        .filter(|e| e.status == AlertStatus::Grouped)
        .count();
    assert_eq!(grouped, 200, "every alert keeps its entry");

    set(&w, opened.plus_seconds(30));
    assert_eq!(w.sweep().await.groups_sent, 0, "not before the wait ends");
    set(&w, opened.plus_seconds(31));
    assert_eq!(w.sweep().await.groups_sent, 1);
    let groups = w.ports.notifier.operator_groups();
    assert_eq!(groups.len(), 1);
    let message = &groups[0];
    assert_eq!(message.alert_id, first[0]);
    assert_eq!(message.count, 200);
    assert_eq!(message.alerts.len(), GROUP_SAMPLE);
    assert_eq!(message.alerts[0].user, UserId(1));
    assert_eq!(message.alerts[0].text, "no feedback from user 1");
    assert!(
        message
            .text
            .starts_with("Rule no-feedback fired 200 alerts")
    );
    assert!(
        w.ports.notifier.operator_alerts().is_empty(),
        "none went out alone"
    );

    // Later in the same interval: a second message, at its end.
    set(&w, opened.plus_seconds(60));
    let second = fire(&w, 201, 50).await;
    assert_eq!(second.len(), 1);
    assert_ne!(second, first);
    set(&w, Millis(slot_end.0 - 1));
    assert_eq!(
        w.sweep().await.groups_sent,
        0,
        "not before the interval ends"
    );
    set(&w, slot_end.plus_seconds(1));
    assert_eq!(w.sweep().await.groups_sent, 1);
    assert_eq!(w.ports.notifier.operator_groups()[1].count, 50);

    // The next interval, the rule still firing: no early message, one at its end.
    set(&w, slot_end.plus_seconds(5));
    let third = fire(&w, 251, 10).await;
    set(&w, slot_end.plus_seconds(60));
    assert_eq!(
        w.sweep().await.groups_sent,
        0,
        "a busy rule waits for the interval"
    );
    set(&w, slot_end.plus_seconds(301));
    assert_eq!(w.sweep().await.groups_sent, 1);
    let groups = w.ports.notifier.operator_groups();
    assert_eq!(groups.len(), 3);
    assert_eq!(groups[2].alert_id, third[0]);
    assert_eq!(groups[2].count, 10);

    // Two intervals later the rule was quiet the interval before: the wait applies again.
    let quiet = Millis((slot + 3) * 300_000).plus_seconds(100);
    set(&w, quiet);
    fire(&w, 300, 1).await;
    set(&w, quiet.plus_seconds(31));
    assert_eq!(w.sweep().await.groups_sent, 1);
    let lone = w.ports.notifier.operator_groups().pop().expect("a message");
    assert_eq!(lone.count, 1);
    assert_eq!(
        lone.text, "no feedback from user 300",
        "one alert reads as itself"
    );

    let ledger = w.ledger();
    let messages: Vec<_> = ledger.iter().filter(|e| e.is_group_notice()).collect();
    assert_eq!(messages.len(), 4);
    assert!(messages.iter().all(|m| m.status == AlertStatus::Sent));
    let members: u64 = messages.iter().filter_map(|m| m.group.members).sum();
    assert_eq!(members, 261, "every alert counted once");
}

#[tokio::test]
async fn a_silence_made_after_alerts_gathered_holds_their_message() {
    let w = World::new();
    let notices = fire(&w, 1, 3).await;
    let now = w.clock.now();
    let silence = SilenceRequest {
        rule_id: rule(),
        user: None,
        starts_at: None,
        ends_at: now.plus_seconds(3600),
        repeat: None,
        reason: "maintenance".into(),
    }
    .silence("ops@cube.test", now)
    .expect("a silence");
    w.ports
        .silences
        .create(&silence, now)
        .await
        .expect("created");
    set(&w, now.plus_seconds(600));
    assert_eq!(w.sweep().await.groups_sent, 1);
    assert!(w.ports.notifier.operator_groups().is_empty());
    let message = w
        .ledger()
        .into_iter()
        .find(|e| e.alert_id == notices[0])
        .expect("the message's entry");
    assert_eq!(message.status, AlertStatus::Silenced);
    assert_eq!(message.group.members, Some(3));
}
