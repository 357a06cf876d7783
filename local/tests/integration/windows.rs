//! A `distinct` window on the local stack: a user paying three different merchants within ten
//! minutes tells ops once, the same merchant again and again tells nothing, and the window's
//! members keep their merchant in moto's rule-state table between requests.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Options, TestStack};

fn card_testing_rules() -> std::path::PathBuf {
    let rules = json!({"rules": [{
        "id": "card-testing",
        "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
        "condition": {"type": "window", "seconds": 600,
                      "distinct": {"field": "properties.merchant", "at_least": 3}},
        "action": {"type": "notify_operator", "severity": "critical"},
        "message": "user {{user}} paid {{window.distinct}} merchants in {{window.count}} payments"
    }]});
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rules-distinct-{}.json", std::process::id()));
    std::fs::write(&path, rules.to_string()).expect("write the rules");
    path
}

fn paid(merchant: &str) -> serde_json::Value {
    json!({"noun": "bill", "verb": "paid",
           "properties": {"amount": 100, "type": "card", "merchant": merchant}})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_paying_many_different_merchants_tells_ops_once() {
    let t = TestStack::start_with(Options {
        rules_file: Some(card_testing_rules()),
        ..Options::default()
    })
    .await;
    // One merchant over and over: many payments, one value.
    for _ in 0..4 {
        t.accept("/api/v1/event/", 71, &paid("acme")).await;
    }
    t.wait_for_stream(4).await;
    assert!(
        t.operator_alerts(Duration::from_secs(2)).await.is_empty(),
        "one merchant is not many"
    );
    // Three merchants: the third payment's window holds them all.
    for merchant in ["zeta", "omega"] {
        t.accept("/api/v1/event/", 72, &paid("acme")).await;
        t.accept("/api/v1/event/", 72, &paid(merchant)).await;
    }
    let alerts = t.expect_operator_alerts(1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let (body, attributes) = &alerts[0];
    assert_eq!(body["rule_id"], "card-testing");
    assert_eq!(body["user"], 72);
    assert_eq!(attributes["severity"], "critical");
    assert_eq!(body["text"], "user 72 paid 3 merchants in 4 payments");
}
