#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use jiff::civil::DateTime;

fn window(kind: WindowKind, schedule: &str, duration: &str, time_zone: &str) -> Window {
    Window {
        kind,
        schedule: schedule.into(),
        duration: duration.into(),
        time_zone: time_zone.into(),
        reason: None,
    }
}

fn deny(schedule: &str, duration: &str, time_zone: &str) -> Window {
    window(WindowKind::Deny, schedule, duration, time_zone)
}

fn allow(schedule: &str, duration: &str, time_zone: &str) -> Window {
    window(WindowKind::Allow, schedule, duration, time_zone)
}

fn weekend_freeze(time_zone: &str) -> Window {
    Window {
        reason: Some("weekend freeze".into()),
        ..deny("0 17 * * 5", "64h", time_zone)
    }
}

fn utc(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// Wall-clock `text` in `zone` (compatible disambiguation).
fn local(text: &str, zone: &str) -> Timestamp {
    let civil: DateTime = text.parse().unwrap();
    let tz = TimeZoneDatabase::bundled().get(zone).unwrap();
    tz.to_ambiguous_timestamp(civil).compatible().unwrap()
}

fn at(windows: &[Window], now: Timestamp) -> Gate {
    gate(windows, now).unwrap()
}

/// The instant the gate opens, asserting it is closed now.
fn closed_until(windows: &[Window], now: Timestamp) -> Option<Timestamp> {
    match at(windows, now) {
        Gate::Closed { opens_at, .. } => opens_at,
        Gate::Open => panic!("expected closed at {now}"),
    }
}

fn is_open(windows: &[Window], now: Timestamp) -> bool {
    at(windows, now) == Gate::Open
}

#[test]
fn no_windows_is_open() {
    assert!(is_open(&[], utc("2025-01-10T17:00:00Z")));
}

#[test]
fn weekend_freeze_in_winter() {
    let w = [weekend_freeze("Europe/London")];
    assert!(is_open(&w, utc("2025-01-10T16:59:00Z")));
    assert_eq!(
        at(&w, utc("2025-01-10T17:00:00Z")),
        Gate::Closed {
            window: 0,
            reason: "weekend freeze".into(),
            opens_at: Some(utc("2025-01-13T09:00:00Z")),
        }
    );
    assert_eq!(
        closed_until(&w, utc("2025-01-12T12:00:00Z")),
        Some(utc("2025-01-13T09:00:00Z"))
    );
    assert!(!is_open(&w, utc("2025-01-13T08:59:59Z")));
    assert!(is_open(&w, utc("2025-01-13T09:00:00Z")));
}

#[test]
fn weekend_freeze_ends_at_nine_local_across_spring_forward() {
    // Clocks go forward Sunday 2025-03-30 01:00 GMT; Monday 09:00 BST is 08:00 UTC.
    let w = [weekend_freeze("Europe/London")];
    assert!(is_open(&w, utc("2025-03-28T16:59:00Z")));
    let monday_nine = Some(utc("2025-03-31T08:00:00Z"));
    assert_eq!(closed_until(&w, utc("2025-03-28T17:00:00Z")), monday_nine);
    assert_eq!(closed_until(&w, utc("2025-03-30T12:00:00Z")), monday_nine);
    assert_eq!(closed_until(&w, utc("2025-03-31T07:59:59Z")), monday_nine);
    assert!(is_open(&w, utc("2025-03-31T08:00:00Z")));
}

#[test]
fn weekend_freeze_ends_at_nine_local_across_fall_back() {
    // Friday 17:00 BST is 16:00 UTC; clocks go back Sunday 2025-10-26; Monday
    // 09:00 GMT is 09:00 UTC.
    let w = [weekend_freeze("Europe/London")];
    assert!(is_open(&w, utc("2025-10-24T15:59:00Z")));
    let monday_nine = Some(utc("2025-10-27T09:00:00Z"));
    assert_eq!(closed_until(&w, utc("2025-10-24T16:00:00Z")), monday_nine);
    assert_eq!(closed_until(&w, utc("2025-10-26T01:30:00Z")), monday_nine);
    assert_eq!(closed_until(&w, utc("2025-10-27T08:59:00Z")), monday_nine);
    assert!(is_open(&w, utc("2025-10-27T09:00:00Z")));
}

#[test]
fn weekend_freeze_in_new_york() {
    let w = [weekend_freeze("America/New_York")];
    // Spring forward Sunday 2025-03-09: Friday 17:00 EST, Monday 09:00 EDT.
    assert!(is_open(&w, utc("2025-03-07T21:59:00Z")));
    assert_eq!(
        closed_until(&w, utc("2025-03-07T22:00:00Z")),
        Some(utc("2025-03-10T13:00:00Z"))
    );
    assert!(is_open(&w, utc("2025-03-10T13:00:00Z")));
    // Fall back Sunday 2025-11-02: Friday 17:00 EDT, Monday 09:00 EST.
    assert!(is_open(&w, utc("2025-10-31T20:59:00Z")));
    assert_eq!(
        closed_until(&w, utc("2025-10-31T21:00:00Z")),
        Some(utc("2025-11-03T14:00:00Z"))
    );
    assert!(!is_open(&w, utc("2025-11-03T13:59:00Z")));
    assert!(is_open(&w, utc("2025-11-03T14:00:00Z")));
}

#[test]
fn fire_time_in_spring_forward_gap_moves_forward() {
    // 01:30 does not exist in London on 2025-03-30: it becomes 02:30 BST (01:30
    // UTC); the close, 03:30 BST, exists.
    let w = [deny("30 1 * * 0", "2h", "Europe/London")];
    assert!(is_open(&w, utc("2025-03-30T01:29:00Z")));
    assert_eq!(
        closed_until(&w, utc("2025-03-30T01:30:00Z")),
        Some(utc("2025-03-30T02:30:00Z"))
    );
    assert!(is_open(&w, utc("2025-03-30T02:30:00Z")));
    // A week later 01:30 BST exists again.
    assert_eq!(
        closed_until(&w, utc("2025-04-06T00:30:00Z")),
        Some(utc("2025-04-06T02:30:00Z"))
    );

    // With 1h the wall-clock span 01:30-02:30 holds only the gap and 02:00-02:30
    // BST, and both ends land on 02:30 BST: nothing is left.
    let w = [deny("30 1 * * 0", "1h", "Europe/London")];
    for now in [
        "2025-03-30T00:59:00Z",
        "2025-03-30T01:15:00Z",
        "2025-03-30T01:30:00Z",
    ] {
        assert!(is_open(&w, utc(now)), "{now}");
    }
}

#[test]
fn fire_time_in_repeated_hour_fires_once_at_the_earlier_instant() {
    // 01:30 happens twice in London on 2025-10-26 (BST, then GMT). The window
    // opens at the first (00:30 UTC) and closes at 02:00 GMT, an hour and a half later.
    let w = [deny("30 1 * * 0", "30m", "Europe/London")];
    assert!(is_open(&w, utc("2025-10-26T00:29:00Z")));
    let close = Some(utc("2025-10-26T02:00:00Z"));
    assert_eq!(closed_until(&w, utc("2025-10-26T00:30:00Z")), close);
    assert_eq!(closed_until(&w, utc("2025-10-26T01:30:00Z")), close);
    assert!(is_open(&w, utc("2025-10-26T02:00:00Z")));
}

#[test]
fn a_later_fire_can_open_earlier_after_a_gap() {
    // Lord Howe springs forward from 02:00 (+10:30) to 02:30 (+11:00) on
    // 2025-10-05. 02:20 does not exist and becomes 02:50 (15:50 UTC); 02:40
    // exists (15:40 UTC) and so opens first, though it fires later on the clock.
    let w = [allow("20,40 2 * * *", "1m", "Australia/Lord_Howe")];
    assert_eq!(
        closed_until(&w, utc("2025-10-04T15:35:00Z")),
        Some(utc("2025-10-04T15:40:00Z"))
    );
    assert_eq!(
        closed_until(&w, utc("2025-10-04T15:41:00Z")),
        Some(utc("2025-10-04T15:50:00Z"))
    );
    assert_eq!(
        local("2025-10-05T02:40", "Australia/Lord_Howe"),
        utc("2025-10-04T15:40:00Z")
    );
}

#[test]
fn allow_only_business_hours() {
    let w = [allow("0 9 * * 1-5", "8h", "UTC")];
    assert_eq!(
        at(&w, utc("2025-01-11T12:00:00Z")),
        Gate::Closed {
            window: 0,
            reason: "outside every Allow window".into(),
            opens_at: Some(utc("2025-01-13T09:00:00Z")),
        }
    );
    assert!(is_open(&w, utc("2025-01-15T09:00:00Z")));
    assert!(is_open(&w, utc("2025-01-15T12:00:00Z")));
    assert_eq!(
        closed_until(&w, utc("2025-01-15T17:00:00Z")),
        Some(utc("2025-01-16T09:00:00Z"))
    );
    assert_eq!(
        closed_until(&w, utc("2025-01-15T08:59:59Z")),
        Some(utc("2025-01-15T09:00:00Z"))
    );
    assert_eq!(
        closed_until(&w, utc("2025-01-17T17:30:00Z")),
        Some(utc("2025-01-20T09:00:00Z"))
    );
}

#[test]
fn allow_in_summer_time() {
    let w = [allow("0 9 * * 1-5", "8h", "Europe/London")];
    assert_eq!(
        closed_until(&w, utc("2025-06-02T07:59:00Z")),
        Some(utc("2025-06-02T08:00:00Z"))
    );
    assert!(is_open(&w, utc("2025-06-02T08:00:00Z")));
    assert!(is_open(&w, utc("2025-06-02T15:59:00Z")));
    assert!(!is_open(&w, utc("2025-06-02T16:00:00Z")));
}

#[test]
fn closed_names_the_allow_window_that_opens_next() {
    let w = [
        allow("0 9 * * 1", "1h", "UTC"),
        allow("0 9 * * 3", "1h", "UTC"),
    ];
    // Tuesday: Wednesday's window opens first.
    assert_eq!(
        at(&w, utc("2025-01-14T12:00:00Z")),
        Gate::Closed {
            window: 1,
            reason: "outside every Allow window".into(),
            opens_at: Some(utc("2025-01-15T09:00:00Z")),
        }
    );
}

#[test]
fn deny_inside_allow() {
    let lunch = Window {
        reason: Some("lunch".into()),
        ..deny("0 12 * * *", "1h", "UTC")
    };
    let w = [
        allow("0 9 * * 1-5", "8h", "UTC"),
        lunch,
        deny("0 16 * * 5", "2h", "UTC"),
        deny("0 8 * * 1", "2h", "UTC"),
    ];
    assert!(is_open(&w, utc("2025-01-15T11:59:00Z")));
    assert_eq!(
        at(&w, utc("2025-01-15T12:30:00Z")),
        Gate::Closed {
            window: 1,
            reason: "lunch".into(),
            opens_at: Some(utc("2025-01-15T13:00:00Z")),
        }
    );
    // Friday 16:30: the Deny window ends at 18:00, after the Allow window; the
    // next Allow window opens Monday 09:00, but Monday's Deny holds it until 10:00.
    assert_eq!(
        at(&w, utc("2025-01-17T16:30:00Z")),
        Gate::Closed {
            window: 2,
            reason: "Deny window `0 16 * * 5` (UTC)".into(),
            opens_at: Some(utc("2025-01-20T10:00:00Z")),
        }
    );
    // Saturday: outside Allow, same answer.
    assert_eq!(
        closed_until(&w, utc("2025-01-18T10:00:00Z")),
        Some(utc("2025-01-20T10:00:00Z"))
    );
}

#[test]
fn overlapping_deny_windows_open_when_the_last_ends() {
    let monday = deny("0 8 * * 1", "4h", "Europe/London");
    let w = [weekend_freeze("Europe/London"), monday.clone()];
    assert_eq!(
        at(&w, utc("2025-01-11T12:00:00Z")),
        Gate::Closed {
            window: 0,
            reason: "weekend freeze".into(),
            opens_at: Some(utc("2025-01-13T12:00:00Z")),
        }
    );
    assert_eq!(
        at(&w, utc("2025-01-13T10:00:00Z")),
        Gate::Closed {
            window: 1,
            reason: "Deny window `0 8 * * 1` (Europe/London)".into(),
            opens_at: Some(utc("2025-01-13T12:00:00Z")),
        }
    );
    // The first open Deny window in list order is named.
    let w = [monday, weekend_freeze("Europe/London")];
    assert!(matches!(
        at(&w, utc("2025-01-13T08:30:00Z")),
        Gate::Closed { window: 0, .. }
    ));
    assert!(matches!(
        at(&w, utc("2025-01-11T12:00:00Z")),
        Gate::Closed { window: 1, .. }
    ));
}

#[test]
fn openings_of_one_window_overlapping() {
    // Every 6 hours for 8 hours: closed for good.
    let w = [deny("0 */6 * * *", "8h", "UTC")];
    assert_eq!(closed_until(&w, utc("2025-01-11T12:00:00Z")), None);
    // Monday and Tuesday 09:00 for 30h: Monday 09:00 to Wednesday 15:00.
    let w = [deny("0 9 * * 1,2", "30h", "UTC")];
    assert_eq!(
        closed_until(&w, utc("2025-01-13T10:00:00Z")),
        Some(utc("2025-01-15T15:00:00Z"))
    );
}

#[test]
fn day_of_month_or_day_of_week_when_both_are_restricted() {
    // The 13th, or any Friday.
    let w = [deny("0 0 13 * 5", "24h", "UTC")];
    assert!(!is_open(&w, utc("2025-06-13T12:00:00Z"))); // Friday the 13th
    assert!(!is_open(&w, utc("2025-06-06T12:00:00Z"))); // a Friday
    assert!(!is_open(&w, utc("2025-07-13T12:00:00Z"))); // a Sunday, the 13th
    assert!(is_open(&w, utc("2025-06-12T12:00:00Z"))); // Thursday the 12th
    // Only day-of-month restricted: the 13th, whatever the weekday.
    let w = [deny("0 0 13 * *", "24h", "UTC")];
    assert!(is_open(&w, utc("2025-06-06T12:00:00Z")));
    assert!(!is_open(&w, utc("2025-07-13T12:00:00Z")));
    // A step is a restriction too: odd days, or Mondays.
    let cron = Cron::parse("0 0 */2 * 1").unwrap();
    let day = |d: &str| format!("{d}T00:00").parse::<DateTime>().unwrap();
    assert!(cron.matches(day("2025-06-03"))); // odd
    assert!(cron.matches(day("2025-06-02"))); // Monday
    assert!(!cron.matches(day("2025-06-04")));
    // `?` is `*`: day-of-week alone decides.
    let cron = Cron::parse("0 0 ? * 1").unwrap();
    assert!(cron.matches(day("2025-06-02")));
    assert!(!cron.matches(day("2025-06-03")));
}

#[test]
fn names_ranges_lists_and_steps() {
    let time = |t: &str| t.parse::<DateTime>().unwrap();
    let cron = Cron::parse("*/15 9-17/4 * jan-MAR Mon-fri").unwrap();
    let until = time("2030-01-01T00:00");
    assert_eq!(
        cron.next(time("2025-01-10T09:01"), until),
        Some(time("2025-01-10T09:15"))
    );
    assert_eq!(
        cron.next(time("2025-01-10T09:46"), until),
        Some(time("2025-01-10T13:00"))
    );
    // Friday 17:45 is the last of the week.
    assert_eq!(
        cron.next(time("2025-01-10T17:45:01"), until),
        Some(time("2025-01-13T09:00"))
    );
    // March is the last month.
    assert_eq!(
        cron.next(time("2025-03-31T17:46"), until),
        Some(time("2026-01-01T09:00"))
    );
    assert_eq!(
        cron.prev(time("2026-01-01T08:59"), time("2020-01-01T00:00")),
        Some(time("2025-03-31T17:45"))
    );

    let sunday = time("2025-01-12T00:00");
    let monday = time("2025-01-13T00:00");
    for schedule in [
        "0 0 * * 0",
        "0 0 * * 7",
        "0 0 * * SUN",
        "0 0 * * sun,sat",
        "0 0 * * 5-7",
    ] {
        let cron = Cron::parse(schedule).unwrap();
        assert!(cron.matches(sunday), "{schedule}");
        assert!(!cron.matches(monday), "{schedule}");
    }
    // `a/s` runs to the end of the field.
    let cron = Cron::parse("5/20 * * * *").unwrap();
    let minutes: Vec<i8> = (0..60)
        .filter(|&m| cron.matches(time("2025-01-13T10:00") + SignedDuration::from_mins(m)))
        .map(|m| m as i8)
        .collect();
    assert_eq!(minutes, [5, 25, 45]);
    // Lists mix forms.
    let cron = Cron::parse("0,30-40/5,59 * * * *").unwrap();
    let minutes: Vec<i64> = (0..60)
        .filter(|&m| cron.matches(time("2025-01-13T10:00") + SignedDuration::from_mins(m)))
        .collect();
    assert_eq!(minutes, [0, 30, 35, 40, 59]);
}

#[test]
fn shortcuts_are_their_expansions() {
    for (short, long) in [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@HOURLY", "0 * * * *"),
    ] {
        assert_eq!(Cron::parse(short), Cron::parse(long), "{short}");
    }
}

#[test]
fn next_and_prev_skip_to_leap_days() {
    let time = |t: &str| t.parse::<DateTime>().unwrap();
    let cron = Cron::parse("0 0 29 2 *").unwrap();
    assert_eq!(
        cron.next(time("2025-03-01T00:00"), time("2030-01-01T00:00")),
        Some(time("2028-02-29T00:00"))
    );
    assert_eq!(
        cron.prev(time("2028-02-28T23:59"), time("2020-01-01T00:00")),
        Some(time("2024-02-29T00:00"))
    );
    assert_eq!(
        cron.next(time("2025-03-01T00:00"), time("2027-01-01T00:00")),
        None
    );
}

#[test]
fn opens_at_is_none_beyond_the_horizon() {
    let w = [allow("0 0 29 2 *", "1h", "UTC")];
    // 2028-02-29 is 365 days after 2027-03-01, and more than 366 after 2026-03-01.
    assert_eq!(
        closed_until(&w, utc("2027-03-01T00:00:00Z")),
        Some(utc("2028-02-29T00:00:00Z"))
    );
    assert_eq!(closed_until(&w, utc("2026-03-01T00:00:00Z")), None);
    // A Deny window every minute: closed for good, found without a step a minute.
    let w = [deny("* * * * *", "1m", "Europe/London")];
    assert_eq!(closed_until(&w, utc("2025-03-01T00:00:00Z")), None);
    // Back-to-back openings are followed in a few steps too.
    for schedule in ["*/2 * * * *", "0,30 * * * *", "0 * * * *"] {
        let w = [deny(schedule, "1h", "America/New_York")];
        assert_eq!(
            closed_until(&w, utc("2025-03-01T00:00:00Z")),
            None,
            "{schedule}"
        );
    }
    // The same, ending: every other minute of December, in London time.
    let w = [deny("*/2 * * 12 *", "2m", "Europe/London")];
    assert_eq!(
        closed_until(&w, utc("2025-12-02T00:00:00Z")),
        Some(utc("2026-01-01T00:00:00Z"))
    );
    // Every weekday minute from 9 to 17, for a minute: out at 18:00.
    let w = [deny("* 9-17 * * 1-5", "1m", "UTC")];
    assert_eq!(
        closed_until(&w, utc("2025-01-13T09:00:00Z")),
        Some(utc("2025-01-13T18:00:00Z"))
    );
}

#[test]
fn runs_of_openings_that_overlap() {
    let time = |t: &str| t.parse::<DateTime>().unwrap();
    let until = time("2026-01-01T00:00");
    let cron = Cron::parse("*/2 * * * 1-5").unwrap();
    let monday = time("2025-01-13T10:00");
    // Two minutes apart: a 1m reach breaks at once, 2m goes to Friday night.
    assert_eq!(cron.run_end(monday, MINUTE, until), monday);
    let two = SignedDuration::from_mins(2);
    assert_eq!(cron.run_end(monday, two, until), time("2025-01-17T23:58"));
    // Reaching over the weekend, it goes on to the end.
    let weekend = SignedDuration::from_hours(49);
    assert_eq!(cron.run_end(monday, weekend, until), until);
    // Stops at `until`.
    assert_eq!(
        cron.run_end(monday, two, time("2025-01-14T12:01")),
        time("2025-01-14T12:00")
    );
    // Gaps across hours: 09:00-09:50 every 10 minutes, then 11:00.
    let cron = Cron::parse("*/10 9,11 * * *").unwrap();
    let nine = time("2025-01-13T09:00");
    let ten = SignedDuration::from_mins(10);
    assert_eq!(cron.run_end(nine, ten, until), time("2025-01-13T09:50"));
    let seventy = SignedDuration::from_mins(70);
    assert_eq!(cron.run_end(nine, seventy, until), time("2025-01-13T11:50"));
}

fn error(windows: &[Window]) -> String {
    let e = validate(windows).unwrap_err();
    assert_eq!(gate(windows, utc("2025-01-01T00:00:00Z")), Err(e.clone()));
    e.to_string()
}

fn schedule_error(schedule: &str) -> String {
    error(&[deny(schedule, "1h", "UTC")])
}

#[test]
fn validation_errors_name_the_window_and_the_problem() {
    assert_eq!(validate(&[weekend_freeze("Europe/London")]), Ok(()));
    let cases = [
        (
            "0 17 * *",
            "window 0 (`0 17 * *`): schedule: expected 5 fields (minute hour day-of-month month day-of-week)",
        ),
        ("0 17 * *", "found 4 fields"),
        ("@fortnightly", "unknown shortcut `@fortnightly`"),
        (
            "60 * * * *",
            "window 0 (`60 * * * *`): schedule: minute field `60`: `60` is not a value of this field (use 0-59)",
        ),
        (
            "0 24 * * *",
            "hour field `24`: `24` is not a value of this field (use 0-23)",
        ),
        (
            "0 0 0 * *",
            "day-of-month field `0`: `0` is not a value of this field (use 1-31)",
        ),
        (
            "0 0 * 13 *",
            "month field `13`: `13` is not a value of this field (use 1-12 or JAN-DEC)",
        ),
        ("0 0 * FOO *", "month field `FOO`: `FOO`"),
        (
            "0 0 * * 8",
            "day-of-week field `8`: `8` is not a value of this field (use 0-7 or SUN-SAT)",
        ),
        ("MON 0 * * *", "minute field `MON`: `MON` is not a value"),
        ("+5 0 * * *", "minute field `+5`"),
        (
            "*/0 * * * *",
            "minute field `*/0`: step `0` is not a positive number",
        ),
        ("1-2/x * * * *", "step `x` is not a positive number"),
        ("0 0 * * 7/2", "day-of-week field `7/2`: matches no value"),
        (
            "5-1 * * * *",
            "minute field `5-1`: range `5-1` runs backwards",
        ),
        ("1,,2 * * * *", "minute field `1,,2`: empty list item"),
        ("0 0 31 2 *", "schedule: never fires"),
        ("0 0 30,31 2 *", "never fires"),
    ];
    for (schedule, expected) in cases {
        let message = schedule_error(schedule);
        assert!(message.contains(expected), "{schedule}: {message}");
    }
    assert_eq!(validate(&[deny("0 0 29 2 *", "1h", "UTC")]), Ok(()));
    assert_eq!(validate(&[deny("0 0 31 2 5", "1h", "UTC")]), Ok(()));

    let ok = deny("0 17 * * 5", "64h", "UTC");
    let with = |f: fn(&mut Window)| {
        let mut bad = ok.clone();
        f(&mut bad);
        error(&[ok.clone(), bad])
    };
    assert_eq!(
        with(|w| w.time_zone = "Europe/Lodnon".into()),
        "window 1 (`0 17 * * 5`): unknown time zone `Europe/Lodnon`: use an IANA name such as Europe/London or UTC"
    );
    assert_eq!(
        with(|w| w.duration = "1d".into()),
        "window 1 (`0 17 * * 5`): invalid duration \"1d\": use numbers with s, m or h, e.g. 30m or 1h30m"
    );
    assert_eq!(
        with(|w| w.duration = "0h0m".into()),
        "window 1 (`0 17 * * 5`): duration `0h0m` is zero: the window would never be open"
    );
    assert_eq!(
        with(|w| w.duration = "9000h".into()),
        "window 1 (`0 17 * * 5`): duration `9000h` is longer than 8784h (366 days)"
    );
    assert!(validate(&[deny("0 0 * * *", "8784h", "UTC")]).is_ok());
    // Zone names are matched without regard to case, as in the IANA database.
    assert!(validate(&[deny("0 0 * * *", "1h", "europe/london")]).is_ok());
}

/// A small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Reference: every opening, found by testing each wall-clock minute.
struct Reference {
    denies: Vec<Vec<(Timestamp, Timestamp)>>,
    allows: Vec<Vec<(Timestamp, Timestamp)>>,
}

impl Reference {
    /// Complete for instants in `[from, to]`.
    fn new(windows: &[Window], from: Timestamp, to: Timestamp) -> Reference {
        let margin = SignedDuration::from_hours(30);
        let mut reference = Reference {
            denies: vec![],
            allows: vec![],
        };
        for w in windows {
            let cron = Cron::parse(&w.schedule).unwrap();
            let tz = TimeZoneDatabase::bundled().get(&w.time_zone).unwrap();
            let length =
                SignedDuration::try_from(crate::duration::parse(&w.duration).unwrap()).unwrap();
            let instant = |c: DateTime| tz.to_ambiguous_timestamp(c).compatible().unwrap();
            let first = (tz.to_datetime(from) - length - margin).date();
            let last = (tz.to_datetime(to) + margin).date();
            let mut openings = vec![];
            for day in first.series(jiff::Span::new().days(1)) {
                if day > last {
                    break;
                }
                // Only to save time: matches() checks the day again.
                if !cron.matches_day(day) {
                    continue;
                }
                for minute in 0..24 * 60 {
                    let c = day.at((minute / 60) as i8, (minute % 60) as i8, 0, 0);
                    if cron.matches(c) {
                        openings.push((instant(c), instant(c + length)));
                    }
                }
            }
            match w.kind {
                WindowKind::Deny => reference.denies.push(openings),
                WindowKind::Allow => reference.allows.push(openings),
            }
        }
        reference
    }

    fn is_open(&self, t: Timestamp) -> bool {
        let covered = |openings: &Vec<(Timestamp, Timestamp)>| {
            openings.iter().any(|&(open, close)| open <= t && t < close)
        };
        !self.denies.iter().any(covered)
            && (self.allows.is_empty() || self.allows.iter().any(covered))
    }

    /// The first instant in `[now, until]` when the gate is open, tried at
    /// every instant where it can change.
    fn opens_at(&self, now: Timestamp, until: Timestamp) -> Option<Timestamp> {
        let mut candidates: Vec<Timestamp> = std::iter::once(now)
            .chain(self.denies.iter().flatten().map(|&(_, close)| close))
            .chain(self.allows.iter().flatten().map(|&(open, _)| open))
            .filter(|&t| now <= t && t <= until)
            .collect();
        candidates.sort();
        candidates.into_iter().find(|&t| self.is_open(t))
    }
}

#[test]
fn random_instants_agree_with_minute_by_minute_reference() {
    let mut rng = Rng(0x5eed);
    let horizon = SignedDuration::from_hours(24 * 5);
    let spread = SignedDuration::from_hours(24 * 2);
    // Around clock changes in zones with 1h, 30m and 45m-offset changes.
    let zones = [
        ("UTC", "2025-06-01T00:00:00Z"),
        ("Europe/London", "2025-03-30T01:00:00Z"),
        ("Europe/London", "2025-10-26T01:00:00Z"),
        ("America/New_York", "2025-03-09T07:00:00Z"),
        ("America/New_York", "2025-11-02T06:00:00Z"),
        ("Australia/Lord_Howe", "2025-04-05T15:00:00Z"),
        ("Australia/Lord_Howe", "2025-10-04T15:30:00Z"),
        ("Pacific/Chatham", "2025-04-05T14:00:00Z"),
    ];
    let minutes = [
        "0", "30", "*/15", "0-10/5", "45", "*", "59", "*/2", "20,40", "10,50",
    ];
    let hours = ["*", "1", "2", "1-3", "2-3", "*/6", "17", "0", "9-17", "23"];
    let days = ["*", "*", "*", "1", "5", "1-7", "*/2"];
    let months = ["*", "*", "*", "3", "10", "3,4,10,11"];
    let weekdays = ["*", "*", "0", "5", "1-5", "SAT,SUN"];
    let durations = [
        "30s", "1m", "2m", "30m", "1h", "90m", "2h", "8h", "25h", "64h",
    ];
    let (mut closed, mut opened_later) = (0, 0);
    for case in 0..100 {
        let (zone, base) = zones[rng.below(zones.len() as u64) as usize];
        let count = 1 + rng.below(3);
        let windows: Vec<Window> = (0..count)
            .map(|_| {
                let schedule = format!(
                    "{} {} {} {} {}",
                    rng.pick(&minutes),
                    rng.pick(&hours),
                    rng.pick(&days),
                    rng.pick(&months),
                    rng.pick(&weekdays)
                );
                // Mostly the one zone, sometimes UTC, to mix zones.
                let zone = if rng.below(4) == 0 { "UTC" } else { zone };
                let kind = if rng.below(3) == 0 {
                    WindowKind::Allow
                } else {
                    WindowKind::Deny
                };
                window(kind, &schedule, rng.pick(&durations), zone)
            })
            .collect();
        let base = utc(base);
        let reference = Reference::new(&windows, base - spread, base + spread + horizon);
        for _ in 0..10 {
            // Half of the instants within 3 hours of the clock change.
            let spread = if rng.below(2) == 0 {
                SignedDuration::from_hours(3)
            } else {
                spread
            };
            let offset = rng.below(2 * spread.as_secs() as u64) as i64 - spread.as_secs();
            let now = base + SignedDuration::from_secs(offset);
            let expected = reference.opens_at(now, now + horizon);
            let got = at(&windows, now);
            let context = format!("case {case} at {now}: {windows:#?}");
            match (expected, &got) {
                (Some(t), Gate::Open) => assert_eq!(t, now, "{context}"),
                (Some(t), Gate::Closed { opens_at, .. }) => {
                    assert_ne!(t, now, "open expected: {context}");
                    assert_eq!(*opens_at, Some(t), "{context}");
                    closed += 1;
                    opened_later += 1;
                }
                (None, Gate::Closed { opens_at, .. }) => {
                    assert!(opens_at.is_none_or(|t| t > now + horizon), "{context}");
                    closed += 1;
                }
                (None, Gate::Open) => panic!("closed expected: {context}"),
            }
            // The window named is the first open Deny window, if any.
            if let Gate::Closed { window, .. } = got {
                let first_deny = windows.iter().enumerate().position(|(i, w)| {
                    w.kind == WindowKind::Deny && !is_open(std::slice::from_ref(&windows[i]), now)
                });
                if let Some(first) = first_deny {
                    assert_eq!(window, first, "{context}");
                } else {
                    assert_eq!(windows[window].kind, WindowKind::Allow, "{context}");
                }
            }
        }
    }
    // The cases exercise both answers.
    assert!(
        closed > 100 && opened_later > 100,
        "{closed} {opened_later}"
    );
}

#[test]
fn timestamps_are_the_kubernetes_types() {
    // The controller passes k8s_openapi's Timestamp: the direct jiff dependency
    // must be the same crate for this to compile.
    let now: k8s_openapi::jiff::Timestamp = utc("2025-01-10T17:00:00Z");
    let opens: Option<k8s_openapi::jiff::Timestamp> = closed_until(&[weekend_freeze("UTC")], now);
    assert!(opens.is_some());
}
