//! Which event types a schema covers: exact names, or patterns where `*` stands for any run of
//! characters; the most specific match wins.

use serde_json::{Map, Value};

use crate::model::document::Problem;
use crate::model::domain::EventType;

/// A name to match: exact text, or a pattern where `*` stands for any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct NamePattern(String);

impl NamePattern {
    fn matches(&self, text: &str) -> bool {
        glob_matches(self.0.as_bytes(), text.as_bytes())
    }

    fn is_exact(&self) -> bool {
        !self.0.contains('*')
    }

    /// How specific the pattern is: its count of literal characters.
    fn literal_len(&self) -> usize {
        self.0.chars().filter(|c| *c != '*').count()
    }
}

pub(super) fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative wildcard matching with backtracking to the last `*`: linear enough for names.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] != b'*' && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|b| *b == b'*')
}

/// Which event type a schema covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TypeMatch {
    Activity {
        noun: NamePattern,
        verb: NamePattern,
    },
    Web {
        category: NamePattern,
        name: NamePattern,
    },
    Feedback,
}

impl TypeMatch {
    pub(super) fn matches(&self, event_type: &EventType) -> bool {
        match (self, event_type) {
            (TypeMatch::Activity { noun, verb }, EventType::Activity { noun: n, verb: v }) => {
                noun.matches(n) && verb.matches(v)
            }
            (
                TypeMatch::Web { category, name },
                EventType::Web {
                    category: Some(c),
                    name: n,
                },
            ) => category.matches(c) && name.matches(n),
            (TypeMatch::Feedback, EventType::Feedback) => true,
            _ => false,
        }
    }

    /// The one event type this match names, when it names it without a `*`.
    pub(super) fn exact(&self) -> Option<EventType> {
        match self {
            TypeMatch::Activity { noun, verb } if noun.is_exact() && verb.is_exact() => {
                Some(EventType::Activity {
                    noun: noun.0.clone(),
                    verb: verb.0.clone(),
                })
            }
            TypeMatch::Web { category, name } if category.is_exact() && name.is_exact() => {
                Some(EventType::Web {
                    category: Some(category.0.clone()),
                    name: name.0.clone(),
                })
            }
            TypeMatch::Feedback => Some(EventType::Feedback),
            _ => None,
        }
    }

    /// Exact matches first, then the most literal characters: `link click` beats `* click`.
    pub(super) fn specificity(&self) -> (usize, usize) {
        let parts: Vec<&NamePattern> = match self {
            TypeMatch::Activity { noun, verb } => vec![noun, verb],
            TypeMatch::Web { category, name } => vec![category, name],
            TypeMatch::Feedback => vec![],
        };
        (
            parts.iter().filter(|p| p.is_exact()).count(),
            parts.iter().map(|p| p.literal_len()).sum(),
        )
    }
}

pub(super) fn type_match(m: &Map<String, Value>, problems: &mut Vec<Problem>) -> Option<TypeMatch> {
    let mut name = |key: &str| -> Option<NamePattern> {
        match m.get(key).and_then(Value::as_str) {
            Some(s) if !s.trim().is_empty() && s.chars().count() <= 64 => {
                Some(NamePattern(s.to_owned()))
            }
            _ => {
                problems.push(Problem::new(
                    &format!("$.match.{key}"),
                    "required: 1 to 64 characters; `*` matches any run of characters",
                ));
                None
            }
        }
    };
    let (allowed, matched): (&[&str], Option<TypeMatch>) =
        match m.get("kind").and_then(Value::as_str) {
            Some("activity") => {
                let (noun, verb) = (name("noun"), name("verb"));
                (
                    &["kind", "noun", "verb"],
                    noun.zip(verb)
                        .map(|(noun, verb)| TypeMatch::Activity { noun, verb }),
                )
            }
            Some("web") => {
                let (category, name) = (name("category"), name("name"));
                (
                    &["kind", "category", "name"],
                    category
                        .zip(name)
                        .map(|(category, name)| TypeMatch::Web { category, name }),
                )
            }
            Some("feedback") => (&["kind"], Some(TypeMatch::Feedback)),
            _ => {
                problems.push(Problem::new(
                    "$.match.kind",
                    "must be \"activity\", \"web\" or \"feedback\"",
                ));
                return None;
            }
        };
    let mut unknown = false;
    for key in m.keys().filter(|k| !allowed.contains(&k.as_str())) {
        unknown = true;
        problems.push(Problem::new(
            &format!("$.match.{key}"),
            "unknown field for this kind",
        ));
    }
    if unknown { None } else { matched }
}
