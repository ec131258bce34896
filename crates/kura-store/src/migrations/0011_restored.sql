-- Kura 0011: a database that came back from a copy (kura restore, kura recover). Released
-- migrations are never edited.

-- When it came back (µs): until a sync round has brought back what the registry holds of this
-- workstation's own stream, nothing new is recorded here, so no seq is written twice (which the
-- registry would have to refuse as a fork). NULL: the database is its own latest state.
ALTER TABLE sync_state ADD COLUMN restored_at INTEGER;
