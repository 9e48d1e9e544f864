#!/usr/bin/env python3
"""test_ingest.py: the event-ingestor end to end, on real servers.

Every case gets its own mock Kafka cluster (`recsd dev-kafka` with unique
topic names), its own database (created on RECSD_PG_DSN's server and
migrated, or a private harness.Postgres cluster it can stop) and its own
`recsd run` with the publisher and the event-ingestor. Events are produced
with kcat and checked row by row in PostgreSQL.

Cases:
  valid       events of the three kinds land as rows with the right values;
              producing the same events again adds no row; the users'
              cached lists in Redis are deleted.
  dead        each kind of invalid event lands in public.outbox for the
              dead-letter topic with its reason and source, the publisher
              puts it on that topic, and valid events behind it still land.
  kill9       kill -9 the ingestor in the middle of 100k events: after the
              restart exactly 100k rows. Prints events/s.
  pgdown      PostgreSQL stopped for 8 s mid-stream: the ingestor pauses
              and stays up (no restart), then every event is stored once.
  stop        SIGTERM with a batch held in memory: stored and committed on
              the way out, exit status 0; a restart reads nothing again.
  instances   RECSD_ACTORS=event-ingestor:2: both instances consume.
  throughput  (not run by default) prints events/s for 100k events.

usage: test_ingest.py [case ...]   (default: all)
Needs RECSD_BIN, RECSD_PG_DSN and RECSD_REDIS_URL (ops/test.sh, or
eval "$(ops/devstack.sh env)"), kcat, psql and redis-cli.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, Postgres, Service, check, fail, read_line, run_cases  # noqa: E402

BASE_TS = 1704067200  # 2024-01-01T00:00:00Z
RATING_MAX = 5.0


# --- servers ------------------------------------------------------------------

class Kafka:
    """A private mock cluster with this run's topics (4 partitions each);
    with control, `dev-kafka --control` and command() injects faults; with
    catalogue, the catalogue's topic too (kind "videos"; without it the
    ingestor's subscription to the default catalogue topic finds nothing)."""

    def __init__(self, tag, prefix="ing", control=False, catalogue=False):
        kinds = ("watched", "rated", "watchlist", "dead") + (("videos",) if catalogue else ())
        self.topics = {k: f"{prefix}-{tag}-{k}" for k in kinds}
        self.proc = subprocess.Popen([BIN, "dev-kafka"] + (["--control"] if control else []) +
                                     ["--partitions", "4", "--topics",
                                      ",".join(self.topics.values())],
                                     stdin=subprocess.PIPE if control else None,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.brokers = read_line(self.proc, 10)
        if not self.brokers:
            self.close()
            fail("dev-kafka printed no bootstrap line")

    def command(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        answer = read_line(self.proc, 10)
        if answer != "ok":
            fail(f"dev-kafka --control {line!r}: {answer}")
        print(f"injected: {line}", flush=True)

    def env(self):
        env = {"RECSD_KAFKA_BROKERS": self.brokers,
               "RECSD_TOPIC_VIDEO_WATCHED": self.topics["watched"],
               "RECSD_TOPIC_VIDEO_RATED": self.topics["rated"],
               "RECSD_TOPIC_WATCHLIST_UPDATED": self.topics["watchlist"],
               "RECSD_TOPIC_DEAD_LETTER": self.topics["dead"]}
        if "videos" in self.topics:
            env["RECSD_TOPIC_VIDEO_UPSERTED"] = self.topics["videos"]
        return env

    def produce(self, kind, lines, keyed=True):
        """Produces one message per line. keyed: lines are "key<TAB>value"
        (keyed by user, as the platform does; without keys librdkafka's
        sticky partitioner puts a fast burst on few partitions)."""
        data = "".join(line + "\n" for line in lines).encode()
        key = ["-K", "\t"] if keyed else []
        out = subprocess.run(["kcat", "-b", self.brokers, "-P", "-t", self.topics[kind]] + key,
                             input=data, capture_output=True, timeout=120)
        if out.returncode != 0:
            fail(f"kcat produce to {kind}: {out.stderr.decode()[-500:]}")

    def consume(self, kind):
        out = subprocess.run(["kcat", "-b", self.brokers, "-C", "-t", self.topics[kind], "-o",
                              "beginning", "-e", "-q"], capture_output=True, timeout=60)
        if out.returncode != 0:
            fail(f"kcat consume {kind}: {out.stderr.decode()[-500:]}")
        return [line for line in out.stdout.decode().splitlines() if line]

    def close(self):
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


class Database:
    """A fresh, migrated database on the test stack's PostgreSQL server."""

    def __init__(self, tag):
        base = os.environ["RECSD_PG_DSN"]
        self.admin = base
        self.name = f"recsd_ing_{tag}"
        parts = urllib.parse.urlsplit(base)
        if not parts.scheme.startswith("postgres"):
            fail(f"RECSD_PG_DSN must be a postgresql:// URI here, got {base}")
        self.dsn = urllib.parse.urlunsplit(parts._replace(path="/" + self.name))
        psql(self.admin, f"CREATE DATABASE {self.name}")
        out = subprocess.run([BIN, "migrate"], env=dict(os.environ, RECSD_PG_DSN=self.dsn),
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            fail(f"migrate {self.name}: {out.stderr[-2000:]}")

    def close(self):
        psql(self.admin, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def psql(dsn, sql):
    out = subprocess.run(["psql", dsn, "-XAtq", "-F", "\t", "-c", sql], capture_output=True,
                         text=True, timeout=60)
    if out.returncode != 0:
        fail(f"psql {sql[:80]}: {out.stderr}")
    return out.stdout


def count_rows(dsn, table="features.interactions"):
    try:
        return int(psql(dsn, f"SELECT count(*) FROM {table}").strip())
    except SystemExit:
        return -1


def redis_cli(*args):
    url = urllib.parse.urlsplit(os.environ["RECSD_REDIS_URL"])
    cmd = ["redis-cli", "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 6379)]
    out = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        fail(f"redis-cli {args}: {out.stderr}")
    return out.stdout.strip()


# --- events -------------------------------------------------------------------

def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def make_events(n, tag, users=1000):
    """n valid events, kinds in turn. Returns {kind: ["user<TAB>json"]} and the
    set of expected rows (user, video, kind, weight, rating, watched, total,
    device, epoch)."""
    lines = {"watched": [], "rated": [], "watchlist": []}
    expected = set()
    for i in range(n):
        user, video, ts = f"{tag}-u{i % users}", f"v{i}", BASE_TS + i
        which = i % 4
        if which == 0:
            watched, total = (i * 7) % 3600, 60 + i % 3600
            lines["watched"].append(user + "\t" + json.dumps({
                "user_id": user, "video_id": video, "watched_duration": watched,
                "total_duration": total, "timestamp": iso(ts), "device": f"tv {i % 3}"}))
            expected.add((user, video, "watch", min(watched / total, 1.0), None, watched, total,
                          f"tv {i % 3}", ts))
        elif which == 1:
            rating = 0.5 + (i % 10) * 0.5
            lines["rated"].append(user + "\t" + json.dumps({"user_id": user, "video_id": video,
                                              "rating": rating, "timestamp": iso(ts)}))
            expected.add((user, video, "rating", rating / RATING_MAX, rating, None, None, None,
                          ts))
        else:
            action = "added" if which == 2 else "removed"
            lines["watchlist"].append(user + "\t" + json.dumps({"user_id": user, "video_id": video,
                                                  "action": action, "timestamp": iso(ts)}))
            kind = "watchlist_add" if which == 2 else "watchlist_remove"
            expected.add((user, video, kind, 1.0 if which == 2 else 0.0, None, None, None, None,
                          ts))
    return lines, expected


def stored_rows(dsn):
    rows = set()
    sql = ("SELECT user_id, video_id, kind, weight, rating, watched_duration_s,"
           " total_duration_s, device, extract(epoch FROM occurred_at)::bigint"
           " FROM features.interactions")
    for line in psql(dsn, sql).splitlines():
        u, v, k, w, r, wd, td, dev, ts = line.split("\t")
        rows.add((u, v, k, float(w), float(r) if r else None, int(wd) if wd else None,
                  int(td) if td else None, dev if k == "watch" else None, int(ts)))
    return rows


def produce_all(kafka, lines):
    for kind, batch in lines.items():
        if batch:
            kafka.produce(kind, batch)


def ingestors(svc):
    return [a for a in svc.status()["actors"] if a["name"].startswith("event-ingestor")]


def handled(svc):
    return sum(a.get("handled", 0) for a in ingestors(svc))


def service_env(kafka, dsn, extra=None):
    env = dict(kafka.env(), RECSD_PG_DSN=dsn)
    env.update(extra or {})
    return env


def wait_assigned(svc, instances=1, timeout=30):
    """Until every ingestor instance logged an assignment (the group formed)."""
    def assigned():
        names = {line.get("actor") for line in svc.log_lines()
                 if line.get("msg", "").startswith("assigned ")}
        return len([n for n in names if n and n.startswith("event-ingestor")]) >= instances
    svc.wait_for(assigned, timeout, f"{instances} ingestor(s) to get partitions")


# --- cases --------------------------------------------------------------------

def case_valid(tag):
    kafka, db = Kafka(tag), Database(tag)
    try:
        n = 2000
        lines, expected = make_events(n, tag, users=50)
        users = sorted({e[0] for e in expected})
        for user in users:
            redis_cli("SET", f"recsd:recs:{user}", "cached", "EX", "600")
        with Service(env=service_env(kafka, db.dsn), actors="publisher,event-ingestor") as svc:
            produce_all(kafka, lines)
            svc.wait_for(lambda: count_rows(db.dsn) >= n, 60, f"{n} rows")
            time.sleep(0.5)
            rows = stored_rows(db.dsn)
            check(len(rows) == n and count_rows(db.dsn) == n, f"{n} events became {n} rows")
            # weight is a real (float4): compared with a tolerance, the rest exactly.
            want = {e[:3] + e[4:]: e[3] for e in expected}
            got = {r[:3] + r[4:]: r[3] for r in rows}
            missing = set(want) - set(got)
            check(not missing, f"every row has the produced values (missing e.g. "
                  f"{sorted(missing)[:2]}, unexpected e.g. {sorted(set(got) - set(want))[:2]})")
            off = [k for k in want if abs(want[k] - got[k]) > 1e-3]
            check(not off, f"every weight as the event implies (off: {off[:2]})")
            check(all(redis_cli("EXISTS", f"recsd:recs:{u}") == "0" for u in users),
                  "the users' cached lists were deleted from Redis")
            check(int(psql(db.dsn, "SELECT count(*) FROM features.users").strip()) == len(users),
                  "the users were recorded")

            produce_all(kafka, lines)
            svc.wait_for(lambda: handled(svc) >= 2 * n, 60, "the replayed events consumed")
            time.sleep(1.0)  # past a batch interval: anything new would be written now
            check(count_rows(db.dsn) == n, "the same events again added no row")
            check(psql(db.dsn, "SELECT count(*) FROM public.outbox").strip() == "0",
                  "valid events produce no dead letters")
            check(all(a["restarts"] == 0 for a in svc.status()["actors"]), "no restart")
    finally:
        kafka.close()
        db.close()


INVALID = [
    # (kind, payload, field the reason must start with)
    ("watched", '{"video_id":"v1","watched_duration":1,"total_duration":2,'
                '"timestamp":"2024-01-01T00:00:00Z","device":""}', "user_id"),
    ("watched", '{"user_id":"u","video_id":"v1","watched_duration":-1,"total_duration":2,'
                '"timestamp":"2024-01-01T00:00:00Z","device":""}', "watched_duration"),
    ("watched", '{"user_id":"u","video_id":"v1","watched_duration":1,"total_duration":0,'
                '"timestamp":"2024-01-01T00:00:00Z","device":""}', "total_duration"),
    ("watched", '{"user_id":"u","video_id":"v1","watched_duration":"12","total_duration":20,'
                '"timestamp":"2024-01-01T00:00:00Z","device":""}', "watched_duration"),
    ("watched", '{"user_id":"u","video_id":"v1","watched_duration":1,"total_duration":2,'
                '"timestamp":"yesterday","device":""}', "timestamp"),
    ("watched", '{"user_id":"u","video_id":"v1","watched_duration":1,"total_duration":2,'
                '"timestamp":"2999-01-01T00:00:00Z","device":""}', "timestamp"),
    ("watched", '{"user_id":"' + "x" * 65 + '","video_id":"v1","watched_duration":1,'
                '"total_duration":2,"timestamp":"2024-01-01T00:00:00Z","device":""}', "user_id"),
    ("watched", 'this is not json {', "payload"),
    ("rated", '{"user_id":"u","video_id":"v1","rating":9,"timestamp":"2024-01-01T00:00:00Z"}',
     "rating"),
    ("rated", '{"user_id":"u","video_id":"v1","rating":0.1,"timestamp":"2024-01-01T00:00:00Z"}',
     "rating"),
    ("rated", '{"user_id":"u","video_id":"v 1","rating":3,"timestamp":"2024-01-01T00:00:00Z"}',
     "video_id"),
    ("watchlist", '{"user_id":"u","video_id":"v1","action":"maybe",'
                  '"timestamp":"2024-01-01T00:00:00Z"}', "action"),
    ("watchlist", '{"user_id":"u","video_id":"v1","action":"added"}', "timestamp"),
]


def case_dead(tag):
    kafka, db = Kafka(tag), Database(tag)
    try:
        lines, _ = make_events(40, tag, users=5)
        with Service(env=service_env(kafka, db.dsn), actors="publisher,event-ingestor") as svc:
            for kind, payload, _ in INVALID:
                kafka.produce(kind, [payload], keyed=False)
            produce_all(kafka, lines)  # behind the invalid ones
            svc.wait_for(lambda: count_rows(db.dsn) >= 40, 30, "the valid events")
            svc.wait_for(lambda: count_rows(db.dsn, "public.outbox") >= len(INVALID), 30,
                         "the dead letters")
            check(count_rows(db.dsn) == 40, "valid events behind invalid ones were stored")
            out = psql(db.dsn, "SELECT topic, payload::text FROM public.outbox ORDER BY id")
            dead, topics = {}, set()
            for line in out.splitlines():
                topic, payload = line.split("\t", 1)
                topics.add(topic)
                doc = json.loads(payload)
                dead[doc["original"]] = doc
            check(topics == {kafka.topics["dead"]}, "outbox rows are for the dead-letter topic")
            check(len(dead) == len(INVALID), f"{len(INVALID)} dead letters, one per invalid event")
            for kind, payload, field in INVALID:
                doc = dead.get(payload)
                if not doc:
                    fail(f"no dead letter for {payload}")
                src = doc["source"]
                ok = (doc["reason"].startswith(field) and src["topic"] == kafka.topics[kind]
                      and isinstance(src["partition"], int) and 0 <= src["partition"] < 4
                      and isinstance(src["offset"], int) and src["offset"] >= 0)
                check(ok, f"{kind} {payload[:50]}...: reason {doc['reason']!r}, source {src}")
            # The publisher produces them on the dead-letter topic.
            got = svc.wait_for(lambda: (m := kafka.consume("dead")) and len(m) >= len(INVALID)
                               and m, 30, "the dead-letter topic")
            reasons = sorted(json.loads(m)["reason"].split(":")[0] for m in got)
            check(len(got) == len(INVALID) and reasons == sorted(f for _, _, f in INVALID),
                  "every invalid event is on the dead-letter topic with its reason")
    finally:
        kafka.close()
        db.close()


def write_event_files(n, tag, directory):
    lines, _ = make_events(n, tag, users=5000)
    paths = {}
    for kind, batch in lines.items():
        paths[kind] = os.path.join(directory, f"{kind}.jsonl")
        with open(paths[kind], "w") as f:
            f.write("".join(line + "\n" for line in batch))
    return paths


def produce_files(kafka, paths):
    """Starts one kcat per topic, producing its file. Returns the processes."""
    procs = []
    for kind, path in paths.items():
        with open(path, "rb") as f:
            procs.append(subprocess.Popen(["kcat", "-b", kafka.brokers, "-P", "-K", "\t", "-t",
                                           kafka.topics[kind]], stdin=f,
                                          stderr=subprocess.PIPE))
    return procs


def wait_produced(procs):
    for p in procs:
        _, err = p.communicate(timeout=300)
        if p.returncode != 0:
            fail(f"kcat exited {p.returncode}: {err.decode()[-500:]}")


def case_kill9(tag, n=100000):
    kafka, db = Kafka(tag), Database(tag)
    work = tempfile.mkdtemp(prefix="recsd-ing-")
    try:
        paths = write_event_files(n, tag, work)
        with Service(env=service_env(kafka, db.dsn), actors="publisher,event-ingestor") as svc:
            wait_assigned(svc)
            pid = ingestors(svc)[0]["pid"]
            start = time.time()
            procs = produce_files(kafka, paths)
            at = svc.wait_for(lambda: (c := count_rows(db.dsn)) >= n // 5 and c, 120,
                              "a fifth of the events stored")
            os.kill(pid, signal.SIGKILL)
            print(f"killed the ingestor (pid {pid}) with {at} of {n} rows stored", flush=True)
            wait_produced(procs)
            svc.wait_for(lambda: ingestors(svc)[0]["pid"] not in (0, pid)
                         and ingestors(svc)[0]["state"] == "running", 30, "the restart")
            svc.wait_for(lambda: count_rows(db.dsn) >= n, 180, f"{n} rows")
            elapsed = time.time() - start
            check(at < n, "the kill landed mid-stream")
            time.sleep(2)
            check(count_rows(db.dsn) == n, f"exactly {n} rows after the restart")
            check(ingestors(svc)[0]["restarts"] == 1, "the ingestor was restarted once")
            print(f"figure: {n} events, first produce to last row {elapsed:.1f} s "
                  f"({n / elapsed:,.0f} events/s, including the kill, the restart and "
                  f"the group's session timeout)", flush=True)
    finally:
        kafka.close()
        db.close()
        subprocess.run(["rm", "-rf", work])


def case_throughput(tag, n=100000):
    """Not a pass/fail on speed: prints events/s for n events, first produce
    to last row, and checks the count."""
    kafka, db = Kafka(tag), Database(tag)
    work = tempfile.mkdtemp(prefix="recsd-ing-")
    try:
        paths = write_event_files(n, tag, work)
        with Service(env=service_env(kafka, db.dsn), actors="publisher,event-ingestor") as svc:
            wait_assigned(svc)
            start = time.time()
            procs = produce_files(kafka, paths)
            wait_produced(procs)
            produced = time.time() - start
            svc.wait_for(lambda: count_rows(db.dsn) >= n, 180, f"{n} rows")
            elapsed = time.time() - start
            check(count_rows(db.dsn) == n, f"{n} rows")
            print(f"figure: {n} events produced in {produced:.1f} s, first produce to last row "
                  f"{elapsed:.1f} s = {n / elapsed:,.0f} events/s", flush=True)
    finally:
        kafka.close()
        db.close()
        subprocess.run(["rm", "-rf", work])


def case_pgdown(tag, n=30000):
    kafka = Kafka(tag)
    pg = Postgres()
    work = tempfile.mkdtemp(prefix="recsd-ing-")
    try:
        lines, _ = make_events(n, tag, users=500)
        with Service(env=service_env(kafka, pg.dsn), actors="publisher,event-ingestor") as svc:
            wait_assigned(svc)
            pid = ingestors(svc)[0]["pid"]
            stop = threading.Event()

            def producer():
                # Steady stream: 30 chunks, one every 0.5 s.
                chunks = 30
                for i in range(chunks):
                    part = {k: v[i * len(v) // chunks:(i + 1) * len(v) // chunks]
                            for k, v in lines.items()}
                    produce_all(kafka, part)
                    if stop.wait(0.5):
                        return
            t = threading.Thread(target=producer, daemon=True)
            t.start()
            svc.wait_for(lambda: count_rows(pg.dsn) >= n // 10, 60, "the stream under way")
            pg.stop()
            down_at = time.time()
            print("PostgreSQL stopped", flush=True)
            svc.wait_for(lambda: any("consumption paused" in line.get("msg", "")
                                     for line in svc.log_lines()), 10, "the ingestor to pause")
            time.sleep(8)
            ing = ingestors(svc)[0]
            check(ing["pid"] == pid and ing["state"] == "running" and ing["restarts"] == 0,
                  "the ingestor stayed up, heartbeating, while PostgreSQL was down")
            pg.start()
            print(f"PostgreSQL back after {time.time() - down_at:.1f} s", flush=True)
            t.join(60)
            svc.wait_for(lambda: count_rows(pg.dsn) >= n, 120, f"{n} rows")
            time.sleep(1)
            check(count_rows(pg.dsn) == n, f"exactly {n} rows: nothing lost or doubled")
            msgs = [line.get("msg", "") for line in svc.log_lines()
                    if line.get("actor", "").startswith("event-ingestor")]
            failed = [m for m in msgs if m.startswith("PostgreSQL write failed, keeping")]
            back = [m for m in msgs if m.startswith("PostgreSQL writes succeed again")]
            check(len(failed) == 1 and len(back) == 1,
                  f"one log line for the outage and one for the recovery ({back})")
            check(any("consumption resumed" in m for m in msgs), "consumption resumed")
            check(ingestors(svc)[0]["restarts"] == 0, "no restart during the whole episode")
    finally:
        kafka.close()
        pg.close()
        subprocess.run(["rm", "-rf", work])


def case_stop(tag, n=300):
    """SIGTERM with a batch in memory that is not due for a minute: it is
    stored and committed on the way out (a restart reads nothing again)."""
    kafka, db = Kafka(tag), Database(tag)
    try:
        lines, _ = make_events(n, tag, users=30)
        env = service_env(kafka, db.dsn, {"RECSD_INGEST_BATCH_MS": "60000",
                                          "RECSD_INGEST_BATCH_MAX": "100000"})
        svc = Service(env=env, actors="publisher,event-ingestor").start()
        try:
            wait_assigned(svc)
            produce_all(kafka, lines)
            svc.wait_for(lambda: handled(svc) >= n, 30, "the events consumed")
            check(count_rows(db.dsn) == 0, "the batch is held (not due yet)")
            rc = svc.stop()
            msgs = [line.get("msg", "") for line in svc.log_lines()]
        finally:
            svc.close()
        check(rc == 0, f"recsd run exited 0 after SIGTERM (got {rc})")
        check(count_rows(db.dsn) == n, f"the {n} held events were stored on the way out")
        check(any(m.startswith(f"stopped: consumed {n}, stored {n},") for m in msgs),
              "the final summary counts them")
        # The offsets were committed: a new member of the group starts after them.
        with Service(env=env, actors="publisher,event-ingestor") as again:
            wait_assigned(again)
            time.sleep(2)
            check(handled(again) == 0, "a restart reads nothing again: offsets were committed")
    finally:
        kafka.close()
        db.close()


def case_instances(tag, n=20000):
    kafka, db = Kafka(tag), Database(tag)
    try:
        lines, expected = make_events(n, tag, users=2000)
        with Service(env=service_env(kafka, db.dsn), actors="publisher,event-ingestor:2") as svc:
            check(sorted(a["name"] for a in ingestors(svc)) ==
                  ["event-ingestor.1", "event-ingestor.2"], "two ingestor instances run")
            wait_assigned(svc, instances=2)
            # Until the group settled: both instances hold partitions.
            time.sleep(1)
            produce_all(kafka, lines)
            svc.wait_for(lambda: count_rows(db.dsn) >= n, 120, f"{n} rows")
            time.sleep(0.5)
            check(count_rows(db.dsn) == n, f"exactly {n} rows")
            per = {a["name"]: a.get("handled", 0) for a in ingestors(svc)}
            check(all(v > 0 for v in per.values()) and sum(per.values()) >= n,
                  f"both instances consumed: {per}")
    finally:
        kafka.close()
        db.close()


CASES = {"valid": case_valid, "dead": case_dead, "kill9": case_kill9, "pgdown": case_pgdown,
         "instances": case_instances, "stop": case_stop, "throughput": case_throughput}
DEFAULT = ["valid", "dead", "stop", "kill9", "pgdown", "instances"]


def main():
    return run_cases(CASES, DEFAULT, "event ingestion")


if __name__ == "__main__":
    sys.exit(main())
