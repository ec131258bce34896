-- Kura 0006: who may act (projection of user_added, role_granted, user_disabled and
-- credential_set events). `code` is the user ID, named like the other projections' keys so that
-- undo images and verify treat it alike. Credentials are Argon2id hashes, never secrets.
CREATE TABLE users (
    code       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    badge      TEXT,
    disabled   INTEGER NOT NULL DEFAULT 0,
    password   TEXT,
    pin        TEXT,
    added_at   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_event INTEGER NOT NULL
) WITHOUT ROWID;
-- Two benches offline may give one badge twice; sign-in refuses an ambiguous badge.
CREATE INDEX users_badge ON users(badge) WHERE badge IS NOT NULL;
