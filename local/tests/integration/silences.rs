//! Silences on the local stack: the seed's no-feedback rule silenced through the admin API, its
//! alert recorded `silenced` and listed in the alert browser, nothing in the ops inbox; once the
//! silence ends by itself, the next unanswered payment reaches ops.

use std::time::Duration;

use cuba_core::model::clock::{Clock, SystemClock};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{ABSENCE_RULE, TestStack, bill, s};

#[tokio::test(flavor = "multi_thread")]
async fn a_silence_records_the_rules_alerts_without_publishing_them_until_it_ends() {
    let t = TestStack::start().await;
    // Long enough for the first payment's check (3 s) to fall due inside it, with room for a
    // slow machine; the second payment's comes after it ended.
    let ends_at = SystemClock.now().plus_seconds(12);
    let (status, silence) = t
        .admin(
            Method::POST,
            "/admin/api/silences",
            Some(&json!({"rule_id": ABSENCE_RULE, "ends_at": ends_at.0,
                         "reason": "payments provider maintenance"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{silence}");
    // The functions' silences cache (2 s locally, the rules cache's time) takes it up.
    tokio::time::sleep(Duration::from_secs(2)).await;

    t.accept("/api/v1/event/", 61, &bill(1000)).await;
    t.wait_for_checks(1).await;
    let ledger = t.ledger_for(ABSENCE_RULE).await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(s(&ledger[0], "status"), "silenced", "{ledger:?}");
    assert!(s(&ledger[0], "reason").contains("payments provider maintenance"));
    assert!(
        t.operator_alerts(Duration::from_secs(2)).await.is_empty(),
        "nothing reached ops"
    );
    let (_, listed) = t
        .admin(
            Method::GET,
            &format!("/admin/api/alerts?rule={ABSENCE_RULE}"),
            None,
        )
        .await;
    assert_eq!(listed["items"][0]["status"], "silenced", "{listed}");

    // Ended by itself (and past the cache): the next unanswered payment is published.
    let wait = ends_at.0.saturating_sub(SystemClock.now().0) + 2_500;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let (_, expired) = t
        .admin(Method::GET, "/admin/api/silences?state=expired", None)
        .await;
    assert_eq!(
        expired["items"].as_array().map(Vec::len),
        Some(1),
        "{expired}"
    );
    t.accept("/api/v1/event/", 62, &bill(1000)).await;
    let published = t.expect_operator_alerts(1).await;
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0].0["user"], 62);
}
