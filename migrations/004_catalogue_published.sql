-- 004_catalogue_published.sql: when the catalogue published a video
-- (catalog-service.video-upserted carries it; imports leave it NULL).

ALTER TABLE features.videos ADD COLUMN published_at timestamptz;

COMMENT ON COLUMN features.videos.published_at IS
    'When the catalogue published the video; NULL if unknown (imports).';
