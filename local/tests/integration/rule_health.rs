//! Rule health on the local stack: the rules function counts what each rule matched and fired
//! per day, and the admin API says why a rule cannot fire (its events have no schema, nothing
//! matched it).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestStack, Watch, bill};

async fn health(t: &TestStack) -> Value {
    let (status, body) = t.admin(Method::GET, "/admin/api/rule-health", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn rule<'a>(body: &'a Value, id: &str) -> &'a Value {
    body["rules"]
        .as_array()
        .and_then(|rules| rules.iter().find(|r| r["rule_id"] == id))
        .unwrap_or_else(|| panic!("{id} in {body}"))
}

fn warnings(rule: &Value) -> Vec<&str> {
    rule["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(|w| w["code"].as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rule_health_counts_each_rule_and_names_the_dead_ones() {
    let t = TestStack::start().await;
    let failed_logins = json!({
        "id": "failed-logins", "version": 0,
        "when": {"kind": "activity", "noun": "login", "verb": "failed"},
        "condition": {"type": "first"},
        "action": {"type": "notify_operator"},
        "message": "user {{user}} failed to log in"
    });
    let (status, body) = t
        .admin(
            Method::PUT,
            "/admin/api/rules/failed-logins",
            Some(&failed_logins),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // A failed login (no schema: it goes to the error log) and a first payment (no phone).
    t.accept(
        "/api/v1/event/",
        61,
        &json!({"noun": "login", "verb": "failed", "properties": {"reason": "password"}}),
    )
    .await;
    t.accept("/api/v1/event/", 61, &bill(700)).await;
    t.wait_for_stream(2).await;
    // The batch's counts are written after its records: wait for them.
    let mut watch = Watch::new("the first payment's counts");
    let body = loop {
        let body = health(&t).await;
        if rule(&body, "first-bill-payment")["fired"] == 1 {
            break body;
        }
        watch.still_worth_waiting(&t, &[]).await;
    };
    assert_eq!(body["days"], 7);
    let first = rule(&body, "first-bill-payment");
    assert_eq!(first["matched"], 1);
    assert_eq!(first["statuses"], json!({"undeliverable": 1}));
    assert!(first["last_fired_at"].is_u64());
    assert_eq!(first["watches"], "activity bill/paid");
    assert!(warnings(first).is_empty(), "{first}");
    assert_eq!(first["days"].as_array().map(Vec::len), Some(7));
    assert_eq!(first["days"][6]["fired"], 1, "today is the last day");
    let burst = rule(&body, "bill-payment-burst");
    assert_eq!(
        (burst["matched"].as_u64(), burst["fired"].as_u64()),
        (Some(1), Some(0))
    );

    let dead = rule(&body, "failed-logins");
    assert_eq!(warnings(dead), ["no_schema", "nothing_matched"], "{dead}");
    assert_eq!(dead["watches"], "activity login/failed");
    assert!(
        dead["warnings"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no schema for activity login/failed")),
        "{dead}"
    );

    let (status, one) = t
        .admin(
            Method::GET,
            "/admin/api/rule-health?rule=failed-logins&days=1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["rules"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["rules"][0]["days"].as_array().map(Vec::len), Some(1));
    let (status, missing) = t
        .admin(
            Method::GET,
            "/admin/api/rule-health?rule=no-such-rule",
            None,
        )
        .await;
    assert_eq!(
        (status, &missing["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("rule_not_found"))
    );
    let (status, bad) = t
        .admin(Method::GET, "/admin/api/rule-health?days=0", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(
        (&bad["error"]["code"], &bad["error"]["field"]),
        (&json!("invalid_value"), &json!("days"))
    );
}
