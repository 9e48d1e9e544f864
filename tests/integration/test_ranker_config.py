"""The ranker applies the runtime serving configuration without a restart,
and comes back with it after one.

On MovieLens latest-small in a database of its own, no trained model (so
the model-free steps of the chain answer), requests spoken to the ranker
over ZeroMQ (RECS_REQ on its ROUTER socket, as the gateway does: no cache
in between). Configuration versions are written straight into
serving.config_versions with psql and announced with NOTIFY
recsd_serving_config, as the store does:

  (a) a fallback chain without "cooccurrence" and "segment_popularity"
      turns a user with history, whom co-occurrence answered, over to
      "popularity" within seconds;
  (b) seen_completion is applied by reloading the histories: a video the
      user watched halfway becomes excluded at 0.4 and included again at
      0.9;
  (c) the version applied shows in /metrics
      (recsd_ranker_serving_config_version), each version is logged once;
  requests keep being answered while the histories reload (from the old
  ones: none waits for the whole reload);
  and a ranker killed with SIGKILL comes back on the stored version (its
  start-up history load already uses it).
"""
import datetime
import json
import os
import re
import signal
import threading
import time
import uuid

from harness import MovieLensDatabase, Service, check, fail, psql, require_env

try:
    import msgpack
    import zmq
except ImportError as e:  # Debian: apt-get install python3-zmq python3-msgpack
    print(f"FAIL: {e}: install python3-zmq and python3-msgpack")
    raise SystemExit(1)

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")

USER = "1"
PROTO_RECS_REQ, PROTO_RECS_REP = 8, 9


class Ranker:
    """A DEALER on the ranker's socket: RECS_REQ in, RECS_REP out."""

    def __init__(self, ctx, svc):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(svc.endpoint("ranker"))
        self.n = 0

    def ask(self, user=USER, limit=20, timeout=5.0, **extra):
        """The reply body, or None if none came within timeout."""
        self.n += 1
        rid = f"it-{self.n}"
        body = {"user_id": user, "limit": limit, **extra}
        deadline_ms = int((time.time() + timeout) * 1000)
        self.sock.send(msgpack.packb([1, PROTO_RECS_REQ, rid, "", deadline_ms, body]))
        end = time.time() + timeout
        while time.time() < end:
            if self.sock.poll(int((end - time.time()) * 1000) + 1):
                reply = msgpack.unpackb(self.sock.recv())
                if reply[2] != rid:
                    continue  # a late reply to an earlier request
                if reply[1] != PROTO_RECS_REP:
                    return None  # 503 while nothing is loaded
                return reply[5]
        return None

    def close(self):
        self.sock.close()


def ids(reply):
    return [item[0] for item in reply["items"]]


def wait_answer(ranker, predicate, timeout, what, **ask):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        last = ranker.ask(**ask)
        if last is not None and predicate(last):
            return last
        time.sleep(0.1)
    fail(f"timed out after {timeout} s waiting for {what}; last answer "
         f"{last and (last['model_id'], ids(last)[:5])}")


class Hammer:
    """A thread asking the ranker without pause (its own socket): how
    many answered, how many did not within 5 s, the slowest answer."""

    def __init__(self, ctx, svc):
        self.ctx, self.svc = ctx, svc
        self.stop_flag = threading.Event()
        self.answered, self.failed, self.slowest = 0, 0, 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        ranker = Ranker(self.ctx, self.svc)
        try:
            while not self.stop_flag.is_set():
                started = time.time()
                reply = ranker.ask(user="2")
                took = time.time() - started
                if reply is None:
                    self.failed += 1
                else:
                    self.answered += 1
                    self.slowest = max(self.slowest, took)
        finally:
            ranker.close()

    def start(self):
        self.thread.start()
        return self

    def finish(self):
        self.stop_flag.set()
        self.thread.join(10)


def log_gap(svc, first, then, containing):
    """Seconds from the ranker's log line starting with first to the next
    one starting with then and containing containing."""
    start = None
    for line in svc.log_lines():
        if not line.get("actor", "").startswith("ranker"):
            continue
        msg, ts = line.get("msg", ""), line.get("ts", "")
        at = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
        if start is None and msg.startswith(first):
            start = at
        elif start is not None and msg.startswith(then) and containing in msg:
            return at - start
    fail(f"no '{then}' line after '{first}' in the ranker's log")


DEFAULT_DOC = {
    "default_type": "hybrid",
    "hybrid": {"content_k": 5.0, "content_floor": 0.1, "ease_share": 0.5},
    "fallback_chain": ["previous", "cooccurrence", "segment_popularity", "popularity"],
    "seen_completion": 0.8,
    "limits": {"default": 10, "max": 100},
    "cache": {"ttl_s": 3600, "l1_ttl_ms": 60000},
    "event_weights": {"watch": 1.0, "rating": 1.0, "rating_neutral": 2.5,
                      "watchlist_add": 0.5, "watchlist_remove": 0.5},
}


def put_config(dsn, doc):
    """A new version, as serving_config_store_put writes it; its number."""
    text = json.dumps(doc).replace("'", "''")
    out = psql(dsn, "BEGIN; LOCK TABLE serving.config_versions IN EXCLUSIVE MODE;"
                    " INSERT INTO serving.config_versions (version, document, created_by)"
                    " SELECT coalesce(max(version), 0) + 1, '" + text + "'::jsonb,"
                    " 'test_ranker_config' FROM serving.config_versions RETURNING version;"
                    " COMMIT;")
    version = int(out.split()[0])
    psql(dsn, f"NOTIFY recsd_serving_config, '{version}'")
    return version


def metric(svc, name, actor="ranker"):
    status, _, body = svc.get("/metrics")
    if status != 200:
        return None
    m = re.search(r"^" + re.escape(name) + r'\{actor="' + re.escape(actor) + r'"[^}]*\} (\S+)$',
                  body.decode(), re.M)
    return float(m.group(1)) if m else None


def ranker_pid(svc):
    row = svc.actor("ranker")
    return row.get("pid"), row.get("restarts", 0)


def main():
    db = MovieLensDatabase("rc")
    env = {"RECSD_PG_DSN": db.dsn, "RECSD_ACTORS": "ranker,http-gateway"}
    ctx = zmq.Context()
    ranker = None
    try:
        with Service(env=env) as svc:
            ranker = Ranker(ctx, svc)
            first = wait_answer(ranker, lambda r: r["model_id"] == "cooccurrence", 30,
                                "the default chain's co-occurrence answer for a user with history")
            check(True, f"default chain: user {USER} gets co-occurrence ({ids(first)[:3]})")
            svc.wait_for(lambda: metric(svc, "recsd_ranker_serving_config_version") == 0, 10,
                         "version 0 in /metrics")
            check(True, "no stored version: 0 in /metrics")

            # (a) The chain without the model-free steps: popularity.
            doc = json.loads(json.dumps(DEFAULT_DOC))
            doc["fallback_chain"] = ["previous", "popularity"]
            v1 = put_config(db.dsn, doc)
            started = time.time()
            popular = wait_answer(ranker, lambda r: r["model_id"] == "popularity", 5,
                                  "the popularity answer once co-occurrence is left out")
            check(True, f"version {v1}: popularity serves {time.time() - started:.1f} s after "
                        "the NOTIFY")
            svc.wait_for(lambda: metric(svc, "recsd_ranker_serving_config_version") == v1, 5,
                         f"version {v1} in /metrics")
            check(True, f"/metrics shows recsd_ranker_serving_config_version {v1}")

            # (b) seen_completion: the user watches the top video halfway
            # (written to the database only: the reload must read it).
            top = ids(popular)[0]
            rated = set(psql(db.dsn, f"SELECT video_id FROM features.interactions"
                                     f" WHERE user_id = '{USER}'").split())
            check(top not in rated, f"{top} is not in the user's history yet")
            psql(db.dsn, "INSERT INTO features.interactions (event_id, user_id, video_id, kind,"
                         f" weight, occurred_at) VALUES ('it-half-{uuid.uuid4().hex[:8]}',"
                         f" '{USER}', '{top}', 'watch', 0.5, now())")
            doc["seen_completion"] = 0.4
            hammer = Hammer(ctx, svc).start()
            v2 = put_config(db.dsn, doc)
            wait_answer(ranker, lambda r: r["model_id"] == "popularity" and top not in ids(r), 10,
                        f"{top} (watched to 0.5) excluded at seen_completion 0.4")
            check(True, f"version {v2}: a video watched halfway is excluded at 0.4")
            time.sleep(0.3)
            hammer.finish()
            # The old histories answered while the new ones loaded: no
            # request waited for the whole reload.
            reload_s = log_gap(svc, f"serving configuration version {v2} applied",
                               "seen videos loaded for", "reloaded")
            check(hammer.failed == 0 and hammer.answered > 0,
                  f"requests during the reload all answered ({hammer.answered}, slowest "
                  f"{hammer.slowest * 1000:.0f} ms, reload {reload_s * 1000:.0f} ms)")
            if reload_s >= 0.3:
                check(hammer.slowest < reload_s / 2,
                      "no request waited for the reload to finish")
            doc["seen_completion"] = 0.9
            v3 = put_config(db.dsn, doc)
            wait_answer(ranker, lambda r: r["model_id"] == "popularity" and top in ids(r), 10,
                        f"{top} included again at seen_completion 0.9")
            check(True, f"version {v3}: and included again at 0.9")
            svc.wait_for(lambda: metric(svc, "recsd_ranker_serving_config_version") == v3, 5,
                         f"version {v3} in /metrics")

            # Each version applied and logged once.
            def applied(version):
                return [l for l in svc.log_lines() if l.get("actor", "").startswith("ranker")
                        and l.get("msg", "").startswith(
                            f"serving configuration version {version} applied")]
            for v in (v1, v2, v3):
                check(len(applied(v)) == 1, f"version {v} logged once when applied")
            reloads = [l for l in svc.log_lines() if l.get("actor", "").startswith("ranker")
                       and "reloaded" in l.get("msg", "")
                       and l["msg"].startswith("seen videos loaded for")]
            check(len(reloads) == 2, f"the histories were reloaded for {v2} and {v3} only, not "
                                     f"for {v1} (chain only): {len(reloads)} reloads")

            # kill -9: the new ranker starts on the stored version.
            pid, restarts = ranker_pid(svc)
            check(pid, f"the ranker runs as pid {pid}")
            os.kill(pid, signal.SIGKILL)
            svc.wait_for(lambda: ranker_pid(svc)[0] not in (None, 0, pid) and
                         svc.actor("ranker")["state"] == "running", 30, "the ranker restarted")
            back = wait_answer(ranker, lambda r: r is not None, 30, "answers after the restart")
            check(back["model_id"] == "popularity" and top in ids(back),
                  f"the restarted ranker serves version {v3}: popularity, {top} not seen at 0.9 "
                  f"({back['model_id']}, {ids(back)[:5]})")
            svc.wait_for(lambda: metric(svc, "recsd_ranker_serving_config_version") == v3, 10,
                         f"version {v3} in /metrics after the restart")
            starts = [l for l in svc.log_lines() if l.get("actor", "").startswith("ranker")
                      and l.get("msg", "").startswith("seen videos loaded for")
                      and "reloaded" not in l["msg"]]
            check(starts and f"serving configuration version {v3})" in starts[-1]["msg"],
                  f"the restarted ranker loaded its histories with version {v3} at once: "
                  f"{starts[-1]['msg'] if starts else None}")
            print(f"PASS: serving configuration applied live and after kill -9 (restarts "
                  f"{restarts} -> {svc.actor('ranker').get('restarts')})")
    finally:
        if ranker:
            ranker.close()
        ctx.term()
        db.close()


if __name__ == "__main__":
    main()
