//! A pack as headquarters published it: loaded, validated, with what overlays need to know
//! about it (policies, parameters, calendars, forms, migration maps).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use model::validate::{Files, MANIFEST};
use model::{Diagnostic, Process, raw};
use serde_json::Value;

use crate::Error;

/// A validated pack.
#[derive(Debug, Clone)]
pub struct Pack {
    /// Where it was loaded from (a folder, or the name an archive was mounted under).
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: raw::Pack,
    /// The manifest as JSON (calendars as written, for documents).
    pub manifest_json: Value,
    /// The version.
    pub version: semver::Version,
    /// Its processes, compiled.
    pub processes: Vec<Arc<Process>>,
    /// Every form the pack offers (name -> JSON Schema): those its processes use, and for a
    /// folder every other form beside them, which dealers' inserted steps may use too.
    pub forms: BTreeMap<String, Value>,
    /// Warnings found while loading (errors make loading fail).
    pub warnings: Vec<Diagnostic>,
}

impl Pack {
    /// Loads and validates a pack; any error refuses it.
    pub fn load(dir: &Path, files: &dyn Files, options: &model::Options) -> Result<Pack, Error> {
        let loaded = model::load_pack(dir, files, options);
        if loaded.has_errors() {
            return Err(Error::Invalid { diagnostics: loaded.diagnostics });
        }
        let invalid = |message: String| Error::Invalid {
            diagnostics: vec![Diagnostic::new(model::Code::BadPack, &dir.join(MANIFEST), Default::default(), message)],
        };
        let manifest = loaded.manifest.ok_or_else(|| invalid("the pack has no readable manifest".into()))?;
        let version = semver::Version::parse(&manifest.version)
            .map_err(|_| invalid(format!("`{}` is not a semantic version", manifest.version)))?;
        let manifest_json = files
            .read(&dir.join(MANIFEST))
            .ok()
            .and_then(|t| model::yaml::parse(&t, &options.yaml).ok())
            .map_or(Value::Null, |(node, _)| node.to_json());
        let mut forms = BTreeMap::new();
        if let Some(forms_dir) = model::validate::forms_dir(dir, Some(&manifest), files) {
            for path in files.list(&forms_dir).unwrap_or_default() {
                let Some(name) = path.file_stem().and_then(|s| s.to_str()) else { continue };
                if path.extension().is_none_or(|e| e != "json") {
                    continue;
                }
                let parsed = files.read(&path).ok().and_then(|t| model::yaml::parse(&t, &options.yaml).ok());
                if let Some((node, _)) = parsed {
                    forms.insert(name.to_string(), node.to_json());
                }
            }
        }
        Ok(Pack {
            dir: dir.to_path_buf(),
            manifest,
            manifest_json,
            version,
            processes: loaded.processes,
            forms,
            warnings: loaded.diagnostics,
        })
    }

    /// The pack id.
    pub fn id(&self) -> &str {
        &self.manifest.pack
    }

    /// A process by id.
    pub fn process(&self, id: &str) -> Option<&Arc<Process>> {
        self.processes.iter().find(|p| p.id == id)
    }

    /// The ids of the processes.
    pub fn process_ids(&self) -> BTreeSet<String> {
        self.processes.iter().map(|p| p.id.clone()).collect()
    }

    /// A process as written (from its definition document).
    pub fn raw_process(&self, id: &str) -> Option<raw::Process> {
        self.process(id).and_then(|p| serde_json::from_value(p.document.get("process")?.clone()).ok())
    }

    /// A process's policy (the empty policy if it has none).
    pub fn policy(&self, id: &str) -> raw::Policy {
        self.raw_process(id).and_then(|p| p.policy).unwrap_or_default()
    }

    /// The forms the processes use, by name.
    pub fn used_forms(&self) -> BTreeSet<String> {
        self.processes
            .iter()
            .filter_map(|p| p.document.get("forms").and_then(Value::as_object))
            .flat_map(|forms| forms.keys().cloned())
            .collect()
    }

    /// A calendar as written in the manifest.
    pub fn calendar(&self, name: &str) -> Option<&Value> {
        self.manifest_json.get("calendars").and_then(|c| c.get(name))
    }

    /// The migration map of a process for instances started on `installed`: old step -> new
    /// step, from the first of the manifest's `migrations` whose `from` matches.
    pub fn migration_map(&self, installed: &semver::Version, process: &str) -> Option<&IndexMap<String, String>> {
        self.manifest
            .migrations
            .iter()
            .find(|m| semver::VersionReq::parse(&m.from).is_ok_and(|r| r.matches(installed)))
            .and_then(|m| m.map.get(process))
    }
}

/// Whether a locked-list entry locks `part` of `step` (`None`: the step as a whole).
pub(crate) fn is_locked(policy: &raw::Policy, step: &str, part: Option<&str>) -> bool {
    policy.locked.iter().any(|l| {
        l == step
            || match (part, l.split_once('.')) {
                (Some(part), Some((s, p))) => s == step && p == part,
                _ => false,
            }
    })
}
