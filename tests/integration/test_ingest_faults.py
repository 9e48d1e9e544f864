#!/usr/bin/env python3
"""test_ingest_faults.py: the event-ingestor under Kafka faults, on real servers.

Each case gets a private `recsd dev-kafka --control` cluster (faults are
injected through its stdin), a fresh migrated database, and its own
`recsd run`. Events are produced with kcat while the faults happen and
checked row by row in PostgreSQL.

Cases:
  fetch    Fetch requests fail mid-stream (NOT_LEADER_FOR_PARTITION, then
           dropped connections): consumption recovers, every event is
           stored exactly once, the ingestor is never restarted.
  down     the (single) broker down for 4 s mid-stream, then up: the
           consumer waits and recovers, exactly once, no restart.
  lag      with the full actor set, recsd_ingest_consumer_lag appears on
           the gateway's /metrics for every partition (labelled with actor,
           topic and partition), is above 0 while a backlog is being
           written in small batches, and drops to 0 once it is consumed.

usage: test_ingest_faults.py [case ...]   (default: all)
Needs RECSD_BIN, RECSD_PG_DSN and RECSD_REDIS_URL (ops/test.sh, or
eval "$(ops/devstack.sh env)"), kcat and psql.
"""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Service, check, fail, run_cases  # noqa: E402
from test_ingest import (Database, Kafka, count_rows, ingestors, make_events,  # noqa: E402
                         produce_all, service_env, stored_rows, wait_assigned)


class Stream:
    """Produces the events in chunks, one chunk every period seconds, in a
    thread: a stream the faults land in the middle of. hold() waits for the
    chunk in flight and holds back the next until release() (kcat gives up
    when every broker is down)."""

    def __init__(self, kafka, lines, chunks=20, period=0.3):
        self.kafka, self.lines, self.chunks, self.period = kafka, lines, chunks, period
        self.stop = threading.Event()
        self.gate = threading.Lock()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            for i in range(self.chunks):
                part = {k: v[i * len(v) // self.chunks:(i + 1) * len(v) // self.chunks]
                        for k, v in self.lines.items()}
                with self.gate:
                    produce_all(self.kafka, part)
                if self.stop.wait(self.period):
                    return
        except SystemExit as e:  # fail() in produce: report it from the main thread
            self.error = e

    def start(self):
        self.thread.start()
        return self

    def hold(self):
        self.gate.acquire()  # pylint: disable=consider-using-with

    def release(self):
        self.gate.release()

    def join(self, timeout=120):
        self.thread.join(timeout)
        if self.thread.is_alive():
            fail(f"the producer did not finish within {timeout} s")
        if self.error:
            fail("the producer failed (see above)")


def key(row):
    """(user, video, kind, epoch): an event's identity, without float fields."""
    return (row[0], row[1], row[2], row[8])


def check_exactly_once(db, expected, n):
    check(count_rows(db.dsn) == n, f"exactly {n} rows")
    got = {key(r) for r in stored_rows(db.dsn)}
    want = {key(e) for e in expected}
    check(got == want, f"every produced event is stored (missing e.g. {sorted(want - got)[:2]},"
          f" unexpected e.g. {sorted(got - want)[:2]})")


def ingestor_messages(svc):
    return [line.get("msg", "") for line in svc.log_lines()
            if line.get("actor", "").startswith("event-ingestor")]


# --- cases --------------------------------------------------------------------

def case_fetch(tag, n=40000):
    kafka, db = Kafka(tag, prefix="flt", control=True), Database(tag)
    try:
        lines, expected = make_events(n, tag, users=2000)
        with Service(env=service_env(kafka, db.dsn), actors="publisher,event-ingestor") as svc:
            wait_assigned(svc)
            pid = ingestors(svc)[0]["pid"]
            stream = Stream(kafka, lines).start()
            svc.wait_for(lambda: count_rows(db.dsn) >= n // 5, 60, "the stream under way")
            # Each Fetch answers every partition with the error; librdkafka
            # refreshes metadata and backs off before fetching again.
            kafka.command("request-errors Fetch 30 NOT_LEADER_FOR_PARTITION")
            at = count_rows(db.dsn)
            time.sleep(1.5)
            # The mock closes the connection on each of these Fetches.
            kafka.command("request-errors Fetch 3 _TRANSPORT")
            stream.join()
            check(at < n, f"the faults landed mid-stream ({at} of {n} rows stored)")
            svc.wait_for(lambda: count_rows(db.dsn) >= n, 120, f"{n} rows")
            time.sleep(1.0)  # past a batch interval: a duplicate would be written now
            check_exactly_once(db, expected, n)
            msgs = ingestor_messages(svc)
            check(any("_TRANSPORT" in m or "Disconnected" in m for m in msgs),
                  "the injected disconnects reached the consumer (logged)")
            ing = ingestors(svc)[0]
            check(ing["pid"] == pid and ing["restarts"] == 0 and ing["state"] == "running",
                  "the ingestor recovered by itself (no restart)")
    finally:
        kafka.close()
        db.close()


def case_down(tag, n=30000):
    kafka, db = Kafka(tag, prefix="flt", control=True), Database(tag)
    try:
        lines, expected = make_events(n, tag, users=2000)
        with Service(env=service_env(kafka, db.dsn), actors="publisher,event-ingestor") as svc:
            wait_assigned(svc)
            pid = ingestors(svc)[0]["pid"]
            stream = Stream(kafka, lines).start()
            svc.wait_for(lambda: count_rows(db.dsn) >= n // 5, 60, "the stream under way")
            stream.hold()  # the producers are clients of the same broker
            kafka.command("broker-down 1")
            down_at = time.time()
            time.sleep(1.0)  # what was fetched before is stored by now
            before = count_rows(db.dsn)
            time.sleep(3.0)
            during = count_rows(db.dsn)
            ing = ingestors(svc)[0]
            check(ing["pid"] == pid and ing["state"] == "running",
                  "the ingestor stays up while the broker is down")
            kafka.command("broker-up 1")
            stream.release()
            print(f"broker down for {time.time() - down_at:.1f} s; rows {before} -> {during} "
                  f"meanwhile", flush=True)
            check(during < n, "the broker went down mid-stream")
            check(any("brokers are down" in m for m in ingestor_messages(svc)),
                  "the consumer lost the broker (logged: the fault took effect)")
            stream.join()
            svc.wait_for(lambda: count_rows(db.dsn) >= n, 120, f"{n} rows after broker-up")
            time.sleep(1.0)
            check_exactly_once(db, expected, n)
            ing = ingestors(svc)[0]
            check(ing["pid"] == pid and ing["restarts"] == 0 and ing["state"] == "running",
                  "no ingestor restart during the whole episode")
    finally:
        kafka.close()
        db.close()


LAG_RE = re.compile(r'^recsd_ingest_consumer_lag\{actor="([^"]+)",topic="([^"]+)",'
                    r'partition="(\d+)"\} (-?\d+)$')


def lag_samples(svc):
    """{(actor, topic, partition): lag} from the gateway's /metrics."""
    status, _, body = svc.get("/metrics")
    if status != 200:
        fail(f"/metrics answered {status}")
    samples = {}
    for line in body.decode().splitlines():
        m = LAG_RE.match(line)
        if m:
            samples[(m.group(1), m.group(2), int(m.group(3)))] = int(m.group(4))
    return samples


def case_lag(tag, n=60000):
    kafka, db = Kafka(tag, prefix="flt", control=True), Database(tag)
    try:
        lines, expected = make_events(n, tag, users=3000)
        # Small batches make the ingestor write slowly enough for a backlog
        # to be seen: its position advances only as fast as batches commit.
        env = service_env(kafka, db.dsn, {"RECSD_INGEST_BATCH_MAX": "20",
                                          "RECSD_INGEST_BATCH_MS": "5"})
        with Service(env=env) as svc:  # the full actor set: the gateway serves /metrics
            wait_assigned(svc)
            produce_all(kafka, lines)
            seen_backlog = svc.wait_for(
                lambda: (s := lag_samples(svc)) and max(s.values()) > 0 and s, 60,
                "a lag above 0 on /metrics while the backlog is written")
            print(f"lag while writing: {sum(seen_backlog.values())} messages over "
                  f"{len(seen_backlog)} partitions (rows {count_rows(db.dsn)} of {n})",
                  flush=True)
            svc.wait_for(lambda: count_rows(db.dsn) >= n, 300, f"{n} rows")
            topics = {kafka.topics[k] for k in ("watched", "rated", "watchlist")}
            want = {("event-ingestor", t, p) for t in topics for p in range(4)}
            final = svc.wait_for(lambda: (s := lag_samples(svc)) and set(s) == want
                                 and all(v == 0 for v in s.values()) and s, 15,
                                 "every partition's lag at 0 on /metrics")
            check(len(final) == 12, "lag reported for all 12 partitions, labelled with actor, "
                  "topic and partition, all 0 once consumed")
            status, _, body = svc.get("/metrics")
            text = body.decode()
            # 4 topics x 4 partitions: the catalogue topic is auto-created too.
            check('recsd_ingest_partitions_assigned{actor="event-ingestor"} 16' in text,
                  "16 partitions assigned")
            count = re.search(r'^recsd_ingest_batch_size_count\{actor="event-ingestor"\} (\d+)$',
                              text, re.M)
            check(count and int(count.group(1)) >= n // 20,
                  "the batch-size histogram counted the batches")
            commits = re.search(r'^recsd_ingest_commit_seconds_bucket\{actor="event-ingestor",'
                                r'le="\+Inf"\} (\d+)$', text, re.M)
            check(commits and int(commits.group(1)) == int(count.group(1)),
                  "the commit-latency histogram has one observation per batch")
            check_exactly_once(db, expected, n)
    finally:
        kafka.close()
        db.close()


CASES = {"fetch": case_fetch, "down": case_down, "lag": case_lag}


def main():
    return run_cases(CASES, list(CASES), "ingestion under Kafka faults")


if __name__ == "__main__":
    sys.exit(main())
