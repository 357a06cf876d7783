//! One user's event reads across one stream batch. A user whose window bucket overflowed has
//! each window read from their events ([`crate::evaluation::RuleEvaluator`]), and an absence
//! check whose buckets cannot answer reads the span after its trigger. A heavy user's records
//! sit next to each other in a batch and read nearly the same span, so the span is read once
//! per batch and each later record reads only what its own span adds. The items read are
//! counted against the user's budget for the batch, which the stream handler checks before
//! starting each of the user's records after the first: past it, the rest wait for the retry,
//! and the batch's other users are not held up behind one who reads a great deal.
//!
//! Reusing a span read earlier in the same batch is as good as reading it again: every record of
//! the batch was stored before the batch was read, so an earlier scan already saw every event a
//! later record's decision counts. An event stored after the scan is not this batch's; its own
//! evaluation, later, sees this batch's events (and decides the windows it completes).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use crate::model::domain::{EventId, Insert, Millis, ReceivedEvent, StoredEvent, UserId};
use crate::model::ports::{EventStore, PortError};

/// Items one user's records may read from the events in one batch before the rest of their
/// records wait for the retry. At the default rate limit (100 events a second) the seed's
/// 5-minute window holds at most about 30,000 events, so a user within the limit has the whole
/// batch done in one invocation: one span read, then what each record adds.
pub const DEFAULT_USER_READS_PER_BATCH: usize = 40_000;

/// A span of receive times, both ends included.
type Range = (Millis, Millis);

/// The span of one user's events read so far in the batch, oldest first.
struct Span {
    from: Millis,
    to: Millis,
    events: Vec<StoredEvent>,
}

/// [`EventStore`] for one user's records of one batch: [`EventStore::received_between`] for that
/// user is served from the span already read where it covers the request, and only the rest is
/// read; every other call goes to `inner`.
pub struct UserBatchReads {
    inner: Arc<dyn EventStore>,
    user: UserId,
    budget: usize,
    ahead: u64,
    read: AtomicUsize,
    span: Mutex<Option<Span>>,
}

impl UserBatchReads {
    /// `ahead` is how much later than the first the user's last record of the batch was
    /// received: a read reaches that much further than asked, so that the later records'
    /// spans, which end that much later at most, are already read.
    pub fn new(inner: Arc<dyn EventStore>, user: UserId, budget: usize, ahead: u64) -> Self {
        UserBatchReads {
            inner,
            user,
            budget,
            ahead,
            read: AtomicUsize::new(0),
            span: Mutex::new(None),
        }
    }

    /// Items read from the store so far.
    pub fn items_read(&self) -> usize {
        self.read.load(Ordering::Relaxed)
    }

    /// True once the user's records have read their budget for the batch.
    pub fn spent(&self) -> bool {
        self.items_read() >= self.budget
    }

    async fn read(&self, from: Millis, to: Millis) -> Result<Vec<StoredEvent>, PortError> {
        let events = self.inner.received_between(self.user, from, to).await?;
        self.read.fetch_add(events.len(), Ordering::Relaxed);
        Ok(events)
    }

    fn cached(&self, from: Millis, to: Millis) -> Option<Vec<StoredEvent>> {
        let span = self.span.lock().unwrap_or_else(|e| e.into_inner());
        let span = span.as_ref()?;
        (span.from <= from && to <= span.to).then(|| within(&span.events, from, to))
    }

    /// The part of `from..=to` the span does not hold yet, on each side (`None` when the span
    /// and the request do not touch: the request is then read whole and replaces the span).
    fn missing(&self, from: Millis, to: Millis) -> Option<(Option<Range>, Option<Range>)> {
        let span = self.span.lock().unwrap_or_else(|e| e.into_inner());
        let span = span.as_ref()?;
        if to.0.saturating_add(1) < span.from.0 || span.to.0.saturating_add(1) < from.0 {
            return None;
        }
        let before = (from < span.from).then(|| (from, Millis(span.from.0 - 1)));
        let after = (span.to < to).then(|| (span.to.plus_one(), to));
        Some((before, after))
    }
}

fn within(events: &[StoredEvent], from: Millis, to: Millis) -> Vec<StoredEvent> {
    events
        .iter()
        .filter(|e| (from..=to).contains(&e.received_at))
        .cloned()
        .collect()
}

#[async_trait]
impl EventStore for UserBatchReads {
    async fn insert(&self, event: &ReceivedEvent) -> Result<Insert, PortError> {
        self.inner.insert(event).await
    }

    async fn insert_many(&self, events: &[ReceivedEvent]) -> Result<Vec<Insert>, PortError> {
        self.inner.insert_many(events).await
    }

    async fn get(&self, user: UserId, id: &EventId) -> Result<Option<ReceivedEvent>, PortError> {
        self.inner.get(user, id).await
    }

    async fn get_received(
        &self,
        user: UserId,
        id: &EventId,
        received_at: Millis,
    ) -> Result<Option<ReceivedEvent>, PortError> {
        self.inner.get_received(user, id, received_at).await
    }

    async fn set_invalid(
        &self,
        user: UserId,
        id: &EventId,
        received_at: Millis,
        invalid: bool,
    ) -> Result<(), PortError> {
        self.inner
            .set_invalid(user, id, received_at, invalid)
            .await?;
        // An event marked invalid leaves the user's spans; one marked valid joins them: the
        // span read so far no longer says what a read would.
        if user == self.user {
            *self.span.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        Ok(())
    }

    async fn received_between(
        &self,
        user: UserId,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<StoredEvent>, PortError> {
        if user != self.user || to < from {
            return self.inner.received_between(user, from, to).await;
        }
        if let Some(events) = self.cached(from, to) {
            return Ok(events);
        }
        let reach = to.plus_millis(self.ahead);
        let Some((before, after)) = self.missing(from, to) else {
            let events = self.read(from, reach).await?;
            let asked = within(&events, from, to);
            *self.span.lock().unwrap_or_else(|e| e.into_inner()) = Some(Span {
                from,
                to: reach,
                events,
            });
            return Ok(asked);
        };
        let earlier = match before {
            Some((from, to)) => self.read(from, to).await?,
            None => Vec::new(),
        };
        let later = match after {
            Some((from, _)) => self.read(from, reach).await?,
            None => Vec::new(),
        };
        let merged = {
            let mut span = self.span.lock().unwrap_or_else(|e| e.into_inner());
            span.as_mut().map(|held| {
                let mut events = earlier;
                events.append(&mut held.events);
                events.extend(later);
                held.events = events;
                held.from = held.from.min(from);
                if after.is_some() {
                    held.to = held.to.max(reach);
                }
                within(&held.events, from, to)
            })
        };
        match merged {
            Some(events) => Ok(events),
            // Dropped meanwhile (an event changed validity): read the request whole.
            None => self.read(from, to).await,
        }
    }

    async fn all_received_between(
        &self,
        from: Millis,
        to: Millis,
        limit: usize,
    ) -> Result<(Vec<StoredEvent>, bool), PortError> {
        self.inner.all_received_between(from, to, limit).await
    }
}
