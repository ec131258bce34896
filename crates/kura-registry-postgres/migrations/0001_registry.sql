-- The central registry, version 1. Released: never edit; add a new migration.

CREATE TABLE sites (
    code         text PRIMARY KEY,
    name         text NOT NULL,
    prefix       text NOT NULL,
    serial_width integer NOT NULL,
    -- The site's newest server_seq; a push holds this row (SELECT … FOR UPDATE) until commit,
    -- so a site's events commit in server_seq order and a pull never skips one.
    last_seq     bigint NOT NULL DEFAULT 0
);

CREATE TABLE enrollments (
    code_hash  bytea PRIMARY KEY,
    site       text NOT NULL REFERENCES sites (code),
    expires_at bigint NOT NULL,
    used_at    bigint,
    used_by    uuid
);

CREATE TABLE workstations (
    id            uuid PRIMARY KEY,
    site          text NOT NULL REFERENCES sites (code),
    name          text NOT NULL,
    token_hash    bytea NOT NULL UNIQUE,
    enrolled_at   bigint NOT NULL,
    revoked_at    bigint,
    head_seq      bigint NOT NULL DEFAULT 0,
    head_hash     bytea,
    clock_skew_us bigint,
    last_seen     bigint
);

CREATE TABLE events (
    site        text NOT NULL,
    server_seq  bigint NOT NULL,
    id          uuid NOT NULL UNIQUE,
    workstation uuid NOT NULL,
    seq         bigint NOT NULL,
    actor       text NOT NULL,
    at          bigint NOT NULL,
    kind        text NOT NULL,
    payload     text NOT NULL,
    hash        bytea NOT NULL,
    received_at bigint NOT NULL,
    PRIMARY KEY (site, server_seq),
    UNIQUE (workstation, seq)
);

CREATE FUNCTION kura_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'custody events are never updated or deleted';
END;
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION kura_refuse_change();

CREATE TABLE rejections (
    workstation uuid NOT NULL,
    seq         bigint NOT NULL,
    id          uuid NOT NULL,
    hash        bytea NOT NULL,
    code        text NOT NULL,
    message     text NOT NULL,
    kind        text NOT NULL,
    payload     text NOT NULL,
    received_at bigint NOT NULL,
    PRIMARY KEY (workstation, seq)
);

CREATE TABLE specimens (
    site       text NOT NULL,
    code       text NOT NULL,
    state      text NOT NULL,
    container  text,
    pos_row    integer,
    pos_col    integer,
    last_event uuid NOT NULL,
    PRIMARY KEY (site, code)
);
CREATE INDEX specimens_slot ON specimens (site, container, pos_row, pos_col)
    WHERE container IS NOT NULL;

CREATE TABLE containers (
    site       text NOT NULL,
    id         text NOT NULL,
    spec       text NOT NULL,
    parent     text,
    pos_row    integer,
    pos_col    integer,
    last_event uuid NOT NULL,
    PRIMARY KEY (site, id)
);
CREATE INDEX containers_slot ON containers (site, parent, pos_row, pos_col)
    WHERE parent IS NOT NULL;

CREATE TABLE conflicts (
    site        text NOT NULL,
    server_seq  bigint NOT NULL,
    subject     text NOT NULL,
    code        text NOT NULL,
    message     text NOT NULL,
    events      uuid[] NOT NULL,
    resolved_by uuid,
    PRIMARY KEY (site, server_seq)
);
CREATE INDEX conflicts_open ON conflicts (site, subject) WHERE resolved_by IS NULL;

CREATE TABLE leases (
    site        text NOT NULL,
    year        integer NOT NULL,
    first       bigint NOT NULL,
    last        bigint NOT NULL,
    workstation uuid NOT NULL,
    granted_at  bigint NOT NULL,
    PRIMARY KEY (site, year, first)
);
CREATE INDEX leases_workstation ON leases (workstation);
