//! The trace an event was received in: what ties the request that sent it to the evaluation of
//! its stream record, its absence check a quarter of an hour later and what they alert.
//!
//! The form is X-Ray's trace header (`Root=1-{8 hex}-{24 hex};Parent={16 hex};Sampled=1`), which
//! API Gateway, Lambda and the AWS SDKs already pass along; only what names the trace is kept
//! (the root, the segment it continues from, the sampling decision), never other key-value
//! pairs a client may have put in the header.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A trace header, checked: a root of the form X-Ray accepts, an optional parent segment and
/// sampling decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    root: String,
    parent: Option<String>,
    sampled: Option<bool>,
}

/// Why a header names no trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceHeaderError {
    #[error("the trace header has no Root")]
    NoRoot,
    #[error("the trace header's Root is not 1-{{8 hex digits}}-{{24 hex digits}}")]
    Root,
    #[error("the trace header's Parent is not 16 hex digits")]
    Parent,
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit())
}

impl TraceContext {
    /// The trace's id (`1-…-…`): what X-Ray's console and `aws xray batch-get-traces` find.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The segment the trace continues from, if the header named one.
    pub fn parent(&self) -> Option<&str> {
        self.parent.as_deref()
    }

    pub fn sampled(&self) -> Option<bool> {
        self.sampled
    }
}

impl FromStr for TraceContext {
    type Err = TraceHeaderError;

    /// Reads a header such as `Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`
    /// (keys in any order and case, spaces around `;` allowed, other keys ignored).
    fn from_str(header: &str) -> Result<Self, Self::Err> {
        let mut root = None;
        let mut parent = None;
        let mut sampled = None;
        for pair in header.split(';') {
            let Some((key, value)) = pair.trim().split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "root" => {
                    let mut parts = value.split('-');
                    let valid = parts.next() == Some("1")
                        && parts.next().is_some_and(|time| is_hex(time, 8))
                        && parts.next().is_some_and(|id| is_hex(id, 24))
                        && parts.next().is_none();
                    if !valid {
                        return Err(TraceHeaderError::Root);
                    }
                    root = Some(value.to_ascii_lowercase());
                }
                "parent" => {
                    if !is_hex(value, 16) {
                        return Err(TraceHeaderError::Parent);
                    }
                    parent = Some(value.to_ascii_lowercase());
                }
                "sampled" => {
                    sampled = match value {
                        "1" => Some(true),
                        "0" => Some(false),
                        // `?`: the sender leaves the decision to whoever reads the header.
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        Ok(TraceContext {
            root: root.ok_or(TraceHeaderError::NoRoot)?,
            parent,
            sampled,
        })
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Root={}", self.root)?;
        if let Some(parent) = &self.parent {
            write!(f, ";Parent={parent}")?;
        }
        match self.sampled {
            Some(true) => write!(f, ";Sampled=1"),
            Some(false) => write!(f, ";Sampled=0"),
            None => Ok(()),
        }
    }
}

/// Stored as its header text.
impl Serialize for TraceContext {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TraceContext {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// For a stored trace, with `#[serde(default, deserialize_with = "…")]`: one that no longer
/// reads (it was checked when stored) is dropped rather than failing what carries it.
pub fn lenient<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<TraceContext>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    Ok(text.and_then(|text| text.parse().ok()))
}

/// The span field that marks a unit of work (a stream record, a relayed check, a re-driven
/// alert) as failed, under OpenTelemetry's name for a span's status, so a tracer that knows the
/// convention (Cuba's X-Ray segments: a `fault`; an OpenTelemetry exporter) shows it as failed.
/// Declared `Empty` when the span is opened; [`mark_failed`] fills it in.
pub const STATUS_FIELD: &str = "otel.status_code";

/// Marks `span`'s work as failed (see [`STATUS_FIELD`]).
pub fn mark_failed(span: &tracing::Span) {
    span.record(STATUS_FIELD, "ERROR");
}

/// Runs `work` in `span`, and marks the span failed when the work fails.
pub async fn in_span<T, E>(
    span: tracing::Span,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let outcome = tracing::Instrument::instrument(work, span.clone()).await;
    if outcome.is_err() {
        mark_failed(&span);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";

    #[test]
    fn a_full_header_is_read_and_written_back_alike() {
        let header = format!("Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1");
        let trace: TraceContext = header.parse().expect("a trace header");
        assert_eq!(trace.root(), ROOT);
        assert_eq!(trace.parent(), Some("53995c3f42cd8ad8"));
        assert_eq!(trace.sampled(), Some(true));
        assert_eq!(trace.to_string(), header);
    }

    #[test]
    fn keys_in_any_order_and_case_and_unknown_keys_are_dropped() {
        let trace: TraceContext = format!(" sampled=0 ; Lineage=a87bd80c:1 ;ROOT={ROOT}; Self=1-x")
            .parse()
            .expect("a trace header");
        assert_eq!(trace.to_string(), format!("Root={ROOT};Sampled=0"));
        let undecided: TraceContext = format!("Root={ROOT};Sampled=?").parse().expect("header");
        assert_eq!(undecided.sampled(), None);
    }

    #[test]
    fn a_header_without_a_well_formed_root_or_parent_names_no_trace() {
        for (header, error) in [
            ("Parent=53995c3f42cd8ad8", TraceHeaderError::NoRoot),
            ("", TraceHeaderError::NoRoot),
            (
                "Root=2-5759e988-bd862e3fe1be46a994272793",
                TraceHeaderError::Root,
            ),
            (
                "Root=1-5759e98-bd862e3fe1be46a994272793",
                TraceHeaderError::Root,
            ),
            (
                "Root=1-5759e988-bd862e3fe1be46a99427279z",
                TraceHeaderError::Root,
            ),
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793-00",
                TraceHeaderError::Root,
            ),
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad",
                TraceHeaderError::Parent,
            ),
            (
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=<script>aaaaaaaa",
                TraceHeaderError::Parent,
            ),
        ] {
            assert_eq!(header.parse::<TraceContext>(), Err(error), "{header}");
        }
    }

    #[test]
    fn it_is_stored_as_its_header_text() {
        let trace: TraceContext = format!("Root={ROOT};Sampled=1").parse().expect("header");
        let json = serde_json::to_value(&trace).expect("serialises");
        assert_eq!(json, serde_json::json!(format!("Root={ROOT};Sampled=1")));
        let back: TraceContext = serde_json::from_value(json).expect("reads back");
        assert_eq!(back, trace);
        assert!(serde_json::from_value::<TraceContext>(serde_json::json!("Root=x")).is_err());
    }
}
