-- Kura 0015: shipments between sites. A shipment that arrives from another site is projected
-- into `shipments` as incoming (its tubes into `specimens`, in transit). The bundle it came in
-- is kept apart, as it was received: never part of this site's own streams, checked by
-- `verify` against itself and against the arrival that took it.
ALTER TABLE shipments ADD COLUMN incoming INTEGER NOT NULL DEFAULT 0;

CREATE TABLE bundles (
    dispatch  BLOB PRIMARY KEY,   -- the dispatch event's hash, 32 bytes
    shipment  TEXT NOT NULL UNIQUE,
    bundle    TEXT NOT NULL,      -- the bundle as received (JSON)
    taken_at  INTEGER NOT NULL    -- µs
) WITHOUT ROWID;
CREATE TRIGGER bundles_append_only_update BEFORE UPDATE ON bundles
BEGIN
    SELECT RAISE(ABORT, 'bundles are kept as received: they are never updated');
END;
CREATE TRIGGER bundles_append_only_delete BEFORE DELETE ON bundles
BEGIN
    SELECT RAISE(ABORT, 'bundles are kept as received: they are never deleted');
END;

-- The sending workstations' keys this site trusts for sealed shipments (projection of
-- key_trusted events), by fingerprint.
CREATE TABLE trusted_keys (
    code       TEXT PRIMARY KEY,  -- the fingerprint, as `kura key` shows it
    name       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    last_event INTEGER NOT NULL
) WITHOUT ROWID;

-- This workstation's key for signing shipment bundles, made at its first shipment. Not a
-- projection: it is this bench's own, kept in its backups, never synced.
CREATE TABLE workstation_key (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seed       BLOB NOT NULL,
    public     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
