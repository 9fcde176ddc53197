//! Cron schedules as upstream reads them: robfig/cron v3's `ParseStandard` and
//! `SpecSchedule.Next`, and the controller's `mostRecentScheduleTime`.
//!
//! Parsing goes through `croner` (five fields, no seconds, `N/step` allowed as robfig's
//! "N-max/step"); a grammar check first refuses what croner accepts but robfig does not
//! (`L`, `W`, `#`, weekday 7, names outside the month and weekday fields, a step of 0), and
//! decides robfig's "star" flag of the day fields: when either day field is `*` or `?` (also
//! `*/1`), the other alone restricts; when both are restricted, either may match.
//!
//! `next` is robfig's walk, not croner's: it advances month, day, hour and minute in the
//! schedule's zone, days by the calendar and hours by the clock, so across DST a time in the
//! spring-forward gap never fires that day and a time in the fall-back overlap fires twice,
//! exactly as upstream.

use std::fmt;

use croner::parser::{CronParser, Seconds, Year};
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

/// Why a schedule does not parse (robfig's messages where it has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError(pub String);

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScheduleError {}

/// A parsed standard cron schedule: the sets of minutes, hours, days of month, months and
/// weekdays (bit n set = value n matches), and robfig's star flags of the day fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u64,
    dom: u64,
    months: u64,
    dow: u64,
    dom_star: bool,
    dow_star: bool,
}

/// robfig's descriptors, as five-field specs.
fn descriptor(spec: &str) -> Result<&'static str, ScheduleError> {
    Ok(match spec {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return Err(ScheduleError(format!("unrecognized descriptor: {spec}"))),
    })
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One field's bounds and names, as robfig's `bounds`.
struct Field {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The first name's value (months start at 1).
    name_base: u32,
}

const FIELDS: [Field; 5] = [
    Field {
        min: 0,
        max: 59,
        names: &[],
        name_base: 0,
    },
    Field {
        min: 0,
        max: 23,
        names: &[],
        name_base: 0,
    },
    Field {
        min: 1,
        max: 31,
        names: &[],
        name_base: 0,
    },
    Field {
        min: 1,
        max: 12,
        names: &MONTHS,
        name_base: 1,
    },
    Field {
        min: 0,
        max: 6,
        names: &WEEKDAYS,
        name_base: 0,
    },
];

fn int_or_name(s: &str, f: &Field) -> Result<u32, ScheduleError> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = f.names.iter().position(|n| *n == lower) {
        return Ok(i as u32 + f.name_base);
    }
    s.parse::<u32>()
        .map_err(|_| ScheduleError(format!("failed to parse int from {s}")))
}

/// Checks one field against robfig's grammar; returns its star flag (`*` or `?` with no
/// step above 1 in some list item).
fn check_field(field: &str, f: &Field) -> Result<bool, ScheduleError> {
    let mut star = false;
    for item in field.split(',').filter(|i| !i.is_empty()) {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let step = match step {
            None => 1,
            Some(s) if s.contains('/') => {
                return Err(ScheduleError(format!("too many slashes: {item}")))
            }
            Some(s) => {
                let n = s
                    .parse::<u32>()
                    .map_err(|_| ScheduleError(format!("failed to parse int from {s}")))?;
                if n == 0 {
                    return Err(ScheduleError(format!(
                        "step of range should be a positive number: {item}"
                    )));
                }
                n
            }
        };
        let (start, end) = if range == "*" || range == "?" {
            star |= step == 1;
            (f.min, f.max)
        } else {
            let (lo, hi) = match range.split_once('-') {
                Some((_, hi)) if hi.contains('-') => {
                    return Err(ScheduleError(format!("too many hyphens: {item}")))
                }
                Some((lo, hi)) => (int_or_name(lo, f)?, int_or_name(hi, f)?),
                None => {
                    let lo = int_or_name(range, f)?;
                    // robfig: "N/step" means "N-max/step".
                    (lo, if item.contains('/') { f.max } else { lo })
                }
            };
            (lo, hi)
        };
        if start < f.min {
            return Err(ScheduleError(format!(
                "beginning of range ({start}) below minimum ({}): {item}",
                f.min
            )));
        }
        if end > f.max {
            return Err(ScheduleError(format!(
                "end of range ({end}) above maximum ({}): {item}",
                f.max
            )));
        }
        if start > end {
            return Err(ScheduleError(format!(
                "beginning of range ({start}) beyond end of range ({end}): {item}"
            )));
        }
    }
    Ok(star)
}

fn bits(values: Vec<u16>) -> u64 {
    values
        .into_iter()
        .filter(|v| *v < 64)
        .fold(0u64, |acc, v| acc | (1u64 << v))
}

impl Schedule {
    /// Parses `spec` as robfig's `ParseStandard`: five fields or a descriptor.
    pub fn parse(spec: &str) -> Result<Schedule, ScheduleError> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(ScheduleError("empty spec string".into()));
        }
        let spec = if spec.starts_with('@') {
            descriptor(spec)?
        } else {
            spec
        };
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(ScheduleError(format!(
                "expected exactly 5 fields, found {}: [{}]",
                fields.len(),
                fields.join(" ")
            )));
        }
        let mut stars = [false; 5];
        for (i, (field, f)) in fields.iter().zip(FIELDS.iter()).enumerate() {
            stars[i] = check_field(field, f)?;
        }
        // robfig takes `?` in any field; croner only in the day fields.
        let normalized: Vec<String> = fields.iter().map(|f| f.replace('?', "*")).collect();
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .sloppy_ranges(true)
            .build()
            .parse(&normalized.join(" "))
            .map_err(|e| ScheduleError(e.to_string()))?;
        let p = &cron.pattern;
        Ok(Schedule {
            minutes: bits(p.minutes.values()),
            hours: bits(p.hours.values()),
            dom: bits(p.days.values()),
            months: bits(p.months.values()),
            dow: bits(p.days_of_week.values()),
            dom_star: stars[2],
            dow_star: stars[4],
        })
    }

    fn day_matches(&self, t: &Zoned) -> bool {
        let dom = self.dom & (1 << t.day()) != 0;
        let dow = self.dow & (1 << t.weekday().to_sunday_zero_offset()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first time after `after` (seconds resolution) that the schedule fires, in `tz`;
    /// None when nothing matches within five years (an impossible date, `0 0 30 2 *`).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let wall = |dt: DateTime| dt.to_zoned(tz.clone()).ok();
        // Start at the next whole second.
        let start = Timestamp::from_second(after.as_second().checked_add(1)?).ok()?;
        let mut t = start.to_zoned(tz.clone());
        let year_limit = t.year() + 5;
        let mut added = false;
        'wrap: loop {
            if t.year() > year_limit {
                return None;
            }
            while self.months & (1 << t.month()) == 0 {
                if !added {
                    added = true;
                    t = wall(
                        t.date()
                            .first_of_month()
                            .to_datetime(jiff::civil::time(0, 0, 0, 0)),
                    )?;
                }
                t = wall(t.datetime().checked_add(1.month()).ok()?)?;
                if t.month() == 1 {
                    continue 'wrap;
                }
            }
            while !self.day_matches(&t) {
                if !added {
                    added = true;
                    t = wall(t.date().to_datetime(jiff::civil::time(0, 0, 0, 0)))?;
                }
                t = wall(t.datetime().checked_add(1.day()).ok()?)?;
                // Midnight may have moved by DST: back to the day's start.
                if t.hour() != 0 {
                    let h = i64::from(t.hour());
                    let shift = if h > 12 { 24 - h } else { -h };
                    t = t.checked_add(shift.hours()).ok()?;
                }
                if t.day() == 1 {
                    continue 'wrap;
                }
            }
            while self.hours & (1 << t.hour()) == 0 {
                if !added {
                    added = true;
                    t = wall(t.date().to_datetime(jiff::civil::time(t.hour(), 0, 0, 0)))?;
                }
                t = t.checked_add(1.hour()).ok()?;
                if t.hour() == 0 {
                    continue 'wrap;
                }
            }
            while self.minutes & (1 << t.minute()) == 0 {
                if !added {
                    added = true;
                    let s = t.timestamp().as_second();
                    t = Timestamp::from_second(s - s.rem_euclid(60))
                        .ok()?
                        .to_zoned(tz.clone());
                }
                t = t.checked_add(1.minute()).ok()?;
                if t.minute() == 0 {
                    continue 'wrap;
                }
            }
            // Standard schedules fire at second 0: robfig steps second by second to the next
            // minute and starts over, which is the same as jumping there.
            if t.second() != 0 {
                let s = t.timestamp().as_second();
                t = Timestamp::from_second(s - s.rem_euclid(60) + 60)
                    .ok()?
                    .to_zoned(tz.clone());
                continue 'wrap;
            }
            return Some(t.timestamp());
        }
    }
}

/// How many scheduled times were missed since the earliest time (upstream's
/// `missedSchedulesType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    None,
    Few,
    /// More than 100: upstream's `TooManyMissedTimes`.
    Many,
}

/// Upstream's `mostRecentScheduleTime`'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MostRecent {
    /// `status.lastScheduleTime`, else creation, raised to now − startingDeadlineSeconds.
    pub earliest: Timestamp,
    /// The latest scheduled time in (earliest, now], if any.
    pub most_recent: Option<Timestamp>,
    pub missed: Missed,
}

/// The schedule fires twice within a second: upstream's refusal of impossible schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooClose;

/// Upstream's `mostRecentScheduleTime`: from `earliest` (last schedule or creation),
/// optionally raised to `now - deadline`, the most recent scheduled time not after `now` and
/// a rough count of the missed ones.
pub fn most_recent_schedule_time(
    schedule: &Schedule,
    tz: &TimeZone,
    last_or_created: Timestamp,
    deadline_seconds: Option<i64>,
    now: Timestamp,
) -> Result<MostRecent, TooClose> {
    let mut earliest = last_or_created;
    if let Some(d) = deadline_seconds {
        let limit = Timestamp::from_second(now.as_second().saturating_sub(d)).unwrap_or(now);
        if limit > earliest {
            earliest = limit;
        }
    }
    let none = MostRecent {
        earliest,
        most_recent: None,
        missed: Missed::None,
    };
    let Some(t1) = schedule.next(earliest, tz) else {
        return Err(TooClose);
    };
    if now < t1 {
        return Ok(none);
    }
    let Some(t2) = schedule.next(t1, tz) else {
        return Err(TooClose);
    };
    if now < t2 {
        return Ok(MostRecent {
            most_recent: Some(t1),
            ..none
        });
    }
    let between = t2.as_second() - t1.as_second();
    if between < 1 {
        return Err(TooClose);
    }
    let elapsed = now.as_second() - t1.as_second();
    let missed_count = elapsed / between + 1;
    // Start a little before the estimated last run and walk forward to the exact one:
    // schedules are not evenly spaced (`30 6-16/4 * * 1-5`).
    let from = t1.as_second() + (missed_count - 2) * between;
    let mut most_recent = None;
    let mut t = Timestamp::from_second(from).ok();
    while let Some(next) = t.and_then(|t| schedule.next(t, tz)) {
        if next > now {
            break;
        }
        most_recent = Some(next);
        t = Some(next);
    }
    let missed = if missed_count > 100 {
        Missed::Many
    } else {
        Missed::Few
    };
    Ok(MostRecent {
        most_recent,
        missed,
        ..none
    })
}

/// Upstream's `nextScheduleTimeDuration` without its 100 ms slack: the next time to look
/// again, from the last scheduled time (not counting the starting deadline).
pub fn next_schedule_after(
    schedule: &Schedule,
    tz: &TimeZone,
    last_or_created: Timestamp,
    now: Timestamp,
) -> Option<Timestamp> {
    let from = match most_recent_schedule_time(schedule, tz, last_or_created, None, now) {
        Err(TooClose) => now,
        Ok(MostRecent {
            most_recent: Some(t),
            ..
        }) => t,
        Ok(MostRecent {
            missed: Missed::None,
            earliest,
            ..
        }) => earliest,
        Ok(_) => now,
    };
    schedule.next(from, tz)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).expect("zone")
    }

    #[test]
    fn standard_specs_parse_as_robfig_and_others_are_refused() {
        let ok = [
            "*/1 * * * *",
            "0 0 * * *",
            "30 6-16/4 * * 1-5",
            "0 0 1 jan,JUL ?",
            "0 12 * * MON-FRI",
            "5/15 * * * *",
            "0 0 1,15 * sun",
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
        ];
        for s in ok {
            assert!(Schedule::parse(s).is_ok(), "{s} should parse");
        }
        let bad = [
            "",
            "* * * *",
            "0 * * * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 7",
            "* * L * *",
            "* * 15W * *",
            "* * * * 5#3",
            "*/0 * * * *",
            "5-1 * * * *",
            "mon * * * *",
            "@every",
            "@reboot",
        ];
        for s in bad {
            assert!(Schedule::parse(s).is_err(), "{s:?} should be refused");
        }
    }

    #[test]
    fn descriptors_mean_what_robfig_says() {
        let cases = [
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@hourly", "0 * * * *"),
        ];
        for (d, spec) in cases {
            assert_eq!(Schedule::parse(d), Schedule::parse(spec), "{d}");
        }
    }

    #[test]
    fn next_times_follow_robfig_in_utc() {
        let utc = TimeZone::UTC;
        // (spec, after, want)
        let cases = [
            (
                "*/1 * * * *",
                "2024-01-01T00:00:00Z",
                "2024-01-01T00:01:00Z",
            ),
            (
                "*/1 * * * *",
                "2024-01-01T00:00:30Z",
                "2024-01-01T00:01:00Z",
            ),
            (
                "*/15 * * * *",
                "2024-01-01T00:16:00Z",
                "2024-01-01T00:30:00Z",
            ),
            (
                "5/15 * * * *",
                "2024-01-01T00:21:00Z",
                "2024-01-01T00:35:00Z",
            ),
            (
                "0 0 1 jan *",
                "2024-06-01T00:00:00Z",
                "2025-01-01T00:00:00Z",
            ),
            // Both day fields restricted: either matches (the 13th or a Friday).
            ("0 0 13 * 5", "2024-09-01T00:00:00Z", "2024-09-06T00:00:00Z"),
            // A star weekday: the day of month alone restricts.
            ("0 0 13 * *", "2024-09-01T00:00:00Z", "2024-09-13T00:00:00Z"),
            ("0 0 13 * ?", "2024-09-01T00:00:00Z", "2024-09-13T00:00:00Z"),
            (
                "0 0 13 * */1",
                "2024-09-01T00:00:00Z",
                "2024-09-13T00:00:00Z",
            ),
            // A star day of month: the weekday alone restricts.
            (
                "0 0 * * fri",
                "2024-09-01T00:00:00Z",
                "2024-09-06T00:00:00Z",
            ),
            // `*/2` is not a star: either matches (an odd day, or a Sunday).
            (
                "0 0 */2 * 0",
                "2024-09-02T00:00:00Z",
                "2024-09-03T00:00:00Z",
            ),
            ("@weekly", "2024-09-02T00:00:00Z", "2024-09-08T00:00:00Z"),
            ("0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        ];
        for (spec, after, want) in cases {
            let s = Schedule::parse(spec).expect(spec);
            assert_eq!(
                s.next(ts(after), &utc),
                Some(ts(want)),
                "{spec} after {after}"
            );
        }
        let never = Schedule::parse("0 0 30 2 *").expect("parses");
        assert_eq!(never.next(ts("2024-01-01T00:00:00Z"), &utc), None);
    }

    #[test]
    fn next_times_across_dst_in_new_york_follow_robfig() {
        let ny = tz("America/New_York");
        // 2024-03-10: 02:00 EST jumps to 03:00 EDT; 2024-11-03: 02:00 EDT falls to 01:00 EST.
        let cases = [
            // Daily 09:00 local keeps the wall time across the change.
            ("0 9 * * *", "2024-03-09T14:00:00Z", "2024-03-10T13:00:00Z"),
            ("0 9 * * *", "2024-11-02T13:00:00Z", "2024-11-03T14:00:00Z"),
            // 02:30 does not exist on the spring-forward day: robfig skips to the next day.
            ("30 2 * * *", "2024-03-10T05:00:00Z", "2024-03-11T06:30:00Z"),
            // 01:30 happens twice on the fall-back day: robfig fires at both.
            ("30 1 * * *", "2024-11-03T04:00:00Z", "2024-11-03T05:30:00Z"),
            ("30 1 * * *", "2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z"),
            ("30 1 * * *", "2024-11-03T06:30:00Z", "2024-11-04T06:30:00Z"),
            // Hourly runs count real hours through the gap.
            ("0 * * * *", "2024-03-10T06:00:00Z", "2024-03-10T07:00:00Z"),
            ("0 * * * *", "2024-03-10T07:00:00Z", "2024-03-10T08:00:00Z"),
        ];
        for (spec, after, want) in cases {
            let s = Schedule::parse(spec).expect(spec);
            assert_eq!(
                s.next(ts(after), &ny),
                Some(ts(want)),
                "{spec} after {after}"
            );
        }
    }

    #[test]
    fn most_recent_time_counts_missed_runs_and_honours_the_deadline() {
        let utc = TimeZone::UTC;
        let every_minute = Schedule::parse("* * * * *").expect("parses");
        let hourly = Schedule::parse("0 * * * *").expect("parses");
        struct Case {
            name: &'static str,
            schedule: &'static Schedule,
            last: &'static str,
            deadline: Option<i64>,
            now: &'static str,
            want: Option<&'static str>,
            missed: Missed,
        }
        let every_minute: &'static Schedule = Box::leak(Box::new(every_minute));
        let hourly: &'static Schedule = Box::leak(Box::new(hourly));
        let cases = [
            Case {
                name: "not yet",
                schedule: hourly,
                last: "2024-01-01T10:00:00Z",
                deadline: None,
                now: "2024-01-01T10:59:59Z",
                want: None,
                missed: Missed::None,
            },
            Case {
                name: "one due",
                schedule: hourly,
                last: "2024-01-01T10:00:00Z",
                deadline: None,
                now: "2024-01-01T11:00:05Z",
                want: Some("2024-01-01T11:00:00Z"),
                missed: Missed::None,
            },
            Case {
                name: "a few missed",
                schedule: hourly,
                last: "2024-01-01T10:00:00Z",
                deadline: None,
                now: "2024-01-01T14:30:00Z",
                want: Some("2024-01-01T14:00:00Z"),
                missed: Missed::Few,
            },
            Case {
                name: "too many missed",
                schedule: every_minute,
                last: "2024-01-01T10:00:00Z",
                deadline: None,
                now: "2024-01-01T12:00:30Z",
                want: Some("2024-01-01T12:00:00Z"),
                missed: Missed::Many,
            },
            Case {
                name: "deadline hides old misses",
                schedule: every_minute,
                last: "2024-01-01T10:00:00Z",
                deadline: Some(150),
                now: "2024-01-01T12:00:30Z",
                want: Some("2024-01-01T12:00:00Z"),
                missed: Missed::Few,
            },
            Case {
                name: "deadline after the only run",
                schedule: hourly,
                last: "2024-01-01T10:00:00Z",
                deadline: Some(60),
                now: "2024-01-01T11:05:00Z",
                want: None,
                missed: Missed::None,
            },
        ];
        for c in cases {
            let got =
                most_recent_schedule_time(c.schedule, &utc, ts(c.last), c.deadline, ts(c.now))
                    .expect(c.name);
            assert_eq!(got.most_recent, c.want.map(ts), "{}", c.name);
            assert_eq!(got.missed, c.missed, "{}", c.name);
        }
        let never = Schedule::parse("0 0 30 2 *").expect("parses");
        assert_eq!(
            most_recent_schedule_time(
                &never,
                &utc,
                ts("2024-01-01T00:00:00Z"),
                None,
                ts("2024-06-01T00:00:00Z")
            ),
            Err(TooClose)
        );
    }

    #[test]
    fn next_look_is_the_run_after_the_last_one() {
        let utc = TimeZone::UTC;
        let hourly = Schedule::parse("0 * * * *").expect("parses");
        let cases = [
            (
                "2024-01-01T10:00:00Z",
                "2024-01-01T10:20:00Z",
                "2024-01-01T11:00:00Z",
            ),
            (
                "2024-01-01T10:00:00Z",
                "2024-01-01T11:00:01Z",
                "2024-01-01T12:00:00Z",
            ),
            (
                "2024-01-01T10:00:00Z",
                "2024-01-01T15:30:00Z",
                "2024-01-01T16:00:00Z",
            ),
        ];
        for (last, now, want) in cases {
            assert_eq!(
                next_schedule_after(&hourly, &utc, ts(last), ts(now)),
                Some(ts(want)),
                "last {last} now {now}"
            );
        }
    }
}
