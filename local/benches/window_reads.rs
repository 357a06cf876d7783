//! What one window evaluation reads, as the window grows: a user paying a bill every 10 seconds,
//! windows of 1 minute to 1 hour (the last past a bucket's capacity), each evaluation read both ways on moto through the real
//! adapters: the scan the rules function used to make (the user's events in the window, from
//! the events table's local index) and the window buckets it makes now (one strongly consistent
//! BatchGetItem of at most three items: the window, and the later windows a late member would
//! complete). Prints the items each evaluation reads and moto's
//! latency (moto is slow: compare the columns, not the absolute times). Run by `make bench`.

use std::collections::BTreeMap;
use std::time::Instant;

use cuba_aws::{DynamoEvents, DynamoWindows};
use cuba_core::evaluation::ports::WindowStore;
use cuba_core::evaluation::window::{MAX_BUCKET_MEMBERS, WindowKey, WindowMember, WindowRead};
use cuba_core::model::domain::{
    Activity, EventBody, EventId, IdOrigin, Millis, ReceivedEvent, StoredEvent, UserId,
};
use cuba_core::model::ports::EventStore;
use cuba_core::rules::RuleId;
use cuba_local::provision::provision;
use cuba_local::template::Template;
use serde_json::json;

const PAYMENT_EVERY_MS: u64 = 10_000;
const EVALUATIONS: u32 = 20;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoint = std::env::var("CUBA_BENCH_MOTO_ENDPOINT")
        .map_err(|_| anyhow::anyhow!("set CUBA_BENCH_MOTO_ENDPOINT (make bench does)"))?;
    let sdk = cuba_local::moto_sdk_config(&endpoint).await;
    let template = Template::parse(&std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../template.yaml"
    ))?)?;
    let name = format!("wr{}", std::process::id());
    let tables = provision(&sdk, &template, &name, &BTreeMap::new(), &BTreeMap::new()).await?;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let events = DynamoEvents::new(client.clone(), tables.table("EventsTable")?);
    let windows = DynamoWindows::new(client, tables.table("RuleStateTable")?);
    let rule = RuleId::parse("bill-payment-burst")?;
    let start = 1_795_600_000_000u64;
    println!(
        "A payment every {} s; each row the mean of {EVALUATIONS} evaluations at the window's end.",
        PAYMENT_EVERY_MS / 1000
    );
    println!();
    println!(
        "| window | events in it | scan: items read | scan: moto ms | buckets: items read | buckets: moto ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (user, seconds) in [(1u64, 60u64), (2, 300), (3, 1_800), (4, 3_600)] {
        let key = WindowKey {
            rule: rule.clone(),
            definition: seconds,
            user: UserId(user),
            bucket_ms: seconds * 1000,
        };
        let payments = seconds * 1000 / PAYMENT_EVERY_MS;
        let mut last = Millis(start);
        for n in 0..payments {
            let at = Millis(start + n * PAYMENT_EVERY_MS);
            let id = EventId::parse(&format!("p{user}-{n:06}"))?;
            let properties = json!({"amount": 100 + n});
            let body = EventBody::Activity(Activity::new(
                "bill",
                "paid",
                properties.as_object().cloned().unwrap_or_default(),
            ));
            let received = ReceivedEvent {
                trace: None,
                raw: format!(r#"{{"noun":"bill","verb":"paid","properties":{properties}}}"#),
                origin: IdOrigin::Client,
                event: StoredEvent {
                    user: UserId(user),
                    id: id.clone(),
                    received_at: at,
                    body,
                },
            };
            events.insert(&received).await?;
            let member = WindowMember {
                id,
                received_at: at,
                amount: (100 + n) as f64,
                value: None,
            };
            windows.record(&key, &member).await?;
            last = at;
        }
        let from = Millis(last.0 + 1 - seconds * 1000);
        let (mut scanned, mut scan_ms) = (0usize, 0f64);
        let (mut bucket_items, mut bucket_ms, mut overflowed) = (0usize, 0f64, false);
        for _ in 0..EVALUATIONS {
            let clock = Instant::now();
            scanned += events
                .received_between(UserId(user), from, last)
                .await?
                .len();
            scan_ms += clock.elapsed().as_secs_f64() * 1000.0;
            let clock = Instant::now();
            // What the rules function reads: the window, and the windows of later members it
            // would complete (at most three buckets).
            let read = windows.buckets(&key, key.buckets_around(last)).await?;
            bucket_ms += clock.elapsed().as_secs_f64() * 1000.0;
            match read {
                WindowRead::Members(m) => {
                    anyhow::ensure!(m.len() as u64 >= payments, "the buckets hold the window")
                }
                WindowRead::Overflowed => overflowed = true,
            }
            bucket_items += key.buckets_around(last).count();
        }
        let per = |n: f64| n / f64::from(EVALUATIONS);
        let buckets = if overflowed {
            format!(
                "{:.0}, overflowed (> {MAX_BUCKET_MEMBERS}): the scan is read too",
                per(bucket_items as f64)
            )
        } else {
            format!("{:.0}", per(bucket_items as f64))
        };
        println!(
            "| {} | {payments} | {:.0} | {:.1} | {buckets} | {:.1} |",
            if seconds >= 3600 {
                format!("{} h", seconds / 3600)
            } else {
                format!("{} min", seconds / 60)
            },
            per(scanned as f64),
            per(scan_ms),
            per(bucket_ms),
        );
    }
    Ok(())
}
