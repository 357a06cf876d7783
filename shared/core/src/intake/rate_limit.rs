//! The per-user event rate: the limit, and the windows its shared count is kept in.

use crate::model::domain::{Millis, UserId};

/// The shared count's window.
pub const SHARED_WINDOW_MILLIS: u64 = 10_000;
/// How many reports to the shared count a window's allowance is split into.
const REPORTS_PER_WINDOW: u32 = 20;

/// Events per second one user may send, on average, and how many at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    per_second: u32,
    burst: u32,
}

/// Why a limit cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRateLimit {
    #[error("the rate must be at least 1 event a second")]
    NoRate,
    #[error("the burst must hold at least one batch ({min} events)")]
    BurstBelowBatch { min: u32 },
}

impl RateLimit {
    /// Sustained `per_second` with bursts of `burst`, which must admit one full batch of
    /// `batch` events (else a batch could never be sent).
    pub fn new(per_second: u32, burst: u32, batch: u32) -> Result<Self, InvalidRateLimit> {
        if per_second == 0 {
            return Err(InvalidRateLimit::NoRate);
        }
        if burst < batch {
            return Err(InvalidRateLimit::BurstBelowBatch { min: batch });
        }
        Ok(RateLimit { per_second, burst })
    }

    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Events one user may send in a shared window, over every instance.
    pub(crate) fn window_allowance(&self) -> u64 {
        u64::from(self.per_second) * SHARED_WINDOW_MILLIS / 1000 + u64::from(self.burst)
    }

    /// Admitted events an instance keeps to itself before adding them to the shared count.
    pub(crate) fn report_every(&self) -> u32 {
        let every = self.window_allowance() / u64::from(REPORTS_PER_WINDOW);
        u32::try_from(every).unwrap_or(u32::MAX).max(1)
    }
}

/// One user's shared count for one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateWindow {
    pub user: UserId,
    /// Epoch milliseconds divided by [`SHARED_WINDOW_MILLIS`].
    pub index: u64,
}

impl RateWindow {
    pub(crate) fn at(user: UserId, now: Millis) -> Self {
        RateWindow {
            user,
            index: now.0 / SHARED_WINDOW_MILLIS,
        }
    }

    pub(crate) fn ends_at(&self) -> Millis {
        Millis((self.index + 1) * SHARED_WINDOW_MILLIS)
    }
}
