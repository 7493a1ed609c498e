-- The revision check of instance writes, inside the database: an upsert that would replace an
-- instance row whose revision is not the one the writer expected (`prev_revision`) aborts the
-- statement, and with it the batch's transaction. This lets the adapter send a whole batch,
-- from BEGIN to COMMIT, as one call (see `sqlite_commit.rs`).
CREATE TRIGGER instances_revision_check BEFORE UPDATE ON instances
WHEN OLD.revision IS NOT NEW.prev_revision
BEGIN
    SELECT RAISE(ABORT, 'sopflow: revision conflict');
END;
