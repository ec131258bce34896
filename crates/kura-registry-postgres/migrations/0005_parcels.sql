-- Registry 0005: parcels, what travels between sites beside the events: a shipment's bundle
-- (for the destination site) and the receipts of its tubes (back to the sending site). Taken
-- once, by their hash; read by the addressed site in `seq` order. Released: never edit.
CREATE TABLE parcels (
    seq       bigserial PRIMARY KEY,
    to_site   text NOT NULL REFERENCES sites(code),
    from_site text NOT NULL REFERENCES sites(code),
    kind      text NOT NULL,
    shipment  text NOT NULL,
    hash      bytea NOT NULL UNIQUE,
    body      text NOT NULL,
    stored_at bigint NOT NULL
);
CREATE INDEX parcels_to_site ON parcels (to_site, seq);
CREATE INDEX parcels_shipment ON parcels (shipment, kind);

-- The key each workstation signs its bundles with, bound by its first bundle.
CREATE TABLE workstation_keys (
    workstation uuid PRIMARY KEY REFERENCES workstations(id),
    key         text NOT NULL,
    bound_at    bigint NOT NULL
);
