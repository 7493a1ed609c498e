-- Pack distribution: the archives this server holds (bytes once per digest), the versions
-- headquarters published, and every installation at a dealer (the newest row of a dealer and
-- pack is what runs there now). Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE pack_archives (
    digest        TEXT PRIMARY KEY,
    pack_id       TEXT NOT NULL,
    version       TEXT NOT NULL,
    signer        TEXT NOT NULL,
    bytes         BLOB NOT NULL,
    stored_at     INTEGER NOT NULL
);

-- A version is published once.
CREATE TABLE pack_publications (
    pack_id       TEXT NOT NULL,
    version       TEXT NOT NULL,
    digest        TEXT NOT NULL REFERENCES pack_archives (digest),
    signer        TEXT NOT NULL,
    published_at  INTEGER NOT NULL,
    published_by  TEXT NOT NULL,
    PRIMARY KEY (pack_id, version)
);

-- `replaces` is the `seq` of the installation a row follows (0 for the first): unique per
-- dealer and pack, so two installations made from the same state cannot both be recorded.
CREATE TABLE pack_installations (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    dealer        TEXT NOT NULL,
    pack_id       TEXT NOT NULL,
    version       TEXT NOT NULL,
    digest        TEXT NOT NULL REFERENCES pack_archives (digest),
    signer        TEXT NOT NULL,
    overlay       TEXT,
    action        TEXT NOT NULL,
    replaces      INTEGER NOT NULL,
    installed_at  INTEGER NOT NULL,
    installed_by  TEXT NOT NULL,
    UNIQUE (dealer, pack_id, replaces)
);
CREATE INDEX pack_installations_current ON pack_installations (dealer, pack_id, seq);
