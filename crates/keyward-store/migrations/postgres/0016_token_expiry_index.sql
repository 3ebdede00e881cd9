-- Token expiry index (v16): the expiry scheduler asks each workspace, at start and every
-- `expiry.interval_secs`, for its tokens expiring or expired by a time, ordered by expiry.
-- With only `tokens_page` that read every token of the workspace (measured with 1,000,000
-- tokens on SQLite: 8–10 s per query, two queries per pass); this makes it a range scan.
CREATE INDEX tokens_expiry ON tokens (workspace_id, expires_at);
