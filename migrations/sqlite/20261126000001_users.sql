-- Users known to dispatch-authz. An identity is (issuer, subject); the login
-- is for display and for the injected x-dispatch-user header only.
CREATE TABLE users (
    id           TEXT    NOT NULL PRIMARY KEY,           -- UUIDv7
    issuer       TEXT    NOT NULL,                       -- configured issuer name
    subject      TEXT    NOT NULL,                       -- the issuer's stable subject
    login        TEXT    NOT NULL,
    email        TEXT,
    display_name TEXT,
    enabled      INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at   INTEGER NOT NULL,                       -- seconds since the Unix epoch
    updated_at   INTEGER NOT NULL,
    UNIQUE (issuer, subject)
);

CREATE INDEX users_login ON users (login);
