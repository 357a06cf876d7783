//! The rules function's smoke test on moto: a synthetic user's event stored and evaluated by the
//! version under test, its alert recorded and sent to no one, nothing else disturbed.

use cuba_core::model::clock::{Clock, SystemClock};
use cuba_core::model::domain::UserId;
use cuba_core::pipeline::smoke::SMOKE_RULE;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{TestStack, bill, n, s};

#[tokio::test(flavor = "multi_thread")]
async fn the_smoke_test_records_its_alert_and_sends_nothing() {
    let t = TestStack::start().await;
    let report = t.stack.smoke_test.run("deployment-d-1").await;
    assert!(report.passed, "{report:?}");
    assert!(report.user.is_synthetic());
    assert_eq!(report.user, UserId::synthetic("deployment-d-1"));

    let ledger = smoke_alerts(&t, report.user).await;
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    assert_eq!(s(&ledger[0], "status"), "sent");
    assert_eq!(s(&ledger[0], "message_id"), "smoke-test (not sent)");

    // Run again (CodeDeploy retries a hook): the alert is there already, and it passes.
    let again = t.stack.smoke_test.run("deployment-d-1").await;
    assert!(again.passed, "{again:?}");
    assert_eq!(smoke_alerts(&t, report.user).await.len(), 1);
    // Another deployment is another user: its first event alerts again.
    let next = t.stack.smoke_test.run("deployment-d-2").await;
    assert!(next.passed && next.user != report.user, "{next:?}");

    // The stored events never reached the stream consumer: only the real event after them did.
    let before = t
        .stack
        .progress
        .stream_records
        .load(std::sync::atomic::Ordering::SeqCst);
    t.accept("/api/v1/event/", 1, &bill(10)).await;
    t.wait_for_stream(before + 1).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        t.stack
            .progress
            .stream_records
            .load(std::sync::atomic::Ordering::SeqCst),
        before + 1
    );
    let (_, page) = t
        .admin(
            reqwest::Method::GET,
            &format!("/admin/api/events?user={}", report.user.0),
            None,
        )
        .await;
    let stored = page["items"].as_array().expect("items");
    assert_eq!(stored.len(), 2, "one event a run: {page}");
    assert!(stored.iter().all(|e| e["verb"] == "smoke-test"), "{page}");
    // The operators heard nothing of it.
    assert!(
        t.operator_alerts(std::time::Duration::from_secs(2))
            .await
            .is_empty()
    );

    // No client may act as a synthetic user.
    let token = t.stack.verifier.issue(report.user, SystemClock.now(), 600);
    let response = t
        .http
        .post(format!("{}/api/v1/event", t.base))
        .bearer_auth(token)
        .json(&json!({"noun": "bill", "verb": "paid"}))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "reserved_user", "{body}");
}

/// The ledger's smoke-test alerts of `user`.
async fn smoke_alerts(
    t: &TestStack,
    user: UserId,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    t.ledger_for(SMOKE_RULE)
        .await
        .into_iter()
        .filter(|item| n(item, "user") == Some(user.0))
        .collect()
}
