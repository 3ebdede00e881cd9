-- Usage (v4): one raw record per verified request, hourly roll-ups that outlive them, and each
-- token's last use. Kept apart from `tokens` so writing usage never touches token rows.
-- Raw records and last uses go with their token (ON DELETE CASCADE); roll-ups of deleted
-- tokens are swept by the usage maintenance (no foreign key, so a roll-up never waits on a
-- token row being deleted).
CREATE TABLE usage_records (
    workspace_id TEXT NOT NULL,
    token_id     TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    at           INTEGER NOT NULL,
    ip           TEXT,
    method       TEXT,
    path         TEXT,
    code         TEXT NOT NULL,
    latency_us   INTEGER NOT NULL
);
CREATE INDEX usage_records_token ON usage_records (token_id, at);
CREATE INDEX usage_records_at ON usage_records (at);

CREATE TABLE usage_hourly (
    workspace_id TEXT NOT NULL,
    token_id     TEXT NOT NULL,
    hour         INTEGER NOT NULL,
    code         TEXT NOT NULL,
    requests     INTEGER NOT NULL,
    PRIMARY KEY (token_id, hour, code)
);
CREATE INDEX usage_hourly_hour ON usage_hourly (hour);

CREATE TABLE token_last_use (
    token_id     TEXT PRIMARY KEY REFERENCES tokens (id) ON DELETE CASCADE,
    workspace_id TEXT NOT NULL,
    at           INTEGER NOT NULL,
    ip           TEXT,
    endpoint     TEXT
);
