//! Headquarters packs and dealer overlays: distribute the standard, adapt it without code, see
//! every deviation.
//!
//! Headquarters writes a pack (processes, forms, role catalogue, calendars, parameters with
//! allowed ranges, and a `policy:` per process saying what dealers may change), builds it into
//! one signed archive ([`archive`], [`sign`]) and ships it. A dealer adapts it with an
//! [`overlay`] file of typed changes against stable ids; [`resolve()`] applies the overlay and
//! compiles every process into an effective [`model::Process`] with its own hash, deployable
//! like any other. [`diff()`] lists every dealer's deviations from the standard with a severity;
//! [`upgrade()`] re-applies an overlay to a new pack version and reports what no longer applies;
//! [`migrate()`] moves a running instance onto a new version along the pack's migration map.
//! [`install()`] is the whole path a server or CLI takes for an archive it received.
//!
//! This crate is pure apart from reading files (through [`model::validate::Files`], or `std::fs`
//! for archives): no async runtime, no database, no network, no clock (the caller passes `now`).
//! It never changes a running instance by itself: [`migrate()`] returns a new snapshot that the
//! runtime may store, and nothing else here touches instances at all.

pub mod archive;
pub mod diff;
pub mod install;
pub mod migrate;
pub mod overlay;
pub mod pack;
pub mod resolve;
pub mod sign;
pub mod upgrade;

use std::path::PathBuf;

pub use archive::{Archive, MemFiles};
pub use diff::{Deviation, DeviationKind, Severity, diff};
pub use install::{InstallPlan, install};
pub use migrate::{Migrated, migrate};
pub use overlay::{OverlayFile, overlay_schema};
pub use pack::Pack;
pub use resolve::{Resolution, resolve};
pub use sign::{PublicKey, SecretKey};
pub use upgrade::{UpgradePlan, upgrade};

/// Why a pack could not be built, read, verified or installed. Problems in the content of a pack
/// or an overlay are [`model::Diagnostic`]s, carried by [`Error::Invalid`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("cannot read or write {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The pack or the overlay has errors; nothing was built or resolved.
    #[error("{} problem(s) were found:\n{}", diagnostics.len(), render(diagnostics))]
    Invalid {
        /// Every problem, with `file:line:col`.
        diagnostics: Vec<model::Diagnostic>,
    },
    /// The archive is malformed or breaks a safety limit; nothing in it was used.
    #[error("the archive is refused: {0}")]
    Archive(#[from] archive::Problem),
    /// The archive's contents differ from what was listed and signed when it was built.
    #[error("the archive was altered after it was built:\n{}", list(problems))]
    Tampered {
        /// Every difference found.
        problems: Vec<archive::Tamper>,
    },
    /// The archive carries no signature.
    #[error("the archive is not signed; run `sopflow pack sign` with the publisher's key")]
    Unsigned,
    /// The signature does not match the archive's contents and key.
    #[error(
        "the signature does not match the archive's contents: it was altered, or the signature was made for another archive"
    )]
    BadSignature,
    /// The archive is signed by a key that is not trusted.
    #[error("the archive is signed by {signer}, which is not one of the trusted publisher keys")]
    Untrusted {
        /// The key that signed it.
        signer: PublicKey,
    },
    /// A key could not be read.
    #[error("not a sopflow {what} key: {reason}")]
    BadKey {
        /// `signing` or `public`.
        what: &'static str,
        /// Why, in words.
        reason: sign::KeyProblem,
    },
    /// The offered pack is older than the installed one.
    #[error("version {offered} is older than the installed version {installed}; a downgrade is refused unless forced")]
    Downgrade {
        /// The installed version.
        installed: semver::Version,
        /// The offered version.
        offered: semver::Version,
    },
    /// The offered pack is not the installed pack.
    #[error("the archive holds the pack `{offered}`, but `{installed}` is installed")]
    OtherPack {
        /// The installed pack id.
        installed: String,
        /// The offered pack id.
        offered: String,
    },
}

fn render(diagnostics: &[model::Diagnostic]) -> String {
    diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

fn list(problems: &[archive::Tamper]) -> String {
    problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
}
