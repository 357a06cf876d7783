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

/// A maintenance window: a daily silence applies for its window from its start (the alert fired
/// inside it is recorded `silenced` until the window's end, not the silence's), is listed with
/// when that window ends, a weekly one that starts later with when it next applies, and a
/// recurrence that does not fit is refused with the field that is wrong.
#[tokio::test(flavor = "multi_thread")]
async fn a_recurring_silence_applies_in_its_window_and_says_when_it_comes_back() {
    let t = TestStack::start().await;
    let create = |body: serde_json::Value| {
        let t = &t;
        async move {
            t.admin(Method::POST, "/admin/api/silences", Some(&body))
                .await
        }
    };
    let now = SystemClock.now();
    let (status, daily) = create(json!({
        "rule_id": ABSENCE_RULE, "minutes": 14 * 24 * 60, "repeat": "daily",
        "window_minutes": 30, "reason": "nightly payments provider maintenance"}))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{daily}");
    assert_eq!(daily["state"], "active");
    assert_eq!(
        daily["repeat"],
        json!({"every": "day", "window_minutes": 30})
    );
    let window_ends = daily["window_ends_at"].as_u64().expect("the window's end");
    let starts = daily["starts_at"].as_u64().expect("a start");
    assert_eq!(window_ends, starts + 30 * 60_000, "{daily}");
    assert!(daily["ends_at"].as_u64() >= Some(now.0 + 14 * 24 * 3_600_000));

    let later = now.plus_seconds(3600);
    let (status, weekly) = create(json!({
        "rule_id": ABSENCE_RULE, "user": 5, "starts_at": later.0, "minutes": 60 * 24 * 60,
        "repeat": "weekly", "window_minutes": 120, "reason": "weekly deploy"}))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{weekly}");
    assert_eq!(weekly["state"], "pending");
    assert_eq!(weekly["next_window_at"], json!(later.0), "{weekly}");

    for (body, field) in [
        (
            json!({"rule_id": ABSENCE_RULE, "minutes": 600, "repeat": "daily", "reason": "r"}),
            "window_minutes",
        ),
        (
            json!({"rule_id": ABSENCE_RULE, "minutes": 600, "repeat": "daily", "window_minutes": 1440, "reason": "r"}),
            "window_minutes",
        ),
        (
            json!({"rule_id": ABSENCE_RULE, "minutes": 600, "window_minutes": 10, "reason": "r"}),
            "repeat",
        ),
        (
            json!({"rule_id": ABSENCE_RULE, "minutes": 600, "repeat": "hourly", "window_minutes": 10, "reason": "r"}),
            "repeat",
        ),
        (
            json!({"rule_id": ABSENCE_RULE, "minutes": 181 * 24 * 60, "repeat": "daily", "window_minutes": 10, "reason": "r"}),
            "minutes",
        ),
    ] {
        let (status, refused) = create(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {refused}");
        assert_eq!(refused["error"]["field"], field, "{body}: {refused}");
    }

    // The daily window applies now: an unanswered payment's alert is silenced until its end.
    tokio::time::sleep(Duration::from_secs(2)).await;
    t.accept("/api/v1/event/", 63, &bill(1000)).await;
    t.wait_for_checks(1).await;
    let ledger = t.ledger_for(ABSENCE_RULE).await;
    assert_eq!(s(&ledger[0], "status"), "silenced", "{ledger:?}");
    let until = jiff::Timestamp::from_millisecond(i64::try_from(window_ends).expect("ms"))
        .expect("an instant")
        .to_string();
    assert!(
        s(&ledger[0], "reason").contains(&format!("until {until}")),
        "{ledger:?}"
    );
    assert!(t.operator_alerts(Duration::from_secs(2)).await.is_empty());
}
