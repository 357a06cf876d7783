//! A Lambda Runtime API (the `2018-06-01` interface a function's `bootstrap` polls), for running
//! the real function binaries outside AWS: the runtime-contract tests and the cold-start bench
//! start a binary with `AWS_LAMBDA_RUNTIME_API` pointing here, hand it events, and read back
//! its answers, its errors and when it first asked for work.
//!
//! Only what the Rust runtime uses is served: `invocation/next`, `{id}/response`, `{id}/error`
//! and `init/error`, with the headers Lambda sends (request id, deadline, function ARN, trace id).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

/// What a function answered to one invocation.
#[derive(Debug, Clone)]
pub enum Answer {
    Response(Value),
    /// The runtime's error report: `{"errorType", "errorMessage"}`.
    Error(Value),
}

struct Pending {
    request_id: String,
    event: Bytes,
    deadline: Duration,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<VecDeque<Pending>>,
    arrived: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    first_poll: Mutex<Option<Instant>>,
    init_error: Mutex<Option<Value>>,
    function_arn: String,
}

/// A running Runtime API on a free local port.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const PREFIX: &str = "/2018-06-01/runtime";

impl RuntimeApi {
    pub async fn start(function_name: &str) -> Result<RuntimeApi> {
        let shared = Arc::new(Shared {
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}"),
            ..Shared::default()
        });
        let router = Router::new()
            .route(&format!("{PREFIX}/invocation/next"), get(next))
            .route(
                &format!("{PREFIX}/invocation/{{id}}/response"),
                post(response),
            )
            .route(&format!("{PREFIX}/invocation/{{id}}/error"), post(error))
            .route(&format!("{PREFIX}/init/error"), post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "the runtime API stopped");
            }
        });
        Ok(RuntimeApi { addr, shared, task })
    }

    /// Hands `event` to the function and waits for its answer.
    pub async fn invoke(&self, event: &Value, timeout: Duration) -> Result<Answer> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (tell, answer) = oneshot::channel();
        lock(&self.shared.waiting).insert(request_id.clone(), tell);
        lock(&self.shared.queue).push_back(Pending {
            request_id: request_id.clone(),
            event: Bytes::from(serde_json::to_vec(event)?),
            deadline: timeout,
        });
        self.shared.arrived.notify_one();
        tokio::time::timeout(timeout, answer)
            .await
            .map_err(|_| anyhow!("no answer to invocation {request_id} within {timeout:?}"))?
            .map_err(|_| anyhow!("invocation {request_id} was dropped"))
    }

    /// When the function first asked for an invocation: the end of its init.
    pub fn first_poll(&self) -> Option<Instant> {
        *lock(&self.shared.first_poll)
    }

    pub fn init_error(&self) -> Option<Value> {
        lock(&self.shared.init_error).clone()
    }

    /// Waits until the function polls for work (its init is done) or `child` exits.
    pub async fn wait_for_init(&self, child: &mut Child, timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = self.first_poll() {
                return Ok(at);
            }
            if let Some(status) = child.try_wait()? {
                return Err(anyhow!("the function exited during init ({status})"));
            }
            if Instant::now() > deadline {
                return Err(anyhow!(
                    "the function did not finish its init within {timeout:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Starts `binary` as Lambda would, against this API: the runtime's variables, then `env`
    /// (the function's configuration and AWS endpoint). Output goes to `log`.
    pub fn spawn(
        &self,
        binary: &Path,
        function_name: &str,
        env: &std::collections::BTreeMap<String, String>,
        log: &Path,
    ) -> Result<Child> {
        let out =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", self.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/25/[$LATEST]local")
            .env("AWS_REGION", "us-east-1")
            .envs(env)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))
    }
}

use crate::lock;

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    lock(&shared.first_poll).get_or_insert_with(Instant::now);
    let pending = loop {
        let notified = shared.arrived.notified();
        if let Some(p) = lock(&shared.queue).pop_front() {
            break p;
        }
        notified.await;
    };
    let deadline = SystemTime::now()
        .checked_add(pending.deadline)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", pending.request_id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        shared.function_arn.clone(),
    );
    set("lambda-runtime-trace-id", INVOCATION_TRACE.to_owned());
    set("content-type", "application/json".to_owned());
    (StatusCode::OK, headers, pending.event).into_response()
}

fn settle(shared: &Shared, id: &str, answer: Answer) -> StatusCode {
    match lock(&shared.waiting).remove(id) {
        Some(tell) => {
            let _ = tell.send(answer);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

fn json_or_text(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    settle(&shared, &id, Answer::Response(json_or_text(&body)))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    settle(&shared, &id, Answer::Error(json_or_text(&body)))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    *lock(&shared.init_error) = Some(json_or_text(&body));
    StatusCode::ACCEPTED
}

/// A function's environment for running its binary against moto at `endpoint`: what the
/// template gives it (`RunningStack::function_env`), plus the endpoint and test credentials.
pub fn against_moto(
    function_env: &std::collections::BTreeMap<String, String>,
    endpoint: &str,
) -> std::collections::BTreeMap<String, String> {
    let mut vars = function_env.clone();
    vars.insert("AWS_ENDPOINT_URL".into(), endpoint.to_owned());
    vars.insert("AWS_ACCESS_KEY_ID".into(), "testing".into());
    vars.insert("AWS_SECRET_ACCESS_KEY".into(), "testing".into());
    vars
}

/// The events-table item of event `id`, as a DynamoDB stream record carries it (`{"S": ..}`):
/// what a stream batch's images are made of.
pub async fn stored_event_image(
    sdk: &aws_types::SdkConfig,
    table: &str,
    id: &str,
) -> Result<Value> {
    let items = aws_sdk_dynamodb::Client::new(sdk)
        .scan()
        .table_name(table)
        .send()
        .await?
        .items
        .unwrap_or_default();
    let item = items
        .into_iter()
        .find(|i| i.get("id").and_then(|v| v.as_s().ok()).map(String::as_str) == Some(id))
        .ok_or_else(|| anyhow!("event {id} is not in {table}"))?;
    Ok(serde_json::to_value(serde_dynamo::Item::from(item))?)
}

/// A sample of what Lambda sends (`local/tests/fixtures/lambda/{name}`).
pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lambda")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The trace id every invocation is given (Lambda's `Lambda-Runtime-Trace-Id`).
pub const INVOCATION_TRACE: &str =
    "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";

/// An HTTP API (payload v2.0) request as API Gateway sends it, from AWS's sample: `method` and
/// `path`, a bearer `token` if any, and `body` as base64.
pub fn http_request(method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Value {
    let mut request = fixture("apigw-v2-request.json");
    request["rawPath"] = Value::from(path);
    request["requestContext"]["http"]["method"] = Value::from(method);
    request["requestContext"]["http"]["path"] = Value::from(path);
    if let Some(headers) = request["headers"].as_object_mut() {
        match token {
            Some(token) => {
                headers.insert(
                    "Authorization".into(),
                    Value::from(format!("Bearer {token}")),
                );
            }
            None => {
                headers.remove("Authorization");
            }
        }
    }
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    request["headers"]["content-length"] = Value::from(bytes.len().to_string());
    request["body"] = Value::from(BASE64.encode(bytes.as_bytes()));
    request
}

/// The body of an HTTP API response, as JSON when it is JSON.
pub fn response_json(response: &Value) -> Value {
    let body = response["body"].as_str().unwrap_or_default();
    let text = if response["isBase64Encoded"] == true {
        BASE64
            .decode(body)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default()
    } else {
        body.to_owned()
    };
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}
