//! Versioned documents: what operators edit in the admin API. Rules and event schemas are both
//! JSON documents with an id, a version, an author and a history; only their languages differ
//! ([`crate::rules`], [`crate::schemas`]). This is their shared vocabulary.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::domain::Millis;

/// A document's id: `[a-z0-9][a-z0-9_-]{0,63}`, safe inside ledger keys and SNS message
/// attributes (alert ids embed rule ids, and `#` separates their parts).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocumentId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit")]
pub struct DocumentIdError;

/// The longest document id.
pub const DOCUMENT_ID_MAX_CHARS: usize = 64;

impl DocumentId {
    pub fn parse(raw: &str) -> Result<Self, DocumentIdError> {
        let mut chars = raw.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok =
            chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if first_ok && rest_ok && raw.len() <= DOCUMENT_ID_MAX_CHARS {
            Ok(DocumentId(raw.to_owned()))
        } else {
            Err(DocumentIdError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DocumentId {
    type Error = DocumentIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        DocumentId::parse(&value)
    }
}

impl From<DocumentId> for String {
    fn from(value: DocumentId) -> Self {
        value.0
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One thing wrong with a document, located by a JSON path such as `$.rules[1].when`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: &str, message: impl Into<String>) -> Self {
        Problem {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// Every problem found in a document, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid document: {}", .0.iter().map(|p| format!("{}: {}", p.path, p.message)).collect::<Vec<_>>().join("; "))]
pub struct InvalidDocument(pub Vec<Problem>);

/// A document as stored: its JSON, version and last editor.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentRecord {
    pub id: DocumentId,
    pub version: u64,
    pub document: serde_json::Value,
    pub updated_by: String,
    pub updated_at: Millis,
}

impl DocumentRecord {
    /// Documents are in force unless they say `"enabled": false`.
    pub fn enabled(&self) -> bool {
        self.document
            .get("enabled")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true)
    }
}

/// One entry of a document's history. `document` is `None` for a deletion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentRevision {
    pub version: u64,
    pub action: DocumentAction,
    pub document: Option<serde_json::Value>,
    pub updated_by: String,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentAction {
    Seeded,
    Created,
    Updated,
    Enabled,
    Disabled,
    Deleted,
}

/// A language of documents, named by what its documents in force make together (a rule set,
/// a schema registry): how one stored document is read, and how many become the set.
pub trait DocumentSet: Sized + Send + Sync + 'static {
    /// One parsed document (a [`crate::rules::Rule`], a [`crate::schemas::Schema`]).
    type Document: Send;
    /// `rule`, `schema`: how messages and logs name one.
    const NOUN: &'static str;

    /// Reads and checks one document; `version` is the store's version of it.
    fn parse(document: &serde_json::Value, version: u64)
    -> Result<Self::Document, InvalidDocument>;

    /// Reads a stored document (the record may say more than the document, such as when it
    /// was saved).
    fn parse_record(record: &DocumentRecord) -> Result<Self::Document, InvalidDocument> {
        Self::parse(&record.document, record.version)
    }

    /// Whether a stored document takes part in the set at all.
    fn in_force(_record: &DocumentRecord) -> bool {
        true
    }

    fn assemble(documents: Vec<Self::Document>) -> Self;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_key_safe() {
        assert!(DocumentId::parse("bill-paid_2").is_ok());
        for bad in ["", "-x", "A", "a#b", "a b", &"x".repeat(65)] {
            assert_eq!(DocumentId::parse(bad), Err(DocumentIdError), "{bad:?}");
        }
    }
}
