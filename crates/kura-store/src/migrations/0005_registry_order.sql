-- Kura 0005: the registry's order, the conflicts the rules raise, and what sync needs to say
-- where it stands. Released migrations are never edited; changes come as new files.

-- Where the central registry put each event in the site's order (its server_seq). The bench's
-- projection is the log folded in this order, events the registry has not ordered yet last in
-- local order: the registry's own order, so every bench of a site ends with the same state.
CREATE TABLE event_order (
    event INTEGER PRIMARY KEY REFERENCES events(id),
    major INTEGER NOT NULL,  -- server_seq; for an event the registry kept as a rejection, the
                             -- newest server_seq known when it answered
    minor INTEGER NOT NULL   -- 0; for a rejection, the event's local id
);
CREATE INDEX event_order_major ON event_order(major);

-- Holes in another workstation's stream, as pulled: the registry refused the events between
-- (they are not custody), so the chain cannot be followed across them.
CREATE TABLE stream_gaps (
    workstation BLOB    NOT NULL,
    after_seq   INTEGER NOT NULL,
    next_seq    INTEGER NOT NULL,
    PRIMARY KEY (workstation, after_seq)
) WITHOUT ROWID;

-- Projection: events the rules refused where they were recorded (another bench's, or any event
-- in the registry's order). The event stays in the log; the specimen is flagged in_conflict.
CREATE TABLE conflicts (
    event       INTEGER PRIMARY KEY REFERENCES events(id),  -- the refused event
    subject     TEXT    NOT NULL,                           -- specimen or container code
    code        TEXT    NOT NULL,                           -- the rule that refused it
    message     TEXT    NOT NULL,
    other       INTEGER REFERENCES events(id),              -- the earlier event it disagrees with
    resolved_by INTEGER REFERENCES events(id)
);
CREATE INDEX conflicts_subject ON conflicts(subject);

-- Before-images of the rows this bench's own events changed, while the registry's order may still
-- put other events before them (until the pull cursor passes them). A pull that must go before
-- them undoes them, applies the pulled events, and applies them again: exact, and as cheap as
-- the events involved. Not part of the projection; a rebuild writes it again.
CREATE TABLE undo (
    event INTEGER PRIMARY KEY REFERENCES events(id),
    image TEXT    NOT NULL   -- JSON: the specimen, container and label_prints rows as they were
);

-- Projection: the last event that changed (or was refused on) each specimen and container: the
-- other half of a conflict.
ALTER TABLE specimens ADD COLUMN last_event INTEGER;
ALTER TABLE containers ADD COLUMN last_event INTEGER;
UPDATE specimens SET last_event = (
    SELECT max(es.event) FROM event_subjects es
    WHERE es.specimen = specimens.id
      AND (SELECT e.kind FROM events e WHERE e.id = es.event) NOT IN ('labels_printed', 'container_moved'));
CREATE TABLE migration_container_last AS
    SELECT coalesce(json_extract(payload, '$.container.id'), json_extract(payload, '$.container')) AS code,
           max(id) AS event
    FROM events WHERE kind IN ('container_created', 'container_moved') GROUP BY 1;
UPDATE containers SET last_event = (
    SELECT event FROM migration_container_last m WHERE m.code = containers.code);
DROP TABLE migration_container_last;

-- Where this workstation stands with the registry, beyond 0004's columns.
ALTER TABLE sync_state ADD COLUMN site TEXT;            -- JSON: the site it was enrolled at
ALTER TABLE sync_state ADD COLUMN registry_ca TEXT;     -- a CA certificate file to trust (PEM)
ALTER TABLE sync_state ADD COLUMN clock_skew_us INTEGER; -- this bench's clock minus the registry's
ALTER TABLE sync_state ADD COLUMN last_attempt INTEGER; -- UTC microseconds
ALTER TABLE sync_state ADD COLUMN last_error_code TEXT;
ALTER TABLE sync_state ADD COLUMN stopped TEXT;         -- why pushing stopped (a sequence fork)
