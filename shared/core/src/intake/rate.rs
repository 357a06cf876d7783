//! How fast one user may send events, so no one user can take a partition's throughput (or the
//! stream's time) that every other user needs.
//!
//! Two layers, so the common path writes nothing: a token bucket per user inside each function
//! instance (refilled at the limit's rate up to its burst), and a coarse count per user and
//! 10-second window shared by every instance, which an instance adds to only after it has
//! admitted a twentieth of a window's allowance for that user. A user spread over many instances
//! is stopped when the shared total passes the window's allowance, until the window ends.
//! Ordinary users never reach the shared count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::intake::ports::RateCounter;
pub use crate::intake::rate_limit::{InvalidRateLimit, SHARED_WINDOW_MILLIS};
use crate::intake::rate_limit::{RateLimit, RateWindow};
use crate::model::clock::Clock;
use crate::model::domain::{Millis, UserId};
use crate::model::ports::ErrorChain;

/// How many users one instance keeps buckets for; beyond it, the buckets that are full again
/// (their users idle for a while) are dropped.
const MAX_TRACKED_USERS: usize = 10_000;
/// How long the shared count's entries are kept after their window.
const SHARED_ENTRY_TTL_MILLIS: u64 = 3_600_000;

/// Whether a user's events are taken now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Refused: try again after this many seconds.
    Limited {
        retry_after_seconds: u64,
    },
}

#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    refilled_at: Millis,
    /// Admitted since the last report to the shared count, in window `window`.
    unreported: u32,
    window: u64,
    /// The shared count said the user is over; refused until then.
    blocked_until: Millis,
}

/// Per-user token buckets for one function instance, over a shared count.
pub struct UserRateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<UserId, Bucket>>,
    shared: Arc<dyn RateCounter>,
    clock: Arc<dyn Clock>,
}

impl UserRateLimiter {
    pub fn new(limit: RateLimit, shared: Arc<dyn RateCounter>, clock: Arc<dyn Clock>) -> Self {
        UserRateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
            shared,
            clock,
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes `events` of `user`'s allowance, or refuses them all. The shared count is written
    /// once per twentieth of a window's allowance a user is admitted here; if it cannot be
    /// written, the instance's own bucket still holds the user to the limit.
    pub async fn admit(&self, user: UserId, events: u32) -> Admission {
        let now = self.clock.now();
        let report = match self.take(user, events, now) {
            Err(limited) => return limited,
            Ok(report) => report,
        };
        if let Some(count) = report {
            let window = RateWindow::at(user, now);
            let expires_at = window.ends_at().plus_millis(SHARED_ENTRY_TTL_MILLIS);
            match self.shared.add(&window, count, expires_at).await {
                Ok(total) if total > self.limit.window_allowance() => {
                    tracing::warn!(%user, total, allowance = self.limit.window_allowance(), "user over the event rate across instances");
                    self.block(user, window.ends_at());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "the shared rate count is unavailable; limiting by this instance alone");
                }
            }
        }
        Admission::Admitted
    }

    /// The bucket's decision, and the count to report to the shared count if one is due.
    fn take(&self, user: UserId, events: u32, now: Millis) -> Result<Option<u32>, Admission> {
        let limit = self.limit;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED_USERS && !buckets.contains_key(&user) {
            let full = f64::from(limit.burst());
            buckets.retain(|_, b| {
                refill(b, limit, now);
                b.tokens < full || b.blocked_until > now
            });
            // Still full of active users: forget half of them (they start again from a full
            // bucket, still under the shared count), so the map stays bounded and this scan
            // runs once per half a map of new users, not once per user.
            if buckets.len() >= MAX_TRACKED_USERS {
                let forget: Vec<UserId> = buckets
                    .iter()
                    .filter(|(_, b)| b.blocked_until <= now)
                    .map(|(u, _)| *u)
                    .take(MAX_TRACKED_USERS / 2)
                    .collect();
                for user in forget {
                    buckets.remove(&user);
                }
            }
        }
        let bucket = buckets.entry(user).or_insert_with(|| Bucket {
            tokens: f64::from(limit.burst()),
            refilled_at: now,
            unreported: 0,
            window: 0,
            blocked_until: Millis(0),
        });
        if bucket.blocked_until > now {
            return Err(Admission::Limited {
                retry_after_seconds: (bucket.blocked_until.0 - now.0).div_ceil(1000),
            });
        }
        refill(bucket, limit, now);
        let wanted = f64::from(events);
        if bucket.tokens < wanted {
            let missing = wanted - bucket.tokens;
            let seconds = (missing / f64::from(limit.per_second())).ceil().max(1.0);
            return Err(Admission::Limited {
                // At most the burst over the rate: a whole number of seconds, small.
                retry_after_seconds: seconds as u64,
            });
        }
        bucket.tokens -= wanted;
        // What was admitted in an earlier window says nothing about this one's total.
        let window = RateWindow::at(user, now).index;
        if bucket.window != window {
            bucket.window = window;
            bucket.unreported = 0;
        }
        bucket.unreported = bucket.unreported.saturating_add(events);
        if bucket.unreported >= limit.report_every() {
            return Ok(Some(std::mem::take(&mut bucket.unreported)));
        }
        Ok(None)
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn block(&self, user: UserId, until: Millis) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bucket) = buckets.get_mut(&user) {
            bucket.blocked_until = bucket.blocked_until.max(until);
        }
    }
}

fn refill(bucket: &mut Bucket, limit: RateLimit, now: Millis) {
    let elapsed = now.0.saturating_sub(bucket.refilled_at.0) as f64 / 1000.0;
    bucket.tokens =
        (bucket.tokens + elapsed * f64::from(limit.per_second())).min(f64::from(limit.burst()));
    bucket.refilled_at = bucket.refilled_at.max(now);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::model::clock::ManualClock;
    use crate::model::ports::PortError;

    /// A shared count of its own, as another instance would see it: `others` is what the other
    /// instances added.
    #[derive(Default)]
    struct Shared {
        total: AtomicU64,
        others: AtomicU64,
        writes: AtomicU64,
        down: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl RateCounter for Shared {
        async fn add(&self, _: &RateWindow, count: u32, _: Millis) -> Result<u64, PortError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(PortError::unavailable_because("shared count", "down"));
            }
            self.writes.fetch_add(1, Ordering::SeqCst);
            let total = self.total.fetch_add(u64::from(count), Ordering::SeqCst) + u64::from(count);
            Ok(total + self.others.load(Ordering::SeqCst))
        }
    }

    fn limiter(per_second: u32, burst: u32) -> (UserRateLimiter, Arc<Shared>, ManualClock) {
        let clock = ManualClock::at(Millis(1_000_000_000));
        let shared = Arc::new(Shared::default());
        let limit = RateLimit::new(per_second, burst, 1).unwrap();
        (
            UserRateLimiter::new(limit, shared.clone(), Arc::new(clock.clone())),
            shared,
            clock,
        )
    }

    #[tokio::test]
    async fn a_burst_then_the_rate() {
        let (limiter, _, clock) = limiter(10, 20);
        let u = UserId(1);
        for _ in 0..20 {
            assert_eq!(limiter.admit(u, 1).await, Admission::Admitted);
        }
        assert_eq!(
            limiter.admit(u, 1).await,
            Admission::Limited {
                retry_after_seconds: 1
            }
        );
        assert_eq!(
            limiter.admit(UserId(2), 1).await,
            Admission::Admitted,
            "another user is not held up"
        );
        clock.set(clock.now().plus_millis(500));
        for _ in 0..5 {
            assert_eq!(limiter.admit(u, 1).await, Admission::Admitted);
        }
        assert!(matches!(
            limiter.admit(u, 1).await,
            Admission::Limited { .. }
        ));
    }

    #[tokio::test]
    async fn a_batch_is_taken_whole_or_refused_whole() {
        let (limiter, _, _) = limiter(10, 20);
        let u = UserId(1);
        assert_eq!(limiter.admit(u, 15).await, Admission::Admitted);
        assert_eq!(
            limiter.admit(u, 10).await,
            Admission::Limited {
                retry_after_seconds: 1
            },
            "5 left, 10 asked"
        );
        assert_eq!(limiter.admit(u, 5).await, Admission::Admitted);
    }

    #[tokio::test]
    async fn the_shared_count_is_written_once_per_twentieth_of_the_allowance() {
        // Allowance 10 s × 100 + 200 = 1200 a window; a report every 60.
        let (limiter, shared, clock) = limiter(100, 200);
        for _ in 0..600 {
            clock.set(clock.now().plus_millis(10));
            assert_eq!(limiter.admit(UserId(1), 1).await, Admission::Admitted);
        }
        assert_eq!(shared.writes.load(Ordering::SeqCst), 10);
        assert_eq!(shared.total.load(Ordering::SeqCst), 600);
        for _ in 0..100 {
            for user in 2..100 {
                limiter.admit(UserId(user), 1).await;
            }
            clock.set(clock.now().plus_millis(1_000));
        }
        assert_eq!(
            shared.writes.load(Ordering::SeqCst),
            10,
            "users under a twentieth of a window's allowance in every window write nothing"
        );
    }

    #[tokio::test]
    async fn a_user_over_the_shared_allowance_is_refused_until_the_window_ends() {
        let (limiter, shared, clock) = limiter(100, 200);
        // Other instances already admitted most of this window's allowance.
        shared.others.store(1_180, Ordering::SeqCst);
        let start = clock.now();
        let mut admitted = 0;
        while limiter.admit(UserId(1), 1).await == Admission::Admitted {
            admitted += 1;
            assert!(admitted <= 60, "stopped at the first report");
        }
        assert_eq!(admitted, 60);
        let Admission::Limited {
            retry_after_seconds,
        } = limiter.admit(UserId(1), 1).await
        else {
            panic!("limited")
        };
        let window_end = (start.0 / SHARED_WINDOW_MILLIS + 1) * SHARED_WINDOW_MILLIS;
        assert_eq!(retry_after_seconds, (window_end - start.0).div_ceil(1000));
    }

    #[tokio::test]
    async fn without_the_shared_count_the_instance_still_limits() {
        let (limiter, shared, _) = limiter(10, 100);
        shared.down.store(true, Ordering::SeqCst);
        for _ in 0..100 {
            assert_eq!(limiter.admit(UserId(1), 1).await, Admission::Admitted);
        }
        assert!(matches!(
            limiter.admit(UserId(1), 1).await,
            Admission::Limited { .. }
        ));
    }

    #[tokio::test]
    async fn an_instance_keeps_a_bounded_number_of_buckets() {
        let (limiter, _, _) = limiter(10, 20);
        for user in 0..25_000 {
            assert_eq!(limiter.admit(UserId(user), 1).await, Admission::Admitted);
        }
        assert!(
            limiter.tracked() <= MAX_TRACKED_USERS,
            "{}",
            limiter.tracked()
        );
    }

    #[test]
    fn a_burst_must_hold_a_batch() {
        assert_eq!(
            RateLimit::new(10, 50, 100),
            Err(InvalidRateLimit::BurstBelowBatch { min: 100 })
        );
        assert_eq!(RateLimit::new(0, 100, 100), Err(InvalidRateLimit::NoRate));
    }
}
