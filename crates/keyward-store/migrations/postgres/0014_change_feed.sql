-- Change feed (v14, PostgreSQL only): every change to a row a cached verification is compiled
-- from is announced on the channel `keyward_changes`, from inside the changing transaction,
-- so it is delivered exactly when (and only if) the change commits. The payload is
-- "<schema> <kind> <id> <micros>": the table's schema (several deployments may share one
-- database), then token, user, role or workspace, the id whose cache entries must go, and
-- when the change was made (Unix microseconds, the server's clock: how late the listeners
-- learn of it). Whatever writes the row (any node, the expiry sweep, an operator's own SQL)
-- is announced alike.
CREATE FUNCTION keyward_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        changed := to_jsonb(OLD);
    ELSE
        changed := to_jsonb(NEW);
    END IF;
    PERFORM pg_notify(
        'keyward_changes',
        TG_TABLE_SCHEMA || ' ' || TG_ARGV[0] || ' ' || (changed ->> TG_ARGV[1]) || ' '
            || (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
    );
    RETURN NULL;
END
$$;

CREATE TRIGGER tokens_announce AFTER UPDATE OR DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION keyward_announce_change('token', 'id');
CREATE TRIGGER users_announce AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION keyward_announce_change('user', 'id');
CREATE TRIGGER roles_announce AFTER UPDATE OR DELETE ON roles
    FOR EACH ROW EXECUTE FUNCTION keyward_announce_change('role', 'id');
CREATE TRIGGER workspaces_announce AFTER UPDATE OR DELETE ON workspaces
    FOR EACH ROW EXECUTE FUNCTION keyward_announce_change('workspace', 'id');
-- The catalogue: a permission added, changed or removed changes how its workspace's patterns
-- expand.
CREATE TRIGGER permissions_announce AFTER INSERT OR UPDATE OR DELETE ON permissions
    FOR EACH ROW EXECUTE FUNCTION keyward_announce_change('workspace', 'workspace_id');
