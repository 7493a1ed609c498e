//! Reading shapes from JSON Schemas.

use std::collections::BTreeMap;

use script::{Shape, Vars};

#[test]
fn json_schema_types_become_shapes() {
    let object = |fields: &[(&str, Shape)], open: bool| Shape::Object {
        fields: fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect::<BTreeMap<_, _>>(),
        open,
    };
    let cases: Vec<(serde_json::Value, Shape)> = vec![
        (serde_json::json!({"type": "boolean"}), Shape::Bool),
        (serde_json::json!({"type": "integer"}), Shape::Int),
        (serde_json::json!({"type": "number"}), Shape::Number),
        (serde_json::json!({"type": "string"}), Shape::String),
        (serde_json::json!({"type": "string", "format": "date-time"}), Shape::Timestamp),
        (serde_json::json!({"type": "string", "format": "duration"}), Shape::Duration),
        (serde_json::json!({"type": "string", "format": "email"}), Shape::String),
        (serde_json::json!({"type": "array", "items": {"type": "integer"}}), Shape::Array(Box::new(Shape::Int))),
        (serde_json::json!({"type": "array"}), Shape::Array(Box::new(Shape::Any))),
        (
            serde_json::json!({"type": "object", "properties": {"vin": {"type": "string"}}, "additionalProperties": false}),
            object(&[("vin", Shape::String)], false),
        ),
        (
            serde_json::json!({"type": "object", "properties": {"vin": {"type": "string"}}}),
            object(&[("vin", Shape::String)], true),
        ),
        (
            serde_json::json!({"type": "object", "properties": {}, "additionalProperties": {"type": "string"}}),
            object(&[], true),
        ),
        (serde_json::json!({"type": "object"}), Shape::Any),
        (serde_json::json!({"$ref": "#/definitions/x", "type": "string"}), Shape::Any),
        (serde_json::json!({"type": ["string", "null"]}), Shape::Any),
        (serde_json::json!({"oneOf": []}), Shape::Any),
        (serde_json::json!({"type": "frobnicated"}), Shape::Any),
        (serde_json::json!(true), Shape::Any),
    ];
    for (schema, expected) in cases {
        assert_eq!(Shape::from_json_schema(&schema), expected, "{schema}");
    }
}

#[test]
fn vars_list_names_in_order() {
    let mut vars = Vars::new();
    vars.insert("b", Shape::Int);
    vars.insert("a", Shape::Any);
    vars.insert("b", Shape::Bool);
    assert_eq!(vars.names().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(vars.get("b"), Some(&Shape::Bool));
    assert_eq!(vars.get("c"), None);
}
