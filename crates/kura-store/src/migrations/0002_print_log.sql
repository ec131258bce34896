-- Kura 0002: how often each code's label has been printed (projection of labels_printed
-- events; reprints are marked from it).
CREATE TABLE label_prints (
    code   TEXT PRIMARY KEY,
    prints INTEGER NOT NULL,
    last   INTEGER NOT NULL   -- the event's local row id
) WITHOUT ROWID;
