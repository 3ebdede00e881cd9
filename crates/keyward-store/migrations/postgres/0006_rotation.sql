-- Rotation (v6): a rotated token's replacement records the token it replaced and the first
-- token of their family (NULL on a family's first token: its family is itself). A token is
-- replaced at most once (unique rotated_from; NULLs do not collide), so a family never forks.
ALTER TABLE tokens ADD COLUMN family_id TEXT;
ALTER TABLE tokens ADD COLUMN rotated_from TEXT;
CREATE INDEX tokens_family ON tokens (workspace_id, family_id);
CREATE UNIQUE INDEX tokens_rotated_from ON tokens (rotated_from);
