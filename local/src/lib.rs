//! The local stack: provisions moto from `template.yaml` and runs the Lambda handlers against it
//! with the same event types Lambda delivers. Used by `make dev` and by the integration tests.

pub mod faults;
pub mod meter;
pub mod provision;
pub mod runner;
pub mod runtime_api;
pub mod template;

use aws_config::BehaviorVersion;
use aws_types::SdkConfig;
use aws_types::region::Region;

/// An SDK configuration that can only reach `endpoint` (moto), with dummy credentials, so the
/// local stack never touches a real AWS account whatever the environment holds.
pub async fn moto_sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(provision::REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "cuba-local",
        ))
        .load()
        .await
}

/// A lock on data a panicking holder cannot leave half-written (counters, queues of plain
/// values): a poisoned lock is taken anyway.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
