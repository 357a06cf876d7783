//! Where a user lives, as far as messages care: their time zone (when it is night for them) and
//! their language. Both are validated when a profile is written, so delivery never meets a zone
//! it cannot resolve or a tag it cannot fall back from.

use std::fmt;

use icu_locale_core::LanguageIdentifier;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IANA time zone (`America/Sao_Paulo`, `Europe/Lisbon`, `UTC`), resolved against the tz
/// database built into Cuba (so Lambda and a laptop agree, whatever their system has).
#[derive(Clone)]
pub struct TimeZoneName {
    name: String,
    zone: jiff::tz::TimeZone,
}

impl TimeZoneName {
    pub const UTC: &str = "UTC";

    /// Reads an IANA zone name. Offsets (`+03:00`) and abbreviations (`EST`, which the database
    /// keeps only for old systems) are refused: a user's zone must follow its daylight saving
    /// rules, which only a region name carries.
    pub fn parse(name: &str) -> Result<Self, String> {
        let trimmed = name.trim();
        let region_or_utc = trimmed.contains('/') || trimmed == Self::UTC;
        let zone = if region_or_utc {
            jiff::tz::db().get(trimmed).ok()
        } else {
            None
        };
        match zone {
            Some(zone) => Ok(TimeZoneName {
                name: trimmed.to_owned(),
                zone,
            }),
            None => Err(format!(
                "`{}` is not an IANA time zone name (for example `America/Sao_Paulo` or `UTC`)",
                trimmed.chars().take(64).collect::<String>()
            )),
        }
    }

    pub fn utc() -> Self {
        TimeZoneName {
            name: Self::UTC.to_owned(),
            zone: jiff::tz::TimeZone::UTC,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    pub fn zone(&self) -> &jiff::tz::TimeZone {
        &self.zone
    }
}

impl PartialEq for TimeZoneName {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for TimeZoneName {}

impl fmt::Debug for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimeZoneName({})", self.name)
    }
}

impl fmt::Display for TimeZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Serialize for TimeZoneName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        TimeZoneName::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// The longest tag Cuba keeps; BCP 47 allows longer with extensions, which messages do not use.
pub const LOCALE_MAX_CHARS: usize = 35;

/// A BCP 47 language tag (`pt-BR`, `en`, `zh-Hant-TW`), kept in its canonical case.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Locale(String);

impl Locale {
    pub fn parse(tag: &str) -> Result<Self, String> {
        let trimmed = tag.trim();
        let refused = || {
            format!(
                "`{}` is not a BCP 47 language tag (for example `en`, `pt-BR` or `zh-Hant-TW`)",
                trimmed.chars().take(64).collect::<String>()
            )
        };
        if trimmed.chars().count() > LOCALE_MAX_CHARS {
            return Err(refused());
        }
        let id = LanguageIdentifier::try_from_str(trimmed).map_err(|_| refused())?;
        // `und` (undetermined) parses, but says nothing a message could be chosen by.
        if id.language.is_unknown() {
            return Err(refused());
        }
        Ok(Locale(id.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This tag, then each shorter tag it falls back to: `zh-Hant-TW`, `zh-Hant`, `zh`. (The
    /// rule's `default` comes after the last.)
    pub fn fallbacks(&self) -> Vec<Locale> {
        let mut chain = vec![self.clone()];
        let mut tag = self.0.as_str();
        while let Some(cut) = tag.rfind('-') {
            tag = &tag[..cut];
            chain.push(Locale(tag.to_owned()));
        }
        chain
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Locale {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Locale {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let tag = String::deserialize(deserializer)?;
        Locale::parse(&tag).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_region_names_from_the_tz_database() {
        assert_eq!(
            TimeZoneName::parse("America/Sao_Paulo").map(|z| z.to_string()),
            Ok("America/Sao_Paulo".to_owned())
        );
        assert!(TimeZoneName::parse("UTC").is_ok());
        // Links the database keeps for renamed zones still resolve.
        assert!(TimeZoneName::parse("Asia/Calcutta").is_ok());
        for refused in [
            "",
            "Mars/Olympus",
            "EST",
            "+03:00",
            "america/sao paulo",
            "Z",
        ] {
            let error = TimeZoneName::parse(refused).expect_err(refused);
            assert!(error.contains("IANA"), "{refused}: {error}");
        }
    }

    #[test]
    fn locales_are_canonical_bcp47_tags() {
        let canonical = |tag: &str| Locale::parse(tag).map(|l| l.to_string());
        assert_eq!(canonical("pt-br"), Ok("pt-BR".to_owned()));
        assert_eq!(canonical("ZH-hant-tw"), Ok("zh-Hant-TW".to_owned()));
        assert_eq!(canonical("en"), Ok("en".to_owned()));
        assert_eq!(canonical("es-419"), Ok("es-419".to_owned()));
        for refused in [
            "",
            "e",
            "english!",
            "pt_BR_x",
            "und",
            "pt-BR-abcdefghijklmnopqrstuvwxyz12",
        ] {
            assert!(Locale::parse(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_locale_falls_back_by_dropping_subtags() {
        let chain = |tag: &str| -> Vec<String> {
            Locale::parse(tag)
                .map(|l| l.fallbacks().iter().map(Locale::to_string).collect())
                .unwrap_or_default()
        };
        assert_eq!(chain("pt-BR"), ["pt-BR", "pt"]);
        assert_eq!(chain("zh-Hant-TW"), ["zh-Hant-TW", "zh-Hant", "zh"]);
        assert_eq!(chain("en"), ["en"]);
    }
}
