-- Kura 0004: sync by high-water mark. What this workstation has not yet pushed is what
-- `events WHERE workstation = me AND seq > pushed_seq` says (the (workstation, seq) index serves
-- it, seq is gapless), so the one-row-per-event outbox goes: every append writes one B-tree less.

-- One row: where this workstation stands with the central registry.
CREATE TABLE sync_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    pushed_seq    INTEGER NOT NULL DEFAULT 0,  -- this workstation's events up to here are answered
    pull_cursor   INTEGER NOT NULL DEFAULT 0,  -- the registry's server_seq pulled up to
    registry_url  TEXT,                        -- NULL: never enrolled, the database works alone
    token_ref     TEXT,                        -- where the workstation token is kept (not the token)
    leases        TEXT    NOT NULL DEFAULT '[]', -- JSON: serial blocks leased by the registry
    last_success  INTEGER,                     -- UTC microseconds
    last_error    TEXT
);
INSERT INTO sync_state (id) VALUES (1);

-- Events of this workstation the registry refused: the mark moved past them, they stay here and
-- in front of the user.
CREATE TABLE sync_rejections (
    event   INTEGER PRIMARY KEY REFERENCES events(id),
    code    TEXT    NOT NULL,
    message TEXT    NOT NULL,
    at      INTEGER NOT NULL
);

DROP TABLE outbox;
