//! Script plugins: `plugins/<name>/plugin.yaml` (the manifest) and Rhai scripts beside it that
//! define actions and guard helpers.
//!
//! Loading reads the manifest with `model::yaml` and reports every problem as a diagnostic at
//! `file:line:col` (`P0028` for the manifest, `P0029` for a script), so a broken plugin is
//! refused whole and the engine starts without it. Scripts run in the same sandbox as guards
//! (limits, no `eval`, no modules, no clock). Action scripts additionally get one host
//! function, `http_request(request)`, which goes through the plugin's own [`HttpCaller`]: it
//! reaches only the hosts the manifest declares *and* the configuration grants, and sends only
//! such secrets. Guard helper scripts get nothing of the kind; a helper that calls
//! `http_request` is refused at load.
//!
//! A script runs on tokio's blocking pool (Rhai is synchronous); `http_request` waits for its
//! answer there, so a slow DMS holds one blocking thread, never the engine's workers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::validate::{Files, FsFiles};
use model::yaml::Path;
use model::{Code, Diagnostic};
use plugin_api::{Action, ActionInfo, BoxFuture, Capability, HelperInfo, Invocation};
use rhai::{Dynamic, EvalAltResult, NativeCallContext, Position};
use script::{Functions, Limits, Sandbox, Shape};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{HostPattern, Secrets};
use crate::files::YamlFile;
use crate::http::{HttpCaller, HttpRequest};
use crate::schema::CompiledSchema;

/// The manifest's file name.
pub const MANIFEST: &str = "plugin.yaml";

/// The most `http_request` calls one invocation may make.
pub const MAX_REQUESTS_PER_CALL: usize = 10;

/// The host function action scripts may call.
pub const HTTP_REQUEST: &str = "http_request";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    plugin: String,
    version: String,
    description: String,
    #[serde(default)]
    capabilities: Vec<Capability>,
    #[serde(default)]
    actions: BTreeMap<String, RawAction>,
    #[serde(default)]
    helpers: BTreeMap<String, RawHelper>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    description: String,
    script: String,
    function: String,
    input: Value,
    output: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHelper {
    script: String,
    doc: String,
}

/// A loaded, checked script plugin (not yet bound to a configuration).
#[derive(Debug, Clone)]
pub struct ScriptPlugin {
    /// The plugin's name (its folder's name).
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// Its folder.
    pub dir: PathBuf,
    /// The capabilities it declares.
    pub declared: Vec<Capability>,
    /// Its actions.
    pub actions: Vec<ScriptActionDef>,
    /// Its guard helpers.
    pub helpers: Vec<HelperInfo>,
    /// The compiled helper scripts (every function in them is a declared helper).
    pub helper_functions: Vec<Functions>,
    /// Where each part of the manifest stands, for diagnostics found later (a name clash).
    manifest: YamlFile,
}

/// One action of a script plugin.
#[derive(Debug, Clone)]
pub struct ScriptActionDef {
    /// What the engine knows of it.
    pub info: ActionInfo,
    /// The compiled script holding its function.
    pub functions: Functions,
    /// The function's name.
    pub function: String,
    /// The script file, for error messages.
    pub script: PathBuf,
    /// Whether the function takes the invocation's context as a second argument.
    pub with_context: bool,
}

impl ScriptPlugin {
    /// A diagnostic at the key of an action in the manifest (e.g. for a name clash).
    pub fn at_action(&self, action: &str, message: impl Into<String>) -> Diagnostic {
        self.manifest.at_key(Code::BadPlugin, &Path::root().key("actions").key(action), message)
    }

    /// A diagnostic at the key of a helper in the manifest.
    pub fn at_helper(&self, helper: &str, message: impl Into<String>) -> Diagnostic {
        self.manifest.at_key(Code::BadPlugin, &Path::root().key("helpers").key(helper), message)
    }
}

/// Loads every plugin in `dir` (each subfolder with a `plugin.yaml`). A plugin with any error is
/// left out; all diagnostics are returned.
pub fn load_dir(dir: &FsPath, limits: &Limits) -> (Vec<ScriptPlugin>, Vec<Diagnostic>) {
    load_dir_from(dir, &FsFiles, limits)
}

/// As [`load_dir`], reading through `files` (e.g. the files of a pack archive held in memory).
pub fn load_dir_from(dir: &FsPath, files: &dyn Files, limits: &Limits) -> (Vec<ScriptPlugin>, Vec<Diagnostic>) {
    let mut plugins = Vec::new();
    let mut diagnostics = Vec::new();
    let Ok(folders) = files.subdirs(dir) else { return (plugins, diagnostics) };
    for folder in folders.into_iter().filter(|f| files.exists(&f.join(MANIFEST))) {
        match load_from(&folder, files, limits) {
            Ok(plugin) => plugins.push(plugin),
            Err(mut d) => diagnostics.append(&mut d),
        }
    }
    (plugins, diagnostics)
}

/// Loads the plugin in `dir`.
pub fn load(dir: &FsPath, limits: &Limits) -> Result<ScriptPlugin, Vec<Diagnostic>> {
    load_from(dir, &FsFiles, limits)
}

/// As [`load`], reading through `files`.
pub fn load_from(dir: &FsPath, files: &dyn Files, limits: &Limits) -> Result<ScriptPlugin, Vec<Diagnostic>> {
    let path = dir.join(MANIFEST);
    let text = files.read(&path).map_err(|e| {
        vec![Diagnostic::new(Code::BadPlugin, &path, model::yaml::Span::new(1, 1), format!("cannot read: {e}"))]
    })?;
    let file = YamlFile::parse(&path, &text).map_err(|d| vec![d])?;
    let raw: RawManifest = file.typed(Code::BadPlugin).map_err(|d| vec![d])?;
    let root = Path::root();
    let mut problems = Vec::new();

    let folder = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if !is_snake(&raw.plugin) {
        problems.push(file.at(Code::BadPlugin, &root.key("plugin"), format!("`{}` is not snake_case", raw.plugin)));
    } else if raw.plugin != folder {
        problems.push(file.at(
            Code::BadPlugin,
            &root.key("plugin"),
            format!("the plugin is called `{}` but its folder is `{folder}`; the two must match", raw.plugin),
        ));
    }
    if semver::Version::parse(&raw.version).is_err() {
        problems.push(file.at(
            Code::BadPlugin,
            &root.key("version"),
            format!("`{}` is not a version like 1.0.0", raw.version),
        ));
    }
    for (idx, capability) in raw.capabilities.iter().enumerate() {
        if let Capability::Http { host } = capability
            && let Err(message) = HostPattern::parse(host)
        {
            problems.push(file.at(Code::BadPlugin, &root.key("capabilities").index(idx).key("host"), message));
        }
    }

    // Every script named is compiled once, in the pure sandbox; compiling does not depend on
    // the host functions, which are bound when the plugin is registered.
    let mut scripts: BTreeMap<String, Option<Functions>> = BTreeMap::new();
    let mut compile = |name: &str, at: Path, problems: &mut Vec<Diagnostic>| -> Option<Functions> {
        if let Some(done) = scripts.get(name) {
            return done.clone();
        }
        let compiled = compile_script(dir, files, name, limits, &file, &at, problems);
        scripts.insert(name.to_owned(), compiled.clone());
        compiled
    };

    let mut actions = Vec::new();
    for (name, action) in &raw.actions {
        let at = root.key("actions").key(name.clone());
        if !is_action_name(name) {
            problems.push(file.at_key(
                Code::BadPlugin,
                &at,
                format!("`{name}` is not an action name; write lower-case words joined by `.` or `_`, like `dms.open_repair_order`"),
            ));
        }
        let mut schemas_ok = true;
        for (side, schema) in [("input", &action.input), ("output", &action.output)] {
            if let Err(errors) = CompiledSchema::compile(schema) {
                schemas_ok = false;
                for e in errors {
                    let mut p = at.key(side);
                    for seg in Path::from_pointer(&e.path).segments() {
                        p = match seg {
                            model::yaml::Seg::Key(k) => p.key(k.clone()),
                            model::yaml::Seg::Index(i) => p.index(*i),
                        };
                    }
                    problems.push(file.at(Code::BadPlugin, &p, format!("the {side} schema: {}", e.message)));
                }
            }
        }
        let Some(functions) = compile(&action.script, at.key("script"), &mut problems) else { continue };
        let with_context = match (functions.get(&action.function, 1), functions.get(&action.function, 2)) {
            (Some(_), _) => false,
            (None, Some(_)) => true,
            (None, None) => {
                problems.push(file.at(
                    Code::BadPlugin,
                    &at.key("function"),
                    format!(
                        "`{}` has no function `{}(input)` or `{}(input, context)`",
                        action.script, action.function, action.function
                    ),
                ));
                continue;
            }
        };
        if !schemas_ok {
            continue;
        }
        actions.push(ScriptActionDef {
            info: ActionInfo {
                name: name.clone(),
                version: raw.version.clone(),
                description: action.description.clone(),
                input_schema: action.input.clone(),
                output_schema: action.output.clone(),
                capabilities: raw.capabilities.clone(),
            },
            functions,
            function: action.function.clone(),
            script: dir.join(&action.script),
            with_context,
        });
    }

    let mut helpers = Vec::new();
    let mut helper_scripts: BTreeMap<String, Functions> = BTreeMap::new();
    for (name, helper) in &raw.helpers {
        let at = root.key("helpers").key(name.clone());
        let Some(functions) = compile(&helper.script, at.key("script"), &mut problems) else { continue };
        let Some(signature) = functions.signatures().iter().find(|s| &s.name == name) else {
            problems.push(file.at_key(Code::BadPlugin, &at, format!("`{}` has no function `{name}`", helper.script)));
            continue;
        };
        helpers.push(HelperInfo { name: name.clone(), arity: signature.params.len(), doc: helper.doc.clone() });
        helper_scripts.insert(helper.script.clone(), functions);
    }
    for (script, functions) in &helper_scripts {
        let script_path = dir.join(script);
        let source = files.read(&script_path).unwrap_or_default();
        for signature in functions.signatures() {
            if !raw.helpers.contains_key(&signature.name) {
                problems.push(Diagnostic::new(
                    Code::BadPlugin,
                    &script_path,
                    definition_span(&source, &signature.name),
                    format!(
                        "`{}` is in a helper script but not declared under `helpers`; guards would see it, so \
                         declare it or move it to another script",
                        signature.name
                    ),
                ));
            }
        }
        if let Some((line, col)) = functions.calls(HTTP_REQUEST) {
            problems.push(Diagnostic::new(
                Code::PluginScript,
                &script_path,
                model::yaml::Span::new(line, col),
                "a guard helper cannot call `http_request`: guards must give the same answer on every run",
            ));
        }
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(ScriptPlugin {
        name: raw.plugin,
        version: raw.version,
        description: raw.description,
        dir: dir.to_path_buf(),
        declared: raw.capabilities,
        actions,
        helpers,
        helper_functions: helper_scripts.into_values().collect(),
        manifest: file,
    })
}

fn compile_script(
    dir: &FsPath,
    files: &dyn Files,
    name: &str,
    limits: &Limits,
    manifest: &YamlFile,
    at: &Path,
    problems: &mut Vec<Diagnostic>,
) -> Option<Functions> {
    let plain = !name.is_empty()
        && name.ends_with(".rhai")
        && !name.contains('/')
        && !name.contains('\\')
        && !name.starts_with('.');
    if !plain {
        problems.push(manifest.at(
            Code::BadPlugin,
            at,
            format!("`{name}` must be the name of a `.rhai` file in the plugin's folder"),
        ));
        return None;
    }
    let path = dir.join(name);
    let source = match files.read(&path) {
        Ok(s) => s,
        Err(e) => {
            problems.push(manifest.at(Code::BadPlugin, at, format!("cannot read `{name}`: {e}")));
            return None;
        }
    };
    // Plugin scripts are libraries, larger than a guard; the other limits stay.
    let sandbox = Sandbox::new(Limits { max_source_len: limits.max_source_len.max(256 * 1024), ..limits.clone() });
    match sandbox.compile_functions(&source) {
        Ok(f) => Some(f),
        Err(e) => {
            problems.push(Diagnostic::new(Code::PluginScript, &path, model::yaml::Span::new(e.line, e.col), e.message));
            None
        }
    }
}

/// Where `fn <name>` stands in a script's text (the start of the file if it cannot be found).
fn definition_span(source: &str, name: &str) -> model::yaml::Span {
    let wanted = format!("fn {name}");
    for (idx, line) in source.lines().enumerate() {
        if let Some(col) = line.find(&wanted) {
            let col = line[..col].chars().count() + 1;
            return model::yaml::Span::new(
                u32::try_from(idx + 1).unwrap_or(u32::MAX),
                u32::try_from(col).unwrap_or(u32::MAX),
            );
        }
    }
    model::yaml::Span::new(1, 1)
}

fn is_snake(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn is_action_name(s: &str) -> bool {
    s.split('.').all(is_snake)
}

/// What a plugin gets: the capabilities it declares that the configuration also grants.
pub fn effective(declared: &[Capability], granted: &[Capability]) -> Vec<Capability> {
    declared
        .iter()
        .filter(|d| {
            granted.iter().any(|g| match (d, g) {
                (Capability::Http { host: want }, Capability::Http { host: have }) => {
                    match (HostPattern::parse(want), HostPattern::parse(have)) {
                        (Ok(want), Ok(have)) => want.within(&have),
                        _ => false,
                    }
                }
                _ => d == &g,
            })
        })
        .cloned()
        .collect()
}

/// An action of a script plugin, bound to its sandbox and capabilities.
pub struct ScriptAction {
    def: ScriptActionDef,
    sandbox: Arc<Sandbox>,
    settings: Value,
}

/// Per-invocation state handed to `http_request` through the call's tag.
#[derive(Clone)]
struct CallState {
    handle: tokio::runtime::Handle,
    idempotency_key: String,
    /// The classified failure of the last `http_request`, so that the action reports a
    /// timeout as retryable even though the script saw it as an error.
    failure: Arc<Mutex<Option<plugin_api::Error>>>,
    n_requests: Arc<AtomicUsize>,
}

/// Builds the sandbox a plugin's actions run in: the pure sandbox, the plugin's helpers, and
/// `http_request` through `caller`.
pub fn action_sandbox(
    limits: Limits,
    helpers: &[Functions],
    caller: HttpCaller,
) -> Result<Sandbox, script::HelperError> {
    Sandbox::with_host(limits, helpers, move |engine| {
        engine.register_fn(HTTP_REQUEST, move |ctx: NativeCallContext, request: rhai::Map| {
            http_request(&caller, &ctx, request)
        });
    })
}

fn http_request(
    caller: &HttpCaller,
    ctx: &NativeCallContext,
    request: rhai::Map,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let fail = |message: String| -> Box<EvalAltResult> {
        Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(message), Position::NONE))
    };
    let Some(state) = ctx.tag().and_then(|t| t.clone().try_cast::<CallState>()) else {
        return Err(fail("http_request can only be used by a plugin's action".into()));
    };
    let record = |error: plugin_api::Error| -> Box<EvalAltResult> {
        let message = error.to_string();
        if let Ok(mut slot) = state.failure.lock() {
            *slot = Some(error);
        }
        fail(message)
    };
    if state.n_requests.fetch_add(1, Ordering::SeqCst) >= MAX_REQUESTS_PER_CALL {
        return Err(record(plugin_api::Error::Permanent(format!(
            "an action may make at most {MAX_REQUESTS_PER_CALL} requests"
        ))));
    }
    let json = script::to_json(&Dynamic::from_map(request))
        .map_err(|e| record(plugin_api::Error::Permanent(format!("http_request: {e}"))))?;
    let request: HttpRequest = serde_json::from_value(json)
        .map_err(|e| record(plugin_api::Error::Permanent(format!("http_request: the request is not valid: {e}"))))?;
    match state.handle.block_on(caller.call(&request, Some(&state.idempotency_key))) {
        Ok(response) => Ok(script::to_dynamic(&response.to_json(), &Shape::Any)),
        Err(error) => Err(record(error)),
    }
}

impl ScriptAction {
    /// Binds an action definition to the sandbox of its plugin and the dealer's settings.
    pub fn new(def: ScriptActionDef, sandbox: Arc<Sandbox>, settings: Value) -> ScriptAction {
        ScriptAction { def, sandbox, settings }
    }
}

impl Action for ScriptAction {
    fn info(&self) -> &ActionInfo {
        &self.def.info
    }

    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, Result<Value, plugin_api::Error>> {
        Box::pin(async move {
            let handle = tokio::runtime::Handle::current();
            let state = CallState {
                handle,
                idempotency_key: invocation.idempotency_key.clone(),
                failure: Arc::new(Mutex::new(None)),
                n_requests: Arc::new(AtomicUsize::new(0)),
            };
            let failure = Arc::clone(&state.failure);
            let mut args = vec![invocation.input];
            if self.def.with_context {
                args.push(json!({
                    "job": invocation.job, "instance": invocation.instance, "dealer": invocation.dealer,
                    "attempt": invocation.attempt, "idempotency_key": invocation.idempotency_key,
                    "settings": self.settings,
                }));
            }
            let sandbox = Arc::clone(&self.sandbox);
            let functions = self.def.functions.clone();
            let function = self.def.function.clone();
            let result = tokio::task::spawn_blocking(move || {
                sandbox.call_fn(&functions, &function, &args, Some(Dynamic::from(state)))
            })
            .await;
            match result {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(err)) => {
                    let classified = failure.lock().ok().and_then(|mut slot| slot.take());
                    Err(classified.unwrap_or_else(|| {
                        let at = match &err {
                            script::EvalError::Runtime { line, col, .. }
                            | script::EvalError::LimitExceeded { line, col, .. }
                                if *line > 0 =>
                            {
                                format!(" at {}:{line}:{col}", self.def.script.display())
                            }
                            _ => String::new(),
                        };
                        plugin_api::Error::Permanent(format!(
                            "the script of `{}` failed{at}: {err}",
                            self.def.info.name
                        ))
                    }))
                }
                Err(join) => Err(plugin_api::Error::Permanent(format!(
                    "the script of `{}` stopped unexpectedly: {join}",
                    self.def.info.name
                ))),
            }
        })
    }
}

/// An HTTP caller limited to what `capabilities` grant.
pub fn caller_for(
    capabilities: &[Capability],
    secrets: Arc<Secrets>,
    timeout: Duration,
    max_bytes: usize,
) -> Result<HttpCaller, reqwest::Error> {
    let hosts = capabilities
        .iter()
        .filter_map(|c| match c {
            Capability::Http { host } => HostPattern::parse(host).ok(),
            _ => None,
        })
        .collect();
    let secret_names: BTreeSet<String> = capabilities
        .iter()
        .filter_map(|c| match c {
            Capability::Secret { name } => Some(name.clone()),
            _ => None,
        })
        .collect();
    HttpCaller::new(hosts, secrets, secret_names, timeout, max_bytes)
}
