//! [`store::packs::PackStore`] on SQLite and PostgreSQL (tables of `0300_packs.sql`), written
//! once like `sql.rs` and expanded per backend.
//!
//! A publication or an installation is one transaction with its audit entry (appended with the
//! backend's `append_audit_in`). Races are settled by keys, not by locks: a version is the
//! primary key of `pack_publications`, and `(dealer, pack_id, replaces)` is unique in
//! `pack_installations`, so of two installations made from the same state one is recorded and
//! the other answered [`Recorded::Stale`].

use store::Result;
use store::audit::Draft;
use store::packs::{ArchiveRow, InstallationRow, PackStore, PublicationRow, Published, Recorded};

use crate::{AnyStore, PgStore, SqliteStore};

/// Expands the pack queries for one backend; `$audit` is the module with its `append_audit_in`.
macro_rules! packs_backend {
    ($db:ty, $audit:path) => {
        use sqlx::{Pool, Row};
        use store::audit::Draft;
        use store::packs::{ArchiveRow, InstallationRow, PublicationRow, Published, Recorded};
        use store::Result;
        use $audit as audit_sql;

        use crate::db;

        type DbRow = <$db as sqlx::Database>::Row;

        const PUBLICATION_COLUMNS: &str = "pack_id, version, digest, signer, published_at, published_by";
        const INSTALLATION_COLUMNS: &str = "seq, dealer, pack_id, version, digest, signer, overlay, action, replaces, \
             installed_at, installed_by";

        fn publication_row(r: &DbRow) -> Result<PublicationRow> {
            Ok(PublicationRow {
                pack_id: r.try_get("pack_id").map_err(db)?,
                version: r.try_get("version").map_err(db)?,
                digest: r.try_get("digest").map_err(db)?,
                signer: r.try_get("signer").map_err(db)?,
                published_at: r.try_get("published_at").map_err(db)?,
                published_by: r.try_get("published_by").map_err(db)?,
            })
        }

        fn installation_row(r: &DbRow) -> Result<InstallationRow> {
            Ok(InstallationRow {
                seq: r.try_get("seq").map_err(db)?,
                dealer: r.try_get("dealer").map_err(db)?,
                pack_id: r.try_get("pack_id").map_err(db)?,
                version: r.try_get("version").map_err(db)?,
                digest: r.try_get("digest").map_err(db)?,
                signer: r.try_get("signer").map_err(db)?,
                overlay: r.try_get("overlay").map_err(db)?,
                action: r.try_get("action").map_err(db)?,
                replaces: r.try_get("replaces").map_err(db)?,
                installed_at: r.try_get("installed_at").map_err(db)?,
                installed_by: r.try_get("installed_by").map_err(db)?,
            })
        }

        fn unique_violation(e: &sqlx::Error) -> bool {
            matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
        }

        async fn keep_archive(conn: &mut <$db as sqlx::Database>::Connection, a: &ArchiveRow) -> Result<()> {
            sqlx::query(
                "INSERT INTO pack_archives (digest, pack_id, version, signer, bytes, stored_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (digest) DO NOTHING",
            )
            .bind(&a.digest)
            .bind(&a.pack_id)
            .bind(&a.version)
            .bind(&a.signer)
            .bind(&a.bytes)
            .bind(a.stored_at)
            .execute(&mut *conn)
            .await
            .map_err(db)?;
            Ok(())
        }

        pub(crate) async fn archive(pool: &Pool<$db>, digest: &str) -> Result<Option<ArchiveRow>> {
            let row = sqlx::query(
                "SELECT digest, pack_id, version, signer, bytes, stored_at FROM pack_archives WHERE digest = $1",
            )
            .bind(digest)
            .fetch_optional(pool)
            .await
            .map_err(db)?;
            let Some(r) = row else { return Ok(None) };
            Ok(Some(ArchiveRow {
                digest: r.try_get("digest").map_err(db)?,
                pack_id: r.try_get("pack_id").map_err(db)?,
                version: r.try_get("version").map_err(db)?,
                signer: r.try_get("signer").map_err(db)?,
                bytes: r.try_get("bytes").map_err(db)?,
                stored_at: r.try_get("stored_at").map_err(db)?,
            }))
        }

        pub(crate) async fn publication(
            pool: &Pool<$db>,
            pack_id: &str,
            version: &str,
        ) -> Result<Option<PublicationRow>> {
            let sql = format!("SELECT {PUBLICATION_COLUMNS} FROM pack_publications WHERE pack_id = $1 AND version = $2");
            let row = sqlx::query(&sql).bind(pack_id).bind(version).fetch_optional(pool).await.map_err(db)?;
            row.as_ref().map(publication_row).transpose()
        }

        /// What an existing publication of the version means for this one.
        fn again_or_taken(found: PublicationRow, digest: &str) -> Published {
            if found.digest == digest { Published::Again(found) } else { Published::Taken(found) }
        }

        pub(crate) async fn publish(
            pool: &Pool<$db>,
            archive: &ArchiveRow,
            p: &PublicationRow,
            audit: Draft,
        ) -> Result<Published> {
            if let Some(found) = publication(pool, &p.pack_id, &p.version).await? {
                return Ok(again_or_taken(found, &p.digest));
            }
            let mut tx = pool.begin().await.map_err(db)?;
            keep_archive(&mut tx, archive).await?;
            let inserted = sqlx::query(
                "INSERT INTO pack_publications (pack_id, version, digest, signer, published_at, published_by) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&p.pack_id)
            .bind(&p.version)
            .bind(&p.digest)
            .bind(&p.signer)
            .bind(p.published_at)
            .bind(&p.published_by)
            .execute(&mut *tx)
            .await;
            match inserted {
                Ok(_) => {}
                Err(e) if unique_violation(&e) => {
                    // Published by someone else since the look-up: answer as if it had been first.
                    drop(tx);
                    return match publication(pool, &p.pack_id, &p.version).await? {
                        Some(found) => Ok(again_or_taken(found, &p.digest)),
                        None => Err(db(e)),
                    };
                }
                Err(e) => return Err(db(e)),
            }
            let entry = audit_sql::append_audit_in(&mut tx, audit, p.published_at).await?;
            tx.commit().await.map_err(db)?;
            Ok(Published::New(entry))
        }

        pub(crate) async fn publications(pool: &Pool<$db>, pack_id: Option<&str>) -> Result<Vec<PublicationRow>> {
            let sql = format!(
                "SELECT {PUBLICATION_COLUMNS} FROM pack_publications WHERE ($1 IS NULL OR pack_id = $1) \
                 ORDER BY pack_id, published_at, version"
            );
            let rows = sqlx::query(&sql).bind(pack_id).fetch_all(pool).await.map_err(db)?;
            rows.iter().map(publication_row).collect()
        }

        async fn current_seq(
            conn: &mut <$db as sqlx::Database>::Connection,
            dealer: &str,
            pack_id: &str,
        ) -> Result<i64> {
            let seq: Option<i64> = sqlx::query_scalar(
                "SELECT seq FROM pack_installations WHERE dealer = $1 AND pack_id = $2 ORDER BY seq DESC LIMIT 1",
            )
            .bind(dealer)
            .bind(pack_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?;
            Ok(seq.unwrap_or(0))
        }

        pub(crate) async fn record_installation(
            pool: &Pool<$db>,
            archive: &ArchiveRow,
            row: &InstallationRow,
            audit: Draft,
        ) -> Result<Recorded> {
            let mut tx = pool.begin().await.map_err(db)?;
            if current_seq(&mut tx, &row.dealer, &row.pack_id).await? != row.replaces {
                return Ok(Recorded::Stale);
            }
            keep_archive(&mut tx, archive).await?;
            let inserted = sqlx::query(
                "INSERT INTO pack_installations (dealer, pack_id, version, digest, signer, overlay, action, replaces, \
                 installed_at, installed_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq",
            )
            .bind(&row.dealer)
            .bind(&row.pack_id)
            .bind(&row.version)
            .bind(&row.digest)
            .bind(&row.signer)
            .bind(&row.overlay)
            .bind(&row.action)
            .bind(row.replaces)
            .bind(row.installed_at)
            .bind(&row.installed_by)
            .fetch_one(&mut *tx)
            .await;
            let seq: i64 = match inserted {
                Ok(r) => r.try_get("seq").map_err(db)?,
                Err(e) if unique_violation(&e) => return Ok(Recorded::Stale),
                Err(e) => return Err(db(e)),
            };
            match audit_sql::append_audit_in(&mut tx, audit, row.installed_at).await {
                Ok(_) => {}
                // The dealer's chain moved on under us: the caller may try again from the start.
                Err(store::Error::Conflict { .. }) => return Ok(Recorded::Stale),
                Err(e) => return Err(e),
            };
            tx.commit().await.map_err(db)?;
            Ok(Recorded::New(Box::new(InstallationRow { seq, ..row.clone() })))
        }

        pub(crate) async fn installation(
            pool: &Pool<$db>,
            dealer: &str,
            pack_id: &str,
        ) -> Result<Option<InstallationRow>> {
            let sql = format!(
                "SELECT {INSTALLATION_COLUMNS} FROM pack_installations WHERE dealer = $1 AND pack_id = $2 \
                 ORDER BY seq DESC LIMIT 1"
            );
            let row = sqlx::query(&sql).bind(dealer).bind(pack_id).fetch_optional(pool).await.map_err(db)?;
            row.as_ref().map(installation_row).transpose()
        }

        pub(crate) async fn installations(
            pool: &Pool<$db>,
            dealer: Option<&str>,
            pack_id: Option<&str>,
        ) -> Result<Vec<InstallationRow>> {
            let sql = format!(
                "SELECT {INSTALLATION_COLUMNS} FROM pack_installations WHERE seq IN (\
                 SELECT MAX(seq) FROM pack_installations GROUP BY dealer, pack_id) \
                 AND ($1 IS NULL OR dealer = $1) AND ($2 IS NULL OR pack_id = $2) ORDER BY dealer, pack_id"
            );
            let rows = sqlx::query(&sql).bind(dealer).bind(pack_id).fetch_all(pool).await.map_err(db)?;
            rows.iter().map(installation_row).collect()
        }

        pub(crate) async fn installation_history(
            pool: &Pool<$db>,
            dealer: &str,
            pack_id: &str,
        ) -> Result<Vec<InstallationRow>> {
            let sql = format!(
                "SELECT {INSTALLATION_COLUMNS} FROM pack_installations WHERE dealer = $1 AND pack_id = $2 ORDER BY seq"
            );
            let rows = sqlx::query(&sql).bind(dealer).bind(pack_id).fetch_all(pool).await.map_err(db)?;
            rows.iter().map(installation_row).collect()
        }
    };
}

mod sqlite_packs {
    packs_backend!(sqlx::Sqlite, crate::sqlite_sql);
}

mod pg_packs {
    packs_backend!(sqlx::Postgres, crate::pg_sql);
}

/// Implements the port for a SQL store, with reads on `$read` and writes on `$write`.
macro_rules! sql_pack_store {
    ($store:ty, $module:ident, $read:ident, $write:ident) => {
        impl PackStore for $store {
            async fn archive(&self, digest: &str) -> Result<Option<ArchiveRow>> {
                $module::archive(&self.$read, digest).await
            }
            async fn publish(&self, archive: &ArchiveRow, p: &PublicationRow, audit: Draft) -> Result<Published> {
                $module::publish(&*self.$write().await, archive, p, audit).await
            }
            async fn publications(&self, pack_id: Option<&str>) -> Result<Vec<PublicationRow>> {
                $module::publications(&self.$read, pack_id).await
            }
            async fn publication(&self, pack_id: &str, version: &str) -> Result<Option<PublicationRow>> {
                $module::publication(&self.$read, pack_id, version).await
            }
            async fn record_installation(
                &self,
                archive: &ArchiveRow,
                row: &InstallationRow,
                audit: Draft,
            ) -> Result<Recorded> {
                $module::record_installation(&*self.$write().await, archive, row, audit).await
            }
            async fn installation(&self, dealer: &str, pack_id: &str) -> Result<Option<InstallationRow>> {
                $module::installation(&self.$read, dealer, pack_id).await
            }
            async fn installations(&self, dealer: Option<&str>, pack_id: Option<&str>) -> Result<Vec<InstallationRow>> {
                $module::installations(&self.$read, dealer, pack_id).await
            }
            async fn installation_history(&self, dealer: &str, pack_id: &str) -> Result<Vec<InstallationRow>> {
                $module::installation_history(&self.$read, dealer, pack_id).await
            }
        }
    };
}

sql_pack_store!(SqliteStore, sqlite_packs, read, write_turn);
sql_pack_store!(PgStore, pg_packs, pool, write_turn);

/// Forwards a port method to whichever store is inside.
macro_rules! any_packs {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($s) => $call.await,
            AnyStore::Sqlite($s) => $call.await,
            AnyStore::Postgres($s) => $call.await,
        }
    };
}

impl PackStore for AnyStore {
    async fn archive(&self, digest: &str) -> Result<Option<ArchiveRow>> {
        any_packs!(self, s => s.archive(digest))
    }
    async fn publish(&self, archive: &ArchiveRow, p: &PublicationRow, audit: Draft) -> Result<Published> {
        any_packs!(self, s => s.publish(archive, p, audit))
    }
    async fn publications(&self, pack_id: Option<&str>) -> Result<Vec<PublicationRow>> {
        any_packs!(self, s => s.publications(pack_id))
    }
    async fn publication(&self, pack_id: &str, version: &str) -> Result<Option<PublicationRow>> {
        any_packs!(self, s => s.publication(pack_id, version))
    }
    async fn record_installation(&self, archive: &ArchiveRow, row: &InstallationRow, audit: Draft) -> Result<Recorded> {
        any_packs!(self, s => s.record_installation(archive, row, audit))
    }
    async fn installation(&self, dealer: &str, pack_id: &str) -> Result<Option<InstallationRow>> {
        any_packs!(self, s => s.installation(dealer, pack_id))
    }
    async fn installations(&self, dealer: Option<&str>, pack_id: Option<&str>) -> Result<Vec<InstallationRow>> {
        any_packs!(self, s => s.installations(dealer, pack_id))
    }
    async fn installation_history(&self, dealer: &str, pack_id: &str) -> Result<Vec<InstallationRow>> {
        any_packs!(self, s => s.installation_history(dealer, pack_id))
    }
}
