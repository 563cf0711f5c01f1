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
    created_at  BIGINT  NOT NULL,
    UNIQUE (org, name)
);

-- Exactly one of user_id and service_account_id.
CREATE TABLE group_members (
    group_id            TEXT    NOT NULL REFERENCES org_groups (id) ON DELETE CASCADE,
    user_id             TEXT    REFERENCES users (id) ON DELETE CASCADE,
    service_account_id  TEXT    REFERENCES service_accounts (id) ON DELETE CASCADE,
    created_at          BIGINT  NOT NULL,
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
    created_at  BIGINT  NOT NULL,
    UNIQUE (role_id, group_id)
);

CREATE INDEX group_role_bindings_by_group ON group_role_bindings (group_id);

-- Other replicas forget what a group change makes stale (see
-- 20261130000003_notify.sql): a member's grants when it joins or leaves; every
-- member's when a role is bound to or unbound from the group (a group
-- deleted removes its members, which notifies for each).
CREATE FUNCTION dispatch_authz_notify_group_member() RETURNS trigger AS $$
DECLARE
    m record;
BEGIN
    IF TG_OP = 'DELETE' THEN m := OLD; ELSE m := NEW; END IF;
    PERFORM pg_notify('dispatch_authz_changes', jsonb_build_object(
        'k', 'grants', 'user', m.user_id, 'account', m.service_account_id)::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER group_members_notify AFTER INSERT OR UPDATE OR DELETE ON group_members
    FOR EACH ROW EXECUTE FUNCTION dispatch_authz_notify_group_member();

CREATE FUNCTION dispatch_authz_notify_group_binding() RETURNS trigger AS $$
DECLARE
    b record;
    m record;
BEGIN
    IF TG_OP = 'DELETE' THEN b := OLD; ELSE b := NEW; END IF;
    FOR m IN SELECT user_id, service_account_id FROM group_members WHERE group_id = b.group_id LOOP
        PERFORM pg_notify('dispatch_authz_changes', jsonb_build_object(
            'k', 'grants', 'user', m.user_id, 'account', m.service_account_id)::text);
    END LOOP;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER group_role_bindings_notify AFTER INSERT OR UPDATE OR DELETE ON group_role_bindings
    FOR EACH ROW EXECUTE FUNCTION dispatch_authz_notify_group_binding();
