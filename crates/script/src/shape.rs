//! The variables a script may read and the shape of their values.
//!
//! A shape is what the sandbox knows about a value before it runs: it drives the
//! compile-time check of property chains (`reception.vn` on a closed form is a typo)
//! and the conversion of JSON into script values (a `date-time` string becomes a
//! `Timestamp`). It is deliberately coarse: it is not a validator, and anything it
//! does not understand becomes [`Shape::Any`], which disables checks instead of
//! inventing errors.

use std::collections::BTreeMap;

/// What a script may read: top-level variable names and the shape of each.
#[derive(Clone, Debug, Default)]
pub struct Vars {
    // A sorted map keeps `names()` and error listings stable from run to run.
    by_name: BTreeMap<String, Shape>,
}

impl Vars {
    /// An empty set of variables; `now` is always available and need not be added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares `name` with the given shape, replacing an earlier declaration.
    pub fn insert(&mut self, name: impl Into<String>, shape: Shape) {
        self.by_name.insert(name.into(), shape);
    }

    /// The shape declared for `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Shape> {
        self.by_name.get(name)
    }

    /// The declared name and shape, borrowed from the declaration.
    pub(crate) fn entry(&self, name: &str) -> Option<(&str, &Shape)> {
        self.by_name.get_key_value(name).map(|(name, shape)| (name.as_str(), shape))
    }

    /// The declared names, in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// The shape of a value as far as scripts are concerned.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// Unknown or unconstrained: no checks, JSON converted as it is.
    Any,
    Bool,
    /// A whole number.
    Int,
    /// Any number; always converted to a float so that `/` never truncates.
    Number,
    String,
    /// An RFC 3339 string that scripts see as a `Timestamp`.
    Timestamp,
    /// An ISO 8601 duration string that scripts see as a `Duration`.
    Duration,
    /// A record. When `open` is false, reading a field that is not listed is a compile error.
    Object {
        fields: BTreeMap<String, Shape>,
        open: bool,
    },
    /// A list whose items all have the given shape.
    Array(Box<Shape>),
}

impl Shape {
    /// Reads the parts of a JSON Schema that matter to scripts: `type`, `format`,
    /// `properties`, `items` and `additionalProperties`.
    ///
    /// Anything else (`$ref`, `oneOf`, a list of types, an unknown type) gives
    /// [`Shape::Any`]: the sandbox then accepts any field and any value, which is the
    /// safe direction for a check that only exists to catch typos.
    pub fn from_json_schema(schema: &serde_json::Value) -> Shape {
        let Some(object) = schema.as_object() else {
            return Shape::Any;
        };
        if object.contains_key("$ref") {
            return Shape::Any;
        }
        match object.get("type").and_then(serde_json::Value::as_str) {
            Some("boolean") => Shape::Bool,
            Some("integer") => Shape::Int,
            Some("number") => Shape::Number,
            Some("string") => match object.get("format").and_then(serde_json::Value::as_str) {
                Some("date-time") => Shape::Timestamp,
                Some("duration") => Shape::Duration,
                _ => Shape::String,
            },
            Some("array") => {
                let items = object.get("items").map_or(Shape::Any, Shape::from_json_schema);
                Shape::Array(Box::new(items))
            }
            Some("object") => match object.get("properties").and_then(serde_json::Value::as_object) {
                Some(properties) => {
                    let fields =
                        properties.iter().map(|(name, sub)| (name.clone(), Shape::from_json_schema(sub))).collect();
                    // Only an explicit `false` closes the record; a schema for extra
                    // properties still allows them.
                    let open = object.get("additionalProperties") != Some(&serde_json::Value::Bool(false));
                    Shape::Object { fields, open }
                }
                None => Shape::Any,
            },
            _ => Shape::Any,
        }
    }

    /// The shape of field `name` of a value of this shape, or `None` when this shape
    /// is a closed record without that field.
    pub(crate) fn field(&self, name: &str) -> Option<&Shape> {
        match self {
            Shape::Object { fields, open } => match fields.get(name) {
                Some(shape) => Some(shape),
                None if *open => Some(&Shape::Any),
                None => None,
            },
            _ => Some(&Shape::Any),
        }
    }

    /// The shape of an item reached by indexing a value of this shape.
    pub(crate) fn item(&self) -> &Shape {
        match self {
            Shape::Array(items) => items,
            _ => &Shape::Any,
        }
    }
}
