//! CloudWatch metrics as Embedded Metric Format lines in the function's log: the handlers count
//! through the `metrics` facade, and [`FunctionMetrics::flush`] writes one EMF document per
//! metric set to stdout at the end of each invocation (CloudWatch turns them into metrics in
//! namespace `Cuba`, no API call, no extra latency). Every metric carries the `Function`
//! dimension; the others are bounded sets (an error code, a violation kind, a rule id, an alert
//! action and status, a check outcome), never a user.

use metrics_cloudwatch_embedded::{Builder, Collector};

pub const NAMESPACE: &str = "Cuba";

/// The metric names, as the dashboard and alarms in `template.yaml` use them (the ingest API's
/// own are in `cuba_web::ingest::metric_names`).
pub mod names {
    pub const COLD_START: &str = "ColdStart";
    pub const STREAM_RECORDS: &str = "StreamRecords";
    /// Milliseconds from the record's `ApproximateCreationDateTime` to its processing.
    pub const STREAM_AGE: &str = "StreamAge";
    pub const STREAM_FAILURES: &str = "StreamFailures";
    /// Records left to the retry because their user's reads for the batch were spent.
    pub const STREAM_RECORDS_DEFERRED: &str = "StreamRecordsDeferred";
    /// Batches whose counts did not reach the dashboard's tally.
    pub const TALLY_FAILURES: &str = "TallyFailures";
    pub const EVENTS_VALID: &str = "EventsValid";
    pub const EVENTS_INVALID: &str = "EventsInvalid";
    /// Dimension `Kind`: the violation kind.
    pub const VIOLATIONS: &str = "Violations";
    /// Dimension `Rule`.
    pub const RULES_FIRED: &str = "RulesFired";
    /// Dimensions `Action` (sms_user, notify_operator) and `Status` (sent, undeliverable,
    /// suppressed, grouped, unconfirmed, already_settled, in_flight).
    pub const ALERTS: &str = "Alerts";
    /// Dimension `Outcome`.
    pub const ABSENCE_CHECKS: &str = "AbsenceChecks";
    /// Milliseconds between a check falling due and running.
    pub const ABSENCE_CHECK_LATENESS: &str = "AbsenceCheckLateness";
    pub const ABSENCE_CHECK_FAILURES: &str = "AbsenceCheckFailures";
    pub const STUCK_ALERTS: &str = "StuckAlerts";
    /// Deferred SMS a sweep handed on once the user's quiet hours ended.
    pub const DEFERRED_SMS_RELEASED: &str = "DeferredSmsReleased";
    /// Silences of heartbeat rules told (each once): matching traffic stopped.
    pub const HEARTBEAT_SILENCES: &str = "HeartbeatSilences";
    /// Group messages a sweep published (or settled) once they came due.
    pub const GROUP_MESSAGES_SENT: &str = "GroupMessagesSent";
    /// Carrier receipts applied to this stack's alerts, by `Outcome` (delivered, failed).
    pub const SMS_RECEIPTS: &str = "SmsReceipts";
    /// Sent SMS whose carrier receipt did not come within the receipt timeout.
    pub const SMS_RECEIPTS_MISSING: &str = "SmsReceiptsMissing";
}

/// The installed collector of one function.
#[derive(Clone, Copy)]
pub struct FunctionMetrics(Option<&'static Collector>);

impl FunctionMetrics {
    /// Installs the collector for this process (named by `AWS_LAMBDA_FUNCTION_NAME`) and counts
    /// the cold start. Without it (a second install) the metrics are dropped, never the function.
    pub fn install() -> Self {
        let function =
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned());
        match Builder::new()
            .cloudwatch_namespace(NAMESPACE)
            .with_dimension("Function", function)
            .init()
        {
            Ok(collector) => {
                metrics::describe_histogram!(
                    names::STREAM_AGE,
                    metrics::Unit::Milliseconds,
                    "time from a stream record's creation to its processing"
                );
                metrics::describe_histogram!(
                    names::ABSENCE_CHECK_LATENESS,
                    metrics::Unit::Milliseconds,
                    "time from an absence check falling due to running"
                );
                metrics::counter!(names::COLD_START).increment(1);
                FunctionMetrics(Some(collector))
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics are off: the collector did not install");
                FunctionMetrics(None)
            }
        }
    }

    /// Writes what this invocation counted to stdout, where Lambda's log picks it up.
    pub fn flush(&self) {
        if let Some(collector) = self.0
            && let Err(e) = collector.flush(std::io::stdout().lock())
        {
            tracing::warn!(error = %e, "could not write the invocation's metrics");
        }
    }
}

/// `router` with the invocation's metrics written out as each response leaves it.
#[cfg(feature = "http")]
pub fn flushing(router: cuba_web::Router, metrics: FunctionMetrics) -> cuba_web::Router {
    router.layer(axum::middleware::map_response(
        move |response: axum::response::Response| async move {
            metrics.flush();
            response
        },
    ))
}
