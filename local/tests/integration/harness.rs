//! A fresh stack per test: its own tables, queues and topic in the shared moto (named after a
//! unique stack name), its own API port, and the real handlers polling them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_types::SdkConfig;
use cuba_core::model::clock::{Clock, SystemClock};
use cuba_core::model::domain::UserId;
use cuba_local::faults::FaultPlan;
use cuba_local::runner::{self, RunningStack, StackOptions};
use reqwest::StatusCode;
use serde_json::Value;

pub const TEST_SECRET: &str = "integration-test-secret-0123456789abcdef";
pub const TEST_ADMIN_SECRET: &str = "integration-admin-secret-0123456789abcdef";
/// The identity in [`TestStack::admin_token`], recorded as the editor of every change.
pub const ADMIN_SUB: &str = "ops@cube.test";

static NEXT: AtomicU64 = AtomicU64::new(1);

pub fn unique() -> u64 {
    NEXT.fetch_add(1, Ordering::SeqCst)
}

pub fn moto_endpoint() -> String {
    std::env::var("CUBA_TEST_MOTO_ENDPOINT")
        .expect("CUBA_TEST_MOTO_ENDPOINT is not set: run the integration tests with `make test`, which starts moto")
}

/// The moto kept for heavy runs (`make test` starts a second one), so thousands of requests
/// from one test do not starve the rest of the suite, nor the suite them. Falls back to the
/// shared moto.
pub fn heavy_moto_endpoint() -> String {
    std::env::var("CUBA_TEST_MOTO_HEAVY_ENDPOINT").unwrap_or_else(|_| moto_endpoint())
}

/// The heavy moto, one heavy test at a time: held for a test's whole body. moto's work runs on
/// one core per process (Python's lock), so two heavy tests beside each other each wait behind
/// the other's requests, past the SDK's attempt timeouts (a CI run failed so: a rules batch's calls
/// timed out, and a listing page was refused twenty times).
pub async fn heavy_moto_turn() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY_MOTO: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY_MOTO.lock().await
}

pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// How long the absence rule waits in tests instead of the seed's 15 minutes.
pub const ABSENCE_SECONDS: u64 = 3;
pub const ABSENCE_RULE: &str = "bill-paid-no-feedback";

/// The shipped default rules with the absence window shortened to [`ABSENCE_SECONDS`] and the
/// operator alerts published one by one, so the tests exercise the seed rules' conditions
/// without waiting 15 minutes, and read each alert's own message. (The shipped grouping of the
/// no-feedback rule is tested in `grouping.rs`, on [`rules_with_grouping`].)
fn test_rules_file() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| rules_with_absence_seconds(ABSENCE_SECONDS))
        .clone()
}

/// Writes the shipped default rules with the absence window set to `seconds`, each operator
/// alert published alone; returns the file.
pub fn rules_with_absence_seconds(seconds: u64) -> PathBuf {
    shipped_rules_with(&format!("absence-{seconds}"), |rule| {
        if rule["condition"]["type"] == "absence" {
            rule["condition"]["seconds"] = seconds.into();
        }
        if let Some(action) = rule["action"].as_object_mut() {
            action.remove("group_wait_seconds");
            action.remove("group_interval_seconds");
        }
    })
}

/// Writes the shipped default rules with the absence window set to [`ABSENCE_SECONDS`] and the
/// grouping rules' wait set to `wait_seconds` (their interval as shipped); returns the file.
pub fn rules_with_grouping(wait_seconds: u64) -> PathBuf {
    shipped_rules_with(&format!("grouping-{wait_seconds}"), |rule| {
        if rule["condition"]["type"] == "absence" {
            rule["condition"]["seconds"] = ABSENCE_SECONDS.into();
        }
        if rule["action"].get("group_wait_seconds").is_some() {
            rule["action"]["group_wait_seconds"] = wait_seconds.into();
        }
    })
}

fn shipped_rules_with(name: &str, mut change: impl FnMut(&mut Value)) -> PathBuf {
    let text = std::fs::read_to_string(repo_path("rules/default.json")).expect("default rules");
    let mut rules: Value = serde_json::from_str(&text).expect("default rules are JSON");
    for rule in rules["rules"].as_array_mut().expect("a rules array") {
        change(rule);
    }
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("rules-{name}-{}.json", std::process::id()));
    std::fs::write(&path, rules.to_string()).expect("write test rules");
    path
}

/// How the code SMS begins.
pub const VERIFICATION_SMS: &str = "Your Cube verification code is";

pub struct TestStack {
    pub stack: RunningStack,
    pub sdk: SdkConfig,
    pub http: reqwest::Client,
    pub base: String,
    pub endpoint: String,
}

pub struct Options {
    pub clock: Arc<dyn Clock>,
    pub poll_stream: bool,
    pub faults: Option<FaultPlan>,
    /// Rules other than the test rules (the default rules, absence shortened).
    pub rules_file: Option<PathBuf>,
    /// Runs against the moto kept for heavy runs ([`heavy_moto_endpoint`]).
    pub heavy: bool,
    /// Variables set in every function's environment over the template's.
    pub env: Vec<(&'static str, String)>,
    /// Meters every AWS request the handlers make.
    pub meter: Option<Arc<cuba_local::meter::Meter>>,
    /// Sent SMS get their stand-in carrier receipt (and become `delivered`).
    pub sms_receipts: bool,
    /// Records each function's AWS actions and resources.
    pub access: Option<Arc<cuba_local::access::AccessLog>>,
    /// The stores seeded at the start, as CloudFormation's create would (off: left unseeded).
    pub seed_stores: bool,
    /// The sweeper run on its schedule (off: only when a test runs it).
    pub schedule_sweeps: bool,
    /// In `oidc` mode, the gateway's JWT authorizers in front (off: the functions alone).
    pub gateway_checks_tokens: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: Arc::new(SystemClock),
            poll_stream: true,
            faults: None,
            rules_file: None,
            heavy: false,
            env: Vec::new(),
            meter: None,
            sms_receipts: false,
            access: None,
            seed_stores: true,
            schedule_sweeps: true,
            gateway_checks_tokens: true,
        }
    }
}

impl TestStack {
    pub async fn start() -> TestStack {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> TestStack {
        let endpoint = if options.heavy {
            heavy_moto_endpoint()
        } else {
            moto_endpoint()
        };
        let sdk = cuba_local::moto_sdk_config(&endpoint).await;
        let stack_name = format!("t{}-{}", std::process::id(), unique());
        let stack = runner::start(
            &sdk,
            StackOptions {
                template_path: repo_path("template.yaml"),
                stack_name,
                token_secret: TEST_SECRET.to_owned(),
                admin_token_secret: TEST_ADMIN_SECRET.to_owned(),
                rules_file: Some(options.rules_file.unwrap_or_else(test_rules_file)),
                http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                clock: options.clock,
                poll_stream: options.poll_stream,
                schedule_sweeps: options.schedule_sweeps,
                seed_stores: options.seed_stores,
                faults: options.faults,
                meter: options.meter,
                access: options.access,
                sms_receipts: options.sms_receipts,
                gateway_checks_tokens: options.gateway_checks_tokens,
                env: options
                    .env
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value))
                    .collect(),
            },
        )
        .await
        .expect("the local stack starts");
        let base = format!("http://{}", stack.http_addr);
        TestStack {
            stack,
            sdk,
            http: reqwest::Client::new(),
            base,
            endpoint,
        }
    }

    pub fn token(&self, user: u64) -> String {
        self.stack
            .verifier
            .issue(UserId(user), SystemClock.now(), 3600)
    }

    /// A JSON request as `user`; answers (status, JSON body).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        user: u64,
        body: &Value,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token(user))
            .json(body)
            .send()
            .await
            .expect("the API answers");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub fn admin_token(&self) -> String {
        self.stack
            .admin_verifier
            .issue(ADMIN_SUB, Some("admin"), SystemClock.now(), 3600)
    }

    /// An admin API request with a valid admin token; answers (status, JSON body).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.admin_token());
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("the admin API answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts `body` byte for byte as `user`; answers (status, JSON body).
    pub async fn post_text(&self, path: &str, user: u64, body: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.token(user))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("the API answers");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, user: u64, body: &Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, user, body).await
    }

    /// Posts and insists on 202 Accepted; returns the event id.
    pub async fn accept(&self, path: &str, user: u64, body: &Value) -> String {
        let (status, answer) = self.post(path, user, body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        assert_eq!(answer["status"], "accepted");
        answer["id"].as_str().expect("an id").to_owned()
    }

    /// Stores `phone` as `user`'s verified number straight into the profiles table, for tests
    /// whose subject is not verification.
    pub async fn verified_phone(&self, user: u64, phone: &str) {
        let profiles = cuba_aws::DynamoProfiles::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            self.stack
                .provisioned
                .table("ProfilesTable")
                .expect("profiles"),
        );
        let profile = cuba_core::model::domain::UserProfile {
            user: UserId(user),
            phone: cuba_core::model::domain::PhoneNumber::parse(phone).expect("a phone"),
            updated_at: SystemClock.now(),
            phone_verified: true,
            pending_code: None,
            codes_sent: Vec::new(),
            time_zone: None,
            locale: None,
            version: 0,
        };
        let saved = cuba_core::delivery::ports::ProfileStore::save(&profiles, &profile, 0).await;
        assert_eq!(saved, Ok(true), "user {user} had no profile");
    }

    /// Stores and verifies a phone for `user` (with the code texted to it, read from moto), unique
    /// across the whole test run so SMS can be told apart.
    pub async fn register_phone(&self, user: u64) -> String {
        // Unique within this run by the counter, and unlikely to repeat an earlier run's against
        // a long-lived moto thanks to the random prefix.
        let salt = uuid::Uuid::new_v4().as_u128() % 1000;
        let phone = format!("+1555{salt:03}{:04}", unique() % 10_000);
        let (status, body) = self
            .send(
                reqwest::Method::PUT,
                "/api/v1/user/",
                user,
                &serde_json::json!({"user": user, "phone": phone}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        assert_eq!(body["verified"], false, "{body}");
        let code = self.verification_code(&phone).await;
        let (status, body) = self
            .post(
                "/api/v1/user/verify",
                user,
                &serde_json::json!({"code": code}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["verified"], true, "{body}");
        phone
    }

    /// The last verification code texted to `phone`.
    pub async fn verification_code(&self, phone: &str) -> String {
        let texts = self.all_sms_to(phone).await;
        let text = texts
            .iter()
            .rev()
            .find(|t| t.starts_with(VERIFICATION_SMS))
            .expect("a verification SMS");
        text.split(|c: char| !c.is_ascii_digit())
            .find(|part| part.len() == 6)
            .expect("a six-digit code")
            .to_owned()
    }

    /// Every alert SMS moto has recorded for `phone` (verification codes left out).
    pub async fn sms_to(&self, phone: &str) -> Vec<String> {
        let mut texts = self.all_sms_to(phone).await;
        texts.retain(|t| !t.starts_with(VERIFICATION_SMS));
        texts
    }

    /// Every SMS moto has recorded for `phone`.
    pub async fn all_sms_to(&self, phone: &str) -> Vec<String> {
        // moto builds data.json from live objects without a lock; a stream record appended
        // while it serialises makes that one answer fail. Asking again is enough.
        let mut attempt = 0;
        let data: Value = loop {
            attempt += 1;
            let response = self
                .http
                .get(format!("{}/moto-api/data.json", self.endpoint))
                .send()
                .await
                .expect("moto answers");
            match response.json().await {
                Ok(data) => break data,
                Err(e) if attempt < 20 => {
                    eprintln!("moto data.json attempt {attempt} failed ({e}); retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("moto's data.json failed {attempt} times: {e}"),
            }
        };
        data["sns"]["SMS"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["phone_number"] == phone)
            .filter_map(|m| m["message"].as_str().map(str::to_owned))
            .collect()
    }

    /// Waits until the rules handler has finished `n` stream records.
    pub async fn wait_for_stream(&self, n: u64) {
        let progress = &self.stack.progress;
        self.wait_until(&format!("{n} stream records processed"), || {
            let done = progress.stream_records.load(Ordering::SeqCst) >= n;
            async move { done }
        })
        .await;
    }

    /// Waits until the rules handler has decided `n` absence checks (posted into the stream
    /// once ripe).
    pub async fn wait_for_checks(&self, n: u64) {
        let progress = &self.stack.progress;
        self.wait_until(&format!("{n} absence checks decided"), || {
            let done = progress.due_checks.load(Ordering::SeqCst) >= n;
            async move { done }
        })
        .await;
    }

    /// Waits until `check` holds, for as long as the stack keeps making progress (see
    /// [`Watch`]).
    pub async fn wait_until<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let mut watch = Watch::new(what);
        while !check().await {
            watch.still_worth_waiting(self, &[]).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The operator alerts delivered to the ops inbox once at least `n` have arrived, and any
    /// that follow within a second (so a double is seen): (body, message attributes).
    pub async fn expect_operator_alerts(&self, n: usize) -> Vec<(Value, Value)> {
        let mut watch = Watch::new(&format!("{n} operator alerts"));
        let mut alerts = Vec::new();
        while alerts.len() < n {
            alerts.extend(self.operator_alerts(Duration::from_secs(1)).await);
            watch
                .still_worth_waiting(self, &[alerts.len() as u64])
                .await;
        }
        alerts.extend(self.operator_alerts(Duration::from_secs(1)).await);
        alerts
    }

    /// How far the stack got: its handlers' progress, the ledger by status, and what waits on
    /// its queues. What a test that gives up prints, so a late run and a lost alert can be told
    /// apart.
    pub async fn report(&self) -> String {
        let progress = &self.stack.progress;
        let mut statuses = std::collections::BTreeMap::<String, usize>::new();
        for item in self.ledger().await {
            *statuses.entry(s(&item, "status")).or_default() += 1;
        }
        let mut queues = Vec::new();
        for (logical, url) in &self.stack.provisioned.queue_urls {
            queues.push(format!("{logical} {}", queue_depths(&self.sdk, url).await));
        }
        format!(
            "stream records processed {}, absence checks decided {}, delay-queue messages \
             handled {}; ledger {statuses:?}; queues (visible/in flight/delayed): {}",
            progress.stream_records.load(Ordering::SeqCst),
            progress.due_checks.load(Ordering::SeqCst),
            progress.queue_messages.load(Ordering::SeqCst),
            queues.join(", ")
        )
    }

    /// The alert ledger, through the adapter the functions use.
    pub fn alert_ledger(&self) -> cuba_aws::DynamoAlertLedger {
        cuba_aws::DynamoAlertLedger::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            self.stack
                .provisioned
                .table("AlertsTable")
                .expect("alerts table"),
        )
    }

    /// Every alert in the ledger (not the message-id links carrier receipts use, `~message#`).
    pub async fn ledger(&self) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        let table = self
            .stack
            .provisioned
            .table("AlertsTable")
            .expect("alerts table");
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .scan()
            .table_name(table)
            .consistent_read(true)
            .send()
            .await
            .expect("scan the ledger")
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|item| !s(item, "alert_id").starts_with('~'))
            .collect()
    }

    /// Ledger items of every rule but the missing-feedback one, whose alerts arrive a few
    /// seconds after each payment and so depend on how fast the test ran.
    pub async fn ledger_without_absence(
        &self,
    ) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        self.ledger()
            .await
            .into_iter()
            .filter(|item| {
                item.get("rule_id")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    != Some(ABSENCE_RULE)
            })
            .collect()
    }

    /// Ledger items of one rule.
    pub async fn ledger_for(
        &self,
        rule_id: &str,
    ) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        self.ledger()
            .await
            .into_iter()
            .filter(|item| {
                item.get("rule_id")
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
                    == Some(rule_id)
            })
            .collect()
    }

    /// Operator alerts delivered to the ops inbox within `wait`: (body, message attributes).
    pub async fn operator_alerts(&self, wait: Duration) -> Vec<(Value, Value)> {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let deadline = tokio::time::Instant::now() + wait;
        let mut alerts = Vec::new();
        while tokio::time::Instant::now() < deadline {
            let received = sqs
                .receive_message()
                .queue_url(&self.stack.ops_inbox_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive from the ops inbox");
            for message in received.messages.unwrap_or_default() {
                let body: Value = serde_json::from_str(message.body.as_deref().unwrap_or("null"))
                    .expect("JSON body");
                let attributes: serde_json::Map<String, Value> = message
                    .message_attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, Value::from(v.string_value.unwrap_or_default())))
                    .collect();
                alerts.push((body, Value::Object(attributes)));
                if let Some(handle) = message.receipt_handle {
                    sqs.delete_message()
                        .queue_url(&self.stack.ops_inbox_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("delete from the ops inbox");
                }
            }
        }
        alerts
    }
}

/// How long a wait goes on with nothing moving before it gives up. Moto on a loaded two-core
/// machine can be slow by minutes, but never still this long while work is in flight; a wait
/// that only counts wall-clock time fails a slow run as if it had lost something. Longer than
/// the delay queue's visibility timeout (90 s in the template): a check whose handling failed
/// under load (an SDK timeout) comes back only after it, as in Lambda, and a fresh clone's CI
/// gave up on one at 91 s.
const STALL: Duration = Duration::from_secs(150);
/// The longest any one wait may take, moving or not, so a run that livelocks still ends.
const LIMIT: Duration = Duration::from_secs(900);

/// A wait driven by progress: it gives up only when neither the stack's handlers nor the
/// caller's own measure of progress moved for [`STALL`] (or after [`LIMIT`]), and then panics
/// with the stack's [`TestStack::report`].
pub struct Watch {
    what: String,
    started: tokio::time::Instant,
    moved: tokio::time::Instant,
    mark: Vec<u64>,
}

impl Watch {
    pub fn new(what: &str) -> Watch {
        let now = tokio::time::Instant::now();
        Watch {
            what: what.to_owned(),
            started: now,
            moved: now,
            mark: Vec::new(),
        }
    }

    /// Panics if the wait has gone on too long; `progress` is the caller's own measure (items
    /// seen so far, say), anything that changes while the awaited thing is still coming.
    pub async fn still_worth_waiting(&mut self, t: &TestStack, progress: &[u64]) {
        let counters = &t.stack.progress;
        let mut mark = vec![
            counters.stream_records.load(Ordering::SeqCst),
            counters.due_checks.load(Ordering::SeqCst),
            counters.queue_messages.load(Ordering::SeqCst),
        ];
        mark.extend_from_slice(progress);
        let now = tokio::time::Instant::now();
        if self.mark != mark {
            self.mark = mark;
            self.moved = now;
        }
        if now - self.moved > STALL || now - self.started > LIMIT {
            panic!(
                "gave up waiting for {} after {:.0?} ({:.0?} without progress): {}",
                self.what,
                now - self.started,
                now - self.moved,
                t.report().await
            );
        }
    }
}

/// Messages on one of the stack's queues, visible or in flight.
pub async fn queue_messages(t: &TestStack, logical: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as Name;
    let url = t
        .stack
        .provisioned
        .queue_url(logical)
        .expect("a queue of the stack")
        .to_owned();
    let attributes = aws_sdk_sqs::Client::new(&t.sdk)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(Name::ApproximateNumberOfMessages)
        .attribute_names(Name::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .unwrap_or_default();
    [
        Name::ApproximateNumberOfMessages,
        Name::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .filter_map(|name| attributes.get(name).and_then(|n| n.parse::<usize>().ok()))
    .sum()
}

/// Visible, in-flight and delayed messages on a queue, as `v/i/d`.
pub async fn queue_depths(sdk: &SdkConfig, url: &str) -> String {
    use aws_sdk_sqs::types::QueueAttributeName as Name;
    let attributes = aws_sdk_sqs::Client::new(sdk)
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(Name::ApproximateNumberOfMessages)
        .attribute_names(Name::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(Name::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map(|out| out.attributes.unwrap_or_default())
        .unwrap_or_default();
    let count = |name: Name| {
        attributes
            .get(&name)
            .cloned()
            .unwrap_or_else(|| "?".to_owned())
    };
    format!(
        "{}/{}/{}",
        count(Name::ApproximateNumberOfMessages),
        count(Name::ApproximateNumberOfMessagesNotVisible),
        count(Name::ApproximateNumberOfMessagesDelayed)
    )
}

/// Runs `request` on each of `inputs` at once, released together by a barrier (real
/// concurrency against the stack and moto); answers in the order of `inputs`.
pub async fn released_together<I, F, Fut, T>(inputs: Vec<I>, request: F) -> Vec<T>
where
    F: Fn(I) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(inputs.len()));
    let requests = inputs.into_iter().map(|input| {
        let (barrier, request) = (barrier.clone(), request(input));
        async move {
            barrier.wait().await;
            request.await
        }
    });
    futures::future::join_all(requests).await
}

pub fn bill(amount: u64) -> Value {
    serde_json::json!({"noun": "bill", "verb": "paid", "properties": {"amount": amount, "type": "electricity"}})
}

/// A number attribute of an item (`None` when it is missing or not a whole number).
pub fn n(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

pub fn s(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}
