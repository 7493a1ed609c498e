//! JSON Schemas of action inputs and outputs: compiled once, every error reported by field path.
//!
//! The runtime validates each input before an action is invoked and each output before it is
//! fed back to the core, so an action never sees malformed input and a process never stores an
//! output its guards cannot read. Validators are built without network or file access (the
//! `jsonschema` crate is used without its resolver features): a schema that refers outside
//! itself cannot be compiled, instead of fetching something at run time.

use std::fmt;

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

/// An input or output schema, compiled.
#[derive(Debug)]
pub struct CompiledSchema {
    validator: Validator,
}

/// Which side of an action a value is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// What the action receives.
    Input,
    /// What the action gives back.
    Output,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Input => "input",
            Side::Output => "output",
        })
    }
}

/// One way a value does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where, as a JSON pointer (`/lines/0/qty`); `""` is the whole value. For a missing
    /// field it is the field's own path, so that the message points at what to add.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() { "(the whole value)" } else { &self.path };
        write!(f, "{path}: {}", self.message)
    }
}

/// A value refused by an action's schema, with every error found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {side} of `{action}` does not match its schema: {}", list(.errors))]
pub struct Violation {
    /// The action.
    pub action: String,
    /// Input or output.
    pub side: Side,
    /// Every error, in the validator's order.
    pub errors: Vec<FieldError>,
}

fn list(errors: &[FieldError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Why a schema cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SchemaError {
    /// Where in the schema, as a JSON pointer.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl CompiledSchema {
    /// Checks `schema` against its meta-schema and compiles it.
    pub fn compile(schema: &Value) -> Result<CompiledSchema, Vec<SchemaError>> {
        let meta = jsonschema::meta::validator_for(schema)
            .map_err(|e| vec![SchemaError { path: String::new(), message: e.to_string() }])?;
        let errors: Vec<SchemaError> = meta
            .iter_errors(schema)
            .map(|e| SchemaError {
                path: e.instance_path().as_str().to_owned(),
                message: format!("not a valid JSON Schema: {e}"),
            })
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
            .map_err(|e| vec![SchemaError { path: String::new(), message: e.to_string() }])?;
        Ok(CompiledSchema { validator })
    }

    /// Every way `value` does not match, or nothing when it matches.
    pub fn errors(&self, value: &Value) -> Vec<FieldError> {
        self.validator
            .iter_errors(value)
            .map(|e| {
                let mut path = e.instance_path().as_str().to_owned();
                if let ValidationErrorKind::Required { property } = e.kind() {
                    path.push('/');
                    path.push_str(property.as_str().unwrap_or_default());
                }
                FieldError { path, message: e.to_string() }
            })
            .collect()
    }
}
