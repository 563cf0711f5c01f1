-- Groups linked to an identity source (issue 15): `link` is
-- `SOURCE:CLAIM=VALUE` (`github:team=acme/platform`, `dex:groups=ops`); the
-- verified identity proves membership, no member rows are kept for it.
ALTER TABLE org_groups ADD COLUMN link TEXT;

CREATE INDEX org_groups_linked ON org_groups (link) WHERE link IS NOT NULL;

-- Other replicas read the linked groups again ('linked', no keys: whose
-- membership a link proves is known only from identities) when a linked
-- group is created, linked, unlinked or deleted, or a role is bound to or
-- unbound from one (a role deleted unbinds it, which fires the same).
CREATE FUNCTION dispatch_authz_notify_linked_group() RETURNS trigger AS $$
BEGIN
    IF (TG_OP <> 'INSERT' AND OLD.link IS NOT NULL)
        OR (TG_OP <> 'DELETE' AND NEW.link IS NOT NULL) THEN
        PERFORM pg_notify('dispatch_authz_changes', '{"k":"linked"}');
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER org_groups_notify_linked AFTER INSERT OR UPDATE OR DELETE ON org_groups
    FOR EACH ROW EXECUTE FUNCTION dispatch_authz_notify_linked_group();

CREATE FUNCTION dispatch_authz_notify_linked_binding() RETURNS trigger AS $$
DECLARE
    b record;
BEGIN
    IF TG_OP = 'DELETE' THEN b := OLD; ELSE b := NEW; END IF;
    IF EXISTS (SELECT 1 FROM org_groups WHERE id = b.group_id AND link IS NOT NULL) THEN
        PERFORM pg_notify('dispatch_authz_changes', '{"k":"linked"}');
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER group_role_bindings_notify_linked AFTER INSERT OR UPDATE OR DELETE
    ON group_role_bindings
    FOR EACH ROW EXECUTE FUNCTION dispatch_authz_notify_linked_binding();
