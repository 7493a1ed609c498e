//! `sopflow plugins`: the loaded plugins, their actions, schemas and granted capabilities; and
//! the registry the design-time commands check processes against.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use plugin_api::Capability;
use plugins::{PluginsConfig, Registry, Secrets};

#[derive(Debug, Args)]
pub struct PluginsArgs {
    /// The folder of script plugins (`<dir>/<name>/plugin.yaml`).
    #[arg(long, env = "SOPFLOW_PLUGINS", default_value = "plugins")]
    dir: PathBuf,
    /// The plugin configuration (grants, channels, secrets, topics); default: nothing granted.
    #[arg(long, env = "SOPFLOW_PLUGINS_CONFIG")]
    config: Option<PathBuf>,
    /// Also print each action's input and output JSON Schema.
    #[arg(long)]
    schemas: bool,
}

/// Lists the plugins.
pub fn run(args: &PluginsArgs) -> anyhow::Result<ExitCode> {
    let registry = load(&args.dir, args.config.as_deref())?;
    for plugin in registry.plugins() {
        let place = plugin.dir.as_ref().map(|d| format!(" ({})", d.display())).unwrap_or_default();
        println!("{} {}{place}: {}", plugin.name, plugin.version, plugin.description);
        for action in &plugin.actions {
            println!("  action {}: {}", action.name, action.description);
            if args.schemas {
                println!("    input:  {}", action.input_schema);
                println!("    output: {}", action.output_schema);
            }
        }
        for helper in &plugin.helpers {
            println!("  helper {}/{}: {}", helper.name, helper.arity, helper.doc);
        }
        if plugin.dir.is_some() {
            println!("  declares: {}", capabilities(&plugin.declared));
        }
        println!("  granted:  {}", capabilities(&plugin.granted));
    }
    Ok(ExitCode::SUCCESS)
}

fn capabilities(list: &[Capability]) -> String {
    if list.is_empty() {
        return "nothing".to_owned();
    }
    let words: Vec<String> = list
        .iter()
        .map(|c| match c {
            Capability::Http { host } => format!("http {host}"),
            Capability::Smtp => "smtp".to_owned(),
            Capability::Sms => "sms".to_owned(),
            Capability::Table { name } => format!("table {name}"),
            Capability::Secret { name } => format!("secret {name}"),
        })
        .collect();
    words.join(", ")
}

/// Loads the plugins in `dir` with the configuration file, if any. Secrets read from the
/// environment that are not set are left empty: listing and checking never send anything.
pub fn load(dir: &Path, config: Option<&Path>) -> anyhow::Result<Registry> {
    load_with(dir, config, None)
}

/// As [`load`], with the stock table the inventory actions use (default: one in memory).
pub fn load_with(
    dir: &Path,
    config: Option<&Path>,
    inventory: Option<std::sync::Arc<dyn plugins::inventory::InventoryStore>>,
) -> anyhow::Result<Registry> {
    let config = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            PluginsConfig::parse(path, &text)?
        }
        None => PluginsConfig::default(),
    };
    let secrets = Secrets::resolve(&config, |var| std::env::var(var).ok())
        .or_else(|_| Secrets::resolve(&config, |_| Some(String::new())))?;
    let mut builder = Registry::builder(config).secrets(secrets).plugins_dir(dir);
    if let Some(table) = inventory {
        builder = builder.inventory(table);
    }
    Ok(builder.build()?)
}

/// The registry `validate`, `test` and `graph` check against: the built-ins and the plugins
/// of `SOPFLOW_PLUGINS` (default `plugins/`). A broken plugin is reported and left out.
pub fn design_registry() -> Registry {
    let dir = std::env::var_os("SOPFLOW_PLUGINS").map_or_else(|| PathBuf::from("plugins"), PathBuf::from);
    let config = std::env::var_os("SOPFLOW_PLUGINS_CONFIG").map(PathBuf::from);
    load(&dir, config.as_deref()).unwrap_or_else(|e| {
        eprintln!("warning: the plugins are not loaded, only the built-in actions are known:\n{e:#}");
        Registry::offline()
    })
}
