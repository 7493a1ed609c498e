//! The reference inventory plugin's stock table ([`plugins::inventory::InventoryStore`]) on
//! SQLite and PostgreSQL (migrations `0201_inventory.sql`), written once and expanded per
//! backend like `jobs.rs`. [`AnyInventory`] is the table of whichever database was opened (in
//! memory for `memory:`).
//!
//! A reservation claims its idempotency key first (`INSERT ... ON CONFLICT DO NOTHING`), then
//! takes the parts with a conditional `UPDATE`, in one transaction: a second delivery of the
//! same try finds the key and gets the first answer, and on PostgreSQL a concurrent one waits on
//! the key's unique index until the first commits.

use std::sync::Arc;

use plugin_api::BoxFuture;
use plugins::inventory::{Error, InventoryStore, MemoryInventory, Part, Reservation, Reserved};

use crate::{AnyStore, PgStore, SqliteStore};

/// Rows per `INSERT` of an import.
const IMPORT_CHUNK: usize = 500;

macro_rules! inventory_backend {
    ($db:ty) => {
        use plugins::inventory::{Error, Part, Reservation, Reserved};
        use sqlx::{Pool, QueryBuilder, Row};

        use super::IMPORT_CHUNK;

        fn failed(e: sqlx::Error) -> Error {
            Error::Backend(Box::new(crate::db(e)))
        }

        fn count(n: i64) -> u64 {
            u64::try_from(n).unwrap_or(0)
        }

        fn signed(n: u64) -> i64 {
            i64::try_from(n).unwrap_or(i64::MAX)
        }

        pub(crate) async fn part(pool: &Pool<$db>, dealer: &str, part_no: &str) -> Result<Option<Part>, Error> {
            let row = sqlx::query(
                "SELECT part_no, description, on_hand, location FROM inventory_parts WHERE dealer = $1 AND part_no = $2",
            )
            .bind(dealer)
            .bind(part_no)
            .fetch_optional(pool)
            .await
            .map_err(failed)?;
            row.map(|r| {
                Ok(Part {
                    part_no: r.try_get("part_no").map_err(failed)?,
                    description: r.try_get("description").map_err(failed)?,
                    on_hand: count(r.try_get("on_hand").map_err(failed)?),
                    location: r.try_get("location").map_err(failed)?,
                })
            })
            .transpose()
        }

        pub(crate) async fn reserve(pool: &Pool<$db>, dealer: &str, r: Reservation) -> Result<Reserved, Error> {
            let mut tx = pool.begin().await.map_err(failed)?;
            let claimed = sqlx::query(
                "INSERT INTO inventory_reservations (key, dealer, part_no, quantity, reference, reserved, on_hand) \
                 VALUES ($1, $2, $3, $4, $5, FALSE, 0) ON CONFLICT (key) DO NOTHING",
            )
            .bind(&r.key)
            .bind(dealer)
            .bind(&r.part_no)
            .bind(signed(r.quantity))
            .bind(&r.reference)
            .execute(&mut *tx)
            .await
            .map_err(failed)?
            .rows_affected()
                == 1;
            if !claimed {
                let row = sqlx::query("SELECT reserved, on_hand FROM inventory_reservations WHERE key = $1")
                    .bind(&r.key)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(failed)?;
                tx.commit().await.map_err(failed)?;
                return Ok(Reserved {
                    reserved: row.try_get("reserved").map_err(failed)?,
                    on_hand: count(row.try_get("on_hand").map_err(failed)?),
                });
            }
            let taken: Option<i64> = sqlx::query_scalar(
                "UPDATE inventory_parts SET on_hand = on_hand - $1 \
                 WHERE dealer = $2 AND part_no = $3 AND on_hand >= $1 RETURNING on_hand",
            )
            .bind(signed(r.quantity))
            .bind(dealer)
            .bind(&r.part_no)
            .fetch_optional(&mut *tx)
            .await
            .map_err(failed)?;
            let answer = match taken {
                Some(left) => Reserved { reserved: true, on_hand: count(left) },
                None => {
                    let left: Option<i64> =
                        sqlx::query_scalar("SELECT on_hand FROM inventory_parts WHERE dealer = $1 AND part_no = $2")
                            .bind(dealer)
                            .bind(&r.part_no)
                            .fetch_optional(&mut *tx)
                            .await
                            .map_err(failed)?;
                    Reserved { reserved: false, on_hand: left.map_or(0, count) }
                }
            };
            sqlx::query("UPDATE inventory_reservations SET reserved = $1, on_hand = $2 WHERE key = $3")
                .bind(answer.reserved)
                .bind(signed(answer.on_hand))
                .bind(&r.key)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
            tx.commit().await.map_err(failed)?;
            Ok(answer)
        }

        pub(crate) async fn upsert(pool: &Pool<$db>, dealer: &str, parts: Vec<Part>) -> Result<(), Error> {
            // One transaction: an import is all or nothing.
            let mut tx = pool.begin().await.map_err(failed)?;
            for chunk in parts.chunks(IMPORT_CHUNK) {
                let mut qb = QueryBuilder::<$db>::new(
                    "INSERT INTO inventory_parts (dealer, part_no, description, on_hand, location) ",
                );
                qb.push_values(chunk, |mut b, p| {
                    b.push_bind(dealer.to_owned())
                        .push_bind(p.part_no.clone())
                        .push_bind(p.description.clone())
                        .push_bind(signed(p.on_hand))
                        .push_bind(p.location.clone());
                });
                qb.push(
                    " ON CONFLICT (dealer, part_no) DO UPDATE SET description = excluded.description, \
                     on_hand = excluded.on_hand, location = excluded.location",
                );
                qb.build().execute(&mut *tx).await.map_err(failed)?;
            }
            tx.commit().await.map_err(failed)
        }
    };
}

mod sqlite_inventory {
    inventory_backend!(sqlx::Sqlite);
}

mod pg_inventory {
    inventory_backend!(sqlx::Postgres);
}

/// The stock table of whichever database was opened: `inventory_parts` on SQLite and
/// PostgreSQL, a [`MemoryInventory`] beside a memory store.
#[derive(Clone)]
pub enum AnyInventory {
    /// In memory (nothing survives).
    Memory(Arc<MemoryInventory>),
    /// A SQLite file.
    Sqlite(SqliteStore),
    /// PostgreSQL.
    Postgres(PgStore),
}

impl std::fmt::Debug for AnyInventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AnyInventory::Memory(_) => "AnyInventory::Memory",
            AnyInventory::Sqlite(_) => "AnyInventory::Sqlite",
            AnyInventory::Postgres(_) => "AnyInventory::Postgres",
        })
    }
}

impl AnyInventory {
    /// The stock table in the same database as `store` (a fresh, empty one in memory for
    /// `memory:`: create it once and share it).
    pub fn for_store(store: &AnyStore) -> AnyInventory {
        match store {
            AnyStore::Memory(_) => AnyInventory::Memory(Arc::new(MemoryInventory::new())),
            AnyStore::Sqlite(s) => AnyInventory::Sqlite(s.clone()),
            AnyStore::Postgres(s) => AnyInventory::Postgres(s.clone()),
        }
    }
}

impl InventoryStore for AnyInventory {
    fn part<'a>(&'a self, dealer: &'a str, part_no: &'a str) -> BoxFuture<'a, Result<Option<Part>, Error>> {
        match self {
            AnyInventory::Memory(m) => m.part(dealer, part_no),
            AnyInventory::Sqlite(s) => Box::pin(sqlite_inventory::part(&s.read, dealer, part_no)),
            AnyInventory::Postgres(s) => Box::pin(pg_inventory::part(&s.pool, dealer, part_no)),
        }
    }

    fn reserve<'a>(&'a self, dealer: &'a str, reservation: Reservation) -> BoxFuture<'a, Result<Reserved, Error>> {
        match self {
            AnyInventory::Memory(m) => m.reserve(dealer, reservation),
            AnyInventory::Sqlite(s) => {
                Box::pin(async move { sqlite_inventory::reserve(&*s.write_turn().await, dealer, reservation).await })
            }
            AnyInventory::Postgres(s) => Box::pin(pg_inventory::reserve(&s.pool, dealer, reservation)),
        }
    }

    fn upsert<'a>(&'a self, dealer: &'a str, parts: Vec<Part>) -> BoxFuture<'a, Result<(), Error>> {
        match self {
            AnyInventory::Memory(m) => m.upsert(dealer, parts),
            AnyInventory::Sqlite(s) => {
                Box::pin(async move { sqlite_inventory::upsert(&*s.write_turn().await, dealer, parts).await })
            }
            AnyInventory::Postgres(s) => Box::pin(pg_inventory::upsert(&s.pool, dealer, parts)),
        }
    }
}
