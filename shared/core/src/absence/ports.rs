//! What absence checks need from the outside: the delay queue, and the way back into the
//! user's stream.

use async_trait::async_trait;

use crate::model::ports::PortError;

use crate::absence::AbsenceCheck;

#[async_trait]
pub trait AbsenceScheduler: Send + Sync {
    async fn schedule(&self, check: &AbsenceCheck, delay_seconds: u32) -> Result<(), PortError>;
}

/// Ripe absence checks, handed to the rules function through the user's own stream: a posted
/// check reaches the stream consumer after every event of that user stored before it. Posting
/// the same check again changes nothing.
#[async_trait]
pub trait DueChecks: Send + Sync {
    async fn post(&self, check: &AbsenceCheck) -> Result<(), PortError>;
}
