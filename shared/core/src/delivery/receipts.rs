//! Carrier receipts: what happened to an SMS after SNS took it. "Sent" only says SNS accepted the
//! message; SNS's delivery status log then says whether the carrier delivered it, what it cost
//! and how long it took. Cuba reads those records and settles the alert `delivered` or `failed`.
//!
//! How receipts reach the ledger is [`crate::delivery::receipt_desk`]'s.

use serde::{Deserialize, Serialize};

use crate::model::domain::Millis;

/// What the carrier did with the SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptOutcome {
    Delivered,
    Failed,
}

/// One SMS's delivery status, as SNS logs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmsReceipt {
    /// SNS's message id, as `Publish` answered it.
    pub message_id: String,
    pub outcome: ReceiptOutcome,
    /// The carrier's words ("Message has been accepted by phone carrier", "Phone is currently
    /// unreachable/unavailable", ...).
    pub provider_response: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_usd: Option<f64>,
    /// From the publish to the hand-off to the carrier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dwell_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// When SNS published the message (the record's notification timestamp).
    pub published_at: Millis,
}

/// A delivery status record as SNS writes it to CloudWatch Logs (the documented shape; fields
/// this reader does not need, such as the destination number, are never read).
#[derive(Deserialize)]
struct StatusRecord {
    notification: Notification,
    delivery: StatusDelivery,
    status: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    message_id: String,
    timestamp: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusDelivery {
    #[serde(default)]
    phone_carrier: Option<String>,
    #[serde(default, rename = "priceInUSD")]
    price_in_usd: Option<f64>,
    #[serde(default)]
    provider_response: Option<String>,
    #[serde(default)]
    dwell_time_ms: Option<u64>,
}

impl SmsReceipt {
    /// Reads one log record. Its destination number is never kept: receipts are stored and
    /// shown, numbers are not.
    pub fn from_log_record(text: &str) -> Result<Self, String> {
        let record: StatusRecord = serde_json::from_str(text)
            .map_err(|e| format!("not an SMS delivery status record: {e}"))?;
        let outcome = match record.status.as_str() {
            "SUCCESS" => ReceiptOutcome::Delivered,
            "FAILURE" => ReceiptOutcome::Failed,
            other => return Err(format!("unknown delivery status `{other}`")),
        };
        Ok(SmsReceipt {
            message_id: record.notification.message_id,
            outcome,
            provider_response: record
                .delivery
                .provider_response
                .unwrap_or_default()
                .chars()
                .take(500)
                .collect(),
            price_usd: record.delivery.price_in_usd,
            dwell_ms: record.delivery.dwell_time_ms,
            carrier: record
                .delivery
                .phone_carrier
                .map(|c| c.chars().take(100).collect()),
            published_at: sns_timestamp(&record.notification.timestamp)?,
        })
    }
}

/// `2016-06-28 00:40:34.558`, UTC.
fn sns_timestamp(text: &str) -> Result<Millis, String> {
    let at: jiff::civil::DateTime = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not an SNS timestamp"))?;
    let at = at
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .map_err(|_| format!("`{text}` is out of range"))?;
    u64::try_from(at.timestamp().as_millisecond())
        .map(Millis)
        .map_err(|_| format!("`{text}` is before 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The success and failure records of AWS's "monitor SNS texts in CloudWatch" article.
    const DOCUMENTED_SUCCESS: &str = include_str!("../../tests/fixtures/sms-delivery-success.json");
    const DOCUMENTED_FAILURE: &str = include_str!("../../tests/fixtures/sms-delivery-failure.json");

    #[test]
    fn reads_the_documented_records() {
        assert_eq!(
            SmsReceipt::from_log_record(DOCUMENTED_SUCCESS),
            Ok(SmsReceipt {
                message_id: "34d9b400-c6dd-5444-820d-fbeb0f1f54cf".into(),
                outcome: ReceiptOutcome::Delivered,
                provider_response: "Message has been accepted by phone carrier".into(),
                price_usd: Some(0.00645),
                dwell_ms: Some(599),
                carrier: Some("My Phone Carrier".into()),
                published_at: Millis(1_467_074_434_558),
            })
        );
        let failed = SmsReceipt::from_log_record(DOCUMENTED_FAILURE).expect("a record");
        assert_eq!(failed.outcome, ReceiptOutcome::Failed);
        assert_eq!(
            failed.provider_response,
            "Unknown error attempting to reach phone"
        );
        assert_eq!(failed.carrier, None);
        assert_eq!(failed.published_at, Millis(1_467_074_434_559));
    }

    #[test]
    fn refuses_what_is_not_a_record() {
        for bad in [
            "",
            "START RequestId: 1",
            r#"{"notification": {"messageId": "m", "timestamp": "2016-06-28 00:40:34.558"}, "delivery": {}, "status": "MAYBE"}"#,
            r#"{"notification": {"messageId": "m", "timestamp": "yesterday"}, "delivery": {}, "status": "SUCCESS"}"#,
        ] {
            assert!(SmsReceipt::from_log_record(bad).is_err(), "{bad}");
        }
    }
}
