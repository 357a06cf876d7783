//! The events table's migration to its time-sorted key (`cuba-local migrate-events`): events
//! stored by the earlier version, keyed (`user`, `id`) with the `by_received` local index, are
//! copied under their time keys, found by id and by time, passed over by the stream, and an old
//! id a client retries is still its duplicate.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, LocalSecondaryIndex, Projection,
    ProjectionType, ScalarAttributeType,
};
use cuba_aws::{DynamoEvents, DynamoListingPages, EventMigration, migrate_events};
use cuba_core::model::clock::{Clock, SystemClock};
use cuba_core::model::domain::{Activity, EventBody, EventId, Millis, StoredEvent, UserId};
use cuba_core::model::ports::EventStore;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{TestStack, bill, unique};

/// The events table as the version before the time-sorted key created it.
async fn create_old_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    let attribute = |name: &str, kind: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .expect("an attribute")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("a key")
    };
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("user", ScalarAttributeType::N))
        .attribute_definitions(attribute("id", ScalarAttributeType::S))
        .attribute_definitions(attribute("received_at", ScalarAttributeType::N))
        .key_schema(key("user", KeyType::Hash))
        .key_schema(key("id", KeyType::Range))
        .local_secondary_indexes(
            LocalSecondaryIndex::builder()
                .index_name("by_received")
                .key_schema(key("user", KeyType::Hash))
                .key_schema(key("received_at", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("an index"),
        )
        .send()
        .await
        .expect("the old events table");
}

/// An item as the earlier version stored an event.
fn old_item(
    event: &StoredEvent,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    let mut item: serde_dynamo::Item = serde_dynamo::to_item(event).expect("an item");
    item.insert(
        "day_shard".into(),
        serde_dynamo::AttributeValue::S(format!("{}#0", event.received_at.0 / 86_400_000)),
    );
    item.insert(
        "expires_at".into(),
        serde_dynamo::AttributeValue::N((event.received_at.0 / 1000 + 400 * 86_400).to_string()),
    );
    item.into()
}

#[tokio::test(flavor = "multi_thread")]
async fn old_events_are_copied_found_by_id_and_time_and_not_processed_again() {
    let t = TestStack::start().await;
    let client = aws_sdk_dynamodb::Client::new(&t.sdk);
    let table = t
        .stack
        .provisioned
        .table("EventsTable")
        .expect("events table")
        .to_owned();
    let old = format!("{table}-before");
    create_old_table(&client, &old).await;

    // A user whose first bill payment the earlier version processed (its SMS sent then), and
    // a page view whose id that version minted.
    let user = 30_000 + unique();
    let phone = t.register_phone(user).await;
    let now = SystemClock.now();
    let paid_at = Millis(now.0 - 3_600_000);
    let payment = StoredEvent {
        user: UserId(user),
        id: EventId::parse("old-payment-1").expect("an id"),
        received_at: paid_at,
        body: EventBody::Activity(Activity::new(
            "bill",
            "paid",
            json!({"amount": 100, "type": "electricity"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        )),
    };
    let viewed_at = Millis(paid_at.0 + 1_000);
    let view = StoredEvent {
        id: EventId::minted_at(viewed_at),
        received_at: viewed_at,
        body: EventBody::Activity(Activity::new("page", "viewed", Default::default())),
        ..payment.clone()
    };
    for event in [&payment, &view] {
        client
            .put_item()
            .table_name(&old)
            .set_item(Some(old_item(event)))
            .send()
            .await
            .expect("an old event");
    }
    // An absence check the earlier version posted (long decided): not an event, left behind.
    client
        .put_item()
        .table_name(&old)
        .item(
            "user",
            aws_sdk_dynamodb::types::AttributeValue::N(user.to_string()),
        )
        .item(
            "id",
            aws_sdk_dynamodb::types::AttributeValue::S("#check#r#old-payment-1".into()),
        )
        .item(
            "due_check",
            aws_sdk_dynamodb::types::AttributeValue::M(Default::default()),
        )
        .send()
        .await
        .expect("an old posted check");

    let pages = DynamoListingPages::new(
        client.clone(),
        t.stack
            .provisioned
            .table("EventPagesTable")
            .expect("event pages table"),
    );
    let report = migrate_events(&client, &old, &table, &pages)
        .await
        .expect("a migration");
    assert_eq!(
        report,
        EventMigration {
            copied: 2,
            present: 0,
            id_entries: 1,
            skipped: 1
        },
        "the client's id gets a lookup entry; the minted one needs none"
    );
    let again = migrate_events(&client, &old, &table, &pages)
        .await
        .expect("a rerun");
    assert_eq!(
        again,
        EventMigration {
            copied: 0,
            present: 2,
            id_entries: 0,
            skipped: 1
        },
        "a second run copies nothing twice"
    );

    // A table's own events listed (a stack upgraded from the listing indexes): nothing copied.
    let own = migrate_events(&client, &table, &table, &pages)
        .await
        .expect("a run over the new table");
    assert_eq!(
        own,
        EventMigration {
            copied: 0,
            present: 2,
            id_entries: 0,
            skipped: 1
        },
        "the id entry is not an event"
    );

    let events = DynamoEvents::new(client.clone(), table.clone());
    for event in [&payment, &view] {
        let found = events
            .get(UserId(user), &event.id)
            .await
            .expect("a read")
            .expect("the copied event is found by its id");
        assert_eq!(&found.event, event);
    }
    let by_time = events
        .received_between(UserId(user), paid_at, viewed_at)
        .await
        .expect("a read by time");
    assert_eq!(by_time, vec![payment.clone(), view.clone()]);

    // Listed across everyone, once though all three runs wrote their pages.
    let (status, listed) = t
        .admin(Method::GET, "/admin/api/events?limit=200", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let ids: Vec<&str> = listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["user"] == json!(user))
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, [view.id.as_str(), payment.id.as_str()], "{listed}");

    // The client retries the old payment: still the duplicate of the stored copy.
    let (status, answer) = t
        .post(
            "/api/v1/event/",
            user,
            &json!({"id": "old-payment-1", "noun": "bill", "verb": "paid",
                    "properties": {"amount": 100, "type": "electricity"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], "duplicate");

    // The copies went through the stream before another user's first payment: had they been
    // processed, the old payment would have been this user's first and sent an SMS.
    let other = 40_000 + unique();
    let other_phone = t.register_phone(other).await;
    t.accept("/api/v1/event/", other, &bill(300)).await;
    t.wait_until("the other user's first-payment SMS", || async {
        !t.sms_to(&other_phone).await.is_empty()
    })
    .await;
    assert!(
        t.sms_to(&phone).await.is_empty(),
        "a migrated event is not processed again"
    );
}
