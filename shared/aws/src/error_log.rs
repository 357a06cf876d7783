//! The error-log table: one item per invalid event, keyed like the events table.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use serde::Serialize;

use crate::items::{Item, Retention, condition_held, corrupt, event_key, n, read_item, s, value};
use crate::listing::{Filter, Listing, Partition};
use crate::partition_keys::{ListingShards, listing_bucket};
use cuba_core::model::domain::{EventId, Millis, UserId};
use cuba_core::model::listing::Page;
use cuba_core::model::ports::PortError;
use cuba_core::schemas::error_log::{ErrorEntry, ErrorFilter, ErrorStatus};
use cuba_core::schemas::ports::ErrorLog;
use cuba_core::schemas::{SchemaRef, Violation, violation_kinds};

/// One user's entries, newest first (a global index: the table's own sort key is the event id,
/// which orders by time only for ids the server minted).
const ERRORS_BY_USER_INDEX: &str = "by_user";

#[derive(Debug, Clone)]
pub struct DynamoErrorLog {
    client: Client,
    table: String,
    retention: Option<Retention>,
    shards: ListingShards,
}

impl DynamoErrorLog {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoErrorLog {
            client,
            table: table.into(),
            retention: None,
            shards: ListingShards::DEFAULT,
        }
    }

    /// Spreads the `by_day` listing over `shards` shards.
    pub fn sharded(self, shards: ListingShards) -> Self {
        DynamoErrorLog { shards, ..self }
    }

    /// Entries expire this long after their event was received, open or replayed.
    pub fn retained_for(self, retention: Retention) -> Self {
        DynamoErrorLog {
            retention: Some(retention),
            ..self
        }
    }
}

/// An error-log item: the entry, plus the `by_day` listing index's partition key.
#[derive(Serialize)]
struct ErrorRow<'a> {
    #[serde(flatten)]
    entry: &'a ErrorEntry,
    /// `{day}#{shard}`.
    day_shard: String,
    /// Epoch seconds: the table's TTL attribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
}

#[async_trait]
impl ErrorLog for DynamoErrorLog {
    async fn record(&self, entry: &ErrorEntry) -> Result<(), PortError> {
        let item: Item = serde_dynamo::to_item(ErrorRow {
            entry,
            day_shard: listing_bucket(
                self.shards,
                entry.received_at,
                &format!("{}/{}", entry.user, entry.id),
            ),
            expires_at: self.retention.map(|r| r.expires_at(entry.received_at)),
        })
        .map_err(corrupt)?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#id) OR #status = :open")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":open", value(ErrorStatus::Open)?)
            .send()
            .await;
        // A failed condition means the entry is being or has been replayed: keep it as it is.
        condition_held(put).map(|_| ())
    }

    async fn get(&self, user: UserId, id: &EventId) -> Result<Option<ErrorEntry>, PortError> {
        read_item(&self.client, &self.table, event_key(user, id)).await
    }

    async fn claim_replay(
        &self,
        user: UserId,
        id: &EventId,
        now: Millis,
        stale_before: Millis,
    ) -> Result<bool, PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(user, id)))
            .update_expression("SET #status = :replaying, claimed_at = :now")
            .condition_expression(
                "#status = :open OR (#status = :replaying AND claimed_at < :stale)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":replaying", value(ErrorStatus::Replaying)?)
            .expression_attribute_values(":open", value(ErrorStatus::Open)?)
            .expression_attribute_values(":now", value(now)?)
            .expression_attribute_values(":stale", value(stale_before)?)
            .send()
            .await;
        condition_held(update)
    }

    async fn reopen(
        &self,
        user: UserId,
        id: &EventId,
        violations: &[Violation],
        schema: Option<&SchemaRef>,
    ) -> Result<(), PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(user, id)))
            .update_expression(
                "SET #status = :open, violations = :v, violation_kinds = :k, #schema = :s \
                 REMOVE claimed_at",
            )
            .condition_expression("#status = :replaying")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#schema", "schema")
            .expression_attribute_values(":open", value(ErrorStatus::Open)?)
            .expression_attribute_values(":replaying", value(ErrorStatus::Replaying)?)
            .expression_attribute_values(":v", value(violations)?)
            .expression_attribute_values(":k", value(violation_kinds(violations))?)
            .expression_attribute_values(":s", value(schema)?)
            .send()
            .await;
        condition_held(update).map(|_| ())
    }

    async fn mark_replayed(
        &self,
        user: UserId,
        id: &EventId,
        by: &str,
        at: Millis,
    ) -> Result<(), PortError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(user, id)))
            .update_expression(
                "SET #status = :replayed, replayed_at = :at, replayed_by = :by REMOVE claimed_at",
            )
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":replayed", value(ErrorStatus::Replayed)?)
            .expression_attribute_values(":at", value(at)?)
            .expression_attribute_values(":by", s(by))
            .send()
            .await;
        condition_held(update).map(|_| ())
    }

    async fn list(
        &self,
        filter: &ErrorFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<ErrorEntry>, PortError> {
        let mut filters = Vec::new();
        if let Some(event_type) = &filter.event_type {
            filters.push(Filter::eq("event_type", s(event_type.as_str())));
        }
        if let Some(kind) = &filter.violation {
            filters.push(Filter {
                attribute: "violation_kinds",
                value: s(kind.as_str()),
                contains: true,
            });
        }
        if let Some(wanted) = filter.status {
            filters.push(Filter::eq("status", value(wanted)?));
        }
        Listing {
            client: &self.client,
            table: &self.table,
            table_key: &["user", "id"],
            partition: match filter.user {
                // Keys and the attributes the filters test: a replay rewrites the entry.
                Some(user) => Partition::Fixed {
                    index: ERRORS_BY_USER_INDEX,
                    attribute: "user",
                    value: n(user),
                    keys_only: true,
                },
                None => Partition::Daily {
                    shards: self.shards,
                },
            },
            sort_attribute: "received_at",
            from: filter.from,
            to: filter.to,
            filters,
        }
        .page(limit, cursor)
        .await
    }
}
