-- Access policy (v2): IP allowlists on roles and tokens, internal-only tokens, rate limits.
-- Workspace allowlists and internal networks live in the settings JSON.
ALTER TABLE roles ADD COLUMN ip_allowlist TEXT NOT NULL DEFAULT '[]';
ALTER TABLE roles ADD COLUMN rate_limit INTEGER;
ALTER TABLE tokens ADD COLUMN ip_allowlist TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tokens ADD COLUMN internal_only INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN rate_limit INTEGER;
