//! Message templates: text with `{{field.path}}` placeholders filled from the alert's context,
//! written once, or once per language with a `default` for everyone else.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use serde_json::Value;

use super::pattern::FieldPath;
use crate::model::locality::Locale;

/// The most languages one rule may write its message in, besides `default`.
pub const MAX_MESSAGE_LOCALES: usize = 20;

/// A rendered message in each language its rule writes besides the default, by locale.
pub type Translations = BTreeMap<Locale, String>;

/// A rule's message: the text everyone gets unless their language has its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Messages {
    pub default: MessageTemplate,
    pub by_locale: BTreeMap<Locale, MessageTemplate>,
}

impl Messages {
    /// `"text"`, or `{"default": "text", "pt-BR": "texto", ...}`: each template read as one
    /// message is, each problem reported under `path` (a language's under `path.<tag>`).
    pub fn parse(value: &Value, path: &str) -> Result<Self, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let template =
            |text: &Value, at: String, problems: &mut Vec<(String, String)>| match text.as_str() {
                Some(text) => MessageTemplate::parse(text)
                    .map_err(|why| problems.push((at, why)))
                    .ok(),
                None => {
                    problems.push((at, "must be a string".into()));
                    None
                }
            };
        let messages = match value {
            Value::String(_) => {
                template(value, path.to_owned(), &mut problems).map(|default| Messages {
                    default,
                    by_locale: BTreeMap::new(),
                })
            }
            Value::Object(languages) => {
                let default = match languages.get("default") {
                    Some(text) => template(text, format!("{path}.default"), &mut problems),
                    None => {
                        problems.push((
                            format!("{path}.default"),
                            "a message written per language needs a `default` for every other \
                             language"
                                .into(),
                        ));
                        None
                    }
                };
                if languages.len() > MAX_MESSAGE_LOCALES + 1 {
                    problems.push((
                        path.to_owned(),
                        format!("at most {MAX_MESSAGE_LOCALES} languages besides `default`"),
                    ));
                }
                let mut by_locale = BTreeMap::new();
                for (tag, text) in languages.iter().filter(|(tag, _)| *tag != "default") {
                    let at = format!("{path}.{tag}");
                    match Locale::parse(tag) {
                        Err(why) => problems.push((at, why)),
                        Ok(locale) => {
                            let text = template(text, at.clone(), &mut problems);
                            match by_locale.entry(locale) {
                                Entry::Occupied(taken) => problems.push((
                                    at,
                                    format!(
                                        "{} is written twice (tags are read case-blind)",
                                        taken.key()
                                    ),
                                )),
                                Entry::Vacant(free) => {
                                    if let Some(text) = text {
                                        free.insert(text);
                                    }
                                }
                            }
                        }
                    }
                }
                default.map(|default| Messages { default, by_locale })
            }
            _ => {
                problems.push((
                    path.to_owned(),
                    "must be a string, or an object of language tags to strings with a `default`"
                        .into(),
                ));
                None
            }
        };
        match messages {
            Some(messages) if problems.is_empty() => Ok(messages),
            _ => Err(problems),
        }
    }

    /// The same messages, each showing at most `chars` characters of a field's value.
    pub fn with_placeholder_chars(self, chars: u16) -> Self {
        Messages {
            default: self.default.with_placeholder_chars(chars),
            by_locale: self
                .by_locale
                .into_iter()
                .map(|(locale, t)| (locale, t.with_placeholder_chars(chars)))
                .collect(),
        }
    }

    pub fn placeholder_chars(&self) -> u16 {
        self.default.placeholder_chars()
    }

    /// The default text and each language's, filled from `context`.
    pub fn render(&self, context: &Value) -> (String, Translations) {
        let translations = self
            .by_locale
            .iter()
            .map(|(locale, t)| (locale.clone(), t.render(context)))
            .collect();
        (self.default.render(context), translations)
    }
}

/// The text for a reader of `locale` (`None`: the default): their tag, then each shorter one
/// (`pt-BR`, then `pt`), then the default.
pub fn text_for<'a>(
    default: &'a str,
    translations: &'a Translations,
    locale: Option<&Locale>,
) -> &'a str {
    locale
        .into_iter()
        .flat_map(Locale::fallbacks)
        .find_map(|tag| translations.get(&tag))
        .map_or(default, String::as_str)
}

pub const MESSAGE_MAX_CHARS: usize = 1000;

/// How much of one field's value a message shows unless the rule says otherwise
/// (`placeholder_chars`): event fields are written by clients, and a message sent from Cube's
/// sender id must not carry a client's paragraph (phishing, or SMS pumping by length).
pub const DEFAULT_PLACEHOLDER_CHARS: u16 = 64;

/// The most a rule may allow a placeholder to show.
pub const MAX_PLACEHOLDER_CHARS: u16 = 500;

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Text(String),
    Field(FieldPath),
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageTemplate {
    source: String,
    segments: Vec<Segment>,
    placeholder_chars: u16,
}

impl MessageTemplate {
    pub fn parse(source: &str) -> Result<Self, String> {
        if source.trim().is_empty() {
            return Err("must not be empty".into());
        }
        if source.chars().count() > MESSAGE_MAX_CHARS {
            return Err(format!("must be at most {MESSAGE_MAX_CHARS} characters"));
        }
        let mut segments = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                format!(
                    "`{{{{` at byte {} is never closed",
                    source.len() - rest.len() + open
                )
            })?;
            let name = after[..close].trim();
            let field = FieldPath::parse(name)
                .map_err(|why| format!("placeholder {{{{{name}}}}}: {why}"))?;
            segments.push(Segment::Field(field));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_owned()));
        }
        Ok(MessageTemplate {
            source: source.to_owned(),
            segments,
            placeholder_chars: DEFAULT_PLACEHOLDER_CHARS,
        })
    }

    /// The same template, showing at most `chars` characters of each field's value.
    pub fn with_placeholder_chars(self, chars: u16) -> Self {
        MessageTemplate {
            placeholder_chars: chars,
            ..self
        }
    }

    pub fn placeholder_chars(&self) -> u16 {
        self.placeholder_chars
    }

    /// Fills placeholders from `context`, each cut to the template's placeholder length (a cut
    /// value ends in `…`); a field the context lacks renders as nothing, because events are
    /// free-form and a missing property must not stop an alert.
    pub fn render(&self, context: &Value) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Field(f) => match f.lookup(context) {
                    None => {}
                    Some(Value::String(s)) => self.push_cut(&mut out, s),
                    Some(other) => self.push_cut(&mut out, &other.to_string()),
                },
            }
        }
        out
    }

    fn push_cut(&self, out: &mut String, value: &str) {
        let keep = usize::from(self.placeholder_chars);
        match value.char_indices().nth(keep) {
            None => out.push_str(value),
            Some(_) => {
                // One character of the allowance goes to the ellipsis that says text was cut.
                out.extend(value.chars().take(keep.saturating_sub(1)));
                out.push('…');
            }
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_fields_and_nested_properties() {
        let t = MessageTemplate::parse(
            "User {{user}} paid {{ properties.amount }} for {{properties.type}}.",
        )
        .unwrap();
        let ctx = json!({"user": 1, "properties": {"amount": 3000, "type": "electricity"}});
        assert_eq!(t.render(&ctx), "User 1 paid 3000 for electricity.");
    }

    #[test]
    fn each_placeholder_shows_at_most_its_allowance() {
        let phishing = format!(
            "gas. URGENT: your account is locked, log in at https://evil.example/{}",
            "x".repeat(1500)
        );
        let ctx = json!({"properties": {"type": phishing, "amount": 12345}});
        let t = MessageTemplate::parse("You paid {{properties.amount}} for {{properties.type}}")
            .unwrap();
        let text = t.render(&ctx);
        let shown = text.strip_prefix("You paid 12345 for ").unwrap();
        assert_eq!(
            shown.chars().count(),
            usize::from(DEFAULT_PLACEHOLDER_CHARS)
        );
        assert!(shown.ends_with('…'), "a cut value says so: {shown}");
        assert!(!text.contains("xxxx"));

        let narrow = t.with_placeholder_chars(4);
        assert_eq!(narrow.render(&ctx), "You paid 123… for gas…");
        let exact = MessageTemplate::parse("{{a}}")
            .unwrap()
            .with_placeholder_chars(3);
        assert_eq!(
            exact.render(&json!({"a": "abc"})),
            "abc",
            "a value that fits is not cut"
        );
        assert_eq!(
            exact.render(&json!({"a": "ébcd"})),
            "éb…",
            "cut by characters, not bytes"
        );
    }

    #[test]
    fn missing_fields_render_empty() {
        let t = MessageTemplate::parse("[{{properties.nope}}]").unwrap();
        assert_eq!(t.render(&json!({})), "[]");
    }

    #[test]
    fn a_message_per_language_falls_back_to_shorter_tags_then_the_default() {
        let messages = Messages::parse(
            &json!({"default": "Paid {{amount}}", "pt": "Pago {{amount}}", "pt-br": "Pagou {{amount}}",
                    "es-419": "Pagó {{amount}}"}),
            "$.message",
        )
        .unwrap();
        let (default, translations) = messages.render(&json!({"amount": 7}));
        assert_eq!(default, "Paid 7");
        let read = |tag: Option<&str>| {
            let locale = tag.map(|t| Locale::parse(t).unwrap());
            text_for(&default, &translations, locale.as_ref()).to_owned()
        };
        assert_eq!(read(Some("pt-BR")), "Pagou 7");
        assert_eq!(read(Some("pt-PT")), "Pago 7", "pt-PT falls back to pt");
        assert_eq!(read(Some("pt")), "Pago 7");
        assert_eq!(read(Some("es-419")), "Pagó 7");
        assert_eq!(
            read(Some("es-ES")),
            "Paid 7",
            "es-ES has no es to fall back to"
        );
        assert_eq!(read(Some("en")), "Paid 7");
        assert_eq!(read(None), "Paid 7");
        let plain = Messages::parse(&json!("Paid"), "$.message").unwrap();
        assert!(plain.by_locale.is_empty());
    }

    #[test]
    fn a_message_per_language_is_refused_with_each_problem_named() {
        let problems = |value: Value| {
            Messages::parse(&value, "$.message")
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|(path, _)| path)
                .collect::<Vec<_>>()
        };
        assert_eq!(problems(json!({"pt-BR": "Pagou"})), ["$.message.default"]);
        assert_eq!(
            problems(json!({"default": "Paid", "english!": "x", "pt": 7, "fr": "{{a"})),
            ["$.message.english!", "$.message.fr", "$.message.pt"]
        );
        assert_eq!(
            problems(json!({"default": "Paid", "pt-BR": "a", "pt-br": "b"})),
            ["$.message.pt-br"]
        );
        assert_eq!(problems(json!(["Paid"])), ["$.message"]);
        let many: serde_json::Map<String, Value> = (0..=MAX_MESSAGE_LOCALES)
            .map(|n| (format!("x-{n:03}"), json!("t")))
            .chain([("default".to_owned(), json!("t"))])
            .collect();
        assert!(problems(Value::Object(many)).contains(&"$.message".to_owned()));
    }

    #[test]
    fn malformed_templates_are_refused() {
        assert!(MessageTemplate::parse("hi {{user").is_err());
        assert!(MessageTemplate::parse("hi {{}}").is_err());
        assert!(MessageTemplate::parse("  ").is_err());
        assert!(MessageTemplate::parse(&"x".repeat(1001)).is_err());
        assert!(MessageTemplate::parse("no placeholders } {").is_ok());
    }
}
