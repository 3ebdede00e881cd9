-- Change requests (v11): security changes that wait for a second person's approval. A request
-- keeps the patch as the API took it, the target as it was and the target row's version then
-- (JSON text), who asked and why, and how it was decided; the one-time approval code only as
-- its SHA-256. Its approvals are rows of their own, one per person (the primary key), kept as
-- history: they name people and tokens by id without a foreign key, so deleting a user or a
-- token leaves the record of what they approved. A workspace's requests go with it.
CREATE TABLE change_requests (
    id                TEXT PRIMARY KEY,
    workspace_id      TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    target_kind       TEXT NOT NULL CHECK (target_kind IN ('workspace', 'role', 'token')),
    target_id         TEXT,
    change            TEXT NOT NULL,
    before            TEXT NOT NULL,
    base_version      BIGINT NOT NULL,
    requested_by      TEXT NOT NULL,
    requested_by_user TEXT,
    reason            TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'rejected',
                                                     'cancelled', 'expired', 'failed')),
    approvals_needed  BIGINT NOT NULL,
    code_hash         TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    decided_at        BIGINT,
    decided_by        TEXT,
    comment           TEXT NOT NULL,
    outcome           TEXT
);
CREATE INDEX change_requests_listing ON change_requests (workspace_id, created_at, id);
CREATE INDEX change_requests_target ON change_requests (workspace_id, target_kind, target_id);
CREATE INDEX change_requests_pending ON change_requests (state, expires_at);

CREATE TABLE change_request_approvals (
    request_id TEXT NOT NULL REFERENCES change_requests (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    token_id   TEXT,
    at         BIGINT NOT NULL,
    comment    TEXT NOT NULL,
    PRIMARY KEY (request_id, user_id)
);
