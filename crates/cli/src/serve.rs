//! `sopflow serve`: the HTTP API on a database, with every valid pack of `--packs` deployed,
//! the plugins' actions installed, the publisher keys of `--trust` accepted for pack archives,
//! and (with `--demo`) a demo directory to try every task.
//!
//! Logging goes to standard error through `tracing-subscriber`, filtered by `RUST_LOG`
//! (default `info`). SIGINT or SIGTERM stops accepting requests, lets those in flight finish,
//! then shuts the runtime down (its lanes finish what is queued).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use clap::Args;
use machine::Actor;
use runtime::{Config, Runtime, VirtualClock};
use server::{AppState, Options};
use store_sqlx::AnyOrgStore;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "SOPFLOW_ADDR", default_value = "127.0.0.1:8080")]
    addr: String,
    /// The database: `sqlite://path` (created on first run), `postgres://...`, or `memory:`.
    #[arg(long = "db", env = "DATABASE_URL", default_value = store_sqlx::DEFAULT_URL)]
    db: String,
    /// Folders holding packs; every valid pack under them is deployed (identical content is a
    /// no-op). Repeat for several.
    #[arg(long, default_value = "processes")]
    packs: Vec<PathBuf>,
    /// Also create the demo dealers `demo` and `demo2`, headquarters `hq`, one user per role
    /// (password `demo`) and print their new tokens.
    #[arg(long)]
    demo: bool,
    /// Run on a virtual clock that only `POST /api/v1/test/clock` moves (for browser tests).
    #[arg(long)]
    virtual_clock: bool,
    /// The roles whose holders manage their dealer: they read all its tasks, its workload and
    /// its KPIs (comma-separated role ids).
    #[arg(long, value_delimiter = ',', default_values_t = server::DEFAULT_MANAGER_ROLES.iter().map(|r| r.to_string()))]
    manager_roles: Vec<String>,
    /// The folder of script plugins.
    #[arg(long, env = "SOPFLOW_PLUGINS", default_value = "plugins")]
    plugins: PathBuf,
    /// The plugin configuration (grants, channels, secrets, topics).
    #[arg(long, env = "SOPFLOW_PLUGINS_CONFIG")]
    plugins_config: Option<PathBuf>,
    /// A publisher key whose pack archives may be published and installed here
    /// (`ed25519:<hex>`), or a file listing such keys, one a line. Repeat for several; without
    /// any, `POST /api/v1/packs` and `POST /api/v1/installations` are refused.
    #[arg(long)]
    trust: Vec<String>,
    /// PostgreSQL: the schema to work in.
    #[arg(long)]
    pg_schema: Option<String>,
}

pub fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // A second initialisation (tests calling run twice) keeps the first subscriber.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(serve(args))
}

async fn serve(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    // The store first: the inventory actions keep their stock table in the same database.
    let store_options = store_sqlx::Options { pg_schema: args.pg_schema.clone(), ..store_sqlx::Options::default() };
    let store = store_sqlx::open(&args.db, &store_options).await.with_context(|| format!("cannot open {}", args.db))?;
    let stock = store_sqlx::AnyInventory::for_store(&store);
    let mut builder = crate::plugins::builder_with(
        &args.plugins,
        args.plugins_config.as_deref(),
        Some(Arc::new(stock.clone()) as Arc<dyn plugins::inventory::InventoryStore>),
    )?;
    // Pack folders under `--packs` may bring plugins too (`<pack>/plugins/<name>/`).
    for dir in args.packs.iter().flat_map(|p| model::find_packs(p, &model::FsFiles)) {
        let own = dir.join(packs::archive::PLUGINS_DIR);
        if own.is_dir() {
            builder = builder.plugins_dir(own);
        }
    }
    // The configured plugins must load; those of installed packs are reported and left out.
    builder.clone().build()?;
    let pack_plugins = crate::plugins::with_installed_packs(builder, model::Options::default(), &store).await?;
    let plugin_set = pack_plugins.current().map_err(|d| {
        anyhow!(
            "the plugins do not fit together:\n{}",
            d.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        )
    })?;
    let registry = Arc::clone(&plugin_set.registry);
    let model_options = (*plugin_set.model).clone();

    let trusted_keys = crate::pack::trusted(&args.trust)?;
    let loaded = server::packs::load(&args.packs, &model_options);
    for problem in &loaded.problems {
        eprintln!("warning: {problem}");
    }
    for (pack, dir) in &loaded.packs {
        registry
            .install_templates(pack, dir)
            .with_context(|| format!("cannot install the notification templates of {}", dir.display()))?;
    }
    let mut config = Config::new(args.db.clone());
    config.model = model_options;
    config.actions = (*plugin_set.actions).clone();
    config.pack_plugins = Some(pack_plugins);
    config.topics = registry.topic_schemas();
    let dispatch = &registry.config().dispatch;
    config.action_timeout = std::time::Duration::from_secs(dispatch.timeout_secs.max(1));
    config.action_concurrency = dispatch.max_concurrent.max(1);
    config.store = store_options;
    let virtual_clock = args.virtual_clock.then(|| Arc::new(VirtualClock::new(jiff::Timestamp::now())));
    if let Some(c) = &virtual_clock {
        config.clock = Arc::clone(c) as Arc<dyn runtime::Clock>;
    }
    let runtime = Runtime::with_store(store, config).await.with_context(|| format!("cannot start on {}", args.db))?;
    let outcomes = runtime.deploy(&loaded.processes, "", Actor::System).await?;
    let new = outcomes.iter().filter(|o| o.new).count();
    eprintln!("deployed {} process(es) from {} pack(s) ({new} new or changed)", outcomes.len(), loaded.packs.len());

    // Packs installed into this database (`pack install`, `POST /api/v1/installations`) bring
    // their notification templates: install them now, and after every installation.
    let on_install = server::InstallHook(Arc::new({
        let registry = Arc::clone(&registry);
        move |archive: &packs::Archive| install_templates(&registry, archive)
    }));
    // Many dealers install the same archive: read and install each one once.
    let mut seen = std::collections::HashSet::new();
    for row in store::packs::PackStore::installations(runtime.store(), None, None).await? {
        if !seen.insert(row.digest.clone()) {
            continue;
        }
        let Some(stored) = store::packs::PackStore::archive(runtime.store(), &row.digest).await? else { continue };
        let installed = packs::Archive::read(&stored.bytes).map_err(|e| e.to_string()).and_then(|a| (on_install.0)(&a));
        if let Err(e) = installed {
            eprintln!("warning: the templates of {} {} installed at {}: {e}", row.pack_id, row.version, row.dealer);
        }
    }

    let org = AnyOrgStore::for_store(runtime.store());
    if args.demo {
        let users = server::demo::ensure(&org, &loaded.catalogue, runtime.clock().now().as_millisecond()).await?;
        for dealer in server::demo::DEALERS {
            plugins::inventory::import_csv(&stock, dealer, server::demo::STOCK_CSV)
                .await
                .map_err(|e| anyhow!("the demo stock: {e}"))?;
        }
        println!("demo users (password `{}`), with new tokens:", server::demo::PASSWORD);
        for u in &users {
            let what = if u.admin { "admin".to_string() } else { u.roles.join(",") };
            println!("  {:<40} {:<6} {:<28} {}", u.id, u.organisation, what, u.token);
        }
    }

    let state = AppState::new(
        runtime.clone(),
        org,
        loaded.catalogue,
        Options {
            virtual_clock,
            trusted_keys,
            manager_roles: args.manager_roles.clone(),
            on_install: Some(on_install),
            ..Options::default()
        },
    );
    let listener =
        tokio::net::TcpListener::bind(&args.addr).await.with_context(|| format!("cannot listen on {}", args.addr))?;
    let addr = listener.local_addr()?;
    println!("sopflow is serving http://{addr} (API under /api/v1, description at /openapi.json)");
    server::serve(listener, state, shutdown_signal()).await.context("the server failed")?;
    eprintln!("stopping: finishing queued work");
    runtime.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Installs the notification templates an archive carries (`templates/*.yaml`).
fn install_templates(registry: &plugins::Registry, archive: &packs::Archive) -> Result<(), String> {
    let files: Vec<(String, String)> = archive
        .files
        .iter()
        .filter(|(path, _)| path.starts_with("templates/"))
        .map(|(path, bytes)| (path.clone(), String::from_utf8_lossy(bytes).into_owned()))
        .collect();
    let root = PathBuf::from(format!("{}-{}.sopack", archive.listing.pack, archive.listing.version));
    registry.install_templates_from(&archive.listing.pack, &root, &files).map(|_| ()).map_err(|e| e.to_string())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
