//! A heartbeat rule on the local stack: the sweeper's schedule tells ops once when bill
//! payments stop (from anyone) for longer than the rule allows, reminds them once the rule's
//! repeat has passed, and tells them once more when payments are back. The stack's clock is
//! held by the test.

use std::sync::Arc;
use std::time::Duration;

use cuba_core::model::clock::{Clock, ManualClock};
use serde_json::json;

use crate::harness::{Options, TestStack, bill, s};

const RULE: &str = "payments-flowing";

fn heartbeat_rules() -> std::path::PathBuf {
    let rules = json!({"rules": [{
        "id": RULE,
        "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
        "condition": {"type": "heartbeat", "seconds": 60, "repeat_seconds": 600},
        "action": {"type": "notify_operator", "severity": "critical"},
        "message": "no bill payment from anyone since {{heartbeat.last_seen}}"
    }]});
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rules-heartbeat-{}.json", std::process::id()));
    std::fs::write(&path, rules.to_string()).expect("write the rules");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeat_fires_when_payments_stop_and_resolves_when_they_return() {
    let clock = ManualClock::starting_now();
    let t = TestStack::start_with(Options {
        clock: Arc::new(clock.clone()),
        rules_file: Some(heartbeat_rules()),
        ..Options::default()
    })
    .await;
    let first = clock.now();
    t.accept("/api/v1/event/", 1, &bill(100)).await;
    t.wait_for_stream(1).await;
    assert!(
        t.operator_alerts(Duration::from_secs(3)).await.is_empty(),
        "payments flow"
    );

    clock.advance_seconds(61);
    let silent = t.expect_operator_alerts(1).await;
    assert_eq!(silent.len(), 1, "{silent:?}");
    let (body, attributes) = &silent[0];
    assert_eq!(body["status"], "firing");
    assert_eq!(body["rule_id"], RULE);
    assert_eq!(body["silent_since"], json!(first.0));
    assert_eq!(body["user"], 0);
    assert_eq!(attributes["severity"], "critical");
    assert_eq!(
        body["text"],
        format!("no bill payment from anyone since {}", first.utc_text())
    );
    assert!(
        t.operator_alerts(Duration::from_secs(3)).await.is_empty(),
        "one message per silence, however many sweeps see it"
    );

    // Still silent ten minutes after it was told: one reminder.
    clock.advance_seconds(600);
    let reminded = t.expect_operator_alerts(1).await;
    assert_eq!(reminded.len(), 1, "{reminded:?}");
    assert_eq!(
        reminded[0].0["alert_id"],
        format!("{RULE}#0#silent@{}.1", first.0)
    );
    assert_eq!(reminded[0].0["status"], "firing");
    assert!(
        reminded[0].0["text"]
            .as_str()
            .is_some_and(|text| text.starts_with("Still silent (reminder 1): no bill payment")),
        "{reminded:?}"
    );

    t.accept("/api/v1/event/", 2, &bill(100)).await;
    t.wait_for_stream(2).await;
    let back = t.expect_operator_alerts(1).await;
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0].0["status"], "resolved");
    assert_eq!(back[0].0["silent_since"], json!(first.0));
    let ledger = t.ledger_for(RULE).await;
    assert_eq!(ledger.len(), 3, "told, reminded, resolved: {ledger:?}");
    assert!(ledger.iter().all(|item| s(item, "status") == "sent"));
}

fn drop_rules() -> std::path::PathBuf {
    let rules = json!({"rules": [{
        "id": "payments-dropped",
        "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
        "condition": {"type": "window", "seconds": 60, "count_at_most": 1, "group_by": "all"},
        "action": {"type": "notify_operator", "severity": "critical"},
        "message": "only {{window.count}} bill payments from anyone in the last minute"
    }]});
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rules-drop-{}.json", std::process::id()));
    std::fs::write(&path, rules.to_string()).expect("write the rules");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drop_in_volume_fires_on_the_sweepers_clock_and_resolves_when_payments_return() {
    let clock = ManualClock::starting_now();
    let t = TestStack::start_with(Options {
        clock: Arc::new(clock.clone()),
        rules_file: Some(drop_rules()),
        ..Options::default()
    })
    .await;
    for user in 1..=3 {
        t.accept("/api/v1/event/", 500 + user, &bill(100)).await;
    }
    t.wait_for_stream(3).await;
    // The sweeper looks every two seconds here: by now it has watched the rule (from this
    // instant), and three payments is no drop.
    assert!(
        t.operator_alerts(Duration::from_secs(5)).await.is_empty(),
        "payments flow"
    );
    clock.advance_seconds(61);
    let dropped = t.expect_operator_alerts(1).await;
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    let (body, attributes) = &dropped[0];
    assert_eq!(body["status"], "firing");
    assert_eq!(body["rule_id"], "payments-dropped");
    assert_eq!(body["user"], 0);
    assert_eq!(attributes["severity"], "critical");
    assert_eq!(
        body["text"],
        "only 0 bill payments from anyone in the last minute"
    );
    assert!(
        t.operator_alerts(Duration::from_secs(3)).await.is_empty(),
        "told once, however many looks see it"
    );
    for user in 4..=5 {
        t.accept("/api/v1/event/", 500 + user, &bill(100)).await;
    }
    t.wait_for_stream(5).await;
    let back = t.expect_operator_alerts(1).await;
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0].0["status"], "resolved");
    assert_eq!(back[0].0["firing_since"], body["firing_since"]);
}
