-- 003_outbox.sql: the transactional outbox the publisher drains to Kafka.
--
-- A writer inserts its domain event here in the same transaction as the
-- change it describes, so the event exists if and only if the change
-- committed. The publisher (the only Kafka producer) reads unpublished rows
-- in id order, produces them, and sets published_at once Kafka has
-- acknowledged them: delivery is at-least-once, consumers dedupe on the
-- event id carried in the payload.

CREATE TABLE public.outbox (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,
    key           text,                         -- Kafka message key; NULL = none
    payload       jsonb NOT NULL,
    headers       jsonb NOT NULL DEFAULT '{}',  -- Kafka headers, name -> string
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);

-- The publisher's poll, "oldest unpublished first", stays an index scan
-- however many published rows are kept around for inspection.
CREATE INDEX outbox_unpublished_idx ON public.outbox (id) WHERE published_at IS NULL;
