-- 006_outbox_attempts.sql: outbox rows that can never be produced are parked.
--
-- A row Kafka will refuse whatever is retried (headers not a JSON object,
-- a message over message.max.bytes, a topic that is invalid or does not
-- exist) used to fail on every claim. Being the oldest row it sat in every
-- page, so every page "failed", the claim back-off ramped to its 5 s cap
-- and never reset, and the whole outbox drained at ~100 rows a second.
-- Now the publisher records each failed attempt on the row, and parks a
-- row whose failure is permanent (failed_at set, in the same transaction
-- that marks its page's delivered rows); the claim skips parked rows.
--
--   attempts    failed produce attempts (transient or permanent); a
--               delivered row is not counted
--   last_error  why the last attempt failed, as librdkafka or the
--               publisher put it
--   failed_at   set once the failure is permanent: the row is never
--               claimed again. To replay after fixing the cause (creating
--               the topic, say): UPDATE public.outbox SET failed_at = NULL
--               WHERE id = ...;
--
-- Adding a column with a constant default rewrites nothing (PostgreSQL 11+).

ALTER TABLE public.outbox
    ADD COLUMN attempts   integer NOT NULL DEFAULT 0,
    ADD COLUMN last_error text,
    ADD COLUMN failed_at  timestamptz;

-- The claim is now "published_at IS NULL AND failed_at IS NULL ORDER BY
-- id": its partial index has to carry the same predicate, or the pinned
-- index scan (publisher_outbox.c) would walk over parked rows on every
-- claim. Created before the old one goes, so the claim is never without
-- an index; both index only unpublished rows, so the build is quick.
CREATE INDEX outbox_claimable_idx ON public.outbox (id)
    WHERE published_at IS NULL AND failed_at IS NULL;
DROP INDEX public.outbox_unpublished_idx;
