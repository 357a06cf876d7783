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

fn fleet_rules() -> std::path::PathBuf {
    let rules = json!({"rules": [
        {
            "id": "payments-surge",
            "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
            "condition": {"type": "window", "seconds": 300, "count_at_least": 8, "group_by": "all"},
            "action": {"type": "notify_operator", "severity": "warning"},
            "message": "{{window.count}} bill payments from all users within 5 minutes"
        },
        {
            "id": "merchant-surge",
            "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
            "condition": {"type": "window", "seconds": 300, "count_at_least": 5,
                          "sum": {"field": "properties.amount", "at_least": 400},
                          "group_by": "properties.merchant"},
            "action": {"type": "notify_operator", "severity": "critical"},
            "message": "{{window.count}} payments ({{window.sum}} in all) to {{group}} within 5 minutes"
        },
        {
            "id": "merchant-payers",
            "when": {"kind": "activity", "noun": "bill", "verb": "paid"},
            "condition": {"type": "window", "seconds": 300,
                          "distinct": {"field": "user", "at_least": 5},
                          "group_by": "properties.merchant"},
            "action": {"type": "notify_operator", "severity": "critical"},
            "message": "{{window.distinct}} different users paid {{group}} within 5 minutes"
        }
    ]});
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rules-fleet-{}.json", std::process::id()));
    std::fs::write(&path, rules.to_string()).expect("write the rules");
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn fleet_and_merchant_windows_fire_once_across_users_and_resolve() {
    let clock = cuba_core::model::clock::ManualClock::starting_now();
    let t = TestStack::start_with(Options {
        clock: std::sync::Arc::new(clock.clone()),
        rules_file: Some(fleet_rules()),
        ..Options::default()
    })
    .await;
    // Ten users pay, one payment each: five to acme, five spread over other merchants.
    for user in 1..=10u64 {
        let merchant = if user % 2 == 0 {
            "acme".to_owned()
        } else {
            format!("shop-{user}")
        };
        t.accept("/api/v1/event/", 300 + user, &paid(&merchant))
            .await;
    }
    t.wait_for_stream(10).await;
    let alerts = t.expect_operator_alerts(3).await;
    let mut by_rule: Vec<(String, serde_json::Value)> = alerts
        .iter()
        .map(|(body, _)| {
            (
                body["rule_id"].as_str().unwrap_or_default().to_owned(),
                body.clone(),
            )
        })
        .collect();
    by_rule.sort_by(|a, b| a.0.cmp(&b.0));
    let rules: Vec<&str> = by_rule.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        rules,
        ["merchant-payers", "merchant-surge", "payments-surge"],
        "{alerts:?}"
    );
    assert_eq!(
        by_rule[0].1["text"],
        "5 different users paid acme within 5 minutes"
    );
    let (merchant, fleet) = (&by_rule[1].1, &by_rule[2].1);
    assert_eq!(
        merchant["text"],
        "5 payments (500 in all) to acme within 5 minutes"
    );
    assert_eq!(fleet["status"], "firing");
    assert_eq!(fleet["user"], 0);
    let fired = fleet["text"].as_str().unwrap_or_default();
    assert!(
        fired.ends_with(" bill payments from all users within 5 minutes")
            && fired
                .split(' ')
                .next()
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= 8),
        "{fired}"
    );
    // The dry run reads the group's counters: acme fires already; a new merchant is far
    // from five; an event without a merchant counts in no group.
    let rules: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fleet_rules()).expect("rules"))
            .expect("JSON");
    let merchant_rule = &rules["rules"][1];
    let dry_run = |event: serde_json::Value| {
        let t = &t;
        let body = json!({"rule": merchant_rule, "user": 398, "event": event});
        async move {
            t.admin(reqwest::Method::POST, "/admin/api/rules/test", Some(&body))
                .await
        }
    };
    let (status, answer) = dry_run(paid("acme")).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    assert_eq!(answer["outcome"], "does_not_fire", "{answer}");
    assert!(
        answer["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("group acme fires already")),
        "{answer}"
    );
    assert_eq!(answer["window"]["count"], 6, "{answer}");
    let (_, answer) = dry_run(paid("new-shop")).await;
    assert_eq!(answer["window"]["count"], 1, "{answer}");
    let (_, answer) = dry_run(
        json!({"noun": "bill", "verb": "paid", "properties": {"amount": 1, "type": "card"}}),
    )
    .await;
    assert!(
        answer["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("no `properties.merchant`")),
        "{answer}"
    );
    // The backtest over what was stored: one firing per group that reached its threshold.
    let (status, backtest) = t
        .admin(
            reqwest::Method::POST,
            "/admin/api/rules/backtest",
            Some(&json!({"rule": merchant_rule})),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{backtest}");
    let alerts = backtest["alerts"].as_array().map(Vec::len);
    assert_eq!(alerts, Some(1), "{backtest}");
    assert_eq!(backtest["messages"], 1, "{backtest}");
    assert_eq!(backtest["alerts"][0]["user"], 0, "{backtest}");

    // More payments while they fire: nothing more.
    t.accept("/api/v1/event/", 399, &paid("acme")).await;
    t.wait_for_stream(11).await;
    assert!(
        t.operator_alerts(Duration::from_secs(3)).await.is_empty(),
        "a firing window tells once"
    );

    // Five minutes on, the windows hold nothing: the sweeper says both are over.
    clock.advance_seconds(301);
    let resolved = t.expect_operator_alerts(3).await;
    assert_eq!(resolved.len(), 3, "{resolved:?}");
    for (body, _) in &resolved {
        assert_eq!(body["status"], "resolved", "{body}");
        assert!(body["firing_since"].is_u64(), "{body}");
    }
    assert!(
        t.operator_alerts(Duration::from_secs(3)).await.is_empty(),
        "resolved once"
    );
}

fn session_rules() -> std::path::PathBuf {
    let rules = json!({"rules": [{
        "id": "submitted-not-confirmed",
        "when": {"kind": "web", "category": "form interaction", "name": "submit"},
        "condition": {"type": "absence", "seconds": 3, "group_by": "session_id",
                      "expect": {"kind": "web", "category": "page interaction", "name": "pageview"}},
        "action": {"type": "notify_operator", "severity": "warning"},
        "message": "session {{session_id}}: a form submitted and no page after it"
    }]});
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rules-session-absence-{}.json", std::process::id()));
    std::fs::write(&path, rules.to_string()).expect("write the rules");
    path
}

fn web_event(
    session: &str,
    category: &str,
    name: &str,
    data: serde_json::Value,
) -> serde_json::Value {
    json!({"session_id": session, "category": category, "name": name, "data": data,
           "timestamp": "2026-12-05 10:00:00.000000"})
}

#[tokio::test(flavor = "multi_thread")]
async fn an_absence_by_session_is_answered_by_a_page_from_any_user_of_the_session() {
    let t = TestStack::start_with(Options {
        rules_file: Some(session_rules()),
        ..Options::default()
    })
    .await;
    let (one, two) = (
        "6f1c2e0a-1b2c-4d3e-8f40-5a6b7c8d9e11",
        "6f1c2e0a-1b2c-4d3e-8f40-5a6b7c8d9e12",
    );
    let form =
        json!({"host": "cube.app", "path": "/pay", "form": {"first_name": "A", "last_name": "B"}});
    let page = json!({"host": "cube.app", "path": "/done"});
    t.accept(
        "/api/v1/event/",
        601,
        &web_event(one, "form interaction", "submit", form.clone()),
    )
    .await;
    t.accept(
        "/api/v1/event/",
        602,
        &web_event(two, "form interaction", "submit", form),
    )
    .await;
    // Session one's page is posted by another user (signed in since); user 602 views a page,
    // but in session one.
    t.accept(
        "/api/v1/event/",
        603,
        &web_event(one, "page interaction", "pageview", page.clone()),
    )
    .await;
    t.accept(
        "/api/v1/event/",
        602,
        &web_event(one, "page interaction", "pageview", page),
    )
    .await;
    let alerts = t.expect_operator_alerts(1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        alerts[0].0["text"],
        format!("session {two}: a form submitted and no page after it")
    );
    assert_eq!(alerts[0].0["user"], 602);
    assert!(
        t.operator_alerts(Duration::from_secs(6)).await.is_empty(),
        "session one was answered"
    );
}
