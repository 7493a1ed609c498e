//! `sopflow pack publish|pull|install`: headquarters publishes a signed archive on a server; a
//! dealer pulls it (verified against its own trusted keys before it is written) and installs it
//! into its database with its overlay, by the same path as `POST /api/v1/installations`
//! (`runtime::distribution`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use machine::Actor;
use packs::PublicKey;
use packs::archive::Archive;
use runtime::distribution::{InstallRequest, OverlayChoice, Refusal, Source};
use runtime::{Config, Runtime};
use serde_json::Value;

/// Where an archive comes from for `pack install`.
#[derive(Debug)]
pub enum ArchiveSource {
    /// A file.
    File(PathBuf),
    /// A URL (e.g. `.../api/v1/packs/<id>/<version>/archive`), with an optional token.
    Url { url: String, token: Option<String> },
}

/// What `pack install` was asked.
#[derive(Debug)]
pub struct InstallArgs<'a> {
    pub from: ArchiveSource,
    pub dealer: &'a str,
    pub overlay: Option<&'a Path>,
    pub remove_overlay: bool,
    pub force: bool,
    pub trusted: Vec<PublicKey>,
    pub database: &'a str,
    pub by: &'a str,
}

fn block_on<T>(f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}

fn api(url: &str, path: &str) -> String {
    format!("{}{path}", url.trim_end_matches('/'))
}

/// A problem document's detail and every listed error, as the text of an error.
fn problem_text(status: reqwest::StatusCode, body: &[u8]) -> String {
    let Ok(problem) = serde_json::from_slice::<Value>(body) else {
        return format!("the server answered {status}");
    };
    let mut text = format!(
        "the server answered {status}: {}",
        problem["detail"].as_str().or(problem["title"].as_str()).unwrap_or("no detail")
    );
    for e in problem["errors"].as_array().into_iter().flatten() {
        text.push_str(&format!("\n  {}: {}", e["path"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")));
    }
    text
}

/// Sends a request and answers the body of a success, or the problem as an error.
async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<(reqwest::StatusCode, Vec<u8>)> {
    let response = request.send().await.context("cannot reach the server")?;
    let status = response.status();
    let body = response.bytes().await.context("cannot read the answer")?.to_vec();
    if !status.is_success() {
        bail!("{}", problem_text(status, &body));
    }
    Ok((status, body))
}

async fn download(url: &str, token: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let mut request = reqwest::Client::new().get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    Ok(send(request).await?.1)
}

/// `pack publish FILE --url URL --token T`.
pub fn publish(file: &Path, url: &str, token: &str) -> anyhow::Result<ExitCode> {
    let bytes = fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    block_on(async {
        let request = reqwest::Client::new()
            .post(api(url, "/api/v1/packs"))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(bytes);
        let (status, body) = send(request).await?;
        let answer: Value = serde_json::from_slice(&body).context("the server's answer is not JSON")?;
        let p = &answer["publication"];
        let what = if status == reqwest::StatusCode::CREATED { "published" } else { "already published" };
        println!(
            "{what}: {} {} (digest {}, signed by {})",
            p["pack"].as_str().unwrap_or("?"),
            p["version"].as_str().unwrap_or("?"),
            p["digest"].as_str().unwrap_or("?"),
            p["signer"].as_str().unwrap_or("?")
        );
        Ok(ExitCode::SUCCESS)
    })
}

/// `pack pull ID VERSION --url URL [--token T] [-o FILE] --trust K`: the archive is written
/// only after it verifies against the trusted keys.
pub fn pull(
    id: &str,
    version: &str,
    url: &str,
    token: Option<&str>,
    output: Option<&Path>,
    trusted: &[PublicKey],
) -> anyhow::Result<ExitCode> {
    let bytes = block_on(download(&api(url, &format!("/api/v1/packs/{id}/{version}/archive")), token))?;
    let archive = Archive::parse(&bytes)?;
    let signer = archive.verify(trusted)?;
    if archive.listing.pack != id || archive.listing.version != version {
        bail!("the server sent {} {} for {id} {version}", archive.listing.pack, archive.listing.version);
    }
    let output = output.map_or_else(|| PathBuf::from(format!("{id}-{version}.sopack")), Path::to_path_buf);
    fs::write(&output, &bytes).with_context(|| format!("cannot write {}", output.display()))?;
    println!(
        "pulled {id} {version} into {} (digest {}, signed by the trusted key {signer})",
        output.display(),
        archive.digest()
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints a refusal's diagnostics, then answers it as an error.
fn refused(refusal: Refusal) -> anyhow::Error {
    let diagnostics = match &refusal {
        Refusal::Overlay(d) | Refusal::OverlayConflicts(d) => d.as_slice(),
        Refusal::Pack(packs::Error::Invalid { diagnostics }) => diagnostics.as_slice(),
        _ => &[],
    };
    for d in diagnostics {
        eprintln!("{d}");
    }
    anyhow::anyhow!("{refusal}; nothing was installed or deployed")
}

/// `pack install FILE|--from URL --dealer D [--overlay F] --trust K [--database URL]`.
pub fn install(args: InstallArgs<'_>) -> anyhow::Result<ExitCode> {
    let overlay = match (args.overlay, args.remove_overlay) {
        (Some(_), true) => bail!("give --overlay or --remove-overlay, not both"),
        (Some(path), false) => OverlayChoice::Replace {
            path: path.to_path_buf(),
            text: fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
        },
        (None, true) => OverlayChoice::Remove,
        (None, false) => OverlayChoice::Keep,
    };
    block_on(async {
        let bytes = match &args.from {
            ArchiveSource::File(path) => fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
            ArchiveSource::Url { url, token } => download(url, token.as_deref()).await?,
        };
        let mut config = Config::new(args.database);
        let store = store_sqlx::open(args.database, &config.store)
            .await
            .with_context(|| format!("cannot open the database {}", args.database))?;
        // The plugins the pack brings are checked with those of the packs installed before.
        let stock =
            Arc::new(store_sqlx::AnyInventory::for_store(&store)) as Arc<dyn plugins::inventory::InventoryStore>;
        let dir = std::env::var_os("SOPFLOW_PLUGINS").map_or_else(|| PathBuf::from("plugins"), PathBuf::from);
        let config_file = std::env::var_os("SOPFLOW_PLUGINS_CONFIG").map(PathBuf::from);
        let builder = crate::plugins::builder_with(&dir, config_file.as_deref(), Some(stock))?;
        let host = crate::plugins::with_installed_packs(builder, model::Options::default(), &store).await?;
        let set = host.current().map_err(|d| {
            anyhow::anyhow!(
                "the plugins do not fit together:\n{}",
                d.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
            )
        })?;
        config.model = (*set.model).clone();
        config.actions = (*set.actions).clone();
        config.pack_plugins = Some(host);
        // Installing deploys definitions; firing timers or performing effects is `serve`'s work.
        config.run_timers = false;
        config.run_outbox = false;
        let runtime = Runtime::with_store(store, config)
            .await
            .with_context(|| format!("cannot open the database {}", args.database))?;
        let request = InstallRequest {
            dealer: args.dealer.to_string(),
            source: Source::Archive(bytes),
            overlay,
            force: args.force,
            by: Actor::User { id: args.by.to_string(), role: None },
        };
        let outcome = runtime.install_pack(request, &args.trusted).await;
        runtime.shutdown().await;
        let installed = outcome?.map_err(refused)?;
        for w in &installed.warnings {
            eprintln!("{w}");
        }
        let row = &installed.row;
        println!(
            "{} {} {} at dealer {} (digest {}, signed by {})",
            row.action, row.pack_id, row.version, row.dealer, row.digest, row.signer
        );
        for d in &installed.deployed {
            println!("  {:<28} {} {}", d.process_id, d.hash, if d.new { "deployed" } else { "already current" });
        }
        Ok(ExitCode::SUCCESS)
    })
}
