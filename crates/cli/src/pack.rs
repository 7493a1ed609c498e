//! `sopflow pack`: headquarters builds, signs, inspects and publishes pack archives; a dealer
//! pulls and verifies them, resolves its overlay, sees its deviations, checks an upgrade and
//! installs it (the distribution commands are in `distribute`).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use model::{Diagnostic, FsFiles};
use packs::archive::{Archive, EXTENSION};
use packs::{OverlayFile, Pack, PublicKey, SecretKey};

use crate::design::{load_options, load_options_checked, load_options_for};
use crate::distribute::{self, ArchiveSource, InstallArgs};
use crate::plugins::options_for_archive;

#[derive(Debug, Args)]
pub struct PackArgs {
    #[command(subcommand)]
    command: PackCommand,
}

#[derive(Debug, Subcommand)]
enum PackCommand {
    /// Validate a pack folder and build it into one archive (signed, if a key is given).
    Build {
        /// The pack folder (holding pack.yaml).
        dir: PathBuf,
        /// The archive to write (default: <pack>-<version>.sopack).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Sign with this key file (from `sopflow pack keygen`).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Make a new publisher signing key (Ed25519) and print its public key.
    Keygen {
        /// The key file to write (readable by its owner only).
        #[arg(short, long)]
        output: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Sign an archive with the publisher's key.
    Sign {
        /// The archive.
        archive: PathBuf,
        /// The key file.
        #[arg(long)]
        key: PathBuf,
        /// Write the signed archive here instead of replacing the original.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check that an archive is unaltered and signed by a trusted publisher key.
    Verify {
        /// The archive.
        archive: PathBuf,
        /// A trusted public key (`ed25519:<hex>`) or a file listing them, one a line.
        #[arg(long, required = true)]
        trust: Vec<String>,
    },
    /// Show an archive's manifest, contents, digest and signer.
    Inspect {
        /// The archive.
        archive: PathBuf,
    },
    /// Print a dealer's effective processes: the pack with the overlay applied.
    Resolve {
        /// The pack: a folder or an archive.
        pack: PathBuf,
        /// The dealer's overlay.
        #[arg(long)]
        overlay: PathBuf,
        /// Only this process.
        #[arg(long)]
        process: Option<String>,
        /// Print JSON instead of YAML.
        #[arg(long)]
        json: bool,
        /// For an archive: the trusted publisher keys to verify it against.
        #[arg(long)]
        trust: Vec<String>,
    },
    /// List every dealer's deviations from the standard, with a severity.
    Diff {
        /// The standard pack: a folder or an archive.
        pack: PathBuf,
        /// A dealer's overlay (repeat for several dealers).
        #[arg(long = "overlay", required = true)]
        overlays: Vec<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// For an archive: the trusted publisher keys to verify it against.
        #[arg(long)]
        trust: Vec<String>,
    },
    /// Publish a signed archive on a server (a headquarters administrator's token).
    Publish {
        /// The archive.
        archive: PathBuf,
        /// The server (e.g. `https://sopflow.example.com`).
        #[arg(long, env = "SOPFLOW_URL")]
        url: String,
        /// An API token.
        #[arg(long, env = "SOPFLOW_TOKEN")]
        token: String,
    },
    /// Download a published archive; it is written only if it verifies against `--trust`.
    Pull {
        /// The pack id.
        id: String,
        /// The version.
        version: String,
        /// The server.
        #[arg(long, env = "SOPFLOW_URL")]
        url: String,
        /// An API token.
        #[arg(long, env = "SOPFLOW_TOKEN")]
        token: Option<String>,
        /// The file to write (default: <id>-<version>.sopack).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// A trusted public key (`ed25519:<hex>`) or a file listing them, one a line.
        #[arg(long, required = true)]
        trust: Vec<String>,
    },
    /// Install an archive for a dealer into a database: verify it, apply the dealer's overlay
    /// (or re-apply the installed one), record the installation in the dealer's audit trail and
    /// deploy the effective processes. Running instances stay on their version.
    Install {
        /// The archive file.
        #[arg(required_unless_present = "from", conflicts_with = "from")]
        archive: Option<PathBuf>,
        /// Download the archive from this URL instead (e.g. `.../api/v1/packs/<id>/<version>/archive`).
        #[arg(long)]
        from: Option<String>,
        /// An API token for `--from`.
        #[arg(long, env = "SOPFLOW_TOKEN")]
        token: Option<String>,
        /// The dealer.
        #[arg(long)]
        dealer: String,
        /// The dealer's overlay; without it, the overlay installed now is kept.
        #[arg(long)]
        overlay: Option<PathBuf>,
        /// Install the standard without any overlay.
        #[arg(long)]
        remove_overlay: bool,
        /// Allow installing a version older than the installed one.
        #[arg(long)]
        force: bool,
        /// A trusted public key (`ed25519:<hex>`) or a file listing them, one a line.
        #[arg(long, required = true)]
        trust: Vec<String>,
        /// The database: `sqlite://path`, `postgres://...`.
        #[arg(long, env = "DATABASE_URL", default_value = store_sqlx::DEFAULT_URL)]
        database: String,
        /// Who installs (recorded in the dealer's audit trail).
        #[arg(long, env = "SOPFLOW_USER", default_value = "cli")]
        by: String,
    },
    /// Check what installing a new version over the installed one would do, with an overlay.
    UpgradeCheck {
        /// The installed pack: a folder or an archive.
        installed: PathBuf,
        /// The offered pack: a folder or an archive.
        offered: PathBuf,
        /// The dealer's overlay.
        #[arg(long)]
        overlay: Option<PathBuf>,
        /// Allow a downgrade.
        #[arg(long)]
        force: bool,
        /// For archives: the trusted publisher keys to verify them against.
        #[arg(long)]
        trust: Vec<String>,
    },
}

pub fn run(args: &PackArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        PackCommand::Build { dir, output, key } => build(dir, output.as_deref(), key.as_deref()),
        PackCommand::Keygen { output, force } => keygen(output, *force),
        PackCommand::Sign { archive, key, output } => sign(archive, key, output.as_deref()),
        PackCommand::Verify { archive, trust } => verify(archive, trust),
        PackCommand::Inspect { archive } => inspect(archive),
        PackCommand::Resolve { pack, overlay, process, json, trust } => {
            resolve(pack, overlay, process.as_deref(), *json, trust)
        }
        PackCommand::Diff { pack, overlays, json, trust } => diff(pack, overlays, *json, trust),
        PackCommand::UpgradeCheck { installed, offered, overlay, force, trust } => {
            upgrade_check(installed, offered, overlay.as_deref(), *force, trust)
        }
        PackCommand::Publish { archive, url, token } => distribute::publish(archive, url, token),
        PackCommand::Pull { id, version, url, token, output, trust } => {
            distribute::pull(id, version, url, token.as_deref(), output.as_deref(), &trusted(trust)?)
        }
        PackCommand::Install { archive, from, token, dealer, overlay, remove_overlay, force, trust, database, by } => {
            let from = match (archive, from) {
                (Some(file), _) => ArchiveSource::File(file.clone()),
                (None, Some(url)) => ArchiveSource::Url { url: url.clone(), token: token.clone() },
                (None, None) => bail!("give an archive file or --from URL"),
            };
            distribute::install(InstallArgs {
                from,
                dealer,
                overlay: overlay.as_deref(),
                remove_overlay: *remove_overlay,
                force: *force,
                trusted: trusted(trust)?,
                database,
                by,
            })
        }
    }
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprintln!("{d}");
    }
}

/// A library error, with the diagnostics it carries printed first.
fn fail(e: packs::Error) -> anyhow::Error {
    if let packs::Error::Invalid { diagnostics } = &e {
        print_diagnostics(diagnostics);
        return anyhow::anyhow!("{} problem(s) found", diagnostics.len());
    }
    anyhow::Error::new(e)
}

fn read_key(path: &Path) -> anyhow::Result<SecretKey> {
    let text = fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    SecretKey::from_file_text(&text).map_err(|reason| fail(packs::Error::BadKey { what: "signing", reason }))
}

/// Trusted keys from `--trust` values: a key itself, or a file listing keys.
pub(crate) fn trusted(values: &[String]) -> anyhow::Result<Vec<PublicKey>> {
    let mut out = Vec::new();
    for v in values {
        let keys = if v.starts_with("ed25519:") {
            PublicKey::parse_list(v)
        } else {
            let text = fs::read_to_string(v).with_context(|| format!("cannot read the trust list {v}"))?;
            PublicKey::parse_list(&text)
        };
        out.extend(keys.map_err(|reason| fail(packs::Error::BadKey { what: "public", reason }))?);
    }
    Ok(out)
}

fn read_archive(path: &Path) -> anyhow::Result<Archive> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Archive::parse(&bytes).map_err(fail)
}

fn write_archive(archive: &Archive, path: &Path) -> anyhow::Result<()> {
    let bytes = archive.to_bytes().map_err(fail)?;
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// A pack from a folder or an archive. An archive is always checked against its listing; with
/// `--trust` keys, its signature too.
fn load(path: &Path, trust: &[String]) -> anyhow::Result<Pack> {
    if path.is_dir() {
        return Pack::load(path, &FsFiles, &load_options_for(Some(path))).map_err(fail);
    }
    let archive = read_archive(path)?;
    if trust.is_empty() {
        archive.check_integrity().map_err(fail)?;
        eprintln!("note: {}: the signature was not checked (give --trust to check it)", path.display());
    } else {
        archive.verify(&trusted(trust)?).map_err(fail)?;
    }
    archive.load(path, &options_for_archive(&archive, path)?).map_err(fail)
}

fn read_overlay(path: &Path) -> anyhow::Result<OverlayFile> {
    OverlayFile::read(path).map_err(fail)
}

fn build(dir: &Path, output: Option<&Path>, key: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (options, plugin_problems) = load_options_checked(Some(dir));
    if !plugin_problems.is_empty() {
        for d in &plugin_problems {
            eprintln!("{d}");
        }
        anyhow::bail!("the pack's plugins have {} problem(s); nothing was built", plugin_problems.len());
    }
    let mut archive = Archive::build(dir, &FsFiles, &options).map_err(fail)?;
    if let Some(key) = key {
        archive.sign(&read_key(key)?).map_err(fail)?;
    }
    let default = PathBuf::from(format!("{}-{}.{EXTENSION}", archive.listing.pack, archive.listing.version));
    let path = output.map_or(default, Path::to_path_buf);
    write_archive(&archive, &path)?;
    println!(
        "built {} ({} {}, {} files), digest {}",
        path.display(),
        archive.listing.pack,
        archive.listing.version,
        archive.files.len(),
        archive.digest()
    );
    match &archive.signature {
        Some(sig) => println!("signed by {}", sig.public_key),
        None => println!("not signed yet: run `sopflow pack sign {} --key KEY`", path.display()),
    }
    Ok(ExitCode::SUCCESS)
}

fn keygen(output: &Path, force: bool) -> anyhow::Result<ExitCode> {
    let key = SecretKey::generate().map_err(|reason| fail(packs::Error::BadKey { what: "signing", reason }))?;
    let mut options = fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(output)
        .with_context(|| format!("cannot create {} (it may exist already: use --force)", output.display()))?;
    file.write_all(key.to_file_text().as_bytes())?;
    #[cfg(unix)]
    {
        // An existing file keeps its mode when overwritten; make sure only its owner can read it.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(output, fs::Permissions::from_mode(0o600))?;
    }
    println!("wrote the signing key {} (keep it secret)", output.display());
    println!("public key: {}", key.public());
    Ok(ExitCode::SUCCESS)
}

fn sign(path: &Path, key: &Path, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    let mut archive = read_archive(path)?;
    let key = read_key(key)?;
    archive.sign(&key).map_err(fail)?;
    let out = output.unwrap_or(path);
    write_archive(&archive, out)?;
    println!("signed {} by {}", out.display(), key.public());
    Ok(ExitCode::SUCCESS)
}

fn verify(path: &Path, trust: &[String]) -> anyhow::Result<ExitCode> {
    let archive = read_archive(path)?;
    let signer = archive.verify(&trusted(trust)?).map_err(fail)?;
    // A signed archive may still hold an invalid pack (built by other means); load it too.
    let pack = archive.load(path, &options_for_archive(&archive, path)?).map_err(fail)?;
    println!(
        "ok: {} is {} {}, unaltered (digest {}), signed by the trusted key {signer}; {} process(es)",
        path.display(),
        pack.id(),
        pack.version,
        archive.digest(),
        pack.processes.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn inspect(path: &Path) -> anyhow::Result<ExitCode> {
    let archive = read_archive(path)?;
    let l = &archive.listing;
    println!("pack      {} {}", l.pack, l.version);
    match options_for_archive(&archive, path).and_then(|o| archive.load(path, &o).map_err(fail)) {
        Ok(pack) => {
            let m = &pack.manifest;
            println!("title     {} / {}", m.title.text("zh"), m.title.text("en"));
            if let Some(p) = &m.publisher {
                println!("publisher {p}");
            }
            if let Some(e) = &m.min_engine {
                println!("engine    >= {e}");
            }
            let ids: Vec<String> = pack.processes.iter().map(|p| p.id.clone()).collect();
            println!("processes {}", ids.join(", "));
        }
        Err(e) => println!("content   does not load: {e}"),
    }
    println!("digest    {}", l.digest);
    match archive.check_integrity() {
        Ok(()) => println!("integrity the files match the listing"),
        Err(e) => println!("integrity FAILED: {e}"),
    }
    match archive.signer() {
        Ok(key) => println!("signer    {key} (valid signature; check trust with `sopflow pack verify`)"),
        Err(e) => println!("signer    {e}"),
    }
    println!("files");
    for e in &l.files {
        println!("  {:>8}  {}  {}", e.size, &e.sha256[..12.min(e.sha256.len())], e.path);
    }
    Ok(ExitCode::SUCCESS)
}

fn resolve(pack: &Path, overlay: &Path, only: Option<&str>, json: bool, trust: &[String]) -> anyhow::Result<ExitCode> {
    let pack = load(pack, trust)?;
    let file = read_overlay(overlay)?;
    let r = packs::resolve(&pack, &file, &load_options());
    print_diagnostics(&r.diagnostics);
    if r.has_errors() {
        bail!("the overlay does not apply; nothing was resolved");
    }
    if let Some(id) = only
        && r.process(id).is_none()
    {
        bail!("the pack has no process `{id}`");
    }
    let chosen: Vec<_> = r.processes.iter().filter(|p| only.is_none_or(|id| p.id == id)).collect();
    if json {
        let processes: Vec<serde_json::Value> = chosen
            .iter()
            .map(|p| {
                serde_json::json!({
                    "process": p.id,
                    "hash": p.hash.0,
                    "changed": r.changed.contains(&p.id),
                    "document": p.document,
                })
            })
            .collect();
        let out = serde_json::json!({
            "dealer": r.dealer, "pack": r.pack, "version": r.version.to_string(), "processes": processes,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for p in chosen {
            let state = if r.changed.contains(&p.id) { "adapted by the overlay" } else { "as the standard" };
            println!("# {} for {}: {state}, hash {}", p.id, r.dealer, p.hash);
            println!("---");
            print!("{}", packs::resolve::to_yaml(&p.document));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn diff(pack: &Path, overlays: &[PathBuf], json: bool, trust: &[String]) -> anyhow::Result<ExitCode> {
    let pack = load(pack, trust)?;
    let files = overlays.iter().map(|p| read_overlay(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut broken = 0;
    for file in &files {
        let r = packs::resolve(&pack, file, &load_options());
        print_diagnostics(&r.diagnostics);
        broken += usize::from(r.has_errors());
    }
    let deviations = packs::diff(&pack, &files);
    if json {
        println!("{}", serde_json::to_string_pretty(&deviations)?);
    } else {
        let dealers: Vec<String> = files.iter().map(|f| f.dealer().to_string()).collect();
        print!("{}", packs::diff::render_table(&pack, &dealers, &deviations));
    }
    if broken > 0 {
        eprintln!("{broken} overlay(s) do not apply; their deviations above leave out what does not fit the pack");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn upgrade_check(
    installed: &Path,
    offered: &Path,
    overlay: Option<&Path>,
    force: bool,
    trust: &[String],
) -> anyhow::Result<ExitCode> {
    let old = load(installed, trust)?;
    let new = load(offered, trust)?;
    let file = overlay.map(read_overlay).transpose()?;
    let plan = packs::upgrade(&old, &new, file.as_ref(), force, &load_options()).map_err(fail)?;
    let who = plan.dealer.as_deref().map(|d| format!(" for {d}")).unwrap_or_default();
    println!("upgrade {} {} -> {}{who}", plan.pack, plan.from, plan.to);
    print_diagnostics(&plan.warnings);
    if !plan.is_deployable() {
        print_diagnostics(&plan.conflicts);
        println!("{} conflict(s): nothing can be deployed until the overlay is fixed", plan.conflicts.len());
        return Ok(ExitCode::FAILURE);
    }
    for change in &plan.changes {
        let line = match change {
            packs::upgrade::ProcessChange::Added { process, hash } => format!("added     {process} {}", short(hash)),
            packs::upgrade::ProcessChange::Removed { process, hash } => format!("removed   {process} {}", short(hash)),
            packs::upgrade::ProcessChange::Changed { process, from, to } => {
                format!("changed   {process} {} -> {}", short(from), short(to))
            }
            packs::upgrade::ProcessChange::Unchanged { process, hash } => {
                format!("unchanged {process} {}", short(hash))
            }
        };
        println!("  {line}");
    }
    for (process, map) in &plan.migrations {
        let moves: Vec<String> = map.iter().map(|(a, b)| format!("{a} -> {b}")).collect();
        println!("  migration map for {process}: {}", moves.join(", "));
    }
    println!("running instances stay on the version they started with");
    Ok(ExitCode::SUCCESS)
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
