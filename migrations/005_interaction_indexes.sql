-- 005_interaction_indexes.sql: fewer, cheaper indexes on interactions.
--
-- Ingestion inserts tens of thousands of rows a second; each b-tree index
-- costs a random write per row, and measured, the five indexes of 001 made
-- the INSERT 85% of a batch's time. Kept: the primary key, event_id (the
-- idempotency key) and (user_id, occurred_at) for per-user history.
-- Dropped: video_id (popularity aggregates the whole table; nothing looks
-- up one video's rows), and the b-tree on occurred_at, replaced by a BRIN
-- index: training selects time ranges, rows arrive roughly in time order,
-- and a BRIN index is a few pages that cost next to nothing to maintain.

DROP INDEX features.interactions_video_idx;
DROP INDEX features.interactions_time_idx;
CREATE INDEX interactions_time_brin ON features.interactions USING brin (occurred_at);
