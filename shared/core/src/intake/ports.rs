//! What intake needs from outside.

use async_trait::async_trait;

use crate::intake::rate_limit::RateWindow;
use crate::model::domain::Millis;
use crate::model::ports::PortError;

/// A count of admitted events per user and window, shared by every function instance: how
/// one instance learns that a user is spread over many.
#[async_trait]
pub trait RateCounter: Send + Sync {
    /// Adds `count` to the window's total and answers the new total. The entry may be dropped
    /// after `expires_at`.
    async fn add(
        &self,
        window: &RateWindow,
        count: u32,
        expires_at: Millis,
    ) -> Result<u64, PortError>;
}
