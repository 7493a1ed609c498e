//! [`PackStore`] on the in-memory store: archives, publications and installations kept beside
//! the audit trail under the same lock, so a publication or an installation and its audit entry
//! are written together or not at all, as in the SQL stores.

use std::collections::BTreeMap;

use super::MemoryStore;
use crate::Result;
use crate::audit::Draft;
use crate::packs::{ArchiveRow, InstallationRow, PackStore, PublicationRow, Published, Recorded};

/// The pack tables.
#[derive(Debug, Default)]
pub(super) struct Packs {
    /// digest -> archive.
    archives: BTreeMap<String, ArchiveRow>,
    /// (pack id, version) -> publication.
    publications: BTreeMap<(String, String), PublicationRow>,
    /// Every installation, in `seq` order.
    installations: Vec<InstallationRow>,
}

impl Packs {
    fn keep_archive(&mut self, archive: &ArchiveRow) {
        self.archives.entry(archive.digest.clone()).or_insert_with(|| archive.clone());
    }

    fn current(&self, dealer: &str, pack_id: &str) -> Option<&InstallationRow> {
        self.installations.iter().rev().find(|r| r.dealer == dealer && r.pack_id == pack_id)
    }
}

/// Publications in the order every backend lists them.
fn publication_order(rows: &mut [PublicationRow]) {
    rows.sort_by(|a, b| (&a.pack_id, a.published_at, &a.version).cmp(&(&b.pack_id, b.published_at, &b.version)));
}

impl PackStore for MemoryStore {
    async fn archive(&self, digest: &str) -> Result<Option<ArchiveRow>> {
        Ok(self.lock().packs.archives.get(digest).cloned())
    }

    async fn publish(&self, archive: &ArchiveRow, publication: &PublicationRow, audit: Draft) -> Result<Published> {
        let mut s = self.lock();
        let key = (publication.pack_id.clone(), publication.version.clone());
        if let Some(found) = s.packs.publications.get(&key) {
            return Ok(if found.digest == publication.digest {
                Published::Again(found.clone())
            } else {
                Published::Taken(found.clone())
            });
        }
        s.packs.keep_archive(archive);
        s.packs.publications.insert(key, publication.clone());
        Ok(Published::New(s.append(audit, publication.published_at)))
    }

    async fn publications(&self, pack_id: Option<&str>) -> Result<Vec<PublicationRow>> {
        let s = self.lock();
        let mut rows: Vec<PublicationRow> =
            s.packs.publications.values().filter(|p| pack_id.is_none_or(|id| p.pack_id == id)).cloned().collect();
        publication_order(&mut rows);
        Ok(rows)
    }

    async fn publication(&self, pack_id: &str, version: &str) -> Result<Option<PublicationRow>> {
        Ok(self.lock().packs.publications.get(&(pack_id.to_string(), version.to_string())).cloned())
    }

    async fn record_installation(&self, archive: &ArchiveRow, row: &InstallationRow, audit: Draft) -> Result<Recorded> {
        let mut s = self.lock();
        let current = s.packs.current(&row.dealer, &row.pack_id).map_or(0, |r| r.seq);
        if current != row.replaces {
            return Ok(Recorded::Stale);
        }
        s.packs.keep_archive(archive);
        let mut stored = row.clone();
        stored.seq = s.packs.installations.last().map_or(0, |r| r.seq) + 1;
        s.packs.installations.push(stored.clone());
        s.append(audit, row.installed_at);
        Ok(Recorded::New(Box::new(stored)))
    }

    async fn installation(&self, dealer: &str, pack_id: &str) -> Result<Option<InstallationRow>> {
        Ok(self.lock().packs.current(dealer, pack_id).cloned())
    }

    async fn installations(&self, dealer: Option<&str>, pack_id: Option<&str>) -> Result<Vec<InstallationRow>> {
        let s = self.lock();
        let mut newest: BTreeMap<(&str, &str), &InstallationRow> = BTreeMap::new();
        for r in &s.packs.installations {
            if dealer.is_none_or(|d| r.dealer == d) && pack_id.is_none_or(|p| r.pack_id == p) {
                newest.insert((&r.dealer, &r.pack_id), r);
            }
        }
        Ok(newest.into_values().cloned().collect())
    }

    async fn installation_history(&self, dealer: &str, pack_id: &str) -> Result<Vec<InstallationRow>> {
        let s = self.lock();
        Ok(s.packs.installations.iter().filter(|r| r.dealer == dealer && r.pack_id == pack_id).cloned().collect())
    }
}
