-- Kura 0010: a registry that lost the tail of the site's order (restored from an older copy)
-- and ordered the events sent again anew. Released migrations are never edited.

-- The places (event_order.major) this bench had learnt above the last position it and the
-- registry agree on, dropped from event_order while the pull learns them again: an event learnt
-- at another place, or not learnt again at all, means the projection is refolded once at the end.
CREATE TABLE order_relearn (
    event INTEGER PRIMARY KEY REFERENCES events(id),
    major INTEGER NOT NULL
);

-- Another workstation's events the registry said it refused (kept as rejections, never in the
-- site's order): the only holes a pulled stream may have. A jump over anything else stops the
-- pull, and verify reports it. (0005's stream_gaps recorded every jump, told or not; verify no
-- longer trusts it.)
CREATE TABLE stream_refused (
    workstation BLOB    NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (workstation, seq)
) WITHOUT ROWID;

-- 0: the order is settled; 1: learning it again above the pull cursor; 2: and the projection
-- must be refolded when the pull has caught up.
ALTER TABLE sync_state ADD COLUMN relearn INTEGER NOT NULL DEFAULT 0;
