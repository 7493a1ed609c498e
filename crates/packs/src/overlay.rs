//! The dealer overlay (`overlay.yaml`): a dealer's typed changes to a pack, against the stable
//! ids of its processes, steps, parameters, calendars, roles and extension points.
//!
//! The file is read like every other definition file: into a spanned tree under resource
//! limits, checked against its JSON Schema (generated from the types below into
//! `schemas/overlay.schema.json`, which editors use), then deserialised. Whether the changes
//! fit the pack (ids exist, nothing locked is touched, values are in range) is
//! [`crate::resolve()`]'s business, which reports at the overlay's `file:line:col`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use indexmap::IndexMap;
use model::diagnostic::{Code, Diagnostic};
use model::raw::Label;
use model::schema::Checker;
use model::validate::SourceFile;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// A dealer's overlay on a pack.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "sopflow dealer overlay")]
pub struct Overlay {
    /// The dealer's id, in snake_case (e.g. `dealer_gz_tianhe`).
    pub overlay: String,
    /// The id of the pack this overlay adapts.
    pub pack: String,
    /// The pack versions the overlay was written for: a semantic-version requirement such as
    /// `^1.0`. Installing a version outside it is an upgrade conflict to review.
    pub version: String,
    /// Parameter values: `<parameter>` for every process that declares it, or
    /// `<process>.<parameter>` for one. Each must be within the range the pack allows.
    #[serde(default)]
    pub parameters: IndexMap<String, Value>,
    /// Due times (SLAs) of tasks, by `<process>.<step>`: a duration (`PT20M`), an expression
    /// (`=ts(promised_at) - hours(1)`) or `{ after: PT2H, calendar: workshop }`.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, model::raw::When>")]
    pub sla: IndexMap<String, Value>,
    /// The dealer's own opening hours and holidays for the pack's calendars, by name. Each
    /// replaces the pack's definition of that calendar.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, calendar::CalendarSpec>")]
    pub calendars: IndexMap<String, Value>,
    /// The dealer's own titles for the pack's roles, by role id (the ids stay).
    #[serde(default)]
    pub roles: IndexMap<String, Label>,
    /// Steps of the dealer's own, inserted at the extension points the pack declares.
    #[serde(default)]
    pub insert: Vec<Insert>,
    /// Extra conditions on decisions: a branch is taken only if its own guard and the added
    /// one are both true (added guards only ever tighten).
    #[serde(default)]
    pub guards: Vec<AddedGuard>,
    /// Optional steps the dealer leaves out, by `<process>.<step>`: the flow goes straight to
    /// the step's `next`.
    #[serde(default)]
    pub disable: Vec<String>,
    /// The dealer's own texts for a process (`<process>`) or a step (`<process>.<step>`).
    #[serde(default)]
    pub labels: IndexMap<String, Label>,
}

/// Steps inserted at an extension point.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Insert {
    /// The extension point, as `<process>.<extension point>`.
    pub at: String,
    /// The steps, by id, written like the steps of a process. They run in the order written,
    /// starting with the first; each `next` names another inserted step, or `continue` to go
    /// on with the standard flow. They may lead nowhere else.
    #[schemars(with = "IndexMap<String, model::raw::Step>")]
    pub steps: IndexMap<String, Value>,
}

/// A guard added to a branch of a decision.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddedGuard {
    /// The decision, as `<process>.<step>`.
    pub step: String,
    /// The branch, named by the step it leads to.
    pub branch: String,
    /// The extra condition, a Rhai expression like any guard.
    pub when: String,
}

/// The word inserted steps use for "go on with the standard flow".
pub const CONTINUE: &str = "continue";

/// The JSON Schema of overlay files (2020-12).
pub fn overlay_schema() -> Value {
    schemars::schema_for!(Overlay).to_value()
}

/// An overlay file: its text and spanned tree (for positions) and its typed content.
#[derive(Debug, Clone)]
pub struct OverlayFile {
    /// The file, its text and its tree.
    pub source: SourceFile,
    /// The content.
    pub overlay: Overlay,
}

impl OverlayFile {
    /// Reads an overlay from its text; `path` is what diagnostics show. Problems of form (not
    /// YAML, unknown fields, wrong kinds of values) are reported with positions.
    pub fn parse(path: &Path, text: &str) -> Result<OverlayFile, Vec<Diagnostic>> {
        static CHECKER: OnceLock<Checker> = OnceLock::new();
        let (node, duplicate) = model::yaml::parse(text, &model::yaml::Limits::default()).map_err(|e| {
            let code = match e {
                model::yaml::Error::TooLarge { .. } | model::yaml::Error::Limit { .. } => Code::ResourceLimit,
                _ => Code::YamlSyntax,
            };
            vec![Diagnostic::new(code, path, e.span(), e.to_string())]
        })?;
        let mut out = Vec::new();
        if let Some(d) = duplicate {
            out.push(Diagnostic::new(Code::DuplicateId, path, d.span(), d.to_string()));
        }
        let json = node.to_json();
        for v in CHECKER.get_or_init(|| Checker::new(overlay_schema())).check(&json) {
            let span = if v.at_key { node.key_span_at(&v.path) } else { node.span_at(&v.path) };
            let mut d = Diagnostic::new(Code::Schema, path, span, v.message);
            d.hint = v.hint;
            out.push(d);
        }
        if !out.is_empty() {
            return Err(out);
        }
        let overlay: Overlay = serde_json::from_value(json)
            .map_err(|e| vec![Diagnostic::new(Code::Schema, path, node.span, e.to_string())])?;
        Ok(OverlayFile { source: SourceFile { path: path.to_path_buf(), text: text.to_string(), node }, overlay })
    }

    /// Reads an overlay file from disk.
    pub fn read(path: &Path) -> Result<OverlayFile, crate::Error> {
        let text = std::fs::read_to_string(path).map_err(|source| crate::Error::Io { path: path.into(), source })?;
        OverlayFile::parse(path, &text).map_err(|diagnostics| crate::Error::Invalid { diagnostics })
    }

    /// The dealer's id.
    pub fn dealer(&self) -> &str {
        &self.overlay.overlay
    }

    /// The file's path.
    pub fn path(&self) -> PathBuf {
        self.source.path.clone()
    }
}
