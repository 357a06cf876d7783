//! The local stack: provisions moto from `template.yaml` and runs the Lambda handlers against it
//! with the same event types Lambda delivers. Used by `make dev` and by the integration tests.

pub mod access;
pub mod faults;
pub mod meter;
pub mod oidc;
pub mod provision;
pub mod runner;
pub mod runtime_api;
pub mod template;
pub mod trace_capture;

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

/// A process's peak resident memory in KiB (`VmHWM`), by pid or `self`; 0 where `/proc` does not
/// say (the benches report it, nothing depends on it).
pub fn peak_rss_kib(process: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// A lock on data a panicking holder cannot leave half-written (counters, queues of plain
/// values): a poisoned lock is taken anyway.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
