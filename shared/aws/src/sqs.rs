//! SQS: the delay queue that holds absence checks until they fall due.

use async_trait::async_trait;
use aws_sdk_sqs::Client;

use cuba_core::absence::AbsenceCheck;
use cuba_core::absence::ports::AbsenceScheduler;
use cuba_core::model::ports::PortError;

/// Sends absence checks to the delay queue.
#[derive(Debug, Clone)]
pub struct SqsAbsenceScheduler {
    client: Client,
    queue_url: String,
}

impl SqsAbsenceScheduler {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsAbsenceScheduler {
            client,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl AbsenceScheduler for SqsAbsenceScheduler {
    async fn schedule(&self, check: &AbsenceCheck, delay_seconds: u32) -> Result<(), PortError> {
        let body = serde_json::to_string(check)
            .map_err(|e| PortError::corrupt_from("an absence check", e))?;
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(i32::try_from(delay_seconds).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| PortError::unavailable("sqs", e))?;
        Ok(())
    }
}
