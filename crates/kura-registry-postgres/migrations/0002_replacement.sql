-- Registry 0002: enrollment codes for a replacement PC. Released: never edit; add a new migration.

-- A code made with `kura-registry enroll --replaces WORKSTATION` gives that workstation's
-- identity (its stream, its site) to the PC that uses it (`kura recover`); its old token stops
-- working. NULL: a code for a new workstation.
ALTER TABLE enrollments ADD COLUMN replaces uuid;
