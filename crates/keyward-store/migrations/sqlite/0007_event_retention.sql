-- Event retention (v7): the retention pass deletes finished deliveries and events by age and
-- their attempts by delivery; without these indexes each delete (and each foreign-key check
-- of a deleted row) would scan a whole table.
CREATE INDEX deliveries_age ON deliveries (created_at);
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id);
CREATE INDEX events_age ON events (created_at);
