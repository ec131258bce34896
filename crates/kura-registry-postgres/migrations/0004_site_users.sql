-- Registry 0004: the registry's own projection of each site's users, which it judges every
-- event by (who may do what, whose key signs). Released: never edit; add a new migration.
-- Filled from the stored user events when it is applied (in Rust, after this file).
CREATE TABLE site_users (
    site        text NOT NULL REFERENCES sites(code),
    code        text NOT NULL,
    role        text NOT NULL,
    disabled    boolean NOT NULL DEFAULT false,
    signing_key text,
    key_salt    text,
    PRIMARY KEY (site, code)
);
