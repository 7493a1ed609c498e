//! The actions the outbox dispatcher can invoke: a registry by name, with each action's input
//! and output schemas compiled once, and a built-in `notify` so the engine works before any
//! plugin is installed.

use std::collections::BTreeMap;
use std::sync::Arc;

use plugin_api::{Action, ActionInfo, BoxFuture, Invocation};
use serde_json::{Value, json};

/// An action with its schemas compiled.
#[derive(Clone)]
pub(crate) struct Registered {
    pub(crate) action: Arc<dyn Action>,
    pub(crate) input: Arc<jsonschema::Validator>,
    pub(crate) output: Arc<jsonschema::Validator>,
}

/// The actions by name.
#[derive(Clone, Default)]
pub struct ActionRegistry {
    actions: BTreeMap<String, Registered>,
}

impl std::fmt::Debug for ActionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.actions.keys()).finish()
    }
}

/// Why an action cannot be registered.
#[derive(Debug, thiserror::Error)]
#[error("the action `{name}` has an invalid {which} schema: {message}")]
pub struct BadSchema {
    /// The action.
    pub name: String,
    /// `input` or `output`.
    pub which: &'static str,
    /// What is wrong.
    pub message: String,
}

impl ActionRegistry {
    /// An empty registry.
    pub fn new() -> ActionRegistry {
        ActionRegistry::default()
    }

    /// A registry with the built-in actions (`notify`).
    pub fn with_builtins() -> ActionRegistry {
        let mut r = ActionRegistry::new();
        // The built-in's schemas are literals that compile; a failure would be a bug here.
        if let Err(e) = r.register(Arc::new(RecordNotify::new())) {
            debug_assert!(false, "{e}");
        }
        r
    }

    /// Adds (or replaces) an action, compiling its schemas.
    pub fn register(&mut self, action: Arc<dyn Action>) -> Result<(), BadSchema> {
        let info = action.info().clone();
        let compile = |which: &'static str, schema: &Value| {
            // Formats are checked, as the plugins' registry and the forms check them, so that an
            // action's answer is judged the same way wherever it is validated.
            jsonschema::options().should_validate_formats(true).build(schema).map(Arc::new).map_err(|e| BadSchema {
                name: info.name.clone(),
                which,
                message: e.to_string(),
            })
        };
        let input = compile("input", &info.input_schema)?;
        let output = compile("output", &info.output_schema)?;
        self.actions.insert(info.name.clone(), Registered { action, input, output });
        Ok(())
    }

    /// The names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.actions.keys().map(String::as_str)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Registered> {
        self.actions.get(name)
    }
}

/// The built-in `notify`: records the rendered message in the audit trail (as the action's
/// output) and succeeds. A messaging plugin registered under the same name replaces it.
struct RecordNotify {
    info: ActionInfo,
}

impl RecordNotify {
    fn new() -> RecordNotify {
        RecordNotify {
            info: ActionInfo {
                name: "notify".into(),
                version: "1.0.0".into(),
                description: "Records the notification in the audit trail (no channel is configured).".into(),
                input_schema: json!({ "type": "object" }),
                output_schema: json!({ "type": "object" }),
                capabilities: Vec::new(),
            },
        }
    }
}

impl Action for RecordNotify {
    fn info(&self) -> &ActionInfo {
        &self.info
    }

    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, Result<Value, plugin_api::Error>> {
        Box::pin(async move { Ok(json!({ "recorded": true, "message": invocation.input })) })
    }
}
