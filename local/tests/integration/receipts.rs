//! Carrier receipts on the local stack: the sweeper turned the account's SMS delivery status
//! logs on, and the stand-in for SNS's log (the runner reading moto's sent SMS) settles each
//! sent SMS `delivered` or `failed` with the carrier's words, price and dwell time.

use reqwest::StatusCode;

use crate::harness::{Options, TestStack, bill, s};

#[tokio::test(flavor = "multi_thread")]
async fn each_sent_sms_is_settled_by_its_carrier_receipt() {
    let t = TestStack::start_with(Options {
        sms_receipts: true,
        ..Options::default()
    })
    .await;

    let attributes = aws_sdk_sns::Client::new(&t.sdk)
        .get_sms_attributes()
        .send()
        .await
        .expect("the account's SMS attributes")
        .attributes
        .unwrap_or_default();
    assert!(
        attributes
            .get("DeliveryStatusIAMRole")
            .is_some_and(|role| role.ends_with("-SmsDeliveryStatusRole")),
        "the sweeper turned delivery status logs on with the stack's role: {attributes:?}"
    );
    assert_eq!(
        attributes
            .get("DeliveryStatusSuccessSamplingRate")
            .map(String::as_str),
        Some("100")
    );

    // One number the stand-in carrier reaches, one it cannot (area code 999).
    t.register_phone(31).await;
    let unreachable = format!("+1999555{:04}", crate::harness::unique() % 10_000);
    t.verified_phone(32, &unreachable).await;
    t.accept("/api/v1/event/", 31, &bill(3000)).await;
    t.accept("/api/v1/event/", 32, &bill(3000)).await;
    t.wait_for_stream(2).await;

    let settled = |user: u64| {
        let t = &t;
        async move {
            t.ledger_for("first-bill-payment")
                .await
                .into_iter()
                .find(|item| s(item, "alert_id") == format!("first-bill-payment#{user}#first"))
        }
    };
    t.wait_until("both receipts are applied", || async {
        let statuses = [
            settled(31).await.map(|i| s(&i, "status")),
            settled(32).await.map(|i| s(&i, "status")),
        ];
        statuses == [Some("delivered".to_owned()), Some("failed".to_owned())]
    })
    .await;

    let (status, listed) = t
        .admin(
            reqwest::Method::GET,
            "/admin/api/alerts?user=31&rule=first-bill-payment",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let delivered = &listed["items"][0];
    assert_eq!(delivered["status"], "delivered", "{listed}");
    assert!(delivered["message_id"].as_str().is_some());
    let receipt = &delivered["receipt"];
    assert_eq!(receipt["outcome"], "delivered");
    assert_eq!(
        receipt["provider_response"],
        "Message has been accepted by phone carrier"
    );
    assert_eq!(receipt["price_usd"], 0.00645);
    assert_eq!(receipt["dwell_ms"], 599);
    assert_eq!(receipt["message_id"], delivered["message_id"]);
    assert!(
        receipt.get("destination").is_none() && !listed.to_string().contains("XXX"),
        "the receipt keeps no number: {listed}"
    );

    let (_, listed) = t
        .admin(
            reqwest::Method::GET,
            "/admin/api/alerts?user=32&rule=first-bill-payment",
            None,
        )
        .await;
    assert_eq!(listed["items"][0]["status"], "failed", "{listed}");
    assert_eq!(
        listed["items"][0]["receipt"]["provider_response"],
        "Unknown error attempting to reach phone"
    );
}
