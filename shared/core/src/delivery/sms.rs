//! SMS length the way carriers bill it. A message in the GSM 7-bit alphabet takes 160 septets
//! in one segment or 153 per segment when split (the extension characters `^{}\[~]|€` take two
//! septets); any other character makes the whole message UCS-2: 70 UTF-16 units in one segment,
//! 67 per segment when split.

/// The GSM 03.38 basic character set.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters sent as an escape plus one septet.
const GSM_EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// How a message is encoded, and so how much fits in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsEncoding {
    Gsm7,
    Ucs2,
}

impl SmsEncoding {
    pub fn of(text: &str) -> Self {
        if text.chars().all(|c| septets(c).is_some()) {
            SmsEncoding::Gsm7
        } else {
            SmsEncoding::Ucs2
        }
    }

    /// Units (septets or UTF-16 units) in a message sent as one segment, and per segment of a
    /// split one.
    fn capacity(self) -> (usize, usize) {
        match self {
            SmsEncoding::Gsm7 => (160, 153),
            SmsEncoding::Ucs2 => (70, 67),
        }
    }

    fn units(self, c: char) -> usize {
        match self {
            SmsEncoding::Gsm7 => septets(c).unwrap_or(2),
            SmsEncoding::Ucs2 => c.len_utf16(),
        }
    }
}

fn septets(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// How many billed segments `text` takes.
pub fn segments(text: &str) -> usize {
    let encoding = SmsEncoding::of(text);
    let units: usize = text.chars().map(|c| encoding.units(c)).sum();
    let (single, split) = encoding.capacity();
    if units <= single {
        1
    } else {
        units.div_ceil(split)
    }
}

/// `text`, cut (ending in `…`) so that it takes at most `max_segments` segments.
pub fn fit(text: &str, max_segments: usize) -> String {
    let max_segments = max_segments.max(1);
    if segments(text) <= max_segments {
        return text.to_owned();
    }
    // `…` is not GSM: a cut GSM text ends in "..." so the cut cannot switch it to UCS-2, which
    // would more than halve what fits.
    let encoding = SmsEncoding::of(text);
    let (single, split) = encoding.capacity();
    let budget = if max_segments == 1 {
        single
    } else {
        split * max_segments
    };
    let ellipsis = match encoding {
        SmsEncoding::Gsm7 => "...",
        SmsEncoding::Ucs2 => "…",
    };
    let mut room = budget - ellipsis.chars().map(|c| encoding.units(c)).sum::<usize>();
    let mut out = String::new();
    for c in text.chars() {
        let units = encoding.units(c);
        if units > room {
            break;
        }
        room -= units;
        out.push(c);
    }
    out.push_str(ellipsis);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_text_counts_septets() {
        assert_eq!(
            SmsEncoding::of("Paid 20000 for gas @ home"),
            SmsEncoding::Gsm7
        );
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        // Extension characters take two septets.
        assert_eq!(segments(&"€".repeat(80)), 1);
        assert_eq!(segments(&"€".repeat(81)), 2);
    }

    #[test]
    fn one_character_outside_gsm_makes_the_message_ucs2() {
        let text = format!("{}✓", "a".repeat(69));
        assert_eq!(SmsEncoding::of(&text), SmsEncoding::Ucs2);
        assert_eq!(segments(&text), 1);
        assert_eq!(segments(&format!("{}✓", "a".repeat(70))), 2);
        // Outside the BMP a character is two UTF-16 units.
        assert_eq!(segments(&"😀".repeat(35)), 1);
        assert_eq!(segments(&"😀".repeat(36)), 2);
    }

    #[test]
    fn fit_cuts_to_the_segment_budget_and_says_so() {
        let long = "a".repeat(1600);
        let cut = fit(&long, 2);
        assert_eq!(segments(&cut), 2);
        assert_eq!(cut.chars().count(), 306);
        assert!(cut.ends_with("..."));
        assert_eq!(
            SmsEncoding::of(&cut),
            SmsEncoding::Gsm7,
            "the cut stays GSM"
        );

        let unicode = "платёж ".repeat(100);
        let cut = fit(&unicode, 2);
        assert_eq!(segments(&cut), 2);
        assert_eq!(cut.encode_utf16().count(), 134);
        assert!(cut.ends_with('…'));

        let one = fit(&long, 1);
        assert_eq!(one.chars().count(), 160);
        assert_eq!(fit("short", 2), "short", "what fits is untouched");
        assert_eq!(
            segments(&fit(&"😀".repeat(100), 1)),
            1,
            "never splits a surrogate pair"
        );
    }
}
