//! X-Ray segments for the work a request causes after it returns: a stream record's evaluation
//! and a queued absence check's relay run in invocations of their own (a stream batch serves
//! many requests), so Lambda's segment of such an invocation is in no request's trace. Each
//! span the handlers open with the request's `trace` (see `handlers::record_span`) is sent, when
//! it closes, as a segment of that trace, a child of the segment the trace header names: in
//! X-Ray's console the request's trace then shows ingest, then the rules function's work on its
//! event, then the check's, with the user, event and rule as annotations (searchable:
//! `annotation.event_id = "..."`). The AWS calls made inside such a span (the SDK's operation
//! spans) are its subsegments.
//!
//! Segments go as UDP datagrams to the X-Ray daemon Lambda runs beside each function with
//! `Tracing: Active` (`AWS_XRAY_DAEMON_ADDRESS`), as X-Ray's SDKs send them: no API call, no
//! wait, nothing to flush. Only sampled traces (`Sampled=1`) are sent; without the daemon's
//! address nothing is.
//!
//! A segment says how its work went, so X-Ray's trace map colours it: a span marked failed
//! ([`cuba_core::model::trace::mark_failed`]) is a `fault`; a request span's status (and its
//! method and route, under OpenTelemetry's field names) is the segment's `http`, a 4xx an
//! `error` (a 429 a `throttle` too), a 5xx a `fault`.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use cuba_core::model::trace::{self, TraceContext};
use serde_json::{Map, Value, json};
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Where Lambda tells a traced function its daemon listens.
pub const DAEMON_ADDRESS_VARIABLE: &str = "AWS_XRAY_DAEMON_ADDRESS";
/// The span field carrying the request's whole trace header.
pub const TRACE_FIELD: &str = "trace";
/// A request span's method (OpenTelemetry's name, as the next two): the segment's `http.request`.
pub const METHOD_FIELD: &str = "http.request.method";
/// The route a request matched (its template): the segment's annotation `route`.
pub const ROUTE_FIELD: &str = "http.route";
/// The status a request was answered with: the segment's `http.response`, and its flags.
pub const STATUS_FIELD: &str = "http.response.status_code";
/// The span fields sent as the segment's annotations, each under the key X-Ray shows it by
/// (annotation keys take letters, digits and underscores only).
const ANNOTATED: [(&str, &str); 4] = [
    ("user", "user"),
    ("event_id", "event_id"),
    ("rule_id", "rule_id"),
    (ROUTE_FIELD, "route"),
];

/// The layer that sends the segments.
pub struct XraySegments {
    socket: UdpSocket,
    daemon: SocketAddr,
    /// The segments' name: the function's.
    name: String,
    ids: SegmentIds,
}

impl XraySegments {
    /// From the daemon's address as Lambda writes it (`169.254.79.129:2000`, or
    /// `tcp:host:port udp:host:port`); `None` without one, or if no socket can be opened.
    pub fn new(daemon_address: &str, name: &str) -> Option<Self> {
        let daemon = daemon_udp_address(daemon_address)?;
        let bind = if daemon.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let socket = UdpSocket::bind(bind).ok()?;
        socket.set_nonblocking(true).ok()?;
        Some(XraySegments {
            socket,
            daemon,
            name: name.to_owned(),
            ids: SegmentIds::default(),
        })
    }

    /// From the process's environment: the daemon's address and the function's name.
    pub fn from_env() -> Option<Self> {
        let daemon = std::env::var(DAEMON_ADDRESS_VARIABLE).ok()?;
        let name = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "cuba".into());
        Self::new(&daemon, &name)
    }
}

/// The UDP address in a daemon address variable.
fn daemon_udp_address(raw: &str) -> Option<SocketAddr> {
    let raw = raw.trim();
    let udp = raw
        .split_whitespace()
        .find_map(|part| part.strip_prefix("udp:"))
        .unwrap_or(raw);
    udp.to_socket_addrs().ok()?.next()
}

/// Random segment ids (16 hex digits), from the standard library's per-process random keys.
#[derive(Default)]
struct SegmentIds {
    counter: AtomicU64,
    keys: std::collections::hash_map::RandomState,
}

impl SegmentIds {
    fn next(&self) -> String {
        let mut hasher = self.keys.build_hasher();
        hasher.write_u64(self.counter.fetch_add(1, Ordering::Relaxed));
        format!("{:016x}", hasher.finish())
    }
}

/// What a traced span keeps until it closes: the AWS calls made inside it among the rest.
struct OpenSegment {
    trace: TraceContext,
    started: f64,
    annotations: BTreeMap<String, String>,
    outcome: Outcome,
    calls: Vec<Value>,
}

/// What a span's fields say of how its work went.
#[derive(Debug, Default)]
struct Outcome {
    method: Option<String>,
    status: Option<u16>,
    failed: bool,
}

impl OpenSegment {
    fn new(trace: TraceContext) -> Self {
        OpenSegment {
            trace,
            started: now_seconds(),
            annotations: BTreeMap::new(),
            outcome: Outcome::default(),
            calls: Vec::new(),
        }
    }

    /// Takes in the fields a span was opened with, or recorded later (a request's status once
    /// answered, a failure once known).
    fn note(&mut self, fields: RecordedFields) {
        for (name, value) in fields.0 {
            if let Some((_, key)) = ANNOTATED.iter().find(|(field, _)| *field == name) {
                self.annotations.insert((*key).to_owned(), value);
            } else if name == METHOD_FIELD {
                self.outcome.method = Some(value);
            } else if name == STATUS_FIELD {
                self.outcome.status = value.parse().ok();
            } else if name == trace::STATUS_FIELD {
                self.outcome.failed = value == "ERROR";
            }
        }
    }

    /// The segment document as the daemon takes it: its header line, then the segment.
    fn datagram(self, name: &str, id: &str, step: &str, ended: f64) -> String {
        let trace = &self.trace;
        let mut segment = json!({
            "name": name,
            "id": id,
            "trace_id": trace.root(),
            "start_time": self.started,
            "end_time": ended,
        });
        if let Some(parent) = trace.parent() {
            segment["parent_id"] = Value::from(parent);
        }
        let mut notes: Map<String, Value> = self
            .annotations
            .into_iter()
            .map(|(key, value)| (key, Value::from(value)))
            .collect();
        notes.insert("step".into(), Value::from(step));
        segment["annotations"] = Value::Object(notes);
        let Outcome {
            method,
            status,
            failed,
        } = self.outcome;
        if method.is_some() || status.is_some() {
            let mut http = Map::new();
            if let Some(method) = method {
                http.insert("request".into(), json!({ "method": method }));
            }
            if let Some(status) = status {
                http.insert("response".into(), json!({ "status": status }));
            }
            segment["http"] = Value::Object(http);
        }
        let status = status.unwrap_or_default();
        if (400..500).contains(&status) {
            segment["error"] = Value::Bool(true);
        }
        if status == 429 {
            segment["throttle"] = Value::Bool(true);
        }
        if failed || status >= 500 {
            segment["fault"] = Value::Bool(true);
        }
        if !self.calls.is_empty() {
            segment["subsegments"] = Value::Array(self.calls);
        }
        format!("{{\"format\": \"json\", \"version\": 1}}\n{segment}")
    }
}

/// An AWS SDK operation's span (`DynamoDB.PutItem`, with `rpc.service` and `rpc.method`)
/// inside a traced span: a subsegment of that span's segment.
struct OpenCall {
    segment: Id,
    service: String,
    operation: String,
    started: f64,
}

/// The SDK crates whose operation spans (at `DEBUG`) become subsegments.
pub const SDK_TARGETS: [&str; 3] = ["aws_sdk_dynamodb", "aws_sdk_sqs", "aws_sdk_sns"];

/// An AWS call as X-Ray shows it inside a segment.
fn call_subsegment(
    id: &str,
    service: &str,
    operation: &str,
    (started, ended): (f64, f64),
) -> Value {
    json!({
        "name": service,
        "id": id,
        "namespace": "aws",
        "start_time": started,
        "end_time": ended,
        "aws": {"operation": operation},
    })
}

/// A span's or an event's fields by name, each as logged (`%` values in their display form):
/// what a layer reads from `Attributes::record` or `Event::record`.
#[derive(Default)]
pub struct RecordedFields(pub BTreeMap<String, String>);

impl Visit for RecordedFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for XraySegments {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let mut fields = RecordedFields::default();
        attributes.record(&mut fields);
        let Some(span) = context.span(id) else {
            return;
        };
        if let (Some(service), Some(operation)) =
            (fields.0.get("rpc.service"), fields.0.get("rpc.method"))
        {
            let segment = span
                .scope()
                .skip(1)
                .find(|outer| outer.extensions().get::<OpenSegment>().is_some());
            if let Some(segment) = segment {
                span.extensions_mut().insert(OpenCall {
                    segment: segment.id(),
                    service: service.clone(),
                    operation: operation.clone(),
                    started: now_seconds(),
                });
            }
            return;
        }
        let Some(trace) = fields
            .0
            .get(TRACE_FIELD)
            .and_then(|header| header.parse::<TraceContext>().ok())
            .filter(|trace| trace.sampled() == Some(true))
        else {
            return;
        };
        let mut open = OpenSegment::new(trace);
        open.note(fields);
        span.extensions_mut().insert(open);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, context: Context<'_, S>) {
        let Some(span) = context.span(id) else {
            return;
        };
        if let Some(open) = span.extensions_mut().get_mut::<OpenSegment>() {
            let mut fields = RecordedFields::default();
            values.record(&mut fields);
            open.note(fields);
        }
    }

    fn on_close(&self, id: Id, context: Context<'_, S>) {
        let Some(span) = context.span(&id) else {
            return;
        };
        let call = span.extensions_mut().remove::<OpenCall>();
        if let Some(call) = call {
            let subsegment = call_subsegment(
                &self.ids.next(),
                &call.service,
                &call.operation,
                (call.started, now_seconds()),
            );
            if let Some(segment) = context.span(&call.segment)
                && let Some(open) = segment.extensions_mut().get_mut::<OpenSegment>()
            {
                open.calls.push(subsegment);
            }
            return;
        }
        let Some(open) = span.extensions_mut().remove::<OpenSegment>() else {
            return;
        };
        let datagram = open.datagram(&self.name, &self.ids.next(), span.name(), now_seconds());
        // UDP to the daemon beside the function: lost only if the daemon is gone, as with
        // X-Ray's SDKs; a trace missing a segment is not worth delaying the work for.
        let _ = self.socket.send_to(datagram.as_bytes(), self.daemon);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(header: &str) -> TraceContext {
        header.parse().expect("a trace header")
    }

    #[test]
    fn a_segment_is_a_child_of_the_segment_its_trace_names() {
        let mut open = OpenSegment::new(trace(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        ));
        open.started = 1.5;
        open.note(RecordedFields(BTreeMap::from([
            ("user".to_owned(), "7".to_owned()),
            ("event_id".to_owned(), "e1".to_owned()),
            ("trace_id".to_owned(), "not an annotation".to_owned()),
        ])));
        open.calls.push(call_subsegment(
            "fedcba9876543210",
            "DynamoDB",
            "PutItem",
            (1.75, 2.0),
        ));
        let datagram = open.datagram("stack-rules", "0123456789abcdef", "stream_record", 2.25);
        let (header, body) = datagram.split_once('\n').expect("two lines");
        assert_eq!(
            serde_json::from_str::<Value>(header).expect("JSON"),
            json!({"format": "json", "version": 1})
        );
        assert_eq!(
            serde_json::from_str::<Value>(body).expect("JSON"),
            json!({
                "name": "stack-rules",
                "id": "0123456789abcdef",
                "trace_id": "1-5759e988-bd862e3fe1be46a994272793",
                "parent_id": "53995c3f42cd8ad8",
                "start_time": 1.5,
                "end_time": 2.25,
                "annotations": {"user": "7", "event_id": "e1", "step": "stream_record"},
                "subsegments": [{
                    "name": "DynamoDB",
                    "id": "fedcba9876543210",
                    "namespace": "aws",
                    "start_time": 1.75,
                    "end_time": 2.0,
                    "aws": {"operation": "PutItem"},
                }],
            })
        );
        let orphan = OpenSegment::new(trace("Root=1-5759e988-bd862e3fe1be46a994272793")).datagram(
            "f",
            "0123456789abcdef",
            "absence_check",
            1.0,
        );
        for absent in ["parent_id", "subsegments", "http", "fault", "error"] {
            assert!(!orphan.contains(absent), "{orphan}");
        }
    }

    /// The segments the layer sends for the spans `work` opens, to a daemon of the test's own.
    fn segments_of(work: impl FnOnce()) -> Vec<Value> {
        let daemon = UdpSocket::bind("127.0.0.1:0").expect("a socket");
        let address = daemon.local_addr().expect("its address").to_string();
        let layer = XraySegments::new(&address, "stack-ingest").expect("the layer");
        let subscriber =
            tracing_subscriber::layer::SubscriberExt::with(tracing_subscriber::registry(), layer);
        tracing::subscriber::with_default(subscriber, work);
        daemon.set_nonblocking(true).expect("non-blocking");
        let mut segments = Vec::new();
        let mut buffer = [0u8; 65_536];
        while let Ok(length) = daemon.recv(&mut buffer) {
            let text = std::str::from_utf8(&buffer[..length]).expect("UTF-8");
            let (_, body) = text.split_once('\n').expect("a header line");
            segments.push(serde_json::from_str(body).expect("JSON"));
        }
        segments
    }

    fn request(status: u16, route: Option<&str>) {
        let span = tracing::info_span!(
            "http_request",
            trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
            { METHOD_FIELD } = "POST",
            { ROUTE_FIELD } = tracing::field::Empty,
            { STATUS_FIELD } = tracing::field::Empty,
        );
        if let Some(route) = route {
            span.record(ROUTE_FIELD, route);
        }
        span.record(STATUS_FIELD, status);
    }

    #[test]
    fn a_request_segment_says_its_route_and_status_and_a_failure_is_a_fault() {
        let segments = segments_of(|| {
            request(202, Some("/api/v1/events"));
            request(400, Some("/api/v1/events"));
            request(429, Some("/api/v1/events/batch"));
            request(503, None);
            let record = tracing::info_span!(
                "stream_record",
                trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
                { trace::STATUS_FIELD } = tracing::field::Empty,
            );
            // As the handlers run a record: its work failing marks the span.
            let failing = trace::in_span(record, async { Err::<(), &str>("no table") });
            let outcome = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime")
                .block_on(failing);
            assert_eq!(outcome, Err("no table"));
            // Not sampled: no segment at all.
            let _ = tracing::info_span!(
                "http_request",
                trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0",
            );
        });
        let flags = |segment: &Value| {
            ["error", "throttle", "fault"]
                .into_iter()
                .filter(|flag| segment[*flag] == json!(true))
                .collect::<Vec<_>>()
        };
        let [accepted, refused, throttled, failing, record] = segments.as_slice() else {
            panic!("five segments: {segments:?}");
        };
        assert_eq!(
            accepted["http"],
            json!({"request": {"method": "POST"}, "response": {"status": 202}})
        );
        assert_eq!(accepted["annotations"]["route"], "/api/v1/events");
        assert_eq!(flags(accepted), Vec::<&str>::new());
        assert_eq!(flags(refused), ["error"]);
        assert_eq!(throttled["annotations"]["route"], "/api/v1/events/batch");
        assert_eq!(flags(throttled), ["error", "throttle"]);
        assert_eq!(failing["http"]["response"]["status"], 503);
        assert_eq!(
            failing["annotations"].get("route"),
            None,
            "no route matched"
        );
        assert_eq!(flags(failing), ["fault"]);
        assert_eq!(record["annotations"]["step"], "stream_record");
        assert_eq!(record.get("http"), None);
        assert_eq!(flags(record), ["fault"]);
    }

    #[test]
    fn the_daemon_is_found_in_either_form_of_its_address() {
        let udp = "127.0.0.1:2000".parse().ok();
        assert_eq!(daemon_udp_address("127.0.0.1:2000"), udp);
        assert_eq!(
            daemon_udp_address("tcp:127.0.0.1:2001 udp:127.0.0.1:2000"),
            udp
        );
        assert_eq!(daemon_udp_address("not an address"), None);
    }

    #[test]
    fn segment_ids_are_sixteen_hex_digits_and_differ() {
        let ids = SegmentIds::default();
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        for id in [a, b] {
            assert_eq!(id.len(), 16);
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }
}
