-- 010_experiment_results.sql: what the experiments library
-- (lib/experiment_store.c) needs beyond 008.

-- Assignment gives each variant a consecutive range of buckets in the
-- variants' order (lib/experiment.h), so that order must be stored: the
-- primary key would order by name, not as the admin declared them.
-- Existing rows get 0 and fall back to name order (the loader orders by
-- position, then name), which is how they would have been read before.
ALTER TABLE experiments.variants
    ADD COLUMN position smallint NOT NULL DEFAULT 0 CHECK (position >= 0 AND position < 16);

-- Results aggregate one experiment's exposures per variant; without this
-- the results endpoint scans the whole (large, append-only) table.
CREATE INDEX exposures_experiment_idx ON experiments.exposures (experiment_id, variant);
