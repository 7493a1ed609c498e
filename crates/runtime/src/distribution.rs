//! Pack distribution on a running engine: headquarters publishes a signed archive, a dealer
//! installs a published (or received) archive with its overlay, and headquarters reads every
//! dealer's deviations from the standard. The HTTP server and the `sopflow pack` commands both
//! call these functions, so a pack is installed the same way whichever door it comes through.
//!
//! The decisions are `packs`' (pure): an archive is used only after its contents match the
//! signed listing and its signer is trusted; an overlay that no longer applies is refused with
//! every conflict at its `file:line:col`. This module loads what is installed from the store,
//! records, and deploys, in this order:
//!
//! 1. load the script plugins the archive brings under `plugins/` with the engine's other
//!    plugins ([`crate::pack_plugins`]) and plan with [`packs::install()`] under them: a
//!    refusal here (a broken plugin, an invalid pack, an overlay that does not apply) writes
//!    nothing and deploys nothing;
//! 2. record the installation with its audit entry (one transaction), refused when someone else
//!    installed the pack at the dealer in between;
//! 3. swap in the plugins, then deploy the effective processes for the dealer
//!    ([`Runtime::deploy`]; running instances stay on the definition they started on).
//!
//! Recording before deploying means two concurrent installations never both deploy. If the
//! deployment fails after the record (the database went away), installing the same archive
//! again deploys what is missing: deploying identical content is a no-op.
//!
//! Deliberately absent: who may publish or install (the server's `authz`), and where trusted
//! keys come from (the server's or the command's `--trust`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use machine::Actor;
use model::Diagnostic;
use packs::archive::{Archive, EXTENSION, PLUGINS_DIR};
use packs::upgrade::ProcessChange;
use packs::{Deviation, OverlayFile, Pack, PublicKey};
use serde_json::json;
use sha2::{Digest, Sha256};
use store::audit::Draft;
use store::packs::{ArchiveRow, InstallationRow, PackStore, PublicationRow, Published, Recorded};

use crate::clock::ms;
use crate::{DeployOutcome, Error, PluginSet, Runtime};
use plugins::script_plugin::ScriptPlugin;

/// Why a publication or an installation was refused. Nothing was stored or deployed.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No publisher key is trusted, so no archive can be accepted.
    #[error("no publisher key is trusted here; start the server with `--trust ed25519:<hex>`")]
    NoTrustedKeys,
    /// The archive, its signature, the pack or the overlay was refused (see [`packs::Error`]).
    #[error(transparent)]
    Pack(packs::Error),
    /// The overlay file cannot be read.
    #[error("the overlay has {} problem(s)", .0.len())]
    Overlay(Vec<Diagnostic>),
    /// The overlay does not apply to this version: each conflict at its `file:line:col`.
    #[error("the overlay does not apply: {} conflict(s); nothing was installed or deployed", .0.len())]
    OverlayConflicts(Vec<Diagnostic>),
    /// The overlay names another dealer.
    #[error("the overlay is written for dealer `{overlay}`, not for `{dealer}`")]
    OverlayOfOtherDealer {
        /// The dealer the overlay names.
        overlay: String,
        /// The dealer installing.
        dealer: String,
    },
    /// The version was published before with another archive.
    #[error("{pack} {version} is already published with another archive (digest {digest})")]
    VersionTaken {
        /// The pack.
        pack: String,
        /// The version.
        version: String,
        /// The digest of the archive published first.
        digest: String,
    },
    /// No such version is published.
    #[error("{pack} {version} is not published")]
    NotPublished {
        /// The pack.
        pack: String,
        /// The version.
        version: String,
    },
    /// The version installed now cannot be read again (its archive is missing or no longer
    /// loads under this engine's rules), so an upgrade from it cannot be planned.
    #[error("the installed version of `{pack}` cannot be read again: {reason}")]
    InstalledUnreadable {
        /// The pack.
        pack: String,
        /// Why.
        reason: String,
    },
    /// Someone installed the pack at the dealer while this installation was planned.
    #[error("`{pack}` was installed at `{dealer}` by someone else meanwhile; try again")]
    Concurrent {
        /// The dealer.
        dealer: String,
        /// The pack.
        pack: String,
    },
}

/// What a function of this module answers: done, refused (a value), or a failure of the
/// engine or its database.
pub type Outcome<T> = Result<Result<T, Refusal>, Error>;

/// A publication, and whether this call made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The stored publication.
    pub row: PublicationRow,
    /// `false` when the same archive was published before (nothing was written).
    pub new: bool,
}

/// Where the archive to install comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A version published on this server.
    Published {
        /// The pack.
        pack: String,
        /// The version.
        version: String,
    },
    /// An archive received some other way (e.g. pulled from headquarters).
    Archive(Vec<u8>),
}

/// What to do with the dealer's overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayChoice {
    /// Keep the overlay installed now, if any (an upgrade re-applies it).
    Keep,
    /// Install this overlay; `path` is what its diagnostics show.
    Replace {
        /// The file name shown in diagnostics.
        path: PathBuf,
        /// The YAML text.
        text: String,
    },
    /// Install the standard without an overlay.
    Remove,
}

/// Installing a pack at a dealer.
#[derive(Debug, Clone)]
pub struct InstallRequest {
    /// The dealer.
    pub dealer: String,
    /// The archive.
    pub source: Source,
    /// The overlay.
    pub overlay: OverlayChoice,
    /// Allow installing an older version than the installed one.
    pub force: bool,
    /// Who installs.
    pub by: Actor,
}

/// A recorded and deployed installation.
#[derive(Debug, Clone)]
pub struct Installed {
    /// The installation row.
    pub row: InstallationRow,
    /// What was deployed for the dealer.
    pub deployed: Vec<DeployOutcome>,
    /// When a version was installed before: how each process changed.
    pub changes: Vec<ProcessChange>,
    /// Warnings worth showing (none blocked the installation).
    pub warnings: Vec<Diagnostic>,
    /// The installed pack (the standard, without the overlay).
    pub pack: Pack,
}

/// One dealer's installation of a pack and its deviations from the standard.
#[derive(Debug, Clone)]
pub struct DealerDeviations {
    /// The dealer's current installation.
    pub installation: InstallationRow,
    /// Every deviation of its overlay from the version it installed, most severe first.
    pub deviations: Vec<Deviation>,
}

/// The path an installed overlay's diagnostics show.
pub fn stored_overlay_path(dealer: &str) -> PathBuf {
    PathBuf::from(format!("overlays/{dealer}.yaml"))
}

/// The name an archive's files are shown under in diagnostics (`<pack>-<version>.sopack`).
pub fn archive_root(archive: &Archive) -> PathBuf {
    PathBuf::from(format!("{}-{}.{EXTENSION}", archive.listing.pack, archive.listing.version))
}

fn actor_json(by: &Actor) -> serde_json::Value {
    serde_json::to_value(by).unwrap_or(serde_json::Value::Null)
}

/// The user id an actor is recorded under in pack rows.
fn actor_name(by: &Actor) -> String {
    match by {
        Actor::User { id, .. } => id.clone(),
        _ => "system".into(),
    }
}

impl Runtime {
    /// The plugins the engine would run with once the archive's pack is installed, when the
    /// pack brings plugins (or replaces a version that did), with those it brings; `None`
    /// when the pack changes nothing of the plugins. A broken plugin refuses the pack.
    fn plugins_for(&self, archive: &Archive) -> Result<Option<(PluginSet, Vec<ScriptPlugin>)>, packs::Error> {
        let root = archive_root(archive);
        let pack = &archive.listing.pack;
        let Some(host) = self.pack_plugins() else {
            let prefix = format!("{PLUGINS_DIR}/");
            if archive.files.keys().any(|p| p.starts_with(&prefix)) {
                let diagnostic = Diagnostic::new(
                    model::Code::BadPlugin,
                    &root.join(PLUGINS_DIR),
                    model::yaml::Span::new(1, 1),
                    "this engine does not load plugins from packs",
                );
                return Err(packs::Error::Invalid { diagnostics: vec![diagnostic] });
            }
            return Ok(None);
        };
        let plugins = host.read(archive, &root).map_err(|diagnostics| packs::Error::Invalid { diagnostics })?;
        if plugins.is_empty() && !host.has(pack) {
            return Ok(None);
        }
        let set = host.with(pack, &plugins).map_err(|diagnostics| packs::Error::Invalid { diagnostics })?;
        Ok(Some((set, plugins)))
    }

    /// Loads the pack of an archive the store kept (its integrity is checked again; its signer
    /// was checked when it was stored), with the plugins it brings.
    pub fn stored_pack(&self, bytes: &[u8]) -> Result<Pack, packs::Error> {
        let archive = Archive::read(bytes)?;
        let options = match self.plugins_for(&archive)? {
            Some((set, _)) => set.model,
            None => self.model_options(),
        };
        archive.load(&archive_root(&archive), &options)
    }

    /// Publishes a signed archive: verifies it against `trusted`, loads its pack, stores the
    /// archive and the publication with an audit entry on the chain `hq:<organisation>`.
    /// Publishing the same archive again changes nothing.
    pub async fn publish_pack(
        &self,
        bytes: &[u8],
        trusted: &[PublicKey],
        organisation: &str,
        by: &Actor,
    ) -> Outcome<Publication> {
        if trusted.is_empty() {
            return Ok(Err(Refusal::NoTrustedKeys));
        }
        let checked = Archive::parse(bytes).and_then(|a| {
            let signer = a.verify(trusted)?;
            // A pack that brings plugins is checked with them (its processes may use them).
            let options = match self.plugins_for(&a)? {
                Some((set, _)) => set.model,
                None => self.model_options(),
            };
            let pack = a.load(&archive_root(&a), &options)?;
            Ok((a, signer, pack))
        });
        let (archive, signer, pack) = match checked {
            Ok(x) => x,
            Err(e) => return Ok(Err(Refusal::Pack(e))),
        };
        let now = ms(self.clock().now());
        let (pack_id, version, digest) =
            (pack.id().to_string(), pack.version.to_string(), archive.digest().to_string());
        let archive_row = ArchiveRow {
            digest: digest.clone(),
            pack_id: pack_id.clone(),
            version: version.clone(),
            signer: signer.to_string(),
            bytes: bytes.to_vec(),
            stored_at: now,
        };
        let row = PublicationRow {
            pack_id: pack_id.clone(),
            version: version.clone(),
            digest: digest.clone(),
            signer: signer.to_string(),
            published_at: now,
            published_by: actor_name(by),
        };
        let draft = Draft {
            chain: format!("hq:{organisation}"),
            actor: actor_json(by),
            kind: "pack_published".into(),
            step: None,
            entry: json!({ "pack": pack_id, "version": version, "digest": digest, "signer": signer.to_string(),
                "processes": pack.process_ids() }),
            definition_hash: None,
        };
        Ok(match self.store().publish(&archive_row, &row, draft).await? {
            Published::New(_) => Ok(Publication { row, new: true }),
            Published::Again(row) => Ok(Publication { row, new: false }),
            Published::Taken(found) => Err(Refusal::VersionTaken { pack: pack_id, version, digest: found.digest }),
        })
    }

    /// Installs (or upgrades, downgrades with `force`, re-installs, or changes the overlay of)
    /// a pack at a dealer; see the module documentation for the order of the steps.
    pub async fn install_pack(&self, req: InstallRequest, trusted: &[PublicKey]) -> Outcome<Installed> {
        if trusted.is_empty() {
            return Ok(Err(Refusal::NoTrustedKeys));
        }
        let bytes = match &req.source {
            Source::Archive(bytes) => bytes.clone(),
            Source::Published { pack, version } => {
                let stored = match self.store().publication(pack, version).await? {
                    Some(p) => self.store().archive(&p.digest).await?,
                    None => None,
                };
                match stored {
                    Some(a) => a.bytes,
                    None => return Ok(Err(Refusal::NotPublished { pack: pack.clone(), version: version.clone() })),
                }
            }
        };
        // The signature is checked before anything of the archive is compiled (its plugins).
        let checked = Archive::parse(&bytes).and_then(|a| {
            a.verify(trusted)?;
            Ok((self.plugins_for(&a)?, a))
        });
        let (pack_id, plugins) = match checked {
            Ok((plugins, a)) => (a.listing.pack, plugins),
            Err(e) => return Ok(Err(Refusal::Pack(e))),
        };
        // The new version is checked with the plugins it brings; the installed one was
        // checked with those in use.
        let options = plugins.as_ref().map_or_else(|| self.model_options(), |(set, _)| Arc::clone(&set.model));
        let current = self.store().installation(&req.dealer, &pack_id).await?;
        let installed = match &current {
            None => None,
            Some(row) => {
                let loaded = match self.store().archive(&row.digest).await? {
                    Some(a) => self.stored_pack(&a.bytes).map_err(|e| e.to_string()),
                    None => Err(format!("its archive {} is not stored", row.digest)),
                };
                match loaded {
                    Ok(pack) => Some(pack),
                    Err(reason) => return Ok(Err(Refusal::InstalledUnreadable { pack: pack_id, reason })),
                }
            }
        };
        let (overlay_path, overlay_text) = match req.overlay {
            OverlayChoice::Keep => match current.as_ref().and_then(|c| c.overlay.clone()) {
                Some(text) => (stored_overlay_path(&req.dealer), Some(text)),
                None => (stored_overlay_path(&req.dealer), None),
            },
            OverlayChoice::Replace { path, text } => (path, Some(text)),
            OverlayChoice::Remove => (stored_overlay_path(&req.dealer), None),
        };
        let overlay = match &overlay_text {
            None => None,
            Some(text) => match OverlayFile::parse(&overlay_path, text) {
                Ok(file) if file.dealer() != req.dealer => {
                    let overlay = file.dealer().to_string();
                    return Ok(Err(Refusal::OverlayOfOtherDealer { overlay, dealer: req.dealer }));
                }
                Ok(file) => Some(file),
                Err(diagnostics) => return Ok(Err(Refusal::Overlay(diagnostics))),
            },
        };
        let plan = match packs::install(&bytes, trusted, overlay.as_ref(), installed.as_ref(), req.force, &options) {
            Ok(plan) => plan,
            // Problems found in the overlay file are the dealer's changes that do not apply.
            Err(packs::Error::Invalid { diagnostics }) if diagnostics.iter().any(|d| d.file == overlay_path) => {
                return Ok(Err(Refusal::OverlayConflicts(diagnostics)));
            }
            Err(e) => return Ok(Err(Refusal::Pack(e))),
        };
        // The installed version was looked up by the listing's pack id, which the signature does
        // not cover; the signed manifest must agree with it.
        if plan.pack.id() != pack_id {
            let offered = plan.pack.id().to_string();
            return Ok(Err(Refusal::Pack(packs::Error::OtherPack { installed: pack_id, offered })));
        }

        let now = ms(self.clock().now());
        let version = plan.pack.version.to_string();
        let action = match (&current, &installed) {
            (Some(before), Some(old)) => match plan.pack.version.cmp(&old.version) {
                std::cmp::Ordering::Greater => "upgraded",
                std::cmp::Ordering::Less => "downgraded",
                std::cmp::Ordering::Equal if before.digest == plan.digest && before.overlay != overlay_text => {
                    "overlay_changed"
                }
                std::cmp::Ordering::Equal => "reinstalled",
            },
            _ => "installed",
        };
        let archive_row = ArchiveRow {
            digest: plan.digest.clone(),
            pack_id: pack_id.clone(),
            version: version.clone(),
            signer: plan.signer.to_string(),
            bytes,
            stored_at: now,
        };
        let row = InstallationRow {
            seq: 0,
            dealer: req.dealer.clone(),
            pack_id: pack_id.clone(),
            version: version.clone(),
            digest: plan.digest.clone(),
            signer: plan.signer.to_string(),
            overlay: overlay_text.clone(),
            action: action.into(),
            replaces: current.as_ref().map_or(0, |c| c.seq),
            installed_at: now,
            installed_by: actor_name(&req.by),
        };
        let overlay_sha256 = overlay_text.as_ref().map(|t| hex::encode(Sha256::digest(t.as_bytes())));
        let draft = Draft {
            chain: format!("dealer:{}", req.dealer),
            actor: actor_json(&req.by),
            kind: format!("pack_{action}"),
            step: None,
            entry: json!({
                "pack": pack_id,
                "version": version,
                "from_version": current.as_ref().map(|c| c.version.clone()),
                "digest": plan.digest,
                "signer": plan.signer.to_string(),
                "overlay_sha256": overlay_sha256,
                "processes": plan.processes.iter().map(|p| json!({ "process": p.id, "hash": p.hash.0 }))
                    .collect::<Vec<_>>(),
            }),
            definition_hash: None,
        };
        let row = match self.store().record_installation(&archive_row, &row, draft).await? {
            Recorded::New(row) => *row,
            Recorded::Stale => return Ok(Err(Refusal::Concurrent { dealer: req.dealer, pack: pack_id })),
        };
        if let (Some(host), Some((_, plugins))) = (self.pack_plugins(), plugins) {
            match host.keep(&pack_id, plugins, |set| self.use_plugins(set)) {
                Ok(_) => {}
                // Another pack's plugins installed meanwhile clash with these: the engine keeps
                // the plugins it had; the processes below may then wait on an unknown action.
                Err(problems) => {
                    let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    tracing::warn!("the plugins of {pack_id} {version} were not loaded: {}", list.join("; "));
                }
            }
        }
        let deployed = self.deploy(&plan.processes, &req.dealer, req.by).await?;
        Ok(Ok(Installed {
            row,
            deployed,
            changes: plan.upgrade.map(|u| u.changes).unwrap_or_default(),
            warnings: plan.warnings,
            pack: plan.pack,
        }))
    }

    /// Every dealer's current installation of a pack with its deviations from the version it
    /// installed, by dealer.
    pub async fn compliance(&self, pack_id: &str) -> Result<Vec<DealerDeviations>, Error> {
        let mut packs_by_digest: BTreeMap<String, Pack> = BTreeMap::new();
        let mut out = Vec::new();
        for installation in self.store().installations(None, Some(pack_id)).await? {
            let digest = installation.digest.clone();
            // What was valid when it was installed must read again; if it does not, the
            // engine's rules changed under stored data, like a definition that no longer compiles.
            let unreadable = |message: String| Error::Definition { hash: digest.clone(), message };
            if !packs_by_digest.contains_key(&digest) {
                let Some(archive) = self.store().archive(&digest).await? else {
                    return Err(unreadable("the installed archive is not stored".into()));
                };
                let pack = self.stored_pack(&archive.bytes).map_err(|e| unreadable(e.to_string()))?;
                packs_by_digest.insert(digest.clone(), pack);
            }
            let Some(pack) = packs_by_digest.get(&digest) else { continue };
            let deviations = match &installation.overlay {
                None => Vec::new(),
                Some(text) => {
                    let file = OverlayFile::parse(&stored_overlay_path(&installation.dealer), text)
                        .map_err(|d| unreadable(d.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")))?;
                    packs::diff(pack, &[file])
                }
            };
            out.push(DealerDeviations { installation, deviations });
        }
        Ok(out)
    }
}

/// What moving one running instance onto the installed version did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The instance.
    pub instance: String,
    /// The process.
    pub process: String,
    /// Moved (with a `migrated` entry in its audit trail), or why not (it stays as it was).
    pub result: Result<(), String>,
}

/// Running instances read per page while looking for those on an older version.
const MIGRATION_PAGE: u32 = 200;

impl Runtime {
    /// Moves the dealer's running instances of a pack's processes that are still on an older
    /// version onto the version installed now, along the migration maps the installed pack
    /// declares for the version installed before it (`migrations: - from: 1.x`). Each move is
    /// one transition recorded in the instance's audit trail with `by`; an instance that cannot
    /// move (a step with no place on the new version, data that no longer fits) stays where it
    /// is and is reported. A process without a map is left alone: its instances finish on the
    /// version they started with.
    pub async fn migrate_installed(&self, dealer: &str, pack_id: &str, by: &str) -> Outcome<Vec<Migration>> {
        use store::Store;
        use store::search::{InstanceSearch, SearchStore};
        let history = self.store().installation_history(dealer, pack_id).await?;
        let (Some(current), Some(previous)) = (history.last(), history.len().checked_sub(2).map(|i| &history[i]))
        else {
            return Ok(Ok(Vec::new()));
        };
        let Some(archive) = self.store().archive(&current.digest).await? else {
            let reason = format!("its archive {} is not stored", current.digest);
            return Ok(Err(Refusal::InstalledUnreadable { pack: pack_id.into(), reason }));
        };
        let pack = match self.stored_pack(&archive.bytes) {
            Ok(p) => p,
            Err(e) => return Ok(Err(Refusal::InstalledUnreadable { pack: pack_id.into(), reason: e.to_string() })),
        };
        let Ok(before) = semver::Version::parse(&previous.version) else {
            let reason = format!("the version installed before, `{}`, is not a version", previous.version);
            return Ok(Err(Refusal::InstalledUnreadable { pack: pack_id.into(), reason }));
        };
        let mut out = Vec::new();
        for (process, map) in packs::migrate::maps(&pack, &before) {
            let Some(target) = self.store().current_deployment(dealer, &process).await? else { continue };
            let mut cursor = None;
            loop {
                let page = self
                    .store()
                    .search_instances(&InstanceSearch {
                        dealer: Some(dealer.into()),
                        process_id: Some(process.clone()),
                        status: Some("running".into()),
                        text: None,
                        before: cursor.clone(),
                        limit: MIGRATION_PAGE,
                    })
                    .await?;
                for row in page.iter().filter(|r| r.hash != target) {
                    let result = match self.migrate_instance(&row.id, &target, map.clone(), by).await? {
                        Ok(_) => Ok(()),
                        Err(refused) => Err(refused.to_string()),
                    };
                    out.push(Migration { instance: row.id.clone(), process: process.clone(), result });
                }
                if page.len() < MIGRATION_PAGE as usize {
                    break;
                }
                cursor = page.last().map(|r| r.id.clone());
            }
        }
        Ok(Ok(out))
    }
}
