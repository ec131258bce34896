-- Kura 0008: donors who withdrew consent (projection of consent_withdrawn events): their
-- specimens and everything derived from them form the destruction queue. `code` is the donor's
-- pseudonymous ID (never a name).
CREATE TABLE withdrawals (
    code       TEXT PRIMARY KEY,
    reason     TEXT NOT NULL,
    at         INTEGER NOT NULL,
    last_event INTEGER NOT NULL
) WITHOUT ROWID;
