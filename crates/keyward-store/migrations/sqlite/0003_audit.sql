-- Audit trail (v3): one hash chain of events per workspace. audit_heads holds each chain's
-- last number and hash; appending updates it first, which serialises appends per workspace
-- (a row lock on PostgreSQL, the write lock on SQLite) inside the transaction of the change
-- being audited. before/after are the JSON text exactly as hashed.
CREATE TABLE audit_heads (
    workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    hash         TEXT NOT NULL
);

CREATE TABLE audit_events (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    at           INTEGER NOT NULL,
    actor_kind   TEXT NOT NULL,
    actor_token  TEXT,
    actor_user   TEXT,
    action       TEXT NOT NULL,
    target_kind  TEXT NOT NULL,
    target_id    TEXT NOT NULL,
    before       TEXT,
    after        TEXT,
    ip           TEXT,
    count        INTEGER NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL,
    PRIMARY KEY (workspace_id, seq)
);
CREATE INDEX audit_events_at ON audit_events (workspace_id, at);
CREATE INDEX audit_events_target ON audit_events (workspace_id, target_id);
CREATE INDEX audit_events_actor ON audit_events (workspace_id, actor_token);
