//! The same script of 2,000+ events from 200 users driven through HTTP twice, once fault-free and
//! once with 10% of Cuba's AWS calls failing (errors, throttles, timeouts before and after the
//! call took effect, on DynamoDB, SQS and SNS) and rules-handler invocations cut off part-way:
//! every acknowledged event is stored once, every alert the fault-free run sends is sent once
//! (or, where a cut-off invocation died between marking it `sending` and publishing it, settled
//! `unconfirmed` and never sent twice), nothing is left pending, and no record lands on a
//! failure queue.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use cuba_lambda::settings::env;
use cuba_local::faults::FaultPlan;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{
    Options, TestStack, Watch, heavy_moto_turn, n, queue_messages, rules_with_absence_seconds, s,
};

const USERS: u64 = 200;
/// Seconds a payment waits for feedback: long enough that a client's retries never push its
/// feedback past it, so both runs agree on which payments went unanswered.
const ABSENCE_SECONDS: u64 = 20;
const CONCURRENT_USERS: usize = 16;

/// One request of the script.
#[derive(Debug, Clone)]
enum Step {
    Event(Value),
    Feedback(Value),
    Batch(Vec<Value>),
    /// The same body twice at once.
    Concurrent(Value),
}

fn payment(id: &str, amount: u64) -> Value {
    json!({"id": id, "noun": "bill", "verb": "paid", "properties": {"amount": amount, "type": "electricity"}})
}

fn filler(id: &str) -> Value {
    json!({"id": id, "noun": "app", "verb": "opened", "properties": {"screen": "home"}})
}

fn feedback(id: &str) -> Value {
    json!({"id": id, "rating": 5, "comment": "ok"})
}

/// What one user does, by category (user % 5): a first payment with feedback; one without
/// (the operator is alerted); a burst of five (an SMS alert); a small burst of three; a batch.
/// Ten events each, plus a repeated id.
fn script(user: u64) -> Vec<Step> {
    let id = |n: usize| format!("u{user}-e{n}");
    let fillers = |from: usize, to: usize| (from..to).map(|n| Step::Event(filler(&id(n))));
    let mut steps = Vec::new();
    match user % 5 {
        0 => {
            steps.push(Step::Concurrent(payment(&id(0), 3000)));
            steps.push(Step::Feedback(feedback(&id(1))));
            steps.extend(fillers(2, 10));
        }
        1 => {
            steps.push(Step::Event(payment(&id(0), 4000)));
            steps.extend(fillers(1, 10));
        }
        2 => {
            steps.extend((0..5).map(|n| Step::Event(payment(&id(n), 5000))));
            steps.push(Step::Feedback(feedback(&id(5))));
            steps.extend(fillers(6, 10));
        }
        3 => {
            steps.extend((0..3).map(|n| Step::Event(payment(&id(n), 1000))));
            steps.push(Step::Feedback(feedback(&id(3))));
            steps.extend(fillers(4, 10));
        }
        _ => {
            let mut first = vec![payment(&id(0), 2500)];
            first.extend((1..5).map(|n| filler(&id(n))));
            steps.push(Step::Batch(first));
            steps.push(Step::Feedback(feedback(&id(5))));
            steps.push(Step::Batch((6..10).map(|n| filler(&id(n))).collect()));
        }
    }
    // A client resending an event it already sent.
    steps.push(Step::Event(filler(&id(9))));
    steps
}

/// Alert SMS and operator alerts each user should get (from the rules, checked against the
/// fault-free run).
fn expected_alerts(user: u64) -> (usize, usize) {
    match user % 5 {
        1 => (1, 1),
        2 => (2, 0),
        _ => (1, 0),
    }
}

#[derive(Default)]
struct Client {
    requests: AtomicU64,
    retries: AtomicU64,
}

impl Client {
    /// Sends until the API answers something other than 5xx, as a well-behaved client does.
    async fn send(
        &self,
        t: &TestStack,
        path: &str,
        user: u64,
        body: &Value,
    ) -> (StatusCode, Value) {
        for attempt in 0..20u64 {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let (status, answer) = t.post(path, user, body).await;
            if !status.is_server_error() {
                return (status, answer);
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20 * (attempt + 1))).await;
        }
        panic!("{path} kept failing for user {user}");
    }

    /// Runs a user's script; returns the ids the API acknowledged.
    async fn run(&self, t: &TestStack, user: u64) -> BTreeSet<String> {
        let mut acknowledged = BTreeSet::new();
        let mut ack = |status: StatusCode, answer: &Value| {
            assert!(
                status == StatusCode::ACCEPTED || status == StatusCode::OK,
                "{status} {answer}"
            );
            if let Some(id) = answer["id"].as_str() {
                acknowledged.insert(id.to_owned());
            }
        };
        for step in script(user) {
            match step {
                Step::Event(body) => {
                    let (status, answer) = self.send(t, "/api/v1/event/", user, &body).await;
                    ack(status, &answer);
                }
                Step::Feedback(body) => {
                    let (status, answer) = self.send(t, "/api/v1/feedback/", user, &body).await;
                    ack(status, &answer);
                }
                Step::Concurrent(body) => {
                    let (a, b) = tokio::join!(
                        self.send(t, "/api/v1/event/", user, &body),
                        self.send(t, "/api/v1/event/", user, &body)
                    );
                    ack(a.0, &a.1);
                    ack(b.0, &b.1);
                }
                Step::Batch(events) => {
                    let body = json!({"events": events});
                    let (status, answer) = self.send(t, "/api/v1/batch/", user, &body).await;
                    assert_eq!(status, StatusCode::OK, "{answer}");
                    for result in answer["results"].as_array().into_iter().flatten() {
                        assert_ne!(result["status"], "rejected", "{answer}");
                        ack(StatusCode::OK, result);
                    }
                }
            }
        }
        acknowledged
    }
}

/// What one run produced.
struct Outcome {
    /// Per user: the ids stored, counted per id.
    stored: BTreeMap<u64, BTreeMap<String, usize>>,
    /// Per user: the ids the admin listing across everyone shows, counted per id.
    listed: BTreeMap<u64, BTreeMap<String, usize>>,
    acknowledged: BTreeMap<u64, BTreeSet<String>>,
    /// Per user: the alert SMS texts, sorted.
    sms: BTreeMap<u64, Vec<String>>,
    /// Per user: the operator alerts' (rule, event ids), sorted.
    operator: BTreeMap<u64, Vec<(String, Value)>>,
    /// Ledger statuses, counted.
    statuses: BTreeMap<String, usize>,
    /// Per user: alerts the sweeper settled `unconfirmed` (their publish may not have happened).
    unconfirmed: BTreeMap<u64, usize>,
    failure_queue_entries: usize,
    requests: u64,
    retries: u64,
}

/// Every event the admin listing across everyone shows (the last day, pages of 200), counted per
/// user and id. A page refused under the fault plan is asked for again.
async fn listed_ids(t: &TestStack) -> BTreeMap<u64, BTreeMap<String, usize>> {
    let mut listed: BTreeMap<u64, BTreeMap<String, usize>> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/admin/api/events?limit=200&cursor={c}"),
            None => "/admin/api/events?limit=200".to_owned(),
        };
        let mut page = Value::Null;
        let mut refusals = Vec::new();
        // A page reads every shard, so one of its calls failing thrice under the plan sinks
        // it; an operator would ask again.
        let asked_until = std::time::Instant::now() + Duration::from_secs(120);
        while std::time::Instant::now() < asked_until {
            let (status, answer) = t.admin(reqwest::Method::GET, &path, None).await;
            if status == StatusCode::OK {
                page = answer;
                break;
            }
            refusals.push(format!("{status} {answer}"));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let Some(items) = page["items"].as_array() else {
            panic!("no listing page for {path}: {refusals:?}");
        };
        for item in items {
            let (user, id) = (item["user"].as_u64(), item["id"].as_str());
            if let (Some(user), Some(id)) = (user, id) {
                *listed
                    .entry(user)
                    .or_default()
                    .entry(id.to_owned())
                    .or_default() += 1;
            }
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return listed,
        }
    }
}

async fn all_sms(t: &TestStack) -> Vec<(String, String)> {
    let data: Value = loop {
        let response = t
            .http
            .get(format!("{}/moto-api/data.json", t.endpoint))
            .send()
            .await
            .expect("moto answers");
        // moto serialises live objects without a lock; asking again is enough.
        if let Ok(data) = response.json().await {
            break data;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    data["sns"]["SMS"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            Some((
                m["phone_number"].as_str()?.to_owned(),
                m["message"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

async fn stored_ids(t: &TestStack, user: u64) -> BTreeMap<String, usize> {
    let items = aws_sdk_dynamodb::Client::new(&t.sdk)
        .query()
        .table_name(
            t.stack
                .provisioned
                .table("EventsTable")
                .expect("events table"),
        )
        .key_condition_expression("#u = :u")
        // Events, not the absence checks posted beside them.
        .filter_expression("attribute_exists(received_at)")
        .expression_attribute_names("#u", "user")
        .expression_attribute_values(":u", AttributeValue::N(user.to_string()))
        .consistent_read(true)
        .send()
        .await
        .expect("query events")
        .items
        .unwrap_or_default();
    let mut ids = BTreeMap::new();
    for item in items {
        *ids.entry(s(&item, "id")).or_default() += 1;
    }
    ids
}

/// `salt` makes the run's phone numbers its own, so SMS of other runs are not counted.
async fn run(faults: Option<FaultPlan>, salt: u64) -> (TestStack, Outcome) {
    let t = TestStack::start_with(Options {
        faults,
        rules_file: Some(rules_with_absence_seconds(ABSENCE_SECONDS)),
        heavy: true,
        // moto answers an index query by reading the whole table: at the default 32 shards
        // (two days, 64 queries a page) the listings below cost minutes of moto's one core.
        // Four still merge shards; what is tested here is faults.
        env: vec![(env::LISTING_SHARDS, "4".into())],
        ..Options::default()
    })
    .await;
    // Verified phones, written directly: the subject here is events and alerts.
    let phone_of = |user: u64| format!("+1556{salt:03}{user:04}");
    for user in 0..USERS {
        t.verified_phone(user, &phone_of(user)).await;
    }

    let client = Client::default();
    let acknowledged: BTreeMap<u64, BTreeSet<String>> = futures::stream::iter(0..USERS)
        .map(|user| {
            let (t, client) = (&t, &client);
            async move { (user, client.run(t, user).await) }
        })
        .buffer_unordered(CONCURRENT_USERS)
        .collect()
        .await;

    // Everything settles: the absence checks fall due, the expected alerts are out, nothing is
    // left in flight.
    tokio::time::sleep(Duration::from_secs(ABSENCE_SECONDS)).await;
    let expected_sms: usize = (0..USERS).map(|u| expected_alerts(u).0).sum();
    let expected_alerts_total =
        expected_sms + (0..USERS).map(|u| expected_alerts(u).1).sum::<usize>();
    let phones: BTreeMap<String, u64> = (0..USERS).map(|u| (phone_of(u), u)).collect();
    // A loaded machine makes this slow, not wrong: the wait lasts while anything moves, and
    // a run that gives up says how far it got.
    let mut watch = Watch::new(&format!(
        "{expected_alerts_total} alerts in the ledger, all settled"
    ));
    loop {
        let ledger = t.ledger().await;
        let unsettled = ledger
            .iter()
            .filter(|item| matches!(s(item, "status").as_str(), "pending" | "sending"))
            .count();
        if ledger.len() >= expected_alerts_total && unsettled == 0 {
            break;
        }
        watch
            .still_worth_waiting(&t, &[ledger.len() as u64, unsettled as u64])
            .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Every expected operator alert, however slow a loaded moto is to hand them over, and one
    // more second for any double. One settled `unconfirmed` may never come (its publish was cut
    // off before it reached the topic): the assertions below allow for exactly those.
    let expected_operator: usize = (0..USERS).map(|u| expected_alerts(u).1).sum();
    let unconfirmed_operator = t
        .ledger()
        .await
        .iter()
        .filter(|item| s(item, "status") == "unconfirmed" && s(item, "action") == "notify_operator")
        .count();
    let awaited_operator = expected_operator.saturating_sub(unconfirmed_operator);
    let mut operator_alerts = Vec::new();
    let mut watch = Watch::new(&format!(
        "{awaited_operator} operator alerts ({unconfirmed_operator} more unconfirmed)"
    ));
    while operator_alerts.len() < awaited_operator {
        operator_alerts.extend(t.operator_alerts(Duration::from_secs(1)).await);
        watch
            .still_worth_waiting(&t, &[operator_alerts.len() as u64])
            .await;
    }
    operator_alerts.extend(t.operator_alerts(Duration::from_secs(1)).await);

    let mut outcome = Outcome {
        stored: BTreeMap::new(),
        listed: BTreeMap::new(),
        acknowledged,
        sms: BTreeMap::new(),
        operator: BTreeMap::new(),
        statuses: BTreeMap::new(),
        unconfirmed: BTreeMap::new(),
        failure_queue_entries: queue_messages(&t, "StreamFailureQueue").await
            + queue_messages(&t, "AbsenceDeadLetterQueue").await,
        requests: client.requests.load(Ordering::Relaxed),
        retries: client.retries.load(Ordering::Relaxed),
    };
    for user in 0..USERS {
        outcome.stored.insert(user, stored_ids(&t, user).await);
    }
    // The listing across everyone shows what the stream has delivered: wait until it shows as
    // many events as are stored (what it shows is compared below).
    let stored_count: usize = outcome.stored.values().map(BTreeMap::len).sum();
    t.wait_until(&format!("{stored_count} events listed"), || async {
        listed_ids(&t)
            .await
            .values()
            .map(BTreeMap::len)
            .sum::<usize>()
            >= stored_count
    })
    .await;
    outcome.listed = listed_ids(&t).await;
    for (phone, text) in all_sms(&t).await {
        if let Some(user) = phones.get(&phone) {
            outcome.sms.entry(*user).or_default().push(text);
        }
    }
    for texts in outcome.sms.values_mut() {
        texts.sort();
    }
    for (body, _) in operator_alerts {
        let user = body["user"].as_u64().expect("a user");
        outcome.operator.entry(user).or_default().push((
            body["rule_id"].as_str().unwrap_or_default().to_owned(),
            body["event_ids"].clone(),
        ));
    }
    for alerts in outcome.operator.values_mut() {
        alerts.sort_by_key(|(rule, ids)| (rule.clone(), ids.to_string()));
    }
    for item in t.ledger().await {
        let status = s(&item, "status");
        if status == "unconfirmed" {
            let user = n(&item, "user").unwrap_or(u64::MAX);
            *outcome.unconfirmed.entry(user).or_default() += 1;
        }
        *outcome.statuses.entry(status).or_default() += 1;
    }
    (t, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_ten_percent_faults_every_event_is_stored_once_and_every_alert_sent_once() {
    let _turn = heavy_moto_turn().await;
    let plan = FaultPlan {
        seed: 0x00C0_FFEE,
        rate: 0.10,
    };
    // Two phone ranges of this test run, unlikely to repeat an earlier run's against a
    // long-lived moto.
    let salt = u64::try_from(uuid::Uuid::new_v4().as_u128() % 500).unwrap_or(0) * 2;
    let ((_clean_stack, clean), (faulty_stack, faulty)) =
        tokio::join!(run(None, salt), run(Some(plan), salt + 1));
    let log = faulty_stack.stack.fault_log.as_ref().expect("a fault log");

    for (name, outcome) in [("fault-free", &clean), ("faulty", &faulty)] {
        for user in 0..USERS {
            let stored = &outcome.stored[&user];
            assert!(
                stored.values().all(|&n| n == 1),
                "{name}: user {user} stored twice: {stored:?}"
            );
            let acknowledged = &outcome.acknowledged[&user];
            let ids: BTreeSet<String> = stored.keys().cloned().collect();
            assert_eq!(
                &ids, acknowledged,
                "{name}: user {user}: stored = acknowledged"
            );
            assert_eq!(ids.len(), 10, "{name}: user {user}");
            let (sms, operator) = expected_alerts(user);
            let sent_sms = outcome.sms.get(&user).map_or(0, Vec::len);
            let sent_operator = outcome.operator.get(&user).map_or(0, Vec::len);
            // Never twice; fewer only by alerts settled `unconfirmed`: an invocation cut off
            // between marking an alert `sending` and publishing it leaves the sweeper unable to
            // tell, and it never publishes twice (the operator is told of those).
            let unconfirmed = outcome.unconfirmed.get(&user).copied().unwrap_or(0);
            assert!(
                sent_sms <= sms && sent_operator <= operator,
                "{name}: user {user} alerted twice: SMS {:?}, operator {:?}",
                outcome.sms.get(&user),
                outcome.operator.get(&user)
            );
            assert!(
                (sms - sent_sms) + (operator - sent_operator) <= unconfirmed,
                "{name}: user {user} lost an alert: SMS {sent_sms} of {sms}, operator \
                 {sent_operator} of {operator}, {unconfirmed} unconfirmed; ledger {:?}, \
                 {} on failure queues",
                outcome.statuses,
                outcome.failure_queue_entries
            );
        }
        assert_eq!(
            outcome.failure_queue_entries, 0,
            "{name}: nothing on a failure queue"
        );
        for (user, stored) in &outcome.stored {
            let listed = outcome.listed.get(user).cloned().unwrap_or_default();
            assert!(
                listed.values().all(|&n| n == 1),
                "{name}: user {user} listed twice: {listed:?}"
            );
            assert_eq!(
                listed.keys().collect::<BTreeSet<_>>(),
                stored.keys().collect::<BTreeSet<_>>(),
                "{name}: user {user}: listed across everyone = stored"
            );
        }
        assert_eq!(
            outcome.statuses.get("pending"),
            None,
            "{name}: {:?}",
            outcome.statuses
        );
        assert_eq!(
            outcome.statuses.get("sending"),
            None,
            "{name}: {:?}",
            outcome.statuses
        );
    }
    assert!(
        clean.unconfirmed.is_empty(),
        "the fault-free run confirms every alert"
    );
    // The faulty run sends what the fault-free one does, each once, short only of alerts it
    // settled unconfirmed (counted above).
    if faulty.unconfirmed.is_empty() {
        assert_eq!(clean.sms, faulty.sms, "the same SMS, each once");
        assert_eq!(
            clean.operator, faulty.operator,
            "the same operator alerts, each once"
        );
    }
    for (user, texts) in &faulty.sms {
        let clean_texts = clean.sms.get(user).cloned().unwrap_or_default();
        assert!(
            texts.iter().all(|t| clean_texts.contains(t)),
            "user {user}: SMS the fault-free run did not send: {texts:?} vs {clean_texts:?}"
        );
    }
    for (user, alerts) in &faulty.operator {
        let clean_alerts = clean.operator.get(user).cloned().unwrap_or_default();
        assert!(
            alerts.iter().all(|a| clean_alerts.contains(a)),
            "user {user}: operator alerts the fault-free run did not send"
        );
    }
    assert_eq!(
        clean.statuses.keys().collect::<Vec<_>>(),
        ["sent"],
        "the fault-free run sends everything: {:?}",
        clean.statuses
    );
    for status in faulty.statuses.keys() {
        assert!(
            status == "sent" || status == "unconfirmed",
            "{status}: {:?}",
            faulty.statuses
        );
    }
    let events: usize = faulty.stored.values().map(BTreeMap::len).sum();
    let sms: usize = faulty.sms.values().map(Vec::len).sum();
    let operator: usize = faulty.operator.values().map(Vec::len).sum();
    let lost: usize = faulty.unconfirmed.values().sum::<usize>();
    assert!(
        log.total_injected() > 100,
        "faults were injected: {:?}",
        log.injected()
    );
    println!(
        "fault run: {events} events stored once ({} requests, {} client retries of 5xx); {} AWS calls, {} faults injected {:?}, {} handler crashes; {sms} SMS and {operator} operator alerts, 0 doubles, 0 losses beyond the {lost} unconfirmed; ledger {:?} (fault-free: {} requests, {} retries)",
        faulty.requests,
        faulty.retries,
        log.calls(),
        log.total_injected(),
        log.injected(),
        log.crashes(),
        faulty.statuses,
        clean.requests,
        clean.retries,
    );
}
