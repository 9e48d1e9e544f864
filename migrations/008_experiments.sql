-- 008_experiments.sql: A/B tests of recommendation algorithms (issue 6).
--
-- A first shape for the experiments schema: the experiment and its
-- variants are small, edited through the admin API and read by every
-- gateway and ranker; exposures and outcomes are large and append-only,
-- written in bulk and read by the results endpoint. Assignment needs no
-- table: it is a hash of the salt and the user id into buckets.

-- One experiment. Overlapping experiments must sit on disjoint traffic
-- layers; within a layer at most one runs at a time (index below), so a
-- user's bucket in a layer means one thing.
CREATE TABLE experiments.experiments (
    experiment_id  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    description    text NOT NULL DEFAULT '',
    status         text NOT NULL DEFAULT 'draft'
        CHECK (status IN ('draft', 'running', 'stopped')),
    layer          text COLLATE "C" NOT NULL DEFAULT 'default',
    -- Mixed into the assignment hash; changing it re-shuffles only this
    -- experiment's users.
    salt           text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', '')
        CHECK (length(salt) > 0),
    start_at       timestamptz,
    end_at         timestamptz,
    created_by     text NOT NULL DEFAULT 'unknown',
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (start_at IS NULL OR end_at IS NULL OR start_at <= end_at)
);

CREATE UNIQUE INDEX experiments_running_layer_idx ON experiments.experiments (layer)
    WHERE status = 'running';

-- features.touch_updated_at (001) does the same for videos.
CREATE TRIGGER experiments_touch_updated_at
    BEFORE UPDATE ON experiments.experiments
    FOR EACH ROW EXECUTE FUNCTION features.touch_updated_at();

-- What each arm serves: a model type (its active version), one pinned
-- model version, and/or parameters (e.g. the hybrid blend). All three
-- empty means "the serving default", which a control usually is.
CREATE TABLE experiments.variants (
    experiment_id  uuid NOT NULL REFERENCES experiments.experiments ON DELETE CASCADE,
    name           text COLLATE "C" NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    -- Share of the experiment's traffic in percent; the weights of one
    -- experiment sum to 100 (checked at commit, trigger below).
    weight         numeric(5, 2) NOT NULL CHECK (weight > 0 AND weight <= 100),
    model_type     text COLLATE "C" CHECK (model_type IS NULL OR model_type IN
        ('collaborative', 'content', 'hybrid', 'popularity', 'ease', 'item_knn')),
    model_id       uuid REFERENCES training.models,
    params         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    is_control     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (experiment_id, name)
);

-- A stopped experiment serves its control: there is at most one.
CREATE UNIQUE INDEX variants_control_idx ON experiments.variants (experiment_id) WHERE is_control;

-- Weights must sum to 100 whoever writes them. Deferred to commit, so an
-- experiment's variants can be replaced in one transaction, row by row.
CREATE FUNCTION experiments.check_weights() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    id    uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.experiment_id ELSE NEW.experiment_id END;
    total numeric;
BEGIN
    SELECT sum(weight) INTO total FROM experiments.variants WHERE experiment_id = id;
    -- No variants left (the experiment is being deleted or rebuilt) is fine.
    IF total IS NOT NULL AND total <> 100 THEN
        RAISE EXCEPTION 'variant weights of experiment % sum to %, not 100', id, total
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER variants_weights_sum
    AFTER INSERT OR UPDATE OR DELETE ON experiments.variants
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION experiments.check_weights();

-- Every list served under an experiment. Written in bulk (append-heavy):
-- no foreign keys, on purpose (one RI check per row would double the
-- insert cost; experiments are stopped, never deleted), and a BRIN index
-- on time instead of a b-tree (rows arrive in time order, see 005).
CREATE TABLE experiments.exposures (
    exposure_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    experiment_id  uuid NOT NULL,
    variant        text COLLATE "C" NOT NULL,
    user_id        text COLLATE "C" NOT NULL,
    video_ids      text[] COLLATE "C" NOT NULL,
    request_id     text,
    served_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX exposures_served_brin ON experiments.exposures USING brin (served_at);
-- Attribution: "the user's recent exposures" when a VideoWatched arrives.
CREATE INDEX exposures_user_time_idx ON experiments.exposures (user_id, served_at);

-- A conversion: the user watched a video of an exposure within the
-- attribution window. Denormalised (experiment, variant, user) so that
-- results aggregate this table alone.
CREATE TABLE experiments.outcomes (
    outcome_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    exposure_id       bigint NOT NULL,
    experiment_id     uuid NOT NULL,
    variant           text COLLATE "C" NOT NULL,
    user_id           text COLLATE "C" NOT NULL,
    video_id          text COLLATE "C" NOT NULL,
    -- Watch completion 0..1 (watched / total, clipped).
    watch_completion  real CHECK (watch_completion IS NULL
                                  OR (watch_completion >= 0 AND watch_completion <= 1)),
    watched_s         integer CHECK (watched_s IS NULL OR watched_s >= 0),
    converted_at      timestamptz NOT NULL,
    -- Replays of the same VideoWatched count once.
    UNIQUE (exposure_id, video_id)
);

CREATE INDEX outcomes_experiment_idx ON experiments.outcomes (experiment_id, variant);
