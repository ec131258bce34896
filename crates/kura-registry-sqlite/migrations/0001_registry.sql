-- The central registry, version 1. Released: never edit; add a new migration.

CREATE TABLE sites (
    code         TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL,
    serial_width INTEGER NOT NULL,
    -- The site's newest server_seq; pushes hold this row (the write lock) until commit.
    last_seq     INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE enrollments (
    code_hash  BLOB PRIMARY KEY,
    site       TEXT NOT NULL REFERENCES sites (code),
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    used_by    BLOB
) STRICT;

CREATE TABLE workstations (
    id            BLOB PRIMARY KEY,
    site          TEXT NOT NULL REFERENCES sites (code),
    name          TEXT NOT NULL,
    token_hash    BLOB NOT NULL UNIQUE,
    enrolled_at   INTEGER NOT NULL,
    revoked_at    INTEGER,
    head_seq      INTEGER NOT NULL DEFAULT 0,
    head_hash     BLOB,
    clock_skew_us INTEGER,
    last_seen     INTEGER
) STRICT;

-- Custody events as the benches wrote them, in the site's order.
CREATE TABLE events (
    site        TEXT NOT NULL,
    server_seq  INTEGER NOT NULL,
    id          BLOB NOT NULL UNIQUE,
    workstation BLOB NOT NULL,
    seq         INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    hash        BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (site, server_seq),
    UNIQUE (workstation, seq)
) STRICT;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'custody events are never updated'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'custody events are never deleted'); END;

-- Events that link into a workstation's chain but are not custody (unknown payload, wrong site).
CREATE TABLE rejections (
    workstation BLOB NOT NULL,
    seq         INTEGER NOT NULL,
    id          BLOB NOT NULL,
    hash        BLOB NOT NULL,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (workstation, seq)
) STRICT;

-- The registry's projection: where each specimen is, per site.
CREATE TABLE specimens (
    site       TEXT NOT NULL,
    code       TEXT NOT NULL,
    state      TEXT NOT NULL,
    container  TEXT,
    pos_row    INTEGER,
    pos_col    INTEGER,
    last_event BLOB NOT NULL,
    PRIMARY KEY (site, code)
) STRICT;
CREATE INDEX specimens_slot ON specimens (site, container, pos_row, pos_col)
    WHERE container IS NOT NULL;

CREATE TABLE containers (
    site       TEXT NOT NULL,
    id         TEXT NOT NULL,
    spec       TEXT NOT NULL,
    parent     TEXT,
    pos_row    INTEGER,
    pos_col    INTEGER,
    last_event BLOB NOT NULL,
    PRIMARY KEY (site, id)
) STRICT;
CREATE INDEX containers_slot ON containers (site, parent, pos_row, pos_col)
    WHERE parent IS NOT NULL;

CREATE TABLE conflicts (
    site        TEXT NOT NULL,
    server_seq  INTEGER NOT NULL,
    subject     TEXT NOT NULL,
    code        TEXT NOT NULL,
    message     TEXT NOT NULL,
    events      TEXT NOT NULL,
    resolved_by BLOB,
    PRIMARY KEY (site, server_seq)
) STRICT;
CREATE INDEX conflicts_open ON conflicts (site, subject) WHERE resolved_by IS NULL;

CREATE TABLE leases (
    site        TEXT NOT NULL,
    year        INTEGER NOT NULL,
    first       INTEGER NOT NULL,
    last        INTEGER NOT NULL,
    workstation BLOB NOT NULL,
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (site, year, first)
) STRICT;
CREATE INDEX leases_workstation ON leases (workstation);
