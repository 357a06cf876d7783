//! Windows across users in the rule-state table ([`cuba_core::evaluation::group_window`]).
//!
//! - **Counters**: `gwin#{rule}#{definition}#{group digest}#{epoch}#{shard}`, one item per 60
//!   steps (an epoch: a window spans at most two) and shard, a count `c{step}` and a sum
//!   `s{step}` per step. A group every event of the fleet may update (`all`) is spread over
//!   [`FLEET_SHARDS`] items, a field's groups over [`GROUP_SHARDS`]; each write picks one at
//!   random, so no item takes more than its share of the batches, and a read sums them all in
//!   one strongly consistent batch read.
//! - **Once per event**: each event's count goes in one transaction with a marker
//!   `gmark#{rule}#{definition}#{event id}` put only if absent. A transaction whose marker
//!   exists already (a retried batch, a replay) is cancelled whole; the events it names are
//!   dropped and the rest written again. So a count is added exactly when its marker is, and
//!   never twice.
//! - **Different values** (a rule with `distinct`): `gdis#{rule}#{definition}#{group
//!   digest}#{step}`, a string set `v` per step, added to by one conditional update per step
//!   and batch while it holds fewer than the rule's `at_least` (adding a value twice changes
//!   nothing, so no marker is needed); a window's values are its steps' sets, read in one
//!   strongly consistent batch read (60 items at most).
//! - **Firing**: `gfire#{rule}#{definition}`, one item per rule definition, with `f_{digest}`
//!   (firing since), `l_{digest}` (last fired, for the cooldown) and `k_{digest}` (the group's
//!   key) per group: claimed by one conditional update, listed by one read; and `w`, when the
//!   sweeper first looked at the rule (a drop in volume is decided once a whole window was
//!   watched), refreshing the item's expiry each minute.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::RangeInclusive;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};

use crate::items::{Item, any_of, batch_get, condition_held, n, read_item_raw, s, unavailable};
use crate::partition_keys::{
    group_firing, group_marker, group_window_counter, group_window_values,
};
use cuba_core::evaluation::group_window::{
    FiringClaim, GroupContribution, GroupWindowKey, STEPS_PER_WINDOW, Steps, totals_over,
};
use cuba_core::evaluation::ports::GroupWindows;
use cuba_core::model::domain::Millis;
use cuba_core::model::ports::PortError;
use cuba_core::rules::{GroupKey, RuleId, WindowTotals};

/// Counter shards of the fleet's window (`group_by: all`): at 10,000 events/s in batches of
/// 100, 100 transactions a second, each about 4 write units on its item: 50 units a second on
/// each of 8 items, far under a partition's 1,000.
pub const FLEET_SHARDS: u16 = 8;
/// Counter shards of each group of a field (`group_by: properties.merchant`): one group takes a
/// share of the traffic, and a batch touches many groups, each read on its own.
pub const GROUP_SHARDS: u16 = 2;

/// A transaction's items at most (DynamoDB's limit).
const TRANSACTION_ITEMS: usize = 100;
/// How often a transaction cancelled by another writer's (on a shared counter) is tried again.
const CONFLICT_ATTEMPTS: usize = 5;
/// Firing state outlives each firing: kept this long after the group's last claim or resolve.
const FIRING_KEPT_SECONDS: u64 = 30 * 24 * 3600;

/// Per step: how many events, and their amounts' sum.
type StepCounts = BTreeMap<u64, (u64, f64)>;

#[derive(Debug, Clone)]
pub struct DynamoGroupWindows {
    client: Client,
    table: String,
}

impl DynamoGroupWindows {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoGroupWindows {
            client,
            table: table.into(),
        }
    }

    fn shards(key: &GroupWindowKey) -> u16 {
        if key.group.as_str() == "all" {
            FLEET_SHARDS
        } else {
            GROUP_SHARDS
        }
    }

    fn counter_key(key: &GroupWindowKey, epoch: u64, shard: u16) -> Item {
        Item::from([(
            "pk".to_owned(),
            s(group_window_counter(
                &key.rule,
                key.definition,
                &key.group.digest(),
                epoch,
                shard,
            )),
        )])
    }

    fn firing_key(rule: &RuleId, definition: u64) -> Item {
        Item::from([("pk".to_owned(), s(group_firing(rule, definition)))])
    }

    /// One transaction: the contributions' markers, and their counts added to one shard of each
    /// (window, epoch). `Ok(None)` when written; `Ok(Some(counted))` when cancelled because
    /// the events `counted` were counted already.
    async fn write(&self, chunk: &[&GroupContribution]) -> Result<Option<Vec<usize>>, PortError> {
        let mut counters: BTreeMap<(&GroupWindowKey, u64), (Steps, StepCounts)> = BTreeMap::new();
        let mut items = Vec::new();
        for c in chunk {
            let step = c.steps.step_of(c.received_at);
            let expires = c.steps.forgotten_at(step).0 / 1000 + 24 * 3600;
            let marker = Put::builder()
                .table_name(&self.table)
                .item(
                    "pk",
                    s(group_marker(
                        &c.key.rule,
                        c.key.definition,
                        c.event.as_str(),
                    )),
                )
                .item("expires_at", n(expires))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(|e| PortError::corrupt_from("a group window marker", e))?;
            items.push(TransactWriteItem::builder().put(marker).build());
            let (_, steps) = counters
                .entry((&c.key, step / STEPS_PER_WINDOW))
                .or_insert((c.steps, BTreeMap::new()));
            let counted = steps.entry(step).or_default();
            counted.0 += 1;
            counted.1 += c.amount;
        }
        for ((key, epoch), (grid, steps)) in &counters {
            let shard = any_of(u32::from(Self::shards(key))) as u16;
            let last = steps.keys().next_back().copied().unwrap_or_default();
            let mut update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(Self::counter_key(key, *epoch, shard)))
                .expression_attribute_values(
                    ":exp",
                    n(grid.forgotten_at(last).0 / 1000 + 24 * 3600),
                );
            let mut adds = Vec::new();
            for (i, (step, (count, sum))) in steps.iter().enumerate() {
                adds.push(format!("#c{i} :c{i}, #s{i} :s{i}"));
                update = update
                    .expression_attribute_names(format!("#c{i}"), format!("c{step}"))
                    .expression_attribute_names(format!("#s{i}"), format!("s{step}"))
                    .expression_attribute_values(format!(":c{i}"), n(count))
                    .expression_attribute_values(format!(":s{i}"), n(decimal(*sum)));
            }
            let update = update
                .update_expression(format!("SET expires_at = :exp ADD {}", adds.join(", ")))
                .build()
                .map_err(|e| PortError::corrupt_from("a group window counter", e))?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let written = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match written {
            Ok(_) => Ok(None),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
                    let reasons = cancelled.cancellation_reasons();
                    // Markers come first, one per contribution, in order.
                    let counted: Vec<usize> = reasons
                        .iter()
                        .take(chunk.len())
                        .enumerate()
                        .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
                        .map(|(i, _)| i)
                        .collect();
                    if counted.is_empty() {
                        // Another writer's transaction on a shared counter: try again.
                        Err(PortError::unavailable("dynamodb", e))
                    } else {
                        Ok(Some(counted))
                    }
                }
                _ => Err(unavailable(e)),
            },
        }
    }
}

impl DynamoGroupWindows {
    fn values_key(key: &GroupWindowKey, step: u64) -> Item {
        Item::from([(
            "pk".to_owned(),
            s(group_window_values(
                &key.rule,
                key.definition,
                &key.group.digest(),
                step,
            )),
        )])
    }

    /// Each step's new values in one conditional update, taken while the step keeps fewer
    /// than the rule's `at_least` (a refused one: the step has enough already).
    async fn add_values(&self, contributions: &[&GroupContribution]) -> Result<(), PortError> {
        let mut steps: BTreeMap<(&GroupWindowKey, u64), (Steps, u32, Vec<String>)> =
            BTreeMap::new();
        for c in contributions {
            if let Some(d) = &c.distinct {
                let step = c.steps.step_of(c.received_at);
                let entry = steps
                    .entry((&c.key, step))
                    .or_insert((c.steps, d.keep, Vec::new()));
                if !entry.2.contains(&d.value) {
                    entry.2.push(d.value.clone());
                }
            }
        }
        for ((key, step), (grid, keep, values)) in steps {
            let added = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::values_key(key, step)))
                .update_expression("ADD v :values SET expires_at = :exp")
                .condition_expression("attribute_not_exists(v) OR size(v) < :keep")
                .expression_attribute_values(":values", AttributeValue::Ss(values))
                .expression_attribute_values(":keep", n(keep))
                .expression_attribute_values(
                    ":exp",
                    n(grid.forgotten_at(step).0 / 1000 + 24 * 3600),
                )
                .send()
                .await;
            condition_held(added)?;
        }
        Ok(())
    }
}

impl DynamoGroupWindows {
    /// The groups of the rule's firing item holding a time under `prefix` (`f_`: firing since,
    /// `t_`: last seen), with that time.
    async fn groups_by(
        &self,
        rule: &RuleId,
        definition: u64,
        prefix: &str,
    ) -> Result<Vec<(GroupKey, Millis)>, PortError> {
        let item = read_item_raw(
            &self.client,
            &self.table,
            Self::firing_key(rule, definition),
        )
        .await?
        .unwrap_or_default();
        let mut groups: Vec<(GroupKey, Millis)> = item
            .iter()
            .filter_map(|(name, value)| {
                let digest = name.strip_prefix(prefix)?;
                let at = number(value)? as u64;
                match item.get(&format!("k_{digest}")) {
                    Some(AttributeValue::S(group)) => {
                        Some((GroupKey::stored(group.clone()), Millis(at)))
                    }
                    _ => None,
                }
            })
            .collect();
        groups.sort();
        Ok(groups)
    }
}

/// Contributions cut into transactions: each holds its markers and one counter per (window,
/// epoch) it touches, at most [`TRANSACTION_ITEMS`] in all.
fn chunks<'c>(contributions: &[&'c GroupContribution]) -> Vec<Vec<&'c GroupContribution>> {
    let mut chunks = Vec::new();
    let mut chunk: Vec<&GroupContribution> = Vec::new();
    let mut counters: HashSet<(&GroupWindowKey, u64)> = HashSet::new();
    for c in contributions {
        let counter = (&c.key, c.steps.step_of(c.received_at) / STEPS_PER_WINDOW);
        let more = usize::from(!counters.contains(&counter));
        if chunk.len() + counters.len() + 1 + more > TRANSACTION_ITEMS {
            chunks.push(std::mem::take(&mut chunk));
            counters.clear();
        }
        counters.insert(counter);
        chunk.push(c);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

#[async_trait]
impl GroupWindows for DynamoGroupWindows {
    async fn add(&self, contributions: &[GroupContribution]) -> Result<(), PortError> {
        let mut seen = HashSet::new();
        let unique: Vec<&GroupContribution> = contributions
            .iter()
            .filter(|c| seen.insert((&c.key, &c.event)))
            .collect();
        self.add_values(&unique).await?;
        for chunk in chunks(&unique) {
            let mut pending = chunk;
            let mut conflicts = 0;
            while !pending.is_empty() {
                match self.write(&pending).await {
                    Ok(None) => break,
                    Ok(Some(counted)) => {
                        let counted: HashSet<usize> = counted.into_iter().collect();
                        pending = pending
                            .into_iter()
                            .enumerate()
                            .filter(|(i, _)| !counted.contains(i))
                            .map(|(_, c)| c)
                            .collect();
                    }
                    Err(e) => {
                        conflicts += 1;
                        if conflicts >= CONFLICT_ATTEMPTS {
                            return Err(e);
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(
                            20 * (1 << conflicts) + u64::from(any_of(20)),
                        ))
                        .await;
                    }
                }
            }
        }
        Ok(())
    }

    async fn totals(
        &self,
        key: &GroupWindowKey,
        _grid: Steps,
        steps: RangeInclusive<u64>,
    ) -> Result<WindowTotals, PortError> {
        let epochs = (steps.start() / STEPS_PER_WINDOW)..=(steps.end() / STEPS_PER_WINDOW);
        let keys: Vec<Item> = epochs
            .flat_map(|epoch| (0..Self::shards(key)).map(move |shard| (epoch, shard)))
            .map(|(epoch, shard)| Self::counter_key(key, epoch, shard))
            .collect();
        let items = batch_get(&self.client, &self.table, keys, true).await?;
        let mut counters = Vec::new();
        for item in &items {
            for (name, value) in item {
                let Some(step) = name.strip_prefix('c').and_then(|s| s.parse::<u64>().ok()) else {
                    continue;
                };
                let count = number(value).unwrap_or(0.0) as u64;
                let sum = item
                    .get(&format!("s{step}"))
                    .and_then(number)
                    .unwrap_or(0.0);
                counters.push((step, count, sum));
            }
        }
        Ok(totals_over(counters, &steps))
    }

    async fn values(
        &self,
        key: &GroupWindowKey,
        _grid: Steps,
        steps: RangeInclusive<u64>,
    ) -> Result<BTreeSet<String>, PortError> {
        let keys: Vec<Item> = steps.map(|step| Self::values_key(key, step)).collect();
        let items = batch_get(&self.client, &self.table, keys, true).await?;
        Ok(items
            .iter()
            .filter_map(|item| match item.get("v") {
                Some(AttributeValue::Ss(values)) => Some(values.iter().cloned()),
                _ => None,
            })
            .flatten()
            .collect())
    }

    async fn claim_firing(
        &self,
        key: &GroupWindowKey,
        at: Millis,
        quiet_after: Millis,
    ) -> Result<FiringClaim, PortError> {
        let digest = key.group.digest();
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::firing_key(&key.rule, key.definition)))
            .update_expression("SET #f = :at, #l = :at, #k = :key, expires_at = :exp")
            .condition_expression(
                "attribute_not_exists(#f) AND (attribute_not_exists(#l) OR #l <= :quiet)",
            )
            .expression_attribute_names("#f", format!("f_{digest}"))
            .expression_attribute_names("#l", format!("l_{digest}"))
            .expression_attribute_names("#k", format!("k_{digest}"))
            .expression_attribute_values(":at", n(at.0))
            .expression_attribute_values(":quiet", n(quiet_after.0))
            .expression_attribute_values(":key", s(key.group.as_str()))
            .expression_attribute_values(":exp", n(at.0 / 1000 + FIRING_KEPT_SECONDS))
            .send()
            .await;
        if condition_held(claimed)? {
            return Ok(FiringClaim::Fired { since: at });
        }
        let item = read_item_raw(
            &self.client,
            &self.table,
            Self::firing_key(&key.rule, key.definition),
        )
        .await?
        .unwrap_or_default();
        Ok(match item.get(&format!("f_{digest}")).and_then(number) {
            Some(since) => FiringClaim::Firing {
                since: Millis(since as u64),
            },
            None => FiringClaim::CoolingDown,
        })
    }

    async fn firing(
        &self,
        rule: &RuleId,
        definition: u64,
    ) -> Result<Vec<(GroupKey, Millis)>, PortError> {
        self.groups_by(rule, definition, "f_").await
    }

    async fn watch(
        &self,
        rule: &RuleId,
        definition: u64,
        now: Millis,
    ) -> Result<Millis, PortError> {
        let watched = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::firing_key(rule, definition)))
            .update_expression("SET w = if_not_exists(w, :now), expires_at = :exp")
            .expression_attribute_values(":now", n(now.0))
            .expression_attribute_values(":exp", n(now.0 / 1000 + FIRING_KEPT_SECONDS))
            // The whole item (moto leaves out of UPDATED_NEW an attribute set to itself).
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(watched
            .attributes()
            .and_then(|a| a.get("w"))
            .and_then(number)
            .map_or(now, |ms| Millis(ms as u64)))
    }

    async fn seen(
        &self,
        rule: &RuleId,
        definition: u64,
        groups: &[(GroupKey, Millis)],
    ) -> Result<(), PortError> {
        for (group, at) in groups {
            let digest = group.digest();
            let noted = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::firing_key(rule, definition)))
                .update_expression("SET #t = :at, #k = :key")
                .condition_expression("attribute_not_exists(#t) OR #t < :at")
                .expression_attribute_names("#t", format!("t_{digest}"))
                .expression_attribute_names("#k", format!("k_{digest}"))
                .expression_attribute_values(":at", n(at.0))
                .expression_attribute_values(":key", s(group.as_str()))
                .send()
                .await;
            condition_held(noted)?;
        }
        Ok(())
    }

    async fn known(
        &self,
        rule: &RuleId,
        definition: u64,
    ) -> Result<Vec<(GroupKey, Millis)>, PortError> {
        self.groups_by(rule, definition, "t_").await
    }

    async fn forget(
        &self,
        rule: &RuleId,
        definition: u64,
        group: &GroupKey,
        at: Millis,
    ) -> Result<(), PortError> {
        let forgotten = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::firing_key(rule, definition)))
            // Its firing too: a group no longer watched is told of no more.
            .update_expression("REMOVE #t, #f, #k")
            .condition_expression("#t = :at")
            .expression_attribute_names("#t", format!("t_{}", group.digest()))
            .expression_attribute_names("#f", format!("f_{}", group.digest()))
            .expression_attribute_names("#k", format!("k_{}", group.digest()))
            .expression_attribute_values(":at", n(at.0))
            .send()
            .await;
        condition_held(forgotten).map(|_| ())
    }

    async fn resolve(&self, key: &GroupWindowKey, since: Millis) -> Result<(), PortError> {
        let resolved = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::firing_key(&key.rule, key.definition)))
            .update_expression("REMOVE #f")
            .condition_expression("#f = :since")
            .expression_attribute_names("#f", format!("f_{}", key.group.digest()))
            .expression_attribute_values(":since", n(since.0))
            .send()
            .await;
        condition_held(resolved).map(|_| ())
    }
}

fn number(value: &AttributeValue) -> Option<f64> {
    match value {
        AttributeValue::N(text) => text.parse().ok(),
        _ => None,
    }
}

/// A sum of contributions (each within
/// [`MAX_AMOUNT`](cuba_core::evaluation::group_window::MAX_AMOUNT), to 6 places) as a decimal DynamoDB adds
/// exactly: at most 6 places, no exponent, no trailing zeros.
fn decimal(x: f64) -> String {
    let text = format!("{x:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    match text {
        "" | "-" | "-0" => "0".to_owned(),
        t => t.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn sums_are_written_as_plain_decimals() {
        assert_eq!(decimal(7.0), "7");
        assert_eq!(decimal(0.5), "0.5");
        assert_eq!(decimal(-2.25), "-2.25");
        assert_eq!(decimal(0.0), "0");
        assert_eq!(decimal(-0.0), "0");
        assert_eq!(decimal(1e20), "100000000000000000000");
        assert_eq!(decimal(0.000_000_4), "0");
        assert_eq!(decimal(-0.000_000_4), "0");
    }
}
