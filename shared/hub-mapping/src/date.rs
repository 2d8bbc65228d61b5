//! Dates: reading ISO 8601, RFC 2822, epoch seconds and milliseconds and explicit strftime
//! formats, writing them back, calendar arithmetic in an IANA zone.
//!
//! A date is an instant plus, when a `parse_date`/`format_date` names one, the zone it is read
//! in: wall-clock times without an offset are read in that zone (UTC otherwise), `add_days`
//! counts calendar days in it (a day across a DST change is 23 or 25 hours), and `format_date`
//! writes in it. A wall-clock time that a DST change skips is read with the offset in force
//! before the change (02:30 on a spring-forward night is 03:30); a repeated one is the earlier
//! instant. In the entity a date is written as JavaScript's `toISOString()` does:
//! `2024-03-31T08:00:00.000Z`.

use std::fmt::Write as _;

use chrono::format::{Fixed, Item, Parsed, StrftimeItems};
use chrono::offset::LocalResult;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use crate::value::{Num, Val};

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DateVal {
    pub(crate) instant: DateTime<Utc>,
    /// The zone named by the schema, if any.
    pub(crate) zone: Option<Tz>,
}

/// Epoch numbers below this magnitude are seconds, others milliseconds: 1e11 seconds is the
/// year 5138, 1e11 milliseconds is March 1973.
const SECONDS_BELOW: f64 = 1e11;

impl DateVal {
    /// `YYYY-MM-DDTHH:MM:SS.sssZ`, as JavaScript's `Date.prototype.toISOString`.
    pub(crate) fn to_iso_string(self) -> String {
        use chrono::Timelike;
        let t = self.instant;
        let mut out = String::with_capacity(27);
        let year = t.year();
        if (0..=9999).contains(&year) {
            push_digits(&mut out, year as u32, 4);
        } else {
            let _ = write!(out, "{year:+07}");
        }
        // Written by hand: this is on the hot path of every date field.
        for (separator, value, width) in [
            ('-', t.month(), 2),
            ('-', t.day(), 2),
            ('T', t.hour(), 2),
            (':', t.minute(), 2),
            (':', t.second(), 2),
            ('.', t.timestamp_subsec_millis().min(999), 3),
        ] {
            out.push(separator);
            push_digits(&mut out, value, width);
        }
        out.push('Z');
        out
    }

    pub(crate) fn epoch_millis(&self) -> i64 {
        self.instant.timestamp_millis()
    }

    /// Calendar days in the value's zone (UTC when it has none).
    pub(crate) fn add_days(&self, days: i32) -> Option<DateVal> {
        let delta = TimeDelta::try_days(i64::from(days))?;
        let instant = match self.zone {
            None => self.instant.checked_add_signed(delta)?,
            Some(tz) => {
                let local = self.instant.with_timezone(&tz).naive_local();
                localize(local.checked_add_signed(delta)?, Some(tz))?
            }
        };
        Some(DateVal {
            instant,
            zone: self.zone,
        })
    }
}

fn push_digits(out: &mut String, value: u32, width: u32) {
    for position in (0..width).rev() {
        let digit = (value / 10u32.pow(position)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Reads a wall-clock time in `zone` (UTC when `None`).
pub(crate) fn localize(naive: NaiveDateTime, zone: Option<Tz>) -> Option<DateTime<Utc>> {
    let Some(tz) = zone else {
        return Some(naive.and_utc());
    };
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(earlier, _) => Some(earlier.with_timezone(&Utc)),
        LocalResult::None => {
            // A gap: use the offset in force a few hours before it.
            let before = naive.checked_sub_signed(TimeDelta::hours(6))?;
            let offset = tz.offset_from_local_datetime(&before).earliest()?;
            let seconds = chrono::Offset::fix(&offset).local_minus_utc();
            Some(
                naive
                    .checked_sub_signed(TimeDelta::seconds(i64::from(seconds)))?
                    .and_utc(),
            )
        }
    }
}

/// Any supported representation, recognised by its shape: a date; a number of epoch seconds
/// (magnitude below 1e11) or milliseconds; text in ISO 8601, RFC 2822 or digits of an epoch.
pub(crate) fn to_date(value: &Val<'_>, zone: Option<Tz>) -> Option<DateVal> {
    let with_zone = |instant| DateVal { instant, zone };
    match value {
        Val::Date(d) => Some(DateVal {
            instant: d.instant,
            zone: zone.or(d.zone),
        }),
        Val::Num(n) => from_epoch_auto(n.to_f64()).map(with_zone),
        Val::Str(s) => parse_text(s, zone),
        _ => None,
    }
}

fn parse_text(text: &str, zone: Option<Tz>) -> Option<DateVal> {
    let text = text.trim();
    let with_zone = |instant| DateVal { instant, zone };
    if let Some(instant) = parse_iso(text, zone) {
        return Some(with_zone(instant));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(text) {
        return Some(with_zone(t.with_timezone(&Utc)));
    }
    if looks_like_epoch(text) {
        return from_epoch_auto(text.parse().ok()?).map(with_zone);
    }
    None
}

fn looks_like_epoch(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty()
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().any(|b| b.is_ascii_digit())
}

fn from_epoch_auto(n: f64) -> Option<DateTime<Utc>> {
    if n.abs() < SECONDS_BELOW {
        from_epoch_seconds(n)
    } else {
        from_epoch_millis(n)
    }
}

pub(crate) fn from_epoch_seconds(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n.abs() > 1e14 {
        return None;
    }
    let seconds = n.floor();
    // A double near 1.7e9 is precise to about 0.2 µs: keep whole microseconds.
    let micros = ((n - seconds) * 1e6).round().clamp(0.0, 999_999.0) as u32;
    DateTime::from_timestamp(seconds as i64, micros * 1000)
}

pub(crate) fn from_epoch_millis(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n.abs() > 1e17 {
        return None;
    }
    if n.fract() == 0.0 {
        return DateTime::from_timestamp_millis(n as i64);
    }
    from_epoch_seconds(n / 1000.0)
}

/// ISO 8601 calendar dates and times: `2024-01-15`, `2024-01-15T10:30`,
/// `2024-01-15 10:30:00.123+02:00`, `2024-01-15T10:30:00.000+0000` (Salesforce),
/// `20240115T103000Z` (basic format, with a time). A time without an offset is read in `zone`.
pub(crate) fn parse_iso(text: &str, zone: Option<Tz>) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let mut pos = 0;
    let number = |pos: &mut usize, width: usize| -> Option<u32> {
        let digits = b.get(*pos..*pos + width)?;
        let mut n = 0u32;
        for &d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            n = n * 10 + u32::from(d - b'0');
        }
        *pos += width;
        Some(n)
    };
    let year = number(&mut pos, 4)?;
    let extended = b.get(pos) == Some(&b'-');
    if extended {
        pos += 1;
    }
    let month = number(&mut pos, 2)?;
    if extended {
        (b.get(pos) == Some(&b'-')).then_some(())?;
        pos += 1;
    }
    let day = number(&mut pos, 2)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)?;
    if pos == b.len() {
        if !extended {
            // `20240115` alone is more likely an epoch or an id than a date.
            return None;
        }
        return localize(date.and_time(NaiveTime::MIN), zone);
    }
    match b[pos] {
        b'T' | b't' => pos += 1,
        b' ' if extended => pos += 1,
        _ => return None,
    }
    let hour = number(&mut pos, 2)?;
    if extended {
        (b.get(pos) == Some(&b':')).then_some(())?;
        pos += 1;
    }
    let minute = number(&mut pos, 2)?;
    let mut second = 0;
    let mut nanos = 0u32;
    let has_seconds = if extended {
        b.get(pos) == Some(&b':')
    } else {
        b.get(pos).is_some_and(u8::is_ascii_digit)
    };
    if has_seconds {
        if extended {
            pos += 1;
        }
        second = number(&mut pos, 2)?;
        if let Some(b'.' | b',') = b.get(pos) {
            pos += 1;
            let start = pos;
            while b.get(pos).is_some_and(u8::is_ascii_digit) {
                if pos - start < 9 {
                    nanos = nanos * 10 + u32::from(b[pos] - b'0');
                }
                pos += 1;
            }
            let written = pos - start;
            if written == 0 {
                return None;
            }
            for _ in written..9 {
                nanos *= 10;
            }
        }
    }
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let naive = date.and_time(time);
    if pos == b.len() {
        return localize(naive, zone);
    }
    let offset_seconds: i64 = match b[pos] {
        b'Z' | b'z' => {
            pos += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            pos += 1;
            let hours = number(&mut pos, 2)?;
            let mut minutes = 0;
            if b.get(pos) == Some(&b':') {
                pos += 1;
                minutes = number(&mut pos, 2)?;
            } else if pos < b.len() {
                minutes = number(&mut pos, 2)?;
            }
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = i64::from(hours * 3600 + minutes * 60);
            if sign == b'-' { -total } else { total }
        }
        _ => return None,
    };
    if pos != b.len() {
        return None;
    }
    Some(
        naive
            .checked_sub_signed(TimeDelta::seconds(offset_seconds))?
            .and_utc(),
    )
}

/// How `parse_date` reads text.
#[derive(Debug, Clone)]
pub(crate) enum DateInput {
    Iso,
    Rfc2822,
    EpochSeconds,
    EpochMillis,
    Pattern(Vec<Item<'static>>),
}

/// How `format_date` writes a date.
#[derive(Debug, Clone)]
pub(crate) enum DateOutput {
    Iso,
    Rfc2822,
    EpochSeconds,
    EpochMillis,
    Pattern(Vec<Item<'static>>),
}

fn strftime(format: &str) -> Result<Vec<Item<'static>>, String> {
    StrftimeItems::new(format)
        .parse_to_owned()
        .map_err(|_| format!("`{format}` is not a valid strftime format"))
}

pub(crate) fn compile_input(format: &str) -> Result<DateInput, String> {
    Ok(match format {
        "iso8601" | "rfc3339" => DateInput::Iso,
        "rfc2822" => DateInput::Rfc2822,
        "epoch_seconds" => DateInput::EpochSeconds,
        "epoch_millis" => DateInput::EpochMillis,
        pattern => {
            let items = strftime(pattern)?;
            if items
                .iter()
                .any(|item| matches!(item, Item::Fixed(Fixed::TimezoneName)))
            {
                return Err(
                    "`%Z` (a zone abbreviation) cannot be read back; use `%z` or a `timezone`"
                        .into(),
                );
            }
            if !items.iter().any(|item| matches!(item, Item::Numeric(..))) {
                return Err(format!("`{pattern}` has no date or time field"));
            }
            DateInput::Pattern(items)
        }
    })
}

pub(crate) fn compile_output(format: &str) -> Result<DateOutput, String> {
    Ok(match format {
        "iso8601" | "rfc3339" => DateOutput::Iso,
        "rfc2822" => DateOutput::Rfc2822,
        "epoch_seconds" => DateOutput::EpochSeconds,
        "epoch_millis" => DateOutput::EpochMillis,
        pattern => DateOutput::Pattern(strftime(pattern)?),
    })
}

/// `parse_date`: `None` when the value does not match the format.
pub(crate) fn parse_with(value: &Val<'_>, input: &DateInput, zone: Option<Tz>) -> Option<DateVal> {
    let with_zone = |instant| DateVal { instant, zone };
    let number = || match value {
        Val::Num(n) => Some(n.to_f64()),
        Val::Str(s) if looks_like_epoch(s.trim()) => s.trim().parse().ok(),
        _ => None,
    };
    match (input, value) {
        (_, Val::Date(d)) => Some(DateVal {
            instant: d.instant,
            zone: zone.or(d.zone),
        }),
        (DateInput::EpochSeconds, _) => from_epoch_seconds(number()?).map(with_zone),
        (DateInput::EpochMillis, _) => from_epoch_millis(number()?).map(with_zone),
        (DateInput::Iso, Val::Str(s)) => parse_iso(s.trim(), zone).map(with_zone),
        (DateInput::Rfc2822, Val::Str(s)) => DateTime::parse_from_rfc2822(s.trim())
            .ok()
            .map(|t| with_zone(t.with_timezone(&Utc))),
        (DateInput::Pattern(items), Val::Str(s)) => parse_pattern(s, items, zone).map(with_zone),
        (DateInput::Pattern(items), Val::Num(n)) => {
            parse_pattern(&n.text(), items, zone).map(with_zone)
        }
        _ => None,
    }
}

fn parse_pattern(text: &str, items: &[Item<'static>], zone: Option<Tz>) -> Option<DateTime<Utc>> {
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, text, items.iter()).ok()?;
    if let Some(timestamp) = parsed.timestamp() {
        let nanos = parsed.nanosecond().unwrap_or(0);
        return DateTime::from_timestamp(timestamp, nanos);
    }
    let date = parsed.to_naive_date().ok()?;
    let time = if parsed.hour_div_12().is_none() && parsed.hour_mod_12().is_none() {
        NaiveTime::MIN
    } else {
        if parsed.minute().is_none() {
            parsed.set_minute(0).ok()?;
        }
        parsed.to_naive_time().ok()?
    };
    let naive = date.and_time(time);
    match parsed.offset() {
        Some(offset) => Some(
            naive
                .checked_sub_signed(TimeDelta::seconds(i64::from(offset)))?
                .and_utc(),
        ),
        None => localize(naive, zone),
    }
}

/// `format_date`: text, or a number for the epoch formats; `None` when an item cannot be
/// written for this date.
pub(crate) fn format_with(
    date: &DateVal,
    output: &DateOutput,
    zone: Option<Tz>,
) -> Option<Val<'static>> {
    let zone = zone.or(date.zone).unwrap_or(Tz::UTC);
    let local = date.instant.with_timezone(&zone);
    Some(match output {
        DateOutput::Iso => Val::Str(date.to_iso_string().into()),
        DateOutput::Rfc2822 => Val::Str(local.to_rfc2822().into()),
        DateOutput::EpochSeconds => Val::Num(Num::Int(date.instant.timestamp())),
        DateOutput::EpochMillis => Val::Num(Num::Int(date.epoch_millis())),
        DateOutput::Pattern(items) => {
            let mut out = String::new();
            write!(out, "{}", local.format_with_items(items.iter())).ok()?;
            Val::Str(out.into())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    impl DateVal {
        fn utc(instant: DateTime<Utc>) -> DateVal {
            DateVal {
                instant,
                zone: None,
            }
        }
    }

    fn iso(text: &str) -> Option<String> {
        parse_iso(text, None).map(|t| DateVal::utc(t).to_iso_string())
    }

    #[test]
    fn iso_8601_variants() {
        assert_eq!(
            iso("2024-01-15").as_deref(),
            Some("2024-01-15T00:00:00.000Z")
        );
        assert_eq!(
            iso("2024-01-15T10:30").as_deref(),
            Some("2024-01-15T10:30:00.000Z")
        );
        assert_eq!(
            iso("2024-01-15T10:30:00Z").as_deref(),
            Some("2024-01-15T10:30:00.000Z")
        );
        assert_eq!(
            iso("2024-01-15 10:30:00.123456+02:00").as_deref(),
            Some("2024-01-15T08:30:00.123Z")
        );
        assert_eq!(
            iso("2024-01-15T10:30:00.000+0000").as_deref(),
            Some("2024-01-15T10:30:00.000Z")
        );
        assert_eq!(
            iso("2024-01-15T10:30:00-05").as_deref(),
            Some("2024-01-15T15:30:00.000Z")
        );
        assert_eq!(
            iso("20240115T103000Z").as_deref(),
            Some("2024-01-15T10:30:00.000Z")
        );
        assert_eq!(
            iso("2024-01-15T10:30:00,5Z").as_deref(),
            Some("2024-01-15T10:30:00.500Z")
        );
        for bad in [
            "2024-13-01",
            "2024-02-30",
            "2024-01-15T25:00",
            "2024-01-15T10:30:00+24:00",
            "2024-01-15X",
            "20240115",
            "2024-1-5",
            "2024-01-15T10:30:00.Z",
            "",
            "2024-01-15T10:30:00Zjunk",
        ] {
            assert_eq!(iso(bad), None, "{bad}");
        }
    }

    #[test]
    fn wall_clock_times_are_read_in_the_zone_across_dst() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let read = |t: &str| DateVal::utc(parse_iso(t, Some(paris)).unwrap()).to_iso_string();
        assert_eq!(read("2024-01-15T10:00:00"), "2024-01-15T09:00:00.000Z");
        assert_eq!(read("2024-07-15T10:00:00"), "2024-07-15T08:00:00.000Z");
        // Skipped by the spring-forward change: read with the winter offset.
        assert_eq!(read("2024-03-31T02:30:00"), "2024-03-31T01:30:00.000Z");
        // Repeated by the fall-back change: the earlier instant.
        assert_eq!(read("2024-10-27T02:30:00"), "2024-10-27T00:30:00.000Z");
        // An explicit offset wins over the zone.
        assert_eq!(read("2024-01-15T10:00:00Z"), "2024-01-15T10:00:00.000Z");
    }

    #[test]
    fn add_days_counts_calendar_days_in_the_zone() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let start = DateVal {
            instant: parse_iso("2024-03-30T12:00:00", Some(paris)).unwrap(),
            zone: Some(paris),
        };
        let next = start.add_days(1).unwrap();
        assert_eq!((next.instant - start.instant).num_hours(), 23);
        let utc = DateVal::utc(start.instant).add_days(1).unwrap();
        assert_eq!((utc.instant - start.instant).num_hours(), 24);
        assert!(start.add_days(i32::MAX).is_none());
    }

    #[test]
    fn auto_detection_of_text_and_numbers() {
        let auto = |v: Val<'_>| to_date(&v, None).map(|d| d.to_iso_string());
        assert_eq!(
            auto(Val::Num(Num::Int(1_705_314_600))).as_deref(),
            Some("2024-01-15T10:30:00.000Z")
        );
        assert_eq!(
            auto(Val::Num(Num::Int(1_705_314_600_123))).as_deref(),
            Some("2024-01-15T10:30:00.123Z")
        );
        assert_eq!(
            auto(Val::Str("1705314600".into())).as_deref(),
            Some("2024-01-15T10:30:00.000Z")
        );
        assert_eq!(
            auto(Val::Str("Mon, 15 Jan 2024 10:30:00 GMT".into())).as_deref(),
            Some("2024-01-15T10:30:00.000Z")
        );
        assert_eq!(
            auto(Val::Str("Mon, 15 Jan 2024 11:30:00 +0100".into())).as_deref(),
            Some("2024-01-15T10:30:00.000Z")
        );
        assert_eq!(auto(Val::Str("yesterday".into())), None);
        assert_eq!(auto(Val::Bool(true)), None);
        assert_eq!(auto(Val::Num(Num::Float(1e300))), None);
    }

    #[test]
    fn explicit_patterns() {
        let input = compile_input("%d/%m/%Y %H:%M").unwrap();
        let ny: Tz = "America/New_York".parse().unwrap();
        let d = parse_with(&Val::Str("15/01/2024 10:30".into()), &input, Some(ny)).unwrap();
        assert_eq!(d.to_iso_string(), "2024-01-15T15:30:00.000Z");
        let out = compile_output("%Y-%m-%d %H:%M %Z").unwrap();
        let text = format_with(&d, &out, None).unwrap();
        assert!(matches!(text, Val::Str(s) if s == "2024-01-15 10:30 EST"));
        let date_only = compile_input("%Y%m%d").unwrap();
        let d = parse_with(&Val::Num(Num::Int(20_240_115)), &date_only, None).unwrap();
        assert_eq!(d.to_iso_string(), "2024-01-15T00:00:00.000Z");
        let hour_only = compile_input("%Y-%m-%d %Hh").unwrap();
        let d = parse_with(&Val::Str("2024-01-15 09h".into()), &hour_only, None).unwrap();
        assert_eq!(d.to_iso_string(), "2024-01-15T09:00:00.000Z");
        let stamp = compile_input("%s").unwrap();
        let d = parse_with(&Val::Str("1705314600".into()), &stamp, None).unwrap();
        assert_eq!(d.to_iso_string(), "2024-01-15T10:30:00.000Z");
        assert!(parse_with(&Val::Str("2024-01-15".into()), &input, None).is_none());
        assert!(compile_input("%Q").is_err());
        assert!(compile_input("%Y-%m-%d %Z").is_err());
        assert!(compile_input("no fields").is_err());
        assert!(compile_output("%Q").is_err());
    }
}
