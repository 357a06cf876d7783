//! SNS: SMS to users, and operator alerts as JSON on the operator topic.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::operation::publish::PublishError as SnsPublishError;
use aws_sdk_sns::types::MessageAttributeValue;

use cuba_core::delivery::alert::OperatorMessage;
use cuba_core::delivery::ports::{Notifier, PublishError};
use cuba_core::model::domain::PhoneNumber;
use cuba_core::model::ports::PortError;

/// The most SNS may spend on one SMS, in US dollars (`AWS.SNS.SMS.MaxPrice`): SNS does not send
/// a message that would cost more. A guard against SMS pumping, which targets premium-rate
/// destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsMaxPrice(String);

impl SmsMaxPrice {
    /// A positive decimal number of dollars, at most 10 and to at most 5 decimal places.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let dollars: Option<f64> = text.parse().ok();
        match dollars {
            Some(d)
                if !whole.is_empty()
                    && !text.ends_with('.')
                    && digits(whole)
                    && digits(fraction)
                    && fraction.len() <= 5
                    && d > 0.0
                    && d <= 10.0 =>
            {
                Ok(SmsMaxPrice(text.to_owned()))
            }
            _ => Err(format!(
                "`{}` is not a price: a positive number of US dollars up to 10, e.g. 0.50",
                text.chars().take(16).collect::<String>()
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Publishes SMS directly to phone numbers and operator alerts to the operator topic.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    /// `None` where only SMS are sent (the ingest function's verification codes).
    operator_topic_arn: Option<String>,
    max_price: Option<SmsMaxPrice>,
}

impl SnsNotifier {
    pub fn new(client: Client, operator_topic_arn: impl Into<String>) -> Self {
        SnsNotifier {
            client,
            operator_topic_arn: Some(operator_topic_arn.into()),
            max_price: None,
        }
    }

    pub fn sms_only(client: Client) -> Self {
        SnsNotifier {
            client,
            operator_topic_arn: None,
            max_price: None,
        }
    }

    /// Asks SNS not to send an SMS that would cost more than `max_price`.
    pub fn priced_at_most(self, max_price: Option<SmsMaxPrice>) -> Self {
        SnsNotifier { max_price, ..self }
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

/// Codes with which SNS says it did not take a message for now.
const TRANSIENT_CODES: [&str; 6] = [
    "Throttled",
    "Throttling",
    "ThrottlingException",
    "KMSThrottling",
    "InternalError",
    "InternalFailure",
];

/// Sorts a failed publish by what it says about the message: SNS answered "not now" (throttled,
/// 5xx) or no request was built: not sent. SNS answered any other error (invalid number,
/// opted out, sandbox, authorisation): refused for good. No answer at all (a timeout, a
/// connection lost, an unreadable response): the message may have gone out.
fn publish_error(e: SdkError<SnsPublishError, HttpResponse>) -> PublishError {
    match &e {
        SdkError::ConstructionFailure(_) => PublishError::NotSent(PortError::unavailable("sns", e)),
        SdkError::ServiceError(failure) => {
            let code = failure.err().code().unwrap_or_default();
            if failure.raw().status().is_server_error() || TRANSIENT_CODES.contains(&code) {
                PublishError::NotSent(PortError::unavailable("sns", e))
            } else {
                PublishError::Refused {
                    reason: format!(
                        "{code}: {}",
                        failure.err().message().unwrap_or("no message")
                    ),
                }
            }
        }
        _ => PublishError::Unanswered(PortError::unavailable("sns", e)),
    }
}

/// A request that could not be built: nothing was sent.
fn not_built(e: PortError) -> PublishError {
    PublishError::NotSent(e)
}

/// A refusal's reason with the number masked: SNS names the number it refused, and reasons are
/// logged and kept in the alert ledger.
fn masked(error: PublishError, phone: &PhoneNumber) -> PublishError {
    match error {
        PublishError::Refused { reason } => PublishError::Refused {
            reason: reason.replace(phone.as_str(), &phone.masked()),
        },
        other => other,
    }
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn send_sms(&self, phone: &PhoneNumber, text: &str) -> Result<String, PublishError> {
        let mut publish = self
            .client
            .publish()
            .phone_number(phone.as_str())
            .message(text)
            // Alerts about a user's own money must not be throttled or dropped like marketing.
            .message_attributes(
                "AWS.SNS.SMS.SMSType",
                string_attribute("Transactional").map_err(not_built)?,
            );
        if let Some(price) = &self.max_price {
            publish = publish.message_attributes(
                "AWS.SNS.SMS.MaxPrice",
                MessageAttributeValue::builder()
                    .data_type("Number")
                    .string_value(price.as_str())
                    .build()
                    .map_err(|e| not_built(PortError::corrupt_from("the SMS max price", e)))?,
            );
        }
        let out = publish
            .send()
            .await
            .map_err(publish_error)
            .map_err(|e| masked(e, phone))?;
        Ok(out.message_id.unwrap_or_default())
    }

    async fn notify_operator(&self, message: &OperatorMessage) -> Result<String, PublishError> {
        let topic = self.operator_topic_arn.as_deref().ok_or_else(|| {
            not_built(PortError::unavailable_because(
                "sns",
                "this function has no operator topic",
            ))
        })?;
        let body = serde_json::to_string(message)
            .map_err(|e| not_built(PortError::corrupt_from("an operator alert", e)))?;
        let rule = message.rule_id();
        let rule_id = string_attribute(rule.as_str()).map_err(not_built)?;
        let severity = serde_name(message.severity())
            .and_then(|name| string_attribute(&name))
            .map_err(not_built)?;
        let subject = match message {
            OperatorMessage::Alert(_) => format!("Cuba alert: {rule}"),
            OperatorMessage::Group(group) => format!("Cuba alerts: {rule} ({})", group.count),
        };
        let out = self
            .client
            .publish()
            .topic_arn(topic)
            .subject(subject)
            .message(body)
            .message_attributes("rule_id", rule_id)
            .message_attributes("severity", severity)
            .send()
            .await
            .map_err(publish_error)?;
        Ok(out.message_id.unwrap_or_default())
    }
}

/// Where the account's SMS delivery status logs stand after [`ensure_sms_delivery_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatusLogs {
    /// Turned on now, with the given role and every success sampled.
    TurnedOn,
    AlreadyOn,
    /// The account logs with another role (another stack's, or set by hand): left as it is,
    /// since the setting is one per account and Region.
    OnWithAnotherRole(String),
}

const STATUS_ROLE: &str = "DeliveryStatusIAMRole";
const SUCCESS_SAMPLING: &str = "DeliveryStatusSuccessSamplingRate";

/// Turns SNS's SMS delivery status logs on for the account (CloudFormation has no resource for
/// them): with `role_arn` and 100% of successes sampled, unless another role is set already.
/// Failures are logged with every SMS whatever the sampling rate.
pub async fn ensure_sms_delivery_status(
    client: &Client,
    role_arn: &str,
) -> Result<DeliveryStatusLogs, PortError> {
    let current = client
        .get_sms_attributes()
        .attributes(STATUS_ROLE)
        .attributes(SUCCESS_SAMPLING)
        .send()
        .await
        .map_err(|e| PortError::unavailable("sns", e))?
        .attributes
        .unwrap_or_default();
    let role = current.get(STATUS_ROLE).map(String::as_str).unwrap_or("");
    let sampling = current
        .get(SUCCESS_SAMPLING)
        .map(String::as_str)
        .unwrap_or("");
    if !role.is_empty() && role != role_arn {
        return Ok(DeliveryStatusLogs::OnWithAnotherRole(role.to_owned()));
    }
    if role == role_arn && sampling == "100" {
        return Ok(DeliveryStatusLogs::AlreadyOn);
    }
    client
        .set_sms_attributes()
        .attributes(STATUS_ROLE, role_arn)
        .attributes(SUCCESS_SAMPLING, "100")
        .send()
        .await
        .map_err(|e| PortError::unavailable("sns", e))?;
    Ok(DeliveryStatusLogs::TurnedOn)
}

#[cfg(test)]
mod tests {
    use super::SmsMaxPrice;

    #[test]
    fn a_max_price_is_a_positive_dollar_amount() {
        for good in ["0.5", "0.50", "1", "0.00581", "10"] {
            assert_eq!(
                SmsMaxPrice::parse(good).map(|p| p.as_str().to_owned()),
                Ok(good.to_owned())
            );
        }
        for bad in [
            "", "0", "0.000001", "-1", "1e2", "10.01", "$1", "1.", ".5", "abc",
        ] {
            assert!(SmsMaxPrice::parse(bad).is_err(), "{bad}");
        }
    }
}
