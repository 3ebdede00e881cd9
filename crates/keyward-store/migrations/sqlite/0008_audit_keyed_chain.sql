-- Keyed audit chain (v7): events are sealed with HMAC-SHA256 under a key kept outside the
-- database. Each chain head records its first keyed event and an HMAC over that number, the
-- border between the plain SHA-256 events written before (still verifiable) and the keyed
-- ones. Chains that exist now are marked 0: keyward, opening the store with its key right
-- after this migration, appends their first keyed event (audit.chain_keyed) and records it.
-- New chains are keyed from event 1. A head without the record is a broken chain.
ALTER TABLE audit_heads ADD COLUMN keyed_from INTEGER;
ALTER TABLE audit_heads ADD COLUMN keyed_mac TEXT;
UPDATE audit_heads SET keyed_from = 0;
