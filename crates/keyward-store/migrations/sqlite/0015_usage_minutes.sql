-- Usage per minute (v15): verified requests are counted in memory and stored as one row per
-- (token, minute, decision code, client address, endpoint) with a count and the latency's sum
-- and maximum, instead of one row per request. Unknown parts are '' (not NULL) so they take
-- part in the primary key that the writer's upsert adds to. Rows go with their token, and the
-- usage maintenance folds those older than the raw retention into `usage_hourly`.
-- A token with `request_log` on still gets one `usage_records` row per request (a log for a
-- token under investigation); its requests are not counted here as well.
CREATE TABLE usage_minutes (
    workspace_id   TEXT NOT NULL,
    token_id       TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    minute         INTEGER NOT NULL,
    code           TEXT NOT NULL,
    ip             TEXT NOT NULL,
    method         TEXT NOT NULL,
    path           TEXT NOT NULL,
    requests       INTEGER NOT NULL,
    latency_sum_us INTEGER NOT NULL,
    latency_max_us INTEGER NOT NULL,
    PRIMARY KEY (token_id, minute, code, ip, method, path)
);
CREATE INDEX usage_minutes_minute ON usage_minutes (minute);

ALTER TABLE tokens ADD COLUMN request_log INTEGER NOT NULL DEFAULT 0;
