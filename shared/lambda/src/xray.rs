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

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use cuba_core::model::trace::TraceContext;
use serde_json::{Map, Value, json};
use tracing::Subscriber;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// Where Lambda tells a traced function its daemon listens.
pub const DAEMON_ADDRESS_VARIABLE: &str = "AWS_XRAY_DAEMON_ADDRESS";
/// The span field carrying the request's whole trace header.
pub const TRACE_FIELD: &str = "trace";
/// The span fields sent as the segment's annotations.
const ANNOTATED: [&str; 3] = ["user", "event_id", "rule_id"];

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
    calls: Vec<Value>,
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

/// A segment document as the daemon takes it: its header line, then the segment.
pub fn segment_datagram(
    name: &str,
    id: &str,
    step: &str,
    trace: &TraceContext,
    (started, ended): (f64, f64),
    annotations: &BTreeMap<String, String>,
    calls: Vec<Value>,
) -> String {
    let mut segment = json!({
        "name": name,
        "id": id,
        "trace_id": trace.root(),
        "start_time": started,
        "end_time": ended,
    });
    if let Some(parent) = trace.parent() {
        segment["parent_id"] = Value::from(parent);
    }
    let mut notes: Map<String, Value> = annotations
        .iter()
        .map(|(key, value)| (key.clone(), Value::from(value.as_str())))
        .collect();
    notes.insert("step".into(), Value::from(step));
    segment["annotations"] = Value::Object(notes);
    if !calls.is_empty() {
        segment["subsegments"] = Value::Array(calls);
    }
    format!("{{\"format\": \"json\", \"version\": 1}}\n{segment}")
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
        let annotations = fields
            .0
            .into_iter()
            .filter(|(name, _)| ANNOTATED.contains(&name.as_str()))
            .collect();
        span.extensions_mut().insert(OpenSegment {
            trace,
            started: now_seconds(),
            annotations,
            calls: Vec::new(),
        });
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
        let datagram = segment_datagram(
            &self.name,
            &self.ids.next(),
            span.name(),
            &open.trace,
            (open.started, now_seconds()),
            &open.annotations,
            open.calls,
        );
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
        let annotations = BTreeMap::from([
            ("user".to_owned(), "7".to_owned()),
            ("event_id".to_owned(), "e1".to_owned()),
        ]);
        let datagram = segment_datagram(
            "stack-rules",
            "0123456789abcdef",
            "stream_record",
            &trace("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"),
            (1.5, 2.25),
            &annotations,
            vec![call_subsegment(
                "fedcba9876543210",
                "DynamoDB",
                "PutItem",
                (1.75, 2.0),
            )],
        );
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
        let orphan = segment_datagram(
            "f",
            "0123456789abcdef",
            "absence_check",
            &trace("Root=1-5759e988-bd862e3fe1be46a994272793"),
            (1.0, 1.0),
            &BTreeMap::new(),
            Vec::new(),
        );
        assert!(!orphan.contains("parent_id"), "{orphan}");
        assert!(!orphan.contains("subsegments"), "{orphan}");
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
