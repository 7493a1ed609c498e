//! `sopflow plugins`: the loaded plugins, their actions, schemas and granted capabilities; and
//! the registry the design-time commands check processes against.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use plugin_api::Capability;
use plugins::{PluginsConfig, Registry, RegistryBuilder, Secrets};
use runtime::PackPlugins;

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
    /// Also list the plugins of the packs installed in this database (what `serve` on it loads).
    #[arg(long)]
    db: Option<String>,
}

/// Lists the plugins.
pub fn run(args: &PluginsArgs) -> anyhow::Result<ExitCode> {
    let registry = match &args.db {
        None => Arc::new(load(&args.dir, args.config.as_deref())?),
        Some(db) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?
            .block_on(async {
                let options = store_sqlx::Options { max_connections: 1, migrate: false, ..Default::default() };
                let store = store_sqlx::open(db, &options).await.with_context(|| format!("cannot open {db}"))?;
                let builder = builder_with(&args.dir, args.config.as_deref(), None)?;
                let host = with_installed_packs(builder, model::Options::default(), &store).await?;
                let set = host.current().map_err(|d| anyhow::anyhow!("{}", render(&d)))?;
                store.close().await;
                anyhow::Ok(set.registry)
            })?,
    };
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
    inventory: Option<Arc<dyn plugins::inventory::InventoryStore>>,
) -> anyhow::Result<Registry> {
    Ok(builder_with(dir, config, inventory)?.build()?)
}

/// What [`load_with`] builds, kept to be built again with the plugins packs bring.
pub fn builder_with(
    dir: &Path,
    config: Option<&Path>,
    inventory: Option<Arc<dyn plugins::inventory::InventoryStore>>,
) -> anyhow::Result<RegistryBuilder> {
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
    Ok(builder)
}

/// The configured plugins with those of every pack installed in `store`, as the runtime keeps
/// them. A pack whose plugins no longer load is reported and left out.
pub async fn with_installed_packs(
    builder: RegistryBuilder,
    model: model::Options,
    store: &runtime::AnyStore,
) -> anyhow::Result<Arc<PackPlugins>> {
    let host = Arc::new(PackPlugins::new(builder, model));
    for problem in host.restore(store).await? {
        eprintln!("warning: {problem}");
    }
    Ok(host)
}

fn render(diagnostics: &[model::Diagnostic]) -> String {
    diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// Load options for the design-time commands with the plugins an archive brings (which its
/// processes may use): the design registry's, plus the archive's.
pub fn options_for_archive(archive: &packs::Archive, root: &Path) -> anyhow::Result<model::Options> {
    let host = PackPlugins::new(design_base().0, model::Options::default());
    let plugins = host.read(archive, root).map_err(|d| anyhow::anyhow!("{}", render(&d)))?;
    let set = host.with(&archive.listing.pack, &plugins).map_err(|d| anyhow::anyhow!("{}", render(&d)))?;
    Ok((*set.model).clone())
}

/// The registry `validate`, `test` and `graph` check against: the built-ins, the plugins of
/// `SOPFLOW_PLUGINS` (default `plugins/`) and, given a pack folder, the plugins it brings
/// (`<pack>/plugins/`), with the problems of the pack's plugins (which are then left out). A
/// broken configured plugin is reported and leaves only the built-ins.
pub fn design_registry(pack: Option<&Path>) -> (Registry, Vec<model::Diagnostic>) {
    let (base, configured) = design_base();
    let own = pack.map(|p| p.join(packs::archive::PLUGINS_DIR)).filter(|d| d.is_dir() && !same_dir(d, &configured));
    let mut problems = Vec::new();
    if let Some(own) = own {
        match base.clone().plugins_dir(own).build() {
            Ok(registry) => return (registry, problems),
            Err(plugins::Error::Invalid(d)) => problems = d,
            Err(e) => eprintln!("warning: {e}"),
        }
    }
    let registry = base.build().unwrap_or_else(|e| {
        eprintln!("warning: the plugins are not loaded, only the built-in actions are known:\n{e:#}");
        Registry::offline()
    });
    (registry, problems)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// The configured plugins (`SOPFLOW_PLUGINS`, `SOPFLOW_PLUGINS_CONFIG`) and their folder.
fn design_base() -> (RegistryBuilder, PathBuf) {
    let dir = std::env::var_os("SOPFLOW_PLUGINS").map_or_else(|| PathBuf::from("plugins"), PathBuf::from);
    let config = std::env::var_os("SOPFLOW_PLUGINS_CONFIG").map(PathBuf::from);
    let builder = builder_with(&dir, config.as_deref(), None).unwrap_or_else(|e| {
        eprintln!("warning: the plugin configuration is not used:\n{e:#}");
        Registry::builder(PluginsConfig::default()).plugins_dir(&dir)
    });
    (builder, dir)
}
