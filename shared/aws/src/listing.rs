//! The listing engine: newest-first, cursor-paginated listings of events, alerts and the error
//! log, over any of their indexes.
//!
//! Listings for one user's events query the events table itself (its sort key orders a
//! user's events by receive time); one user's alerts and one web session's events query an
//! index partitioned by it. Listings across
//! everyone query the `by_day` indexes, whose partitions are write-sharded (`{day}#{shard}`, see
//! [`crate::partition_keys::ListingShards`]) so that no partition takes every write of a day: a
//! reader walks back from `to` a day at a time and merges that day's shards newest first. The
//! alerts' `by_rule` index is sharded the same way (`{rule}#{shard}`). Sharded indexes project
//! only keys (and the attributes their filters test); a page's items are then read from the
//! table in one batch.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::items::{Item, batch_get, corrupt, unavailable};
use crate::partition_keys::{ListingShards, day_bucket};
use cuba_core::model::domain::Millis;
use cuba_core::model::listing::Page;
use cuba_core::model::ports::PortError;

/// The listing index of events, alerts and the error log across everyone.
pub(super) const BY_DAY_INDEX: &str = "by_day";
/// Its partition key attribute: `{day}#{shard}`.
pub(super) const BY_DAY_ATTRIBUTE: &str = "day_shard";
/// The alerts' index by rule, and its partition key attribute: `{rule}#{shard}`.
pub(super) const BY_RULE_INDEX: &str = "by_rule";
pub(super) const BY_RULE_ATTRIBUTE: &str = "rule_shard";

/// Where a listing stopped. The same size at any shard count: a sharded listing keeps only
/// the last item it handed out, since the merge order is one total order and that one position
/// says where every shard resumes.
#[derive(Serialize, Deserialize)]
struct Cursor {
    /// The day being read (day-bucketed listings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    day: Option<u64>,
    /// The last key read (one-partition listings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<Value>,
    /// The shard count the listing was read with (sharded listings): a cursor from before the
    /// count changed cannot be resumed.
    #[serde(default, rename = "n", skip_serializing_if = "Option::is_none")]
    shards: Option<u16>,
    /// The last item handed out (sharded listings; none yet for a day just begun).
    #[serde(default, rename = "a", skip_serializing_if = "Option::is_none")]
    after: Option<Position>,
}

/// An item's place in a sharded listing's merge order: newest sort value first, then lower
/// shard, then the shard's own order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Position {
    #[serde(rename = "t")]
    sort: u64,
    #[serde(rename = "s")]
    shard: u16,
    /// The table's key values, then the sort value: what its shard's query resumes after.
    #[serde(rename = "k")]
    key: Vec<Value>,
}

/// A listing's cursor as the text handed out: its JSON, base64url.
pub(super) fn encode_cursor<C: Serialize>(cursor: &C) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

/// A cursor from the text [`encode_cursor`] made; anything else is an invalid cursor.
pub(super) fn decode_cursor<C: DeserializeOwned>(raw: &str) -> Result<C, PortError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| PortError::InvalidCursor)?;
    serde_json::from_slice(&bytes).map_err(|_| PortError::InvalidCursor)
}

impl Cursor {
    fn encode(&self) -> String {
        encode_cursor(self)
    }

    fn decode(raw: &str) -> Result<Cursor, PortError> {
        decode_cursor(raw)
    }
}

fn key_item(key: &Value) -> Result<Item, PortError> {
    serde_dynamo::to_item(key).map_err(|_| PortError::InvalidCursor)
}

fn key_json(key: Item) -> Option<Value> {
    serde_dynamo::from_item(key).ok()
}

/// What to query.
pub(super) enum Partition {
    /// One partition of an index; `keys_only` when it projects only keys (and the attributes
    /// its filters test), so that a page's items are read from the table.
    Fixed {
        index: &'static str,
        attribute: &'static str,
        value: AttributeValue,
        keys_only: bool,
    },
    /// One partition of the table itself, whose sort key is text that sorts by time: read
    /// between `low` and `high`.
    Table {
        attribute: &'static str,
        value: AttributeValue,
        sort_key: &'static str,
        low: String,
        high: String,
    },
    /// The shards of one partition (`{prefix}#{shard}`), merged newest first.
    Sharded {
        index: &'static str,
        attribute: &'static str,
        prefix: String,
        shards: ListingShards,
    },
    /// The `by_day` index: days walked back from `to`, each day's shards merged newest first.
    Daily { shards: ListingShards },
}

pub(super) struct Listing<'a> {
    pub client: &'a Client,
    pub table: &'a str,
    /// The table's own key attributes: what a sharded listing reads its page's items by.
    pub table_key: &'static [&'static str],
    pub partition: Partition,
    pub sort_attribute: &'static str,
    pub from: Millis,
    pub to: Millis,
    pub filters: Vec<Filter>,
}

/// A condition applied after the key condition (all of them must hold). A sharded index must
/// project the attributes its filters test.
pub(super) struct Filter {
    pub attribute: &'static str,
    pub value: AttributeValue,
    /// `contains(attribute, value)` (a list holds the value) instead of equality.
    pub contains: bool,
}

impl Filter {
    pub(super) fn eq(attribute: &'static str, value: AttributeValue) -> Self {
        Filter {
            attribute,
            value,
            contains: false,
        }
    }
}

/// What one partition's query needs, owned so that a day's shards can be read concurrently.
#[derive(Clone)]
struct PartitionQuery {
    client: Client,
    table: String,
    /// None: the table itself.
    index: Option<&'static str>,
    /// The sort key's attribute and bounds when it is text (the table's own key), not the
    /// listing's numeric sort attribute.
    text_range: Option<(&'static str, String, String)>,
    attribute: &'static str,
    sort_attribute: &'static str,
    from: Millis,
    to: Millis,
    filters: Vec<(&'static str, AttributeValue, bool)>,
}

/// Up to `limit` items of one partition, newest first, from `start`; the key to resume after
/// the last *evaluated* item when the partition holds more.
struct Read {
    items: Vec<Item>,
    more: Option<Item>,
}

impl PartitionQuery {
    async fn read(
        &self,
        value: AttributeValue,
        mut start: Option<Item>,
        limit: usize,
    ) -> Result<Read, PortError> {
        let mut items = Vec::new();
        loop {
            let (sort, from, to) = match &self.text_range {
                Some((attribute, low, high)) => (
                    *attribute,
                    AttributeValue::S(low.clone()),
                    AttributeValue::S(high.clone()),
                ),
                None => (
                    self.sort_attribute,
                    AttributeValue::N(self.from.0.to_string()),
                    AttributeValue::N(self.to.0.to_string()),
                ),
            };
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(self.index.map(str::to_owned))
                .key_condition_expression("#p = :p AND #s BETWEEN :from AND :to")
                .expression_attribute_names("#p", self.attribute)
                .expression_attribute_names("#s", sort)
                .expression_attribute_values(":p", value.clone())
                .expression_attribute_values(":from", from)
                .expression_attribute_values(":to", to)
                .scan_index_forward(false)
                .limit(i32::try_from(limit - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take());
            if !self.filters.is_empty() {
                let mut conditions = Vec::new();
                for (i, (attribute, wanted, contains)) in self.filters.iter().enumerate() {
                    conditions.push(if *contains {
                        format!("contains(#f{i}, :f{i})")
                    } else {
                        format!("#f{i} = :f{i}")
                    });
                    query = query
                        .expression_attribute_names(format!("#f{i}"), *attribute)
                        .expression_attribute_values(format!(":f{i}"), wanted.clone());
                }
                query = query.filter_expression(conditions.join(" AND "));
            }
            let out = query.send().await.map_err(unavailable)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(last) if items.len() < limit => start = Some(last),
                more => return Ok(Read { items, more }),
            }
        }
    }
}

impl Listing<'_> {
    fn query(&self, index: Option<&'static str>, attribute: &'static str) -> PartitionQuery {
        PartitionQuery {
            client: self.client.clone(),
            table: self.table.to_owned(),
            index,
            text_range: None,
            attribute,
            sort_attribute: self.sort_attribute,
            from: self.from,
            to: self.to,
            filters: self
                .filters
                .iter()
                .map(|f| (f.attribute, f.value.clone(), f.contains))
                .collect(),
        }
    }

    /// Up to `limit` items of one partition from where `cursor` stopped, and the cursor after
    /// them; `keys_only` when the query's index projects only keys.
    async fn one_partition(
        &self,
        query: PartitionQuery,
        value: &AttributeValue,
        keys_only: bool,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<Item>, Option<Cursor>), PortError> {
        let start = cursor
            .and_then(|c| c.key)
            .map(|k| key_item(&k))
            .transpose()?;
        let read = query.read(value.clone(), start, limit).await?;
        let next = read.more.and_then(key_json).map(|key| Cursor {
            day: None,
            key: Some(key),
            shards: None,
            after: None,
        });
        let items = if keys_only {
            self.hydrate(read.items).await?
        } else {
            read.items
        };
        Ok((items, next))
    }

    /// One page of items decoded as `T`, and the cursor for the next.
    pub(super) async fn page<T: DeserializeOwned>(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<T>, PortError> {
        let cursor = cursor.map(Cursor::decode).transpose()?;
        let (items, next) = match &self.partition {
            Partition::Fixed {
                index,
                attribute,
                value,
                keys_only,
            } => {
                let query = self.query(Some(index), attribute);
                self.one_partition(query, value, *keys_only, cursor, limit)
                    .await?
            }
            Partition::Table {
                attribute,
                value,
                sort_key,
                low,
                high,
            } => {
                let mut query = self.query(None, attribute);
                query.text_range = Some((sort_key, low.clone(), high.clone()));
                self.one_partition(query, value, false, cursor, limit)
                    .await?
            }
            Partition::Sharded {
                index,
                attribute,
                prefix,
                shards,
            } => {
                let after = resumed(cursor, *shards)?;
                let values: Vec<String> = shards.all(prefix).collect();
                let merged = self
                    .merge(index, attribute, &values, after.as_ref(), limit)
                    .await?;
                let next = (!merged.exhausted).then(|| Cursor {
                    day: None,
                    key: None,
                    shards: Some(shards.count()),
                    after: merged.last,
                });
                (self.hydrate(merged.taken).await?, next)
            }
            Partition::Daily { shards } => {
                let first_day = day_bucket(self.from);
                let (mut day, mut after) = match cursor {
                    Some(c) => {
                        let day = c.day.ok_or(PortError::InvalidCursor)?;
                        (day, resumed(Some(c), *shards)?)
                    }
                    None => (day_bucket(self.to), None),
                };
                let mut taken = Vec::new();
                let next = loop {
                    if day < first_day {
                        break None;
                    }
                    let values: Vec<String> = shards.all(&day.to_string()).collect();
                    let merged = self
                        .merge(
                            BY_DAY_INDEX,
                            BY_DAY_ATTRIBUTE,
                            &values,
                            after.as_ref(),
                            limit - taken.len(),
                        )
                        .await?;
                    taken.extend(merged.taken);
                    if !merged.exhausted {
                        break Some(Cursor {
                            day: Some(day),
                            key: None,
                            shards: Some(shards.count()),
                            after: merged.last,
                        });
                    }
                    if day == first_day {
                        break None;
                    }
                    day -= 1;
                    after = None;
                    if taken.len() >= limit {
                        break Some(Cursor {
                            day: Some(day),
                            key: None,
                            shards: Some(shards.count()),
                            after: None,
                        });
                    }
                };
                (self.hydrate(taken).await?, next)
            }
        };
        let items = items
            .into_iter()
            .map(serde_dynamo::from_item)
            .collect::<Result<_, _>>()
            .map_err(corrupt)?;
        Ok(Page {
            items,
            next: next.map(|c| c.encode()),
        })
    }

    /// Reads every shard from `after` on (at most `limit` items each, concurrently) and takes
    /// the newest `limit` of them all: ordered by sort value, then shard, then position in the
    /// shard, which is one total order however the pages fall. An item is taken only when no
    /// unread item of another shard comes before it (that shard read `limit` newer ones), so
    /// what is taken is always the next stretch of that order, and its last item says where
    /// each shard resumes: its own shard after its key, a lower shard below its sort value, a
    /// higher one from its sort value.
    async fn merge(
        &self,
        index: &'static str,
        attribute: &'static str,
        values: &[String],
        after: Option<&Position>,
        limit: usize,
    ) -> Result<Merged, PortError> {
        let mut reads = tokio::task::JoinSet::new();
        for (shard, value) in values.iter().enumerate() {
            let mut query = self.query(Some(index), attribute);
            let start = match after {
                None => None,
                Some(p) if shard == usize::from(p.shard) => {
                    Some(self.start_key(attribute, value, &p.key)?)
                }
                Some(p) if shard > usize::from(p.shard) => {
                    query.to = query.to.min(Millis(p.sort));
                    None
                }
                Some(p) => {
                    let Some(below) = p.sort.checked_sub(1) else {
                        continue;
                    };
                    query.to = query.to.min(Millis(below));
                    None
                }
            };
            if query.to < query.from {
                continue;
            }
            let value = AttributeValue::S(value.clone());
            reads.spawn(async move { (shard, query.read(value, start, limit).await) });
        }
        let mut fetched: Vec<Option<Read>> = values.iter().map(|_| None).collect();
        while let Some(joined) = reads.join_next().await {
            let (shard, read) = joined.map_err(|e| PortError::unavailable("dynamodb", e))?;
            fetched[shard] = Some(read?);
        }
        let mut order = Vec::new();
        for (shard, read) in fetched.iter().enumerate() {
            for (position, item) in read.iter().flat_map(|r| &r.items).enumerate() {
                order.push((self.sort_value(item)?, shard, position));
            }
        }
        order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let unread = fetched.iter().flatten().any(|read| read.more.is_some());
        let exhausted = !unread && order.len() <= limit;
        order.truncate(limit);
        let taken: Vec<Item> = order
            .iter()
            .filter_map(|&(_, shard, position)| {
                fetched[shard]
                    .as_ref()
                    .and_then(|r| r.items.get(position))
                    .cloned()
            })
            .collect();
        let last = match (order.last(), taken.last()) {
            (Some(&(sort, shard, _)), Some(item)) => Some(Position {
                sort,
                shard: u16::try_from(shard).map_err(|_| PortError::InvalidCursor)?,
                key: self.resume_key(item)?,
            }),
            _ => None,
        };
        Ok(Merged {
            taken,
            last,
            exhausted,
        })
    }

    fn sort_value(&self, item: &Item) -> Result<u64, PortError> {
        match item.get(self.sort_attribute) {
            Some(AttributeValue::N(n)) => n.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| PortError::corrupt(format!("{}: a bad {}", self.table, self.sort_attribute)))
    }

    /// What a shard's cursor keeps of the item a query resumes after: the table's key values,
    /// then the sort value.
    fn resume_key(&self, item: &Item) -> Result<Vec<Value>, PortError> {
        self.table_key
            .iter()
            .chain([&self.sort_attribute])
            .map(|a| {
                item.get(*a)
                    .and_then(|v| serde_dynamo::from_attribute_value(v.clone()).ok())
                    .ok_or_else(|| {
                        PortError::corrupt(format!("{}: an item without {a}", self.table))
                    })
            })
            .collect()
    }

    /// The exclusive start key of an index query on partition `value` of `attribute`, from what
    /// [`Listing::resume_key`] kept.
    fn start_key(&self, attribute: &str, value: &str, kept: &[Value]) -> Result<Item, PortError> {
        let names: Vec<&str> = self
            .table_key
            .iter()
            .copied()
            .chain([self.sort_attribute])
            .collect();
        if kept.len() != names.len() {
            return Err(PortError::InvalidCursor);
        }
        let mut key: Item = names
            .into_iter()
            .zip(kept)
            .map(|(name, v)| {
                serde_dynamo::to_attribute_value(v)
                    .map(|v| (name.to_owned(), v))
                    .map_err(|_| PortError::InvalidCursor)
            })
            .collect::<Result<_, _>>()?;
        key.insert(attribute.to_owned(), AttributeValue::S(value.to_owned()));
        Ok(key)
    }

    /// The table's items for index items that project only keys, in the same order. An item
    /// deleted since (expired) is left out.
    async fn hydrate(&self, index_items: Vec<Item>) -> Result<Vec<Item>, PortError> {
        let keys: Vec<Item> = index_items
            .iter()
            .map(|item| {
                self.table_key
                    .iter()
                    .map(|a| {
                        item.get(*a)
                            .map(|v| ((*a).to_owned(), v.clone()))
                            .ok_or_else(|| {
                                PortError::corrupt(format!("{}: an item without {a}", self.table))
                            })
                    })
                    .collect::<Result<Item, _>>()
            })
            .collect::<Result<_, _>>()?;
        // Strongly consistent: an entry the index already holds is never missing from the table.
        read_in_order(self.client, self.table, self.table_key, keys).await
    }
}

/// The items of `table` under `keys` (its key attributes `table_key`), in the keys' order, read
/// strongly consistent in batches; a key with no item (expired since) is left out.
pub(super) async fn read_in_order(
    client: &Client,
    table: &str,
    table_key: &[&str],
    keys: Vec<Item>,
) -> Result<Vec<Item>, PortError> {
    // An item's key as one string, to match a batch read's answers to its requests.
    let identity = |item: &Item| {
        table_key
            .iter()
            .map(|a| match item.get(*a) {
                Some(AttributeValue::S(s)) => format!("s{s}"),
                Some(AttributeValue::N(n)) => format!("n{n}"),
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join("\u{1f}")
    };
    let mut found: HashMap<String, Item> = batch_get(client, table, keys.clone(), true)
        .await?
        .into_iter()
        .map(|item| (identity(&item), item))
        .collect();
    Ok(keys
        .iter()
        .filter_map(|key| found.remove(&identity(key)))
        .collect())
}

/// Where a sharded listing resumes, from its cursor (at the newest without one).
fn resumed(cursor: Option<Cursor>, shards: ListingShards) -> Result<Option<Position>, PortError> {
    let Some(cursor) = cursor else {
        return Ok(None);
    };
    if cursor.shards != Some(shards.count()) {
        return Err(PortError::InvalidCursor);
    }
    match cursor.after {
        Some(p) if p.shard >= shards.count() => Err(PortError::InvalidCursor),
        after => Ok(after),
    }
}

/// What a merge of a day's (or a partition's) shards took.
struct Merged {
    taken: Vec<Item>,
    /// Where the last item taken stands.
    last: Option<Position>,
    /// Nothing is left after what was taken.
    exhausted: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_the_same_size_at_any_shard_count() {
        let longest_id = "x".repeat(cuba_core::model::domain::EVENT_ID_MAX_LEN);
        for shards in [1, 32, ListingShards::MAX] {
            let cursor = Cursor {
                day: Some(u64::from(u32::MAX)),
                key: None,
                shards: Some(shards),
                after: Some(Position {
                    sort: u64::MAX,
                    shard: shards - 1,
                    key: vec![
                        Value::from(u64::MAX),
                        Value::from(longest_id.clone()),
                        Value::from(u64::MAX),
                    ],
                }),
            };
            let encoded = cursor.encode();
            assert!(
                encoded.len() <= cuba_core::model::listing::MAX_CURSOR_CHARS,
                "{shards} shards: {} characters",
                encoded.len()
            );
            let decoded = Cursor::decode(&encoded).expect("decodes");
            assert_eq!(decoded.after, cursor.after);
        }
    }

    #[test]
    fn a_cursor_resumes_only_at_its_own_shard_count() {
        let cursor = |shards: u16, shard: u16| Cursor {
            day: Some(1),
            key: None,
            shards: Some(shards),
            after: Some(Position {
                sort: 5,
                shard,
                key: vec![],
            }),
        };
        let count = |n| ListingShards::new(n).expect("a count");
        assert!(resumed(Some(cursor(32, 31)), count(32)).is_ok());
        assert_eq!(
            resumed(Some(cursor(32, 3)), count(8)).err(),
            Some(PortError::InvalidCursor)
        );
        assert_eq!(
            resumed(Some(cursor(8, 8)), count(8)).err(),
            Some(PortError::InvalidCursor)
        );
        assert_eq!(resumed(None, count(8)), Ok(None));
    }
}
