//! ISO 8601 durations as process owners write time limits: `PT15M`, `PT2H30M`, `P3D`.
//!
//! A duration here is a fixed length of time. Days and weeks are therefore exactly 24 and 168
//! hours, and years and months, whose length varies, are refused rather than guessed. Combined with
//! a business calendar, `P1D` means 24 hours of *open* time, which is about three working days of
//! eight hours, not "the next working day"; [`crate::Calendar::next_day_start`] answers that.

use jiff::fmt::temporal::SpanParser;
use jiff::{SignedDuration, SpanRelativeTo};

/// Why a text is not a usable duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text is not an ISO 8601 duration at all.
    #[error(
        "`{input}` is not a duration: write it in ISO 8601 form, for example PT15M \
         (15 minutes), PT2H30M (2 hours 30 minutes) or P3D (3 days of 24 hours)"
    )]
    NotIso8601 {
        /// The text as given.
        input: String,
    },
    /// The duration is negative; time limits only count forwards.
    #[error("`{input}` is negative: a time limit counts forwards, so leave out the minus sign")]
    Negative {
        /// The text as given.
        input: String,
    },
    /// The duration uses years or months, which have no fixed length.
    #[error(
        "`{input}` uses years or months, which have no fixed length: write the time in \
         weeks (P2W), days (P30D), hours or minutes instead"
    )]
    CalendarUnits {
        /// The text as given.
        input: String,
    },
    /// The duration is too long to be represented.
    #[error("`{input}` is too long: a duration must stay below about 20,000 years")]
    TooLarge {
        /// The text as given.
        input: String,
    },
}

/// Parses an ISO 8601 duration such as `PT15M`, `PT2H30M`, `P1D` or `P1DT12H`.
///
/// Days count as exactly 24 hours and weeks as 7 days. A fraction is allowed on the smallest
/// unit when it is hours, minutes or seconds (`PT1.5H` is 90 minutes), as ISO 8601 permits.
/// Refused: negative durations, years and months (no fixed length), and anything that is not ISO
/// 8601 (such as `2h` or `90 minutes`). Surrounding spaces are ignored.
pub fn parse_duration(text: &str) -> Result<SignedDuration, DurationError> {
    let input = text.trim();
    let span =
        SpanParser::new().parse_span(input).map_err(|_| DurationError::NotIso8601 { input: input.to_owned() })?;
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err(DurationError::CalendarUnits { input: input.to_owned() });
    }
    if span.is_negative() {
        return Err(DurationError::Negative { input: input.to_owned() });
    }
    span.to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|_| DurationError::TooLarge { input: input.to_owned() })
}

/// Formats a duration in the one canonical ISO 8601 form: hours, minutes and seconds only, each
/// left out when zero, with hours as the largest unit (`PT1H30M`, `PT24H` rather than `P1D`,
/// `PT0.5S`, and `PT0S` for zero). Hours rather than days, because a day of working time is easily
/// misread as a working day; `PT24H` says what it is.
///
/// [`parse_duration`] reads every non-negative result back to the same duration. A negative
/// duration is written with a leading `-` (`-PT1H`), which [`parse_duration`] refuses.
pub fn format_duration(duration: SignedDuration) -> String {
    // jiff's ISO 8601 printer for `SignedDuration` writes exactly this form.
    duration.to_string()
}
