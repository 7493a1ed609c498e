//! The calendar as its owner writes it in a process file: serde and JSON Schema types, no rules.
//!
//! These types mirror the YAML and accept anything of the right shape. Leaf values (times, dates,
//! weekday names) stay strings here on purpose: if they were parsed during deserialisation, the
//! first bad date would stop the loader and hide every other problem. [`Calendar::parse`] checks
//! them all in one pass instead. The doc comments on these types become the help text that editors
//! show for the JSON Schema, so they are written for process owners.
//!
//! [`Calendar::parse`]: crate::Calendar::parse

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// A business calendar: the hours in which a team or a service counts as open. Time limits such as
/// "confirm within 2 working hours" count only open time.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    /// The time zone in which the hours, holidays and working days are meant, as an IANA name such
    /// as `Asia/Shanghai` or `Europe/Berlin`. Daylight saving time is taken into account.
    #[schemars(example = "Asia/Shanghai")]
    pub timezone: String,

    /// Opening hours per weekday. Each key names weekdays: one day (`mon` ... `sun`), a range in
    /// week order (`mon-fri`) or a comma-separated list (`mon,wed,fri`, `mon-wed,sat`); a weekday
    /// may appear under one key only. Each value lists the open periods of those days as
    /// `HH:MM-HH:MM` ranges, for example `["08:30-12:00", "13:30-18:00"]`. Weekdays not listed are
    /// closed.
    #[schemars(extend("propertyNames" = { "pattern": WEEKDAYS_KEY_PATTERN }))]
    #[schemars(extend("minProperties" = 1))]
    pub hours: BTreeMap<String, Vec<TimeRangeSpec>>,

    /// Dates on which the calendar is closed all day, such as public holidays. Write a date as
    /// `2026-10-01`, or with a name as `{ date: 2026-10-01, name: National Day }`.
    #[serde(default)]
    pub holidays: Vec<HolidaySpec>,

    /// Make-up working days: dates that are open although their weekday is normally closed, for
    /// example a Sunday worked in exchange for a bridge day. They open with the hours given under
    /// `workday_hours`, or with Monday's hours if `workday_hours` is absent.
    #[serde(default)]
    pub workdays: Vec<DateSpec>,

    /// Opening hours of the make-up working days listed under `workdays`, as `HH:MM-HH:MM` ranges.
    /// If absent, make-up working days have Monday's hours.
    #[serde(default)]
    pub workday_hours: Option<Vec<TimeRangeSpec>>,
}

/// A period of opening time within one day, written `HH:MM-HH:MM` in 24-hour time, for example
/// `08:30-12:00`. `24:00` may end a range; to stay open past midnight, end one day at `24:00` and
/// start the next at `00:00`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct TimeRangeSpec(
    #[schemars(extend("pattern" = TIME_RANGE_PATTERN))]
    #[schemars(example = "08:30-12:00")]
    pub String,
);

/// A calendar date, written `YYYY-MM-DD`, for example `2026-10-01`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct DateSpec(
    #[schemars(extend("pattern" = DATE_PATTERN, "format" = "date"))]
    #[schemars(example = "2026-10-01")]
    pub String,
);

/// A date on which the calendar is closed all day: either just the date (`2026-10-01`) or the date
/// with a name (`{ date: 2026-10-01, name: National Day }`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum HolidaySpec {
    /// Just the date, `YYYY-MM-DD`.
    Date(DateSpec),
    /// The date with a name that people see.
    Named {
        /// The closed date, `YYYY-MM-DD`.
        date: DateSpec,
        /// What the day is called, for example `National Day`. Only for people reading the file.
        #[serde(default)]
        name: Option<String>,
    },
}

impl HolidaySpec {
    /// The date as written, whichever form the entry takes.
    pub fn date(&self) -> &DateSpec {
        match self {
            HolidaySpec::Date(date) | HolidaySpec::Named { date, .. } => date,
        }
    }
}

/// One weekday name, one range or one list of them, separated by commas; spaces around `,` and `-`
/// are allowed, as [`crate::Calendar::parse`] accepts them.
const WEEKDAYS_KEY_PATTERN: &str = concat!(
    "^ *(mon|tue|wed|thu|fri|sat|sun)( *- *(mon|tue|wed|thu|fri|sat|sun))?",
    "( *, *(mon|tue|wed|thu|fri|sat|sun)( *- *(mon|tue|wed|thu|fri|sat|sun))?)* *$"
);

/// The shape of a time range only; whether the numbers make a time of day is checked by
/// [`crate::Calendar::parse`], which can say which number is wrong.
const TIME_RANGE_PATTERN: &str = "^ *[0-9]{1,2}:[0-9]{2} *- *[0-9]{1,2}:[0-9]{2} *$";

const DATE_PATTERN: &str = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";
