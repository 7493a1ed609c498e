//! Business calendars and working-time arithmetic for process time limits.
//!
//! A process owner writes a calendar as YAML ([`CalendarSpec`]): a time zone, opening hours per
//! weekday, holidays and make-up working days. [`Calendar::parse`] validates it once, reporting
//! every problem with its path, and the resulting [`Calendar`] answers the questions a timer needs:
//! is it open now, when does it open next, what is the moment two working hours from now, how much
//! open time lies between two moments, when does the next working day start.
//!
//! The crate also owns the ISO 8601 duration syntax used for time limits ([`parse_duration`],
//! [`format_duration`]).
//!
//! What this crate deliberately does not do: it never reads the clock (every moment comes in as an
//! argument), never touches the file system (time zones come from the database bundled into the
//! binary, not from the operating system, so a run computes the same deadlines on every machine),
//! and never parses YAML itself (the caller deserialises [`CalendarSpec`] with its own loader, which
//! knows file names and line numbers).

mod calendar;
mod duration;
mod spec;
mod validate;

pub use calendar::{Calendar, Error, HORIZON_DAYS};
pub use duration::{DurationError, format_duration, parse_duration};
pub use spec::{CalendarSpec, DateSpec, HolidaySpec, TimeRangeSpec};
pub use validate::{SpecError, SpecErrorKind};
