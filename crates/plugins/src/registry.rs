//! The registry: every action the engine can invoke (built-ins and script plugins), the
//! external task topics, the guard helpers, and each action's schemas compiled once.
//!
//! The runtime's outbox dispatcher looks an action up in [`Registry::actions`], checks the input
//! with [`Registry::validate_input`], invokes it, and checks the output with
//! [`Registry::validate_output`] before feeding it back to the core. A registry is immutable:
//! loading plugins again (a pack install, a configuration change) builds a new one, which the
//! runtime swaps in.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use model::Diagnostic;
use plugin_api::{Action, ActionInfo, Capability, HelperInfo};
use serde_json::Value;

use crate::config::{PluginsConfig, Secrets, TopicConfig};
use crate::error::Error;
use crate::external::{TOPIC_PREFIX, TopicSchemas};
use crate::http::{HttpAction, HttpCaller};
use crate::inventory::{CheckAction, InventoryStore, MemoryInventory, ReserveAction};
use crate::notify::Notify;
use crate::schema::{CompiledSchema, FieldError, Side, Violation};
use crate::script_plugin::{self, ScriptAction, ScriptPlugin};
use crate::template::{self, Templates};

/// The actions built into the engine.
pub const BUILTIN_ACTIONS: &[&str] = &["http", "inventory.check", "inventory.reserve", "notify"];

/// What the registry knows of one plugin, for `sopflow plugins`.
#[derive(Debug, Clone)]
pub struct PluginSummary {
    /// The plugin's name (`builtin` for the built-ins, `external` for the topics).
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// Its folder, for a script plugin.
    pub dir: Option<PathBuf>,
    /// Its actions.
    pub actions: Vec<ActionInfo>,
    /// Its guard helpers.
    pub helpers: Vec<HelperInfo>,
    /// The capabilities it declares.
    pub declared: Vec<Capability>,
    /// Those the configuration grants (what it actually gets).
    pub granted: Vec<Capability>,
}

/// An action's compiled schemas.
#[derive(Debug, Clone)]
struct Schemas {
    input: Arc<CompiledSchema>,
    output: Arc<CompiledSchema>,
}

/// Every action, topic and guard helper, with compiled schemas.
pub struct Registry {
    actions: BTreeMap<String, Arc<dyn Action>>,
    schemas: BTreeMap<String, Schemas>,
    topics: BTreeMap<String, TopicConfig>,
    plugins: Vec<PluginSummary>,
    helper_functions: Vec<script::Functions>,
    templates: Arc<RwLock<Templates>>,
    inventory: Arc<dyn InventoryStore>,
    config: PluginsConfig,
}

/// Assembles a [`Registry`]. A builder can be kept and built again (with other script plugins,
/// e.g. those a pack brings when it is installed): registries built from clones of one builder
/// share its templates and its stock table.
#[derive(Clone)]
pub struct RegistryBuilder {
    config: PluginsConfig,
    secrets: Secrets,
    inventory: Option<Arc<dyn InventoryStore>>,
    templates: Option<Arc<RwLock<Templates>>>,
    plugin_dirs: Vec<PathBuf>,
    loaded: Vec<ScriptPlugin>,
    limits: script::Limits,
    extra: Vec<Arc<dyn Action>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("actions", &self.actions.keys().collect::<Vec<_>>())
            .field("topics", &self.topics.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Starts assembling a registry for `config`.
    pub fn builder(config: PluginsConfig) -> RegistryBuilder {
        RegistryBuilder {
            config,
            secrets: Secrets::default(),
            inventory: None,
            templates: None,
            plugin_dirs: Vec::new(),
            loaded: Vec::new(),
            limits: script::Limits::default(),
            extra: Vec::new(),
        }
    }

    /// The built-ins with the offline defaults: what design-time checks need.
    pub fn offline() -> Registry {
        // The built-ins' schemas are constants of this crate and always compile; a failure here
        // would be a bug caught by the tests, and leaves an empty registry rather than a panic.
        Registry::builder(PluginsConfig::default()).build().unwrap_or_else(|_| Registry::empty())
    }

    fn empty() -> Registry {
        Registry {
            actions: BTreeMap::new(),
            schemas: BTreeMap::new(),
            topics: BTreeMap::new(),
            plugins: Vec::new(),
            helper_functions: Vec::new(),
            templates: Arc::default(),
            inventory: Arc::new(MemoryInventory::new()),
            config: PluginsConfig::default(),
        }
    }

    /// The actions invoked in-process, by name: what the outbox dispatcher calls.
    pub fn actions(&self) -> &BTreeMap<String, Arc<dyn Action>> {
        &self.actions
    }

    /// An action by name.
    pub fn action(&self, name: &str) -> Option<&Arc<dyn Action>> {
        self.actions.get(name)
    }

    /// Every name a process may use in `action:`/`invoke:`: the in-process actions and
    /// `topic:<t>` for each declared topic. Give it to `model::Options::actions`.
    pub fn action_names(&self) -> BTreeSet<String> {
        self.actions.keys().cloned().chain(self.topics.keys().map(|t| format!("{TOPIC_PREFIX}{t}"))).collect()
    }

    /// The declared external task topics.
    pub fn topics(&self) -> &BTreeMap<String, TopicConfig> {
        &self.topics
    }

    /// The topics' compiled schemas, for `ExternalJobs::new`.
    pub fn topic_schemas(&self) -> TopicSchemas {
        self.topics
            .keys()
            .filter_map(|t| {
                let s = self.schemas.get(&format!("{TOPIC_PREFIX}{t}"))?;
                Some((t.clone(), (Arc::clone(&s.input), Arc::clone(&s.output))))
            })
            .collect()
    }

    /// The plugins, built-ins first.
    pub fn plugins(&self) -> &[PluginSummary] {
        &self.plugins
    }

    /// The guard helpers of all plugins.
    pub fn helpers(&self) -> Vec<&HelperInfo> {
        self.plugins.iter().flat_map(|p| p.helpers.iter()).collect()
    }

    /// A guard sandbox with every plugin's helpers, for `model::Options::sandbox`.
    pub fn guard_sandbox(&self, limits: script::Limits) -> Result<script::Sandbox, script::HelperError> {
        script::Sandbox::with_helpers(limits, &self.helper_functions)
    }

    /// The configuration the registry was built with.
    pub fn config(&self) -> &PluginsConfig {
        &self.config
    }

    /// The stock table behind `inventory.*`.
    pub fn inventory(&self) -> &Arc<dyn InventoryStore> {
        &self.inventory
    }

    /// Installs a pack's notification templates (`<pack>/templates/*.yaml`), replacing the
    /// pack's earlier ones. Returns how many were installed; a broken template refuses all.
    pub fn install_templates(&self, pack: &str, pack_dir: &FsPath) -> Result<usize, Error> {
        let (templates, diagnostics) = template::load_templates(pack_dir);
        if !diagnostics.is_empty() {
            return Err(Error::Invalid(diagnostics));
        }
        self.install_parsed(pack, pack_dir, templates)
    }

    /// As [`Registry::install_templates`], from files held in memory (an archive's
    /// `templates/*.yaml`, as `(path inside the pack, text)`); `root` names the pack in messages.
    pub fn install_templates_from(
        &self,
        pack: &str,
        root: &FsPath,
        files: &[(String, String)],
    ) -> Result<usize, Error> {
        let mut templates = Vec::new();
        let mut diagnostics = Vec::new();
        let prefix = format!("{}/", template::TEMPLATES_DIR);
        for (path, text) in files {
            let is_template = path.strip_prefix(&prefix).is_some_and(|n| n.ends_with(".yaml") || n.ends_with(".yml"));
            if !is_template {
                continue;
            }
            match template::parse_template(&root.join(path), text) {
                Ok(t) => templates.push(t),
                Err(mut d) => diagnostics.append(&mut d),
            }
        }
        if !diagnostics.is_empty() {
            return Err(Error::Invalid(diagnostics));
        }
        self.install_parsed(pack, root, templates)
    }

    fn install_parsed(
        &self,
        pack: &str,
        pack_dir: &FsPath,
        templates: Vec<template::Template>,
    ) -> Result<usize, Error> {
        let n_templates = templates.len();
        let mut installed = self.templates.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        installed.install(pack, templates).map_err(|clash| {
            let at = pack_dir.join(template::TEMPLATES_DIR).join(format!("{}.yaml", clash.name));
            Error::Invalid(vec![Diagnostic::new(
                model::Code::BadTemplate,
                &at,
                model::yaml::Span::new(1, 1),
                clash.to_string(),
            )])
        })?;
        Ok(n_templates)
    }

    /// The installed templates (shared with `notify`).
    pub fn templates(&self) -> &Arc<RwLock<Templates>> {
        &self.templates
    }

    /// Checks an input against the action's (or topic's) input schema.
    pub fn validate_input(&self, action: &str, input: &Value) -> Result<(), Violation> {
        self.validate(action, Side::Input, input)
    }

    /// Checks an output against the action's (or topic's) output schema.
    pub fn validate_output(&self, action: &str, output: &Value) -> Result<(), Violation> {
        self.validate(action, Side::Output, output)
    }

    fn validate(&self, action: &str, side: Side, value: &Value) -> Result<(), Violation> {
        let Some(schemas) = self.schemas.get(action) else {
            return Err(Violation {
                action: action.to_owned(),
                side,
                errors: vec![FieldError { path: String::new(), message: format!("there is no action `{action}`") }],
            });
        };
        let schema = match side {
            Side::Input => &schemas.input,
            Side::Output => &schemas.output,
        };
        let errors = schema.errors(value);
        if errors.is_empty() { Ok(()) } else { Err(Violation { action: action.to_owned(), side, errors }) }
    }
}

impl RegistryBuilder {
    /// The secrets resolved from the configuration.
    pub fn secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = secrets;
        self
    }

    /// The stock table (default: an empty one in memory).
    pub fn inventory(mut self, store: Arc<dyn InventoryStore>) -> Self {
        self.inventory = Some(store);
        self
    }

    /// Templates shared with an earlier registry, so that a rebuild keeps the installed packs'.
    pub fn templates(mut self, templates: Arc<RwLock<Templates>>) -> Self {
        self.templates = Some(templates);
        self
    }

    /// A folder of script plugins (`<dir>/<name>/plugin.yaml`); may be given several times.
    pub fn plugins_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.plugin_dirs.push(dir.into());
        self
    }

    /// Script plugins loaded elsewhere ([`script_plugin::load_dir_from`], e.g. from a pack
    /// archive); they are registered after those of the folders, in the order given.
    pub fn script_plugins(mut self, plugins: impl IntoIterator<Item = ScriptPlugin>) -> Self {
        self.loaded.extend(plugins);
        self
    }

    /// Makes the templates and the stock table explicit, so that every registry built from
    /// this builder (or its clones) shares them instead of starting empty.
    pub fn shared(mut self) -> Self {
        self.templates.get_or_insert_with(Arc::default);
        self.inventory.get_or_insert_with(|| Arc::new(MemoryInventory::new()));
        self
    }

    /// The sandbox limits of plugin scripts (the same ones apply to plugins loaded elsewhere).
    pub fn limits_of(&self) -> &script::Limits {
        &self.limits
    }

    /// The sandbox limits of plugin scripts (default: those of guards).
    pub fn limits(mut self, limits: script::Limits) -> Self {
        self.limits = limits;
        self
    }

    /// An action compiled into the program embedding the engine.
    pub fn action(mut self, action: Arc<dyn Action>) -> Self {
        self.extra.push(action);
        self
    }

    /// Loads the script plugins and assembles everything; every problem is reported at once.
    pub fn build(self) -> Result<Registry, Error> {
        let config = self.config;
        let secrets = Arc::new(self.secrets);
        let timeout = Duration::from_secs(config.http.timeout_secs.max(1));
        let max_bytes = config.http.max_response_bytes;
        let mut diagnostics: Vec<Diagnostic> = Vec::new();
        let mut registry = Registry::empty();
        registry.config = config.clone();
        registry.inventory = self.inventory.unwrap_or_else(|| Arc::new(MemoryInventory::new()));
        registry.templates = self.templates.unwrap_or_default();

        let http = HttpCaller::new(
            config.http_allow(),
            Arc::clone(&secrets),
            config.http.secrets.iter().cloned().collect(),
            timeout,
            max_bytes,
        )?;
        let notify_secrets: BTreeSet<String> = [
            config.notify.webhook.as_ref().and_then(|w| w.secret_header.as_ref()).map(|h| h.secret.clone()),
            config.notify.sms.as_ref().and_then(|s| s.secret_header.as_ref()).map(|h| h.secret.clone()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let notify_http =
            HttpCaller::new(config.http_allow(), Arc::clone(&secrets), notify_secrets, timeout, max_bytes)?;
        let builtins: Vec<Arc<dyn Action>> = vec![
            Arc::new(HttpAction::new(http)),
            Arc::new(CheckAction::new(Arc::clone(&registry.inventory))),
            Arc::new(ReserveAction::new(Arc::clone(&registry.inventory))),
            Arc::new(Notify::new(
                Arc::clone(&registry.templates),
                config.notify.clone(),
                notify_http,
                Arc::clone(&secrets),
                timeout,
            )),
        ];
        let mut builtin_summary = PluginSummary {
            name: "builtin".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "The actions built into the engine.".into(),
            dir: None,
            actions: Vec::new(),
            helpers: Vec::new(),
            declared: Vec::new(),
            granted: Vec::new(),
        };
        for action in builtins.into_iter().chain(self.extra) {
            let info = action.info().clone();
            builtin_summary.granted.extend(info.capabilities.iter().cloned());
            builtin_summary.actions.push(info.clone());
            if let Err(message) = registry.add(action) {
                diagnostics.push(Diagnostic::new(
                    model::Code::BadPlugin,
                    FsPath::new("<built-in>"),
                    model::yaml::Span::default(),
                    message,
                ));
            }
        }
        builtin_summary.granted.sort();
        builtin_summary.granted.dedup();
        builtin_summary.declared = builtin_summary.granted.clone();
        registry.plugins.push(builtin_summary);

        let mut loaded: Vec<ScriptPlugin> = Vec::new();
        for dir in &self.plugin_dirs {
            let (plugins, mut problems) = script_plugin::load_dir(dir, &self.limits);
            diagnostics.append(&mut problems);
            loaded.extend(plugins);
        }
        loaded.extend(self.loaded);
        let mut helper_names: BTreeMap<String, String> = BTreeMap::new();
        for plugin in loaded {
            let granted = script_plugin::effective(&plugin.declared, config.granted(&plugin.name));
            let caller = script_plugin::caller_for(&granted, Arc::clone(&secrets), timeout, max_bytes)?;
            let mut clashes = Vec::new();
            for action in &plugin.actions {
                let name = &action.info.name;
                if registry.actions.contains_key(name) || name.starts_with(TOPIC_PREFIX) {
                    clashes.push(plugin.at_action(name, format!("the action `{name}` is already defined elsewhere")));
                }
            }
            for helper in &plugin.helpers {
                if let Some(other) = helper_names.get(&helper.name) {
                    clashes.push(plugin.at_helper(
                        &helper.name,
                        format!("the helper `{}` is already defined by plugin `{other}`", helper.name),
                    ));
                }
            }
            let sandbox = match script_plugin::action_sandbox(self.limits.clone(), &plugin.helper_functions, caller) {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    let helper = match &e {
                        script::HelperError::Clash { name } | script::HelperError::Duplicate { name, .. } => {
                            name.clone()
                        }
                    };
                    clashes.push(plugin.at_helper(&helper, e.to_string()));
                    diagnostics.append(&mut clashes);
                    continue;
                }
            };
            if !clashes.is_empty() {
                diagnostics.append(&mut clashes);
                continue;
            }
            for helper in &plugin.helpers {
                helper_names.insert(helper.name.clone(), plugin.name.clone());
            }
            let settings = config.settings(&plugin.name);
            for def in plugin.actions.iter().cloned() {
                let name = def.info.name.clone();
                let action = ScriptAction::new(def, Arc::clone(&sandbox), settings.clone());
                if let Err(message) = registry.add(Arc::new(action)) {
                    diagnostics.push(plugin.at_action(&name, message));
                }
            }
            registry.helper_functions.extend(plugin.helper_functions.iter().cloned());
            registry.plugins.push(PluginSummary {
                name: plugin.name.clone(),
                version: plugin.version.clone(),
                description: plugin.description.clone(),
                dir: Some(plugin.dir.clone()),
                actions: plugin.actions.iter().map(|a| a.info.clone()).collect(),
                helpers: plugin.helpers.clone(),
                declared: plugin.declared.clone(),
                granted,
            });
        }
        // Helpers of different plugins must also fit together in one guard sandbox.
        if let Err(e) = script::Sandbox::with_helpers(self.limits.clone(), &registry.helper_functions) {
            diagnostics.push(Diagnostic::new(
                model::Code::BadPlugin,
                FsPath::new("<plugins>"),
                model::yaml::Span::default(),
                e.to_string(),
            ));
        }

        for (topic, def) in &config.topics {
            let name = format!("{TOPIC_PREFIX}{topic}");
            match (CompiledSchema::compile(&def.input), CompiledSchema::compile(&def.output)) {
                (Ok(input), Ok(output)) => {
                    registry.schemas.insert(name, Schemas { input: Arc::new(input), output: Arc::new(output) });
                    registry.topics.insert(topic.clone(), def.clone());
                }
                (input, output) => {
                    for e in input.err().into_iter().chain(output.err()).flatten() {
                        diagnostics.push(Diagnostic::new(
                            model::Code::BadPluginConfig,
                            FsPath::new("<configuration>"),
                            model::yaml::Span::default(),
                            format!("the schema of topic `{topic}` at `{}`: {}", e.path, e.message),
                        ));
                    }
                }
            }
        }
        if !config.topics.is_empty() {
            registry.plugins.push(PluginSummary {
                name: "external".into(),
                version: String::new(),
                description: "Topics served by external task workers.".into(),
                dir: None,
                actions: config
                    .topics
                    .iter()
                    .map(|(topic, def)| ActionInfo {
                        name: format!("{TOPIC_PREFIX}{topic}"),
                        version: String::new(),
                        description: def.description.clone(),
                        input_schema: def.input.clone(),
                        output_schema: def.output.clone(),
                        capabilities: Vec::new(),
                    })
                    .collect(),
                helpers: Vec::new(),
                declared: Vec::new(),
                granted: Vec::new(),
            });
        }

        if diagnostics.is_empty() {
            Ok(registry)
        } else {
            model::diagnostic::sort(&mut diagnostics);
            Err(Error::Invalid(diagnostics))
        }
    }
}

impl Registry {
    fn add(&mut self, action: Arc<dyn Action>) -> Result<(), String> {
        let info = action.info();
        let name = info.name.clone();
        if self.actions.contains_key(&name) {
            return Err(format!("the action `{name}` is defined twice"));
        }
        let compile = |schema: &Value, side: &str| {
            CompiledSchema::compile(schema).map_err(|errors| {
                let list: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.path, e.message)).collect();
                format!("the {side} schema of `{name}` cannot be used: {}", list.join("; "))
            })
        };
        let input = compile(&info.input_schema, "input")?;
        let output = compile(&info.output_schema, "output")?;
        self.schemas.insert(name.clone(), Schemas { input: Arc::new(input), output: Arc::new(output) });
        self.actions.insert(name, action);
        Ok(())
    }
}
