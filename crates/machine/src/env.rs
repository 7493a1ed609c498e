//! What expressions see: the instance data, step outputs, `params`, `done_by` and `instance`,
//! bound lazily so that a guard converts only the variables it reads.

use std::cell::OnceCell;

use model::Process;
use script::{Binding, Shape};
use serde_json::{Map, Value};

use crate::instance::Instance;

/// The environment of one evaluation.
pub(crate) struct Env<'a> {
    process: &'a Process,
    instance: &'a Instance,
    params: &'a OnceCell<script::Dynamic>,
}

impl<'a> Env<'a> {
    pub(crate) fn new(process: &'a Process, instance: &'a Instance, params: &'a OnceCell<script::Dynamic>) -> Self {
        Env { process, instance, params }
    }
}

impl script::Env for Env<'_> {
    fn lookup(&self, name: &str) -> Option<Binding<'_>> {
        match name {
            "params" => {
                let params = self.params.get_or_init(|| {
                    let map: Map<String, Value> =
                        self.process.params.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect();
                    let shape = self.process.vars.get("params").cloned().unwrap_or(Shape::Any);
                    script::to_dynamic(&Value::Object(map), &shape)
                });
                Some(Binding::Value(params.clone()))
            }
            "done_by" => {
                let map: Map<String, Value> =
                    self.instance.done_by.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
                Some(Binding::Value(script::to_dynamic(&Value::Object(map), &Shape::Any)))
            }
            "instance" => {
                let i = self.instance;
                let value = serde_json::json!({
                    "id": i.id,
                    "business_key": i.business_key,
                    "process": i.process,
                    "started_at": i.started_at.to_string(),
                    "dealer": i.dealer,
                });
                let shape = self.process.vars.get("instance").cloned().unwrap_or(Shape::Any);
                Some(Binding::Value(script::to_dynamic(&value, &shape)))
            }
            _ => {
                let shape = self.process.vars.get(name)?;
                match self.instance.data.get(name) {
                    Some(v) => Some(Binding::Json(v, shape)),
                    // An unset record (a step not yet done, an optional object) reads as an
                    // empty one, so `review.verdict == "reject"` is simply false before the
                    // review is in, instead of an error.
                    None if matches!(shape, Shape::Object { .. }) => {
                        Some(Binding::Value(script::Dynamic::from_map(Default::default())))
                    }
                    None => None,
                }
            }
        }
    }
}
