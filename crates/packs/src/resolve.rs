//! Resolution: pack + overlay = the dealer's effective processes.
//!
//! Each change of the overlay is checked against the pack (the id exists, the part is not
//! locked, the value is in range) and applied to a copy of the process's definition document:
//! a parameter's value replaces its default, a due time replaces the task's, a calendar or a
//! role title replaces the pack's, inserted steps are wired in between the extension point's
//! step and its successor, a disabled step is taken out and its predecessors re-linked to its
//! `next`, an added guard is AND-ed to its branch. The documents are then compiled like any
//! other, so an effective process is an ordinary [`Process`] with its own hash.
//!
//! Every problem is reported at the overlay's `file:line:col`, including problems inside
//! inserted steps (the compiler's document paths are mounted onto the overlay's). A problem that
//! only shows in the standard's own files once the overlay is applied (a guard that reads the
//! output of a step the dealer disabled) is reported as `O0007` at the overlay's change.
//! Nothing is produced for deployment unless the whole overlay is free of errors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;
use model::diagnostic::{Code, Diagnostic, did_you_mean};
use model::validate::{Locator, Mount, Where};
use model::yaml::{Path, Seg};
use model::{Process, raw};
use serde_json::{Map, Value};

use crate::overlay::{CONTINUE, OverlayFile};
use crate::pack::{Pack, is_locked};

/// A dealer's effective processes, or why there are none.
#[derive(Debug, Clone)]
pub struct Resolution {
    /// The dealer.
    pub dealer: String,
    /// The pack id.
    pub pack: String,
    /// The pack version.
    pub version: semver::Version,
    /// Every process of the pack, with the overlay applied, in the pack's order; empty when
    /// any error was found, so that nothing half-resolved can be deployed.
    pub processes: Vec<Arc<Process>>,
    /// The processes the overlay changes (their hash differs from the standard's).
    pub changed: BTreeSet<String>,
    /// Every problem, sorted, at the overlay's positions.
    pub diagnostics: Vec<Diagnostic>,
}

impl Resolution {
    /// Whether any error was found.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The effective definition documents, by process id.
    pub fn documents(&self) -> BTreeMap<String, Value> {
        self.processes.iter().map(|p| (p.id.clone(), p.document.clone())).collect()
    }

    /// An effective process by id.
    pub fn process(&self, id: &str) -> Option<&Arc<Process>> {
        self.processes.iter().find(|p| p.id == id)
    }
}

/// Applies an overlay to a pack and compiles the effective processes.
pub fn resolve(pack: &Pack, overlay: &OverlayFile, options: &model::Options) -> Resolution {
    resolve_with(pack, overlay, options, None)
}

/// Like [`resolve`]; with `previous` (the version the overlay was applied to before), a change
/// that no longer applies says what changed in between ("removed in version 2.0.0").
pub(crate) fn resolve_with(
    pack: &Pack,
    overlay: &OverlayFile,
    options: &model::Options,
    previous: Option<&Pack>,
) -> Resolution {
    let mut r = Resolver::new(pack, overlay, previous);
    r.check_header();
    r.parameters();
    r.slas();
    r.calendars();
    r.roles();
    r.labels();
    r.collect_disables();
    r.collect_inserts();
    r.collect_guards();
    r.apply_inserts();
    r.apply_disables();
    r.finish(options)
}

/// Where diagnostics that land outside the overlay are collected before being re-reported.
const OUTSIDE: &str = "<standard>";

struct Block {
    idx: usize,
    process: String,
    point: String,
    steps: IndexMap<String, Value>,
}

struct AddedGuard {
    idx: usize,
    process: String,
    step: String,
    branch: usize,
    when: String,
}

struct Resolver<'a> {
    pack: &'a Pack,
    file: &'a OverlayFile,
    previous: Option<&'a Pack>,
    raws: BTreeMap<String, raw::Process>,
    docs: IndexMap<String, Value>,
    mounts: BTreeMap<String, Vec<(Path, Path)>>,
    first_change: BTreeMap<String, Path>,
    disabled: BTreeMap<String, BTreeSet<String>>,
    blocks: Vec<Block>,
    guards: Vec<AddedGuard>,
    diagnostics: Vec<Diagnostic>,
}

fn p(parts: &[&str]) -> Path {
    parts.iter().fold(Path::root(), |p, k| p.key(*k))
}

impl<'a> Resolver<'a> {
    fn new(pack: &'a Pack, file: &'a OverlayFile, previous: Option<&'a Pack>) -> Self {
        let raws = pack.processes.iter().filter_map(|p| Some((p.id.clone(), pack.raw_process(&p.id)?))).collect();
        let docs = pack.processes.iter().map(|p| (p.id.clone(), p.document.clone())).collect();
        Resolver {
            pack,
            file,
            previous,
            raws,
            docs,
            mounts: BTreeMap::new(),
            first_change: BTreeMap::new(),
            disabled: BTreeMap::new(),
            blocks: Vec::new(),
            guards: Vec::new(),
            diagnostics: Vec::new(),
        }
    }

    fn overlay(&self) -> &'a crate::overlay::Overlay {
        &self.file.overlay
    }

    fn version_note(&self) -> String {
        format!("version {}", self.pack.version)
    }

    // ----- reporting --------------------------------------------------------------------

    fn report(&mut self, code: Code, at: &Path, key: bool, message: String, hint: Option<String>) {
        let node = &self.file.source.node;
        let span = if key { node.key_span_at(at) } else { node.span_at(at) };
        let mut d = Diagnostic::new(code, &self.file.source.path, span, message);
        d.hint = hint;
        self.diagnostics.push(d);
    }

    /// Records that `doc_path` of a process's document now comes from `overlay_path`.
    fn mount(&mut self, process: &str, doc_path: Path, overlay_path: Path) {
        self.first_change.entry(process.to_string()).or_insert_with(|| overlay_path.clone());
        self.mounts.entry(process.to_string()).or_default().push((doc_path, overlay_path));
    }

    fn doc_mut(&mut self, process: &str, pointer: &[&str]) -> Option<&mut Value> {
        let mut v = self.docs.get_mut(process)?;
        for k in pointer {
            if !v.is_object() {
                return None;
            }
            v = v.as_object_mut()?.entry((*k).to_string()).or_insert(Value::Null);
        }
        Some(v)
    }

    // ----- targets ----------------------------------------------------------------------

    /// A process by id, or an `O0002` at `at`.
    fn find_process(&mut self, id: &str, at: &Path, key: bool) -> bool {
        if self.raws.contains_key(id) {
            return true;
        }
        let existed = self.previous.is_some_and(|p| p.process(id).is_some());
        let (message, hint) = if existed {
            (format!("the process `{id}` was removed in {}", self.version_note()), None)
        } else {
            let known: Vec<String> = self.raws.keys().cloned().collect();
            (
                format!("the pack has no process `{id}`"),
                did_you_mean(id, known.iter().map(String::as_str)).map(|m| format!("did you mean `{m}`?")),
            )
        };
        self.report(Code::OverlayUnknown, at, key, message, hint);
        false
    }

    /// `<process>.<step>` split and checked, or an `O0002` at `at`.
    fn find_step(&mut self, target: &str, at: &Path, key: bool) -> Option<(String, String)> {
        let Some((process, step)) = target.split_once('.') else {
            self.report(
                Code::OverlayUnknown,
                at,
                key,
                format!("`{target}` does not name a step"),
                Some("name a step as `<process>.<step>`, e.g. `repair_job.reception`".into()),
            );
            return None;
        };
        if !self.find_process(process, at, key) {
            return None;
        }
        let raw = &self.raws[process];
        if raw.steps.contains_key(step) {
            return Some((process.to_string(), step.to_string()));
        }
        let existed = self.previous.and_then(|p| p.raw_process(process)).is_some_and(|r| r.steps.contains_key(step));
        let (message, hint) = if existed {
            let renamed = self.previous.and_then(|prev| self.pack.migration_map(&prev.version, process)?.get(step));
            (
                format!("the step `{step}` of `{process}` was removed in {}", self.version_note()),
                Some(match renamed {
                    Some(new) => format!(
                        "the pack's migration map replaces it with `{new}`: name `{process}.{new}` instead, or drop the change"
                    ),
                    None => "drop this change, or make it on the step that now does this work".into(),
                }),
            )
        } else {
            (
                format!("the process `{process}` has no step `{step}`"),
                did_you_mean(step, raw.steps.keys().map(String::as_str))
                    .map(|m| format!("did you mean `{process}.{m}`?")),
            )
        };
        self.report(Code::OverlayUnknown, at, key, message, hint);
        None
    }

    /// Whether `part` of a step (`None`: the step as a whole, for disabling) is locked; if so,
    /// reports an `O0003` at `at` (its key if `key`).
    fn locked(&mut self, process: &str, step: &str, part: Option<&str>, at: &Path, key: bool) -> bool {
        let policy = self.pack.policy(process);
        if !is_locked(&policy, step, part) {
            return false;
        }
        let since = self
            .previous
            .filter(|prev| prev.process(process).is_some() && !is_locked(&prev.policy(process), step, part))
            .map(|_| format!(" since {}", self.version_note()))
            .unwrap_or_default();
        let words = match part {
            Some("due") => "due time",
            Some("title") => "title",
            Some(_) => "guards",
            None => "",
        };
        let message = match (part, policy.locked.iter().any(|l| l == step)) {
            (None, _) => format!("the step `{process}.{step}` is locked by headquarters{since}: it cannot be disabled"),
            (Some(_), true) => {
                format!("the step `{process}.{step}` is locked by headquarters{since}: its {words} cannot change")
            }
            (Some(p), false) => {
                let verb = if p == "guards" { "are" } else { "is" };
                format!("the {words} of `{process}.{step}` {verb} locked by headquarters{since}")
            }
        };
        self.report(
            Code::OverlayLocked,
            at,
            key,
            message,
            Some(
                "the brand requires it as the standard has it; remove this change (ask headquarters if it must differ)"
                    .into(),
            ),
        );
        true
    }

    // ----- the header -------------------------------------------------------------------

    fn check_header(&mut self) {
        let o = self.overlay();
        let id_ok = o.overlay.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && o.overlay.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !id_ok {
            self.report(
                Code::BadId,
                &p(&["overlay"]),
                false,
                format!("the dealer id `{}` is not snake_case", o.overlay),
                Some("ids use lower-case letters, digits and underscores, and start with a letter".into()),
            );
        }
        if o.pack != self.pack.id() {
            let message = format!("the overlay is for the pack `{}`, not `{}`", o.pack, self.pack.id());
            self.report(Code::OverlayPack, &p(&["pack"]), false, message, None);
        }
        match semver::VersionReq::parse(&o.version) {
            Err(_) => self.report(
                Code::OverlayPack,
                &p(&["version"]),
                false,
                format!("`{}` is not a version requirement", o.version),
                Some("write the pack versions the overlay was written for, e.g. `^1.0`".into()),
            ),
            Ok(req) if !req.matches(&self.pack.version) => self.report(
                Code::OverlayPack,
                &p(&["version"]),
                false,
                format!("the overlay was written for `{}`, and the pack is version {}", o.version, self.pack.version),
                Some(format!(
                    "review every change against {} (`sopflow pack upgrade-check` lists what no longer applies), then widen `version`",
                    self.pack.version
                )),
            ),
            Ok(_) => {}
        }
    }

    // ----- parameters -------------------------------------------------------------------

    fn parameters(&mut self) {
        for (key, value) in &self.overlay().parameters {
            let at = p(&["parameters", key]);
            let targets: Vec<(String, String)> = match key.split_once('.') {
                Some((process, name)) => {
                    if !self.find_process(process, &at, true) {
                        continue;
                    }
                    if self.raws[process].parameters.contains_key(name) {
                        vec![(process.to_string(), name.to_string())]
                    } else {
                        self.unknown_parameter(name, Some(process), &at);
                        continue;
                    }
                }
                None => {
                    let found: Vec<(String, String)> = self
                        .raws
                        .iter()
                        .filter(|(_, r)| r.parameters.contains_key(key))
                        .map(|(id, _)| (id.clone(), key.clone()))
                        .collect();
                    if found.is_empty() {
                        self.unknown_parameter(key, None, &at);
                        continue;
                    }
                    found
                }
            };
            for (process, name) in targets {
                let Some(param) = self.raws[&process].parameters.get(&name).cloned() else { continue };
                match model::validate::check_parameter_value(&param, value) {
                    Ok(v) => {
                        if let Some(slot) = self.doc_mut(&process, &["process", "parameters", &name, "default"]) {
                            *slot = v;
                        }
                        self.mount(&process, p(&["process", "parameters", &name, "default"]), at.clone());
                    }
                    Err(model::validate::ParamError::Duration(msg) | model::validate::ParamError::Other(msg)) => {
                        let before = self
                            .previous
                            .and_then(|prev| prev.raw_process(&process)?.parameters.get(&name).cloned())
                            .filter(|old| model::validate::check_parameter_value(old, value).is_ok());
                        let hint = match before {
                            Some(old) => format!(
                                "the allowed values changed in {}: they were {}, they are now {}",
                                self.version_note(),
                                range_text(&old),
                                range_text(&param)
                            ),
                            None => format!("headquarters allows {}", range_text(&param)),
                        };
                        self.report(
                            Code::OverlayValue,
                            &at,
                            false,
                            format!("the parameter `{process}.{name}`: {msg}"),
                            Some(hint),
                        );
                    }
                }
            }
        }
    }

    fn unknown_parameter(&mut self, name: &str, process: Option<&str>, at: &Path) {
        let in_scope = |r: &raw::Process, id: &str| process.is_none_or(|p| p == id) && r.parameters.contains_key(name);
        let existed = self.previous.is_some_and(|prev| {
            prev.processes.iter().any(|pp| prev.raw_process(&pp.id).is_some_and(|r| in_scope(&r, &pp.id)))
        });
        let known: Vec<String> = self
            .raws
            .iter()
            .filter(|(id, _)| process.is_none_or(|p| p == id.as_str()))
            .flat_map(|(_, r)| r.parameters.keys().cloned())
            .collect();
        let missing = match process {
            Some(p) => format!("the process `{p}` has no parameter `{name}`"),
            None => format!("no process of the pack has a parameter `{name}`"),
        };
        let message = if existed {
            format!("{missing} any more: it was removed or renamed in {}", self.version_note())
        } else {
            missing
        };
        let hint = did_you_mean(name, known.iter().map(String::as_str))
            .map(|m| format!("did you mean `{m}`?"))
            .or_else(|| (!known.is_empty()).then(|| format!("parameters here: {}", known.join(", "))));
        self.report(Code::OverlayUnknown, at, true, message, hint);
    }

    // ----- due times --------------------------------------------------------------------

    fn slas(&mut self) {
        for (key, value) in &self.overlay().sla {
            let at = p(&["sla", key]);
            let Some((process, step)) = self.find_step(key, &at, true) else { continue };
            if !matches!(self.raws[&process].steps.get(&step), Some(raw::Step::Task(_))) {
                self.report(
                    Code::OverlayUnknown,
                    &at,
                    true,
                    format!("`{key}` is not a task: only tasks have a due time"),
                    None,
                );
                continue;
            }
            if self.locked(&process, &step, Some("due"), &at, true) {
                continue;
            }
            if let Some(slot) = self.doc_mut(&process, &["process", "steps", &step, "due"]) {
                *slot = value.clone();
            }
            self.mount(&process, p(&["process", "steps", &step, "due"]), at);
        }
    }

    // ----- calendars and roles ----------------------------------------------------------

    fn calendars(&mut self) {
        for (name, spec) in &self.overlay().calendars {
            let at = p(&["calendars", name]);
            if !self.pack.manifest.calendars.contains_key(name) {
                let known: Vec<String> = self.pack.manifest.calendars.keys().cloned().collect();
                let hint = did_you_mean(name, known.iter().map(String::as_str))
                    .map(|m| format!("did you mean `{m}`?"))
                    .or_else(|| Some(format!("the pack's calendars: {}", known.join(", "))));
                self.report(Code::OverlayUnknown, &at, true, format!("the pack has no calendar `{name}`"), hint);
                continue;
            }
            let parsed = serde_json::from_value::<calendar::CalendarSpec>(spec.clone())
                .map_err(|e| vec![(Vec::new(), e.to_string())])
                .and_then(|s| {
                    calendar::Calendar::parse(&s)
                        .map_err(|errs| errs.into_iter().map(|e| (e.path, e.message)).collect())
                });
            if let Err(problems) = parsed {
                for (path, message) in problems {
                    let at = path.iter().fold(at.clone(), |p, k| p.key(k.clone()));
                    self.report(Code::BadCalendar, &at, false, format!("calendar `{name}`: {message}"), None);
                }
                continue;
            }
            let users: Vec<String> = self
                .docs
                .iter()
                .filter(|(_, d)| d.pointer(&format!("/calendars/{name}")).is_some())
                .map(|(k, _)| k.clone())
                .collect();
            for process in users {
                if let Some(slot) = self.doc_mut(&process, &["calendars", name]) {
                    *slot = spec.clone();
                }
                self.mount(&process, p(&["calendars", name]), at.clone());
            }
        }
    }

    fn roles(&mut self) {
        for (role, label) in &self.overlay().roles {
            let at = p(&["roles", role]);
            if !self.pack.manifest.roles.contains_key(role) {
                let hint = did_you_mean(role, self.pack.manifest.roles.keys().map(String::as_str))
                    .map(|m| format!("did you mean `{m}`?"))
                    .or_else(|| Some("a dealer names the pack's roles in its own words; it cannot add roles".into()));
                self.report(Code::OverlayUnknown, &at, true, format!("the pack has no role `{role}`"), hint);
                continue;
            }
            let users: Vec<String> = self
                .docs
                .iter()
                .filter(|(_, d)| d.pointer(&format!("/roles/{role}")).is_some())
                .map(|(k, _)| k.clone())
                .collect();
            for process in users {
                if let Some(slot) = self.doc_mut(&process, &["roles", role]) {
                    merge_label(slot, label);
                }
                self.mount(&process, p(&["roles", role]), at.clone());
            }
        }
    }

    // ----- labels -----------------------------------------------------------------------

    fn labels(&mut self) {
        for (key, label) in &self.overlay().labels {
            let at = p(&["labels", key]);
            if !key.contains('.') {
                if !self.find_process(key, &at, true) {
                    continue;
                }
                let policy = self.pack.policy(key);
                if policy.locked.iter().any(|l| l == "title") {
                    self.report(
                        Code::OverlayLocked,
                        &at,
                        true,
                        format!("the title of `{key}` is locked by headquarters"),
                        None,
                    );
                    continue;
                }
                if let Some(slot) = self.doc_mut(key, &["process", "title"]) {
                    merge_label(slot, label);
                }
                self.mount(key, p(&["process", "title"]), at);
                continue;
            }
            let Some((process, step)) = self.find_step(key, &at, true) else { continue };
            if self.locked(&process, &step, Some("title"), &at, true) {
                continue;
            }
            if let Some(slot) = self.doc_mut(&process, &["process", "steps", &step, "title"]) {
                merge_label(slot, label);
            }
            self.mount(&process, p(&["process", "steps", &step, "title"]), at);
        }
    }

    // ----- disabled steps ---------------------------------------------------------------

    fn collect_disables(&mut self) {
        for (i, target) in self.overlay().disable.iter().enumerate() {
            let at = Path::root().key("disable").index(i);
            let Some((process, step)) = self.find_step(target, &at, false) else { continue };
            if self.locked(&process, &step, None, &at, false) {
                continue;
            }
            let policy = self.pack.policy(&process);
            if !policy.optional.contains(&step) {
                let was = self.previous.is_some_and(|prev| prev.policy(&process).optional.contains(&step));
                let message = if was {
                    format!("`{target}` is no longer optional in {}: headquarters now requires it", self.version_note())
                } else {
                    format!("`{target}` is not optional: headquarters requires it")
                };
                let hint = if policy.optional.is_empty() {
                    format!("no step of `{process}` may be disabled")
                } else {
                    format!("the optional steps of `{process}` are: {}", policy.optional.join(", "))
                };
                self.report(Code::OverlayNotOptional, &at, false, message, Some(hint));
                continue;
            }
            self.first_change.entry(process.clone()).or_insert_with(|| at.clone());
            self.disabled.entry(process).or_default().insert(step);
        }
    }

    // ----- inserted steps ---------------------------------------------------------------

    fn collect_inserts(&mut self) {
        let mut taken: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (i, insert) in self.overlay().insert.iter().enumerate() {
            let base = Path::root().key("insert").index(i);
            let at = base.key("at");
            let Some((process, point)) = insert.at.split_once('.') else {
                self.report(
                    Code::OverlayUnknown,
                    &at,
                    false,
                    format!("`{}` does not name an extension point", insert.at),
                    Some("write `<process>.<extension point>`, e.g. `repair_job.before_handover`".into()),
                );
                continue;
            };
            if !self.find_process(process, &at, false) {
                continue;
            }
            let points = self.pack.policy(process).extension_points;
            if !points.contains_key(point) {
                let existed =
                    self.previous.is_some_and(|prev| prev.policy(process).extension_points.contains_key(point));
                let message = if existed {
                    format!("the extension point `{}` was removed in {}", insert.at, self.version_note())
                } else {
                    format!("the process `{process}` has no extension point `{point}`")
                };
                let hint = did_you_mean(point, points.keys().map(String::as_str))
                    .map(|m| format!("did you mean `{process}.{m}`?"))
                    .or_else(|| {
                        Some(if points.is_empty() {
                            format!("headquarters declares no extension point in `{process}`: steps cannot be inserted there")
                        } else {
                            format!("the extension points of `{process}` are: {}", points.keys().cloned().collect::<Vec<_>>().join(", "))
                        })
                    });
                self.report(Code::OverlayUnknown, &at, false, message, hint);
                continue;
            }
            if insert.steps.is_empty() {
                self.report(
                    Code::OverlayInsert,
                    &base.key("steps"),
                    false,
                    "there are no steps to insert".into(),
                    None,
                );
                continue;
            }
            let mut ok = true;
            let ids: BTreeSet<&str> = insert.steps.keys().map(String::as_str).collect();
            for (id, step) in &insert.steps {
                let spath = base.key("steps").key(id.clone());
                if self.raws[process].steps.contains_key(id) {
                    self.report(
                        Code::OverlayInsert,
                        &spath,
                        true,
                        format!("`{id}` is already a step of `{process}`; inserted steps need ids of their own"),
                        Some(format!("e.g. `{id}_local`")),
                    );
                    ok = false;
                } else if let Some(first) = taken.insert((process.to_string(), id.clone()), i) {
                    self.report(
                        Code::OverlayInsert,
                        &spath,
                        true,
                        format!("`{id}` is also inserted by insert[{first}]"),
                        None,
                    );
                    ok = false;
                }
                for (rel, target) in step_refs(step) {
                    if target == CONTINUE || ids.contains(target.as_str()) {
                        continue;
                    }
                    let fpath = rel.segments().iter().fold(spath.clone(), |p, s| match s {
                        Seg::Key(k) => p.key(k.clone()),
                        Seg::Index(n) => p.index(*n),
                    });
                    let standard = self.raws[process].steps.contains_key(&target);
                    let message = if standard {
                        format!(
                            "inserted steps may not lead into the standard flow: `{target}` is a step of `{process}`"
                        )
                    } else {
                        format!("there is no inserted step `{target}`")
                    };
                    let hint = did_you_mean(&target, ids.iter().copied().chain([CONTINUE]))
                        .map(|m| format!("did you mean `{m}`?"))
                        .or_else(|| {
                            Some(format!(
                                "lead to another inserted step or to `{CONTINUE}`, which goes on with the standard flow"
                            ))
                        });
                    self.report(Code::OverlayInsert, &fpath, false, message, hint);
                    ok = false;
                }
            }
            if ok {
                self.blocks.push(Block {
                    idx: i,
                    process: process.to_string(),
                    point: point.to_string(),
                    steps: insert.steps.clone(),
                });
            }
        }
    }

    fn apply_inserts(&mut self) {
        let mut by_point: IndexMap<(String, String), Vec<usize>> = IndexMap::new();
        for (n, b) in self.blocks.iter().enumerate() {
            by_point.entry((b.process.clone(), b.point.clone())).or_default().push(n);
        }
        for ((process, point), blocks) in by_point {
            let Some(after) = self.pack.policy(&process).extension_points.get(&point).map(|e| e.after.clone()) else {
                continue;
            };
            let Some(successor) = self.docs[&process]
                .pointer(&format!("/process/steps/{after}/next"))
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                continue;
            };
            let entries: Vec<String> =
                blocks.iter().filter_map(|n| self.blocks[*n].steps.keys().next().cloned()).collect();
            for (k, n) in blocks.iter().enumerate() {
                let go_on = entries.get(k + 1).cloned().unwrap_or_else(|| successor.clone());
                let (idx, steps) = (self.blocks[*n].idx, self.blocks[*n].steps.clone());
                for (id, mut step) in steps {
                    replace_refs(&mut step, &|t| (t == CONTINUE).then(|| go_on.clone()));
                    self.adopt_references(&process, &step);
                    if let Some(Value::Object(all)) = self.doc_mut(&process, &["process", "steps"]) {
                        all.insert(id.clone(), step);
                    }
                    let at = Path::root().key("insert").index(idx).key("steps").key(id.clone());
                    self.mount(&process, p(&["process", "steps", &id]), at);
                }
            }
            if let (Some(first), Some(slot)) =
                (entries.first().cloned(), self.doc_mut(&process, &["process", "steps", &after, "next"]))
            {
                *slot = Value::String(first);
            }
        }
    }

    /// Makes the roles, forms and calendars an inserted step names available in its process's
    /// document, when the pack has them; what the pack does not have is left for the compiler to
    /// report at the step.
    fn adopt_references(&mut self, process: &str, step: &Value) {
        let mut roles = BTreeSet::new();
        collect_roles(step, &mut roles);
        for role in roles {
            let Some(label) = self.pack.manifest.roles.get(&role).cloned() else { continue };
            if let Some(Value::Array(list)) = self.doc_mut(process, &["process", "roles"])
                && !list.iter().any(|r| r.as_str() == Some(role.as_str()))
            {
                list.push(Value::String(role.clone()));
            }
            let dealer_label = self.overlay().roles.get(&role).cloned();
            if let Some(slot) = self.doc_mut(process, &["roles", &role])
                && slot.is_null()
            {
                *slot = serde_json::to_value(&label).unwrap_or(Value::Null);
                if let Some(l) = &dealer_label {
                    merge_label(slot, l);
                }
            }
        }
        for (key, target) in [("form", "forms"), ("calendar", "calendars")] {
            let mut names = BTreeSet::new();
            collect_strings(step, key, &mut names);
            for name in names {
                let value = match target {
                    "forms" => self.pack.forms.get(&name).cloned(),
                    _ => self.overlay().calendars.get(&name).cloned().or_else(|| self.pack.calendar(&name).cloned()),
                };
                let Some(value) = value else { continue };
                if let Some(slot) = self.doc_mut(process, &[target, &name])
                    && slot.is_null()
                {
                    *slot = value;
                }
            }
        }
    }

    fn apply_disables(&mut self) {
        let disabled = std::mem::take(&mut self.disabled);
        for (process, steps) in &disabled {
            let Some(doc_steps) = self.docs[process].pointer("/process/steps").and_then(Value::as_object).cloned()
            else {
                continue;
            };
            let next_of =
                |id: &str| doc_steps.get(id).and_then(|s| s.get("next")).and_then(Value::as_str).map(str::to_string);
            // A chain of disabled steps leads to the first step after it that stays.
            let mut target: BTreeMap<String, String> = BTreeMap::new();
            for id in steps {
                let mut to = next_of(id);
                let mut hops = 0;
                while let Some(t) = to.clone().filter(|t| steps.contains(t)) {
                    hops += 1;
                    if hops > steps.len() {
                        break;
                    }
                    to = next_of(&t);
                }
                if let Some(to) = to {
                    target.insert(id.clone(), to);
                }
            }
            let relink = |t: &str| target.get(t).cloned();
            if let Some(Value::Object(all)) = self.doc_mut(process, &["process", "steps"]) {
                all.retain(|id, _| !steps.contains(id));
                for step in all.values_mut() {
                    replace_refs(step, &relink);
                }
            }
            if let Some(Value::String(start)) = self.doc_mut(process, &["process", "start"])
                && let Some(to) = relink(start)
            {
                *start = to;
            }
            // The effective policy no longer names what is gone.
            let gone = |v: &Value| v.as_str().is_some_and(|s| steps.contains(s.split('.').next().unwrap_or(s)));
            if let Some(Value::Object(policy)) = self.doc_mut(process, &["process", "policy"]) {
                for list in ["locked", "optional"] {
                    if let Some(Value::Array(items)) = policy.get_mut(list) {
                        items.retain(|v| !gone(v));
                    }
                }
                if let Some(Value::Object(points)) = policy.get_mut("extension_points") {
                    points.retain(|_, point| !point.get("after").is_some_and(gone));
                }
            }
        }
        self.disabled = disabled;
    }

    // ----- added guards -----------------------------------------------------------------

    fn collect_guards(&mut self) {
        for (i, g) in self.overlay().guards.iter().enumerate() {
            let base = Path::root().key("guards").index(i);
            let Some((process, step)) = self.find_step(&g.step, &base.key("step"), false) else { continue };
            let Some(raw::Step::Decision(decision)) = self.raws[&process].steps.get(&step).cloned() else {
                self.report(
                    Code::OverlayUnknown,
                    &base.key("step"),
                    false,
                    format!("`{}` is not a decision: guards can be added only to a decision's branches", g.step),
                    None,
                );
                continue;
            };
            if self.locked(&process, &step, Some("guards"), &base.key("step"), false) {
                continue;
            }
            let Some(branch) = decision.branches.iter().position(|b| b.next == g.branch) else {
                let targets: Vec<&str> = decision.branches.iter().map(|b| b.next.as_str()).collect();
                let hint = did_you_mean(&g.branch, targets.iter().copied())
                    .map(|m| format!("did you mean `{m}`?"))
                    .or_else(|| Some(format!("its branches lead to: {}", targets.join(", "))));
                self.report(
                    Code::OverlayUnknown,
                    &base.key("branch"),
                    false,
                    format!("the decision `{}` has no branch leading to `{}`", g.step, g.branch),
                    hint,
                );
                continue;
            };
            self.first_change.entry(process.clone()).or_insert_with(|| base.clone());
            self.guards.push(AddedGuard { idx: i, process, step, branch, when: g.when.clone() });
        }
    }

    // ----- compiling --------------------------------------------------------------------

    fn locator(&self, process: &str) -> Locator<'a> {
        let file: &'a OverlayFile = self.file;
        let mounts = self
            .mounts
            .get(process)
            .map(|ms| {
                ms.iter()
                    .map(|(prefix, at)| Mount { prefix: prefix.clone(), file: &file.source, at: at.clone() })
                    .collect()
            })
            .unwrap_or_default();
        Locator { mounts, fallback: PathBuf::from(OUTSIDE), ..Locator::default() }
    }

    /// Keeps the diagnostics placed in the overlay; re-reports errors that landed in the
    /// standard's files as `O0007` at the overlay's first change to the process.
    fn absorb(&mut self, process: &str, diagnostics: Vec<Diagnostic>) {
        for d in diagnostics {
            if d.file != std::path::Path::new(OUTSIDE) {
                self.diagnostics.push(d);
            } else if d.is_error() {
                let at = self.first_change.get(process).cloned().unwrap_or_else(|| p(&["overlay"]));
                self.report(
                    Code::OverlayBreaks,
                    &at,
                    true,
                    format!("with this change `{process}` no longer validates: {} [{}]", d.message, d.code),
                    Some(
                        "the standard relies on what this change removes or alters; undo it or ask headquarters".into(),
                    ),
                );
            }
        }
    }

    fn compile_one(&mut self, id: &str, doc: &Value, options: &model::Options) -> Option<Process> {
        let locator = self.locator(id);
        let violations = doc.get("process").map(model::schema::check_process).unwrap_or_default();
        if !violations.is_empty() {
            let mut found = Vec::new();
            for v in violations {
                let path = v.path.segments().iter().fold(p(&["process"]), |p, s| match s {
                    Seg::Key(k) => p.key(k.clone()),
                    Seg::Index(n) => p.index(*n),
                });
                let place = if v.at_key { Where::Key(path) } else { Where::Value(path) };
                let (file, span) = locator.locate(&place);
                let mut d = Diagnostic::new(Code::Schema, &file, span, v.message);
                d.hint = v.hint;
                found.push(d);
            }
            self.absorb(id, found);
            return None;
        }
        let ids = self.pack.process_ids();
        let (process, diagnostics) = model::validate::compile_located(doc, options, &locator, Some(&ids));
        self.absorb(id, diagnostics);
        process
    }

    fn finish(mut self, options: &model::Options) -> Resolution {
        let mut processes = Vec::new();
        let mut changed = BTreeSet::new();
        let ids: Vec<String> = self.docs.keys().cloned().collect();
        for id in ids {
            let Some(standard) = self.pack.process(&id).cloned() else { continue };
            let mut doc = self.docs[&id].clone();
            if doc == standard.document && !self.guards.iter().any(|g| g.process == id) {
                processes.push(standard);
                continue;
            }
            let Some(mut process) = self.compile_one(&id, &doc, options) else { continue };
            let guards: Vec<(usize, String, usize, String)> = self
                .guards
                .iter()
                .filter(|g| g.process == id)
                .map(|g| (g.idx, g.step.clone(), g.branch, g.when.clone()))
                .collect();
            if !guards.is_empty() {
                let mut ok = true;
                for (idx, step, branch, when) in &guards {
                    if let Err(problem) = model::validate::check_guard(&process, when) {
                        ok = false;
                        let at = Path::root().key("guards").index(*idx).key("when");
                        let start = self.file.source.node.span_at(&at);
                        let span =
                            model::validate::inside_scalar(&self.file.source.text, start, problem.line, problem.col);
                        let mut d = Diagnostic::new(problem.code, &self.file.source.path, span, problem.message);
                        d.hint = problem.hint;
                        self.diagnostics.push(d);
                        continue;
                    }
                    let pointer = format!("/process/steps/{step}/branches/{branch}/when");
                    if let Some(Value::String(orig)) = doc.pointer_mut(&pointer) {
                        // The standard's guard is evaluated first, so the added one only runs
                        // where the standard would take the branch anyway.
                        *orig = format!("({orig}) && ({when})");
                    }
                }
                if !ok {
                    continue;
                }
                match self.compile_one(&id, &doc, options) {
                    Some(p) => process = p,
                    None => continue,
                }
            }
            changed.insert(id.clone());
            processes.push(Arc::new(process));
        }
        model::diagnostic::sort(&mut self.diagnostics);
        self.diagnostics.dedup();
        let failed = self.diagnostics.iter().any(Diagnostic::is_error);
        Resolution {
            dealer: self.file.overlay.overlay.clone(),
            pack: self.pack.id().to_string(),
            version: self.pack.version.clone(),
            processes: if failed { Vec::new() } else { processes },
            changed: if failed { BTreeSet::new() } else { changed },
            diagnostics: self.diagnostics,
        }
    }
}

/// A definition document as YAML, for people to read (JSON, which is YAML too, if the writer
/// refuses it).
pub fn to_yaml(doc: &Value) -> String {
    serde_saphyr::to_string(doc).unwrap_or_else(|_| serde_json::to_string_pretty(doc).unwrap_or_default())
}

/// The allowed values of a parameter, in words.
pub(crate) fn range_text(p: &raw::Parameter) -> String {
    let show = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
    match (&p.min, &p.max, &p.values) {
        (_, _, Some(values)) => format!("one of {}", values.join(", ")),
        (Some(min), Some(max), _) => format!("{} to {}", show(min), show(max)),
        (Some(min), None, _) => format!("at least {}", show(min)),
        (None, Some(max), _) => format!("at most {}", show(max)),
        (None, None, _) => "any value of its kind".into(),
    }
}

/// Overrides the languages a label gives.
fn merge_label(slot: &mut Value, label: &raw::Label) {
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    if let Some(obj) = slot.as_object_mut() {
        for (lang, text) in [("zh", &label.zh), ("en", &label.en)] {
            if let Some(t) = text {
                obj.insert(lang.into(), Value::String(t.clone()));
            }
        }
    }
}

/// The step references in a step's JSON, with their paths relative to the step.
pub(crate) fn step_refs(step: &Value) -> Vec<(Path, String)> {
    let mut out = Vec::new();
    let root = Path::root();
    for key in ["next", "default", "on_failure", "on_abort", "of"] {
        if let Some(Value::String(s)) = step.get(key) {
            out.push((root.key(key), s.clone()));
        }
    }
    if let Some(Value::Array(branches)) = step.get("branches") {
        for (i, b) in branches.iter().enumerate() {
            match b {
                Value::String(s) => out.push((root.key("branches").index(i), s.clone())),
                Value::Object(o) => {
                    if let Some(Value::String(s)) = o.get("next") {
                        out.push((root.key("branches").index(i).key("next"), s.clone()));
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(Value::Array(timers)) = step.get("timers") {
        for (i, t) in timers.iter().enumerate() {
            if let Some(Value::String(s)) = t.get("goto") {
                out.push((root.key("timers").index(i).key("goto"), s.clone()));
            }
        }
    }
    out
}

/// Replaces the flow references of a step (not a join's `of`) for which `map` gives a new id.
pub(crate) fn replace_refs(step: &mut Value, map: &dyn Fn(&str) -> Option<String>) {
    let Some(obj) = step.as_object_mut() else { return };
    for key in ["next", "default", "on_failure", "on_abort"] {
        if let Some(Value::String(s)) = obj.get_mut(key)
            && let Some(to) = map(s)
        {
            *s = to;
        }
    }
    if let Some(Value::Array(branches)) = obj.get_mut("branches") {
        for b in branches {
            let slot = match b {
                Value::String(_) => Some(b),
                Value::Object(o) => o.get_mut("next"),
                _ => None,
            };
            if let Some(Value::String(s)) = slot
                && let Some(to) = map(s)
            {
                *s = to;
            }
        }
    }
    if let Some(Value::Array(timers)) = obj.get_mut("timers") {
        for t in timers {
            if let Some(Value::String(s)) = t.get_mut("goto")
                && let Some(to) = map(s)
            {
                *s = to;
            }
        }
    }
}

fn collect_roles(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                if (k == "roles" || k == "add_roles")
                    && let Value::Array(items) = val
                {
                    out.extend(items.iter().filter_map(Value::as_str).map(str::to_string));
                }
                collect_roles(val, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_roles(i, out)),
        _ => {}
    }
}

fn collect_strings(v: &Value, key: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                if k == key
                    && let Value::String(s) = val
                {
                    out.insert(s.clone());
                }
                collect_strings(val, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, key, out)),
        _ => {}
    }
}
