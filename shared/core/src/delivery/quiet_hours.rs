//! Quiet hours: a stretch of the user's night (in their own time zone) in which an SMS that its
//! rule lets wait is held, then sent when the stretch ends. Wall-clock times are what a user
//! means by "night", so the end is found on their local clock, across daylight saving changes.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::{DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};

use crate::model::domain::Millis;
use crate::model::locality::{Locale, TimeZoneName};

/// How an SMS meets its user: when it may go out (the deployment's quiet hours, none: any
/// time), read on the clock of the user's zone, or of `default_zone` for users who named none;
/// and in which language, theirs or `default_locale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsManners {
    pub quiet: Option<QuietHours>,
    pub default_zone: TimeZoneName,
    /// `None`: users who named no language get the rule's `default` text.
    pub default_locale: Option<Locale>,
}

impl Default for SmsManners {
    fn default() -> Self {
        SmsManners {
            quiet: None,
            default_zone: TimeZoneName::utc(),
            default_locale: None,
        }
    }
}

/// An SMS held for the user's night.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub until: Millis,
    /// Says which window on whose clock, for the ledger.
    pub reason: String,
}

impl SmsManners {
    /// The date on the clock of a user in `zone` (`None`: the default zone) at `now`: the day
    /// their SMS cap counts in.
    pub fn local_day(&self, zone: Option<&TimeZoneName>, now: Millis) -> jiff::civil::Date {
        let zone = zone.unwrap_or(&self.default_zone);
        let at = instant(now).unwrap_or(Timestamp::UNIX_EPOCH);
        at.to_zoned_datetime(zone.zone().clone()).date()
    }

    /// Whether an SMS to a user in `zone` (`None`: the default zone) is held at `now`.
    pub fn held(&self, zone: Option<&TimeZoneName>, now: Millis) -> Option<Held> {
        let quiet = self.quiet?;
        let zone = zone.unwrap_or(&self.default_zone);
        let until = quiet.ends_after(now, zone.zone())?;
        Some(Held {
            until,
            reason: format!("held for the user's quiet hours ({quiet} in {zone})"),
        })
    }
}

/// A daily window of local wall-clock time, `start` inclusive to `end` exclusive; it runs past
/// midnight when `end` is earlier than `start` (21:00-08:00).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: Time,
    end: Time,
}

impl QuietHours {
    /// Reads `HH:MM-HH:MM` (24-hour clock).
    pub fn parse(text: &str) -> Result<Self, String> {
        let refused = || {
            format!(
                "`{}` is not a quiet-hours window: write HH:MM-HH:MM, for example 21:00-08:00",
                text.chars().take(32).collect::<String>()
            )
        };
        let (start, end) = text.trim().split_once('-').ok_or_else(refused)?;
        let (start, end) = (
            clock_time(start).ok_or_else(refused)?,
            clock_time(end).ok_or_else(refused)?,
        );
        if start == end {
            return Err(format!(
                "quiet hours from {text} would be empty or the whole day: start and end must differ"
            ));
        }
        Ok(QuietHours { start, end })
    }

    fn contains(&self, time: Time) -> bool {
        if self.start < self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }

    /// When the quiet hours holding at `now` in `zone` end, or `None` when `now` is outside
    /// them there: the first instant at which the local clock reads `end` or later.
    pub fn ends_after(&self, now: Millis, zone: &TimeZone) -> Option<Millis> {
        let now = instant(now)?;
        let local = now.to_zoned_datetime(zone.clone());
        if !self.contains(local.time()) {
            return None;
        }
        let mut day = local.date();
        if local.time() >= self.end {
            // Past midnight is still ahead: the window ends tomorrow.
            day = day.tomorrow().ok()?;
        }
        let end = first_instant_reading(zone, day.to_datetime(self.end), now)?;
        u64::try_from(end.as_millisecond()).ok().map(Millis)
    }
}

/// The first instant after `after` at which `zone`'s clock reads `wall` or later. A time in a
/// skipped hour is first reached at the jump itself; a time in a repeated hour is reached on the
/// first pass, unless that pass is over.
fn first_instant_reading(zone: &TimeZone, wall: DateTime, after: Timestamp) -> Option<Timestamp> {
    match zone.to_ambiguous_timestamp(wall).offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(wall).ok(),
        AmbiguousOffset::Gap { after: later, .. } => {
            // `wall` read with the offset after the jump lies before the jump; the next
            // transition from there is the jump.
            let before_jump = later.to_timestamp(wall).ok()?;
            zone.following(before_jump).next().map(|t| t.timestamp())
        }
        AmbiguousOffset::Fold {
            before,
            after: second,
        } => {
            let first = before.to_timestamp(wall).ok()?;
            if first > after {
                Some(first)
            } else {
                second.to_timestamp(wall).ok()
            }
        }
    }
}

/// `at` as jiff's instant; `None` past jiff's range (year 9999).
fn instant(at: Millis) -> Option<Timestamp> {
    Timestamp::from_millisecond(i64::try_from(at.0).ok()?).ok()
}

fn clock_time(text: &str) -> Option<Time> {
    let (hours, minutes) = text.trim().split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let (hours, minutes) = (hours.parse::<i8>().ok()?, minutes.parse::<i8>().ok()?);
    Time::new(hours, minutes, 0, 0).ok()
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start.hour(),
            self.start.minute(),
            self.end.hour(),
            self.end.minute()
        )
    }
}

impl fmt::Debug for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "QuietHours({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::locality::TimeZoneName;

    fn zone(name: &str) -> TimeZone {
        TimeZoneName::parse(name)
            .map(|z| z.zone().clone())
            .unwrap_or(TimeZone::UTC)
    }

    /// Milliseconds of an RFC 3339 instant.
    fn at(instant: &str) -> Millis {
        let ts: Timestamp = instant.parse().unwrap_or(Timestamp::UNIX_EPOCH);
        Millis(u64::try_from(ts.as_millisecond()).unwrap_or(0))
    }

    fn ends(window: &str, zone_name: &str, now: &str) -> Option<String> {
        let quiet = QuietHours::parse(window).ok()?;
        let end = quiet.ends_after(at(now), &zone(zone_name))?;
        let ts = Timestamp::from_millisecond(i64::try_from(end.0).ok()?).ok()?;
        Some(ts.to_zoned_datetime(zone(zone_name)).to_string())
    }

    #[test]
    fn parses_windows_and_refuses_what_is_not_one() {
        assert_eq!(
            QuietHours::parse("21:00-08:00").map(|q| q.to_string()),
            Ok("21:00-08:00".to_owned())
        );
        assert_eq!(
            QuietHours::parse(" 13:30 - 14:45 ").map(|q| q.to_string()),
            Ok("13:30-14:45".to_owned())
        );
        for refused in [
            "",
            "21:00",
            "21-08",
            "25:00-08:00",
            "21:00-08:60",
            "9:00-10:00",
        ] {
            assert!(QuietHours::parse(refused).is_err(), "{refused}");
        }
        let empty = QuietHours::parse("08:00-08:00").expect_err("an empty window");
        assert!(empty.contains("must differ"), "{empty}");
    }

    #[test]
    fn a_window_past_midnight_ends_the_next_morning_on_the_users_clock() {
        // 23:30 in São Paulo (UTC-3) is 02:30 UTC the next day.
        assert_eq!(
            ends("21:00-08:00", "America/Sao_Paulo", "2026-06-11T02:30:00Z").as_deref(),
            Some("2026-06-11T08:00:00-03:00[America/Sao_Paulo]")
        );
        // 03:00 there: the same morning.
        assert_eq!(
            ends("21:00-08:00", "America/Sao_Paulo", "2026-06-11T06:00:00Z").as_deref(),
            Some("2026-06-11T08:00:00-03:00[America/Sao_Paulo]")
        );
        // 12:00 there: not quiet. 20:59:59 neither; 21:00 is.
        assert_eq!(
            ends("21:00-08:00", "America/Sao_Paulo", "2026-06-11T15:00:00Z"),
            None
        );
        assert_eq!(
            ends("21:00-08:00", "America/Sao_Paulo", "2026-06-11T23:59:59Z"),
            None
        );
        assert!(ends("21:00-08:00", "America/Sao_Paulo", "2026-06-12T00:00:00Z").is_some());
        // 08:00 sharp is over.
        assert_eq!(
            ends("21:00-08:00", "America/Sao_Paulo", "2026-06-11T11:00:00Z"),
            None
        );
    }

    #[test]
    fn a_window_within_one_day() {
        assert_eq!(
            ends("13:00-14:00", "UTC", "2026-06-11T13:59:00Z").as_deref(),
            Some("2026-06-11T14:00:00+00:00[UTC]")
        );
        assert_eq!(ends("13:00-14:00", "UTC", "2026-06-11T12:59:00Z"), None);
    }

    #[test]
    fn an_end_in_the_skipped_hour_is_reached_at_the_jump() {
        // New York springs forward on 2026-03-08: 02:00 EST becomes 03:00 EDT, so 02:30 is
        // never on the clock; the first moment at or past it is 03:00 EDT.
        assert_eq!(
            ends("22:00-02:30", "America/New_York", "2026-03-08T06:30:00Z").as_deref(),
            Some("2026-03-08T03:00:00-04:00[America/New_York]")
        );
        // An ordinary end that night is one hour closer than usual.
        assert_eq!(
            ends("21:00-08:00", "America/New_York", "2026-03-08T04:00:00Z").as_deref(),
            Some("2026-03-08T08:00:00-04:00[America/New_York]")
        );
    }

    #[test]
    fn an_end_in_the_repeated_hour_is_reached_once() {
        // New York falls back on 2026-11-01: 01:00-02:00 happens twice (EDT, then EST).
        // 00:30 EDT: the first 01:30 ends it.
        assert_eq!(
            ends("22:00-01:30", "America/New_York", "2026-11-01T04:30:00Z").as_deref(),
            Some("2026-11-01T01:30:00-04:00[America/New_York]")
        );
        // 01:10 on the second pass (EST): the first 01:30 is past; the second one ends it.
        assert_eq!(
            ends("22:00-01:30", "America/New_York", "2026-11-01T06:10:00Z").as_deref(),
            Some("2026-11-01T01:30:00-05:00[America/New_York]")
        );
        // 01:40 on the first pass (EDT): past the end, not quiet; and on the second pass it
        // is not quiet either (the clock reads 01:40 again).
        assert_eq!(
            ends("22:00-01:30", "America/New_York", "2026-11-01T05:40:00Z"),
            None
        );
        assert_eq!(
            ends("22:00-01:30", "America/New_York", "2026-11-01T06:40:00Z"),
            None
        );
    }

    #[test]
    fn the_dateline_is_the_users_date_not_utcs() {
        // 22:00 on 2026-06-11 in Kiritimati (UTC+14) is 08:00 UTC the same day; in Pago Pago
        // (UTC-11), 22:00 on 2026-06-10 is 09:00 UTC on the 11th.
        assert_eq!(
            ends("21:00-08:00", "Pacific/Kiritimati", "2026-06-11T08:00:00Z").as_deref(),
            Some("2026-06-12T08:00:00+14:00[Pacific/Kiritimati]")
        );
        assert_eq!(
            ends("21:00-08:00", "Pacific/Pago_Pago", "2026-06-11T09:00:00Z").as_deref(),
            Some("2026-06-11T08:00:00-11:00[Pacific/Pago_Pago]")
        );
    }
}
