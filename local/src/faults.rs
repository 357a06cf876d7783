//! Fault injection for the local runner, at the HTTP layer under the real AWS SDK clients: a
//! seeded fraction of Cuba's AWS calls fail as the network and the services do. The SDK's own
//! retries, timeouts and error classification then behave as they do in production. Only the
//! local runner compiles this; the Lambda functions never link it.
//!
//! Kinds, per service (DynamoDB, SQS, SNS):
//! - `Error`: the service answers 500 without doing anything.
//! - `Throttle`: the service answers its throttling error without doing anything.
//! - `TimeoutBefore`: the connection times out before the request reached the service.
//! - `TimeoutAfter`: the request took effect, then the answer was lost (a read timeout).
//!
//! SNS `Publish` gets no `TimeoutBefore`: to any client it is the same as `TimeoutAfter` (no
//! answer), and Cuba records both as `unconfirmed` without publishing again; injecting it would
//! only make the run lose messages the way the docs (Operations) say it can.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;

/// Which AWS service a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    DynamoDb,
    Sqs,
    Sns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultKind {
    Error,
    Throttle,
    TimeoutBefore,
    TimeoutAfter,
}

/// What to inject: `rate` of all calls (0.0 to 1.0) fail, chosen by a generator seeded with
/// `seed`, so a run can be repeated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultPlan {
    pub seed: u64,
    pub rate: f64,
}

/// What was injected, and how many calls went through.
#[derive(Debug, Default)]
pub struct FaultLog {
    calls: AtomicU64,
    injected: Mutex<BTreeMap<(Service, FaultKind), u64>>,
    crashes: AtomicU64,
}

impl FaultLog {
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn injected(&self) -> BTreeMap<(Service, FaultKind), u64> {
        lock(&self.injected).clone()
    }

    pub fn total_injected(&self) -> u64 {
        lock(&self.injected).values().sum()
    }

    /// Handler invocations cut off part-way, as a crash or a function timeout would.
    pub fn crashes(&self) -> u64 {
        self.crashes.load(Ordering::SeqCst)
    }

    pub(crate) fn record_crash(&self) {
        self.crashes.fetch_add(1, Ordering::SeqCst);
    }

    fn record(&self, service: Service, kind: FaultKind) {
        *lock(&self.injected).entry((service, kind)).or_default() += 1;
    }
}

use crate::lock;

/// SplitMix64: small, seedable, and good enough to spread faults.
#[derive(Debug)]
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Self {
        Dice(seed)
    }

    pub fn roll(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.roll() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The shared state of one fault-injecting client: the plan, the dice, the log.
#[derive(Debug)]
pub struct Faults {
    /// The fraction of calls that fail, as `f64` bits: a test may change it mid-run.
    rate: AtomicU64,
    dice: Mutex<Dice>,
    pub log: Arc<FaultLog>,
}

impl Faults {
    pub fn new(plan: FaultPlan) -> Arc<Self> {
        Arc::new(Faults {
            rate: AtomicU64::new(plan.rate.to_bits()),
            dice: Mutex::new(Dice::new(plan.seed)),
            log: Arc::new(FaultLog::default()),
        })
    }

    /// True with the plan's rate.
    pub fn strikes(&self) -> bool {
        lock(&self.dice).unit() < f64::from_bits(self.rate.load(Ordering::SeqCst))
    }

    /// From now on, `rate` of all calls fail (0.0: the faults are over).
    pub fn set_rate(&self, rate: f64) {
        self.rate.store(rate.to_bits(), Ordering::SeqCst);
    }

    /// A number in `[0, n)`.
    pub fn below(&self, n: u64) -> u64 {
        lock(&self.dice).roll() % n.max(1)
    }

    fn choose(&self, service: Service) -> Option<FaultKind> {
        if !self.strikes() {
            return None;
        }
        let kinds: &[FaultKind] = match service {
            Service::Sns => &[
                FaultKind::Error,
                FaultKind::Throttle,
                FaultKind::TimeoutAfter,
            ],
            _ => &[
                FaultKind::Error,
                FaultKind::Throttle,
                FaultKind::TimeoutBefore,
                FaultKind::TimeoutAfter,
            ],
        };
        let kind = kinds[self.below(kinds.len() as u64) as usize];
        self.log.record(service, kind);
        Some(kind)
    }

    /// An HTTP client for the SDK that injects this plan's faults into every call.
    pub fn http_client(self: &Arc<Self>) -> SharedHttpClient {
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
            .build_https();
        SharedHttpClient::new(FaultyClient {
            inner,
            faults: self.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyClient {
    inner: SharedHttpClient,
    faults: Arc<Faults>,
}

impl HttpClient for FaultyClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
            faults: self.faults.clone(),
        })
    }
}

#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
    faults: Arc<Faults>,
}

fn service_of(request: &HttpRequest) -> Service {
    match request.headers().get("x-amz-target") {
        Some(target) if target.starts_with("DynamoDB") => Service::DynamoDb,
        Some(target) if target.starts_with("AmazonSQS") => Service::Sqs,
        // SNS speaks the query protocol: no target header.
        _ => Service::Sns,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("injected {0:?}")]
struct Injected(FaultKind);

/// The service's own answer for a throttled or failed call.
fn refusal(service: Service, kind: FaultKind) -> HttpResponse {
    let (status, content_type, body) = match (service, kind) {
        (Service::DynamoDb, FaultKind::Throttle) => (
            400,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"injected throttle"}"#.to_owned(),
        ),
        (Service::Sqs, FaultKind::Throttle) => (
            400,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.sqs#ThrottlingException","message":"injected throttle"}"#.to_owned(),
        ),
        (Service::Sns, FaultKind::Throttle) => (
            400,
            "text/xml",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>injected throttle</Message></Error><RequestId>injected</RequestId></ErrorResponse>".to_owned(),
        ),
        (Service::Sns, _) => (
            500,
            "text/xml",
            "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>injected error</Message></Error><RequestId>injected</RequestId></ErrorResponse>".to_owned(),
        ),
        _ => (
            500,
            "application/x-amz-json-1.0",
            r#"{"__type":"InternalServerError","message":"injected error"}"#.to_owned(),
        ),
    };
    let mut response = HttpResponse::new(
        StatusCode::try_from(status).unwrap_or_else(|_| unreachable!("a valid status")),
        SdkBody::from(body),
    );
    response.headers_mut().insert("content-type", content_type);
    response
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        self.faults.log.calls.fetch_add(1, Ordering::SeqCst);
        let service = service_of(&request);
        match self.faults.choose(service) {
            None => self.inner.call(request),
            Some(kind @ (FaultKind::Error | FaultKind::Throttle)) => {
                HttpConnectorFuture::ready(Ok(refusal(service, kind)))
            }
            Some(FaultKind::TimeoutBefore) => HttpConnectorFuture::ready(Err(
                ConnectorError::timeout(Box::new(Injected(FaultKind::TimeoutBefore))),
            )),
            Some(FaultKind::TimeoutAfter) => {
                let call = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    // The service did the work; its answer never arrives.
                    let _ = call.await;
                    Err(ConnectorError::timeout(Box::new(Injected(
                        FaultKind::TimeoutAfter,
                    ))))
                })
            }
        }
    }
}
