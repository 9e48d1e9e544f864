-- 001_features.sql: the features schema (catalogue, users, interactions).
--
-- Migrations run inside one transaction each (see lib/migrate.h): no
-- BEGIN/COMMIT here, and nothing that refuses a transaction block
-- (CREATE INDEX CONCURRENTLY belongs in a migration of its own, later).
-- Once applied, a migration file is immutable: change the schema with a
-- new numbered file.

CREATE SCHEMA features;
COMMENT ON SCHEMA features IS
    'Inputs to training and serving: catalogue, users, interactions.';

-- Keeps updated_at honest whoever writes the row (importer, ingestor, psql).
CREATE FUNCTION features.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- Ids are opaque text, so every id column uses COLLATE "C": byte order is
-- all an id needs, it is several times cheaper to compare than a
-- linguistic collation (index maintenance on bulk inserts), and such
-- indexes cannot be silently corrupted by an OS collation (glibc) upgrade.

-- The catalogue. Ids are the catalogue's own.
-- A retired video stays here (old interactions and models still name it)
-- but is never recommended.
CREATE TABLE features.videos (
    video_id    text COLLATE "C" PRIMARY KEY,
    title       text,
    genres      text[] NOT NULL DEFAULT '{}',
    tags        text[] NOT NULL DEFAULT '{}',
    duration_s  integer CHECK (duration_s IS NULL OR duration_s >= 0),
    retired     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER videos_touch_updated_at
    BEFORE UPDATE ON features.videos
    FOR EACH ROW EXECUTE FUNCTION features.touch_updated_at();

CREATE TABLE features.users (
    user_id     text COLLATE "C" PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per user event (watch, rating, watchlist change).
--
-- No foreign keys to videos or users, on purpose: events arrive from Kafka
-- independently of catalogue updates, so an event may name a video the
-- catalogue has not told us about yet. Rejecting it would lose data (or
-- block the consumer); readers treat unknown videos as "no metadata".
--
-- event_id is the idempotency key: the ingestor's at-least-once delivery
-- and re-run imports write with ON CONFLICT (event_id) DO NOTHING. Imports
-- derive a deterministic id, e.g. 'ml:rating:<user>:<movie>:<ts>'.
CREATE TABLE features.interactions (
    id                  bigserial PRIMARY KEY,
    event_id            text COLLATE "C" NOT NULL UNIQUE,
    user_id             text COLLATE "C" NOT NULL,
    video_id            text COLLATE "C" NOT NULL,
    kind                text NOT NULL
        CHECK (kind IN ('watch', 'rating', 'watchlist_add', 'watchlist_remove')),
    -- Implicit-feedback strength as the event saw it: watch completion
    -- 0..1, rating/5 for ratings, 1 for watchlist adds. Training turns it
    -- into ALS confidence.
    weight              real,
    rating              real CHECK (rating IS NULL OR rating >= 0),
    watched_duration_s  integer CHECK (watched_duration_s IS NULL OR watched_duration_s >= 0),
    total_duration_s    integer CHECK (total_duration_s IS NULL OR total_duration_s >= 0),
    device              text,
    occurred_at         timestamptz NOT NULL,
    ingested_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'rating' OR rating IS NOT NULL)
);

-- A user's history in time order (ranker start-up, seen-item filtering,
-- time-ordered hold-out).
CREATE INDEX interactions_user_time_idx ON features.interactions (user_id, occurred_at);
-- Per-video aggregates (popularity).
CREATE INDEX interactions_video_idx ON features.interactions (video_id);
-- Time windows (decayed popularity, incremental training).
CREATE INDEX interactions_time_idx ON features.interactions (occurred_at);
