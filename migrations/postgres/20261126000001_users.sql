-- Users known to dispatch-authz (PostgreSQL). The same tables as
-- migrations/sqlite, in PostgreSQL's types: yes/no columns are booleans,
-- times are seconds since the Unix epoch (BIGINT), ids are UUID text.
-- An identity is (issuer, subject); the login is for display and for the
-- injected x-dispatch-user header only.
CREATE TABLE users (
    id           TEXT    NOT NULL PRIMARY KEY,           -- UUIDv7
    issuer       TEXT    NOT NULL,                       -- configured issuer name
    subject      TEXT    NOT NULL,                       -- the issuer's stable subject
    login        TEXT    NOT NULL,
    email        TEXT,
    display_name TEXT,
    enabled      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    UNIQUE (issuer, subject)
);

CREATE INDEX users_login ON users (login);
