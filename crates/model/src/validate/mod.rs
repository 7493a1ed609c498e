//! Loading and validating packs: files in, [`Process`]es and diagnostics out.
//!
//! A pack is a directory with a `pack.yaml` manifest (role catalogue, calendars) and process
//! files (`*.yaml` beside it). Forms are JSON Schema files in `schemas/forms/`. Every file is
//! read into a spanned tree, checked against the language schema, and each process is joined
//! with the forms, calendars and roles it uses into one self-contained *definition document*
//! that is compiled into a [`Process`]. The document, not the files, is what gets deployed, so a
//! process can be rebuilt from the store alone ([`compile_document`]).
//!
//! File access goes through the small [`Files`] port, so that a pack can also be read from an
//! archive.

mod compile;
mod graph;
mod locate;
mod policy;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

pub use compile::{ParamError, RESERVED, check_parameter_value};
pub use locate::{Locator, Mount, Sink, SourceFile, Where, inside_scalar};
pub use policy::{LOCKABLE_PARTS, can_be_extended, can_be_optional};

use crate::diagnostic::{self, Code, Diagnostic};
use crate::process::Process;
use crate::raw;
use crate::schema;
use crate::yaml::{self, Path, Seg};

/// Read access to the files of packs and forms.
pub trait Files {
    /// A file's text.
    fn read(&self, path: &FsPath) -> io::Result<String>;
    /// The files directly in a directory (not recursive), sorted.
    fn list(&self, dir: &FsPath) -> io::Result<Vec<PathBuf>>;
    /// The subdirectories of a directory, sorted.
    fn subdirs(&self, dir: &FsPath) -> io::Result<Vec<PathBuf>>;
    /// Whether a file or directory exists.
    fn exists(&self, path: &FsPath) -> bool;
}

/// [`Files`] on the local file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsFiles;

impl Files for FsFiles {
    fn read(&self, path: &FsPath) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn list(&self, dir: &FsPath) -> io::Result<Vec<PathBuf>> {
        let mut out: Vec<PathBuf> =
            std::fs::read_dir(dir)?.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
        out.sort();
        Ok(out)
    }

    fn subdirs(&self, dir: &FsPath) -> io::Result<Vec<PathBuf>> {
        let mut out: Vec<PathBuf> =
            std::fs::read_dir(dir)?.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect();
        out.sort();
        Ok(out)
    }

    fn exists(&self, path: &FsPath) -> bool {
        path.exists()
    }
}

/// How to load.
#[derive(Debug, Clone)]
pub struct Options {
    /// Limits for reading each file.
    pub yaml: yaml::Limits,
    /// The sandbox expressions are compiled in.
    pub sandbox: Arc<script::Sandbox>,
    /// The actions that exist (built-ins and plugins); `None` skips the check.
    pub actions: Option<BTreeSet<String>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            yaml: yaml::Limits::default(),
            sandbox: Arc::new(script::Sandbox::new(script::Limits::default())),
            actions: None,
        }
    }
}

/// A loaded pack.
#[derive(Debug)]
pub struct LoadedPack {
    /// The pack's directory.
    pub dir: PathBuf,
    /// The manifest, if it could be read.
    pub manifest: Option<raw::Pack>,
    /// The processes that compiled without error.
    pub processes: Vec<Arc<Process>>,
    /// Every problem found, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadedPack {
    /// Whether any error (not warning) was found.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// A process by id.
    pub fn process(&self, id: &str) -> Option<&Arc<Process>> {
        self.processes.iter().find(|p| p.id == id)
    }
}

/// The name of a pack's manifest file.
pub const MANIFEST: &str = "pack.yaml";

/// The pack directories at or below `root` (directories holding a `pack.yaml`), sorted.
pub fn find_packs(root: &FsPath, files: &dyn Files) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if files.exists(&dir.join(MANIFEST)) {
            out.push(dir.clone());
        }
        // Scenarios and other subfolders of a pack may hold more packs only by mistake; still
        // walk them, since examples keep a pack per folder under a common root.
        if let Ok(subdirs) = files.subdirs(&dir) {
            stack.extend(subdirs);
        }
    }
    out.sort();
    out
}

/// The pack a file belongs to: the nearest directory at or above it holding a `pack.yaml`.
pub fn pack_dir_of(path: &FsPath, files: &dyn Files) -> Option<PathBuf> {
    let mut dir = if files.exists(&path.join(MANIFEST)) { Some(path) } else { path.parent() };
    while let Some(d) = dir {
        if files.exists(&d.join(MANIFEST)) {
            return Some(d.to_path_buf());
        }
        dir = d.parent();
    }
    None
}

/// Loads and validates every process of a pack.
pub fn load_pack(dir: &FsPath, files: &dyn Files, options: &Options) -> LoadedPack {
    let mut diagnostics = Vec::new();
    let manifest_path = dir.join(MANIFEST);
    let manifest_file = read_source(&manifest_path, files, &options.yaml, &mut diagnostics);
    let manifest = manifest_file.as_ref().and_then(|f| check_manifest(f, &mut diagnostics));

    let forms_dir = forms_dir(dir, manifest.as_ref(), files);
    if let (Some(m), Some(f)) = (&manifest, &manifest_file) {
        check_scripts(dir, m, f, files, &mut diagnostics);
    }
    let known_forms: BTreeSet<String> = forms_dir
        .as_ref()
        .and_then(|d| files.list(d).ok())
        .unwrap_or_default()
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .collect();

    // Read every process file first: subprocess references need the set of process ids.
    let mut sources = Vec::new();
    for path in files.list(dir).unwrap_or_default() {
        let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if !is_yaml || path.file_name().is_some_and(|n| n == MANIFEST) {
            continue;
        }
        if let Some(file) = read_source(&path, files, &options.yaml, &mut diagnostics) {
            sources.push(file);
        }
    }
    let mut ids: BTreeMap<String, PathBuf> = BTreeMap::new();
    for file in &sources {
        if let Some(id) = file.node.at(&Path::root().key("process")).and_then(|n| match &n.value {
            yaml::NodeValue::Str(s) => Some(s.clone()),
            _ => None,
        }) {
            if let Some(first) = ids.get(&id) {
                diagnostics.push(
                    Diagnostic::new(
                        Code::DuplicateId,
                        &file.path,
                        file.node.span_at(&Path::root().key("process")),
                        format!("the process id `{id}` is already used by {}", first.display()),
                    )
                    .with_hint("process ids are unique within a pack"),
                );
            } else {
                ids.insert(id, file.path.clone());
            }
        }
    }
    let process_ids: BTreeSet<String> = ids.keys().cloned().collect();

    let mut processes = Vec::new();
    let mut form_files: BTreeMap<String, SourceFile> = BTreeMap::new();
    for file in &sources {
        let Some(doc) = check_process_file(file, &mut diagnostics) else { continue };
        let mut forms = Map::new();
        for name in named_forms(&doc) {
            let Some(dir) = &forms_dir else { continue };
            if !known_forms.contains(&name) {
                continue;
            }
            if !form_files.contains_key(&name) {
                let path = dir.join(format!("{name}.json"));
                match read_source(&path, files, &options.yaml, &mut diagnostics) {
                    Some(f) => {
                        form_files.insert(name.clone(), f);
                    }
                    None => continue,
                }
            }
            if let Some(f) = form_files.get(&name) {
                forms.insert(name, f.node.to_json());
            }
        }
        let definition = definition_document(doc, forms, manifest.as_ref(), manifest_file.as_ref());
        let locator = Locator {
            process: Some(file),
            pack: manifest_file.as_ref(),
            forms: form_files.iter().map(|(k, v)| (k.clone(), v)).collect(),
            mounts: Vec::new(),
            fallback: file.path.clone(),
        };
        let mut sink = Sink::new(&locator);
        let ctx = compile::Context {
            sandbox: &options.sandbox,
            actions: options.actions.as_ref(),
            processes: Some(&process_ids),
            known_forms: Some(&known_forms),
        };
        let process = compile::compile(&definition, &ctx, &mut sink);
        diagnostics.extend(sink.finish());
        if let Some(p) = process {
            processes.push(Arc::new(p));
        }
    }

    if let (Some(m), Some(f)) = (&manifest, &manifest_file) {
        check_migrations(m, f, &processes, &process_ids, &mut diagnostics);
    }

    diagnostic::sort(&mut diagnostics);
    diagnostics.dedup();
    LoadedPack { dir: dir.to_path_buf(), manifest, processes, diagnostics }
}

/// Where a pack's form files are: the manifest's `forms:` folder, else the nearest
/// `schemas/forms` at or above the pack's directory.
pub fn forms_dir(dir: &FsPath, manifest: Option<&raw::Pack>, files: &dyn Files) -> Option<PathBuf> {
    manifest.and_then(|m| m.forms.as_ref()).map(|f| dir.join(f)).or_else(|| find_forms_dir(dir, files))
}

/// Compiles a definition document assembled outside a pack folder (a dealer's effective
/// process), placing every diagnostic through `locator`. `processes` are the process ids a
/// subprocess may start (`None` skips the check). Returns the process only if there was no
/// error, and every diagnostic either way.
pub fn compile_located(
    doc: &Value,
    options: &Options,
    locator: &Locator<'_>,
    processes: Option<&BTreeSet<String>>,
) -> (Option<Process>, Vec<Diagnostic>) {
    let mut sink = Sink::new(locator);
    let ctx =
        compile::Context { sandbox: &options.sandbox, actions: options.actions.as_ref(), processes, known_forms: None };
    let process = compile::compile(doc, &ctx, &mut sink);
    (process, sink.finish())
}

/// Why a guard written outside a process file (one a dealer adds in an overlay) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardProblem {
    /// The code, as if the guard stood in the process file.
    pub code: Code,
    /// The line within the guard's text, from 1.
    pub line: u32,
    /// The column within the guard's text, from 1.
    pub col: u32,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: Option<String>,
}

/// Compiles a guard against what a process's expressions may read, as a guard of the process
/// itself would be.
pub fn check_guard(process: &Process, text: &str) -> Result<(), GuardProblem> {
    let Err(e) = process.sandbox.compile(text, &process.vars) else { return Ok(()) };
    let names: Vec<String> = process.vars.names().map(str::to_string).collect();
    let (code, hint) = match &e.kind {
        script::CompileErrorKind::UndeclaredVariable { name } => (
            Code::UndeclaredVariable,
            diagnostic::did_you_mean(name, names.iter().map(String::as_str)).map(|m| format!("did you mean `{m}`?")),
        ),
        script::CompileErrorKind::UnknownField { path, known } => {
            let code = if path.starts_with("params.") { Code::UnknownParameter } else { Code::UndeclaredVariable };
            let last = path.rsplit('.').next().unwrap_or(path);
            (
                code,
                diagnostic::did_you_mean(last, known.iter().map(String::as_str))
                    .map(|m| format!("did you mean `{m}`?")),
            )
        }
        _ => (Code::ExpressionSyntax, None),
    };
    // The sandbox's own message may already carry the suggestion.
    let hint = hint.filter(|_| !e.message.contains("did you mean"));
    Err(GuardProblem { code, line: e.line.max(1), col: e.col.max(1), message: e.message, hint })
}

/// Plugin scripts named by the manifest must be files inside the pack.
fn check_scripts(dir: &FsPath, manifest: &raw::Pack, file: &SourceFile, files: &dyn Files, out: &mut Vec<Diagnostic>) {
    for (i, script) in manifest.scripts.iter().enumerate() {
        let span = file.node.span_at(&Path::root().key("scripts").index(i));
        let inside = FsPath::new(script)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
        if !inside {
            out.push(
                Diagnostic::new(Code::BadPack, &file.path, span, format!("the script `{script}` is outside the pack"))
                    .with_hint("name scripts by a path inside the pack's folder, such as `scripts/check.rhai`"),
            );
        } else if !files.exists(&dir.join(script)) {
            out.push(Diagnostic::new(Code::BadPack, &file.path, span, format!("the script `{script}` does not exist")));
        }
    }
}

/// A migration map must apply to a version range and lead to steps this version has.
fn check_migrations(
    manifest: &raw::Pack,
    file: &SourceFile,
    processes: &[Arc<Process>],
    process_ids: &BTreeSet<String>,
    out: &mut Vec<Diagnostic>,
) {
    for (i, migration) in manifest.migrations.iter().enumerate() {
        let path = Path::root().key("migrations").index(i);
        if semver::VersionReq::parse(&migration.from).is_err() {
            out.push(
                Diagnostic::new(
                    Code::BadPack,
                    &file.path,
                    file.node.span_at(&path.key("from")),
                    format!("`{}` is not a version requirement", migration.from),
                )
                .with_hint("write e.g. `1.x`, `^1.2` or `>=1.0, <2`"),
            );
        }
        for (process_id, map) in &migration.map {
            let ppath = path.key("map").key(process_id.clone());
            if !process_ids.contains(process_id) {
                let hint = diagnostic::did_you_mean(process_id, process_ids.iter().map(String::as_str))
                    .map(|m| format!("did you mean `{m}`?"));
                let mut d = Diagnostic::new(
                    Code::UnknownProcess,
                    &file.path,
                    file.node.key_span_at(&ppath),
                    format!("the migration map names the process `{process_id}`, which is not in the pack"),
                );
                d.hint = hint;
                out.push(d);
                continue;
            }
            // A process that did not compile has already been reported; its steps are unknown.
            let Some(process) = processes.iter().find(|p| &p.id == process_id) else { continue };
            for (old, new) in map {
                if process.step_idx(new).is_none() {
                    let hint = diagnostic::did_you_mean(new, process.steps.iter().map(|s| s.id.as_str()))
                        .map(|m| format!("did you mean `{m}`?"));
                    let mut d = Diagnostic::new(
                        Code::UnknownStep,
                        &file.path,
                        file.node.span_at(&ppath.key(old.clone())),
                        format!("the migration map moves `{old}` to `{new}`, which is not a step of `{process_id}`"),
                    );
                    d.hint = hint;
                    out.push(d);
                }
            }
        }
    }
}

/// Rebuilds a process from a stored definition document. Diagnostics carry document paths only
/// (the files are gone); a stored document was valid when deployed, so errors here mean the
/// engine's rules changed.
pub fn compile_document(doc: &Value, options: &Options) -> Result<Process, Vec<Diagnostic>> {
    let locator = Locator { fallback: PathBuf::from("<stored definition>"), ..Locator::default() };
    let mut sink = Sink::new(&locator);
    let ctx = compile::Context {
        sandbox: &options.sandbox,
        actions: options.actions.as_ref(),
        processes: None,
        known_forms: None,
    };
    match compile::compile(doc, &ctx, &mut sink) {
        Some(p) => Ok(p),
        None => Err(sink.finish()),
    }
}

fn find_forms_dir(dir: &FsPath, files: &dyn Files) -> Option<PathBuf> {
    let mut d = Some(dir);
    while let Some(cur) = d {
        let candidate = cur.join("schemas").join("forms");
        if files.exists(&candidate) {
            return Some(candidate);
        }
        d = cur.parent();
    }
    None
}

fn read_source(
    path: &FsPath,
    files: &dyn Files,
    limits: &yaml::Limits,
    out: &mut Vec<Diagnostic>,
) -> Option<SourceFile> {
    let text = match files.read(path) {
        Ok(t) => t,
        Err(e) => {
            out.push(Diagnostic::new(
                Code::YamlSyntax,
                path,
                yaml::Span::new(1, 1),
                format!("cannot read the file: {e}"),
            ));
            return None;
        }
    };
    match yaml::parse(&text, limits) {
        Ok((node, duplicate)) => {
            if let Some(dup) = duplicate {
                out.push(
                    Diagnostic::new(Code::DuplicateId, path, dup.span(), dup.to_string())
                        .with_hint("ids and keys are unique; rename or remove one of them"),
                );
            }
            Some(SourceFile { path: path.to_path_buf(), text, node })
        }
        Err(e) => {
            let code = match e {
                yaml::Error::TooLarge { .. } | yaml::Error::Limit { .. } => Code::ResourceLimit,
                _ => Code::YamlSyntax,
            };
            out.push(Diagnostic::new(code, path, e.span(), e.to_string()));
            None
        }
    }
}

fn report_violations(file: &SourceFile, violations: &[schema::Violation], out: &mut Vec<Diagnostic>) {
    for v in violations {
        let span = if v.at_key { file.node.key_span_at(&v.path) } else { file.node.span_at(&v.path) };
        let mut d = Diagnostic::new(Code::Schema, &file.path, span, v.message.clone());
        d.hint = v.hint.clone();
        out.push(d);
    }
}

fn check_manifest(file: &SourceFile, out: &mut Vec<Diagnostic>) -> Option<raw::Pack> {
    let json = file.node.to_json();
    let violations = schema::check_pack(&json);
    if !violations.is_empty() {
        report_violations(file, &violations, out);
        return None;
    }
    let manifest: raw::Pack = match serde_json::from_value(json) {
        Ok(m) => m,
        Err(e) => {
            out.push(Diagnostic::new(Code::Schema, &file.path, file.node.span, e.to_string()));
            return None;
        }
    };
    let at = |p: Path| file.node.span_at(&p);
    if semver::Version::parse(&manifest.version).is_err() {
        out.push(
            Diagnostic::new(
                Code::BadPack,
                &file.path,
                at(Path::root().key("version")),
                format!("`{}` is not a semantic version", manifest.version),
            )
            .with_hint("write MAJOR.MINOR.PATCH, e.g. 1.0.0"),
        );
    }
    if let Some(min) = &manifest.min_engine
        && semver::Version::parse(min).is_err()
    {
        out.push(Diagnostic::new(
            Code::BadPack,
            &file.path,
            at(Path::root().key("min_engine")),
            format!("`{min}` is not a semantic version"),
        ));
    }
    for (role, label) in &manifest.roles {
        let path = Path::root().key("roles").key(role.clone());
        for (lang, text) in [("zh", &label.zh), ("en", &label.en)] {
            if text.as_deref().is_none_or(|t| t.trim().is_empty()) {
                out.push(Diagnostic::new(
                    Code::MissingLabel,
                    &file.path,
                    at(path.clone()),
                    format!("the role `{role}` has no `{lang}` name"),
                ));
            }
        }
    }
    Some(manifest)
}

/// Checks a process file against the schema. Returns its JSON with broken steps replaced by
/// placeholders (so that references to them are not reported again), or `None` when the
/// problems are outside the steps and nothing more can be checked.
fn check_process_file(file: &SourceFile, out: &mut Vec<Diagnostic>) -> Option<Value> {
    let mut json = file.node.to_json();
    let violations = schema::check_process(&json);
    report_violations(file, &violations, out);
    let mut broken_steps = BTreeSet::new();
    for v in &violations {
        match v.path.segments() {
            [Seg::Key(steps), Seg::Key(id), ..] if steps == "steps" => {
                broken_steps.insert(id.clone());
            }
            _ => return None,
        }
    }
    if let Some(steps) = json.get_mut("steps").and_then(Value::as_object_mut) {
        for id in broken_steps {
            // A broken step stays in the graph as an end, so that steps pointing to it are not
            // also reported as pointing nowhere.
            steps.insert(id, serde_json::json!({ "type": "end", "outcome": "broken" }));
        }
    }
    Some(json)
}

fn named_forms(process: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect_key(process, "form", &mut out);
    out
}

fn collect_key(v: &Value, key: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                if k == key
                    && let Value::String(s) = val
                {
                    out.insert(s.clone());
                }
                collect_key(val, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_key(i, key, out)),
        _ => {}
    }
}

/// Joins a process with what it uses into one self-contained document.
fn definition_document(
    process: Value,
    forms: Map<String, Value>,
    manifest: Option<&raw::Pack>,
    manifest_file: Option<&SourceFile>,
) -> Value {
    let mut calendars = Map::new();
    let mut used = BTreeSet::new();
    collect_key(&process, "calendar", &mut used);
    if let Some(file) = manifest_file
        && let Some(Value::Object(all)) = file.node.to_json().get("calendars")
    {
        for name in used {
            if let Some(spec) = all.get(&name) {
                calendars.insert(name, spec.clone());
            }
        }
    }
    let mut roles = Map::new();
    if let (Some(m), Some(list)) = (manifest, process.get("roles").and_then(Value::as_array)) {
        for role in list.iter().filter_map(Value::as_str) {
            if let Some(label) = m.roles.get(role) {
                let mut l = Map::new();
                if let Some(zh) = &label.zh {
                    l.insert("zh".into(), Value::String(zh.clone()));
                }
                if let Some(en) = &label.en {
                    l.insert("en".into(), Value::String(en.clone()));
                }
                roles.insert(role.to_string(), Value::Object(l));
            }
        }
    }
    let pack = manifest.map_or(Value::Null, |m| serde_json::json!({ "id": m.pack, "version": m.version }));
    serde_json::json!({
        "process": process,
        "forms": forms,
        "calendars": calendars,
        "roles": roles,
        "pack": pack,
    })
}
