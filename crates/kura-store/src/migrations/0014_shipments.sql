-- Kura 0014: shipments (projection of shipment_dispatched events): one row per shipment, its
-- manifest as the event states it. Each tube's own custody is in `specimens` (in_transit or
-- distributed, through its shipped or distributed event).
CREATE TABLE shipments (
    code          TEXT PRIMARY KEY,  -- the shipment's id, SHP-…
    destination   TEXT NOT NULL,     -- site:CODE or recipient:NAME
    manifest      TEXT NOT NULL,     -- the Shipment as JSON
    tubes         INTEGER NOT NULL,
    dispatched_at INTEGER NOT NULL,  -- µs, the dispatching event's time
    last_event    INTEGER NOT NULL
) WITHOUT ROWID;
