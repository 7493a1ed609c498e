//! Validation of a [`CalendarSpec`] into a [`Calendar`], reporting every problem at once.
//!
//! Each check records its problem and carries on, so the owner sees all mistakes of a calendar in
//! one round instead of fixing them one by one. Messages speak in the terms of the YAML (keys,
//! `HH:MM-HH:MM`, `YYYY-MM-DD`) because process owners read them, not programmers. Checks that
//! depend on an earlier part being valid are skipped when that part is broken, so one mistake
//! does not produce a cascade of follow-up messages.

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::{TimeZone, TimeZoneDatabase};

use crate::calendar::{Calendar, LocalRange, RangeEnd, weekday_idx};
use crate::spec::{CalendarSpec, DateSpec, HolidaySpec, TimeRangeSpec};

/// One problem in a calendar definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", PathPrefix(path))]
pub struct SpecError {
    /// Where the problem is, relative to the calendar: keys and list positions (counted from 0),
    /// e.g. `["hours", "mon-fri", "1"]` for the second range under `mon-fri`.
    pub path: Vec<String>,
    /// What kind of problem it is, stable across wording changes of `message`.
    pub kind: SpecErrorKind,
    /// What is wrong and how to fix it, for the process owner.
    pub message: String,
}

/// The kinds of problem a calendar definition can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecErrorKind {
    /// `timezone` is not a known IANA time zone name.
    UnknownTimeZone,
    /// A key under `hours` is not a weekday, a weekday range in week order or a list of them.
    BadWeekdays,
    /// A weekday appears twice in one key or under two keys of `hours`.
    RepeatedWeekday,
    /// A time range is not `HH:MM-HH:MM` within one day with its start before its end.
    BadTimeRange,
    /// Two time ranges of the same day overlap.
    OverlappingRanges,
    /// A holiday or make-up working day is not a real `YYYY-MM-DD` date.
    BadDate,
    /// A date is listed twice under `holidays` or twice under `workdays`.
    RepeatedDate,
    /// A date is listed both as a holiday and as a make-up working day.
    HolidayAndWorkday,
    /// No weekday has opening hours, so the calendar would never open.
    NeverOpen,
    /// Make-up working days are listed, but they would have no opening hours.
    WorkdaysWithoutHours,
}

impl Calendar {
    /// Validates a calendar definition. On failure, returns every problem found: field by field in
    /// the order of the definition, then problems that involve two fields (a date that is both a
    /// holiday and a make-up working day, make-up working days without hours).
    pub fn parse(spec: &CalendarSpec) -> Result<Calendar, Vec<SpecError>> {
        let mut errors = Vec::new();

        let tz = parse_timezone(&spec.timezone, &mut errors);
        let weekly = parse_hours(spec, &mut errors);
        let holidays = parse_date_list(
            spec.holidays.iter().enumerate().map(|(idx, holiday)| {
                let path = match holiday {
                    HolidaySpec::Date(_) => vec!["holidays".to_owned(), idx.to_string()],
                    HolidaySpec::Named { .. } => {
                        vec!["holidays".to_owned(), idx.to_string(), "date".to_owned()]
                    }
                };
                (path, holiday.date())
            }),
            "holidays",
            &mut errors,
        );
        let workdays = parse_date_list(
            spec.workdays.iter().enumerate().map(|(idx, date)| (vec!["workdays".to_owned(), idx.to_string()], date)),
            "workdays",
            &mut errors,
        );
        let workday_hours = spec
            .workday_hours
            .as_ref()
            .map(|ranges| parse_ranges(ranges, &["workday_hours"], "in `workday_hours`", &mut errors));

        for (date, path) in &workdays {
            if holidays.contains_key(date) {
                errors.push(SpecError::new(
                    path.clone(),
                    SpecErrorKind::HolidayAndWorkday,
                    format!(
                        "{date} is listed both under `holidays` and under `workdays`: a date is \
                         either closed or a make-up working day"
                    ),
                ));
            }
        }

        // Make-up working days fall back to Monday's hours, so an owner who lists them must end up
        // with some hours for them; otherwise listing them would silently do nothing.
        let workday_hours = match (workday_hours, &weekly) {
            (Some(ranges), _) => {
                if spec.workday_hours.as_ref().is_some_and(Vec::is_empty) && !workdays.is_empty() {
                    errors.push(SpecError::new(
                        vec!["workday_hours".to_owned()],
                        SpecErrorKind::WorkdaysWithoutHours,
                        "`workday_hours` is empty, so the make-up working days under `workdays` \
                         would be closed: give their hours, for example \
                         [\"08:30-12:00\", \"13:30-18:00\"]"
                            .to_owned(),
                    ));
                }
                ranges
            }
            (None, Some(weekly)) => {
                let monday = weekly[weekday_idx(Weekday::Monday)].clone();
                if monday.is_empty() && !workdays.is_empty() {
                    errors.push(SpecError::new(
                        vec!["workdays".to_owned()],
                        SpecErrorKind::WorkdaysWithoutHours,
                        "make-up working days take Monday's hours when `workday_hours` is absent, \
                         but Monday has none: add `workday_hours` with their opening hours"
                            .to_owned(),
                    ));
                }
                monday
            }
            // The hours are broken and already reported; the calendar will not be built.
            (None, None) => Vec::new(),
        };

        match (tz, weekly) {
            (Some(tz), Some(weekly)) if errors.is_empty() => Ok(Calendar {
                tz,
                weekly,
                holidays: holidays.into_keys().collect(),
                workdays: workdays.into_keys().collect(),
                workday_hours,
            }),
            _ => Err(errors),
        }
    }
}

impl SpecError {
    fn new(path: Vec<String>, kind: SpecErrorKind, message: String) -> SpecError {
        SpecError { path, kind, message }
    }
}

/// Renders the path as `hours.mon-fri.1: ` in front of the message, or nothing for an empty path.
struct PathPrefix<'a>(&'a [String]);

impl fmt::Display for PathPrefix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        write!(f, "{}: ", self.0.join("."))
    }
}

/// Looks the zone up in the database bundled into the binary, never the operating system's, so
/// that the same definition means the same instants on every machine.
fn parse_timezone(name: &str, errors: &mut Vec<SpecError>) -> Option<TimeZone> {
    let name = name.trim();
    let message = if name.is_empty() {
        "`timezone` is empty: give an IANA time zone name such as Asia/Shanghai or Europe/Berlin".to_owned()
    } else {
        match TimeZoneDatabase::bundled().get(name) {
            Ok(tz) => return Some(tz),
            Err(_) => format!(
                "`{name}` is not a known time zone: use an IANA name such as Asia/Shanghai or \
                 Europe/Berlin"
            ),
        }
    };
    errors.push(SpecError::new(vec!["timezone".to_owned()], SpecErrorKind::UnknownTimeZone, message));
    None
}

/// Builds the weekly table. Returns `None` if any key or range under `hours` is broken, so that
/// later checks which depend on the weekly hours stay quiet instead of piling on.
fn parse_hours(spec: &CalendarSpec, errors: &mut Vec<SpecError>) -> Option<[Vec<LocalRange>; 7]> {
    let n_errors_before = errors.len();
    let mut weekly: [Vec<LocalRange>; 7] = Default::default();
    // Which key first gave each weekday, to name it when another key repeats the day.
    let mut key_of_day: [Option<&str>; 7] = [None; 7];

    for (key, ranges) in &spec.hours {
        let path = ["hours", key.as_str()];
        let days = match parse_weekdays(key) {
            Ok(days) => days,
            Err((kind, message)) => {
                errors.push(SpecError::new(to_path(&path), kind, message));
                // The ranges are still checked, so their mistakes surface in the same round.
                parse_ranges(ranges, &path, &format!("under `{key}`"), errors);
                continue;
            }
        };
        let context = match days.as_slice() {
            [day] => format!("on {}", weekday_name(*day)),
            _ => format!("under `{key}`"),
        };
        let day_ranges = parse_ranges(ranges, &path, &context, errors);
        for day in days {
            let slot = &mut key_of_day[weekday_idx(day)];
            if let Some(earlier_key) = slot {
                errors.push(SpecError::new(
                    to_path(&path),
                    SpecErrorKind::RepeatedWeekday,
                    format!(
                        "{} is already given under `{earlier_key}`: each weekday may appear under \
                         one key only",
                        weekday_name(day)
                    ),
                ));
                continue;
            }
            *slot = Some(key);
            weekly[weekday_idx(day)] = day_ranges.clone();
        }
    }

    if errors.len() > n_errors_before {
        return None;
    }
    if weekly.iter().all(Vec::is_empty) {
        errors.push(SpecError::new(
            vec!["hours".to_owned()],
            SpecErrorKind::NeverOpen,
            "the calendar never opens: give opening hours for at least one weekday under `hours`, \
             for example `mon-fri: [\"08:30-12:00\", \"13:30-18:00\"]`"
                .to_owned(),
        ));
        return None;
    }
    Some(weekly)
}

/// Parses a key such as `mon`, `mon-fri`, `mon,wed,fri` or `mon-wed, sat` into its weekdays, in
/// the order written.
fn parse_weekdays(key: &str) -> Result<Vec<Weekday>, (SpecErrorKind, String)> {
    let mut days: Vec<Weekday> = Vec::new();
    for item in key.split(',') {
        let item = item.trim();
        if item.is_empty() {
            let message = if key.trim().is_empty() {
                "an empty key is not a weekday: write mon, tue, wed, thu, fri, sat or sun, a range \
                 such as mon-fri, or a list such as mon,wed,fri"
                    .to_owned()
            } else {
                format!("`{key}` has an empty entry between commas")
            };
            return Err((SpecErrorKind::BadWeekdays, message));
        }
        let item_days = match item.split_once('-') {
            None => vec![parse_weekday(item)?],
            Some((first, last)) => {
                let (first, last) = (parse_weekday(first.trim())?, parse_weekday(last.trim())?);
                let (first_idx, last_idx) = (weekday_idx(first), weekday_idx(last));
                if first_idx > last_idx {
                    return Err((SpecErrorKind::BadWeekdays, backwards_range_message(item, first, last)));
                }
                (first_idx..=last_idx).filter_map(|idx| WEEKDAYS.get(idx)).map(|(_, day)| *day).collect()
            }
        };
        for day in item_days {
            if days.contains(&day) {
                return Err((
                    SpecErrorKind::RepeatedWeekday,
                    format!("{} appears twice in `{key}`", weekday_name(day)),
                ));
            }
            days.push(day);
        }
    }
    Ok(days)
}

fn parse_weekday(name: &str) -> Result<Weekday, (SpecErrorKind, String)> {
    WEEKDAYS.iter().find(|(short, _)| *short == name).map(|(_, day)| *day).ok_or_else(|| {
        let message = if name.is_empty() {
            "a weekday range needs a day on both sides of `-`, for example mon-fri".to_owned()
        } else {
            format!("`{name}` is not a weekday: write mon, tue, wed, thu, fri, sat or sun")
        };
        (SpecErrorKind::BadWeekdays, message)
    })
}

/// Ranges such as `sat-mon` would wrap around the week; refusing them keeps every key readable in
/// one direction, and the message spells out the equivalent the owner can write instead.
fn backwards_range_message(item: &str, first: Weekday, last: Weekday) -> String {
    let short = |day: Weekday| WEEKDAYS[weekday_idx(day)].0;
    let to_sunday = match first {
        Weekday::Sunday => "sun".to_owned(),
        _ => format!("{}-sun", short(first)),
    };
    let from_monday = match last {
        Weekday::Monday => "mon".to_owned(),
        _ => format!("mon-{}", short(last)),
    };
    format!(
        "`{item}` runs backwards: weekday ranges go from Monday towards Sunday, so write \
         `{to_sunday},{from_monday}` instead"
    )
}

/// Parses a list of time ranges, reporting bad ones and overlaps; returns the good ones sorted.
/// `context` says where the ranges apply ("on Monday", "under `mon-fri`") for overlap messages.
fn parse_ranges(
    ranges: &[TimeRangeSpec],
    path: &[&str],
    context: &str,
    errors: &mut Vec<SpecError>,
) -> Vec<LocalRange> {
    let mut parsed: Vec<(usize, &str, LocalRange)> = Vec::new();
    for (idx, TimeRangeSpec(text)) in ranges.iter().enumerate() {
        let text = text.trim();
        match parse_time_range(text) {
            Ok(range) => parsed.push((idx, text, range)),
            Err(message) => errors.push(SpecError::new(to_path_idx(path, idx), SpecErrorKind::BadTimeRange, message)),
        }
    }

    parsed.sort_by_key(|(_, _, range)| *range);
    // Compare each range with the one reaching furthest so far, which catches a range nested in
    // an earlier, longer one as well as simple neighbours.
    let mut furthest: Option<(usize, &str, LocalRange)> = None;
    for &(idx, text, range) in &parsed {
        if let Some((prev_idx, prev_text, prev_range)) = furthest {
            if prev_range.end.is_after(range.start) {
                let (first, second) = if prev_idx < idx { (prev_text, text) } else { (text, prev_text) };
                errors.push(SpecError::new(
                    to_path_idx(path, idx.max(prev_idx)),
                    SpecErrorKind::OverlappingRanges,
                    format!("the ranges {first} and {second} overlap {context}"),
                ));
            }
            if range.end > prev_range.end {
                furthest = Some((idx, text, range));
            }
        } else {
            furthest = Some((idx, text, range));
        }
    }
    parsed.into_iter().map(|(_, _, range)| range).collect()
}

fn parse_time_range(text: &str) -> Result<LocalRange, String> {
    let not_a_range = || format!("`{text}` is not a time range: write it as HH:MM-HH:MM, for example 08:30-12:00");
    let (start, end) = text.split_once('-').ok_or_else(not_a_range)?;
    if end.contains('-') {
        return Err(not_a_range());
    }
    let start = match parse_time_of_day(start.trim())? {
        RangeEnd::At(start) => start,
        RangeEnd::Midnight => {
            return Err(format!(
                "`{text}` starts at 24:00, the end of the day: a range starts between 00:00 and 23:59"
            ));
        }
    };
    let end = parse_time_of_day(end.trim())?;
    if end == RangeEnd::At(start) {
        return Err(format!("`{text}` is empty: its end must come after its start"));
    }
    if !end.is_after(start) {
        return Err(format!(
            "`{text}` ends before it starts: a range stays within one day; to stay open past \
             midnight, end the first day at 24:00 and start the next day at 00:00"
        ));
    }
    Ok(LocalRange { start, end })
}

/// Parses `HH:MM` (one or two hour digits) from `00:00` to `24:00`; `24:00` is the end of the day.
fn parse_time_of_day(text: &str) -> Result<RangeEnd, String> {
    let not_a_time = || format!("`{text}` is not a time of day (use HH:MM, 00:00 to 24:00)");
    let (hour, minute) = text.split_once(':').ok_or_else(not_a_time)?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(hour) || hour.len() > 2 || !all_digits(minute) || minute.len() != 2 {
        return Err(not_a_time());
    }
    let hour: i8 = hour.parse().map_err(|_| not_a_time())?;
    let minute: i8 = minute.parse().map_err(|_| not_a_time())?;
    if hour == 24 && minute == 0 {
        return Ok(RangeEnd::Midnight);
    }
    // `Time::new` refuses hours above 23 and minutes above 59, which is exactly the rule here.
    Time::new(hour, minute, 0, 0).map(RangeEnd::At).map_err(|_| not_a_time())
}

/// Parses dates, reporting bad and repeated ones; returns each good date with the path of its
/// first entry.
fn parse_date_list<'a>(
    entries: impl Iterator<Item = (Vec<String>, &'a DateSpec)>,
    list_name: &str,
    errors: &mut Vec<SpecError>,
) -> BTreeMap<Date, Vec<String>> {
    let mut dates = BTreeMap::new();
    for (path, DateSpec(text)) in entries {
        match parse_date(text.trim()) {
            Ok(date) if dates.contains_key(&date) => errors.push(SpecError::new(
                path,
                SpecErrorKind::RepeatedDate,
                format!("{date} is listed twice under `{list_name}`"),
            )),
            Ok(date) => {
                dates.insert(date, path);
            }
            Err(message) => errors.push(SpecError::new(path, SpecErrorKind::BadDate, message)),
        }
    }
    dates
}

/// Parses `YYYY-MM-DD` only; other forms jiff would accept (such as `20261001`) are refused so
/// that every date in a definition reads the same way.
fn parse_date(text: &str) -> Result<Date, String> {
    let not_a_date = || format!("`{text}` is not a date: write it as YYYY-MM-DD, for example 2026-10-01");
    let parts: Vec<&str> = text.split('-').collect();
    let [year, month, day] = parts.as_slice() else {
        return Err(not_a_date());
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(year, 4) || !digits(month, 2) || !digits(day, 2) {
        return Err(not_a_date());
    }
    let year: i16 = year.parse().map_err(|_| not_a_date())?;
    let month: i8 = month.parse().map_err(|_| not_a_date())?;
    let day: i8 = day.parse().map_err(|_| not_a_date())?;
    if !(1..=12).contains(&month) {
        return Err(format!("`{text}` is not a date: there is no month {month}"));
    }
    Date::new(year, month, day).map_err(|_| match Date::new(year, month, 1) {
        Ok(first) => format!("`{text}` is not a date: {} has {} days", first.strftime("%B %Y"), first.days_in_month()),
        Err(_) => not_a_date(),
    })
}

fn to_path(path: &[&str]) -> Vec<String> {
    path.iter().map(|segment| (*segment).to_owned()).collect()
}

fn to_path_idx(path: &[&str], idx: usize) -> Vec<String> {
    let mut full = to_path(path);
    full.push(idx.to_string());
    full
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

/// The weekday names a key may use, Monday first (the same order as `weekday_idx`).
const WEEKDAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];
