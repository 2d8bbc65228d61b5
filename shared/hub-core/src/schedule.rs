//! When a sync task runs: the one function that computes the next occurrence of a schedule.
//!
//! # `next_after(now)`
//!
//! [`next_after`] returns the first occurrence *strictly after* `now`, or `None` for a schedule
//! that is never due. The trigger treats a task as due when its stored `nextRunAt <= now`, and
//! claims it by moving `nextRunAt` to `next_after(now)`: computed from the claim time, not from
//! the occurrence that was missed. So after downtime every missed occurrence collapses into the
//! one run started at the claim, and the task is back on its grid at the next occurrence after
//! that (an hourly task down for five hours runs once on recovery, not five times).
//!
//! # Kinds
//!
//! - **interval**: the occurrences are `anchor + k * period` for every integer `k` (the trigger
//!   anchors at the task's creation time). Anchoring keeps the grid fixed: a slow claim or a
//!   downtime never shifts later runs. Periods are fixed durations in UTC, so "every 1 day" is
//!   every 24 hours and its wall-clock time moves by an hour across a DST change; a schedule
//!   that must follow the wall clock is a cron schedule. Occurrences fall on whole seconds.
//! - **cron**: five-field expressions read on the wall clock of an IANA time zone, with the DST
//!   behaviour of Vixie cron (which croner implements, and which cron users expect):
//!   - a *fixed-time* job (single minute and hour, such as `30 2 * * *`) whose time does not
//!     exist on a spring-forward day runs once, at the first instant after the gap (02:30 in
//!     `America/New_York` on 2025-03-09 runs at 03:00 EDT); on a fall-back day its repeated time
//!     runs once, at the first (daylight-time) instant;
//!   - a *wildcard* job (`*/15 * * * *`, `0 * * * *`, ranges, lists) runs at every matching
//!     instant that exists: nothing in the gap, both halves of the repeated hour.
//! - **manual**: never due (runs only when triggered by hand).
//! - **realtime**: driven by webhooks, never due, unless it has a reconciliation schedule
//!   (interval or cron), whose occurrences it then has.

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{CronSchedule, IntervalSchedule, ScheduleConfig};

/// Why no next occurrence could be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// A cron expression that parses but matches no real date (`0 0 30 2 *`).
    #[error("the cron expression `{expression}` matches no date after {after}")]
    NoOccurrence { expression: String, after: String },
    /// The next occurrence is beyond the range of representable times.
    #[error("the next occurrence of the schedule is beyond the representable time range")]
    OutOfRange,
}

impl ScheduleError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoOccurrence { .. } => "no_occurrence",
            Self::OutOfRange => "schedule_out_of_range",
        }
    }
}

/// Whether a schedule ever makes its task due (manual and plain realtime schedules do not).
pub fn is_scheduled(schedule: &ScheduleConfig) -> bool {
    match schedule {
        ScheduleConfig::Manual(_) => false,
        ScheduleConfig::Interval(_) | ScheduleConfig::Cron(_) => true,
        ScheduleConfig::Realtime(realtime) => {
            realtime.reconciliation.as_deref().is_some_and(is_scheduled)
        }
    }
}

/// The first occurrence of `schedule` strictly after `now`; `None` when it is never due.
/// `anchor` places an interval schedule's grid (see the module documentation); other kinds
/// ignore it.
pub fn next_after(
    schedule: &ScheduleConfig,
    anchor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ScheduleError> {
    match schedule {
        ScheduleConfig::Manual(_) => Ok(None),
        ScheduleConfig::Interval(interval) => interval_next_after(interval, anchor, now).map(Some),
        ScheduleConfig::Cron(cron) => cron_next_after(cron, now).map(Some),
        ScheduleConfig::Realtime(realtime) => match realtime.reconciliation.as_deref() {
            Some(reconciliation) => next_after(reconciliation, anchor, now),
            None => Ok(None),
        },
    }
}

fn interval_next_after(
    interval: &IntervalSchedule,
    anchor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ScheduleError> {
    // `IntervalCount` caps the period, so it is at least a minute and fits in i64 seconds.
    let period = interval.period().num_seconds().max(1);
    // Whole seconds: the occurrence at `k` is the last one at or before floor(now), so `k + 1`
    // is the first strictly after `now` whatever its sub-second part.
    let anchor_secs = anchor.timestamp();
    let elapsed = now
        .timestamp()
        .checked_sub(anchor_secs)
        .ok_or(ScheduleError::OutOfRange)?;
    let k = elapsed.div_euclid(period);
    let offset = k
        .checked_add(1)
        .and_then(|k| k.checked_mul(period))
        .and_then(|offset| anchor_secs.checked_add(offset))
        .ok_or(ScheduleError::OutOfRange)?;
    DateTime::from_timestamp(offset, 0).ok_or(ScheduleError::OutOfRange)
}

fn cron_next_after(
    cron: &CronSchedule,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ScheduleError> {
    let zone = cron.timezone.tz();
    // Expressions have no seconds field, so every occurrence is on a whole second: searching
    // after the whole second of `now` finds the first occurrence strictly after `now`.
    let start = now
        .checked_sub_signed(TimeDelta::nanoseconds(i64::from(
            now.timestamp_subsec_nanos(),
        )))
        .ok_or(ScheduleError::OutOfRange)?
        .with_timezone(&zone);
    match cron.expression.cron().find_next_occurrence(&start, false) {
        Ok(next) => Ok(next.with_timezone(&Utc)),
        Err(_) => Err(ScheduleError::NoOccurrence {
            expression: cron.expression.as_str().to_owned(),
            after: now.to_rfc3339(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        CronExpression, IntervalCount, IntervalUnit, ManualSchedule, RealtimeSchedule,
        TimeZoneName, VerificationToken,
    };
    use chrono::{NaiveDate, TimeZone};
    use chrono_tz::Tz;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn interval(count: u32, unit: IntervalUnit) -> ScheduleConfig {
        ScheduleConfig::Interval(IntervalSchedule {
            interval: IntervalCount::new(count).unwrap(),
            unit,
        })
    }

    fn cron(expression: &str, zone: &str) -> ScheduleConfig {
        ScheduleConfig::Cron(CronSchedule {
            expression: CronExpression::parse(expression).unwrap(),
            timezone: TimeZoneName::parse(zone).unwrap(),
        })
    }

    /// Every occurrence in `(from, until]`, walking `next_after` as the trigger does when it
    /// is never late.
    fn occurrences(schedule: &ScheduleConfig, from: &str, until: &str) -> Vec<String> {
        let anchor = utc(from);
        let until = utc(until);
        let mut at = anchor;
        let mut out = Vec::new();
        while let Some(next) = next_after(schedule, anchor, at).unwrap() {
            if next > until {
                break;
            }
            assert!(next > at, "{next} is not after {at}");
            out.push(next.to_rfc3339());
            at = next;
        }
        out
    }

    /// An instant on the wall clock of `zone`, choosing the earlier of two in a repeated hour.
    fn wall(zone: &str, y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        let tz: Tz = zone.parse().unwrap();
        let naive = NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap();
        tz.from_local_datetime(&naive).earliest().unwrap().to_utc()
    }

    #[test]
    fn intervals_stay_on_their_anchored_grid() {
        let every_15m = interval(15, IntervalUnit::Minutes);
        let anchor = utc("2025-01-01T10:07:30Z");
        // Right after the anchor, a late claim, an exact hit and a sub-second past it.
        for (now, next) in [
            ("2025-01-01T10:07:30Z", "2025-01-01T10:22:30Z"),
            ("2025-01-01T10:21:00Z", "2025-01-01T10:22:30Z"),
            ("2025-01-01T10:22:31.900Z", "2025-01-01T10:37:30Z"),
            ("2025-01-01T10:37:30Z", "2025-01-01T10:52:30Z"),
            ("2025-01-01T10:37:29.999Z", "2025-01-01T10:37:30Z"),
            // Before the anchor the grid extends backwards.
            ("2025-01-01T09:55:00Z", "2025-01-01T10:07:30Z"),
        ] {
            assert_eq!(
                next_after(&every_15m, anchor, utc(now)).unwrap(),
                Some(utc(next)),
                "after {now}"
            );
        }
        let cases = [
            (interval(2, IntervalUnit::Hours), "2025-01-01T12:07:30Z"),
            (interval(1, IntervalUnit::Days), "2025-01-02T10:07:30Z"),
            (interval(1, IntervalUnit::Weeks), "2025-01-08T10:07:30Z"),
        ];
        for (schedule, next) in cases {
            assert_eq!(
                next_after(&schedule, anchor, anchor).unwrap(),
                Some(utc(next))
            );
        }
    }

    #[test]
    fn a_day_interval_is_24_hours_across_dst() {
        // Anchored at 09:00 EST; after the spring-forward the run is at 10:00 EDT.
        let daily = interval(1, IntervalUnit::Days);
        let anchor = wall("America/New_York", 2025, 3, 8, 9, 0);
        let next = next_after(&daily, anchor, anchor + TimeDelta::hours(1))
            .unwrap()
            .unwrap();
        assert_eq!(next - anchor, TimeDelta::hours(24));
        assert_eq!(next, wall("America/New_York", 2025, 3, 9, 10, 0));
    }

    #[test]
    fn missed_occurrences_collapse_into_one() {
        // An hourly task whose trigger was down from 10:00 to 15:20: the claim at 15:20 moves
        // nextRunAt to 16:00, so exactly one run covers the five missed occurrences.
        let hourly = interval(1, IntervalUnit::Hours);
        let anchor = utc("2025-01-01T09:00:00Z");
        let due = utc("2025-01-01T10:00:00Z");
        let claim = utc("2025-01-01T15:20:00Z");
        let next = next_after(&hourly, anchor, claim).unwrap().unwrap();
        assert_eq!(next, utc("2025-01-01T16:00:00Z"));
        assert!(due <= claim && next > claim);

        let nightly = cron("0 2 * * *", "Europe/London");
        let claim = utc("2025-01-05T09:00:00Z");
        assert_eq!(
            next_after(&nightly, anchor, claim).unwrap(),
            Some(utc("2025-01-06T02:00:00Z"))
        );
    }

    #[test]
    fn cron_reads_the_wall_clock_of_its_zone() {
        let at_nine = cron("0 9 * * 1-5", "America/New_York");
        // Friday 2025-01-03 15:00 UTC is 10:00 EST: next is Monday 09:00 EST.
        assert_eq!(
            next_after(
                &at_nine,
                utc("2025-01-01T00:00:00Z"),
                utc("2025-01-03T15:00:00Z")
            )
            .unwrap(),
            Some(utc("2025-01-06T14:00:00Z"))
        );
        // Strictly after: an exact hit (and a fraction past it) moves on to the next day.
        for now in ["2025-01-06T14:00:00Z", "2025-01-06T14:00:00.250Z"] {
            assert_eq!(
                next_after(&at_nine, utc(now), utc(now)).unwrap(),
                Some(utc("2025-01-07T14:00:00Z")),
                "after {now}"
            );
        }
        // A fraction before the occurrence still finds it.
        assert_eq!(
            next_after(
                &at_nine,
                utc("2025-01-06T00:00:00Z"),
                utc("2025-01-06T13:59:59.999Z")
            )
            .unwrap(),
            Some(utc("2025-01-06T14:00:00Z"))
        );
    }

    #[test]
    fn new_york_spring_forward_runs_a_skipped_fixed_time_once_after_the_gap() {
        // 2025-03-09: 02:00 EST jumps to 03:00 EDT.
        let at_0230 = cron("30 2 * * *", "America/New_York");
        assert_eq!(
            occurrences(&at_0230, "2025-03-08T00:00:00Z", "2025-03-11T00:00:00Z"),
            [
                "2025-03-08T07:30:00+00:00", // 02:30 EST
                "2025-03-09T07:00:00+00:00", // 03:00 EDT, the first instant after the gap
                "2025-03-10T06:30:00+00:00", // 02:30 EDT
            ]
        );
        // A wildcard job has nothing in the gap: 01:45 EST is followed by 03:00 EDT.
        let quarter_hourly = cron("*/15 * * * *", "America/New_York");
        assert_eq!(
            occurrences(
                &quarter_hourly,
                "2025-03-09T06:40:00Z",
                "2025-03-09T07:20:00Z"
            ),
            [
                "2025-03-09T06:45:00+00:00",
                "2025-03-09T07:00:00+00:00",
                "2025-03-09T07:15:00+00:00",
            ]
        );
    }

    #[test]
    fn new_york_fall_back_runs_a_repeated_fixed_time_once() {
        // 2025-11-02: 02:00 EDT falls back to 01:00 EST, so 01:00-01:59 happens twice.
        let at_0130 = cron("30 1 * * *", "America/New_York");
        assert_eq!(
            occurrences(&at_0130, "2025-11-01T00:00:00Z", "2025-11-04T00:00:00Z"),
            [
                "2025-11-01T05:30:00+00:00", // 01:30 EDT
                "2025-11-02T05:30:00+00:00", // the first 01:30 (EDT) only
                "2025-11-03T06:30:00+00:00", // 01:30 EST
            ]
        );
        // A wildcard job runs in both halves of the repeated hour.
        let half_hourly = cron("*/30 1 * * *", "America/New_York");
        assert_eq!(
            occurrences(&half_hourly, "2025-11-02T04:00:00Z", "2025-11-02T08:00:00Z"),
            [
                "2025-11-02T05:00:00+00:00", // 01:00 EDT
                "2025-11-02T05:30:00+00:00", // 01:30 EDT
                "2025-11-02T06:00:00+00:00", // 01:00 EST
                "2025-11-02T06:30:00+00:00", // 01:30 EST
            ]
        );
    }

    #[test]
    fn london_transitions() {
        // 2025-03-30: 01:00 GMT jumps to 02:00 BST; 01:30 does not exist that day.
        let at_0130 = cron("30 1 * * *", "Europe/London");
        assert_eq!(
            occurrences(&at_0130, "2025-03-29T00:00:00Z", "2025-04-01T00:00:00Z"),
            [
                "2025-03-29T01:30:00+00:00", // 01:30 GMT
                "2025-03-30T01:00:00+00:00", // 02:00 BST, the first instant after the gap
                "2025-03-31T00:30:00+00:00", // 01:30 BST
            ]
        );
        // 2025-10-26: 02:00 BST falls back to 01:00 GMT; 01:30 happens twice, runs once.
        assert_eq!(
            occurrences(&at_0130, "2025-10-25T00:00:00Z", "2025-10-28T00:00:00Z"),
            [
                "2025-10-25T00:30:00+00:00", // 01:30 BST
                "2025-10-26T00:30:00+00:00", // the first 01:30 (BST) only
                "2025-10-27T01:30:00+00:00", // 01:30 GMT
            ]
        );
        // A daily job outside the changed hours keeps its wall-clock time on both days.
        let at_nine = cron("0 9 * * *", "Europe/London");
        assert_eq!(
            occurrences(&at_nine, "2025-10-25T12:00:00Z", "2025-10-27T12:00:00Z"),
            ["2025-10-26T09:00:00+00:00", "2025-10-27T09:00:00+00:00"]
        );
    }

    #[test]
    fn manual_and_realtime_without_reconciliation_are_never_due() {
        let now = utc("2025-01-01T00:00:00Z");
        let manual = ScheduleConfig::Manual(ManualSchedule);
        assert_eq!(next_after(&manual, now, now).unwrap(), None);
        assert!(!is_scheduled(&manual));

        let realtime = |reconciliation: Option<ScheduleConfig>| {
            ScheduleConfig::Realtime(RealtimeSchedule {
                webhook_url: "https://hub.example/webhooks/t".into(),
                verification_token: VerificationToken::new("token").unwrap(),
                reconciliation: reconciliation.map(Box::new),
            })
        };
        assert_eq!(next_after(&realtime(None), now, now).unwrap(), None);
        assert!(!is_scheduled(&realtime(None)));
        let reconciled = realtime(Some(interval(6, IntervalUnit::Hours)));
        assert!(is_scheduled(&reconciled));
        assert_eq!(
            next_after(&reconciled, now, now).unwrap(),
            Some(utc("2025-01-01T06:00:00Z"))
        );
    }

    #[test]
    fn an_impossible_date_is_an_error() {
        let error = next_after(
            &cron("0 0 30 2 *", "UTC"),
            utc("2025-01-01T00:00:00Z"),
            utc("2025-01-01T00:00:00Z"),
        )
        .unwrap_err();
        assert_eq!(error.code(), "no_occurrence", "{error}");
    }
}
