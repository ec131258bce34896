-- Kura 0007: electronic signatures (projection of `signed` events). `code` is the signing event's
-- local row id (the key undo images and verify use); `event` the signed event's id and
-- `event_hash` its SHA-256 as signed, which verify compares with the log.
CREATE TABLE signatures (
    code       TEXT PRIMARY KEY,
    event      BLOB NOT NULL,
    event_hash TEXT NOT NULL,
    signer     TEXT NOT NULL,
    name       TEXT NOT NULL,
    meaning    TEXT NOT NULL,
    at         INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX signatures_event ON signatures(event);
