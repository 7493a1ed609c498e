-- The reference inventory plugin's stock table (plugins::inventory): one stock per dealer,
-- imported from CSV, and the answer given to each reservation's idempotency key, so a
-- reservation delivered twice takes the parts once.

CREATE TABLE inventory_parts (
    dealer      TEXT NOT NULL,
    part_no     TEXT NOT NULL,
    description TEXT NOT NULL,
    on_hand     BIGINT NOT NULL CHECK (on_hand >= 0),
    location    TEXT NOT NULL,
    PRIMARY KEY (dealer, part_no)
);

CREATE TABLE inventory_reservations (
    key       TEXT PRIMARY KEY,
    dealer    TEXT NOT NULL,
    part_no   TEXT NOT NULL,
    quantity  BIGINT NOT NULL,
    reference TEXT NOT NULL,
    -- Filled in the transaction that took (or did not take) the parts.
    reserved  BOOLEAN NOT NULL,
    on_hand   BIGINT NOT NULL
);
