//! Tests of the calendar crate through its public API, as data tables run by one `check` helper per
//! boundary: working-time questions, calendar validation, and duration syntax.
//!
//! Moments in the tables are wall-clock times in the calendar's time zone, written
//! `Mon 2026-09-14 10:00`; the weekday is checked against the date, so a slip in a table shows up
//! as a broken table rather than a wrong expectation. A wall-clock time that occurs twice (the hour
//! repeated when clocks go back) carries its offset: `Sun 2026-10-25 02:30 +01:00`.

use calendar::{Calendar, CalendarSpec, format_duration, parse_duration};
use jiff::civil::DateTime;
use jiff::tz::Offset;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

/// The workshop of the process owner's example: two shifts on weekdays, Saturday mornings,
/// National Day week closed, and two make-up working days (Sunday 27 September and Saturday
/// 10 October 2026) with full weekday hours.
fn workshop() -> Calendar {
    calendar(json!({
        "timezone": "Asia/Shanghai",
        "hours": {
            "mon-fri": ["08:30-12:00", "13:30-18:00"],
            "sat": ["09:00-12:00"],
        },
        "holidays": [
            "2026-10-01",
            { "date": "2026-10-02", "name": "National Day" },
            "2026-10-03", "2026-10-04", "2026-10-05", "2026-10-06", "2026-10-07",
        ],
        "workdays": ["2026-09-27", "2026-10-10"],
        "workday_hours": ["08:30-12:00", "13:30-18:00"],
    }))
}

#[test]
fn add_working_counts_only_open_time() {
    check(
        &workshop(),
        "
        # within one period
        add_working  Mon 2026-09-14 10:00  PT1H     => Mon 2026-09-14 11:00
        # across the lunch break
        add_working  Mon 2026-09-14 11:00  PT2H     => Mon 2026-09-14 14:30
        # running out exactly at closing time ends at closing time, not next morning
        add_working  Mon 2026-09-14 16:00  PT2H     => Mon 2026-09-14 18:00
        # across the evening
        add_working  Mon 2026-09-14 17:00  PT2H     => Tue 2026-09-15 09:30
        # starting while closed counts from the next opening
        add_working  Mon 2026-09-14 19:00  PT15M    => Tue 2026-09-15 08:45
        add_working  Mon 2026-09-14 12:30  PT0S     => Mon 2026-09-14 13:30
        add_working  Mon 2026-09-14 10:00  PT0S     => Mon 2026-09-14 10:00
        # into the short Saturday and over the closed Sunday
        add_working  Fri 2026-09-11 17:00  PT2H     => Sat 2026-09-12 10:00
        add_working  Fri 2026-09-11 17:00  PT5H     => Mon 2026-09-14 09:30
        add_working  Sat 2026-09-12 11:00  PT2H     => Mon 2026-09-14 09:30
        # a whole week is 5 x 8 h + 3 h
        add_working  Mon 2026-09-14 08:30  PT43H    => Sat 2026-09-19 12:00
        add_working  Mon 2026-09-14 08:30  PT38H    => Fri 2026-09-18 16:00
        # P1D is 24 hours of open time, three working days here, not one
        add_working  Mon 2026-09-14 08:30  P1D      => Wed 2026-09-16 18:00
        # seconds survive
        add_working  Mon 2026-09-14 11:59:30  PT1M  => Mon 2026-09-14 13:30:30
        # the make-up Sunday opens with weekday hours
        add_working  Sat 2026-09-26 11:00  PT2H     => Sun 2026-09-27 09:30
        # the National Day week is skipped whole
        add_working  Wed 2026-09-30 17:00  PT2H     => Thu 2026-10-08 09:30
        # the make-up Saturday has weekday hours, not Saturday's 09:00-12:00
        add_working  Fri 2026-10-09 17:30  PT4H30M  => Sat 2026-10-10 14:00
        add_working  Mon 2026-09-14 10:00  -PT1H    => error NegativeDuration { duration: 1h ago }
        ",
    );
}

#[test]
fn next_open_and_is_open_follow_hours_holidays_and_workdays() {
    check(
        &workshop(),
        "
        next_open    Mon 2026-09-14 10:00     => Mon 2026-09-14 10:00
        next_open    Mon 2026-09-14 08:30     => Mon 2026-09-14 08:30
        next_open    Mon 2026-09-14 07:00     => Mon 2026-09-14 08:30
        # closing time belongs to the break, not to the morning
        next_open    Mon 2026-09-14 12:00     => Mon 2026-09-14 13:30
        next_open    Mon 2026-09-14 17:59:59  => Mon 2026-09-14 17:59:59
        next_open    Sat 2026-09-12 12:00     => Mon 2026-09-14 08:30
        next_open    Sat 2026-09-26 13:00     => Sun 2026-09-27 08:30
        next_open    Wed 2026-09-30 18:00     => Thu 2026-10-08 08:30
        is_open      Mon 2026-09-14 08:29     => closed
        is_open      Mon 2026-09-14 08:30     => open
        is_open      Mon 2026-09-14 11:59     => open
        is_open      Mon 2026-09-14 12:00     => closed
        is_open      Mon 2026-09-14 18:00     => closed
        is_open      Sat 2026-09-12 14:00     => closed
        is_open      Sun 2026-09-13 10:00     => closed
        is_open      Sun 2026-09-27 10:00     => open
        is_open      Thu 2026-10-01 10:00     => closed
        is_open      Sat 2026-10-10 14:00     => open
        ",
    );
}

#[test]
fn working_between_sums_open_time_in_a_half_open_span() {
    check(
        &workshop(),
        "
        working_between  Mon 2026-09-14 08:00  Mon 2026-09-14 18:30  => PT8H
        working_between  Mon 2026-09-14 11:00  Mon 2026-09-14 14:00  => PT1H30M
        working_between  Mon 2026-09-14 10:00  Mon 2026-09-14 10:00  => PT0S
        working_between  Mon 2026-09-14 14:00  Mon 2026-09-14 11:00  => PT0S
        working_between  Mon 2026-09-14 00:00  Mon 2026-09-21 00:00  => PT43H
        working_between  Wed 2026-09-30 00:00  Thu 2026-10-08 00:00  => PT8H
        working_between  Sat 2026-09-26 00:00  Mon 2026-09-28 00:00  => PT11H
        working_between  Sat 2026-09-12 12:00  Mon 2026-09-14 08:30  => PT0S
        ",
    );
}

#[test]
fn next_day_start_skips_to_the_first_open_moment_of_a_later_date() {
    check(
        &workshop(),
        "
        next_day_start  Mon 2026-09-14 10:00  => Tue 2026-09-15 08:30
        # before today's opening, still the next day's
        next_day_start  Mon 2026-09-14 07:00  => Tue 2026-09-15 08:30
        next_day_start  Fri 2026-09-11 20:00  => Sat 2026-09-12 09:00
        next_day_start  Sat 2026-09-12 10:00  => Mon 2026-09-14 08:30
        next_day_start  Sat 2026-09-26 10:00  => Sun 2026-09-27 08:30
        next_day_start  Wed 2026-09-30 10:00  => Thu 2026-10-08 08:30
        ",
    );
}

#[test]
fn calling_hours_apply_every_day() {
    let calling_hours = calendar(json!({
        "timezone": "Asia/Shanghai",
        "hours": { "mon-sun": ["09:00-11:30", "14:00-19:00"] },
    }));
    check(
        &calling_hours,
        "
        add_working      Mon 2026-09-14 19:30  PT30M  => Tue 2026-09-15 09:30
        add_working      Sat 2026-09-12 11:00  PT1H   => Sat 2026-09-12 14:30
        next_open        Sun 2026-09-13 12:00         => Sun 2026-09-13 14:00
        working_between  Sun 2026-09-13 00:00  Mon 2026-09-14 00:00  => PT7H30M
        next_day_start   Sun 2026-09-13 20:00         => Mon 2026-09-14 09:00
        ",
    );
}

/// A Berlin service line open on weekdays and around the clock on Sundays, the day on which the
/// clocks change: 29 March 2026 has 23 hours, 25 October 2026 has 25.
#[test]
fn berlin_daylight_saving_changes_the_length_of_a_day() {
    let service_line = calendar(json!({
        "timezone": "Europe/Berlin",
        "hours": { "mon-fri": ["08:00-17:00"], "sun": ["00:00-24:00"] },
    }));
    check(
        &service_line,
        "
        working_between  Sun 2026-03-22 00:00  Mon 2026-03-23 00:00  => PT24H
        working_between  Sun 2026-03-29 00:00  Mon 2026-03-30 00:00  => PT23H
        working_between  Sun 2026-10-25 00:00  Mon 2026-10-26 00:00  => PT25H
        # Friday 9 h + Sunday 23 h + Monday 9 h: weekday hours keep their wall-clock times
        working_between  Fri 2026-03-27 00:00  Tue 2026-03-31 00:00  => PT41H
        # three real hours after midnight, the wall clock has skipped 02:00-03:00
        add_working      Sun 2026-03-29 00:00  PT3H   => Sun 2026-03-29 04:00
        # ... or shows 02:00-03:00 twice
        add_working      Sun 2026-10-25 00:00  PT2H30M  => Sun 2026-10-25 02:30 +02:00
        add_working      Sun 2026-10-25 00:00  PT3H   => Sun 2026-10-25 02:00 +01:00
        # a Sunday of 24 open hours in a normal week, 23 in the short one
        add_working      Fri 2026-03-20 16:00  PT24H  => Sun 2026-03-22 23:00
        add_working      Fri 2026-03-27 16:00  PT24H  => Mon 2026-03-30 00:00
        add_working      Mon 2026-03-30 16:00  PT2H   => Tue 2026-03-31 09:00
        is_open          Sun 2026-10-25 02:30 +01:00  => open
        next_open        Sat 2026-03-28 12:00         => Sun 2026-03-29 00:00
        next_day_start   Sat 2026-10-24 12:00         => Sun 2026-10-25 00:00
        ",
    );
}

/// Opening ranges whose ends fall into the skipped or repeated hour: a skipped time counts as the
/// moment the clocks jump and a repeated time as its first occurrence, so that the ranges of a day
/// neither overlap nor count an hour twice.
#[test]
fn berlin_ranges_ending_inside_the_changed_hour_count_each_hour_once() {
    let night_shift = calendar(json!({
        "timezone": "Europe/Berlin",
        "hours": { "sun": ["01:00-02:30", "03:00-04:00"] },
    }));
    check(
        &night_shift,
        "
        working_between  Sun 2026-03-22 00:00  Mon 2026-03-23 00:00  => PT2H30M
        # 01:00 until the clocks jump at 02:00 to 03:00, then 03:00-04:00
        working_between  Sun 2026-03-29 00:00  Mon 2026-03-30 00:00  => PT2H
        # 01:00 to the first 02:30, then 03:00-04:00 after the repeated hour
        working_between  Sun 2026-10-25 00:00  Mon 2026-10-26 00:00  => PT2H30M
        add_working      Sun 2026-03-29 00:00  PT1H30M  => Sun 2026-03-29 03:30
        add_working      Sun 2026-10-25 00:00  PT2H     => Sun 2026-10-25 03:30
        is_open          Sun 2026-03-29 01:59           => open
        is_open          Sun 2026-03-29 03:15           => open
        is_open          Sun 2026-03-29 04:00           => closed
        is_open          Sun 2026-10-25 02:15 +02:00    => open
        is_open          Sun 2026-10-25 02:15 +01:00    => closed
        next_open        Sun 2026-10-25 02:45 +02:00    => Sun 2026-10-25 03:00
        next_open        Sun 2026-03-29 00:00           => Sun 2026-03-29 01:00
        ",
    );
}

#[test]
fn always_open_utc_counts_elapsed_time() {
    check(
        &Calendar::always_open_utc(),
        "
        add_working      Mon 2026-09-14 10:00  PT90M  => Mon 2026-09-14 11:30
        add_working      Mon 2026-09-14 10:00  P1D    => Tue 2026-09-15 10:00
        working_between  Mon 2026-09-14 10:00  Tue 2026-09-15 10:00  => PT24H
        next_open        Sun 2026-09-13 03:00  => Sun 2026-09-13 03:00
        next_day_start   Mon 2026-09-14 10:00  => Tue 2026-09-15 00:00
        is_open          Sun 2026-09-13 03:00  => open
        # the walk covers 3,700 dates counting the first
        add_working      Mon 2026-01-05 00:00  P3700D     => Fri 2036-02-22 00:00
        add_working      Mon 2026-01-05 00:00  P3700DT1S  => error BeyondHorizon
        add_working      Mon 2026-01-05 00:01  P3700D     => error BeyondHorizon
        ",
    );
}

/// A calendar open one hour on Mondays whose Mondays are holidays for years: the search for an
/// open moment gives up after 3,700 dates instead of running on.
#[test]
fn search_gives_up_after_the_horizon() {
    let mondays_closed_for = |n_weeks: i64| {
        let first_monday: jiff::civil::Date = "2026-01-05".parse().expect("a valid date literal");
        let holidays: Vec<String> = (0..n_weeks)
            .map(|week| {
                let monday =
                    first_monday.checked_add(jiff::Span::new().weeks(week)).expect("within the supported dates");
                monday.to_string()
            })
            .collect();
        calendar(json!({
            "timezone": "Asia/Shanghai",
            "hours": { "mon": ["09:00-10:00"] },
            "holidays": holidays,
        }))
    };
    // 528 weeks are 3,696 days: the next open Monday is the 3,697th date of the walk.
    check(
        &mondays_closed_for(528),
        "
        next_open        Mon 2026-01-05 00:00  => Mon 2036-02-18 09:00
        add_working      Mon 2026-01-05 00:00  PT1H  => Mon 2036-02-18 10:00
        ",
    );
    // 529 weeks are 3,703 days: beyond the horizon.
    check(
        &mondays_closed_for(529),
        "
        next_open        Mon 2026-01-05 00:00  => error NeverOpens
        add_working      Mon 2026-01-05 00:00  PT0S  => error NeverOpens
        next_day_start   Mon 2026-01-05 00:00  => error NeverOpens
        # working_between has both ends, so it counts on past the horizon
        working_between  Mon 2026-01-05 00:00  Mon 2036-02-25 00:00  => PT0S
        working_between  Mon 2026-01-05 00:00  Tue 2036-02-26 00:00  => PT1H
        ",
    );
}

/// Near the limits of what can be represented (the years 9999 and -9999) the answers become
/// errors rather than panics or wrong moments.
#[test]
fn moments_at_the_ends_of_time_give_errors_not_panics() {
    let two_days = SignedDuration::from_hours(48);
    for cal in [workshop(), Calendar::always_open_utc()] {
        let out_of_range = Err(calendar::Error::OutOfRange);
        assert_eq!(cal.next_open(Timestamp::MAX), out_of_range);
        assert_eq!(cal.add_working(Timestamp::MAX, two_days), out_of_range);
        assert_eq!(cal.next_day_start(Timestamp::MAX), out_of_range);
        assert_eq!(cal.add_working(Timestamp::MIN, two_days), out_of_range);
        assert!(cal.working_between(Timestamp::MAX - two_days, Timestamp::MAX) <= two_days);
    }
}

/// Properties that tie the operations together, over every 20 minutes of three weeks that include
/// a make-up Sunday, the National Day week and a make-up Saturday.
#[test]
fn add_working_and_working_between_agree() {
    let cal = workshop();
    let durations = ["PT0S", "PT1S", "PT15M", "PT2H", "PT3H30M", "PT7H", "PT24H", "PT40H"]
        .map(|text| parse_duration(text).expect("a valid duration literal"));
    let mut start = moment(&cal, &["Fri", "2026-09-25", "00:00"]);
    let end = moment(&cal, &["Mon", "2026-10-12", "00:00"]);
    let mut n_checked = 0;
    while start < end {
        let next_open = cal.next_open(start).expect("the workshop opens");
        assert_eq!(cal.is_open(start), next_open == start, "is_open disagrees at {start}");
        let next_day = cal.next_day_start(start).expect("the workshop opens");
        assert!(cal.is_open(next_day), "next_day_start({start}) = {next_day} is not open");
        assert!(date_of(&cal, next_day) > date_of(&cal, start), "next_day_start({start}) is today");
        for duration in durations {
            let due = cal.add_working(start, duration).expect("the workshop opens");
            assert_eq!(
                cal.working_between(start, due),
                duration,
                "working_between({start}, add_working({start}, {duration}) = {due})"
            );
            assert!(due >= next_open, "add_working({start}, {duration}) = {due} before opening");
            if !duration.is_zero() {
                let just_before = due - SignedDuration::from_nanos(1);
                assert!(cal.is_open(just_before), "add_working({start}, {duration}) = {due} ends in closed time");
            }
            n_checked += 1;
        }
        start += SignedDuration::from_mins(20);
    }
    assert_eq!(n_checked, 17 * 72 * durations.len());
}

#[test]
fn parse_accepts_the_owner_example() {
    let spec: CalendarSpec = serde_json::from_value(json!({
        "timezone": " europe/berlin ",
        "hours": { "mon-fri": ["08:30-12:00", " 13:30 - 18:00 "], "sat": ["9:00-12:00"], "sun": [] },
        "holidays": ["2026-10-01", { "date": "2026-10-02", "name": "National Day" }, { "date": "2026-10-03" }],
        "workdays": ["2026-09-27"],
    }))
    .expect("the example has the right shape");
    let cal = Calendar::parse(&spec).expect("the example is valid");
    assert_eq!(cal.timezone().iana_name(), Some("Europe/Berlin"));
    // The make-up Sunday takes Monday's hours since `workday_hours` is absent.
    check(
        &cal,
        "
        next_open  Sun 2026-09-27 07:00  => Sun 2026-09-27 08:30
        next_open  Sat 2026-09-26 08:00  => Sat 2026-09-26 09:00
        next_open  Fri 2026-10-02 08:00  => Mon 2026-10-05 08:30
        working_between  Mon 2026-09-14 00:00  Tue 2026-09-15 00:00  => PT8H
        ",
    );
}

#[test]
fn parse_reports_every_problem_with_its_path() {
    check_spec_errors(
        json!({
            "timezone": "Asia/Shangai",
            "hours": {
                "fri": ["09:00-10:00"],
                "mon-fri": ["08:30-12:00", "11:00-13:00", "25:00-26:00"],
                "monday": ["18:00-08:30"],
                "sat-mon": ["09:00-12:00"],
            },
            "holidays": ["2026-02-30", { "date": "2026-10-01", "name": "National Day" }, "2026-10-01", "10/01/2026"],
            "workdays": ["2026-10-01", "2026-13-01"],
            "workday_hours": ["8-12"],
        }),
        "
        timezone: `Asia/Shangai` is not a known time zone: use an IANA name such as Asia/Shanghai or Europe/Berlin
        hours.mon-fri.2: `25:00` is not a time of day (use HH:MM, 00:00 to 24:00)
        hours.mon-fri.1: the ranges 08:30-12:00 and 11:00-13:00 overlap under `mon-fri`
        hours.mon-fri: Friday is already given under `fri`: each weekday may appear under one key only
        hours.monday: `monday` is not a weekday: write mon, tue, wed, thu, fri, sat or sun
        hours.monday.0: `18:00-08:30` ends before it starts: a range stays within one day; to stay open past midnight, end the first day at 24:00 and start the next day at 00:00
        hours.sat-mon: `sat-mon` runs backwards: weekday ranges go from Monday towards Sunday, so write `sat-sun,mon` instead
        holidays.0: `2026-02-30` is not a date: February 2026 has 28 days
        holidays.2: 2026-10-01 is listed twice under `holidays`
        holidays.3: `10/01/2026` is not a date: write it as YYYY-MM-DD, for example 2026-10-01
        workdays.1: `2026-13-01` is not a date: there is no month 13
        workday_hours.0: `8` is not a time of day (use HH:MM, 00:00 to 24:00)
        workdays.0: 2026-10-01 is listed both under `holidays` and under `workdays`: a date is either closed or a make-up working day
        ",
    );
}

#[test]
fn parse_explains_bad_weekday_keys() {
    check_spec_errors(
        json!({
            "timezone": "UTC",
            "hours": {
                "": ["09:00-10:00"],
                "mon,,tue": ["09:00-10:00"],
                "wed,wed-thu": ["09:00-10:00"],
                "fri-": ["09:00-10:00"],
                "sun-tue": ["09:00-10:00"],
                "Sat": ["09:00-10:00"],
            },
        }),
        "
        hours.: an empty key is not a weekday: write mon, tue, wed, thu, fri, sat or sun, a range such as mon-fri, or a list such as mon,wed,fri
        hours.Sat: `Sat` is not a weekday: write mon, tue, wed, thu, fri, sat or sun
        hours.fri-: a weekday range needs a day on both sides of `-`, for example mon-fri
        hours.mon,,tue: `mon,,tue` has an empty entry between commas
        hours.sun-tue: `sun-tue` runs backwards: weekday ranges go from Monday towards Sunday, so write `sun,mon-tue` instead
        hours.wed,wed-thu: Wednesday appears twice in `wed,wed-thu`
        ",
    );
}

#[test]
fn parse_explains_bad_time_ranges() {
    check_spec_errors(
        json!({
            "timezone": "UTC",
            "hours": {
                "mon": ["08:30", "08:30-12:00-13:00", "08:60-09:00", "24:00-24:00", "12:00-12:00", "08:30:00-12:00"],
                "tue": ["09:00-24:30", "9:00-24:00"],
                "wed": ["08:00-18:00", "09:00-10:00", "11:00-12:00", "18:00-19:00"],
            },
        }),
        "
        hours.mon.0: `08:30` is not a time range: write it as HH:MM-HH:MM, for example 08:30-12:00
        hours.mon.1: `08:30-12:00-13:00` is not a time range: write it as HH:MM-HH:MM, for example 08:30-12:00
        hours.mon.2: `08:60` is not a time of day (use HH:MM, 00:00 to 24:00)
        hours.mon.3: `24:00-24:00` starts at 24:00, the end of the day: a range starts between 00:00 and 23:59
        hours.mon.4: `12:00-12:00` is empty: its end must come after its start
        hours.mon.5: `08:30:00` is not a time of day (use HH:MM, 00:00 to 24:00)
        hours.tue.0: `24:30` is not a time of day (use HH:MM, 00:00 to 24:00)
        hours.wed.1: the ranges 08:00-18:00 and 09:00-10:00 overlap on Wednesday
        hours.wed.2: the ranges 08:00-18:00 and 11:00-12:00 overlap on Wednesday
        ",
    );
}

#[test]
fn parse_refuses_calendars_that_never_open() {
    check_spec_errors(
        json!({ "timezone": "Asia/Shanghai", "hours": { "sat,sun": [] } }),
        "
        hours: the calendar never opens: give opening hours for at least one weekday under `hours`, for example `mon-fri: [\"08:30-12:00\", \"13:30-18:00\"]`
        ",
    );
    check_spec_errors(
        json!({ "timezone": "", "hours": {} }),
        "
        timezone: `timezone` is empty: give an IANA time zone name such as Asia/Shanghai or Europe/Berlin
        hours: the calendar never opens: give opening hours for at least one weekday under `hours`, for example `mon-fri: [\"08:30-12:00\", \"13:30-18:00\"]`
        ",
    );
}

#[test]
fn parse_refuses_make_up_days_without_hours() {
    check_spec_errors(
        json!({
            "timezone": "Asia/Shanghai",
            "hours": { "tue-fri": ["09:00-17:00"] },
            "workdays": ["2026-09-27"],
        }),
        "
        workdays: make-up working days take Monday's hours when `workday_hours` is absent, but Monday has none: add `workday_hours` with their opening hours
        ",
    );
    check_spec_errors(
        json!({
            "timezone": "Asia/Shanghai",
            "hours": { "mon-fri": ["09:00-17:00"] },
            "workdays": ["2026-09-27"],
            "workday_hours": [],
        }),
        "
        workday_hours: `workday_hours` is empty, so the make-up working days under `workdays` would be closed: give their hours, for example [\"08:30-12:00\", \"13:30-18:00\"]
        ",
    );
}

#[test]
fn spec_refuses_unknown_fields() {
    let result = serde_json::from_value::<CalendarSpec>(json!({
        "timezone": "UTC",
        "hours": { "mon": ["09:00-10:00"] },
        "holiday": ["2026-10-01"],
    }));
    let message = result.expect_err("`holiday` is a typo").to_string();
    assert!(message.contains("unknown field `holiday`"), "{message}");
}

#[test]
fn durations_parse_to_fixed_lengths_and_format_canonically() {
    check_durations(
        "
        PT15M      => PT15M
        PT2H30M    => PT2H30M
        PT90M      => PT1H30M
        PT0S       => PT0S
        P1D        => PT24H
        P3D        => PT72H
        P1DT12H    => PT36H
        P2W        => PT336H
        PT1.5H     => PT1H30M
        PT0.5S     => PT0.5S
        PT1H0.25M  => PT1H15S
        PT0.5H30M  => error NotIso8601 { input: \"PT0.5H30M\" }
        pt15m      => PT15M
        -PT1H      => error Negative { input: \"-PT1H\" }
        P1Y        => error CalendarUnits { input: \"P1Y\" }
        P1MT1H     => error CalendarUnits { input: \"P1MT1H\" }
        P1.5D      => error NotIso8601 { input: \"P1.5D\" }
        PT         => error NotIso8601 { input: \"PT\" }
        2h         => error NotIso8601 { input: \"2h\" }
        15_minutes => error NotIso8601 { input: \"15_minutes\" }
        ",
    );
}

#[test]
fn formatted_durations_parse_back_to_themselves() {
    let durations = [
        SignedDuration::ZERO,
        SignedDuration::from_nanos(1),
        SignedDuration::from_millis(1_500),
        SignedDuration::from_secs(59 * 60 + 59),
        SignedDuration::from_hours(24),
        SignedDuration::from_hours(100_000) + SignedDuration::from_secs(61),
    ];
    for duration in durations {
        let text = format_duration(duration);
        assert_eq!(parse_duration(&text), Ok(duration), "{text}");
    }
}

#[test]
fn duration_errors_speak_to_process_owners() {
    let messages: Vec<String> = ["2h", "-PT1H", "P1M"]
        .iter()
        .map(|text| parse_duration(text).expect_err("each is refused").to_string())
        .collect();
    assert_eq!(
        messages,
        [
            "`2h` is not a duration: write it in ISO 8601 form, for example PT15M (15 minutes), \
             PT2H30M (2 hours 30 minutes) or P3D (3 days of 24 hours)",
            "`-PT1H` is negative: a time limit counts forwards, so leave out the minus sign",
            "`P1M` uses years or months, which have no fixed length: write the time in weeks \
             (P2W), days (P30D), hours or minutes instead",
        ]
    );
    assert_eq!(
        calendar::Error::NeverOpens.to_string(),
        "the calendar is not open at any time within the next 3700 days (about ten years)"
    );
}

/// The schema is what editors show process owners, so every field must carry help text, and a
/// change to it is reviewed as a snapshot.
#[test]
fn schema_documents_every_field() {
    let schema = serde_json::to_value(schemars::schema_for!(CalendarSpec)).expect("a schema is JSON");
    let mut undocumented = Vec::new();
    find_undocumented_properties(&schema, "", &mut undocumented);
    assert_eq!(undocumented, Vec::<String>::new(), "properties without a description");
    let pretty = serde_json::to_string_pretty(&schema).expect("a schema is JSON");
    insta::assert_snapshot!("calendar_spec_schema", pretty);
}

// ---------------------------------------------------------------------------------------------
// The check helpers and their small parsers.

/// Runs a table of working-time questions against `cal`. Each line is
/// `operation arguments => expected`; comment lines start with `#`. All mismatches are reported
/// together, with the line as it would have to read to pass.
#[track_caller]
fn check(cal: &Calendar, table: &str) {
    let mut mismatches = Vec::new();
    let mut n_lines = 0;
    for line in table.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')) {
        n_lines += 1;
        let (question, expected) = line.split_once("=>").unwrap_or_else(|| panic!("no `=>` in `{line}`"));
        let words: Vec<&str> = question.split_whitespace().collect();
        let (op, args) = words.split_first().unwrap_or_else(|| panic!("empty question in `{line}`"));
        let actual = match *op {
            "add_working" => {
                let (start, rest) = moment_and_rest(cal, args);
                let [duration] = rest else { panic!("add_working takes a moment and a duration: `{line}`") };
                let duration = match duration.strip_prefix('-') {
                    Some(positive) => -duration_literal(positive),
                    None => duration_literal(duration),
                };
                render_result(cal, cal.add_working(start, duration))
            }
            "next_open" => render_result(cal, cal.next_open(single_moment(cal, args, line))),
            "next_day_start" => render_result(cal, cal.next_day_start(single_moment(cal, args, line))),
            "is_open" => {
                let open = cal.is_open(single_moment(cal, args, line));
                (if open { "open" } else { "closed" }).to_owned()
            }
            "working_between" => {
                let (from, rest) = moment_and_rest(cal, args);
                let until = single_moment(cal, rest, line);
                format_duration(cal.working_between(from, until))
            }
            _ => panic!("unknown operation `{op}` in `{line}`"),
        };
        let expected = expected.split_whitespace().collect::<Vec<_>>().join(" ");
        if actual != expected {
            mismatches.push(format!("  {question}=> {actual}\n      (expected {expected})"));
        }
    }
    assert!(n_lines > 0, "the table has no lines");
    assert!(mismatches.is_empty(), "{} of {n_lines} lines differ:\n{}", mismatches.len(), mismatches.join("\n"));
}

/// Validates a calendar definition given as JSON and compares the rendered problems, one per
/// line, with the expected ones.
#[track_caller]
fn check_spec_errors(definition: serde_json::Value, expected: &str) {
    let spec: CalendarSpec = serde_json::from_value(definition).expect("the definition has the right shape");
    let actual = match Calendar::parse(&spec) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    };
    let expected: Vec<&str> = expected.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    assert!(!expected.is_empty(), "the table has no lines");
    assert_eq!(actual, expected);
}

/// Parses each duration on the left and renders it canonically (or its error) for comparison with
/// the right.
#[track_caller]
fn check_durations(table: &str) {
    let mut mismatches = Vec::new();
    let mut n_lines = 0;
    for line in table.lines().map(str::trim).filter(|line| !line.is_empty()) {
        n_lines += 1;
        let (input, expected) = line.split_once("=>").unwrap_or_else(|| panic!("no `=>` in `{line}`"));
        let actual = match parse_duration(input.trim()) {
            Ok(duration) => format_duration(duration),
            Err(error) => format!("error {error:?}"),
        };
        if actual != expected.trim() {
            mismatches.push(format!("  {} => {actual}\n      (expected {})", input.trim(), expected.trim()));
        }
    }
    assert!(n_lines > 0, "the table has no lines");
    assert!(mismatches.is_empty(), "{} of {n_lines} lines differ:\n{}", mismatches.len(), mismatches.join("\n"));
}

fn calendar(definition: serde_json::Value) -> Calendar {
    let spec: CalendarSpec = serde_json::from_value(definition).expect("the definition has the right shape");
    match Calendar::parse(&spec) {
        Ok(cal) => cal,
        Err(errors) => panic!("the test calendar is invalid: {errors:#?}"),
    }
}

fn duration_literal(text: &str) -> SignedDuration {
    parse_duration(text).unwrap_or_else(|error| panic!("bad duration in a table: {error}"))
}

fn render_result(cal: &Calendar, result: Result<Timestamp, calendar::Error>) -> String {
    match result {
        Ok(t) => render_moment(cal, t),
        Err(error) => format!("error {error:?}"),
    }
}

/// `Mon 2026-09-14 10:00`, with seconds when there are any and with the offset when the wall-clock
/// time occurs twice.
fn render_moment(cal: &Calendar, t: Timestamp) -> String {
    let tz = cal.timezone();
    let local = tz.to_datetime(t);
    let mut text = local.strftime("%a %Y-%m-%d %H:%M").to_string();
    if local.second() != 0 {
        text.push_str(&local.strftime(":%S").to_string());
    }
    if tz.to_ambiguous_timestamp(local).is_ambiguous() {
        let offset_secs = tz.to_offset(t).seconds();
        let sign = if offset_secs < 0 { '-' } else { '+' };
        let (hours, minutes) = (offset_secs.abs() / 3600, offset_secs.abs() % 3600 / 60);
        text.push_str(&format!(" {sign}{hours:02}:{minutes:02}"));
    }
    text
}

#[track_caller]
fn single_moment(cal: &Calendar, words: &[&str], line: &str) -> Timestamp {
    let (t, rest) = moment_and_rest(cal, words);
    assert!(rest.is_empty(), "unexpected words after the moment in `{line}`");
    t
}

/// Reads `Mon 2026-09-14 10:00` or `Sun 2026-10-25 02:30 +01:00` from the front of `words`.
#[track_caller]
fn moment_and_rest<'w>(cal: &Calendar, words: &'w [&'w str]) -> (Timestamp, &'w [&'w str]) {
    let n_words = match words.get(3) {
        Some(word) if word.starts_with('+') || (word.starts_with('-') && word.contains(':')) => 4,
        _ => 3,
    };
    assert!(words.len() >= n_words, "a moment needs a weekday, a date and a time: {words:?}");
    (moment(cal, &words[..n_words]), &words[n_words..])
}

#[track_caller]
fn moment(cal: &Calendar, words: &[&str]) -> Timestamp {
    let tz = cal.timezone();
    let local: DateTime =
        format!("{}T{}", words[1], words[2]).parse().unwrap_or_else(|error| panic!("bad moment {words:?}: {error}"));
    let weekday = local.strftime("%a").to_string();
    assert_eq!(weekday, words[0], "{} is a {weekday}, not a {}", words[1], words[0]);
    let t = match words.get(3) {
        Some(offset_text) => {
            let offset = parse_offset(offset_text);
            let t = offset.to_timestamp(local).expect("within the supported dates");
            assert_eq!(tz.to_offset(t), offset, "{words:?} does not exist with that offset");
            t
        }
        None => tz
            .to_ambiguous_timestamp(local)
            .unambiguous()
            .unwrap_or_else(|_| panic!("{words:?} is ambiguous or skipped in {tz:?}: give an offset")),
    };
    assert_eq!(tz.to_datetime(t), local, "{words:?} does not exist in the time zone");
    t
}

fn parse_offset(text: &str) -> Offset {
    let sign = if text.starts_with('-') { -1 } else { 1 };
    let (hours, minutes) = text[1..].split_once(':').unwrap_or_else(|| panic!("bad offset `{text}`"));
    let hours: i32 = hours.parse().unwrap_or_else(|_| panic!("bad offset `{text}`"));
    let minutes: i32 = minutes.parse().unwrap_or_else(|_| panic!("bad offset `{text}`"));
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).expect("a small offset")
}

fn date_of(cal: &Calendar, t: Timestamp) -> jiff::civil::Date {
    cal.timezone().to_datetime(t).date()
}

fn find_undocumented_properties(schema: &serde_json::Value, at: &str, undocumented: &mut Vec<String>) {
    match schema {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(properties)) = map.get("properties") {
                for (name, property) in properties {
                    if property.get("description").is_none() {
                        undocumented.push(format!("{at}/{name}"));
                    }
                }
            }
            for (key, value) in map {
                find_undocumented_properties(value, &format!("{at}/{key}"), undocumented);
            }
        }
        serde_json::Value::Array(items) => {
            for (idx, item) in items.iter().enumerate() {
                find_undocumented_properties(item, &format!("{at}/{idx}"), undocumented);
            }
        }
        _ => {}
    }
}
