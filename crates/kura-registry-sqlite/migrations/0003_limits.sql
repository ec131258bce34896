-- Registry 0003: per-site limits on serials. Released: never edit; add a new migration.

-- The most serials one enrollment may claim as already issued by the bench (a database that
-- issued Kura IDs before it was enrolled), and the most serials one workstation may be leased or
-- claim in 24 hours: one code or one stolen token cannot use up a year's serials for the site.
ALTER TABLE sites ADD COLUMN claim_cap INTEGER NOT NULL DEFAULT 100000;
ALTER TABLE sites ADD COLUMN daily_serials INTEGER NOT NULL DEFAULT 300000;
