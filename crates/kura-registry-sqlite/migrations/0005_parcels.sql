-- Registry 0005: parcels, what travels between sites beside the events: a shipment's bundle
-- (for the destination site) and the receipts of its tubes (back to the sending site). Taken
-- once, by their hash; read by the addressed site in `seq` order. Released: never edit.
CREATE TABLE parcels (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    to_site   TEXT NOT NULL REFERENCES sites(code),
    from_site TEXT NOT NULL REFERENCES sites(code),
    kind      TEXT NOT NULL,
    shipment  TEXT NOT NULL,
    hash      BLOB NOT NULL UNIQUE,
    body      TEXT NOT NULL,
    stored_at INTEGER NOT NULL
);
CREATE INDEX parcels_to_site ON parcels (to_site, seq);
CREATE INDEX parcels_shipment ON parcels (shipment, kind);

-- The key each workstation signs its bundles with, bound by its first bundle.
CREATE TABLE workstation_keys (
    workstation BLOB PRIMARY KEY REFERENCES workstations(id),
    key         TEXT NOT NULL,
    bound_at    INTEGER NOT NULL
);
