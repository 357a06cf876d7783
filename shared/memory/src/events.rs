//! Events and profiles in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use cuba_core::delivery::ports::ProfileStore;
use cuba_core::model::domain::{
    EventId, Insert, MAX_ITEM_BYTES, Millis, ReceivedEvent, StoredEvent, UserId, UserProfile,
};
use cuba_core::model::ports::{EventStore, PortError};

use crate::faults::{Faults, lock};

pub(crate) struct StoredRow {
    pub received: ReceivedEvent,
    pub invalid: bool,
}

#[derive(Default)]
pub struct MemoryEvents {
    faults: Arc<Faults>,
    pub(crate) rows: Mutex<BTreeMap<(UserId, EventId), StoredRow>>,
    /// The item size over which an insert is refused: DynamoDB's unless a test lowers it.
    item_limit: Mutex<Option<usize>>,
}

impl MemoryEvents {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryEvents {
            faults,
            rows: Mutex::default(),
            item_limit: Mutex::default(),
        }
    }

    /// Refuses events whose stored form is over `bytes` (DynamoDB's limit is [`MAX_ITEM_BYTES`]),
    /// so tests can reach the refusal through the HTTP bounds.
    pub fn limit_items_to(&self, bytes: usize) {
        *lock(&self.item_limit) = Some(bytes);
    }

    /// Every stored event, oldest first (tests compare stores with this).
    pub fn all(&self) -> Vec<ReceivedEvent> {
        let mut all: Vec<ReceivedEvent> = lock(&self.rows)
            .values()
            .map(|row| row.received.clone())
            .collect();
        all.sort_by(|a, b| order(&a.event, &b.event));
        all
    }
}

pub(crate) fn order(a: &StoredEvent, b: &StoredEvent) -> std::cmp::Ordering {
    (a.received_at, a.user, a.id.as_str()).cmp(&(b.received_at, b.user, b.id.as_str()))
}

/// Stores `received` unless its (user, id) is taken, as the DynamoDB adapter's conditional put.
fn insert_unless_stored(
    rows: &mut BTreeMap<(UserId, EventId), StoredRow>,
    received: &ReceivedEvent,
    limit: usize,
) -> Insert {
    let key = (received.event.user, received.event.id.clone());
    // As DynamoDB sizes an item: its fields and, when kept, its raw text.
    let size =
        serde_json::to_string(&received.event).map_or(0, |text| text.len()) + received.raw.len();
    if size > limit {
        return Insert::Refused {
            reason: format!("the item is over the store's {limit}-byte limit"),
        };
    }
    match rows.get(&key) {
        // This very write again (a retry of a put whose answer was lost), as the adapter tells.
        Some(row) if row.received.event == received.event => Insert::Inserted,
        Some(row) => Insert::Duplicate(row.received.event.clone()),
        None => {
            rows.insert(
                key,
                StoredRow {
                    received: received.clone(),
                    invalid: false,
                },
            );
            Insert::Inserted
        }
    }
}

#[async_trait]
impl EventStore for MemoryEvents {
    async fn insert(&self, received: &ReceivedEvent) -> Result<Insert, PortError> {
        let call = self.faults.enter("events.insert")?;
        let limit = lock(&self.item_limit).unwrap_or(MAX_ITEM_BYTES);
        let outcome = insert_unless_stored(&mut lock(&self.rows), received, limit);
        call.finish(outcome)
    }

    async fn insert_many(&self, events: &[ReceivedEvent]) -> Result<Vec<Insert>, PortError> {
        let call = self.faults.enter("events.insert_many")?;
        let limit = lock(&self.item_limit).unwrap_or(MAX_ITEM_BYTES);
        let mut rows = lock(&self.rows);
        let outcomes = events
            .iter()
            .map(|received| insert_unless_stored(&mut rows, received, limit))
            .collect();
        call.finish(outcomes)
    }

    async fn get(&self, user: UserId, id: &EventId) -> Result<Option<ReceivedEvent>, PortError> {
        let call = self.faults.enter("events.get")?;
        let found = lock(&self.rows)
            .get(&(user, id.clone()))
            .map(|row| row.received.clone());
        call.finish(found)
    }

    async fn set_invalid(
        &self,
        user: UserId,
        id: &EventId,
        received_at: Millis,
        invalid: bool,
    ) -> Result<(), PortError> {
        let call = self.faults.enter("events.set_invalid")?;
        match lock(&self.rows).get_mut(&(user, id.clone())) {
            Some(row) if row.received.event.received_at == received_at => row.invalid = invalid,
            _ => {
                return Err(PortError::corrupt(format!(
                    "event {user}/{id} is not stored"
                )));
            }
        }
        call.finish(())
    }

    async fn received_between(
        &self,
        user: UserId,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<StoredEvent>, PortError> {
        let call = self.faults.enter("events.received_between")?;
        let mut events: Vec<StoredEvent> = lock(&self.rows)
            .values()
            .filter(|row| {
                let e = &row.received.event;
                !row.invalid && e.user == user && e.received_at >= from && e.received_at <= to
            })
            .map(|row| row.received.event.clone())
            .collect();
        events.sort_by(order);
        call.finish(events)
    }

    async fn all_received_between(
        &self,
        from: Millis,
        to: Millis,
        limit: usize,
    ) -> Result<(Vec<StoredEvent>, bool), PortError> {
        let call = self.faults.enter("events.all_received_between")?;
        let mut events: Vec<StoredEvent> = lock(&self.rows)
            .values()
            .filter(|row| {
                let e = &row.received.event;
                !row.invalid && e.received_at >= from && e.received_at <= to
            })
            .map(|row| row.received.event.clone())
            .collect();
        let truncated = events.len() > limit;
        events.truncate(limit);
        call.finish((events, truncated))
    }
}

#[derive(Default)]
pub struct MemoryProfiles {
    faults: Arc<Faults>,
    profiles: Mutex<HashMap<UserId, UserProfile>>,
}

impl MemoryProfiles {
    pub fn new(faults: Arc<Faults>) -> Self {
        MemoryProfiles {
            faults,
            profiles: Mutex::default(),
        }
    }
}

#[async_trait]
impl ProfileStore for MemoryProfiles {
    async fn save(&self, profile: &UserProfile, expected: u64) -> Result<bool, PortError> {
        let call = self.faults.enter("profiles.save")?;
        let mut profiles = lock(&self.profiles);
        let mut stored = profile.clone();
        stored.version = expected + 1;
        let current = profiles.get(&profile.user);
        let saved = match current {
            // A repeat of this very write (its answer was lost) finds the profile as it left it.
            Some(current) if *current == stored => true,
            _ if current.map_or(0, |p| p.version) == expected => {
                profiles.insert(profile.user, stored);
                true
            }
            _ => false,
        };
        call.finish(saved)
    }

    async fn profile(&self, user: UserId) -> Result<Option<UserProfile>, PortError> {
        let call = self.faults.enter("profiles.get")?;
        let found = lock(&self.profiles).get(&user).cloned();
        call.finish(found)
    }

    async fn spend_attempt(&self, user: UserId, code_hash: &str) -> Result<Option<u8>, PortError> {
        let call = self.faults.enter("profiles.spend_attempt")?;
        let mut profiles = lock(&self.profiles);
        let left = profiles
            .get_mut(&user)
            .and_then(|profile| profile.pending_code.as_mut())
            .filter(|code| code.hash == code_hash && code.attempts_left > 0)
            .map(|code| {
                code.attempts_left -= 1;
                code.attempts_left
            });
        call.finish(left)
    }
}
