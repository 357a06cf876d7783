//! Message templates: text with `{{field.path}}` placeholders filled from the alert's context.

use serde_json::Value;

use super::pattern::FieldPath;

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
    fn malformed_templates_are_refused() {
        assert!(MessageTemplate::parse("hi {{user").is_err());
        assert!(MessageTemplate::parse("hi {{}}").is_err());
        assert!(MessageTemplate::parse("  ").is_err());
        assert!(MessageTemplate::parse(&"x".repeat(1001)).is_err());
        assert!(MessageTemplate::parse("no placeholders } {").is_ok());
    }
}
