//! The event pages table: the listings of events across everyone and by web session, written
//! by the rules function as one item per stream batch, listing and second of receipt
//! ([`cuba_core::console::listing_pages`]) instead of an index entry per event.
//!
//! A page's partition is `e#{day}#{shard}` for everyone's events (the shard hashed from the
//! batch's name, so no partition takes every batch of a day) or `s#{session}` for a web
//! session's; its sort key is `{second as 10 hex digits}#{batch}#{chunk}`. Its `events` list
//! holds one text entry per event: `{kind letter} {user} {received_at} {id}`.
//!
//! A reader walks a listing's seconds newest first: it reads every partition's pages of the
//! newest second not yet read, orders their entries (receive time, then user, then the item's
//! key, newest first), drops repeats (a batch retried from a later record wrote some of its
//! events again, on pages of its own) and those at or before the cursor, then reads the events
//! themselves from the events table in one batch.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde::{Deserialize, Serialize};

use crate::events::{EVENTS_TABLE_KEY, event_sort_key, table_key};
use crate::items::{BATCH_WRITE_ITEMS, Item, Retention, batch_write, corrupt, n, unavailable};
use crate::listing::{decode_cursor, encode_cursor, read_in_order};
use crate::partition_keys::{ListingShards, day_bucket, listing_bucket};
use cuba_core::console::listing_pages::{Listed, ListingPage, PageEntry, second_of};
use cuba_core::console::ports::ListingPages;
use cuba_core::model::domain::{EventId, Millis, SessionId, UserId};
use cuba_core::model::listing::{EventFilter, EventKind, ListedEvent, Page};
use cuba_core::model::ports::PortError;

/// The partition and sort key attributes of a page.
const PAGE_KEY: &str = "page";
const PAGE_SORT_KEY: &str = "at";
/// The list of entries.
const ENTRIES: &str = "events";
/// Entries one page item holds: a Lambda batch holds up to 10,000 records, and an item at most
/// 400 KB; a thousand entries of the longest ids stay under 120 KB.
const ENTRIES_PER_ITEM: usize = 1000;
/// Pages a partition's first query asks for, and the most a later one does: each asks for twice
/// the last. A busy fleet's page holds 100 events (about 7 KB) and a listing needs the newest
/// second of each shard, a few pages; a quiet one's pages are small, and reading on is cheap.
const FIRST_QUERY_PAGES: i32 = 4;
const MOST_QUERY_PAGES: i32 = 64;

/// The partition a batch's page of `listing` goes to.
fn partition(listing: &Listed, shards: ListingShards, second: u64, batch: &str) -> String {
    match listing {
        Listed::Everyone => format!("e#{}", listing_bucket(shards, Millis(second * 1000), batch)),
        Listed::Session(session) => session_partition(session),
    }
}

/// Every partition of everyone's pages of `day`.
fn everyone_partitions(shards: ListingShards, day: u64) -> Vec<String> {
    shards
        .all(&day.to_string())
        .map(|value| format!("e#{value}"))
        .collect()
}

fn session_partition(session: &SessionId) -> String {
    format!("s#{}", session.as_str())
}

fn kind_letter(kind: EventKind) -> char {
    match kind {
        EventKind::Activity => 'a',
        EventKind::Feedback => 'f',
        EventKind::Web => 'w',
    }
}

fn encode(entry: &PageEntry) -> String {
    format!(
        "{} {} {} {}",
        kind_letter(entry.kind),
        entry.user,
        entry.received_at.0,
        entry.id.as_str()
    )
}

fn decode(text: &str) -> Option<PageEntry> {
    let mut parts = text.splitn(4, ' ');
    let kind = match parts.next()? {
        "a" => EventKind::Activity,
        "f" => EventKind::Feedback,
        "w" => EventKind::Web,
        _ => return None,
    };
    let user = UserId(parts.next()?.parse().ok()?);
    let received_at = Millis(parts.next()?.parse().ok()?);
    let id = EventId::parse(parts.next()?).ok()?;
    Some(PageEntry {
        user,
        id,
        received_at,
        kind,
    })
}

/// The event pages table, written by the rules function.
#[derive(Debug, Clone)]
pub struct DynamoListingPages {
    client: Client,
    table: String,
    retention: Option<Retention>,
    shards: ListingShards,
}

impl DynamoListingPages {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoListingPages {
            client,
            table: table.into(),
            retention: None,
            shards: ListingShards::DEFAULT,
        }
    }

    /// Spreads everyone's pages of a day over `shards` partitions.
    pub fn sharded(self, shards: ListingShards) -> Self {
        DynamoListingPages { shards, ..self }
    }

    /// Pages expire with the events they list.
    pub fn retained_for(self, retention: Retention) -> Self {
        DynamoListingPages {
            retention: Some(retention),
            ..self
        }
    }

    fn items(&self, batch: &str, page: &ListingPage) -> Vec<Item> {
        let pk = partition(&page.listing, self.shards, page.second, batch);
        page.entries
            .chunks(ENTRIES_PER_ITEM)
            .enumerate()
            .map(|(chunk, entries)| {
                let mut item = Item::from([
                    (PAGE_KEY.to_owned(), AttributeValue::S(pk.clone())),
                    (
                        PAGE_SORT_KEY.to_owned(),
                        AttributeValue::S(format!("{:010x}#{batch}#{chunk}", page.second)),
                    ),
                    (
                        ENTRIES.to_owned(),
                        AttributeValue::L(
                            entries
                                .iter()
                                .map(|e| AttributeValue::S(encode(e)))
                                .collect(),
                        ),
                    ),
                ]);
                if let Some(retention) = self.retention {
                    // The page's last second: no event on it outlives the page.
                    let last = Millis(page.second * 1000 + 999);
                    item.insert("expires_at".to_owned(), n(retention.expires_at(last)));
                }
                item
            })
            .collect()
    }
}

#[async_trait]
impl ListingPages for DynamoListingPages {
    async fn record(&self, batch: &str, pages: &[ListingPage]) -> Result<(), PortError> {
        let items: Vec<Item> = pages.iter().flat_map(|p| self.items(batch, p)).collect();
        for chunk in items.chunks(BATCH_WRITE_ITEMS) {
            let requests = chunk
                .iter()
                .map(|item| {
                    PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map(|put| WriteRequest::builder().put_request(put).build())
                        .map_err(|e| PortError::unavailable("dynamodb", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if !batch_write(&self.client, &self.table, requests).await? {
                return Err(PortError::corrupt(format!(
                    "{}: DynamoDB refused a listing page",
                    self.table
                )));
            }
        }
        Ok(())
    }
}

/// Which pages a listing reads.
pub(super) enum PagedSource {
    /// Everyone's events: each day's shards, walked back from `to`.
    Everyone(ListingShards),
    /// One web session's events.
    Session(SessionId),
}

/// An entry's place in a listing: receive time, user, then the item's sort key, newest first.
type Place = (u64, u64, String);

fn place_of(entry: &PageEntry) -> Place {
    (
        entry.received_at.0,
        entry.user.0,
        event_sort_key(entry.received_at, &entry.id),
    )
}

/// Where a paged listing stopped.
#[derive(Serialize, Deserialize)]
struct PagedCursor {
    /// The day being read (everyone's listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    day: Option<u64>,
    /// The shard count it was read at (everyone's listing).
    #[serde(default, rename = "n", skip_serializing_if = "Option::is_none")]
    shards: Option<u16>,
    /// The last entry handed out.
    #[serde(rename = "a")]
    after: Place,
}

/// One partition's pages, newest second first, read a query at a time.
struct PartitionPages {
    client: Client,
    table: String,
    value: String,
    low: String,
    high: String,
    /// Pages read and not yet taken: their second and entries.
    read: std::collections::VecDeque<(u64, Vec<String>)>,
    start: Option<Item>,
    done: bool,
    /// Pages the next query asks for.
    limit: i32,
}

impl PartitionPages {
    fn head(&self) -> Option<u64> {
        self.read.front().map(|(second, _)| *second)
    }

    /// [`PartitionPages::read_more`], owned, so that partitions can be read concurrently.
    async fn fill(mut self) -> Result<Self, PortError> {
        self.read_more().await?;
        Ok(self)
    }

    /// Reads the next query's pages when none are left unread and the partition has more.
    async fn read_more(&mut self) -> Result<(), PortError> {
        if !self.read.is_empty() || self.done {
            return Ok(());
        }
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#p = :p AND #s BETWEEN :low AND :high")
            .expression_attribute_names("#p", PAGE_KEY)
            .expression_attribute_names("#s", PAGE_SORT_KEY)
            .expression_attribute_values(":p", AttributeValue::S(self.value.clone()))
            .expression_attribute_values(":low", AttributeValue::S(self.low.clone()))
            .expression_attribute_values(":high", AttributeValue::S(self.high.clone()))
            .scan_index_forward(false)
            .limit(self.limit)
            .set_exclusive_start_key(self.start.take())
            .send()
            .await
            .map_err(unavailable)?;
        for item in out.items.unwrap_or_default() {
            let second = match item.get(PAGE_SORT_KEY) {
                Some(AttributeValue::S(key)) => key
                    .get(..10)
                    .and_then(|digits| u64::from_str_radix(digits, 16).ok()),
                _ => None,
            }
            .ok_or_else(|| {
                PortError::corrupt(format!("{}: a page without a second", self.table))
            })?;
            let entries = match item.get(ENTRIES) {
                Some(AttributeValue::L(list)) => {
                    list.iter().filter_map(|v| v.as_s().ok().cloned()).collect()
                }
                _ => Vec::new(),
            };
            self.read.push_back((second, entries));
        }
        self.start = out.last_evaluated_key;
        self.done = self.start.is_none();
        self.limit = (self.limit * 2).min(MOST_QUERY_PAGES);
        Ok(())
    }
}

/// Reads every partition that has no page left unread, concurrently.
async fn fill_all(partitions: Vec<PartitionPages>) -> Result<Vec<PartitionPages>, PortError> {
    let mut reads = tokio::task::JoinSet::new();
    for (i, p) in partitions.into_iter().enumerate() {
        reads.spawn(async move { (i, p.fill().await) });
    }
    let mut filled: Vec<Option<PartitionPages>> = Vec::new();
    while let Some(joined) = reads.join_next().await {
        let (i, p) = joined.map_err(|e| PortError::unavailable("dynamodb", e))?;
        if filled.len() <= i {
            filled.resize_with(i + 1, || None);
        }
        filled[i] = Some(p?);
    }
    Ok(filled.into_iter().flatten().collect())
}

/// A listing of events read from their pages.
pub(super) struct PagedListing<'a> {
    pub client: &'a Client,
    pub pages_table: &'a str,
    pub events_table: &'a str,
    pub source: PagedSource,
    pub filter: &'a EventFilter,
}

impl PagedListing<'_> {
    pub(super) async fn page(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<ListedEvent>, PortError> {
        let cursor: Option<PagedCursor> = cursor.map(decode_cursor).transpose()?;
        let after = cursor.as_ref().map(|c| c.after.clone());
        // One more than asked for: whether it exists says if there is a next page.
        let want = limit + 1;
        let mut taken: Vec<PageEntry> = Vec::new();
        match &self.source {
            PagedSource::Everyone(shards) => {
                let first_day = day_bucket(self.filter.from);
                let mut day = match &cursor {
                    Some(c) => {
                        if c.shards != Some(shards.count()) {
                            return Err(PortError::InvalidCursor);
                        }
                        c.day.ok_or(PortError::InvalidCursor)?
                    }
                    None => day_bucket(self.filter.to),
                };
                while day >= first_day && taken.len() < want {
                    let values = everyone_partitions(*shards, day);
                    self.collect(&values, after.as_ref(), want, &mut taken)
                        .await?;
                    if day == first_day {
                        break;
                    }
                    day -= 1;
                }
            }
            PagedSource::Session(session) => {
                let value = session_partition(session);
                self.collect(&[value], after.as_ref(), want, &mut taken)
                    .await?;
            }
        }
        let more = taken.len() > limit;
        taken.truncate(limit);
        let next = match (more, taken.last()) {
            (true, Some(last)) => Some(encode_cursor(&PagedCursor {
                day: match &self.source {
                    PagedSource::Everyone(_) => Some(day_bucket(last.received_at)),
                    PagedSource::Session(_) => None,
                },
                shards: match &self.source {
                    PagedSource::Everyone(shards) => Some(shards.count()),
                    PagedSource::Session(_) => None,
                },
                after: place_of(last),
            })),
            _ => None,
        };
        Ok(Page {
            items: self.events(&taken).await?,
            next,
        })
    }

    /// Takes the partitions' entries newest first, after `after`, until `taken` holds `want`
    /// (or the partitions are read to `from`).
    async fn collect(
        &self,
        values: &[String],
        after: Option<&Place>,
        want: usize,
        taken: &mut Vec<PageEntry>,
    ) -> Result<(), PortError> {
        let filter = self.filter;
        let mut high = second_of(filter.to);
        if let Some((received_at, _, _)) = after {
            high = high.min(second_of(Millis(*received_at)));
        }
        let low = second_of(filter.from);
        if high < low {
            return Ok(());
        }
        let mut partitions: Vec<PartitionPages> = values
            .iter()
            .map(|value| PartitionPages {
                client: self.client.clone(),
                table: self.pages_table.to_owned(),
                value: value.clone(),
                low: format!("{low:010x}"),
                // `#` follows the second: `$` sorts after every page of the last second.
                high: format!("{high:010x}$"),
                read: Default::default(),
                start: None,
                done: false,
                limit: FIRST_QUERY_PAGES,
            })
            .collect();
        while taken.len() < want {
            partitions = fill_all(partitions).await?;
            let Some(second) = partitions.iter().filter_map(PartitionPages::head).max() else {
                break;
            };
            // Ordered by place, which is unique per event: an event on two pages (a batch
            // retried from a later record) is taken once.
            let mut entries: BTreeMap<Place, PageEntry> = BTreeMap::new();
            for partition in &mut partitions {
                while partition.head() == Some(second) {
                    let Some((_, texts)) = partition.read.pop_front() else {
                        break;
                    };
                    for text in texts {
                        let entry = decode(&text).ok_or_else(|| {
                            PortError::corrupt(format!(
                                "{}: an unreadable page entry",
                                self.pages_table
                            ))
                        })?;
                        let place = place_of(&entry);
                        let wanted = entry.received_at >= filter.from
                            && entry.received_at <= filter.to
                            && filter.kind.is_none_or(|k| k == entry.kind)
                            && filter.user.is_none_or(|u| u == entry.user)
                            && after.is_none_or(|a| place < *a);
                        if wanted {
                            entries.insert(place, entry);
                        }
                    }
                    // The second may go on in the partition's next query.
                    partition.read_more().await?;
                }
            }
            let room = want - taken.len();
            taken.extend(entries.into_values().rev().take(room));
        }
        Ok(())
    }

    /// The listed events, in the entries' order, read from the events table in batches; one
    /// deleted since (expired) is left out. Strongly consistent, as the listing indexes' reads
    /// were: an event is written before the stream delivers it, so a page never names one a
    /// read could miss.
    async fn events(&self, entries: &[PageEntry]) -> Result<Vec<ListedEvent>, PortError> {
        let keys = entries
            .iter()
            .map(|e| table_key(e.user, event_sort_key(e.received_at, &e.id)))
            .collect();
        read_in_order(self.client, self.events_table, EVENTS_TABLE_KEY, keys)
            .await?
            .into_iter()
            .map(|item| serde_dynamo::from_item(item).map_err(corrupt))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_as_written() {
        for (kind, id) in [
            (EventKind::Activity, "a-1"),
            (EventKind::Feedback, "0190c5a2-7b1e-7cc0-8000-1234567890ab"),
            (EventKind::Web, "x.y:z_w"),
        ] {
            let entry = PageEntry {
                user: UserId(u64::MAX),
                id: EventId::parse(id).expect("an id"),
                received_at: Millis(1_764_000_000_123),
                kind,
            };
            assert_eq!(decode(&encode(&entry)), Some(entry));
        }
        assert_eq!(decode("x 1 2 id"), None);
        assert_eq!(decode("a one 2 id"), None);
        assert_eq!(decode("a 1 2"), None);
    }
}
