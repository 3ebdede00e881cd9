-- Per-user budgets (v13): what a role's or token's own rate limit counts, 'token' (each token
-- on its own, as before) or 'user' (all the owner user's per-user tokens share one budget). It
-- goes with the level's own `rate_limit`: 'token' wherever that is NULL. The workspace
-- default's counterpart (`default_rate_limit_per`) lives in the settings JSON and reads as
-- 'token' when absent.
ALTER TABLE roles ADD COLUMN rate_limit_per TEXT NOT NULL DEFAULT 'token';
ALTER TABLE tokens ADD COLUMN rate_limit_per TEXT NOT NULL DEFAULT 'token';
