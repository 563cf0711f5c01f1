-- Cross-replica cache invalidation (issue 12): every change to a table the
-- check path caches notifies channel `dispatch_authz_changes` with the keys
-- it touched, as JSON. Row triggers run inside the writing transaction, and
-- PostgreSQL delivers a NOTIFY only when that transaction commits: a
-- rolled-back write notifies nobody, and a committed one everybody, whoever
-- wrote it (a replica, the CLI, or plain SQL).

CREATE FUNCTION dispatch_authz_notify() RETURNS trigger AS $$
DECLARE
    -- The row as JSON: one function serves tables of different columns.
    r jsonb;
    payload jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
    payload := CASE TG_TABLE_NAME
        WHEN 'users' THEN jsonb_build_object(
            'k', 'user', 'id', r->'id', 'issuer', r->'issuer', 'subject', r->'subject')
        WHEN 'memberships' THEN jsonb_build_object('k', 'grants', 'user', r->'user_id')
        WHEN 'role_bindings' THEN jsonb_build_object(
            'k', 'grants', 'user', r->'user_id', 'account', r->'service_account_id')
        WHEN 'service_accounts' THEN jsonb_build_object(
            'k', 'account', 'id', r->'id', 'org', r->'org', 'name', r->'name')
        WHEN 'organizations' THEN jsonb_build_object('k', 'org', 'name', r->'name')
    END;
    PERFORM pg_notify('dispatch_authz_changes', payload::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER users_notify AFTER INSERT OR UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION dispatch_authz_notify();
CREATE TRIGGER memberships_notify AFTER INSERT OR UPDATE OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION dispatch_authz_notify();
CREATE TRIGGER role_bindings_notify AFTER INSERT OR UPDATE OR DELETE ON role_bindings
    FOR EACH ROW EXECUTE FUNCTION dispatch_authz_notify();
CREATE TRIGGER service_accounts_notify AFTER INSERT OR UPDATE OR DELETE ON service_accounts
    FOR EACH ROW EXECUTE FUNCTION dispatch_authz_notify();
CREATE TRIGGER organizations_notify AFTER INSERT OR UPDATE OR DELETE ON organizations
    FOR EACH ROW EXECUTE FUNCTION dispatch_authz_notify();

-- A key added or removed changes what the account's tokens verify with:
-- notify as a change of the account itself (its org and name looked up; when
-- the account is being deleted too, its own trigger has notified already).
CREATE FUNCTION dispatch_authz_notify_key() RETURNS trigger AS $$
DECLARE
    k record;
    a record;
BEGIN
    IF TG_OP = 'DELETE' THEN k := OLD; ELSE k := NEW; END IF;
    SELECT id, org, name INTO a FROM service_accounts WHERE id = k.service_account_id;
    IF FOUND THEN
        PERFORM pg_notify('dispatch_authz_changes', jsonb_build_object(
            'k', 'account', 'id', a.id, 'org', a.org, 'name', a.name)::text);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER service_account_keys_notify AFTER INSERT OR UPDATE OR DELETE ON service_account_keys
    FOR EACH ROW EXECUTE FUNCTION dispatch_authz_notify_key();
