//! The local stack is the template: what the provisioner created in moto matches what
//! `template.yaml` declares.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::QueueAttributeName;
use cuba_local::template::Template;
use serde_json::Value;

use crate::harness::{TestStack, repo_path};

fn sorted_pairs(list: &Value, a: &str, b: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<_> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e[a].as_str().unwrap_or_default().to_owned(),
                e[b].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test(flavor = "multi_thread")]
async fn tables_and_queues_match_the_template() {
    let t = TestStack::start().await;
    let template =
        Template::parse(&std::fs::read_to_string(repo_path("template.yaml")).expect("template"))
            .expect("parses");
    let known = &t.stack.provisioned.known;
    let dynamodb = aws_sdk_dynamodb::Client::new(&t.sdk);

    let mut tables = 0;
    for resource in template.resources_of("AWS::DynamoDB::Table") {
        tables += 1;
        let want = known.resolve(&resource.properties).expect("resolves");
        let got = dynamodb
            .describe_table()
            .table_name(want["TableName"].as_str().expect("name"))
            .send()
            .await
            .expect("the table exists")
            .table
            .expect("description");
        let keys: Vec<(String, String)> = {
            let mut k: Vec<_> = got
                .key_schema()
                .iter()
                .map(|k| {
                    (
                        k.attribute_name().to_owned(),
                        k.key_type().as_str().to_owned(),
                    )
                })
                .collect();
            k.sort();
            k
        };
        assert_eq!(
            keys,
            sorted_pairs(&want["KeySchema"], "AttributeName", "KeyType"),
            "{}",
            resource.logical_id
        );
        let attributes: Vec<(String, String)> = {
            let mut a: Vec<_> = got
                .attribute_definitions()
                .iter()
                .map(|d| {
                    (
                        d.attribute_name().to_owned(),
                        d.attribute_type().as_str().to_owned(),
                    )
                })
                .collect();
            a.sort();
            a
        };
        assert_eq!(
            attributes,
            sorted_pairs(
                &want["AttributeDefinitions"],
                "AttributeName",
                "AttributeType"
            )
        );
        let want_lsis: Vec<&str> = want["LocalSecondaryIndexes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["IndexName"].as_str())
            .collect();
        let got_lsis: Vec<&str> = got
            .local_secondary_indexes()
            .iter()
            .filter_map(|i| i.index_name())
            .collect();
        assert_eq!(got_lsis, want_lsis, "{}", resource.logical_id);
        let want_stream = want["StreamSpecification"]["StreamViewType"].as_str();
        let got_stream = got
            .stream_specification()
            .and_then(|s| s.stream_view_type())
            .map(|v| v.as_str());
        assert_eq!(got_stream, want_stream, "{}", resource.logical_id);
    }
    assert_eq!(tables, 8);

    let sqs = aws_sdk_sqs::Client::new(&t.sdk);
    for resource in template.resources_of("AWS::SQS::Queue") {
        let want = known.resolve(&resource.properties).expect("resolves");
        let url = t
            .stack
            .provisioned
            .queue_url(&resource.logical_id)
            .expect("created");
        assert!(url.ends_with(want["QueueName"].as_str().expect("name")));
        let got = sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .expect("attributes")
            .attributes
            .unwrap_or_default();
        for (property, attribute) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            (
                "MessageRetentionPeriod",
                QueueAttributeName::MessageRetentionPeriod,
            ),
        ] {
            if let Some(value) = want.get(property) {
                assert_eq!(
                    got.get(&attribute).map(String::as_str),
                    Some(value.to_string().as_str()),
                    "{property}"
                );
            }
        }
        if let Some(redrive) = want.get("RedrivePolicy") {
            let got: Value = serde_json::from_str(
                got.get(&QueueAttributeName::RedrivePolicy)
                    .expect("redrive"),
            )
            .expect("json");
            assert_eq!(got["deadLetterTargetArn"], redrive["deadLetterTargetArn"]);
            assert_eq!(
                got["maxReceiveCount"].to_string().trim_matches('"'),
                redrive["maxReceiveCount"].to_string()
            );
        }
    }

    let topic = t
        .stack
        .provisioned
        .topic_arn("OperatorTopic")
        .expect("topic");
    aws_sdk_sns::Client::new(&t.sdk)
        .get_topic_attributes()
        .topic_arn(topic)
        .send()
        .await
        .expect("the operator topic exists");
}

/// Events (and their listing pages), error-log entries and alerts carry `expires_at` (the
/// tables' TTL attribute) at the template's default retention: 400, 90 and 400 days after the
/// event or alert.
#[tokio::test(flavor = "multi_thread")]
async fn stored_items_expire_after_their_retention() {
    let t = crate::harness::TestStack::start().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&t.sdk);
    for table in [
        "EventsTable",
        "EventPagesTable",
        "AlertsTable",
        "ErrorsTable",
    ] {
        let name = t.stack.provisioned.table(table).expect("a table");
        let ttl = dynamodb
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .expect("describe TTL")
            .time_to_live_description
            .expect("a TTL description");
        assert_eq!(ttl.attribute_name.as_deref(), Some("expires_at"), "{table}");
    }
    t.accept("/api/v1/event/", 71, &crate::harness::bill(100))
        .await;
    // No schema for this one: it lands in the error log.
    t.accept(
        "/api/v1/event/",
        71,
        &serde_json::json!({"noun": "nothing", "verb": "known"}),
    )
    .await;
    t.wait_until("an alert and an error entry", || async {
        !t.ledger().await.is_empty()
    })
    .await;
    let number = |item: &std::collections::HashMap<String, AttributeValue>, name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in {item:?}"))
    };
    const DAY: u64 = 24 * 3600;
    let scan = |table: &'static str| {
        let dynamodb = dynamodb.clone();
        let name = t.stack.provisioned.table(table).expect("a table");
        async move {
            dynamodb
                .scan()
                .table_name(name)
                .send()
                .await
                .expect("scan")
                .items
                .unwrap_or_default()
        }
    };
    let events = scan("EventsTable").await;
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_eq!(
            number(event, "expires_at"),
            number(event, "received_at") / 1000 + 400 * DAY
        );
    }
    // The listing pages go with the events they list: the expiry of their second's events.
    t.wait_until("the events' listing pages", || async {
        !scan("EventPagesTable").await.is_empty()
    })
    .await;
    let event_expiry: Vec<u64> = events.iter().map(|e| number(e, "expires_at")).collect();
    for page in scan("EventPagesTable").await {
        assert!(
            event_expiry.contains(&number(&page, "expires_at")),
            "{page:?} against {event_expiry:?}"
        );
    }
    let alert = &t.ledger().await[0];
    assert_eq!(
        number(alert, "expires_at"),
        number(alert, "fired_at") / 1000 + 400 * DAY
    );
    t.wait_until("the error-log entry", || async {
        !scan("ErrorsTable").await.is_empty()
    })
    .await;
    let error = &scan("ErrorsTable").await[0];
    assert_eq!(
        number(error, "expires_at"),
        number(error, "received_at") / 1000 + 90 * DAY
    );
}
