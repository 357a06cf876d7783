//! The error log and the operators' listings in memory, newest first, with opaque cursors that
//! resume after the last item handed out.

use std::collections::{BTreeMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use cuba_core::console::activity::MinuteCounts;
use cuba_core::console::listing_pages::{Listed, ListingPage, kind_of};
use cuba_core::console::ports::{ActivityTally, Browse, ListingPages};
use cuba_core::console::rule_health::RuleDays;
use cuba_core::delivery::alert::{AlertEntry, AlertFilter};
use cuba_core::model::domain::{EventBody, EventId, Millis, StoredEvent, UserId};
use cuba_core::model::listing::{EventFilter, ListedEvent, Page};
use cuba_core::model::ports::PortError;
use cuba_core::rules::RuleId;
use cuba_core::schemas::error_log::{ErrorEntry, ErrorFilter, ErrorStatus};
use cuba_core::schemas::ports::ErrorLog;
use cuba_core::schemas::{SchemaRef, Violation, violation_kinds};

use crate::alert_ledger::MemoryAlertLedger;
use crate::events::MemoryEvents;
use crate::faults::{Faults, lock};

/// One newest-first page of `items` (each with its sort time and a unique key), after `cursor`.
fn page<T>(
    mut items: Vec<(Millis, String, T)>,
    limit: usize,
    cursor: Option<&str>,
) -> Result<Page<T>, PortError> {
    items.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
    let after = cursor
        .map(|raw| {
            raw.split_once(':')
                .and_then(|(at, key)| Some((Millis(at.parse().ok()?), key.to_owned())))
                .ok_or(PortError::InvalidCursor)
        })
        .transpose()?;
    let mut rest: Vec<(Millis, String, T)> = items
        .into_iter()
        .filter(|(at, key, _)| {
            after
                .as_ref()
                .is_none_or(|(after_at, after_key)| (*at, key) < (*after_at, after_key))
        })
        .collect();
    let next = (rest.len() > limit).then(|| {
        let (at, key, _) = &rest[limit - 1];
        format!("{}:{key}", at.0)
    });
    rest.truncate(limit);
    Ok(Page {
        items: rest.into_iter().map(|(_, _, item)| item).collect(),
        next,
    })
}

fn event_key(user: UserId, id: &EventId) -> String {
    format!("{user}/{id}")
}

/// The pages the stream consumer wrote, as the set of events each listing holds: a listing
/// across everyone or by session shows only what was recorded, as on DynamoDB.
pub struct MemoryListingPages {
    faults: Arc<Faults>,
    listed: Mutex<HashSet<(Listed, UserId, EventId)>>,
}

impl MemoryListingPages {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryListingPages {
            faults,
            listed: Mutex::default(),
        }
    }

    fn holds(&self, listing: Listed, event: &StoredEvent) -> bool {
        lock(&self.listed).contains(&(listing, event.user, event.id.clone()))
    }
}

#[async_trait]
impl ListingPages for MemoryListingPages {
    async fn record(&self, _batch: &str, pages: &[ListingPage]) -> Result<(), PortError> {
        let call = self.faults.enter("pages.record")?;
        let mut listed = lock(&self.listed);
        for page in pages {
            for entry in &page.entries {
                listed.insert((page.listing.clone(), entry.user, entry.id.clone()));
            }
        }
        drop(listed);
        call.finish(())
    }
}

pub struct MemoryBrowse {
    faults: Arc<Faults>,
    events: Arc<MemoryEvents>,
    pages: Arc<MemoryListingPages>,
    ledger: Arc<MemoryAlertLedger>,
}

impl MemoryBrowse {
    pub fn new(
        faults: Arc<Faults>,
        events: Arc<MemoryEvents>,
        pages: Arc<MemoryListingPages>,
        ledger: Arc<MemoryAlertLedger>,
    ) -> Self {
        MemoryBrowse {
            faults,
            events,
            pages,
            ledger,
        }
    }
}

#[async_trait]
impl Browse for MemoryBrowse {
    async fn events(
        &self,
        filter: &EventFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<ListedEvent>, PortError> {
        let call = self.faults.enter("browse.events")?;
        let items = lock(&self.events.rows)
            .values()
            .map(|row| (&row.received.event, (row.invalid, &row.received.trace)))
            .filter(|(e, _)| e.received_at >= filter.from && e.received_at <= filter.to)
            .filter(|(e, _)| filter.user.is_none_or(|user| e.user == user))
            .filter(|(e, _)| filter.kind.is_none_or(|kind| kind_of(&e.body) == kind))
            .filter(|(e, _)| match (&filter.session, &e.body) {
                (None, _) => filter.user.is_some() || self.pages.holds(Listed::Everyone, e),
                (Some(session), EventBody::Web(web)) => {
                    web.session_id == *session
                        && self.pages.holds(Listed::Session(session.clone()), e)
                }
                (Some(_), _) => false,
            })
            .map(|(e, (invalid, trace))| {
                let listed = ListedEvent {
                    event: e.clone(),
                    invalid,
                    trace: trace.clone(),
                };
                (e.received_at, event_key(e.user, &e.id), listed)
            })
            .collect();
        call.finish(page(items, limit, cursor)?)
    }

    async fn alerts(
        &self,
        filter: &AlertFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<AlertEntry>, PortError> {
        let call = self.faults.enter("browse.alerts")?;
        let items = self
            .ledger
            .entries()
            .into_iter()
            .filter(|a| a.fired_at >= filter.from && a.fired_at <= filter.to)
            .filter(|a| filter.user.is_none_or(|user| a.user == user))
            .filter(|a| filter.rule.as_ref().is_none_or(|rule| a.rule_id == *rule))
            .map(|a| (a.fired_at, a.alert_id.as_str().to_owned(), a))
            .collect();
        call.finish(page(items, limit, cursor)?)
    }
}

/// The per-minute tally in memory.
#[derive(Default)]
pub struct MemoryActivityTally {
    faults: Arc<Faults>,
    counts: Mutex<MinuteCounts>,
    rule_days: Mutex<RuleDays>,
}

impl MemoryActivityTally {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryActivityTally {
            faults,
            counts: Mutex::default(),
            rule_days: Mutex::default(),
        }
    }
}

#[async_trait]
impl ActivityTally for MemoryActivityTally {
    async fn add(&self, counts: &MinuteCounts) -> Result<(), PortError> {
        let call = self.faults.enter("tally.add")?;
        let mut tally = lock(&self.counts);
        for (minute, t) in counts.minutes() {
            tally.add(minute, t);
        }
        call.finish(())
    }

    async fn counts(&self, from: Millis, to: Millis) -> Result<MinuteCounts, PortError> {
        let call = self.faults.enter("tally.counts")?;
        let (first, end) = (
            MinuteCounts::minute_of(from),
            MinuteCounts::minute_of(Millis(to.0.saturating_sub(1))),
        );
        let mut out = MinuteCounts::default();
        if to > from {
            for (minute, t) in lock(&self.counts).minutes() {
                if (first..=end).contains(&minute) {
                    out.add(minute, t);
                }
            }
        }
        call.finish(out)
    }

    async fn add_rule_days(&self, counts: &RuleDays) -> Result<(), PortError> {
        let call = self.faults.enter("tally.add_rule_days")?;
        let mut kept = lock(&self.rule_days);
        for (rule, day, day_counts) in counts.entries() {
            kept.add(rule, day, day_counts);
        }
        call.finish(())
    }

    async fn rule_days(
        &self,
        rules: &[RuleId],
        days: RangeInclusive<u64>,
    ) -> Result<RuleDays, PortError> {
        let call = self.faults.enter("tally.rule_days")?;
        let mut out = RuleDays::default();
        for (rule, day, counts) in lock(&self.rule_days).entries() {
            if rules.contains(rule) && days.contains(&day) {
                out.add(rule, day, counts);
            }
        }
        call.finish(out)
    }
}

#[derive(Default)]
pub struct MemoryErrorLog {
    faults: Arc<Faults>,
    entries: Mutex<BTreeMap<(UserId, EventId), ErrorEntry>>,
}

impl MemoryErrorLog {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryErrorLog {
            faults,
            entries: Mutex::default(),
        }
    }
}

#[async_trait]
impl ErrorLog for MemoryErrorLog {
    async fn record(&self, entry: &ErrorEntry) -> Result<(), PortError> {
        let call = self.faults.enter("errors.record")?;
        let mut entries = lock(&self.entries);
        let key = (entry.user, entry.id.clone());
        let open = entries
            .get(&key)
            .is_none_or(|existing| existing.status == ErrorStatus::Open);
        if open {
            entries.insert(key, entry.clone());
        }
        call.finish(())
    }

    async fn get(&self, user: UserId, id: &EventId) -> Result<Option<ErrorEntry>, PortError> {
        let call = self.faults.enter("errors.get")?;
        let found = lock(&self.entries).get(&(user, id.clone())).cloned();
        call.finish(found)
    }

    async fn claim_replay(
        &self,
        user: UserId,
        id: &EventId,
        now: Millis,
        stale_before: Millis,
    ) -> Result<bool, PortError> {
        let call = self.faults.enter("errors.claim_replay")?;
        let mut entries = lock(&self.entries);
        let claimed = match entries.get_mut(&(user, id.clone())) {
            Some(entry)
                if entry.status == ErrorStatus::Open
                    || (entry.status == ErrorStatus::Replaying
                        && entry.claimed_at.is_some_and(|at| at < stale_before)) =>
            {
                entry.status = ErrorStatus::Replaying;
                entry.claimed_at = Some(now);
                true
            }
            _ => false,
        };
        call.finish(claimed)
    }

    async fn reopen(
        &self,
        user: UserId,
        id: &EventId,
        violations: &[Violation],
        schema: Option<&SchemaRef>,
    ) -> Result<(), PortError> {
        let call = self.faults.enter("errors.reopen")?;
        if let Some(entry) = lock(&self.entries).get_mut(&(user, id.clone()))
            && entry.status == ErrorStatus::Replaying
        {
            entry.status = ErrorStatus::Open;
            entry.violations = violations.to_vec();
            entry.violation_kinds = violation_kinds(violations);
            entry.schema = schema.cloned();
            entry.claimed_at = None;
        }
        call.finish(())
    }

    async fn mark_replayed(
        &self,
        user: UserId,
        id: &EventId,
        by: &str,
        at: Millis,
    ) -> Result<(), PortError> {
        let call = self.faults.enter("errors.mark_replayed")?;
        if let Some(entry) = lock(&self.entries).get_mut(&(user, id.clone())) {
            entry.status = ErrorStatus::Replayed;
            entry.replayed_at = Some(at);
            entry.replayed_by = Some(by.to_owned());
            entry.claimed_at = None;
        }
        call.finish(())
    }

    async fn list(
        &self,
        filter: &ErrorFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<ErrorEntry>, PortError> {
        let call = self.faults.enter("errors.list")?;
        let items = lock(&self.entries)
            .values()
            .filter(|e| e.received_at >= filter.from && e.received_at <= filter.to)
            .filter(|e| filter.user.is_none_or(|user| e.user == user))
            .filter(|e| {
                filter
                    .event_type
                    .as_ref()
                    .is_none_or(|t| e.event_type == *t)
            })
            .filter(|e| {
                filter
                    .violation
                    .as_ref()
                    .is_none_or(|kind| e.violation_kinds.contains(kind))
            })
            .filter(|e| filter.status.is_none_or(|status| e.status == status))
            .map(|e| (e.received_at, event_key(e.user, &e.id), e.clone()))
            .collect();
        call.finish(page(items, limit, cursor)?)
    }
}
