//! Stream records whose retries ran out: Lambda puts their coordinates on the stream mapping's
//! on-failure queue, and a redrive processes them again (`cuba_lambda::redrive`). The console
//! shows how many wait and runs the redrive.

use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::model::ports::PortError;

/// What a redrive did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RedriveReport {
    /// Messages read from the failure queue.
    pub messages: usize,
    /// Messages whose records were all processed; deleted from the queue.
    pub redriven: usize,
    /// Stream records processed again.
    pub records: usize,
    /// Messages whose records failed again; left on the queue.
    pub still_failing: usize,
    /// Messages whose records the stream no longer holds (over 24 hours old); left on the queue
    /// for an operator (the events are in the table).
    pub expired: usize,
    /// Messages that are not Lambda's stream failure records; left on the queue.
    pub unreadable: usize,
    /// Messages received but not started before the time ran out; back on the queue for the
    /// next redrive.
    pub left_for_later: usize,
}

/// The failure queue, as the console works it.
#[async_trait]
pub trait StreamRedrive: Send + Sync {
    /// Failure records on the queue (as SQS counts them: approximate, in flight included).
    async fn waiting(&self) -> Result<u64, PortError>;

    /// Processes the queued records again, starting none later than `within` from now.
    async fn redrive(&self, within: Duration) -> RedriveReport;
}
