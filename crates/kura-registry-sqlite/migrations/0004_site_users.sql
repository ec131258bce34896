-- Registry 0004: the registry's own projection of each site's users, which it judges every
-- event by (who may do what, whose key signs). Released: never edit; add a new migration.
-- Filled from the stored user events when it is applied (in Rust, after this file).
CREATE TABLE site_users (
    site        TEXT NOT NULL REFERENCES sites(code),
    code        TEXT NOT NULL,
    role        TEXT NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0,
    signing_key TEXT,
    key_salt    TEXT,
    PRIMARY KEY (site, code)
);
