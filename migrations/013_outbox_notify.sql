-- 013_outbox_notify.sql: wake the publisher when rows reach the outbox.
--
-- The publisher used to claim public.outbox every 50 ms whether or not
-- anything was there: 20 queries a second per publisher, nearly all of
-- them empty. Now every inserting transaction sends NOTIFY recsd_outbox
-- at its commit; the publisher LISTENs on a connection of its own,
-- claims as soon as one arrives, and polls only as a slow fallback
-- (actors/publisher/publisher_wake.h).
--
-- A statement-level trigger, so a bulk INSERT costs one pg_notify, not
-- one per row. The payload is empty on purpose: PostgreSQL folds
-- identical notifications of one transaction into one, so a transaction
-- that inserts many times still wakes each listener once. The
-- notification is delivered at commit and dropped on rollback, so the
-- publisher never wakes for rows it cannot see yet. (An INSERT that adds
-- no rows still notifies: one empty claim, not worth a transition table.)

CREATE FUNCTION public.outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('recsd_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify
    AFTER INSERT ON public.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION public.outbox_notify();
