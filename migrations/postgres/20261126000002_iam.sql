-- Organizations, their members, roles and role bindings, service accounts
-- and their keys, and the audit log of every admin change (PostgreSQL; the
-- same tables as migrations/sqlite).
--
-- References to organizations restrict deletion (an organization must be
-- emptied first, so nothing disappears by accident); references to users and
-- service accounts cascade (removing a subject removes what it held).

CREATE TABLE organizations (
    name        TEXT    NOT NULL PRIMARY KEY,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE memberships (
    org         TEXT    NOT NULL REFERENCES organizations (name),
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    is_default  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (org, user_id)
);

CREATE INDEX memberships_user ON memberships (user_id);
-- At most one default organization per user.
CREATE UNIQUE INDEX memberships_one_default ON memberships (user_id) WHERE is_default;

-- org NULL: a global role, applying in every organization.
CREATE TABLE roles (
    id          TEXT    NOT NULL PRIMARY KEY,
    org         TEXT    REFERENCES organizations (name),
    name        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE UNIQUE INDEX roles_scope_name ON roles (COALESCE(org, ''), name);

-- resource and action are names or '*'.
CREATE TABLE role_permissions (
    role_id     TEXT    NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    resource    TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    PRIMARY KEY (role_id, resource, action)
);

CREATE TABLE service_accounts (
    id          TEXT    NOT NULL PRIMARY KEY,
    org         TEXT    NOT NULL REFERENCES organizations (name),
    name        TEXT    NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (org, name)
);

CREATE TABLE service_account_keys (
    id                  TEXT    NOT NULL PRIMARY KEY,   -- also the JWT kid
    service_account_id  TEXT    NOT NULL REFERENCES service_accounts (id) ON DELETE CASCADE,
    algorithm           TEXT    NOT NULL,
    public_key_pem      TEXT    NOT NULL,
    created_at          BIGINT  NOT NULL
);

CREATE INDEX service_account_keys_account ON service_account_keys (service_account_id);

-- Exactly one of user_id and service_account_id.
CREATE TABLE role_bindings (
    id                  TEXT    NOT NULL PRIMARY KEY,
    role_id             TEXT    NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    user_id             TEXT    REFERENCES users (id) ON DELETE CASCADE,
    service_account_id  TEXT    REFERENCES service_accounts (id) ON DELETE CASCADE,
    created_at          BIGINT  NOT NULL,
    CHECK ((user_id IS NULL) <> (service_account_id IS NULL))
);

CREATE UNIQUE INDEX role_bindings_user ON role_bindings (role_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX role_bindings_sa ON role_bindings (role_id, service_account_id)
    WHERE service_account_id IS NOT NULL;
CREATE INDEX role_bindings_by_user ON role_bindings (user_id);
CREATE INDEX role_bindings_by_sa ON role_bindings (service_account_id);

-- Append-only. before/after are JSON snapshots (NULL for a create/delete side).
CREATE TABLE audit_log (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,   -- "user:<id>", "service-account:<id>" or "cli:<os user>"
    action      TEXT    NOT NULL,   -- e.g. "role.create"
    org         TEXT,               -- the organization concerned, if any
    target      TEXT    NOT NULL,
    before      TEXT,
    after       TEXT
);

CREATE INDEX audit_log_org ON audit_log (org, id);
