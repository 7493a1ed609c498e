//! The one `check` helper: a world of declared variables, a script, and its outcome as a line of text.
//!
//! Every outcome, success or error, renders to one line so that a table row states
//! exactly what a script does. Errors render as a short form (`kind at line:col`);
//! a row whose expectation contains ` — ` is compared with the message as well.

use std::collections::BTreeMap;

use jiff::Timestamp;
use script::{Binding, CompileError, Env, EvalError, Expr, Limits, Sandbox, Shape, Vars};

/// The evaluation time of every row: Monday 2026-03-02, 09:00 in Shanghai.
pub const NOW: &str = "2026-03-02T01:00:00Z";

/// How a row's script is evaluated.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Json,
    Bool,
    Timestamp,
    Duration,
    Str,
}

/// The declared variables of the test world, as JSON Schemas (so `Shape::from_json_schema` is exercised too).
const SCHEMAS: &str = r#"{
    "reception": {"type": "object", "additionalProperties": false, "properties": {
        "vin": {"type": "string"}, "plate_no": {"type": "string"}, "arrived_at": {"type": "string", "format": "date-time"}}},
    "quotation": {"type": "object", "additionalProperties": false, "properties": {
        "total": {"type": "number"},
        "items": {"type": "array", "items": {"type": "object", "additionalProperties": false, "properties": {
            "part": {"type": "string"}, "price": {"type": "number"}, "qty": {"type": "integer"}}}}}},
    "parts_available": {"type": "boolean"},
    "mileage": {"type": "integer"},
    "note": {"type": "string"},
    "promised_at": {"type": "string", "format": "date-time"},
    "estimate": {"type": "string", "format": "duration"},
    "bad_time": {"type": "string", "format": "date-time"},
    "extra": {"type": "object", "properties": {"channel": {"type": "string"}}},
    "tags": {"type": "array", "items": {"type": "string"}},
    "missing_obj": {"type": "object", "properties": {"total": {"type": "number"}}},
    "anything": {}
}"#;

/// The values of the test world. `note` and `missing_obj` are deliberately unset.
const VALUES: &str = r#"{
    "reception": {"vin": "LVSHCAMB1CE012345", "plate_no": "沪A12345", "arrived_at": "2026-03-02T08:30:00+08:00"},
    "quotation": {"total": 1500, "items": [
        {"part": "brake pad", "price": 300.5, "qty": 2}, {"part": "oil", "price": 99, "qty": 1}]},
    "parts_available": true,
    "mileage": 42000,
    "promised_at": "2026-03-02T17:00:00+08:00",
    "estimate": "PT2H30M",
    "bad_time": "next Tuesday",
    "extra": {"channel": "phone", "vip": true},
    "tags": ["A", "warranty"],
    "anything": {"x": [1, 2]}
}"#;

/// The declared variables and their values.
pub struct World {
    pub vars: Vars,
    pub values: BTreeMap<String, (serde_json::Value, Shape)>,
}

impl World {
    pub fn new() -> World {
        let schemas: serde_json::Map<String, serde_json::Value> = serde_json::from_str(SCHEMAS).unwrap();
        let values: serde_json::Map<String, serde_json::Value> = serde_json::from_str(VALUES).unwrap();
        let mut vars = Vars::new();
        let mut bound = BTreeMap::new();
        for (name, schema) in &schemas {
            let shape = Shape::from_json_schema(schema);
            vars.insert(name.clone(), shape.clone());
            if let Some(value) = values.get(name) {
                bound.insert(name.clone(), (value.clone(), shape));
            }
        }
        World { vars, values: bound }
    }
}

impl Env for World {
    fn lookup(&self, name: &str) -> Option<Binding<'_>> {
        self.values.get(name).map(|(value, shape)| Binding::Json(value, shape))
    }
}

pub fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// Runs every row and reports all mismatches at once.
pub fn check(limits: Limits, rows: &[(Mode, &str, &str)]) {
    let sandbox = Sandbox::new(limits);
    let world = World::new();
    let mut failures = Vec::new();
    for (mode, source, expected) in rows {
        let (short, message) = outcome(&sandbox, &world, *mode, source);
        let actual = match message {
            Some(message) if expected.contains(" — ") => format!("{short} — {message}"),
            _ => short,
        };
        if actual != *expected {
            failures.push(format!("script:   {source}\n expected: {expected}\n actual:   {actual}"));
        }
    }
    assert!(failures.is_empty(), "{} row(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// Compiles against the world; panics with a readable line when compilation fails.
pub fn compile(sandbox: &Sandbox, source: &str) -> Expr {
    let world = World::new();
    match sandbox.compile(source, &world.vars) {
        Ok(expr) => expr,
        Err(err) => panic!("`{source}` did not compile: {}", render_compile(&err)),
    }
}

fn outcome(sandbox: &Sandbox, world: &World, mode: Mode, source: &str) -> (String, Option<String>) {
    let expr = match sandbox.compile(source, &world.vars) {
        Ok(expr) => expr,
        Err(err) => return (render_compile(&err), Some(err.message)),
    };
    let now = now();
    let result = match mode {
        Mode::Json => sandbox.eval_json(&expr, world, now).map(|v| v.to_string()),
        Mode::Bool => sandbox.eval_bool(&expr, world, now).map(|b| b.to_string()),
        Mode::Timestamp => sandbox.eval_timestamp(&expr, world, now).map(|t| t.to_string()),
        Mode::Duration => sandbox.eval_duration(&expr, world, now).map(|d| d.to_string()),
        Mode::Str => sandbox.eval_string(&expr, world, now).map(|s| format!("{s:?}")),
    };
    match result {
        Ok(value) => (value, None),
        Err(err) => (render_eval(&err), Some(err.to_string())),
    }
}

fn render_compile(err: &CompileError) -> String {
    use script::CompileErrorKind as K;
    let kind = match &err.kind {
        K::Syntax => "Syntax".to_owned(),
        K::UndeclaredVariable { name } => format!("UndeclaredVariable({name})"),
        K::UnknownField { path, known } => {
            format!("UnknownField({path}; known: {})", known.join(", "))
        }
        K::TooLong => "TooLong".to_owned(),
        K::Forbidden { what } => format!("Forbidden({what})"),
    };
    format!("compile {kind} at {}:{}", err.line, err.col)
}

fn render_eval(err: &EvalError) -> String {
    match err {
        EvalError::LimitExceeded { limit, max, line, col } => format!("limit {limit:?}({max}) at {line}:{col}"),
        EvalError::Runtime { line, col, .. } => format!("runtime at {line}:{col}"),
        EvalError::WrongType { .. } => "wrong type".to_owned(),
    }
}
