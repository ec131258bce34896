-- Kura 0016: shipments through the registry. What the registry sent this site beside the
-- events (a shipment's bundle, a receipt of a tube another site received), kept by hash as it
-- came: transport, not custody. A bundle becomes custody when a bench takes it (`bundles`,
-- `shipment_arrived`). The cursor, and the hash of the parcel at it, say where the feed was
-- read to; a registry put back from an older copy is read again from the start.
CREATE TABLE parcels (
    hash      BLOB PRIMARY KEY,   -- the dispatch's hash (a bundle), the receiving event's (a receipt)
    kind      TEXT NOT NULL,      -- bundle | receipt
    shipment  TEXT NOT NULL,
    body      TEXT NOT NULL,      -- the parcel as the registry sent it (JSON)
    pulled_at INTEGER NOT NULL    -- µs
) WITHOUT ROWID;
CREATE INDEX parcels_shipment ON parcels (shipment, kind);
ALTER TABLE sync_state ADD COLUMN parcel_cursor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_state ADD COLUMN parcel_at BLOB;

-- Tubes here that the sending site blocked after they left (a follow-up to their shipment's
-- bundle, signed by the workstation that recorded the block): no new act may use them, whatever
-- this site records. Not a projection of this site's events: the follow-up is kept in `parcels`.
CREATE TABLE held (
    code      TEXT PRIMARY KEY,
    shipment  TEXT NOT NULL,
    reason    TEXT NOT NULL,
    follow_up BLOB NOT NULL      -- the block's hash (the parcel)
) WITHOUT ROWID;
-- Tubes this site shipped that another site received, as the registry's receipts say: read as
-- `transferred` (no longer in transit). Not a projection of this site's events either.
CREATE TABLE delivered (
    code     TEXT PRIMARY KEY,
    shipment TEXT NOT NULL,
    site     TEXT NOT NULL,       -- the receiving site
    receipt  BLOB NOT NULL        -- the receiving event's hash (the parcel)
) WITHOUT ROWID;
-- This workstation's own events up to which its blocks of shipped tubes were sent as follow-ups.
ALTER TABLE sync_state ADD COLUMN follow_up_seq INTEGER NOT NULL DEFAULT 0;

-- This workstation's bundles the registry took (or refused, with its code: not sent again).
-- Emptied when the registry turns out to have been put back from an older copy.
CREATE TABLE bundles_posted (
    dispatch  BLOB PRIMARY KEY,
    posted_at INTEGER NOT NULL,
    refused   TEXT
) WITHOUT ROWID;
