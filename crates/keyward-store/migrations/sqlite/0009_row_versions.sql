-- Row versions (v7): every change of a workspace, user, role or token row increments its
-- version, and an update names the version it read (optimistic concurrency). A write based
-- on a stale read (a PATCH that read a token before a rotation or a revocation) matches no
-- row and is retried on a fresh read, instead of writing the old values back.
ALTER TABLE workspaces ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE roles ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
