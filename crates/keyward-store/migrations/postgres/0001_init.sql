-- keyward schema v1 (PostgreSQL). Times are Unix milliseconds; ids are UUID text; JSON is text.
CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    operator    BOOLEAN NOT NULL DEFAULT FALSE,
    settings    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX workspaces_page ON workspaces (created_at, id);

CREATE TABLE roles (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    description  TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('human', 'api')),
    scope        TEXT NOT NULL CHECK (scope IN ('user', 'workspace')),
    permissions  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, name)
);
CREATE INDEX roles_page ON roles (workspace_id, created_at, id);

CREATE TABLE users (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('human', 'service')),
    name         TEXT NOT NULL,
    email        TEXT,
    role_id      TEXT REFERENCES roles (id),
    disabled     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (workspace_id, email)
);
CREATE INDEX users_page ON users (workspace_id, created_at, id);
CREATE INDEX users_role ON users (role_id);

CREATE TABLE permissions (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    permission   TEXT NOT NULL,
    description  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, permission)
);

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    owner_id     TEXT NOT NULL REFERENCES users (id),
    role_id      TEXT REFERENCES roles (id),
    permissions  TEXT,
    name         TEXT NOT NULL,
    metadata     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'active', 'revoked')),
    hash         TEXT NOT NULL UNIQUE,
    start        TEXT NOT NULL,
    not_before   BIGINT,
    expires_at   BIGINT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX tokens_page ON tokens (workspace_id, created_at, id);
CREATE INDEX tokens_owner ON tokens (owner_id);
CREATE INDEX tokens_role ON tokens (role_id);
