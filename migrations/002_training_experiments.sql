-- 002_training_experiments.sql: schemas for the trainer and for A/B tests.
--
-- Created empty so that later migrations can add their tables and so that
-- grants can be set up per schema from the start.

CREATE SCHEMA training;
COMMENT ON SCHEMA training IS
    'Trainer: job queue, runs, model registry, offline metrics.';

CREATE SCHEMA experiments;
COMMENT ON SCHEMA experiments IS
    'A/B tests: experiments, variants, exposures, outcomes.';
