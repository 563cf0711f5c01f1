-- Groups (roadmap 1.3): an organization's named set of users and service
-- accounts; roles bound to a group are held by its members in that
-- organization, and belonging to a group of an organization makes one a
-- member of it for a check.
--
-- Like the other references to organizations, a group's restricts deletion
-- (an organization's groups go before it does); members and bindings go with
-- their group, their subject or their role.

CREATE TABLE org_groups (
    id          TEXT    NOT NULL PRIMARY KEY,
    org         TEXT    NOT NULL REFERENCES organizations (name),
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (org, name)
);

-- Exactly one of user_id and service_account_id.
CREATE TABLE group_members (
    group_id            TEXT    NOT NULL REFERENCES org_groups (id) ON DELETE CASCADE,
    user_id             TEXT    REFERENCES users (id) ON DELETE CASCADE,
    service_account_id  TEXT    REFERENCES service_accounts (id) ON DELETE CASCADE,
    created_at          INTEGER NOT NULL,
    CHECK ((user_id IS NULL) <> (service_account_id IS NULL))
);

CREATE UNIQUE INDEX group_members_user ON group_members (group_id, user_id)
    WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX group_members_sa ON group_members (group_id, service_account_id)
    WHERE service_account_id IS NOT NULL;
CREATE INDEX group_members_by_user ON group_members (user_id);
CREATE INDEX group_members_by_sa ON group_members (service_account_id);

CREATE TABLE group_role_bindings (
    id          TEXT    NOT NULL PRIMARY KEY,
    role_id     TEXT    NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    group_id    TEXT    NOT NULL REFERENCES org_groups (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    UNIQUE (role_id, group_id)
);

CREATE INDEX group_role_bindings_by_group ON group_role_bindings (group_id);
