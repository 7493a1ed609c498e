//! Conversions between JSON values and script values.
//!
//! JSON goes in following a [`Shape`], so that a form field declared as a date-time
//! arrives as a `Timestamp` without the script having to call `ts(...)`. Values come
//! back out as plain JSON, with timestamps and durations written as strings, because
//! that is how they are stored and shown. Nothing here guesses: a string that looks
//! like a date stays a string unless its shape says otherwise.

use jiff::{SignedDuration, Timestamp};
use rhai::{Array, Dynamic, ImmutableString, Map};

use crate::error::EvalError;
use crate::library::{parse_duration, parse_timestamp};
use crate::shape::Shape;

/// Converts a JSON value into a script value, following `shape`.
///
/// `null` becomes `()`; a string whose shape is `Timestamp` or `Duration` becomes that
/// type when it parses and stays a string when it does not (the script can still test
/// it); numbers whose shape is `Number` become floats so that division never truncates.
pub fn to_dynamic(value: &serde_json::Value, shape: &Shape) -> Dynamic {
    match value {
        serde_json::Value::Null => Dynamic::UNIT,
        serde_json::Value::Bool(b) => Dynamic::from_bool(*b),
        serde_json::Value::Number(n) => number_to_dynamic(n, shape),
        serde_json::Value::String(s) => string_to_dynamic(s, shape),
        serde_json::Value::Array(items) => {
            let item_shape = shape.item();
            let array: Array = items.iter().map(|item| to_dynamic(item, item_shape)).collect();
            Dynamic::from_array(array)
        }
        serde_json::Value::Object(object) => {
            let map: Map = object
                .iter()
                .map(|(key, item)| (key.as_str().into(), to_dynamic(item, field_shape(shape, key))))
                .collect();
            Dynamic::from_map(map)
        }
    }
}

/// Like [`to_dynamic`] for an object, but keeps only `fields`: a guard that reads
/// `quotation.total` need not pay for converting the whole quotation.
pub(crate) fn project_json(
    object: &serde_json::Map<String, serde_json::Value>,
    shape: &Shape,
    fields: &[String],
) -> Dynamic {
    // Inserting one by one: collecting into a BTreeMap sorts a temporary vector first,
    // which costs more than the conversion itself for the usual one or two fields.
    let mut map = Map::new();
    for field in fields {
        if let Some(item) = object.get(field) {
            map.insert(field.as_str().into(), to_dynamic(item, field_shape(shape, field)));
        }
    }
    Dynamic::from_map(map)
}

/// The projection of an already converted value: a map keeps only `fields`.
pub(crate) fn project_dynamic(value: &Dynamic, fields: &[String]) -> Dynamic {
    match value.read_lock::<Map>() {
        Some(map) => {
            let mut projected = Map::new();
            for field in fields {
                if let Some(item) = map.get(field.as_str()) {
                    projected.insert(field.as_str().into(), item.clone());
                }
            }
            Dynamic::from_map(projected)
        }
        None => value.clone(),
    }
}

fn field_shape<'a>(shape: &'a Shape, key: &str) -> &'a Shape {
    // A field the shape does not list (possible in open records, or in data that does
    // not follow its schema) is converted without assumptions.
    shape.field(key).unwrap_or(&Shape::Any)
}

fn number_to_dynamic(n: &serde_json::Number, shape: &Shape) -> Dynamic {
    if *shape != Shape::Number
        && let Some(i) = n.as_i64()
    {
        return Dynamic::from_int(i);
    }
    // Integers beyond i64 and all numbers of shape `Number` become floats.
    n.as_f64().map_or(Dynamic::UNIT, Dynamic::from_float)
}

fn string_to_dynamic(s: &str, shape: &Shape) -> Dynamic {
    match shape {
        Shape::Timestamp => match parse_timestamp(s) {
            Ok(ts) => Dynamic::from(ts),
            Err(_) => Dynamic::from(ImmutableString::from(s)),
        },
        Shape::Duration => match parse_duration(s) {
            Ok(d) => Dynamic::from(d),
            Err(_) => Dynamic::from(ImmutableString::from(s)),
        },
        _ => Dynamic::from(ImmutableString::from(s)),
    }
}

/// Converts a script value back into JSON (timestamps and durations as text); a value that
/// cannot be stored (a function, a character range) is an error.
pub fn to_json(value: &Dynamic) -> Result<serde_json::Value, EvalError> {
    to_json_within(value, MAX_JSON_DEPTH)
}

/// How deeply a result may nest: serde_json's own limit when reading, so that whatever
/// is written can be read back. Scripts cannot build values this deep (see
/// `Limits::max_expr_depth`); the check guards values bound by callers.
const MAX_JSON_DEPTH: usize = 128;

fn to_json_within(value: &Dynamic, depth: usize) -> Result<serde_json::Value, EvalError> {
    if value.is_unit() {
        return Ok(serde_json::Value::Null);
    }
    if let Ok(b) = value.as_bool() {
        return Ok(serde_json::Value::Bool(b));
    }
    if let Ok(i) = value.as_int() {
        return Ok(serde_json::Value::from(i));
    }
    if let Ok(f) = value.as_float() {
        return serde_json::Number::from_f64(f)
            .map(serde_json::Value::Number)
            .ok_or_else(|| EvalError::WrongType { expected: "a finite number", got: describe(value) });
    }
    if let Some(s) = value.read_lock::<ImmutableString>() {
        return Ok(serde_json::Value::String(s.to_string()));
    }
    if let Ok(c) = value.as_char() {
        // A single character (from indexing a string) is text to anyone reading the result.
        return Ok(serde_json::Value::String(c.to_string()));
    }
    if let Some(ts) = value.read_lock::<Timestamp>() {
        return Ok(serde_json::Value::String(format_timestamp(*ts)));
    }
    if let Some(d) = value.read_lock::<SignedDuration>() {
        return Ok(serde_json::Value::String(d.to_string()));
    }
    if (value.is_array() || value.is_map()) && depth == 0 {
        return Err(EvalError::WrongType {
            expected: "lists and records nested at most 128 levels deep",
            got: "a value nested deeper".to_owned(),
        });
    }
    if let Some(array) = value.read_lock::<Array>() {
        return array
            .iter()
            .map(|item| to_json_within(item, depth - 1))
            .collect::<Result<Vec<_>, _>>()
            .map(serde_json::Value::Array);
    }
    if let Some(map) = value.read_lock::<Map>() {
        let mut object = serde_json::Map::with_capacity(map.len());
        for (key, item) in map.iter() {
            object.insert(key.to_string(), to_json_within(item, depth - 1)?);
        }
        return Ok(serde_json::Value::Object(object));
    }
    Err(EvalError::WrongType {
        expected: "a value that can be stored (yes/no, number, text, list, record, timestamp or duration)",
        got: describe(value),
    })
}

/// RFC 3339 in UTC with a `Z`, the one form timestamps are stored in.
pub(crate) fn format_timestamp(ts: Timestamp) -> String {
    ts.to_string()
}

/// Describes a value in words for error messages read by process owners.
pub(crate) fn describe(value: &Dynamic) -> String {
    const MAX_SHOWN: usize = 40;
    if value.is_unit() {
        return "nothing (no value)".to_owned();
    }
    if let Ok(b) = value.as_bool() {
        return format!("the yes/no value {b}");
    }
    if let Ok(i) = value.as_int() {
        return format!("the whole number {i}");
    }
    if let Ok(f) = value.as_float() {
        return format!("the number {f}");
    }
    if let Some(s) = value.read_lock::<ImmutableString>() {
        let shown: String = s.chars().take(MAX_SHOWN).collect();
        let ellipsis = if s.chars().count() > MAX_SHOWN { "…" } else { "" };
        return format!("the text \"{shown}{ellipsis}\"");
    }
    if let Ok(c) = value.as_char() {
        return format!("the character '{c}'");
    }
    if let Some(ts) = value.read_lock::<Timestamp>() {
        return format!("the timestamp {}", format_timestamp(*ts));
    }
    if let Some(d) = value.read_lock::<SignedDuration>() {
        return format!("the duration {}", *d);
    }
    if let Some(array) = value.read_lock::<Array>() {
        return format!("a list of {} item(s)", array.len());
    }
    if let Some(map) = value.read_lock::<Map>() {
        let keys: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
        return format!("a record with the fields {}", keys.join(", "));
    }
    format!("a value of type {}", value.type_name())
}
