//! What the per-user event rate limit costs: the time of one admission inside an ingest
//! instance, and the shared count's writes per million events, for ordinary users and for a
//! busy one. The shared count here only counts its calls (in AWS each is one DynamoDB `UpdateItem`,
//! one write unit). Single thread, a manual clock; `cargo bench -p cuba-core --bench rate_limit`
//! (part of `make bench`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use cuba_core::intake::ports::RateCounter;
use cuba_core::intake::rate::{Admission, UserRateLimiter};
use cuba_core::intake::rate_limit::{RateLimit, RateWindow};
use cuba_core::model::clock::{Clock, ManualClock};
use cuba_core::model::domain::{Millis, UserId};
use cuba_core::model::ports::PortError;

/// Counts writes; answers each window's running total.
#[derive(Default)]
struct CountingShared {
    writes: AtomicU64,
    totals: std::sync::Mutex<std::collections::HashMap<(UserId, u64), u64>>,
}

#[async_trait]
impl RateCounter for CountingShared {
    async fn add(&self, window: &RateWindow, count: u32, _: Millis) -> Result<u64, PortError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        let mut totals = self.totals.lock().unwrap_or_else(|p| p.into_inner());
        let total = totals.entry((window.user, window.index)).or_default();
        *total += u64::from(count);
        Ok(*total)
    }
}

/// Writes-unit price, on-demand, per million (as in the cost bench).
const DOLLARS_PER_MILLION_WRITES: f64 = 0.625;

struct Run {
    label: &'static str,
    events: u64,
    admitted: u64,
    writes: u64,
    nanos_per_admission: f64,
}

/// `events` admissions: user `user_of(i)` at `at(i)` milliseconds into the run.
async fn run(
    label: &'static str,
    events: u64,
    user_of: impl Fn(u64) -> u64,
    at: impl Fn(u64) -> u64,
) -> Run {
    let clock = ManualClock::at(Millis(1_800_000_000_000));
    let start = clock.now();
    let shared = Arc::new(CountingShared::default());
    let limit = RateLimit::new(100, 200, 100).expect("the default limit");
    let limiter = UserRateLimiter::new(limit, shared.clone(), Arc::new(clock.clone()));
    let mut admitted = 0;
    let began = Instant::now();
    for i in 0..events {
        clock.set(start.plus_millis(at(i)));
        if limiter.admit(UserId(user_of(i)), 1).await == Admission::Admitted {
            admitted += 1;
        }
    }
    let elapsed = began.elapsed();
    Run {
        label,
        events,
        admitted,
        writes: shared.writes.load(Ordering::Relaxed),
        nanos_per_admission: elapsed.as_nanos() as f64 / events as f64,
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let runs = runtime.block_on(async {
        vec![
            // 10,000 users sending 1 event a second each (10,000 events/s in all), for 100 s.
            run(
                "10,000 users at 1 event/s each",
                1_000_000,
                |i| i % 10_000,
                |i| i / 10,
            )
            .await,
            // One user at the limit (100 a second) for 10,000 s.
            run(
                "one user at 100 events/s (the limit)",
                1_000_000,
                |_| 7,
                |i| i * 10,
            )
            .await,
            // One user trying 1,000 a second: held to the limit.
            run("one user trying 1,000 events/s", 1_000_000, |_| 7, |i| i).await,
        ]
    });
    println!(
        "| load | events tried | admitted | shared-count writes | per million events tried | $ per million events tried | time per admission |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in runs {
        let per_million = r.writes as f64 * 1e6 / r.events as f64;
        println!(
            "| {} | {} | {} | {} | {:.0} | ${:.4} | {:.0} ns |",
            r.label,
            r.events,
            r.admitted,
            r.writes,
            per_million,
            per_million * DOLLARS_PER_MILLION_WRITES / 1e6,
            r.nanos_per_admission
        );
    }
}
