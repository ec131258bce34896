-- Kura 0001: the custody log, its projection and the outbox.
-- Released migrations are never edited; changes come as new files.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The append-only custody log. `id` is the local order in which events were applied.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    event_id    BLOB    NOT NULL UNIQUE,   -- UUIDv7, 16 bytes
    workstation BLOB    NOT NULL,          -- UUID of the workstation that wrote it
    seq         INTEGER NOT NULL,          -- gapless per workstation, from 1
    actor       TEXT    NOT NULL,
    at          INTEGER NOT NULL,          -- UTC, microseconds since the epoch
    kind        TEXT    NOT NULL,
    payload     TEXT    NOT NULL,          -- canonical JSON of the event body
    hash        BLOB    NOT NULL,          -- SHA-256 over the previous event's hash and this event
    UNIQUE (workstation, seq)
);

CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'custody events are append-only: they are never updated');
END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'custody events are append-only: they are never deleted');
END;

-- Projection: containers (site, room, freezer, rack, box ...).
CREATE TABLE containers (
    id          INTEGER PRIMARY KEY,
    code        TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    type_name   TEXT    NOT NULL,
    geometry    TEXT    NOT NULL,          -- JSON of kura_domain::Geometry
    temperature TEXT,
    parent      INTEGER REFERENCES containers(id),
    prow        INTEGER,
    pcol        INTEGER,
    path        TEXT    NOT NULL,          -- names from the site down, joined with ' › '
    created_at  INTEGER NOT NULL
);
-- A slot of a parent holds one container at most. (Not a partial index: a partial index makes
-- SQLite re-prepare every statement that binds the indexed column. NULLs never collide.)
CREATE UNIQUE INDEX container_slots ON containers(parent, prow, pcol);

-- Projection: specimens and where they are.
CREATE TABLE specimens (
    id                INTEGER PRIMARY KEY,
    code              TEXT    NOT NULL UNIQUE,
    sample_type       TEXT    NOT NULL,
    primary_container TEXT    NOT NULL,
    storage_code      TEXT    NOT NULL,
    material          TEXT    NOT NULL,
    qty_milli         INTEGER,
    unit              TEXT,
    study             TEXT    NOT NULL,
    donor             TEXT    NOT NULL,
    collected_at      INTEGER,
    registered_at     INTEGER NOT NULL,
    parent            TEXT REFERENCES specimens(code),  -- the parent's code (no join needed to show it)
    freeze_thaw       INTEGER NOT NULL,
    status            TEXT    NOT NULL,
    blocked           INTEGER NOT NULL,
    in_conflict       INTEGER NOT NULL,
    container         INTEGER REFERENCES containers(id),
    row               INTEGER,
    col               INTEGER,
    holder            TEXT,
    due               TEXT,
    updated_at        INTEGER NOT NULL
);
-- Occupancy: one specimen per position, counting positions held for checked-out specimens.
CREATE UNIQUE INDEX occupancy ON specimens(container, row, col);
CREATE INDEX specimens_donor ON specimens(donor);
CREATE INDEX specimens_study ON specimens(study);
CREATE INDEX specimens_parent ON specimens(parent);

-- Which events concern which specimen (a box move concerns every specimen in the box).
CREATE TABLE event_subjects (
    specimen INTEGER NOT NULL,
    event    INTEGER NOT NULL,
    PRIMARY KEY (specimen, event)
) WITHOUT ROWID;

-- Events waiting to be acknowledged by the central registry.
CREATE TABLE outbox (
    event INTEGER PRIMARY KEY REFERENCES events(id)
);
