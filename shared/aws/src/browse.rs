//! The operators' listings over the events table and the alert ledger, on the listing engine
//! ([`crate::listing`]); the events across everyone and by session from their pages
//! ([`crate::listing_pages`]).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::items::value;
use crate::listing::{BY_RULE_ATTRIBUTE, BY_RULE_INDEX, Filter, Listing, Partition};
use crate::listing_pages::{PagedListing, PagedSource};
use crate::partition_keys::ListingShards;
use cuba_core::console::ports::Browse;
use cuba_core::delivery::alert::{AlertEntry, AlertFilter};
use cuba_core::model::domain::UserId;
use cuba_core::model::listing::ListedEvent;
use cuba_core::model::listing::{EventFilter, Page};
use cuba_core::model::ports::PortError;

/// Listings over the events table and the alert ledger.
#[derive(Debug, Clone)]
pub struct DynamoBrowse {
    client: Client,
    events_table: String,
    pages_table: String,
    alerts_table: String,
    shards: ListingShards,
}

impl DynamoBrowse {
    /// Listings of the events table (a user's events on its own key, the rest from the event
    /// pages table) and of the alert ledger.
    pub fn new(
        client: Client,
        events_table: impl Into<String>,
        pages_table: impl Into<String>,
        alerts_table: impl Into<String>,
    ) -> Self {
        DynamoBrowse {
            client,
            events_table: events_table.into(),
            pages_table: pages_table.into(),
            alerts_table: alerts_table.into(),
            shards: ListingShards::DEFAULT,
        }
    }

    /// Reads listings written over `shards` shards.
    pub fn sharded(self, shards: ListingShards) -> Self {
        DynamoBrowse { shards, ..self }
    }
}

impl DynamoBrowse {
    /// One user's events, read from the events table's own key.
    async fn user_events(
        &self,
        user: UserId,
        filter: &EventFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<ListedEvent>, PortError> {
        let (low, high) = crate::events::time_range(filter.from, filter.to);
        let filters: Vec<Filter> = filter
            .kind
            .map(|kind| value(kind).map(|v| Filter::eq("kind", v)))
            .transpose()?
            .into_iter()
            .collect();
        let listing = Listing {
            client: &self.client,
            table: &self.events_table,
            table_key: crate::events::EVENTS_TABLE_KEY,
            partition: Partition::Table {
                attribute: "user",
                value: AttributeValue::N(user.to_string()),
                sort_key: crate::events::EVENTS_SORT_KEY,
                low,
                high,
            },
            sort_attribute: "received_at",
            from: filter.from,
            to: filter.to,
            filters,
        };
        listing.page(limit, cursor).await
    }
}

#[async_trait]
impl Browse for DynamoBrowse {
    async fn events(
        &self,
        filter: &EventFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<ListedEvent>, PortError> {
        let source = match (&filter.session, filter.user) {
            (Some(session), _) => PagedSource::Session(session.clone()),
            (None, None) => PagedSource::Everyone(self.shards),
            (None, Some(user)) => return self.user_events(user, filter, limit, cursor).await,
        };
        let listing = PagedListing {
            client: &self.client,
            pages_table: &self.pages_table,
            events_table: &self.events_table,
            source,
            filter,
        };
        listing.page(limit, cursor).await
    }

    async fn alerts(
        &self,
        filter: &AlertFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<AlertEntry>, PortError> {
        let (partition, rule_filter) = match (filter.user, &filter.rule) {
            (Some(user), rule) => (
                Partition::Fixed {
                    index: "by_user",
                    attribute: "user",
                    value: AttributeValue::N(user.to_string()),
                    // Keys and the rule id only: an alert's status changes do not rewrite it.
                    keys_only: true,
                },
                rule.as_ref()
                    .map(|r| Filter::eq("rule_id", AttributeValue::S(r.as_str().to_owned()))),
            ),
            (None, Some(rule)) => (
                Partition::Sharded {
                    index: BY_RULE_INDEX,
                    attribute: BY_RULE_ATTRIBUTE,
                    prefix: rule.as_str().to_owned(),
                    shards: self.shards,
                },
                None,
            ),
            (None, None) => (
                Partition::Daily {
                    shards: self.shards,
                },
                None,
            ),
        };
        let listing = Listing {
            client: &self.client,
            table: &self.alerts_table,
            table_key: &["alert_id"],
            partition,
            sort_attribute: "fired_at",
            from: filter.from,
            to: filter.to,
            filters: rule_filter.into_iter().collect(),
        };
        listing.page(limit, cursor).await
    }
}
