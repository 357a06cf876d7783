//! The local stand-in for SNS's SMS delivery status log. moto keeps the SMS it took (with their
//! message ids) but logs nothing about their delivery; the runner reports each new one to the
//! receipts handler as SNS would, a CloudWatch Logs batch of records in the documented shape
//! (`shared/core/tests/fixtures/sms-delivery-*.json`): delivered, unless its number is in
//! [`UNREACHABLE_PREFIX`]'s area, which is reported failed with the documented failure's words.

use std::collections::HashSet;
use std::time::Duration;

use aws_lambda_events::cloudwatch_logs::{LogEntry, LogsEvent};
use serde_json::{Value, json};

use cuba_lambda::handlers::ReceiptsHandler;

use crate::provision::{ACCOUNT, REGION};

/// Numbers in this North American area code (unassigned, so no one's) are reported undeliverable
/// by the carrier, so the failure path can be tried locally. No test's made-up numbers use it.
pub const UNREACHABLE_PREFIX: &str = "+1999";

/// How often moto's sent SMS are read.
const RELAY_INTERVAL: Duration = Duration::from_secs(1);

pub(super) async fn relay_sms_receipts(moto: String, handler: ReceiptsHandler) {
    let http = reqwest::Client::new();
    let mut reported: HashSet<String> = HashSet::new();
    loop {
        tokio::time::sleep(RELAY_INTERVAL).await;
        let Some(sent) = sent_sms(&http, &moto).await else {
            continue;
        };
        let fresh: Vec<&Value> = sent
            .iter()
            .filter(|sms| {
                sms["message_id"]
                    .as_str()
                    .is_some_and(|id| !reported.contains(id))
            })
            .collect();
        if fresh.is_empty() {
            continue;
        }
        let mut event = LogsEvent::default();
        let data = &mut event.aws_logs.data;
        data.owner = ACCOUNT.to_owned();
        data.log_group = format!("sns/{REGION}/{ACCOUNT}/DirectPublishToPhoneNumber");
        data.log_stream = uuid::Uuid::new_v4().to_string();
        data.subscription_filters = vec!["local-receipts".to_owned()];
        data.message_type = "DATA_MESSAGE".to_owned();
        let now = chrono::Utc::now();
        for sms in &fresh {
            let mut entry = LogEntry::default();
            entry.id = uuid::Uuid::new_v4().simple().to_string();
            entry.timestamp = now.timestamp_millis();
            entry.message = status_record(sms, &now).to_string();
            data.log_events.push(entry);
        }
        match handler.handle(event).await {
            Ok(report) => {
                tracing::info!(?report, "local SMS receipts reported");
                reported.extend(
                    fresh
                        .iter()
                        .filter_map(|sms| sms["message_id"].as_str().map(str::to_owned)),
                );
            }
            // Retried on the next round, as Lambda retries an asynchronous invocation.
            Err(error) => tracing::warn!(%error, "local SMS receipts failed"),
        }
    }
}

/// moto's sent SMS (`sns.SMS` in its data dump), or `None` when it could not be read this time.
async fn sent_sms(http: &reqwest::Client, moto: &str) -> Option<Vec<Value>> {
    let data: Value = http
        .get(format!("{moto}/moto-api/data.json"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    data["sns"]["SMS"].as_array().cloned()
}

/// One SMS's delivery status record, in the shape AWS documents.
fn status_record(sms: &Value, now: &chrono::DateTime<chrono::Utc>) -> Value {
    let phone = sms["phone_number"].as_str().unwrap_or_default();
    let failed = phone.starts_with(UNREACHABLE_PREFIX);
    let masked = format!(
        "{}XXX{}",
        phone.chars().take(2).collect::<String>(),
        phone
            .chars()
            .rev()
            .take(7)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>()
    );
    json!({
        "notification": {
            "messageId": sms["message_id"],
            "timestamp": now.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        },
        "delivery": if failed {
            json!({
                "mnc": 0,
                "destination": masked,
                "priceInUSD": 0.00645,
                "smsType": "Transactional",
                "mcc": 0,
                "providerResponse": "Unknown error attempting to reach phone",
                "dwellTimeMs": 1420,
                "dwellTimeMsUntilDeviceAck": 1692
            })
        } else {
            json!({
                "phoneCarrier": "My Phone Carrier",
                "mnc": 270,
                "destination": masked,
                "priceInUSD": 0.00645,
                "smsType": "Transactional",
                "mcc": 310,
                "providerResponse": "Message has been accepted by phone carrier",
                "dwellTimeMs": 599,
                "dwellTimeMsUntilDeviceAck": 1344
            })
        },
        "status": if failed { "FAILURE" } else { "SUCCESS" },
    })
}
