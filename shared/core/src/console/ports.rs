//! What the ops console reads: listings across users, the per-minute tally, and what each rule
//! did per day.

use async_trait::async_trait;

use crate::model::ports::PortError;

use std::ops::RangeInclusive;

use crate::console::activity::MinuteCounts;
use crate::console::listing_pages::ListingPage;
use crate::console::rule_health::RuleDays;
use crate::delivery::alert::{AlertEntry, AlertFilter};
use crate::model::domain::Millis;
use crate::model::listing::{EventFilter, ListedEvent, Page};
use crate::rules::RuleId;

/// Newest-first listings for operators.
#[async_trait]
pub trait Browse: Send + Sync {
    async fn events(
        &self,
        filter: &EventFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<ListedEvent>, PortError>;
    async fn alerts(
        &self,
        filter: &AlertFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<AlertEntry>, PortError>;
}

/// Where the stream consumer writes the listings across everyone and by web session
/// ([`crate::console::listing_pages`]).
#[async_trait]
pub trait ListingPages: Send + Sync {
    /// Records a stream batch's pages. `batch` names the batch (its first record), so that the
    /// same batch recorded again rewrites the same pages; a batch retried from a later record
    /// writes pages of its own, and the listings drop the repeats.
    async fn record(&self, batch: &str, pages: &[ListingPage]) -> Result<(), PortError>;
}

/// Events and alerts counted per minute for the dashboard, so that a chart reads a few small
/// items rather than every event.
#[async_trait]
pub trait ActivityTally: Send + Sync {
    /// Adds `counts` to the tally. Not keyed by event: a redelivered stream batch counts again,
    /// so the tally may run a little high (it is a chart, not a ledger).
    async fn add(&self, counts: &MinuteCounts) -> Result<(), PortError>;

    /// The counts of every minute in `[from, to)`.
    async fn counts(&self, from: Millis, to: Millis) -> Result<MinuteCounts, PortError>;

    /// Adds what a batch's rules did, per rule and UTC day (not keyed by event either).
    async fn add_rule_days(&self, counts: &RuleDays) -> Result<(), PortError>;

    /// What `rules` did on each UTC day of `days` (days since 1970).
    async fn rule_days(
        &self,
        rules: &[RuleId],
        days: RangeInclusive<u64>,
    ) -> Result<RuleDays, PortError>;
}
