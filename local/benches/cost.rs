//! What an event costs on AWS, by kind, measured end to end on the local stack: every AWS
//! request the handlers make (ingest, the stream consumer, the delay queue, SNS) is metered by an
//! interceptor on their SDK clients (`cuba_local::meter`), with DynamoDB's request units computed
//! from the items each request writes and returns and the tables' own indexes. The counts are
//! priced at list prices (`PRICES`, written in docs/src/benchmarks.md with their date) beside the floor
//! issue 10 defines: one HTTP API request, one Lambda invocation, one 1 KB conditional write,
//! and the stream's share of a rules invocation (events sent in batches share the first two).
//!
//! Modelled, not measured: Lambda invocations (one per request, the stream's `1/StreamBatchSize`
//! per record, one per absence check), their duration (6 ms per AWS call made, plus 1 ms, at the
//! template's 256 MB), the delay queue's receive and delete (Lambda's poller: two requests per
//! check), and SMS carrier fees (priced per message by country: left out, and counted apart).
//! Run by `make bench`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use cuba_aws::DynamoProfiles;
use cuba_core::delivery::ports::ProfileStore;
use cuba_core::model::clock::{Clock, SystemClock};
use cuba_core::model::domain::{PhoneNumber, UserId, UserProfile};
use cuba_local::meter::{Meter, Metered};
use cuba_local::runner::{self, RunningStack, StackOptions};
use serde_json::{Value, json};

/// us-east-1 list prices in dollars per million (Lambda: per GB-second).
struct Prices;

impl Prices {
    const HTTP_API_REQUEST: f64 = 1.00;
    const LAMBDA_REQUEST: f64 = 0.20;
    const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4 * 1e6;
    const DYNAMODB_WRITE_UNIT: f64 = 0.625;
    const DYNAMODB_READ_UNIT: f64 = 0.125;
    const SQS_REQUEST: f64 = 0.40;
    const SNS_PUBLISH: f64 = 0.50;
}

const LAMBDA_GB: f64 = 0.25;
const MS_PER_AWS_CALL: f64 = 6.0;
const STREAM_BATCH: f64 = 100.0;
const EVENTS: u64 = 20;

/// One kind's metered run, per event.
struct PerEvent {
    kind: &'static str,
    metered: Metered,
    events: f64,
    http_requests: f64,
    absence_checks: f64,
    sms: f64,
}

impl PerEvent {
    fn per(&self, n: f64) -> f64 {
        n / self.events
    }

    fn write_units(&self) -> f64 {
        self.per(self.metered.write_units.values().sum())
    }

    fn read_units(&self) -> f64 {
        self.per(self.metered.read_units.values().sum())
    }

    /// Dollars per million events, and the floor's.
    fn dollars(&self) -> (f64, f64) {
        let requests = |service: &str| self.per(self.metered.requests_of(service) as f64);
        let http = self.per(self.http_requests);
        let checks = self.per(self.absence_checks);
        let invocations = http + 1.0 / STREAM_BATCH + checks;
        let aws_calls = self.per(self.metered.total_requests() as f64);
        let seconds = (aws_calls * MS_PER_AWS_CALL + invocations * 1.0) / 1000.0;
        let sqs = requests("SQS") + 2.0 * checks;
        let cost = http * Prices::HTTP_API_REQUEST
            + invocations * Prices::LAMBDA_REQUEST
            + seconds * LAMBDA_GB * Prices::LAMBDA_GB_SECOND
            + self.write_units() * Prices::DYNAMODB_WRITE_UNIT
            + self.read_units() * Prices::DYNAMODB_READ_UNIT
            + sqs * Prices::SQS_REQUEST
            + requests("SNS") * Prices::SNS_PUBLISH;
        let floor_invocations = http + 1.0 / STREAM_BATCH;
        let floor_seconds = (http * (MS_PER_AWS_CALL + 1.0) + 1.0 / STREAM_BATCH) / 1000.0;
        let floor = http * Prices::HTTP_API_REQUEST
            + floor_invocations * Prices::LAMBDA_REQUEST
            + floor_seconds * LAMBDA_GB * Prices::LAMBDA_GB_SECOND
            + Prices::DYNAMODB_WRITE_UNIT;
        (cost, floor)
    }
}

struct Bench {
    stack: RunningStack,
    meter: Arc<Meter>,
    http: reqwest::Client,
    base: String,
}

impl Bench {
    fn token(&self, user: u64) -> String {
        self.stack
            .verifier
            .issue(UserId(user), SystemClock.now(), 3600)
    }

    async fn post(&self, user: u64, path: &str, body: Value) -> anyhow::Result<()> {
        let status = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.token(user))
            .json(&body)
            .send()
            .await?
            .status();
        anyhow::ensure!(status.is_success(), "{path} answered {status}");
        Ok(())
    }

    /// Waits until the stream consumer has finished `records` more event records and decided
    /// `checks` more absence checks, then a little longer for the batches' tallies.
    async fn settle(&self, records: u64, checks: u64, since: (u64, u64)) -> anyhow::Result<()> {
        let progress = &self.stack.progress;
        let started = Instant::now();
        while progress.stream_records.load(Ordering::SeqCst) < since.0 + records
            || progress.due_checks.load(Ordering::SeqCst) < since.1 + checks
        {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(120),
                "the stack did not finish"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(())
    }

    fn mark(&self) -> (u64, u64) {
        let progress = &self.stack.progress;
        (
            progress.stream_records.load(Ordering::SeqCst),
            progress.due_checks.load(Ordering::SeqCst),
        )
    }
}

fn bill(id: String, amount: u64) -> Value {
    json!({"id": id, "noun": "bill", "verb": "paid",
        "properties": {"amount": amount, "currency": "KES", "type": "electricity"}})
}

/// A valid event no rule matches: a web page view (the shipped schemas cover web events, bill
/// payments and feedback; a mobile event of another type is kept in the error log).
fn plain(id: String) -> Value {
    json!({"id": id, "session_id": "d66ac88b-f801-4984-953f-5c6b266494a0",
        "category": "page interaction", "name": "pageview",
        "data": {"host": "www.cwtech.dev", "path": "/pay"},
        "timestamp": "2022-04-01 09:15:27.243860"})
}

/// The event without an `id`: ingest mints one (a UUIDv7 of the receive time, no lookup entry).
fn minted(mut event: Value) -> Value {
    if let Some(fields) = event.as_object_mut() {
        fields.remove("id");
    }
    event
}

/// A mobile event with no schema: stored, flagged invalid and kept in the error log.
fn unschematised(id: String) -> Value {
    json!({"id": id, "noun": "app", "verb": "opened", "properties": {"screen": "home"}})
}

fn web(id: String) -> Value {
    json!({"id": id, "session_id": "d66ac88b-f801-4984-953f-5c6b266494a0",
        "category": "page interaction", "name": "link click",
        "data": {"host": "www.cwtech.dev", "path": "/", "element": "register"},
        "timestamp": "2022-04-01 09:15:27.243860"})
}

/// A web event a fleet window counts (the cost rules' `fleet-page-views`): a page view of one path.
fn scrolled(id: String) -> Value {
    json!({"id": id, "session_id": "d66ac88b-f801-4984-953f-5c6b266494a0",
        "category": "page interaction", "name": "pageview",
        "data": {"host": "www.cwtech.dev", "path": "/fleet"},
        "timestamp": "2022-04-01 09:15:27.243860"})
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoint = std::env::var("CUBA_BENCH_MOTO_ENDPOINT")
        .map_err(|_| anyhow::anyhow!("set CUBA_BENCH_MOTO_ENDPOINT (make bench does)"))?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    // The seed rules with the absence check due after 2 seconds instead of 15 minutes: the same
    // requests, sooner.
    let mut rules: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("rules/default.json"))?)?;
    for rule in rules["rules"].as_array_mut().into_iter().flatten() {
        if rule["condition"]["type"] == "absence" {
            rule["condition"]["seconds"] = json!(2);
        }
    }
    // A fleet window over page views of one path (no other kind here is one), set never to fire: what counting
    // an event in a window across users costs.
    if let Some(list) = rules["rules"].as_array_mut() {
        list.push(json!({
            "id": "fleet-page-views",
            "when": {"kind": "web", "category": "page interaction", "name": "pageview",
                     "data.path": "/fleet"},
            "condition": {"type": "window", "seconds": 300, "count_at_least": 1_000_000_000u64,
                          "group_by": "all"},
            "action": {"type": "notify_operator"},
            "message": "{{window.count}} views of /fleet"
        }));
    }
    let rules_file =
        std::env::temp_dir().join(format!("cuba-cost-rules-{}.json", std::process::id()));
    std::fs::write(&rules_file, rules.to_string())?;
    let sdk = cuba_local::moto_sdk_config(&endpoint).await;
    let meter = Meter::new();
    let stack = runner::start(
        &sdk,
        StackOptions {
            rules_file: Some(rules_file),
            meter: Some(meter.clone()),
            access: None,
            ..StackOptions::for_bench(&root, "cost")
        },
    )
    .await?;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    for table in [
        "EventsTable",
        "EventPagesTable",
        "AlertsTable",
        "RuleStateTable",
        "ErrorsTable",
        "ProfilesTable",
    ] {
        meter
            .learn(&dynamodb, stack.provisioned.table(table)?)
            .await?;
    }
    let bench = Bench {
        base: format!("http://{}", stack.http_addr),
        stack,
        meter,
        http: reqwest::Client::new(),
    };
    let profiles = DynamoProfiles::new(
        dynamodb.clone(),
        bench.stack.provisioned.table("ProfilesTable")?,
    );
    let mut rows = Vec::new();

    // Users 1..=EVENTS paid once already (not metered): their next payment fires nothing.
    let since = bench.mark();
    for user in 1..=EVENTS {
        bench
            .post(user, "/api/v1/event/", bill(format!("setup-{user}"), 100))
            .await?;
    }
    bench.settle(EVENTS, EVENTS, since).await?;
    bench.meter.take();

    let mut run = async |kind: &'static str,
                         sends: Vec<(u64, &str, Value)>,
                         records: u64,
                         checks: u64,
                         sms: u64|
           -> anyhow::Result<()> {
        let since = bench.mark();
        let requests = sends.len() as f64;
        for (user, path, body) in sends {
            bench.post(user, path, body).await?;
        }
        bench.settle(records, checks, since).await?;
        rows.push(PerEvent {
            kind,
            metered: bench.meter.take(),
            events: records as f64,
            http_requests: requests,
            absence_checks: checks as f64,
            sms: sms as f64,
        });
        Ok(())
    };
    run(
        "plain event (a web page view no rule matches)",
        (1..=EVENTS)
            .map(|u| (u, "/api/v1/event/", plain(format!("plain-{u}"))))
            .collect(),
        EVENTS,
        0,
        0,
    )
    .await?;
    run(
        "plain event, id minted by ingest (no `id` sent)",
        (1..=EVENTS)
            .map(|u| (u, "/api/v1/event/", minted(plain(String::new()))))
            .collect(),
        EVENTS,
        0,
        0,
    )
    .await?;
    // Each payment answered by feedback within the absence rule's span: nothing fires. Per
    // event, the payment and the feedback each count as one.
    run(
        "bill payment answered by feedback, nothing fires (per event of the pair)",
        (1..=EVENTS)
            .flat_map(|u| {
                [
                    (u, "/api/v1/event/", bill(format!("again-{u}"), 100)),
                    (
                        u,
                        "/api/v1/feedback/",
                        json!({"id": format!("answer-{u}"), "rating": 5}),
                    ),
                ]
            })
            .collect(),
        2 * EVENTS,
        EVENTS,
        0,
    )
    .await?;
    run(
        "bill payment, no feedback (the no-feedback operator alert)",
        (1..=EVENTS)
            .map(|u| (u, "/api/v1/event/", bill(format!("unanswered-{u}"), 100)))
            .collect(),
        EVENTS,
        EVENTS,
        0,
    )
    .await?;
    // New users with verified phones: their first payment texts them.
    for user in 1001..=1000 + EVENTS {
        let profile = UserProfile {
            user: UserId(user),
            phone: PhoneNumber::parse(&format!("+1555700{user:04}"))?,
            updated_at: SystemClock.now(),
            phone_verified: true,
            pending_code: None,
            codes_sent: Vec::new(),
            time_zone: None,
            locale: None,
            version: 0,
        };
        profiles.save(&profile, 0).await?;
    }
    run(
        "a user's first bill payment (the SMS, and the no-feedback alert)",
        (1001..=1000 + EVENTS)
            .map(|u| (u, "/api/v1/event/", bill(format!("first-{u}"), 100)))
            .collect(),
        EVENTS,
        EVENTS,
        EVENTS,
    )
    .await?;
    run(
        "feedback",
        (1..=EVENTS)
            .map(|u| {
                (
                    u,
                    "/api/v1/feedback/",
                    json!({"id": format!("fb-{u}"), "rating": 4, "comment": "fine"}),
                )
            })
            .collect(),
        EVENTS,
        0,
        0,
    )
    .await?;
    run(
        "web event",
        (1..=EVENTS)
            .map(|u| (u, "/api/v1/event/", web(format!("web-{u}"))))
            .collect(),
        EVENTS,
        0,
        0,
    )
    .await?;
    run(
        "mobile event with no schema (kept in the error log)",
        (1..=EVENTS)
            .map(|u| (u, "/api/v1/event/", unschematised(format!("odd-{u}"))))
            .collect(),
        EVENTS,
        0,
        0,
    )
    .await?;
    run(
        "web event counted by a fleet window (group_by all)",
        (1..=EVENTS)
            .map(|u| (u, "/api/v1/event/", scrolled(format!("scroll-{u}"))))
            .collect(),
        EVENTS,
        0,
        0,
    )
    .await?;
    run(
        "web events counted by a fleet window, in batches of 100",
        (1..=2u64).map(|b| (b, "/api/v1/batch/", json!({"events": (0..100).map(|i| scrolled(format!("scrolls-{b}-{i}"))).collect::<Vec<_>>()}))).collect(),
        200, 0, 0,
    ).await?;
    run(
        "plain events in batches of 100",
        (1..=2u64).map(|b| (b, "/api/v1/batch/", json!({"events": (0..100).map(|i| plain(format!("batch-{b}-{i}"))).collect::<Vec<_>>()}))).collect(),
        200, 0, 0,
    ).await?;

    run(
        "plain events in batches of 100, ids minted by ingest",
        (1..=2u64).map(|b| (b, "/api/v1/batch/", json!({"events": (0..100).map(|_| minted(plain(String::new()))).collect::<Vec<_>>()}))).collect(),
        200, 0, 0,
    ).await?;

    // What an operator's listing page costs to read: 50 events, newest first, across everyone
    // (the newest second's pages of each of the day's shards, then the events in one batch), of
    // one web session (its pages), and of one user (the events table's own key).
    let admin =
        bench
            .stack
            .admin_verifier
            .issue("bench@localhost", Some("admin"), SystemClock.now(), 3600);
    bench.meter.take();
    let mut listings = Vec::new();
    for (what, query) in [
        ("everyone's events", "limit=50".to_owned()),
        (
            "a web session's events",
            "limit=50&session=d66ac88b-f801-4984-953f-5c6b266494a0".to_owned(),
        ),
        ("one user's events", "limit=50&user=1".to_owned()),
    ] {
        let answer: Value = bench
            .http
            .get(format!("{}/admin/api/events?{query}", bench.base))
            .bearer_auth(&admin)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let metered = bench.meter.take();
        listings.push(format!(
            "{what}: {} events listed, {} DynamoDB requests, {:.1} read units",
            answer["items"].as_array().map_or(0, Vec::len),
            metered.requests_of("DynamoDB"),
            metered.read_units.values().sum::<f64>()
        ));
    }

    // What a stored event weighs, against its body: a valid one is its parsed fields alone, an
    // invalid one keeps its raw text too.
    let events_table = bench.stack.provisioned.table("EventsTable")?;
    let mut weights = Vec::new();
    for (what, user, id, body) in [
        (
            "valid bill payment",
            1,
            "again-1",
            bill("again-1".into(), 100),
        ),
        ("valid web page view", 1, "plain-1", plain("plain-1".into())),
        (
            "mobile event with no schema",
            1,
            "odd-1",
            unschematised("odd-1".into()),
        ),
    ] {
        // Events sort by receive time: the id is an attribute, found in the user's partition.
        let item = dynamodb
            .query()
            .table_name(events_table)
            .key_condition_expression("#u = :u")
            .filter_expression("#id = :id")
            .expression_attribute_names("#u", "user")
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":u", AttributeValue::N(user.to_string()))
            .expression_attribute_values(":id", AttributeValue::S(id.into()))
            .send()
            .await?
            .items
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("{id} is not stored"))?;
        weights.push(format!(
            "{what}: body {} bytes, stored item {} bytes",
            body.to_string().len(),
            cuba_local::meter::item_size(&item)
        ));
    }

    println!("Per event, {EVENTS} of each kind (200 in batches), through the local stack on moto:");
    println!("(SQS counts the delay queue's send plus Lambda's receive and delete per check.)");
    println!();
    println!(
        "| kind | DynamoDB requests | write units | read units | SQS | SNS | $ per million | floor $ per million | × floor |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        let (cost, floor) = row.dollars();
        let requests = |s: &str| row.per(row.metered.requests_of(s) as f64);
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {cost:.2} | {floor:.2} | {:.2} |",
            row.kind,
            requests("DynamoDB"),
            row.write_units(),
            row.read_units().max(0.0),
            requests("SQS") + 2.0 * row.per(row.absence_checks),
            requests("SNS"),
            cost / floor,
        );
    }
    println!();
    println!("Write units by table and index, per event:");
    println!();
    for row in &rows {
        let parts: Vec<String> = row
            .metered
            .write_units
            .iter()
            .map(|(what, units)| format!("{what} {:.2}", row.per(*units)))
            .collect();
        println!(
            "- {}: {}{}",
            row.kind,
            parts.join(", "),
            if row.sms > 0.0 {
                " (plus one SMS each, carrier fees apart)"
            } else {
                ""
            }
        );
    }
    println!();
    println!("An operator's first page of a listing (read units, strongly consistent reads):");
    println!();
    for listing in listings {
        println!("- {listing}");
    }
    println!();
    println!("Stored events (DynamoDB item size):");
    println!();
    for weight in weights {
        println!("- {weight}");
    }
    Ok(())
}
