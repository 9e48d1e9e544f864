-- 004_catalogue_published.sql: catalogue publication time, and the index
-- behind "what has this user already seen" (seen-item filtering at ranker
-- start-up reads every user's history grouped by user).

ALTER TABLE features.videos ADD COLUMN published_at timestamptz;

COMMENT ON COLUMN features.videos.published_at IS
    'When the catalogue published the video; NULL if unknown (imports).';
