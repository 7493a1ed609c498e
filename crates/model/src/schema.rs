//! The JSON Schemas of the language, generated from the raw types, and the structural check
//! that turns schema violations into diagnostics a process owner can act on.
//!
//! The schemas are the single description of the file formats: editors validate and complete
//! with them (`schemas/process.schema.json`, `schemas/pack.schema.json`, kept equal to these
//! by a test), and the loader checks every file against them before anything else, so that a
//! wrong field is reported with its position and a "did you mean".

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::diagnostic::did_you_mean;
use crate::yaml::{Path, Seg};

/// The JSON Schema of a process file (2020-12).
pub fn process_schema() -> Value {
    schemars::schema_for!(crate::raw::Process).to_value()
}

/// The JSON Schema of a pack manifest (2020-12).
pub fn pack_schema() -> Value {
    schemars::schema_for!(crate::raw::Pack).to_value()
}

/// A compiled schema with the structural check that reports its violations.
#[derive(Debug)]
pub struct Checker {
    schema: Value,
    validator: Validator,
}

impl Checker {
    /// Compiles a schema generated from our own types.
    pub fn new(schema: Value) -> Checker {
        // The schema is generated from this workspace's types; failing to compile it is a bug
        // that every test shows, not a user error.
        #[allow(clippy::expect_used)]
        let validator = jsonschema::options()
            .should_validate_formats(false)
            .build(&schema)
            .expect("a schema generated from our types compiles");
        Checker { schema, validator }
    }

    /// The schema.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Every violation in a document, sorted by path.
    pub fn check(&self, doc: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        for error in self.validator.iter_errors(doc) {
            explain(&error, &self.schema, &mut out);
        }
        out.sort_by_key(|v| v.path.to_string());
        out.dedup();
        out
    }
}

/// A structural problem: where, what, and perhaps a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where the problem is.
    pub path: Path,
    /// Whether the position to report is the key of the last path segment (unknown fields).
    pub at_key: bool,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
}

/// Checks a process file's JSON against the process schema.
pub fn check_process(doc: &Value) -> Vec<Violation> {
    static CELL: OnceLock<Checker> = OnceLock::new();
    CELL.get_or_init(|| Checker::new(process_schema())).check(doc)
}

/// Checks a pack manifest's JSON against the pack schema.
pub fn check_pack(doc: &Value) -> Vec<Violation> {
    static CELL: OnceLock<Checker> = OnceLock::new();
    CELL.get_or_init(|| Checker::new(pack_schema())).check(doc)
}

/// Turns one validator error into violations. A `oneOf`/`anyOf` failure (a step of some `type`,
/// a value that may be a text or a mapping) is replaced by the errors of the alternative the
/// value was evidently meant to match, which is what the writer needs to hear.
fn explain(error: &ValidationError<'_>, root: &Value, out: &mut Vec<Violation>) {
    let path = Path::from_pointer(error.instance_path().as_str());
    let instance = error.instance();
    match error.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            if let Some(v) = unknown_step_type(&path, instance) {
                out.push(v);
                return;
            }
            match best_alternative(context, &path) {
                Some(errors) => errors.iter().for_each(|e| explain(e, root, out)),
                None => out.push(Violation {
                    path,
                    at_key: false,
                    message: format!("this value has none of the accepted forms: {}", short(instance)),
                    hint: None,
                }),
            }
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_properties(error, root);
            for field in unexpected {
                let hint = did_you_mean(field, allowed.iter().map(String::as_str))
                    .map(|m| format!("did you mean `{m}`?"))
                    .or_else(|| (!allowed.is_empty()).then(|| format!("allowed here: {}", allowed.join(", "))));
                out.push(Violation {
                    path: path.key(field.clone()),
                    at_key: true,
                    message: format!("unknown field `{field}`"),
                    hint,
                });
            }
        }
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            out.push(Violation { path, at_key: false, message: format!("the field `{name}` is missing"), hint: None });
        }
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(ts) => {
                    let names: Vec<String> = ts.iter().map(|t| article(&t.to_string())).collect();
                    names.join(" or ")
                }
            };
            let expected = if expected.contains(" or ") { expected } else { article(&expected) };
            out.push(Violation {
                path,
                at_key: false,
                message: format!("expected {expected} here, found {}", describe(instance)),
                hint: None,
            });
        }
        ValidationErrorKind::Enum { options } => {
            let words: Vec<String> = options
                .as_array()
                .map(|a| a.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string)).collect())
                .unwrap_or_default();
            let hint = instance
                .as_str()
                .and_then(|s| did_you_mean(s, words.iter().map(String::as_str)))
                .map(|m| format!("did you mean `{m}`?"));
            out.push(Violation {
                path,
                at_key: false,
                message: format!("{} is not one of: {}", short(instance), words.join(", ")),
                hint,
            });
        }
        ValidationErrorKind::Constant { expected_value } => out.push(Violation {
            path,
            at_key: false,
            message: format!("expected {}, found {}", short(expected_value), short(instance)),
            hint: None,
        }),
        ValidationErrorKind::MinItems { limit } => out.push(Violation {
            path,
            at_key: false,
            message: format!("at least {limit} item(s) are needed here"),
            hint: None,
        }),
        _ => out.push(Violation { path, at_key: false, message: error.to_string(), hint: None }),
    }
}

/// `steps.<id>` with a `type` that names no step kind.
fn unknown_step_type(path: &Path, instance: &Value) -> Option<Violation> {
    const KINDS: [&str; 10] =
        ["task", "action", "decision", "parallel", "join", "wait", "receive", "send", "subprocess", "end"];
    let segs = path.segments();
    if segs.len() != 2 || segs[0] != Seg::Key("steps".into()) {
        return None;
    }
    let kind = instance.get("type");
    let (message, hint) = match kind.and_then(Value::as_str) {
        Some(k) if KINDS.contains(&k) => return None,
        Some(k) => (
            format!("`{k}` is not a step type"),
            did_you_mean(k, KINDS).map_or_else(
                || format!("the step types are: {}", KINDS.join(", ")),
                |m| format!("did you mean `{m}`?"),
            ),
        ),
        None if instance.is_object() => {
            ("the step has no `type`".to_string(), format!("add `type:` with one of: {}", KINDS.join(", ")))
        }
        None => return None,
    };
    Some(Violation { path: path.key("type"), at_key: kind.is_none(), message, hint: Some(hint) })
}

/// The alternative whose errors do not include a mismatch of the discriminating `type` field
/// nor of the value's own JSON type; among those, the one with the fewest errors.
fn best_alternative<'a>(
    context: &'a [Vec<ValidationError<'static>>],
    path: &Path,
) -> Option<&'a Vec<ValidationError<'static>>> {
    let here = path.to_string();
    let type_field = path.key("type").to_string();
    context
        .iter()
        .filter(|errors| {
            !errors.iter().any(|e| {
                let at = Path::from_pointer(e.instance_path().as_str()).to_string();
                (at == type_field
                    && matches!(e.kind(), ValidationErrorKind::Constant { .. } | ValidationErrorKind::Enum { .. }))
                    || (at == here && matches!(e.kind(), ValidationErrorKind::Type { .. }))
            })
        })
        .min_by_key(|errors| errors.len())
}

/// The properties the failing schema allows, for "did you mean" hints.
fn allowed_properties(error: &ValidationError<'_>, root: &Value) -> Vec<String> {
    // The validator reports where in the schema `additionalProperties` failed; its sibling
    // `properties` holds the allowed names. The absolute location resolves `$ref`s, so it
    // points into the generated schema itself.
    let pointer = error
        .absolute_keyword_location()
        .and_then(|uri| uri.fragment().map(|f| f.as_str().to_string()))
        .unwrap_or_else(|| error.schema_path().as_str().to_string());
    let Some(parent) = pointer.strip_suffix("/additionalProperties") else { return Vec::new() };
    root.pointer(&format!("{parent}/properties"))
        .and_then(Value::as_object)
        .map(|props| props.keys().cloned().collect())
        .unwrap_or_default()
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "nothing".into(),
        Value::Bool(_) => "true/false".into(),
        Value::Number(_) => "a number".into(),
        Value::String(s) => format!("the text \"{}\"", truncate(s)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

fn article(json_type: &str) -> String {
    match json_type {
        "object" => "a mapping".into(),
        "array" => "a list".into(),
        "string" => "a text".into(),
        "integer" => "a whole number".into(),
        "number" => "a number".into(),
        "boolean" => "true or false".into(),
        "null" => "nothing".into(),
        other => other.to_string(),
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{}`", truncate(s)),
        other => truncate(&other.to_string()),
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 60 { format!("{}…", s.chars().take(60).collect::<String>()) } else { s.to_string() }
}
