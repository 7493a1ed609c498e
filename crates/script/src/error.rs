//! Errors of compiling and evaluating scripts, worded for process owners.
//!
//! Rhai's own messages are written for programmers ("Function not found: f (i64)");
//! the people who read ours wrote a YAML pack and may not be. So every error is
//! translated here into what happened in the terms of their script, and keeps the
//! 1-based line and column inside the script so that the caller can point into the
//! YAML file. Positions are fields rather than part of the message because only the
//! caller knows where the script sits in its file.

use std::fmt;

use rhai::{EvalAltResult, LexError, ParseError, ParseErrorType, Position};

use crate::Limits;

/// A script that cannot be accepted; found when a process version is loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    pub kind: CompileErrorKind,
    pub message: String,
    /// 1-based line inside the script source.
    pub line: u32,
    /// 1-based column inside the script source.
    pub col: u32,
}

/// What kind of problem a [`CompileError`] is, for callers that map it to a diagnostic code.
#[derive(Debug, Clone, PartialEq)]
pub enum CompileErrorKind {
    /// The script is not valid Rhai.
    Syntax,
    /// The script reads a variable that is neither declared nor created with `let`.
    UndeclaredVariable { name: String },
    /// The script reads a field that the declared shape of a record does not have.
    /// `path` is the chain as written (`reception.vn`); `known` lists the fields that exist.
    UnknownField { path: String, known: Vec<String> },
    /// The script, a text in it, or its nesting is larger than the limits allow.
    TooLong,
    /// The script uses something the sandbox refuses, such as `eval` or `import`.
    Forbidden { what: String },
}

/// A script that failed while running. Guards that simply say "no" are not errors.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A hard limit stopped the script; `max` is the value of that limit.
    #[error("{}", limit_message(*.limit, *.max))]
    LimitExceeded { limit: Limit, max: u64, line: u32, col: u32 },
    /// The script failed for another reason: a missing function, a division by zero, a `throw`.
    #[error("{message}")]
    Runtime { message: String, line: u32, col: u32 },
    /// The script finished but its value is not of the kind the caller needs.
    #[error("the script should give {expected}, but it gave {got}")]
    WrongType { expected: &'static str, got: String },
}

/// The hard limits a running script can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// [`Limits::max_operations`].
    Operations,
    /// [`Limits::max_call_levels`].
    CallDepth,
    /// [`Limits::max_expr_depth`], applied at run time to lists and records nested in
    /// each other. (Nesting in the script's text is checked when compiling and
    /// reported as [`CompileErrorKind::TooLong`].)
    ExprDepth,
    /// [`Limits::max_string_len`].
    StringSize,
    /// [`Limits::max_array_len`].
    ArraySize,
    /// [`Limits::max_map_len`].
    MapSize,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Operations => "operations",
            Limit::CallDepth => "function call depth",
            Limit::ExprDepth => "nesting depth",
            Limit::StringSize => "text length",
            Limit::ArraySize => "list size",
            Limit::MapSize => "record size",
        })
    }
}

/// Any error of this crate, for callers that handle both phases in one place.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Eval(#[from] EvalError),
}

fn limit_message(limit: Limit, max: u64) -> String {
    match limit {
        Limit::Operations => {
            format!("the script was stopped after {max} operations; does it loop forever?")
        }
        Limit::CallDepth => format!(
            "the script was stopped because its functions called each other more than {max} levels deep; \
             does a function call itself without end?"
        ),
        Limit::ExprDepth => {
            format!("the script was stopped because its lists or records are nested more than {max} levels deep")
        }
        Limit::StringSize => {
            format!("the script was stopped because a text grew longer than {max} bytes")
        }
        Limit::ArraySize => {
            format!("the script was stopped because its lists grew beyond {max} items")
        }
        Limit::MapSize => {
            format!("the script was stopped because its records grew beyond {max} fields")
        }
    }
}

/// Converts a rhai position into (line, column), 0 when rhai has none.
pub(crate) fn position(pos: Position) -> (u32, u32) {
    let to_u32 = |n: Option<usize>| n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
    (to_u32(pos.line()), to_u32(pos.position()))
}

impl CompileError {
    pub(crate) fn new(kind: CompileErrorKind, message: impl Into<String>, pos: Position) -> Self {
        let (line, col) = position(pos);
        Self { kind, message: message.into(), line, col }
    }
}

/// Symbols switched off in the engine; using one is `Forbidden`, not a syntax error.
pub(crate) const FORBIDDEN_SYMBOLS: &[&str] = &["eval", "import", "export"];

pub(crate) fn from_parse_error(err: &ParseError, limits: &Limits, declared: &[&str]) -> CompileError {
    let ParseError(kind, pos) = err;
    let pos = *pos;
    match kind.as_ref() {
        ParseErrorType::VariableUndefined(name) => {
            let message = match closest(name, declared.iter().copied()) {
                Some(near) => format!("`{name}` is not a variable this script can read; did you mean `{near}`?"),
                None => format!(
                    "`{name}` is not a variable this script can read; it can read {}",
                    list_or_nothing(declared)
                ),
            };
            CompileError::new(CompileErrorKind::UndeclaredVariable { name: name.clone() }, message, pos)
        }
        ParseErrorType::ExprTooDeep => CompileError::new(
            CompileErrorKind::TooLong,
            format!(
                "the script nests expressions more than {} levels deep; split it into smaller steps",
                limits.max_expr_depth
            ),
            pos,
        ),
        ParseErrorType::LiteralTooLarge(what, max) => CompileError::new(
            CompileErrorKind::TooLong,
            format!("a {} in the script is larger than the limit of {max}", what.to_lowercase()),
            pos,
        ),
        ParseErrorType::BadInput(LexError::StringTooLong(max)) => CompileError::new(
            CompileErrorKind::TooLong,
            format!("a text in the script is longer than the limit of {max} bytes"),
            pos,
        ),
        ParseErrorType::BadInput(LexError::ImproperSymbol(symbol, _)) | ParseErrorType::Reserved(symbol)
            if FORBIDDEN_SYMBOLS.contains(&symbol.as_str()) =>
        {
            forbidden(symbol, pos)
        }
        ParseErrorType::Reserved(word) => CompileError::new(
            CompileErrorKind::Syntax,
            format!("`{word}` is a reserved word and cannot be used as a name"),
            pos,
        ),
        ParseErrorType::UnexpectedEOF => CompileError::new(
            CompileErrorKind::Syntax,
            "the script ends too early; is a bracket or quote not closed?",
            pos,
        ),
        other => CompileError::new(CompileErrorKind::Syntax, format!("the script is not valid: {other}"), pos),
    }
}

/// The `what` of a refused `x[i] = v`.
pub(crate) const INDEX_ASSIGNMENT: &str = "[...] =";

pub(crate) fn forbidden(symbol: &str, pos: Position) -> CompileError {
    let message = match symbol {
        INDEX_ASSIGNMENT => "changing an item with `[...] =` is not allowed in process scripts, because it could \
             grow a list or record past the limits unnoticed; for a record write `m.set(key, value)`, \
             for a list build a new one (for example with `map`)"
            .to_owned(),
        "eval" => "`eval` is not allowed in process scripts: a script cannot run other scripts".to_owned(),
        "import" | "export" => format!("`{symbol}` is not allowed in process scripts: there are no modules"),
        other => format!("`{other}` is not allowed in process scripts"),
    };
    CompileError::new(CompileErrorKind::Forbidden { what: symbol.to_owned() }, message, pos)
}

/// Lists names for a message, cut short so that a process with many steps does not
/// bury the point of the message.
pub(crate) fn list_or_nothing<S: AsRef<str>>(names: &[S]) -> String {
    const MAX_LISTED: usize = 20;
    let listed: Vec<&str> = names.iter().take(MAX_LISTED).map(AsRef::as_ref).collect();
    match names.len() {
        0 => "nothing".to_owned(),
        n if n > MAX_LISTED => format!("{} and {} more", listed.join(", "), n - MAX_LISTED),
        _ => listed.join(", "),
    }
}

/// The candidate that `typed` most likely misspells: at most one edit in four
/// characters away and closer than any other candidate, or else the only candidate
/// that `typed` (three characters or more) is the beginning of.
pub(crate) fn closest<'a>(typed: &str, candidates: impl Iterator<Item = &'a str> + Clone) -> Option<&'a str> {
    let allowed = (typed.chars().count() / 4).max(1);
    let mut best: Option<(usize, &str)> = None;
    let mut tie = false;
    for candidate in candidates.clone() {
        let distance = edit_distance(typed, candidate);
        match best {
            _ if distance > allowed => {}
            Some((d, _)) if distance > d => {}
            Some((d, _)) if distance == d => tie = true,
            _ => {
                best = Some((distance, candidate));
                tie = false;
            }
        }
    }
    if let Some((_, name)) = best {
        return (!tie).then_some(name);
    }
    if typed.chars().count() < 3 {
        return None;
    }
    let mut starting = candidates.filter(|candidate| candidate.starts_with(typed));
    match (starting.next(), starting.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// Levenshtein distance over characters; names are short, so the quadratic table is cheap.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != *cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// Translates a rhai evaluation error, looking through calls to script functions so
/// that the position is where the problem happened.
pub(crate) fn from_eval_error(err: EvalAltResult, limits: &Limits) -> EvalError {
    let mut err = err;
    let mut outer_pos = Position::NONE;
    let mut in_function: Option<String> = None;
    while let EvalAltResult::ErrorInFunctionCall(name, _, inner, pos) = err {
        if outer_pos.is_none() {
            outer_pos = pos;
        }
        if in_function.is_none() && !name.starts_with(crate::analysis::ANONYMOUS_PREFIX) {
            in_function = Some(name);
        }
        err = *inner;
    }
    let pos = if err.position().is_none() { outer_pos } else { err.position() };
    let (line, col) = position(pos);

    let limit = |limit: Limit, max: u64| EvalError::LimitExceeded { limit, max, line, col };
    let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let message = match &err {
        EvalAltResult::ErrorTooManyOperations(_) => {
            return limit(Limit::Operations, limits.max_operations);
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            return limit(Limit::CallDepth, as_u64(limits.max_call_levels));
        }
        EvalAltResult::ErrorDataTooLarge(what, _) if what == crate::library::NESTING => {
            return limit(Limit::ExprDepth, as_u64(limits.max_expr_depth));
        }
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            let what = what.to_lowercase();
            return if what.contains("string") {
                limit(Limit::StringSize, as_u64(limits.max_string_len))
            } else if what.contains("map") {
                limit(Limit::MapSize, as_u64(limits.max_map_len))
            } else {
                limit(Limit::ArraySize, as_u64(limits.max_array_len))
            };
        }
        EvalAltResult::ErrorRuntime(value, _) => {
            if value.is_unit() {
                "the script raised an error".to_owned()
            } else {
                value.to_string()
            }
        }
        EvalAltResult::ErrorVariableNotFound(name, _) => {
            format!("`{name}` is not known here; functions only see their own parameters, so pass it as an argument")
        }
        EvalAltResult::ErrorFunctionNotFound(signature, _) => plain_signature(signature),
        EvalAltResult::ErrorArithmetic(detail, _) => format!("a calculation failed: {detail}"),
        EvalAltResult::ErrorArrayBounds(len, index, _) => {
            format!("there is no item {index} in a list of {len} item(s) (the first item is 0)")
        }
        EvalAltResult::ErrorStringBounds(len, index, _) => {
            format!("there is no character {index} in a text of {len} character(s) (the first is 0)")
        }
        EvalAltResult::ErrorMismatchDataType(expected, actual, _) => {
            format!("expected {} but got {}", plain_type(expected), plain_type(actual))
        }
        EvalAltResult::ErrorIndexingType(what, _) => {
            format!("{} cannot be indexed with [...]", plain_type(what))
        }
        EvalAltResult::ErrorDotExpr(detail, _) => plain_dot_error(detail),
        // `Fn("eval")` is parsed at run time.
        EvalAltResult::ErrorParsing(ParseErrorType::Reserved(word), _)
            if FORBIDDEN_SYMBOLS.contains(&word.as_str()) =>
        {
            forbidden(word, Position::NONE).message
        }
        EvalAltResult::ErrorParsing(kind, _) => format!("the script is not valid: {kind}"),
        EvalAltResult::ErrorFor(_) => "`for` can only go through a list, a range or a text".to_owned(),
        _ => {
            let mut err = err;
            err.clear_position();
            err.to_string()
        }
    };
    let message = match in_function {
        Some(name) => format!("{message} (in function `{name}`)"),
        None => message,
    };
    EvalError::Runtime { message, line, col }
}

/// Rewrites rhai's `name (i64, string)` into words.
fn plain_signature(signature: &str) -> String {
    let Some((name, rest)) = signature.split_once(" (") else {
        return format!("there is no function `{signature}`");
    };
    let args: Vec<String> = rest.trim_end_matches(')').split(", ").filter(|s| !s.is_empty()).map(plain_type).collect();
    if args.is_empty() {
        format!("there is no function `{name}` without arguments")
    } else {
        format!(
            "there is no function `{name}` that accepts ({}); check the name and the values passed",
            args.join(", ")
        )
    }
}

/// Rewrites rhai's "Unknown property 'x' - a getter is not registered for type 'T'".
fn plain_dot_error(detail: &str) -> String {
    let mut quoted = detail.split('\'').skip(1).step_by(2);
    match (detail.starts_with("Unknown property"), quoted.next(), quoted.next()) {
        (true, Some(property), Some("()")) => format!(
            "`.{property}` was read from something that has no value; \
             check it with `is_set(...)` first, or write `?.{property}` to get nothing instead"
        ),
        (true, Some(property), Some(on)) => format!("{} has no field `{property}`", plain_type(on)),
        _ => detail.to_owned(),
    }
}

fn plain_type(rhai_name: &str) -> String {
    let name = rhai_name.trim_start_matches("&mut ");
    match name {
        "()" => "nothing (no value)",
        "i64" | "int" => "a whole number",
        "f64" | "float" => "a number",
        "bool" => "a yes/no value",
        "string" | "ImmutableString" | "&str" | "String" | "&str | ImmutableString | String" => "a text",
        "char" => "a character",
        "array" => "a list",
        "map" => "a record",
        "Timestamp" => "a timestamp",
        "Duration" => "a duration",
        "Fn" => "a function",
        other => return other.to_owned(),
    }
    .to_owned()
}
