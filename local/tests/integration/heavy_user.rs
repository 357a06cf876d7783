//! A heavy user beside ordinary ones, on moto: one user's thousand payments in one window, far
//! past the window buckets' capacity, in the same stream batches as other users' payments.

use std::collections::BTreeMap;

use cuba_lambda::settings::env;
use cuba_local::meter::Meter;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::deliveries::{batch_of, stream_records};
use crate::harness::{Options, TestStack, bill, heavy_moto_turn, repo_path, s};

/// The seed's SMS rules (first payment, burst) without the absence rule, whose checks would
/// only add traffic here.
fn sms_rules() -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo_path("rules/default.json")).expect("default rules");
    let mut rules: Value = serde_json::from_str(&text).expect("default rules are JSON");
    if let Some(list) = rules["rules"].as_array_mut() {
        list.retain(|rule| rule["condition"]["type"] != "absence");
    }
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rules-sms-{}.json", std::process::id()));
    std::fs::write(&path, rules.to_string()).expect("write test rules");
    path
}

const HEAVY: u64 = 70;
const HEAVY_BATCHES: usize = 6;
const ORDINARY: std::ops::RangeInclusive<u64> = 71..=76;
/// Records per invocation, as the template's `StreamBatchSize`.
const BATCH: usize = 100;

/// A user with 600 small payments in five minutes (three times the buckets' 200, so most are
/// decided from the user's events) and then one large one, in the same stream batches as six
/// ordinary users paying five times each. Every batch is handed to the rules handler as
/// Lambda would, once, and succeeds whole: every ordinary user's SMS (first payment and burst)
/// has gone out when their batch returns, the heavy user's two exactly once, nothing is
/// `unconfirmed`; and the heavy user's windows were read once or twice per batch, not once per
/// payment (what the events table's per-user index served, metered).
#[tokio::test(flavor = "multi_thread")]
async fn a_heavy_users_windows_hold_no_ordinary_user_up() {
    let _turn = heavy_moto_turn().await;
    let meter = Meter::new();
    let t = TestStack::start_with(Options {
        poll_stream: false,
        heavy: true,
        rules_file: Some(sms_rules()),
        // The heavy user posts as fast as the test can; the rate limit is not what is tested.
        env: vec![
            (env::USER_EVENTS_PER_SECOND, "100000".into()),
            (env::USER_EVENT_BURST, "1000000".into()),
        ],
        meter: Some(meter.clone()),
        ..Options::default()
    })
    .await;
    let mut phones = BTreeMap::new();
    for user in std::iter::once(HEAVY).chain(ORDINARY) {
        let phone = format!("+1555{:03}{:04}", rand_salt(), user);
        t.verified_phone(user, &phone).await;
        phones.insert(user, phone);
    }
    for round in 0..HEAVY_BATCHES {
        let events: Vec<Value> = (0..100).map(|_| bill(1)).collect();
        let (status, answer) = t
            .post("/api/v1/batch/", HEAVY, &json!({"events": events}))
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        if round > 0 {
            for user in ORDINARY {
                t.accept("/api/v1/event/", user, &bill(5000)).await;
            }
        }
    }
    t.accept("/api/v1/event/", HEAVY, &bill(20_000)).await;

    let records = stream_records(&t).await;
    assert_eq!(
        records.len(),
        HEAVY_BATCHES * 100 + 1 + 5 * ORDINARY.count()
    );
    meter.take();
    for (n, batch) in records.chunks(BATCH).enumerate() {
        let response = t
            .stack
            .stream_handler
            .handle(batch_of(batch.to_vec()))
            .await;
        assert!(
            response.batch_item_failures.is_empty(),
            "batch {n} was processed whole in one invocation"
        );
    }
    let metered = meter.take();
    let window_reads: f64 = metered
        .read_units
        .iter()
        .filter(|(what, _)| what.ends_with("-events-v2"))
        .map(|(_, units)| units)
        .sum();

    for (user, phone) in &phones {
        let sms = t.sms_to(phone).await;
        assert_eq!(
            sms.len(),
            2,
            "user {user}: first payment and burst: {sms:?}"
        );
    }
    let ledger = t.ledger().await;
    assert_eq!(ledger.len(), 2 * phones.len());
    for item in &ledger {
        assert_eq!(s(item, "status"), "sent", "{item:?}");
    }
    // Read for each of the 400 payments past the buckets, the heavy user's windows cost 9,624
    // read units here (401 queries; measured with the reads per batch switched off); once per
    // batch, 120 (5 queries).
    assert!(
        window_reads < 1_000.0,
        "{window_reads} read units of users' events for {} records",
        records.len()
    );
}

fn rand_salt() -> u128 {
    uuid::Uuid::new_v4().as_u128() % 1000
}
