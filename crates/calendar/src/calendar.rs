//! The validated calendar and its working-time arithmetic.
//!
//! Every question is answered by walking local dates forward in the calendar's time zone and
//! turning each date's opening hours into an interval of real time. The walk touches a date at most
//! once and an opening range at most once, so the cost depends on the number of days crossed, never
//! on the length of a duration in minutes; closed days (holidays, weekdays without hours) cost one
//! set lookup and no time-zone conversion. The walk is capped at [`HORIZON_DAYS`] dates so that a
//! calendar that hardly ever opens cannot make a timer computation run away.
//!
//! Daylight saving time is handled where local times become real instants (see
//! `Calendar::instant`), so the rest of the code only ever compares instants.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// How many local dates a computation may walk through before it gives up: a little over ten
/// years, which is far beyond any after-sales time limit but small enough to stay fast.
pub const HORIZON_DAYS: usize = 3_700;

/// A validated business calendar; build it with [`Calendar::parse`] or
/// [`Calendar::always_open_utc`].
///
/// All methods work in the calendar's time zone. Open periods are half-open: a calendar open
/// `08:30-12:00` is open at 08:30 and closed at 12:00.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub(crate) tz: TimeZone,
    /// Opening ranges per weekday, Monday first, each list sorted and without overlaps.
    pub(crate) weekly: [Vec<LocalRange>; 7],
    pub(crate) holidays: BTreeSet<Date>,
    pub(crate) workdays: BTreeSet<Date>,
    /// Opening ranges of the make-up working days, already resolved to Monday's hours when the
    /// owner gave none.
    pub(crate) workday_hours: Vec<LocalRange>,
}

/// Why a working-time computation has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The calendar has no open time at all within the search horizon, e.g. because holidays
    /// cover every working day listed.
    #[error(
        "the calendar is not open at any time within the next {HORIZON_DAYS} days \
         (about ten years)"
    )]
    NeverOpens,
    /// The calendar does open, but not for long enough to fit the working time within the horizon.
    #[error(
        "the working time does not fit into the next {HORIZON_DAYS} days (about ten years) \
         of this calendar"
    )]
    BeyondHorizon,
    /// A working duration to add was negative; time limits only count forwards.
    #[error("a working time cannot be negative (got {duration})")]
    NegativeDuration {
        /// The duration that was given.
        duration: SignedDuration,
    },
    /// The answer would lie outside the dates that can be represented (years -9999 to 9999).
    #[error("the moment lies outside the supported dates (years -9999 to 9999)")]
    OutOfRange,
}

impl Calendar {
    /// A calendar that is open around the clock in UTC: the default for a process that names no
    /// calendar, so that its time limits count plain elapsed time.
    pub fn always_open_utc() -> Calendar {
        let all_day = vec![LocalRange { start: Time::midnight(), end: RangeEnd::Midnight }];
        Calendar {
            tz: TimeZone::UTC,
            weekly: std::array::from_fn(|_| all_day.clone()),
            holidays: BTreeSet::new(),
            workdays: BTreeSet::new(),
            workday_hours: all_day,
        }
    }

    /// The time zone in which the calendar's hours and dates are meant.
    pub fn timezone(&self) -> &TimeZone {
        &self.tz
    }

    /// Whether `t` falls into an open period.
    pub fn is_open(&self, t: Timestamp) -> bool {
        // Open periods of earlier dates end by the first instant of `t`'s date and those of later
        // dates start after `t`, so `t`'s own date is the only one to look at.
        let date = self.tz.to_datetime(t).date();
        self.ranges_on(date).iter().any(|range| match self.interval(date, *range) {
            Ok((start, end)) => start <= t && t < end,
            Err(_) => false,
        })
    }

    /// The first open moment at or after `t`: `t` itself if the calendar is open then.
    ///
    /// Fails with [`Error::NeverOpens`] if the calendar stays closed for [`HORIZON_DAYS`] dates.
    pub fn next_open(&self, t: Timestamp) -> Result<Timestamp, Error> {
        let found = self.walk(t, Bound::Horizon, |_, start, _| ControlFlow::Break(start))?;
        found.ok_or(Error::NeverOpens)
    }

    /// The moment at which `duration` of open time has passed since `start`, counting only open
    /// periods.
    ///
    /// A zero duration gives [`Calendar::next_open`]. A duration that runs out exactly at a
    /// closing time gives that closing time, not the next opening: two working hours from 16:00
    /// with closing at 18:00 are due at 18:00 the same day.
    ///
    /// Fails with [`Error::NegativeDuration`] for a negative duration, [`Error::NeverOpens`] if
    /// the calendar has no open time within [`HORIZON_DAYS`] dates from `start`, and
    /// [`Error::BeyondHorizon`] if it has some but not enough.
    pub fn add_working(&self, start: Timestamp, duration: SignedDuration) -> Result<Timestamp, Error> {
        if duration.is_negative() {
            return Err(Error::NegativeDuration { duration });
        }
        let mut remaining = duration;
        let mut saw_open_time = false;
        let found = self.walk(start, Bound::Horizon, |_, open_from, open_until| {
            saw_open_time = true;
            let available = open_until.duration_since(open_from);
            if remaining <= available {
                ControlFlow::Break(open_from.checked_add(remaining))
            } else {
                remaining -= available;
                ControlFlow::Continue(())
            }
        })?;
        match found {
            Some(due) => due.map_err(|_| Error::OutOfRange),
            None if saw_open_time => Err(Error::BeyondHorizon),
            None => Err(Error::NeverOpens),
        }
    }

    /// The open time within `[from, until)`; zero if `until` is not after `from`.
    ///
    /// The cost grows with the number of days between the two moments; there is no horizon
    /// because both ends are given.
    pub fn working_between(&self, from: Timestamp, until: Timestamp) -> SignedDuration {
        if until <= from {
            return SignedDuration::ZERO;
        }
        let last_date = self.tz.to_datetime(until).date();
        let mut total = SignedDuration::ZERO;
        // A walk error means a date beyond the representable range; no open time can be counted
        // there, so the sum so far is the answer.
        let _ = self.walk(from, Bound::Through(last_date), |_, open_from, open_until| {
            if open_from >= until {
                return ControlFlow::Break(());
            }
            total += open_until.min(until).duration_since(open_from);
            ControlFlow::Continue(())
        });
        total
    }

    /// The first open moment on a later local date than `t`'s: where "first thing the next working
    /// day" begins. Useful for limits such as "call back no earlier than the next working day".
    ///
    /// Fails with [`Error::NeverOpens`] if no later date within [`HORIZON_DAYS`] dates opens.
    pub fn next_day_start(&self, t: Timestamp) -> Result<Timestamp, Error> {
        let today = self.tz.to_datetime(t).date();
        let found = self.walk(t, Bound::Horizon, |date, open_from, _| {
            if date > today { ControlFlow::Break(open_from) } else { ControlFlow::Continue(()) }
        })?;
        found.ok_or(Error::NeverOpens)
    }

    /// Calls `visit(date, open_from, open_until)` for each open period that ends after `from`, in
    /// order, with `open_from` clipped to `from`, until `visit` breaks or the bound is reached.
    /// `Ok(None)` means the bound was reached without a break.
    fn walk<T>(
        &self,
        from: Timestamp,
        bound: Bound,
        mut visit: impl FnMut(Date, Timestamp, Timestamp) -> ControlFlow<T>,
    ) -> Result<Option<T>, Error> {
        // Open periods of dates before `from`'s local date end by that date's first instant, which
        // is not after `from`, so the walk can start at `from`'s own date.
        let mut date = self.tz.to_datetime(from).date();
        let mut n_days = 0;
        loop {
            for range in self.ranges_on(date) {
                let (open_from, open_until) = self.interval(date, *range)?;
                if open_until <= from {
                    continue;
                }
                if let ControlFlow::Break(found) = visit(date, open_from.max(from), open_until) {
                    return Ok(Some(found));
                }
            }
            n_days += 1;
            let done = match bound {
                Bound::Horizon => n_days >= HORIZON_DAYS,
                Bound::Through(last_date) => date >= last_date,
            };
            if done {
                return Ok(None);
            }
            date = date.tomorrow().map_err(|_| Error::OutOfRange)?;
        }
    }

    /// The opening ranges of one local date: none on a holiday, the make-up hours on a make-up
    /// working day, the weekday's hours otherwise.
    fn ranges_on(&self, date: Date) -> &[LocalRange] {
        if self.holidays.contains(&date) {
            &[]
        } else if self.workdays.contains(&date) {
            &self.workday_hours
        } else {
            &self.weekly[weekday_idx(date.weekday())]
        }
    }

    /// The real-time interval of an opening range on a date. It may be empty (start == end) when
    /// the whole range falls into a daylight-saving gap.
    fn interval(&self, date: Date, range: LocalRange) -> Result<(Timestamp, Timestamp), Error> {
        let open_from = self.instant(date.to_datetime(range.start))?;
        let open_until = match range.end {
            RangeEnd::At(end) => self.instant(date.to_datetime(end))?,
            RangeEnd::Midnight => {
                let next_date = date.tomorrow().map_err(|_| Error::OutOfRange)?;
                self.instant(next_date.to_datetime(Time::midnight()))?
            }
        };
        Ok((open_from, open_until.max(open_from)))
    }

    /// The instant a local time on the wall clock stands for.
    ///
    /// Local times that do not exist (the hour skipped when clocks go forward) become the moment
    /// the clocks jump; local times that occur twice (the hour repeated when clocks go back) mean
    /// their first occurrence. Both choices keep the mapping monotonic: a later wall-clock time
    /// never maps to an earlier instant, so the intervals of one day never overlap each other or
    /// the next day's, and an `08:00-12:00` + `12:00-18:00` day stays seamless on any date.
    fn instant(&self, local: DateTime) -> Result<Timestamp, Error> {
        let candidates = self.tz.to_ambiguous_timestamp(local);
        let is_gap = matches!(candidates.offset(), AmbiguousOffset::Gap { .. });
        // For a gap, `earlier` reads the wall-clock time with the offset that applies after the
        // jump, which lands just before the jump; the next transition is the jump itself.
        let earliest = candidates.earlier().map_err(|_| Error::OutOfRange)?;
        if is_gap && let Some(jump) = self.tz.following(earliest).next() {
            return Ok(jump.timestamp());
        }
        Ok(earliest)
    }
}

/// One opening range of a day in wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct LocalRange {
    pub(crate) start: Time,
    pub(crate) end: RangeEnd,
}

/// Where an opening range ends. `24:00` is not a [`Time`], so the end of the day has its own case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RangeEnd {
    At(Time),
    Midnight,
}

impl RangeEnd {
    /// Whether this end lies after the wall-clock time `t` of the same day.
    pub(crate) fn is_after(self, t: Time) -> bool {
        match self {
            RangeEnd::At(end) => end > t,
            RangeEnd::Midnight => true,
        }
    }
}

/// Index into [`Calendar::weekly`], Monday first.
pub(crate) fn weekday_idx(weekday: Weekday) -> usize {
    match weekday {
        Weekday::Monday => 0,
        Weekday::Tuesday => 1,
        Weekday::Wednesday => 2,
        Weekday::Thursday => 3,
        Weekday::Friday => 4,
        Weekday::Saturday => 5,
        Weekday::Sunday => 6,
    }
}

/// How far a walk may go.
#[derive(Clone, Copy)]
enum Bound {
    /// At most [`HORIZON_DAYS`] local dates, counting the first.
    Horizon,
    /// Up to and including this local date.
    Through(Date),
}
