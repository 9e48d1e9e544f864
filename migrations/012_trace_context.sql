-- 012_trace_context.sql: the W3C trace context of the request that asked
-- for a training run (issue 8, tracing). The trainer picks the run up
-- later, in another process, through this table, not a message: the
-- context has to travel with the row so that the trainer's phase spans
-- and the ModelTraining* events' Kafka headers join the requester's trace.
-- NULL when the run came from the schedule or from a request without one.

ALTER TABLE training.runs
    ADD COLUMN traceparent text
        CONSTRAINT runs_traceparent_format
        CHECK (traceparent ~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$');

COMMENT ON COLUMN training.runs.traceparent IS
    'W3C traceparent of the requesting HTTP call, or NULL; the trainer continues its trace.';
