-- People (v10): what lets a human user sign in to the dashboard. One credentials row per
-- person (Argon2id hash, TOTP secret and the last TOTP step accepted), the hashes of their
-- recovery codes, their invitations and their dashboard sessions, the last two stored by the
-- SHA-256 of their secret. Every row goes with its user (ON DELETE CASCADE), so deleting a
-- user is refused only by the tokens it owns, as before.
CREATE TABLE credentials (
    user_id         TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    workspace_id    TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    password_hash   TEXT,
    totp_secret     TEXT,
    totp_enabled_at BIGINT,
    totp_last_step  BIGINT,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE recovery_codes (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash         TEXT NOT NULL,
    used_at      BIGINT,
    PRIMARY KEY (user_id, hash)
);

CREATE TABLE invitations (
    hash         TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT
);
CREATE INDEX invitations_user ON invitations (user_id);

CREATE TABLE sessions (
    hash         TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    stage        TEXT NOT NULL CHECK (stage IN ('second_factor', 'must_enrol', 'full')),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ip           TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_user ON sessions (user_id, created_at);
CREATE INDEX sessions_last_seen ON sessions (last_seen_at);

-- Sign-in looks people up by e-mail address, case-insensitively, across workspaces.
CREATE INDEX users_email_lower ON users (LOWER(email));
