//! Cuba's AWS adapters: the core's ports on DynamoDB, SQS and SNS, one file per table or
//! service. Every item is mapped with `serde_dynamo` row structs, and every enum is spelled as
//! serde spells it; no SDK type leaves this crate.

mod activity_tally;
mod alert_ledger;
mod browse;
mod documents;
mod error_log;
mod event_migration;
mod events;
mod group_windows;
mod items;
mod listing;
mod listing_pages;
mod operator_quotas;
pub mod partition_keys;
mod profiles;
mod rate_counter;
mod rule_state;
#[cfg(feature = "secrets")]
mod secrets;
mod silences;
mod sms_quotas;
mod sns;
mod sqs;
mod windows;

use std::time::Duration;

use aws_types::SdkConfig;
use aws_types::sdk_config::TimeoutConfig;
use cuba_core::delivery::alerting::CallLimits;

pub use activity_tally::DynamoActivityTally;
pub use alert_ledger::{ALERTS_UNSETTLED_INDEX, DynamoAlertLedger};
pub use browse::DynamoBrowse;
pub use documents::DynamoDocumentStore;
pub use error_log::DynamoErrorLog;
pub use event_migration::{EventMigration, migrate_events};
pub use events::{DynamoEvents, EVENTS_SORT_KEY, MIGRATED_ATTRIBUTE, StreamItem, event_sort_key};
pub use group_windows::{DynamoGroupWindows, FLEET_SHARDS, GROUP_SHARDS};
pub use items::Retention;
pub use listing_pages::DynamoListingPages;
pub use operator_quotas::DynamoOperatorQuotas;
pub use profiles::DynamoProfiles;
pub use rate_counter::DynamoRateCounter;
pub use rule_state::DynamoRuleState;
#[cfg(feature = "secrets")]
pub use secrets::SecretsManagerStore;
pub use silences::DynamoSilences;
pub use sms_quotas::DynamoSmsQuotas;
pub use sns::{DeliveryStatusLogs, SmsMaxPrice, SnsNotifier, ensure_sms_delivery_status};
pub use sqs::SqsAbsenceScheduler;
pub use windows::DynamoWindows;

/// No single AWS call (retries included) takes longer; alert delivery leases are derived from
/// it ([`AwsClients::call_limits`]).
pub const AWS_OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// The AWS clients, built once per process and shared by every adapter.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sns: aws_sdk_sns::Client,
    #[cfg(feature = "secrets")]
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl AwsClients {
    /// The longest a DynamoDB call and an SNS publish can take, read from the clients as
    /// configured: what alert delivery leases must cover.
    pub fn call_limits(&self) -> CallLimits {
        let limit = |timeouts: Option<&TimeoutConfig>| {
            timeouts
                .and_then(TimeoutConfig::operation_timeout)
                .unwrap_or(AWS_OPERATION_TIMEOUT)
        };
        CallLimits {
            store: limit(self.dynamodb.config().timeout_config()),
            publish: limit(self.sns.config().timeout_config()),
        }
    }

    pub fn new(sdk: &SdkConfig) -> Self {
        let sdk = sdk
            .to_builder()
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(AWS_OPERATION_TIMEOUT)
                    .operation_attempt_timeout(AWS_OPERATION_TIMEOUT / 2)
                    .build(),
            )
            .build();
        // SMS has no idempotency key: an SDK retry of a publish that timed out after SNS took
        // it would send the message twice. Whether to try again is the alert ledger's decision.
        let sns = aws_sdk_sns::config::Builder::from(&sdk)
            .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
            .build();
        AwsClients {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            sns: aws_sdk_sns::Client::from_conf(sns),
            #[cfg(feature = "secrets")]
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sns::config::BehaviorVersion;
    use aws_types::region::Region;
    use cuba_core::delivery::alerting::{
        DeliveryLeases, SETTLE_ATTEMPTS, STORE_CALLS_BEFORE_SENDING,
    };

    #[test]
    fn sns_publishes_are_never_retried_by_the_sdk() {
        // What `aws_config` loads: standard retries for every client.
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .retry_config(aws_sdk_sns::config::retry::RetryConfig::standard())
            .build();
        let clients = AwsClients::new(&sdk);
        let attempts = |retry: Option<&aws_sdk_sns::config::retry::RetryConfig>| {
            retry.map(|r| r.max_attempts())
        };
        assert_eq!(attempts(clients.sns.config().retry_config()), Some(1));
        assert!(
            clients
                .dynamodb
                .config()
                .retry_config()
                .is_some_and(|r| r.max_attempts() > 1),
            "DynamoDB calls keep the SDK's retries (conditional writes make them safe)"
        );
        let timeouts = clients.sns.config().timeout_config().cloned();
        assert_eq!(
            timeouts.and_then(|t| t.operation_timeout()),
            Some(AWS_OPERATION_TIMEOUT)
        );
    }

    #[test]
    fn delivery_leases_outlast_the_calls_they_cover() {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        let clients = AwsClients::new(&sdk);
        let limits = clients.call_limits();
        // Every timeout that bounds a call the leases cover, read back from the clients.
        let longest = |timeouts: Option<&TimeoutConfig>| {
            let t = timeouts.expect("clients have timeouts");
            t.operation_timeout()
                .expect("an operation timeout bounds every call")
        };
        let store = longest(clients.dynamodb.config().timeout_config());
        let publish = longest(clients.sns.config().timeout_config());
        assert_eq!((limits.store, limits.publish), (store, publish));
        let leases = DeliveryLeases::covering(limits);
        assert!(leases.claim > store * STORE_CALLS_BEFORE_SENDING);
        assert!(leases.sending > publish + store * SETTLE_ATTEMPTS);
    }
}
