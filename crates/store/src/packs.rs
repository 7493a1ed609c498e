//! The durable side of pack distribution: the archives a server holds (content-addressed by
//! their digest), what headquarters published, and what each dealer installed, with history.
//!
//! [`PackStore`] is the port; the in-memory store implements it beside [`crate::Store`], the
//! SQL stores in `store-sqlx` (migrations `0300_packs.sql`). Rows are plain data: the store
//! never opens an archive, checks a signature or reads an overlay; `packs` and the runtime do.
//!
//! Writes that must be recorded in the audit trail take the entry's [`Draft`] and append it in
//! the same transaction, so an installation is never recorded without its audit entry, nor the
//! other way round.
//!
//! Deliberately absent: trusted publisher keys. They are configuration of the server or the
//! command (`--trust`), not data an API call can change (docs/packs.md, "Trust").

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::audit::Draft;
use crate::{AuditRow, Millis, Result};

/// An archive as received: its bytes, stored once per digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveRow {
    /// The digest the signature covers (hex): the archive's identity.
    pub digest: String,
    /// The pack id from its listing.
    pub pack_id: String,
    /// The pack version from its listing.
    pub version: String,
    /// The publisher key that signed it (`ed25519:<hex>`).
    pub signer: String,
    /// The `.sopack` file.
    pub bytes: Vec<u8>,
    /// When it was first stored.
    pub stored_at: Millis,
}

/// A version of a pack that headquarters published on this server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicationRow {
    /// The pack id.
    pub pack_id: String,
    /// The version (semver text).
    pub version: String,
    /// The archive's digest.
    pub digest: String,
    /// The key that signed it.
    pub signer: String,
    /// When it was published.
    pub published_at: Millis,
    /// Who published it (a user id).
    pub published_by: String,
}

/// One installation of a pack at a dealer: a fresh install, an upgrade or downgrade, a
/// re-install, or an overlay change. The newest row of a (dealer, pack) is what runs now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallationRow {
    /// Assigned by the store (0 before insert); increases with every installation.
    pub seq: i64,
    /// The dealer.
    pub dealer: String,
    /// The pack id.
    pub pack_id: String,
    /// The installed version.
    pub version: String,
    /// The installed archive's digest.
    pub digest: String,
    /// The key that signed it.
    pub signer: String,
    /// The dealer's overlay (YAML text), if any.
    pub overlay: Option<String>,
    /// What this row did: `installed`, `upgraded`, `downgraded`, `reinstalled` or
    /// `overlay_changed`.
    pub action: String,
    /// The `seq` of the installation this one replaces (0 for the first): two installations
    /// replacing the same one cannot both be recorded.
    pub replaces: i64,
    /// When.
    pub installed_at: Millis,
    /// Who (a user id, or `system`).
    pub installed_by: String,
}

/// What [`PackStore::publish`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Published {
    /// The version is now published; the audit entry written with it.
    New(AuditRow),
    /// The same archive was published before: nothing was written.
    Again(PublicationRow),
    /// The version was published before with another archive: nothing was written.
    Taken(PublicationRow),
}

/// What [`PackStore::record_installation`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// The installation is recorded (with its `seq`), and the audit entry written with it.
    New(Box<InstallationRow>),
    /// The dealer's current installation of the pack is no longer the one the row replaces:
    /// someone installed in between. Nothing was written.
    Stale,
}

/// The pack port.
pub trait PackStore: Clone + Send + Sync + 'static {
    /// An archive by digest.
    fn archive(&self, digest: &str) -> impl Future<Output = Result<Option<ArchiveRow>>> + Send;

    /// Stores the archive (unless its digest is stored) and publishes its version with the
    /// audit entry, in one transaction. A version is published once: publishing it again with
    /// the same digest changes nothing, with another digest is refused ([`Published::Taken`]).
    fn publish(
        &self,
        archive: &ArchiveRow,
        publication: &PublicationRow,
        audit: Draft,
    ) -> impl Future<Output = Result<Published>> + Send;

    /// The published versions (of one pack, or of all), by pack id then publication order.
    fn publications(&self, pack_id: Option<&str>) -> impl Future<Output = Result<Vec<PublicationRow>>> + Send;

    /// One published version.
    fn publication(&self, pack_id: &str, version: &str) -> impl Future<Output = Result<Option<PublicationRow>>> + Send;

    /// Stores the archive (unless its digest is stored) and records the installation with its
    /// audit entry, in one transaction; [`Recorded::Stale`] (nothing written) when the
    /// dealer's current installation of the pack is no longer the one `row.replaces` names.
    fn record_installation(
        &self,
        archive: &ArchiveRow,
        row: &InstallationRow,
        audit: Draft,
    ) -> impl Future<Output = Result<Recorded>> + Send;

    /// The dealer's current installation of a pack (its newest row).
    fn installation(&self, dealer: &str, pack_id: &str)
    -> impl Future<Output = Result<Option<InstallationRow>>> + Send;

    /// The current installation of every (dealer, pack), optionally of one dealer or one pack,
    /// by dealer then pack.
    fn installations(
        &self,
        dealer: Option<&str>,
        pack_id: Option<&str>,
    ) -> impl Future<Output = Result<Vec<InstallationRow>>> + Send;

    /// Every installation of a pack at a dealer, oldest first.
    fn installation_history(
        &self,
        dealer: &str,
        pack_id: &str,
    ) -> impl Future<Output = Result<Vec<InstallationRow>>> + Send;
}
