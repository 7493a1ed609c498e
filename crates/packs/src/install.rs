//! Installing a pack archive at a dealer: the whole path from received bytes to processes ready
//! to deploy, as one pure function the server and the CLI wrap.
//!
//! The order matters: nothing in the archive is read as a pack before its contents match the
//! signed listing and the signature is by a trusted publisher key. Then the pack is validated
//! like a folder, the dealer's overlay applied (or re-applied over the installed version, with
//! conflicts), and only a plan without errors is returned. Deploying it, recording it in the
//! audit trail, and keeping the archive and the overlay for the next upgrade are the runtime's.

use std::path::PathBuf;
use std::sync::Arc;

use model::{Diagnostic, Process};

use crate::archive::{Archive, EXTENSION};
use crate::overlay::OverlayFile;
use crate::pack::Pack;
use crate::sign::PublicKey;
use crate::upgrade::{UpgradePlan, upgrade};
use crate::{Error, resolve};

/// What installing an archive would deploy.
#[derive(Debug, Clone)]
pub struct InstallPlan {
    /// The pack, as loaded from the archive.
    pub pack: Pack,
    /// The archive's digest (what the signature covers): the identity of what was installed.
    pub digest: String,
    /// The publisher key that signed it.
    pub signer: PublicKey,
    /// The dealer, if an overlay was applied.
    pub dealer: Option<String>,
    /// The effective processes to deploy, each an immutable definition with its own hash.
    pub processes: Vec<Arc<Process>>,
    /// When a version was installed before: how each process changes and the migration maps.
    pub upgrade: Option<UpgradePlan>,
    /// Warnings worth showing (none of them blocks).
    pub warnings: Vec<Diagnostic>,
}

/// Verifies, loads and resolves an archive for a dealer. `installed` is the pack installed now,
/// if any (loaded from the archive the runtime kept); `force` allows a downgrade. Refuses a
/// tampered or untrusted archive, an invalid pack, and an overlay that does not apply (with
/// every conflict at the overlay's `file:line:col`).
pub fn install(
    archive: &[u8],
    trusted: &[PublicKey],
    overlay: Option<&OverlayFile>,
    installed: Option<&Pack>,
    force: bool,
    options: &model::Options,
) -> Result<InstallPlan, Error> {
    let archive = Archive::parse(archive)?;
    let signer = archive.verify(trusted)?;
    let root = PathBuf::from(format!("{}-{}.{EXTENSION}", archive.listing.pack, archive.listing.version));
    let pack = archive.load(&root, options)?;
    let mut warnings = pack.warnings.clone();
    let (processes, upgrade_plan) = match installed {
        Some(old) => {
            let plan = upgrade(old, &pack, overlay, force, options)?;
            if !plan.is_deployable() {
                return Err(Error::Invalid { diagnostics: plan.conflicts });
            }
            warnings.extend(plan.warnings.iter().cloned());
            (plan.processes.clone(), Some(plan))
        }
        None => match overlay {
            Some(file) => {
                let r = resolve(&pack, file, options);
                if r.has_errors() {
                    return Err(Error::Invalid { diagnostics: r.diagnostics });
                }
                warnings.extend(r.diagnostics);
                (r.processes, None)
            }
            None => (pack.processes.clone(), None),
        },
    };
    Ok(InstallPlan {
        digest: archive.listing.digest.clone(),
        signer,
        dealer: overlay.map(|o| o.dealer().to_string()),
        processes,
        upgrade: upgrade_plan,
        warnings,
        pack,
    })
}
