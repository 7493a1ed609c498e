//! Upgrades: installing a new version of a pack over a dealer that has an overlay.
//!
//! The overlay is re-applied to the new version. A change that no longer applies (its step or
//! parameter was removed, its value is now out of range, its part is now locked, its extension
//! point is gone, the overlay's version range does not cover the new version) is a conflict,
//! reported at the overlay's `file:line:col` with what changed in between; while there is one,
//! the plan holds nothing to deploy. Running instances are not touched: they stay on the
//! version they started with. The plan carries the migration maps an operator may apply to
//! them one by one ([`crate::migrate()`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use indexmap::IndexMap;
use model::{Diagnostic, Process};
use serde::Serialize;

use crate::overlay::OverlayFile;
use crate::pack::Pack;
use crate::resolve::resolve_with;
use crate::{Error, resolve};

/// What an upgrade would do.
#[derive(Debug, Clone)]
pub struct UpgradePlan {
    /// The pack id.
    pub pack: String,
    /// The installed version.
    pub from: semver::Version,
    /// The offered version.
    pub to: semver::Version,
    /// The dealer, if an overlay was re-applied.
    pub dealer: Option<String>,
    /// What no longer applies; while there is any, nothing may be deployed.
    pub conflicts: Vec<Diagnostic>,
    /// Warnings (e.g. a missing label in an inserted step).
    pub warnings: Vec<Diagnostic>,
    /// The effective processes of the new version, to deploy; empty while there are conflicts.
    pub processes: Vec<Arc<Process>>,
    /// Per process, how its effective definition changes.
    pub changes: Vec<ProcessChange>,
    /// Per process, the migration map (old step -> new step) the new version gives for
    /// instances started on the installed version.
    pub migrations: BTreeMap<String, IndexMap<String, String>>,
}

impl UpgradePlan {
    /// Whether the upgrade can be deployed.
    pub fn is_deployable(&self) -> bool {
        self.conflicts.is_empty()
    }
}

/// How one process's effective definition changes in an upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ProcessChange {
    /// New in this version.
    Added {
        /// The process.
        process: String,
        /// Its new hash.
        hash: String,
    },
    /// Gone in this version; running instances finish on the old definition.
    Removed {
        /// The process.
        process: String,
        /// Its old hash.
        hash: String,
    },
    /// Changed: a new definition is deployed beside the old one.
    Changed {
        /// The process.
        process: String,
        /// The old hash.
        from: String,
        /// The new hash.
        to: String,
    },
    /// The same definition.
    Unchanged {
        /// The process.
        process: String,
        /// Its hash.
        hash: String,
    },
}

/// Plans the upgrade from `installed` to `offered`, re-applying `overlay` if the dealer has one.
/// Refused outright when the packs differ, or when `offered` is older than `installed` unless
/// `force` is set.
pub fn upgrade(
    installed: &Pack,
    offered: &Pack,
    overlay: Option<&OverlayFile>,
    force: bool,
    options: &model::Options,
) -> Result<UpgradePlan, Error> {
    if installed.id() != offered.id() {
        return Err(Error::OtherPack { installed: installed.id().into(), offered: offered.id().into() });
    }
    if offered.version < installed.version && !force {
        return Err(Error::Downgrade { installed: installed.version.clone(), offered: offered.version.clone() });
    }
    let (old, new, diagnostics) = match overlay {
        Some(file) => {
            let before = resolve(installed, file, options);
            // If the installed overlay no longer resolved on the old version either, compare
            // with the standard it was meant to adapt.
            let old = if before.has_errors() { installed.processes.clone() } else { before.processes };
            let after = resolve_with(offered, file, options, Some(installed));
            (old, after.processes, after.diagnostics)
        }
        None => (installed.processes.clone(), offered.processes.clone(), Vec::new()),
    };
    let (conflicts, warnings): (Vec<Diagnostic>, Vec<Diagnostic>) =
        diagnostics.into_iter().partition(Diagnostic::is_error);
    let mut changes = Vec::new();
    for p in &new {
        changes.push(match old.iter().find(|o| o.id == p.id) {
            None => ProcessChange::Added { process: p.id.clone(), hash: p.hash.0.clone() },
            Some(o) if o.hash == p.hash => ProcessChange::Unchanged { process: p.id.clone(), hash: p.hash.0.clone() },
            Some(o) => ProcessChange::Changed { process: p.id.clone(), from: o.hash.0.clone(), to: p.hash.0.clone() },
        });
    }
    if conflicts.is_empty() {
        for o in old.iter().filter(|o| !new.iter().any(|p| p.id == o.id)) {
            changes.push(ProcessChange::Removed { process: o.id.clone(), hash: o.hash.0.clone() });
        }
    }
    let migrations = offered
        .processes
        .iter()
        .filter_map(|p| Some((p.id.clone(), offered.migration_map(&installed.version, &p.id)?.clone())))
        .collect();
    Ok(UpgradePlan {
        pack: offered.id().into(),
        from: installed.version.clone(),
        to: offered.version.clone(),
        dealer: overlay.map(|f| f.dealer().to_string()),
        processes: if conflicts.is_empty() { new } else { Vec::new() },
        conflicts,
        warnings,
        changes,
        migrations,
    })
}
