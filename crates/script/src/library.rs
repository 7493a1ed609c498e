//! The engine configuration and the helper library scripts can call.
//!
//! The engine starts from [`rhai::Engine::new_raw`], which has no functions at all,
//! and gets only pure packages and the helpers below. Deliberately absent: `print`
//! and `debug` output (they run but write nothing), `eval`, modules and `import`,
//! `sleep`, `exit`, `parse_json` and the function-metadata reflection of rhai's core
//! package, rhai's clock (`timestamp()`), randomness, files and network. Time comes
//! in only as the `now` variable, so a script gives the same answer when replayed.
//!
//! # Rhai packages registered
//!
//! Arithmetic (with int/float mixing and checked overflow), logic and comparison
//! (`min`, `max`), basic math (`floor`, `round`, `sqrt`, `to_int`, `to_float`,
//! `parse_int`, `parse_float`, ...), strings (`len`, `contains`, `starts_with`,
//! `ends_with`, `to_string`, `split`, `sub_string`, `index_of`, ...), arrays and maps
//! (`len`, `is_empty`, `contains`, `keys`, `values`, `filter`, `map`, ...), ranges for
//! `for` loops, and function pointers. `x in y` is rhai's `contains`: an item in a
//! list, a key in a record, a piece of text in a text.
//!
//! # Helpers
//!
//! Time values are two types: `Timestamp` (a point in time) and `Duration` (a length
//! of time, possibly negative). In JSON they are an RFC 3339 string in UTC
//! (`2026-03-02T01:00:00Z`) and an ISO 8601 duration (`PT1H30M`).
//!
//! - `ts(x)`: a `Timestamp` from an RFC 3339 text (`"2026-03-02T09:00:00+08:00"`) or a
//!   `Timestamp`; an error for anything else.
//! - `duration(x)`: a `Duration` from an ISO 8601 text (`"PT15M"`, `"P1D"`, `"-PT1H"`)
//!   or a `Duration`. A day is 24 hours and a week 7 days; months and years have no
//!   fixed length and are refused.
//! - `days(n)`, `hours(n)`, `minutes(n)`, `seconds(n)`: a `Duration` of `n` units;
//!   `n` may be a whole number or a number with a fraction.
//! - Arithmetic: `Timestamp + Duration`, `Duration + Timestamp`, `Timestamp - Duration`
//!   give a `Timestamp`; `Timestamp - Timestamp` gives a `Duration`;
//!   `Duration + Duration`, `Duration - Duration`, `-Duration`, `Duration * n` and
//!   `n * Duration` give a `Duration`. Results outside the supported range are errors.
//! - Comparisons `==`, `!=`, `<`, `<=`, `>`, `>=` between two `Timestamp`s and between
//!   two `Duration`s.
//! - `d.hours`, `d.minutes`: the length of a `Duration` in hours or minutes, as a
//!   number with a fraction (`minutes(90).hours == 1.5`).
//! - `hour_of_day(t, zone)`: the hour (0 to 23) of `Timestamp` `t` on the clocks of the
//!   IANA time zone `zone` (`"Asia/Shanghai"`).
//! - `weekday(t, zone)`: the day of the week of `t` in `zone`, 1 = Monday to 7 = Sunday.
//! - `date(t, zone)`: the calendar date of `t` in `zone` as a text, `"2026-03-02"`.
//!   The three functions above also accept an RFC 3339 text for `t`. Time zones
//!   come from the time zone database built into the program, never from the host.
//! - `default(x, fallback)`: `fallback` when `x` has no value (`()`), else `x`.
//! - `is_set(x)`: false when `x` has no value or is the empty text, else true.
//! - `sum(list)`: the sum of a list of numbers (a whole number when all are whole);
//!   0 for an empty list.
//! - `abs(n)`, `round(n)`, `floor(n)`, `ceil(n)`: also accept whole numbers.
//! - `lower(s)`, `upper(s)`, `trim(s)`: a copy of the text in lower case, upper case,
//!   or without surrounding spaces. (Unlike rhai's own `trim`, this one does not
//!   change the variable it is called on.)
//! - `to_string(x)`: text for any value; timestamps and durations as in JSON.

use jiff::tz::TimeZoneDatabase;
use jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp, Zoned};
use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicFnPackage, BasicIteratorPackage, BasicMapPackage, BasicMathPackage,
    BasicStringPackage, LogicPackage, MoreStringPackage, Package,
};
use rhai::{Array, Dynamic, Engine, EvalAltResult, INT, ImmutableString, Position, Token};

use crate::Limits;
use crate::convert::{describe, format_timestamp};
use crate::error::FORBIDDEN_SYMBOLS;

type HelperResult<T> = Result<T, Box<EvalAltResult>>;

/// Builds the sandboxed engine for `limits`, none of which may be 0 (rhai reads 0 as "unlimited").
pub(crate) fn build_engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new_raw();
    apply_limits(&mut engine, limits);
    // Rhai bounds the size of lists and records but not how deeply they nest, and
    // cloning or dropping a value recurses once per level: a loop of `m = #{ m: m }`
    // overflows the thread's stack within the operation limit and aborts the whole
    // process. A script can only build a deeper value from a shallower one it keeps in
    // a variable or parameter (recursion is bounded by the call limit), so checking at
    // every variable read keeps values near `max_expr_depth` levels. The cost is a
    // walk of container values on each read, stopped at that depth.
    let max_depth = limits.max_expr_depth;
    #[allow(deprecated)] // The API is marked volatile, not deprecated.
    engine.on_var(move |name, _, context| match context.scope().get(name) {
        Some(value) if nested_deeper_than(value, max_depth) => {
            Err(Box::new(EvalAltResult::ErrorDataTooLarge(NESTING.to_owned(), Position::NONE)))
        }
        _ => Ok(None),
    });
    engine.on_print(|_| {});
    engine.on_debug(|_, _, _| {});
    // `default` is a reserved word in rhai; the helper library wants it as a function name.
    #[allow(deprecated)] // The API is marked volatile, not deprecated.
    engine.on_parse_token(|token, _, _| match token {
        Token::Reserved(word) if word.as_str() == "default" => Token::Identifier(word),
        other => other,
    });

    // Only the pure packages; `CorePackage` is left out because it brings `sleep`,
    // `exit` and reflection over the registered functions.
    ArithmeticPackage::new().register_into_engine(&mut engine);
    LogicPackage::new().register_into_engine(&mut engine);
    BasicMathPackage::new().register_into_engine(&mut engine);
    BasicStringPackage::new().register_into_engine(&mut engine);
    MoreStringPackage::new().register_into_engine(&mut engine);
    BasicArrayPackage::new().register_into_engine(&mut engine);
    BasicMapPackage::new().register_into_engine(&mut engine);
    BasicIteratorPackage::new().register_into_engine(&mut engine);
    BasicFnPackage::new().register_into_engine(&mut engine);

    register_time(&mut engine);
    register_values(&mut engine);
    engine
}

/// Sets the hard limits, strict variables and the refused symbols. Called again after a host
/// has registered its own functions (`Sandbox::with_host`), so that a host cannot loosen them.
pub(crate) fn apply_limits(engine: &mut Engine, limits: &Limits) {
    engine.set_max_operations(limits.max_operations);
    engine.set_max_call_levels(limits.max_call_levels);
    engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
    engine.set_max_string_size(limits.max_string_len);
    engine.set_max_array_size(limits.max_array_len);
    engine.set_max_map_size(limits.max_map_len);

    // A typo in a variable name must be a load-time error, not a silent `()`.
    engine.set_strict_variables(true);
    for symbol in FORBIDDEN_SYMBOLS {
        engine.disable_symbol(*symbol);
    }
}

/// What an `ErrorDataTooLarge` raised for nesting is called, to tell it from rhai's own.
pub(crate) const NESTING: &str = "Nesting of lists and records";

/// Whether `value` has lists or records nested more than `max` levels deep. The walk
/// stops at that depth, so it never recurses further than `max`.
pub(crate) fn nested_deeper_than(value: &Dynamic, max: usize) -> bool {
    if !(value.is_array() || value.is_map()) {
        return false;
    }
    let Some(below) = max.checked_sub(1) else {
        return true;
    };
    if let Some(items) = value.read_lock::<Array>() {
        return items.iter().any(|item| nested_deeper_than(item, below));
    }
    if let Some(fields) = value.read_lock::<rhai::Map>() {
        return fields.values().any(|item| nested_deeper_than(item, below));
    }
    false
}

/// Parses an RFC 3339 text into a timestamp.
pub(crate) fn parse_timestamp(text: &str) -> Result<Timestamp, String> {
    text.trim()
        .parse::<Timestamp>()
        .map_err(|_| format!("\"{text}\" is not a timestamp; write it like 2026-03-02T09:00:00+08:00"))
}

/// Parses an ISO 8601 duration, with days of 24 hours and weeks of 7 days.
pub(crate) fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let not_a_duration = || format!("\"{text}\" is not a duration; write it like PT15M, PT2H or P1D");
    let span: Span = text.trim().parse().map_err(|_| not_a_duration())?;
    if span.get_years() != 0 || span.get_months() != 0 {
        return Err(format!("\"{text}\" uses months or years, which have no fixed length; use days instead"));
    }
    span.to_duration(SpanRelativeTo::days_are_24_hours()).map_err(|_| not_a_duration())
}

fn fail<T>(message: impl Into<String>) -> HelperResult<T> {
    Err(Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(message.into()), Position::NONE)))
}

fn timestamp_arg(value: &Dynamic) -> HelperResult<Timestamp> {
    if let Some(ts) = value.read_lock::<Timestamp>() {
        return Ok(*ts);
    }
    if let Some(text) = value.read_lock::<ImmutableString>() {
        return parse_timestamp(&text).or_else(fail);
    }
    fail(format!("expected a timestamp but got {}", describe(value)))
}

fn duration_arg(value: &Dynamic) -> HelperResult<SignedDuration> {
    if let Some(d) = value.read_lock::<SignedDuration>() {
        return Ok(*d);
    }
    if let Some(text) = value.read_lock::<ImmutableString>() {
        return parse_duration(&text).or_else(fail);
    }
    fail(format!("expected a duration but got {}", describe(value)))
}

fn out_of_range<T>() -> HelperResult<T> {
    fail("the result is too far in the past or the future")
}

fn duration_of(units: INT, seconds_per_unit: i64) -> HelperResult<SignedDuration> {
    match units.checked_mul(seconds_per_unit) {
        Some(seconds) => Ok(SignedDuration::from_secs(seconds)),
        None => out_of_range(),
    }
}

fn duration_of_float(units: f64, seconds_per_unit: f64) -> HelperResult<SignedDuration> {
    SignedDuration::try_from_secs_f64(units * seconds_per_unit).or_else(|_| out_of_range())
}

fn zoned(db: &TimeZoneDatabase, at: &Dynamic, zone: &str) -> HelperResult<Zoned> {
    let at = timestamp_arg(at)?;
    match db.get(zone) {
        Ok(tz) => Ok(at.to_zoned(tz)),
        Err(_) => fail(format!("\"{zone}\" is not a known time zone; use a name like Asia/Shanghai")),
    }
}

fn register_time(engine: &mut Engine) {
    engine.register_type_with_name::<Timestamp>("Timestamp");
    engine.register_type_with_name::<SignedDuration>("Duration");

    engine.register_fn("ts", |x: Dynamic| timestamp_arg(&x));
    engine.register_fn("duration", |x: Dynamic| duration_arg(&x));
    const SECONDS: [(&str, i64); 4] = [("days", 86_400), ("hours", 3_600), ("minutes", 60), ("seconds", 1)];
    for (name, seconds_per_unit) in SECONDS {
        engine.register_fn(name, move |n: INT| duration_of(n, seconds_per_unit));
        #[allow(clippy::cast_precision_loss)] // The factors are small exact integers.
        let factor = seconds_per_unit as f64;
        engine.register_fn(name, move |n: f64| duration_of_float(n, factor));
    }

    engine.register_fn("+", |t: Timestamp, d: SignedDuration| t.checked_add(d).or_else(|_| out_of_range()));
    engine.register_fn("+", |d: SignedDuration, t: Timestamp| t.checked_add(d).or_else(|_| out_of_range()));
    engine.register_fn("-", |t: Timestamp, d: SignedDuration| t.checked_sub(d).or_else(|_| out_of_range()));
    engine.register_fn("-", |a: Timestamp, b: Timestamp| a.duration_since(b));
    engine.register_fn("+", |a: SignedDuration, b: SignedDuration| a.checked_add(b).map_or_else(out_of_range, Ok));
    engine.register_fn("-", |a: SignedDuration, b: SignedDuration| a.checked_sub(b).map_or_else(out_of_range, Ok));
    engine.register_fn("-", |d: SignedDuration| d.checked_neg().map_or_else(out_of_range, Ok));
    let times =
        |d: SignedDuration, n: INT| i32::try_from(n).ok().and_then(|n| d.checked_mul(n)).map_or_else(out_of_range, Ok);
    engine.register_fn("*", times);
    engine.register_fn("*", move |n: INT, d: SignedDuration| times(d, n));

    macro_rules! comparisons {
        ($t:ty) => {
            engine.register_fn("==", |a: $t, b: $t| a == b);
            engine.register_fn("!=", |a: $t, b: $t| a != b);
            engine.register_fn("<", |a: $t, b: $t| a < b);
            engine.register_fn("<=", |a: $t, b: $t| a <= b);
            engine.register_fn(">", |a: $t, b: $t| a > b);
            engine.register_fn(">=", |a: $t, b: $t| a >= b);
        };
    }
    comparisons!(Timestamp);
    comparisons!(SignedDuration);

    engine.register_get("hours", |d: &mut SignedDuration| d.as_secs_f64() / 3_600.0);
    engine.register_get("minutes", |d: &mut SignedDuration| d.as_secs_f64() / 60.0);

    engine.register_fn("to_string", |t: &mut Timestamp| format_timestamp(*t));
    engine.register_fn("to_debug", |t: &mut Timestamp| format_timestamp(*t));
    engine.register_fn("to_string", |d: &mut SignedDuration| d.to_string());
    engine.register_fn("to_debug", |d: &mut SignedDuration| d.to_string());

    // The bundled database keeps results identical on every host, and reading it
    // is not I/O.
    let db = TimeZoneDatabase::bundled();
    let for_hour = db.clone();
    engine.register_fn("hour_of_day", move |t: Dynamic, zone: &str| {
        zoned(&for_hour, &t, zone).map(|z| INT::from(z.hour()))
    });
    let for_weekday = db.clone();
    engine.register_fn("weekday", move |t: Dynamic, zone: &str| {
        zoned(&for_weekday, &t, zone).map(|z| INT::from(z.weekday().to_monday_one_offset()))
    });
    engine.register_fn("date", move |t: Dynamic, zone: &str| zoned(&db, &t, zone).map(|z| z.date().to_string()));
}

fn register_values(engine: &mut Engine) {
    engine.register_fn("default", |x: Dynamic, fallback: Dynamic| if x.is_unit() { fallback } else { x });
    engine.register_fn("is_set", |x: Dynamic| {
        !(x.is_unit() || x.read_lock::<ImmutableString>().is_some_and(|s| s.is_empty()))
    });
    engine.register_fn("sum", sum);

    // Whole numbers are already whole; accepting them saves scripts a `to_float`.
    engine.register_fn("round", |n: INT| n);
    engine.register_fn("floor", |n: INT| n);
    engine.register_fn("ceil", |n: INT| n);
    engine.register_fn("ceil", f64::ceil);

    engine.register_fn("lower", |s: ImmutableString| s.to_lowercase());
    engine.register_fn("upper", |s: ImmutableString| s.to_uppercase());
    engine.register_fn("trim", |s: ImmutableString| -> ImmutableString {
        let trimmed = s.trim();
        if trimmed.len() == s.len() { s.clone() } else { trimmed.into() }
    });
}

fn sum(items: Array) -> HelperResult<Dynamic> {
    let mut whole: INT = 0;
    let mut fraction: Option<f64> = None;
    for (idx, item) in items.iter().enumerate() {
        if let Ok(i) = item.as_int() {
            match fraction.as_mut() {
                #[allow(clippy::cast_precision_loss)]
                // Mixing in a float already means float precision.
                Some(f) => *f += i as f64,
                None => match whole.checked_add(i) {
                    Some(total) => whole = total,
                    None => return fail("the sum is too large"),
                },
            }
        } else if let Ok(f) = item.as_float() {
            #[allow(clippy::cast_precision_loss)]
            let start = fraction.unwrap_or(whole as f64);
            fraction = Some(start + f);
        } else {
            return fail(format!("sum() adds numbers only, but item {idx} is {}", describe(item)));
        }
    }
    Ok(fraction.map_or(Dynamic::from_int(whole), Dynamic::from_float))
}
