//! Script plugins that packs bring: `plugins/<name>/plugin.yaml` and its Rhai scripts inside a
//! pack archive, loaded when the engine starts (for every pack installed in its database) and
//! when a pack is published or installed while it runs.
//!
//! The engine's plugins are then the configured ones (the built-ins, `plugins/` folders) plus
//! those of every installed pack, each pack by its id: installing a pack again (an upgrade)
//! replaces its plugins, and the last installed version's plugins are the ones in use for all
//! dealers. A new set is assembled from a kept [`plugins::RegistryBuilder`], so the sandbox,
//! the capabilities the configuration grants and the secrets are those of the configured
//! plugins; nothing in an archive can grant itself more.
//!
//! The set is checked before anything is recorded: a broken plugin refuses the publication or
//! installation with every problem at its `file:line:col` inside the archive, and the engine
//! keeps the plugins it had. Once the installation is recorded the runtime swaps in the new
//! action registry and guard sandbox ([`Runtime::use_plugins`](crate::Runtime::use_plugins));
//! definitions compiled earlier keep the sandbox they were compiled with.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use model::Diagnostic;
use packs::archive::{Archive, PLUGINS_DIR};
use plugins::script_plugin::{self, ScriptPlugin};

use store::packs::{InstallationRow, PackStore};
use store_sqlx::AnyStore;

use crate::actions::ActionRegistry;
use crate::distribution::archive_root;

/// A problem of the set as a whole (not of one file).
fn whole(problem: impl ToString) -> Vec<Diagnostic> {
    vec![Diagnostic::new(
        model::Code::BadPlugin,
        Path::new("<plugins>"),
        model::yaml::Span::default(),
        problem.to_string(),
    )]
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// A complete set of plugins, ready for the runtime.
#[derive(Clone)]
pub struct PluginSet {
    /// The plugins' registry (for listings and schemas).
    pub registry: Arc<plugins::Registry>,
    /// The actions the outbox may invoke.
    pub actions: Arc<ActionRegistry>,
    /// How definitions are compiled with these plugins: their action names and guard helpers.
    pub model: Arc<model::Options>,
}

impl std::fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSet").field("actions", &self.actions).finish_non_exhaustive()
    }
}

/// The configured plugins and those of the installed packs.
pub struct PackPlugins {
    base: plugins::RegistryBuilder,
    model: model::Options,
    by_pack: Mutex<BTreeMap<String, Vec<ScriptPlugin>>>,
    /// Held while a new set is kept and put in use.
    swap: Mutex<()>,
}

impl std::fmt::Debug for PackPlugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let packs: Vec<String> = self.lock().keys().cloned().collect();
        f.debug_struct("PackPlugins").field("packs", &packs).finish_non_exhaustive()
    }
}

impl PackPlugins {
    /// The configured plugins (`base`, built again for every set) and how definitions are
    /// compiled apart from plugins (`model`: its limits; its actions and sandbox are replaced).
    pub fn new(base: plugins::RegistryBuilder, model: model::Options) -> PackPlugins {
        PackPlugins { base: base.shared(), model, by_pack: Mutex::new(BTreeMap::new()), swap: Mutex::new(()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<ScriptPlugin>>> {
        self.by_pack.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The script plugins in an archive (none when it has no `plugins/` folder), each problem
    /// at its `file:line:col` under the archive's name.
    pub fn read(&self, archive: &Archive, root: &Path) -> Result<Vec<ScriptPlugin>, Vec<Diagnostic>> {
        let prefix = format!("{PLUGINS_DIR}/");
        if !archive.files.keys().any(|p| p.starts_with(&prefix)) {
            return Ok(Vec::new());
        }
        let files = archive.mem_files(root);
        let (plugins, problems) = script_plugin::load_dir_from(&root.join(PLUGINS_DIR), &files, self.base.limits_of());
        if problems.is_empty() { Ok(plugins) } else { Err(problems) }
    }

    /// The set in use now.
    pub fn current(&self) -> Result<PluginSet, Vec<Diagnostic>> {
        let all: Vec<ScriptPlugin> = self.lock().values().flatten().cloned().collect();
        self.assemble(all)
    }

    /// The set the engine would have with `plugins` as the plugins of `pack` (replacing the
    /// pack's earlier ones): what a publication or an installation is checked with. Nothing
    /// is kept; [`PackPlugins::keep`] does that once the installation is recorded.
    pub fn with(&self, pack: &str, plugins: &[ScriptPlugin]) -> Result<PluginSet, Vec<Diagnostic>> {
        let all: Vec<ScriptPlugin> = {
            let by_pack = self.lock();
            by_pack
                .iter()
                .filter(|(id, _)| id.as_str() != pack)
                .flat_map(|(_, p)| p.iter().cloned())
                .chain(plugins.iter().cloned())
                .collect()
        };
        self.assemble(all)
    }

    /// Makes `plugins` the plugins of `pack` and hands the resulting set to `put_in_use`, which
    /// swaps it in. Two installations at once put their sets in use in the order they kept
    /// them, so the last set in use holds both.
    pub fn keep(
        &self,
        pack: &str,
        plugins: Vec<ScriptPlugin>,
        put_in_use: impl FnOnce(&PluginSet),
    ) -> Result<PluginSet, Vec<Diagnostic>> {
        let _in_order = self.swap.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = {
            let mut by_pack = self.lock();
            if plugins.is_empty() { by_pack.remove(pack) } else { by_pack.insert(pack.to_owned(), plugins) }
        };
        match self.current() {
            Ok(set) => {
                put_in_use(&set);
                Ok(set)
            }
            Err(problems) => {
                // Checked with `with` before; another installation in between may clash. Keep
                // what worked.
                let mut by_pack = self.lock();
                match previous {
                    Some(p) => by_pack.insert(pack.to_owned(), p),
                    None => by_pack.remove(pack),
                };
                Err(problems)
            }
        }
    }

    /// Loads the plugins of every pack installed in `store` (each pack's last installed
    /// archive), as at the engine's start. A pack whose plugins no longer load (the engine's
    /// configuration changed, another pack's plugin clashes) is left out; each such problem is
    /// answered as a message.
    pub async fn restore(&self, store: &AnyStore) -> Result<Vec<String>, store::Error> {
        let mut last: BTreeMap<String, InstallationRow> = BTreeMap::new();
        for row in PackStore::installations(store, None, None).await? {
            match last.get(&row.pack_id) {
                Some(kept) if kept.seq >= row.seq => {}
                _ => {
                    last.insert(row.pack_id.clone(), row);
                }
            }
        }
        let mut problems = Vec::new();
        for (pack, row) in last {
            let Some(stored) = PackStore::archive(store, &row.digest).await? else { continue };
            let loaded = Archive::read(&stored.bytes)
                .map_err(|e| e.to_string())
                .and_then(|a| self.read(&a, &archive_root(&a)).map_err(|d| render(&d)))
                .and_then(|plugins| self.keep(&pack, plugins, |_| {}).map(|_| ()).map_err(|d| render(&d)));
            if let Err(e) = loaded {
                problems.push(format!(
                    "the plugins of {pack} {} (installed at {}) are not loaded:\n{e}",
                    row.version, row.dealer
                ));
            }
        }
        Ok(problems)
    }

    /// Whether `pack` brought plugins.
    pub fn has(&self, pack: &str) -> bool {
        self.lock().contains_key(pack)
    }

    fn assemble(&self, plugins: Vec<ScriptPlugin>) -> Result<PluginSet, Vec<Diagnostic>> {
        let registry = self.base.clone().script_plugins(plugins).build().map_err(|e| match e {
            plugins::Error::Invalid(d) => d,
            other => whole(other),
        })?;
        let mut actions = ActionRegistry::with_builtins();
        for action in registry.actions().values() {
            actions.register(Arc::clone(action)).map_err(whole)?;
        }
        let sandbox = registry.guard_sandbox(self.model.sandbox.limits().clone()).map_err(whole)?;
        let model =
            model::Options { actions: Some(registry.action_names()), sandbox: Arc::new(sandbox), ..self.model.clone() };
        Ok(PluginSet { registry: Arc::new(registry), actions: Arc::new(actions), model: Arc::new(model) })
    }
}
