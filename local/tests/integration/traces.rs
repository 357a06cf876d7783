//! One payment's trace followed on moto, from the request to the operator's alert a quarter of
//! an hour (here, seconds) later: the request's `X-Amzn-Trace-Id` is stored with the event,
//! rides the stream into its first-payment SMS, the delay queue and the posted check into the
//! no-feedback alert, and the console shows it on the event and on both alerts; the handlers'
//! lines logged under it show each step, in the span it ran in.

use reqwest::StatusCode;
use serde_json::Value;

use cuba_local::trace_capture::TraceCapture;

use crate::harness::{TestStack, bill, s};

#[tokio::test(flavor = "multi_thread")]
async fn one_payments_trace_is_followed_from_the_request_to_its_alerts() {
    let t = TestStack::start().await;
    let user = 8_301;
    let phone = format!("+1557{:07}", uuid::Uuid::new_v4().as_u128() % 10_000_000);
    t.verified_phone(user, &phone).await;
    let random = uuid::Uuid::new_v4().simple().to_string();
    let root = format!("1-{}-{}", &random[..8], &random[8..32]);
    let header = format!("Root={root};Parent=53995c3f42cd8ad8;Sampled=1");
    let capture = TraceCapture::global().expect("the test process's only subscriber");
    capture.follow(&root);

    let response = t
        .http
        .post(format!("{}/api/v1/event/", t.base))
        .bearer_auth(t.token(user))
        .header("x-amzn-trace-id", &header)
        .json(&bill(1200))
        .send()
        .await
        .expect("the API answers");
    assert_eq!(response.status(), StatusCode::ACCEPTED);

    let alerts = t.expect_operator_alerts(1).await;
    assert_eq!(
        alerts[0].0["rule_id"], "bill-paid-no-feedback",
        "{alerts:?}"
    );
    for rule in ["first-bill-payment", "bill-paid-no-feedback"] {
        let ledger = t.ledger_for(rule).await;
        assert_eq!(ledger.len(), 1, "{rule}: {ledger:?}");
        assert_eq!(s(&ledger[0], "trace"), header, "{rule}'s ledger entry");
    }
    assert_eq!(t.sms_to(&phone).await.len(), 1, "the first payment's SMS");

    let (status, events) = t
        .admin(
            reqwest::Method::GET,
            &format!("/admin/api/events?user={user}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{events}");
    assert_eq!(events["items"][0]["trace"], Value::from(header.clone()));
    let (status, alerts) = t
        .admin(
            reqwest::Method::GET,
            &format!("/admin/api/alerts?user={user}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{alerts}");
    let listed = alerts["items"].as_array().expect("alerts");
    assert_eq!(listed.len(), 2, "{alerts}");
    assert!(
        listed
            .iter()
            .all(|alert| alert["trace"].as_str() == Some(header.as_str())),
        "{alerts}"
    );

    // Step by step, as logged: the payment's record settles its SMS; the check is relayed from
    // the delay queue and, once posted, its record settles the operator's alert.
    let steps: Vec<(Option<&str>, String, String)> = capture
        .lines(&root)
        .into_iter()
        .filter(|line| line.message == "alert settled" || line.message == "absence check relayed")
        .map(|line| {
            let rule = line.fields.get("rule_id").cloned().unwrap_or_default();
            (line.span, line.message, rule)
        })
        .collect();
    let step = |span: &'static str, message: &str, rule: &str| {
        (Some(span), message.to_owned(), rule.to_owned())
    };
    let first_sms = step("stream_record", "alert settled", "first-bill-payment");
    let relayed = step(
        "absence_check",
        "absence check relayed",
        "bill-paid-no-feedback",
    );
    let operator = step("stream_record", "alert settled", "bill-paid-no-feedback");
    assert!(steps.contains(&first_sms), "{steps:?}");
    assert!(steps.contains(&relayed), "{steps:?}");
    assert_eq!(steps.last(), Some(&operator), "{steps:?}");
    let position = |wanted: &(Option<&str>, String, String)| steps.iter().position(|s| s == wanted);
    assert!(position(&relayed) < position(&operator), "{steps:?}");
}
