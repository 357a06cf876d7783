//! The runtime contract: each function's real binary (the host build of what `make package`
//! ships) runs under a Lambda Runtime API (`cuba_local::runtime_api`) against moto, is handed
//! the JSON Lambda sends (`local/tests/fixtures/lambda/`, in the shapes of AWS's documented
//! samples), and its answers and their effects in moto are checked. `make test` builds the
//! binaries before the tests run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

use crate::harness::{Options, TestStack, bill, unique};
use aws_lambda_events::cloudwatch_logs::LogData;
use cuba_core::delivery::alert::{Alert, AlertId, Claim, Lease};
use cuba_core::delivery::ports::AlertLedger;
use cuba_core::model::clock::{Clock, SystemClock};
use cuba_core::model::domain::{Millis, UserId};
use cuba_core::rules::{Action, RuleId, Severity};
use cuba_lambda::handlers::LogsEvent;
use cuba_lambda::settings::env;
use cuba_local::runner::{
    ABSENCE_FUNCTION, ADMIN_FUNCTION, INGEST_FUNCTION, LOCAL_KID, RECEIPTS_FUNCTION,
    RULES_FUNCTION, STORE_SEEDING_FUNCTION, SWEEPER_FUNCTION, USER_TOKEN_SECRET,
};
use cuba_local::runtime_api::{
    Answer, INVOCATION_TRACE, RuntimeApi, against_moto, fixture, http_request, response_json,
    stored_event_image,
};
use cuba_web::auth::{KeyRing, TokenClaims, TokenVerifier};

pub(crate) const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The host build of a function binary, next to this test's own target directory.
fn binary(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("debug")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: build the functions first (`cargo build --workspace --bins`; make test does)",
        path.display()
    );
    path
}

/// A function binary running under its own Runtime API, configured as the template says.
pub(crate) struct Function {
    pub(crate) api: RuntimeApi,
    child: Child,
    log: PathBuf,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Function {
    pub(crate) async fn start(t: &TestStack, logical_id: &str, bin: &str) -> Function {
        Self::start_with(t, logical_id, bin, |_| {}).await
    }

    pub(crate) async fn start_with(
        t: &TestStack,
        logical_id: &str,
        bin: &str,
        adjust: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Function {
        let mut vars = against_moto(&t.stack.function_env[logical_id], &t.endpoint);
        let template = cuba_local::template::Template::parse(
            &std::fs::read_to_string(crate::harness::repo_path("template.yaml"))
                .expect("the template"),
        )
        .expect("parsed");
        // As Lambda sets them from the function's LoggingConfig: JSON lines at INFO.
        vars.extend(template.lambda_log_environment(logical_id));
        adjust(&mut vars);
        let api = RuntimeApi::start(bin)
            .await
            .expect("the runtime API starts");
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{bin}-{}-{}.log",
            std::process::id(),
            unique()
        ));
        let child = api
            .spawn(&binary(bin), bin, &vars, &log)
            .expect("the binary starts");
        Function { api, child, log }
    }

    pub(crate) async fn ready(mut self) -> Function {
        if let Err(e) = self
            .api
            .wait_for_init(&mut self.child, Duration::from_secs(20))
            .await
        {
            panic!("{e}; its log:\n{}", self.output());
        }
        self
    }

    async fn invoke(&self, event: &Value) -> Value {
        match self.api.invoke(event, INVOKE_TIMEOUT).await {
            Ok(Answer::Response(v)) => v,
            Ok(Answer::Error(e)) => {
                panic!("the function reported an error: {e}\n{}", self.output())
            }
            Err(e) => panic!("{e}\n{}", self.output()),
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The CloudWatch Embedded Metric Format documents in a function's log.
fn metric_documents(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|doc| doc.get("_aws").is_some())
        .collect()
}

/// The sum of metric `name` over the documents whose dimensions include `dimensions`, each
/// document checked to declare the metric in namespace `Cuba` with those dimensions.
fn metric_total(docs: &[Value], name: &str, dimensions: &[(&str, &str)]) -> f64 {
    docs.iter()
        .filter(|doc| doc.get(name).is_some())
        .filter(|doc| dimensions.iter().all(|(k, v)| doc[*k] == *v))
        .map(|doc| {
            let declared = &doc["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(declared["Namespace"], "Cuba", "{doc}");
            let dims = declared["Dimensions"][0]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(
                dims.contains(&json!("Function")),
                "every metric names its function: {doc}"
            );
            for (k, _) in dimensions {
                assert!(dims.contains(&json!(k)), "{k} is a dimension: {doc}");
            }
            match &doc[name] {
                Value::Array(values) => values.iter().filter_map(Value::as_f64).sum(),
                v => v.as_f64().unwrap_or(0.0),
            }
        })
        .sum()
}

/// The X-Ray daemon Lambda runs beside a traced function, stood in for by a UDP socket: the
/// function is given its `address` as `AWS_XRAY_DAEMON_ADDRESS`.
struct StandInDaemon {
    socket: std::net::UdpSocket,
    address: String,
}

impl StandInDaemon {
    fn start() -> StandInDaemon {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP port for the daemon");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a timeout");
        let address = socket.local_addr().expect("its address").to_string();
        StandInDaemon { socket, address }
    }

    /// The next segment sent, checked to come as X-Ray's daemon protocol has it (a header line,
    /// then the segment's JSON).
    fn segment(&self, what: &str) -> Value {
        let mut datagram = vec![0u8; 65_536];
        let size = self
            .socket
            .recv(&mut datagram)
            .unwrap_or_else(|e| panic!("a segment for {what}: {e}"));
        let text = String::from_utf8_lossy(&datagram[..size]).into_owned();
        let (header, segment) = text
            .split_once('\n')
            .expect("a header line and the segment");
        assert_eq!(header, r#"{"format": "json", "version": 1}"#);
        serde_json::from_str(segment).expect("the segment is JSON")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_answers_api_gateway_http_api_requests() {
    let t = TestStack::start_with(Options {
        poll_stream: false,
        ..Options::default()
    })
    .await;
    let daemon = StandInDaemon::start();
    let ingest = Function::start_with(&t, INGEST_FUNCTION, "ingest", |vars| {
        vars.insert("AWS_XRAY_DAEMON_ADDRESS".into(), daemon.address.clone());
    })
    .await
    .ready()
    .await;
    let user = 8_101;

    let mut request = http_request(
        "POST",
        "/api/v1/event/",
        Some(&t.token(user)),
        Some(&bill(4200)),
    );
    // A client's own trace header: the invocation's trace is what the event is stored with.
    request["headers"]["x-amzn-trace-id"] =
        json!("Root=1-00000000-000000000000000000000000;Sampled=1");
    let accepted = ingest.invoke(&request).await;
    assert_eq!(accepted["statusCode"], 202, "{accepted}");
    assert!(
        accepted["headers"]["content-type"]
            .as_str()
            .is_some_and(|c| c.starts_with("application/json")),
        "{accepted}"
    );
    let body = response_json(&accepted);
    assert_eq!(body["status"], "accepted", "{body}");
    let id = body["id"].as_str().expect("an event id").to_owned();
    let (_, stored) = t
        .admin(
            reqwest::Method::GET,
            &format!("/admin/api/events?user={user}"),
            None,
        )
        .await;
    assert_eq!(
        stored["items"][0]["id"],
        json!(id),
        "stored in moto: {stored}"
    );
    assert_eq!(stored["items"][0]["properties"]["amount"], 4200);
    assert_eq!(
        stored["items"][0]["trace"],
        json!(INVOCATION_TRACE),
        "stored in the invocation's trace: {stored}"
    );
    // The request is a segment under Lambda's own segment of the invocation, its AWS calls
    // (the event's write among them) its subsegments.
    let segment = daemon.segment("the traced request");
    assert_eq!(
        segment["trace_id"], "1-5759e988-bd862e3fe1be46a994272793",
        "{segment}"
    );
    assert_eq!(segment["parent_id"], "53995c3f42cd8ad8", "{segment}");
    assert_eq!(segment["annotations"]["step"], "http_request", "{segment}");
    // The route it matched (its template: never the client's path), and how it was answered.
    assert_eq!(
        segment["annotations"]["route"], "/api/v1/event/",
        "{segment}"
    );
    assert_eq!(
        segment["http"],
        json!({"request": {"method": "POST"}, "response": {"status": 202}}),
        "{segment}"
    );
    assert_eq!(segment.get("fault"), None, "{segment}");
    assert_eq!(segment.get("error"), None, "{segment}");
    let services: Vec<&str> = segment["subsegments"]
        .as_array()
        .map(|calls| calls.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(services.contains(&"DynamoDB"), "{segment}");

    let batch = ingest
        .invoke(&http_request(
            "POST",
            "/api/v1/batch/",
            Some(&t.token(user)),
            Some(&json!({"events": [bill(1), {"noun": "bill"}]})),
        ))
        .await;
    let results = response_json(&batch);
    assert_eq!(
        (&results["accepted"], &results["rejected"]),
        (&json!(1), &json!(1)),
        "{batch}"
    );

    let invalid = ingest
        .invoke(&http_request(
            "POST",
            "/api/v1/event/",
            Some(&t.token(user)),
            Some(&json!({"noun": "bill", "verb": 7})),
        ))
        .await;
    assert_eq!(invalid["statusCode"], 400, "{invalid}");
    let error = response_json(&invalid);
    assert_eq!(error["error"]["field"], "verb", "{error}");

    let anonymous = ingest
        .invoke(&http_request(
            "POST",
            "/api/v1/event/",
            None,
            Some(&bill(1)),
        ))
        .await;
    assert_eq!(anonymous["statusCode"], 401, "{anonymous}");
    assert!(!ingest.output().contains("panicked"), "{}", ingest.output());

    // Logs are JSON, one object a line, the fields queryable by name (Logs Insights:
    // `filter fields.user = 8101`).
    let output = ingest.output();
    let logged: Vec<Value> = output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.get("level").is_some())
        .collect();
    assert!(
        logged.iter().any(|line| line["level"] == "INFO"
            && line["fields"]["message"] == "event received"
            && line["fields"]["user"] == "8101"
            && line["fields"]["event_id"] == json!(id)),
        "{output}"
    );
}

/// What must never reach a log line: a user's phone number, a verification code, a bearer
/// token. The ingest binary at DEBUG (the most `ApplicationLogLevel` allows: at TRACE the AWS
/// SDK logs response bodies, numbers and all) serves a phone's registration, a wrong code and
/// the right one; the rules binary at DEBUG texts that number.
#[tokio::test(flavor = "multi_thread")]
async fn phone_numbers_codes_and_tokens_never_reach_the_logs() {
    let t = TestStack::start_with(Options {
        poll_stream: false,
        ..Options::default()
    })
    .await;
    let debug = |vars: &mut BTreeMap<String, String>| {
        vars.insert("AWS_LAMBDA_LOG_LEVEL".into(), "DEBUG".into());
    };
    let ingest = Function::start_with(&t, INGEST_FUNCTION, "ingest", debug)
        .await
        .ready()
        .await;
    let user = 8_171;
    let token = t.token(user);
    let phone = format!("+1555{:07}", unique() % 10_000_000);
    let call = |method: &'static str, path: &'static str, body: Value| {
        let (ingest, token) = (&ingest, token.clone());
        async move {
            ingest
                .invoke(&http_request(method, path, Some(&token), Some(&body)))
                .await
        }
    };
    let put = call("PUT", "/api/v1/user/", json!({"phone": phone})).await;
    assert_eq!(put["statusCode"], 202, "{put}");
    let code = t.verification_code(&phone).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = call("POST", "/api/v1/user/verify", json!({"code": wrong})).await;
    assert_eq!(refused["statusCode"], 400, "{refused}");
    let verified = call("POST", "/api/v1/user/verify", json!({"code": code})).await;
    assert_eq!(verified["statusCode"], 200, "{verified}");
    let paid = call("POST", "/api/v1/event/", bill(2500)).await;
    assert_eq!(paid["statusCode"], 202, "{paid}");
    let id = response_json(&paid)["id"]
        .as_str()
        .expect("an event id")
        .to_owned();

    let table = t.stack.function_env[RULES_FUNCTION][env::EVENTS_TABLE].clone();
    let item = stored_event_image(&t.sdk, &table, &id)
        .await
        .expect("the event is stored");
    let mut batch = fixture("dynamodb-stream-batch.json");
    let records = batch["Records"].as_array_mut().expect("records");
    records.truncate(1);
    records[0]["eventSourceARN"] = json!(t.stack.stream_arn);
    records[0]["dynamodb"]["Keys"] = json!({"user": item["user"], "at": item["at"]});
    records[0]["dynamodb"]["NewImage"] = item;
    let rules = Function::start_with(&t, RULES_FUNCTION, "rules", debug)
        .await
        .ready()
        .await;
    assert_eq!(rules.invoke(&batch).await, json!({"batchItemFailures": []}));
    t.wait_until("the first-payment SMS", || async {
        !t.sms_to(&phone).await.is_empty()
    })
    .await;

    let digits = &phone[1..];
    for (function, output) in [("ingest", ingest.output()), ("rules", rules.output())] {
        assert!(output.lines().count() >= 3, "{function} logged: {output}");
        for (what, secret) in [
            ("phone number", digits),
            ("code", code.as_str()),
            ("token", token.as_str()),
        ] {
            let leaked: Vec<&str> = output
                .lines()
                .filter(|line| line.contains(secret))
                .collect();
            assert!(
                leaked.is_empty(),
                "the {what} reached the {function} log:\n{}",
                leaked.join("\n")
            );
        }
    }
}

/// A spent daily budget of code SMS refuses the next user's code `429 sms_limit` and counts
/// `CodeBudgetSpent`, the metric the template's alarm tells the operators by.
#[tokio::test(flavor = "multi_thread")]
async fn a_spent_code_budget_is_counted_for_the_operators_alarm() {
    let t = TestStack::start_with(Options {
        poll_stream: false,
        ..Options::default()
    })
    .await;
    let ingest = Function::start_with(&t, INGEST_FUNCTION, "ingest", |vars| {
        vars.insert(env::SMS_CODE_DAILY_BUDGET.into(), "1".into());
    })
    .await
    .ready()
    .await;
    let ask = |user: u64, phone: &str| {
        http_request(
            "PUT",
            "/api/v1/user/",
            Some(&t.token(user)),
            Some(&json!({ "phone": phone })),
        )
    };
    let base = 8_300 + unique() % 1_000;
    let first = ingest.invoke(&ask(base, "+15557000001")).await;
    assert_eq!(first["statusCode"], 202, "{first}");
    let refused = ingest.invoke(&ask(base + 1, "+15557000002")).await;
    assert_eq!(refused["statusCode"], 429, "{refused}");
    assert_eq!(response_json(&refused)["error"]["code"], "sms_limit");
    let metrics = metric_documents(&ingest.output());
    let name = cuba_web::ingest::metric_names::CODE_BUDGET_SPENT;
    assert_eq!(metric_total(&metrics, name, &[]), 1.0, "{metrics:?}");
    let template = cuba_local::template::Template::parse(
        &std::fs::read_to_string(crate::harness::repo_path("template.yaml")).expect("the template"),
    )
    .expect("parsed");
    let alarm = template
        .resource("CodeBudgetSpentAlarm")
        .expect("the alarm");
    assert_eq!(
        alarm.properties.get("MetricName").and_then(|m| m.as_str()),
        Some(name)
    );
}

/// The token keys come from Secrets Manager (moto's, created from the template), and a
/// rotation takes effect within the cache time with no restart: the new key's tokens are
/// accepted, the old key's still are while it stays in the ring, and not once it is dropped.
#[tokio::test(flavor = "multi_thread")]
async fn ingest_reads_its_token_keys_from_secrets_manager_and_follows_a_rotation() {
    let t = TestStack::start_with(Options {
        poll_stream: false,
        ..Options::default()
    })
    .await;
    assert!(
        !t.stack.function_env[INGEST_FUNCTION].contains_key(env::TOKEN_SECRET),
        "the secret itself is not in the function's environment"
    );
    let ingest = Function::start_with(&t, INGEST_FUNCTION, "ingest", |vars| {
        vars.insert(env::SECRETS_CACHE_SECONDS.into(), "1".into());
    })
    .await
    .ready()
    .await;
    let user = 8_151;
    let old = t.token(user);
    let new_secret = "rotated-rotated-rotated-rotated-rotated-42";
    let new = TokenVerifier::with_claims(
        &KeyRing::parse(&json!({"kid": "k2", "secret": new_secret}).to_string()).expect("a ring"),
        TokenClaims::default(),
    )
    .issue(UserId(user), SystemClock.now(), 600);
    let status = |token: String| {
        let ingest = &ingest;
        async move {
            ingest
                .invoke(&http_request(
                    "POST",
                    "/api/v1/event/",
                    Some(&token),
                    Some(&bill(1)),
                ))
                .await["statusCode"]
                .clone()
        }
    };
    assert_eq!(status(old.clone()).await, 202);
    assert_eq!(status(new.clone()).await, 401, "k2 is not in the ring yet");

    let arn = t.stack.provisioned.secret_arns[USER_TOKEN_SECRET].clone();
    let secrets = aws_sdk_secretsmanager::Client::new(&t.sdk);
    let put = |value: Value| {
        let secrets = secrets.clone();
        let arn = arn.clone();
        async move {
            secrets
                .put_secret_value()
                .secret_id(arn)
                .secret_string(value.to_string())
                .send()
                .await
                .expect("the secret is updated");
        }
    };
    put(json!({"keys": [{"kid": "k2", "secret": new_secret},
        {"kid": LOCAL_KID, "secret": crate::harness::TEST_SECRET}]}))
    .await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(status(new.clone()).await, 202, "k2 signs now");
    assert_eq!(status(old.clone()).await, 202, "the old key still verifies");

    put(json!({"kid": "k2", "secret": new_secret})).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(status(new).await, 202);
    assert_eq!(
        status(old).await,
        401,
        "the dropped key's tokens are refused"
    );
    assert!(
        !ingest.output().contains(new_secret),
        "the secret never reaches the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_serves_its_api_and_ui_through_api_gateway() {
    let t = TestStack::start_with(Options {
        poll_stream: false,
        ..Options::default()
    })
    .await;
    let admin = Function::start(&t, ADMIN_FUNCTION, "admin")
        .await
        .ready()
        .await;

    let rules = admin
        .invoke(&http_request(
            "GET",
            "/admin/api/rules",
            Some(&t.admin_token()),
            None,
        ))
        .await;
    assert_eq!(rules["statusCode"], 200, "{rules}");
    assert_eq!(
        response_json(&rules)["rules"].as_array().map(Vec::len),
        Some(3)
    );
    let forbidden = admin
        .invoke(&http_request(
            "GET",
            "/admin/api/rules",
            Some(&t.token(1)),
            None,
        ))
        .await;
    assert_eq!(forbidden["statusCode"], 401, "{forbidden}");

    for (path, content_type) in [
        ("/admin/", "text/html; charset=utf-8"),
        ("/admin/assets/builder.js", "text/javascript; charset=utf-8"),
    ] {
        let page = admin.invoke(&http_request("GET", path, None, None)).await;
        assert_eq!(page["statusCode"], 200, "{path}: {page}");
        assert_eq!(page["headers"]["content-type"], content_type, "{path}");
        assert!(
            page["headers"]["content-security-policy"]
                .as_str()
                .is_some_and(|csp| csp.contains("script-src 'self'")),
            "{path}: {page}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_consumes_a_dynamodb_stream_batch() {
    let t = TestStack::start_with(Options {
        poll_stream: false,
        ..Options::default()
    })
    .await;
    let user = 8_201;
    let phone = t.register_phone(user).await;
    let id = t.accept("/api/v1/event/", user, &bill(3100)).await;
    let table = t.stack.function_env[RULES_FUNCTION][env::EVENTS_TABLE].clone();
    let item = stored_event_image(&t.sdk, &table, &id)
        .await
        .expect("the event is stored");
    // As if the payment's request had been traced and sampled: the rules function sends the
    // record's work to the X-Ray daemon as a segment of that trace.
    let mut item = item;
    item["trace"] = json!({"S": INVOCATION_TRACE});
    let daemon = StandInDaemon::start();
    let keys = json!({"user": item["user"], "at": item["at"]});
    let mut changed = item.clone();
    changed["invalid"] = json!({"BOOL": true});

    let mut batch = fixture("dynamodb-stream-batch.json");
    let stream_arn = t.stack.stream_arn.clone();
    for record in batch["Records"].as_array_mut().expect("records") {
        record["eventSourceARN"] = json!(stream_arn);
        record["dynamodb"]["Keys"] = keys.clone();
        match record["eventName"].as_str() {
            Some("INSERT") => record["dynamodb"]["NewImage"] = item.clone(),
            Some("MODIFY") => {
                record["dynamodb"]["OldImage"] = item.clone();
                record["dynamodb"]["NewImage"] = changed.clone();
            }
            _ => record["dynamodb"]["OldImage"] = item.clone(),
        }
    }
    let rules = Function::start_with(&t, RULES_FUNCTION, "rules", |vars| {
        vars.insert("AWS_XRAY_DAEMON_ADDRESS".into(), daemon.address.clone());
    })
    .await
    .ready()
    .await;
    let answer = rules.invoke(&batch).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": []}),
        "{}",
        rules.output()
    );
    let segment = daemon.segment("the traced record");
    assert_eq!(
        segment["trace_id"], "1-5759e988-bd862e3fe1be46a994272793",
        "{segment}"
    );
    assert_eq!(segment["parent_id"], "53995c3f42cd8ad8", "{segment}");
    assert_eq!(segment["annotations"]["event_id"], json!(id), "{segment}");
    assert_eq!(segment["annotations"]["step"], "stream_record", "{segment}");
    assert!(
        segment["end_time"].as_f64() >= segment["start_time"].as_f64(),
        "{segment}"
    );
    // Its AWS calls are subsegments: the claims and the ledger in DynamoDB, the SMS's publish.
    let calls: Vec<(String, String)> = segment["subsegments"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .map(|call| {
                    (
                        call["name"].as_str().unwrap_or_default().to_owned(),
                        call["aws"]["operation"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(
        calls.iter().any(|(service, _)| service == "DynamoDB"),
        "{calls:?}"
    );
    assert!(
        calls.contains(&("SNS".to_owned(), "Publish".to_owned())),
        "{calls:?}"
    );
    t.wait_until("the first-payment SMS", || async {
        t.sms_to(&phone)
            .await
            .iter()
            .any(|m| m.starts_with("Thanks for your first bill payment on Cube: 3100"))
    })
    .await;
    // The MODIFY and REMOVE records are not new events: the same batch again sends nothing new.
    let again = rules.invoke(&batch).await;
    assert_eq!(again, json!({"batchItemFailures": []}));
    assert_eq!(t.sms_to(&phone).await.len(), 1, "exactly once");

    let mut broken = fixture("dynamodb-stream-batch.json");
    let records = broken["Records"].as_array_mut().expect("records");
    records.truncate(1);
    records[0]["dynamodb"]["NewImage"] = json!({"user": {"S": "not a user id"}});
    let answer = rules.invoke(&broken).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "1405400000000002063282832"}]}),
        "an unreadable image is reported for retry, not dropped"
    );

    // Invoked by hand to redrive (`aws lambda invoke --payload '{"redrive": {}}'`): the failure
    // queue is empty here, and the report says so.
    let redrive = rules.invoke(&json!({"redrive": {}})).await;
    assert_eq!(redrive["messages"], 0, "{redrive}");
    assert_eq!(redrive["redriven"], 0, "{redrive}");

    // And to run the smoke test, as a deployment's pre-traffic check does with the new version:
    // its alert recorded and handed to no one, the same run passing again.
    for _ in 0..2 {
        let report = rules
            .invoke(&json!({"smoke_test": {"run": "runtime-contract"}}))
            .await;
        assert_eq!(report["passed"], true, "{report}");
        assert_eq!(report["alert_status"], "sent", "{report}");
    }

    let metrics = metric_documents(&rules.output());
    assert_eq!(
        metric_total(&metrics, "RulesFired", &[("Rule", "first-bill-payment")]),
        1.0,
        "{metrics:?}"
    );
    assert_eq!(
        metric_total(
            &metrics,
            "Alerts",
            &[("Action", "sms_user"), ("Status", "sent")]
        ),
        1.0
    );
    assert_eq!(
        metric_total(&metrics, "Alerts", &[("Status", "already_settled")]),
        1.0
    );
    assert_eq!(metric_total(&metrics, "EventsValid", &[]), 2.0);
    assert_eq!(metric_total(&metrics, "StreamFailures", &[]), 1.0);
    assert!(
        metrics
            .iter()
            .any(|d| d["StreamAge"].is_array() || d["StreamAge"].is_number()),
        "{metrics:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn absence_check_consumes_an_sqs_batch() {
    // Without the runner's stream consumer nothing else schedules (or runs) this check.
    let t = TestStack::start_with(Options {
        poll_stream: false,
        ..Options::default()
    })
    .await;
    let user = 8_301;
    let id = t.accept("/api/v1/event/", user, &bill(10)).await;
    let (_, events) = t
        .admin(
            reqwest::Method::GET,
            &format!("/admin/api/events?user={user}"),
            None,
        )
        .await;
    let received_at = events["items"][0]["received_at"]
        .as_u64()
        .expect("received_at");
    let check = json!({"rule_id": crate::harness::ABSENCE_RULE, "user": user, "event_id": id,
        "received_at": received_at, "due_at": received_at + 1});
    let mut batch = fixture("sqs-batch.json");
    let mut broken = batch["Records"][0].clone();
    batch["Records"][0]["body"] = json!(check.to_string());
    broken["messageId"] = json!("bad-message");
    broken["body"] = json!("{\"rule_id\": 7}");
    batch["Records"]
        .as_array_mut()
        .expect("records")
        .push(broken);

    let absence = Function::start(&t, ABSENCE_FUNCTION, "absence-check")
        .await
        .ready()
        .await;
    // Ripe: due a millisecond after the payment, and the local settling second has passed.
    let ripe = received_at + 1 + 1_000;
    while SystemClock.now().0 <= ripe {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = absence.invoke(&batch).await;
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "bad-message"}]}),
        "{}",
        absence.output()
    );
    let metrics = metric_documents(&absence.output());
    assert_eq!(
        metric_total(&metrics, "AbsenceChecks", &[("Outcome", "posted")]),
        1.0,
        "{metrics:?}"
    );
    assert_eq!(metric_total(&metrics, "AbsenceCheckFailures", &[]), 1.0);
    // Posted beside the user's events, for the rules function to decide from the stream.
    let posted = aws_sdk_dynamodb::Client::new(&t.sdk)
        .get_item()
        .table_name(
            t.stack
                .provisioned
                .table("EventsTable")
                .expect("events table"),
        )
        .key("user", AttributeValue::N(user.to_string()))
        .key(
            "at",
            AttributeValue::S(format!("#check#{}#{id}", crate::harness::ABSENCE_RULE)),
        )
        .send()
        .await
        .expect("get the posted check")
        .item
        .expect("the check is in the events table");
    let Some(AttributeValue::M(due_check)) = posted.get("due_check") else {
        panic!("a posted check: {posted:?}");
    };
    assert_eq!(due_check.get("event_id"), Some(&AttributeValue::S(id)));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweeper_runs_on_a_scheduled_event() {
    // Only the binary sweeps here: the runner's own sweeps would take the stuck alert below.
    let t = TestStack::start_with(Options {
        poll_stream: false,
        schedule_sweeps: false,
        ..Options::default()
    })
    .await;
    let daemon = StandInDaemon::start();
    let sweeper = Function::start_with(&t, SWEEPER_FUNCTION, "sweeper", |vars| {
        vars.insert("AWS_XRAY_DAEMON_ADDRESS".into(), daemon.address.clone());
    })
    .await
    .ready()
    .await;
    // The account's SMS delivery status logs are seen to by the first sweep, not the cold
    // start, and once per process.
    let seen_to = |log: &str| log.matches("SMS delivery status logs").count();
    assert_eq!(seen_to(&sweeper.output()), 0, "{}", sweeper.output());
    let report = sweeper.invoke(&fixture("scheduled-event.json")).await;
    assert!(report.is_object(), "{report}");
    assert_eq!(report["stuck"], 0, "{report}");
    assert_eq!(seen_to(&sweeper.output()), 1, "{}", sweeper.output());
    sweeper.invoke(&fixture("scheduled-event.json")).await;
    assert_eq!(seen_to(&sweeper.output()), 1, "{}", sweeper.output());

    // An operator alert of a traced request, claimed a minute ago by a worker that died: the
    // sweeper sends it, in a segment of that request's trace.
    let ledger = t.alert_ledger();
    let rule_id = RuleId::parse("missing-feedback").expect("a rule id");
    let user = UserId(8_501);
    let now = SystemClock.now();
    let alert = Alert {
        trace: Some(INVOCATION_TRACE.parse().expect("a trace header")),
        id: AlertId::first(&rule_id, user),
        rule_id,
        user,
        event_ids: Vec::new(),
        action: Action::NotifyOperator {
            severity: Severity::Warning,
            grouping: None,
        },
        text: "No feedback after a bill payment.".into(),
        translations: Default::default(),
        fired_at: Millis(now.0 - 60_000),
    };
    let lease = Lease::new(Millis(now.0 - 30_000));
    assert_eq!(
        ledger.claim(&alert, Millis(now.0 - 60_000), &lease).await,
        Ok(Claim::Claimed {
            lease_until: lease.until
        })
    );
    let report = sweeper.invoke(&fixture("scheduled-event.json")).await;
    assert_eq!(
        (&report["stuck"], &report["settled"]),
        (&json!(1), &json!(1)),
        "{report}"
    );
    let segment = daemon.segment("the traced alert");
    assert_eq!(
        segment["trace_id"], "1-5759e988-bd862e3fe1be46a994272793",
        "{segment}"
    );
    assert_eq!(segment["parent_id"], "53995c3f42cd8ad8", "{segment}");
    assert_eq!(segment["annotations"]["step"], "alert_redrive", "{segment}");
    assert_eq!(
        segment["annotations"]["rule_id"], "missing-feedback",
        "{segment}"
    );
    assert_eq!(segment["annotations"]["user"], "8501", "{segment}");
    let calls: Vec<(&str, &str)> = segment["subsegments"]
        .as_array()
        .map(|calls| {
            calls
                .iter()
                .filter_map(|c| Some((c["name"].as_str()?, c["aws"]["operation"].as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    assert!(calls.contains(&("SNS", "Publish")), "{segment}");
    assert!(
        calls.iter().any(|(service, _)| *service == "DynamoDB"),
        "{segment}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_receipts_function_reads_a_cloudwatch_logs_subscription_batch() {
    let t = TestStack::start().await;
    t.register_phone(41).await;
    t.accept("/api/v1/event/", 41, &bill(3000)).await;
    t.wait_for_stream(1).await;
    let sent = t.ledger_for("first-bill-payment").await;
    let message_id = crate::harness::s(&sent[0], "message_id");
    assert!(!message_id.is_empty(), "{sent:?}");

    // Logs' documented sample (gzip and base64 decoded by the event type), its data replaced
    // by SNS's documented success record for this SMS, and encoded again.
    let mut event: LogsEvent =
        serde_json::from_str(&fixture("cloudwatch-logs-event.json").to_string())
            .expect("a Logs event");
    let mut record: Value = serde_json::from_str(include_str!(
        "../../../shared/core/tests/fixtures/sms-delivery-success.json"
    ))
    .expect("the documented record");
    record["notification"]["messageId"] = json!(message_id);
    let data = &mut event.aws_logs.data;
    data.log_group = "sns/us-east-1/123456789012/DirectPublishToPhoneNumber".into();
    data.log_events.truncate(1);
    data.log_events[0].message = record.to_string();
    // A line that is no record is skipped, not retried.
    let mut stray = data.log_events[0].clone();
    stray.message = "not a delivery status record".into();
    data.log_events.push(stray);
    let payload = logs_payload(&event.aws_logs.data);

    let receipts = Function::start(&t, RECEIPTS_FUNCTION, "receipts")
        .await
        .ready()
        .await;
    let report = receipts.invoke(&payload).await;
    assert_eq!(
        report,
        json!({"applied": 1, "kept": 0, "unreadable": 1}),
        "{report}"
    );
    let settled = t.ledger_for("first-bill-payment").await;
    assert_eq!(crate::harness::s(&settled[0], "status"), "delivered");
    let again = receipts.invoke(&payload).await;
    assert_eq!(
        again["applied"], 1,
        "a retried batch applies again, to the same end"
    );
}

/// CloudFormation's side of a custom resource: the pre-signed URL its handler PUTs the answer
/// to, here a local server keeping each body with its content type.
struct ResponseBucket {
    url: String,
    answers: tokio::sync::mpsc::UnboundedReceiver<(String, Option<String>, Value)>,
}

impl ResponseBucket {
    async fn start() -> ResponseBucket {
        use axum::extract::Request;
        let (tx, answers) = tokio::sync::mpsc::unbounded_channel();
        let app = axum::Router::new().fallback(move |request: Request| {
            let tx = tx.clone();
            async move {
                let method = request.method().to_string();
                let uri = request.uri().to_string();
                let content_type = request
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default();
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let _ = tx.send((format!("{method} {uri}"), content_type, body));
                ""
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let url = format!(
            "http://{}/cr-response-key?sig-params=sig-values",
            listener.local_addr().expect("its address")
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        ResponseBucket { url, answers }
    }

    async fn next(&mut self) -> (String, Option<String>, Value) {
        tokio::time::timeout(INVOKE_TIMEOUT, self.answers.recv())
            .await
            .expect("an answer within the timeout")
            .expect("the bucket is up")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn store_seeding_seeds_a_new_stacks_stores_and_answers_cloudformation() {
    let t = TestStack::start_with(Options {
        poll_stream: false,
        seed_stores: false,
        ..Options::default()
    })
    .await;
    async fn rules(t: &TestStack) -> Option<usize> {
        let (status, body) = t
            .admin(reqwest::Method::GET, "/admin/api/rules", None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["rules"].as_array().map(Vec::len)
    }
    assert_eq!(
        rules(&t).await,
        Some(0),
        "a new stack's stores hold nothing"
    );
    let mut bucket = ResponseBucket::start().await;
    let mut create = fixture("cloudformation-custom-resource-create.json");
    create["ResponseURL"] = bucket.url.clone().into();
    create["ResourceType"] = "Custom::StoreSeeding".into();
    create["LogicalResourceId"] = "StoreSeeding".into();
    let seeding = Function::start(&t, STORE_SEEDING_FUNCTION, "store-seeding")
        .await
        .ready()
        .await;
    let env = &t.stack.function_env[STORE_SEEDING_FUNCTION];
    let physical_id = format!(
        "seeded:{}:{}",
        env[env::RULES_TABLE],
        env[env::SCHEMAS_TABLE]
    );

    // Create, then a retried create: both succeed, the second writes nothing.
    for run in ["first", "second"] {
        seeding.invoke(&create).await;
        let (request, content_type, answer) = bucket.next().await;
        assert_eq!(
            request, "PUT /cr-response-key?sig-params=sig-values",
            "{run}"
        );
        assert_eq!(content_type.as_deref(), Some(""), "signed without one");
        assert_eq!(answer["Status"], "SUCCESS", "{run}: {answer}");
        assert_eq!(answer["RequestId"], create["RequestId"]);
        assert_eq!(answer["StackId"], create["StackId"]);
        assert_eq!(answer["LogicalResourceId"], "StoreSeeding");
        assert_eq!(answer["PhysicalResourceId"], physical_id.as_str());
        assert_eq!(rules(&t).await, Some(3), "{run}: the seed rules");
    }
    let (status, schemas) = t
        .admin(reqwest::Method::GET, "/admin/api/schemas", None)
        .await;
    assert_eq!(status, 200);
    assert!(
        schemas["schemas"].as_array().is_some_and(|s| !s.is_empty()),
        "the shipped schemas: {schemas}"
    );
    let log = seeding.output();
    assert_eq!(
        log.matches("rule store seeded with the initial rules")
            .count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("rule store was seeded before").count(),
        1,
        "{log}"
    );

    // A store it cannot reach: CloudFormation hears FAILED and why, and does not wait an hour.
    let broken = Function::start_with(&t, STORE_SEEDING_FUNCTION, "store-seeding", |vars| {
        vars.insert(env::SCHEMAS_TABLE.to_owned(), "no-such-table".to_owned());
    })
    .await
    .ready()
    .await;
    broken.invoke(&create).await;
    let (_, _, answer) = bucket.next().await;
    assert_eq!(answer["Status"], "FAILED", "{answer}");
    let reason = answer["Reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("cannot seed the schema store"),
        "{reason}"
    );
}

/// What Logs sends a subscribed function: the batch as JSON, gzipped, base64 with padding. (Not
/// `LogsEvent`'s own serialisation, which leaves the padding out, so its own deserialisation, like
/// Lambda's, refuses a third of what it writes.)
fn logs_payload(data: &LogData) -> Value {
    use base64::Engine;
    use std::io::Write;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&serde_json::to_vec(data).expect("a batch"))
        .expect("gzipped");
    let data = base64::engine::general_purpose::STANDARD.encode(gzip.finish().expect("gzipped"));
    json!({"awslogs": {"data": data}})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_missing_its_configuration_fails_init_with_one_clear_line() {
    let t = TestStack::start().await;
    // Two variables each: one cold start names every problem, not the first one found.
    for (logical_id, bin, variables) in [
        (
            INGEST_FUNCTION,
            "ingest",
            [env::EVENTS_TABLE, env::PROFILES_TABLE],
        ),
        (
            RULES_FUNCTION,
            "rules",
            [env::ALERTS_TABLE, env::ABSENCE_QUEUE_URL],
        ),
        (
            ABSENCE_FUNCTION,
            "absence-check",
            [env::ABSENCE_QUEUE_URL, env::EVENTS_TABLE],
        ),
        (
            ADMIN_FUNCTION,
            "admin",
            [env::ADMIN_TOKEN_SECRET_ARN, env::ERRORS_TABLE],
        ),
        (
            SWEEPER_FUNCTION,
            "sweeper",
            [env::ALERTS_TABLE, env::OPERATOR_TOPIC_ARN],
        ),
        (
            STORE_SEEDING_FUNCTION,
            "store-seeding",
            [env::RULES_TABLE, env::SCHEMAS_TABLE],
        ),
    ] {
        let function = Function::start_with(&t, logical_id, bin, |vars| {
            for variable in variables {
                vars.remove(variable);
            }
        })
        .await;
        fails_init_naming(function, bin, &variables);
    }
    // The AWS calls' trust store is read first, before the SDK: a value it does not know ends
    // the cold start the same way.
    let function = Function::start_with(&t, RULES_FUNCTION, "rules", |vars| {
        vars.insert(env::AWS_TRUST_STORE.to_owned(), "pinned".to_owned());
    })
    .await;
    fails_init_naming(function, "rules", &[env::AWS_TRUST_STORE]);
}

/// The function exits with status 1 and one error line naming each of `variables`, no panic,
/// before it ever asks for work.
fn fails_init_naming(mut function: Function, bin: &str, variables: &[&str]) {
    let status = wait_for_exit(&mut function.child, Duration::from_secs(20));
    let output = function.output();
    assert_eq!(status, Some(1), "{bin} exits with status 1:\n{output}");
    let lines: Vec<&str> = output.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(lines.len(), 1, "{bin}: one error line:\n{output}");
    for variable in variables {
        assert!(lines[0].contains(variable), "{bin}: {}", lines[0]);
    }
    assert!(!output.contains("panicked"), "{bin}:\n{output}");
    assert!(function.api.first_poll().is_none(), "{bin} never polled");
}

fn wait_for_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}
