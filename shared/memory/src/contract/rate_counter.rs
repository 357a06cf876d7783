//! The [`RateCounter`](cuba_core::intake::ports::RateCounter) contract: per user and window,
//! totals that only add up.

use cuba_core::intake::ports::RateCounter;
use cuba_core::intake::rate_limit::RateWindow;
use cuba_core::model::domain::{Millis, UserId};

use super::at;

/// Adds accumulate per user and window, and each answer is the total after it.
pub async fn rate_counter(counter: &dyn RateCounter, base: Millis) {
    let window = |user, index| RateWindow {
        user: UserId(user),
        index,
    };
    let expires = at(base, 3_600_000);
    let index = base.0 / 10_000;
    assert_eq!(counter.add(&window(1, index), 60, expires).await, Ok(60));
    assert_eq!(counter.add(&window(1, index), 7, expires).await, Ok(67));
    assert_eq!(
        counter.add(&window(2, index), 5, expires).await,
        Ok(5),
        "another user counts apart"
    );
    assert_eq!(
        counter.add(&window(1, index + 1), 1, expires).await,
        Ok(1),
        "the next window starts from zero"
    );
}
