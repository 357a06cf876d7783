//! SNS: SMS to users, and operator alerts as JSON on the operator topic.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;

use cuba_core::alert::OperatorAlert;
use cuba_core::domain::PhoneNumber;
use cuba_core::ports::{Notifier, PortError};

/// Publishes SMS directly to phone numbers and operator alerts to the operator topic.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    operator_topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: Client, operator_topic_arn: impl Into<String>) -> Self {
        SnsNotifier {
            client,
            operator_topic_arn: operator_topic_arn.into(),
        }
    }
}

/// An enum's name as serde spells it (the same spelling as in the JSON body).
fn serde_name(value: impl serde::Serialize) -> Result<String, PortError> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        other => Err(PortError::corrupt(format!("not a named value: {other:?}"))),
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, PortError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| PortError::corrupt_from("a message attribute", e))
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> PortError {
    PortError::unavailable("sns", e)
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn send_sms(&self, phone: &PhoneNumber, text: &str) -> Result<String, PortError> {
        let out = self
            .client
            .publish()
            .phone_number(phone.as_str())
            .message(text)
            // Alerts about a user's own money must not be throttled or dropped like marketing.
            .message_attributes("AWS.SNS.SMS.SMSType", string_attribute("Transactional")?)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.message_id.unwrap_or_default())
    }

    async fn notify_operator(&self, alert: &OperatorAlert) -> Result<String, PortError> {
        let body = serde_json::to_string(alert)
            .map_err(|e| PortError::corrupt_from("an operator alert", e))?;
        let out = self
            .client
            .publish()
            .topic_arn(&self.operator_topic_arn)
            .subject(format!("Cuba alert: {}", alert.rule_id))
            .message(body)
            .message_attributes("rule_id", string_attribute(alert.rule_id.as_str())?)
            .message_attributes("severity", string_attribute(&serde_name(alert.severity)?)?)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.message_id.unwrap_or_default())
    }
}
