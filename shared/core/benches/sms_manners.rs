//! What an SMS's manners cost at delivery: finding when the user's quiet hours end (on their
//! zone's clock, from the bundled tz database), choosing the text in their language (a fallback
//! walk over the rule's languages), and reading one carrier receipt (a delivery status log
//! record). Single thread; `cargo bench -p cuba-core --bench sms_manners` (part of `make bench`).

use std::hint::black_box;
use std::time::Instant;

use cuba_core::delivery::quiet_hours::QuietHours;
use cuba_core::delivery::receipts::SmsReceipt;
use cuba_core::model::domain::Millis;
use cuba_core::model::locality::{Locale, TimeZoneName};
use cuba_core::rules::{Translations, text_for};

const RECORD: &str = include_str!("../tests/fixtures/sms-delivery-success.json");

/// Nanoseconds per call of `f`, over `n` calls (after as many to warm up).
fn time(n: u32, mut f: impl FnMut(u32)) -> f64 {
    for i in 0..n {
        f(i);
    }
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    let quiet = QuietHours::parse("21:00-08:00").expect("a window");
    let zones: Vec<TimeZoneName> = [
        "America/Sao_Paulo",
        "Europe/Lisbon",
        "Asia/Kolkata",
        "America/New_York",
    ]
    .iter()
    .map(|z| TimeZoneName::parse(z).expect("a zone"))
    .collect();
    // A minute apart through a whole day, so half the calls fall in the night.
    let base = 1_780_000_000_000u64;
    let quiet_ns = time(200_000, |i| {
        let zone = &zones[i as usize % zones.len()];
        let at = Millis(base + u64::from(i % 1440) * 60_000);
        black_box(quiet.ends_after(black_box(at), zone.zone()));
    });
    let zone_parse_ns = time(20_000, |i| {
        black_box(TimeZoneName::parse(black_box(zones[i as usize % zones.len()].as_str())).ok());
    });

    let translations: Translations = ["pt", "pt-BR", "es", "es-419", "fr", "de", "zh-Hant"]
        .iter()
        .map(|t| (Locale::parse(t).expect("a tag"), format!("texto {t}")))
        .collect();
    let readers: Vec<Option<Locale>> = ["pt-PT", "es-419", "en-GB", "zh-Hant-TW"]
        .iter()
        .map(|t| Locale::parse(t).ok())
        .chain([None])
        .collect();
    let text_ns = time(1_000_000, |i| {
        let reader = readers[i as usize % readers.len()].as_ref();
        black_box(text_for("default text", black_box(&translations), reader));
    });
    let receipt_ns = time(100_000, |_| {
        black_box(SmsReceipt::from_log_record(black_box(RECORD)).ok());
    });

    println!("SMS manners, per call (single thread)");
    println!("  quiet-hours end, 4 zones, every minute of a day   {quiet_ns:>9.0} ns");
    println!("  a profile's zone read (tz database lookup)        {zone_parse_ns:>9.0} ns");
    println!("  text in the reader's language (7 written, walk)   {text_ns:>9.0} ns");
    println!("  one carrier receipt read (documented record)      {receipt_ns:>9.0} ns");
}
