-- 009_video_upserts.sql: the catalogue's own version of each video, so that
-- catalog-service.video-upserted is applied idempotently and in order.
--
-- The event-ingestor writes a VideoUpserted only if its updated_at is newer
-- than catalog_updated_at (NULL: never updated by the catalogue, e.g. a
-- video known from an import, which any catalogue update replaces). A
-- replay, a duplicate delivery or an older update arriving late (another
-- partition, a re-sync) then changes nothing. updated_at stays the row's
-- own modification time (trigger of 001).

ALTER TABLE features.videos ADD COLUMN catalog_updated_at timestamptz;

COMMENT ON COLUMN features.videos.catalog_updated_at IS
    'updated_at of the last catalogue change applied (VideoUpserted); NULL if none: '
    'an update is applied only if newer.';
