-- 011_serving_config.sql: the runtime recommendation configuration,
-- versioned (issue 6, item 5; GET/PUT /api/v1/recs/config).
--
-- Every change is a new row and nothing is ever changed in place: the
-- current configuration is the row with the highest version, the history
-- is the table itself (who, when, why), and a rollback is a new row that
-- copies an old document and says which (rolled_back_from). So the
-- configuration survives restarts, every version can be shown and
-- restored, and "what was served at time T" is one query. All SQL that
-- touches this table lives in lib/serving_config_store.c, which also
-- validates the documents (lib/serving_config.h describes their shape);
-- the database only guarantees that a document is a JSON object.
--
-- A schema of its own: the configuration is neither a feature, nor a
-- training artifact, nor an experiment, and gets more tables later
-- (per-segment overrides, say) without crowding the others.

CREATE SCHEMA serving;
COMMENT ON SCHEMA serving IS
    'Runtime serving configuration: versioned documents, newest is current.';

CREATE TABLE serving.config_versions (
    -- 1, 2, 3, ... without gaps: writers take the table's lock and use
    -- max + 1 (see the store), so versions follow commit order and the
    -- later of two concurrent changes is the current one. An identity
    -- column would hand out numbers at INSERT time, in an order that
    -- commits need not follow.
    version           bigint PRIMARY KEY CHECK (version > 0),
    document          jsonb NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    -- "anonymous@<address>" until the gateway authenticates (issue 7),
    -- else the principal that made the change.
    created_by        text NOT NULL CHECK (length(created_by) BETWEEN 1 AND 200),
    created_at        timestamptz NOT NULL DEFAULT now(),
    note              text CHECK (note IS NULL OR length(note) <= 1000),
    -- Set on a rollback: the version whose document this row copies.
    rolled_back_from  bigint REFERENCES serving.config_versions (version),
    CHECK (rolled_back_from IS NULL OR rolled_back_from < version)
);

-- An audit trail that can be edited proves nothing: versions are
-- append-only. (A later migration that must rewrite old documents, to
-- add a field say, disables this trigger around its UPDATE.)
CREATE FUNCTION serving.config_versions_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'serving.config_versions is append-only (% refused)', TG_OP;
END;
$$;

CREATE TRIGGER config_versions_immutable
    BEFORE UPDATE OR DELETE ON serving.config_versions
    FOR EACH ROW EXECUTE FUNCTION serving.config_versions_immutable();
