#!/usr/bin/env python3
"""ingest_bench.py: event-ingestor throughput, first produce to last row.

Prints figures, checks nothing but the final row count. One run:
  1. a private mock Kafka (`recsd dev-kafka --partitions P`) with this run's
     four topics, and a fresh database on RECSD_PG_DSN's server, migrated;
  2. `recsd run` with RECSD_ACTORS=publisher,event-ingestor[:K], until every
     ingestor instance has partitions;
  3. N valid events of the three kinds (1/4 watched, 1/4 rated, 1/2
     watchlist), keyed by user, written to files beforehand, then produced
     with kcat, one process per topic per chunk, PRODUCERS chunks at a time;
  4. events/s from the start of the first kcat to the first moment
     count(*) of features.interactions reaches N (polled through one
     long-lived psql: max(id) while under way, count(*) to confirm).

The mock keeps only a few MB per partition and drops the oldest messages
beyond that, so production is paced: a chunk starts only while fewer than
WINDOW events are produced but not yet stored. The figure therefore
measures the ingestor (as long as kcat outpaces it), not the mock's memory.

Also printed: the produce rate, a progress line every few seconds, batch
sizes and write times from the ingestor's debug log ("batch of N stored in
M ms"), and the CPU seconds of the ingestor(s), their PostgreSQL backends
and the kcat processes (a 2-core machine runs all of them).

usage: bench/ingest_bench.py [-n EVENTS] [--actors SPEC] [--partitions P]
                             [--producers K] [--window W] [--chunk C]
                             [--env NAME=VALUE ...] [--keep]
Needs RECSD_PG_DSN (a postgresql:// URI) and RECSD_REDIS_URL, e.g.
  eval "$(ops/devstack.sh env)"
RECSD_BIN (default build-rel/recsd: build it RelWithDebInfo) runs the
service; kcat and psql must be on PATH.
"""
import argparse
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

# The integration tests' harness: one way of reading dev-kafka's bootstrap line.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from harness import read_line  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BASE_TS = 1704067200  # 2024-01-01T00:00:00Z
KINDS = ("watched", "rated", "watchlist")


def die(msg):
    print(f"ingest_bench: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql_once(dsn, sql):
    out = subprocess.run(["psql", dsn, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        die(f"psql {sql[:60]}: {out.stderr.strip()}")
    return out.stdout.strip()


class Poller:
    """One psql session kept open: a poll costs a query, not a process."""

    def __init__(self, dsn):
        self.proc = subprocess.Popen(["psql", dsn, "-XAtq"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)

    def query(self, sql):
        self.proc.stdin.write(sql.rstrip(";") + ";\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            die(f"psql session ended on {sql}")
        return line.strip()

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(10)


class Kafka:
    def __init__(self, binary, tag, partitions):
        self.topics = {k: f"bench-{tag}-{k}" for k in KINDS + ("dead",)}
        self.proc = subprocess.Popen([binary, "dev-kafka", "--partitions", str(partitions),
                                      "--topics", ",".join(self.topics.values())],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.brokers = read_line(self.proc, 10)
        if not self.brokers:
            self.close()
            die("dev-kafka printed no bootstrap line")

    def env(self):
        return {"RECSD_KAFKA_BROKERS": self.brokers,
                "RECSD_TOPIC_VIDEO_WATCHED": self.topics["watched"],
                "RECSD_TOPIC_VIDEO_RATED": self.topics["rated"],
                "RECSD_TOPIC_WATCHLIST_UPDATED": self.topics["watchlist"],
                "RECSD_TOPIC_DEAD_LETTER": self.topics["dead"]}

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def write_chunks(n, chunk, users, videos, work):
    """Writes events [0, n) as chunks of `chunk` events, one "user<TAB>json"
    file per topic per chunk. Returns [(count, {kind: path})]."""
    chunks = []
    for first in range(0, n, chunk):
        last = min(n, first + chunk)
        lines = {k: [] for k in KINDS}
        for i in range(first, last):
            user, video, ts = f"u{i % users}", f"v{(i * 7919) % videos}", iso(BASE_TS + i)
            which = i % 4
            if which == 0:
                lines["watched"].append(
                    f'{user}\t{{"user_id":"{user}","video_id":"{video}",'
                    f'"watched_duration":{(i * 7) % 3600},"total_duration":{60 + i % 3600},'
                    f'"timestamp":"{ts}","device":"tv {i % 3}"}}\n')
            elif which == 1:
                lines["rated"].append(
                    f'{user}\t{{"user_id":"{user}","video_id":"{video}",'
                    f'"rating":{0.5 + (i % 10) * 0.5},"timestamp":"{ts}"}}\n')
            else:
                action = "added" if which == 2 else "removed"
                lines["watchlist"].append(
                    f'{user}\t{{"user_id":"{user}","video_id":"{video}",'
                    f'"action":"{action}","timestamp":"{ts}"}}\n')
        paths = {}
        for kind, batch in lines.items():
            if batch:
                paths[kind] = os.path.join(work, f"chunk{len(chunks):04d}-{kind}.txt")
                with open(paths[kind], "w") as f:
                    f.write("".join(batch))
        chunks.append((last - first, paths))
    return chunks


def machine_busy():
    """CPU seconds spent busy by the whole machine so far (all cores)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of a live process, in seconds (None if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Service:
    def __init__(self, binary, env, work):
        self.binary, self.env = binary, env
        self.log_path = os.path.join(work, "recsd.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary, "run"], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def lines(self):
        out = []
        with open(self.log_path, "rb") as f:
            for raw in f:
                try:
                    out.append(json.loads(raw))
                except ValueError:
                    pass
        return out

    def status(self):
        out = subprocess.run([self.binary, "ctl", "status", "--json"], env=self.env,
                             capture_output=True, text=True, timeout=10)
        return json.loads(out.stdout) if out.returncode == 0 else None

    def ingestors(self):
        st = self.status() or {"actors": []}
        return [a for a in st["actors"] if a["name"].startswith("event-ingestor")]

    def wait_assigned(self, instances, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                die(f"recsd run exited {self.proc.returncode}; see {self.log_path}")
            names = {ln.get("actor") for ln in self.lines()
                     if ln.get("msg", "").startswith("assigned ")}
            if len([n for n in names if n and n.startswith("event-ingestor")]) >= instances:
                return
            time.sleep(0.2)
        die(f"no partitions assigned to {instances} ingestor(s) within {timeout} s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


class Producer:
    """Feeds chunks to kcat, at most `parallel` chunks at a time, each only
    while produced - stored < window."""

    def __init__(self, brokers, topics, chunks, parallel, window, stored):
        self.brokers, self.topics, self.window = brokers, topics, window
        self.stored = stored  # callable: rows stored so far (last poll)
        self.todo = queue.Queue()
        for c in chunks:
            self.todo.put(c)
        self.lock = threading.Lock()
        self.started_events = 0
        self.done_events = 0
        self.cpu = 0.0
        self.error = None
        self.finished_at = None
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(parallel)]

    def start(self):
        for t in self.threads:
            t.start()

    def run(self):
        while self.error is None:
            try:
                count, paths = self.todo.get_nowait()
            except queue.Empty:
                return
            while self.error is None:
                with self.lock:
                    if self.started_events - self.stored() < self.window:
                        self.started_events += count
                        break
                time.sleep(0.02)
            procs = []
            for kind, path in paths.items():
                with open(path, "rb") as f:
                    procs.append(subprocess.Popen(
                        ["kcat", "-b", self.brokers, "-P", "-K", "\t", "-t", self.topics[kind],
                         "-X", "linger.ms=20", "-X", "batch.num.messages=10000"],
                        stdin=f, stderr=subprocess.PIPE))
            for p in procs:
                _, err = p.communicate()
                if p.returncode != 0:
                    self.error = f"kcat exited {p.returncode}: {err.decode()[-300:]}"
            with self.lock:
                self.done_events += count
                self.finished_at = time.time()

    def join(self):
        for t in self.threads:
            t.join()
        if self.error:
            die(self.error)


def batch_figures(lines):
    pat = re.compile(r"batch of (\d+) stored in (\d+) ms")
    sizes, times = [], []
    for ln in lines:
        m = pat.search(ln.get("msg", ""))
        if m and ln.get("actor", "").startswith("event-ingestor"):
            sizes.append(int(m.group(1)))
            times.append(int(m.group(2)))
    if not sizes:
        return "batches: none logged (RECSD_LOG_LEVEL=debug logs one line per batch)"

    def pct(values, p):
        s = sorted(values)
        return s[min(len(s) - 1, int(p * len(s)))]
    return (f"batches: {len(sizes)}, size mean {sum(sizes) / len(sizes):,.0f} "
            f"(p50 {pct(sizes, 0.5)}, max {max(sizes)}); write ms p50 {pct(times, 0.5)}, "
            f"p95 {pct(times, 0.95)}, max {max(times)}; "
            f"{sum(sizes) / max(1, sum(times)) * 1000:,.0f} events per write-second")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--events", type=int, default=1_000_000)
    ap.add_argument("--actors", default="publisher,event-ingestor",
                    help="RECSD_ACTORS, e.g. publisher,event-ingestor:2")
    ap.add_argument("--partitions", type=int, default=8, help="per topic")
    ap.add_argument("--producers", type=int, default=2,
                    help="chunks produced at once (3 kcat processes each)")
    ap.add_argument("--window", type=int, default=150_000,
                    help="events produced but not yet stored, at most")
    ap.add_argument("--chunk", type=int, default=25_000, help="events per kcat round")
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--videos", type=int, default=50_000)
    ap.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment for recsd run, e.g. RECSD_INGEST_BATCH_MAX=10000")
    ap.add_argument("--timeout", type=float, default=600, help="seconds to wait for the rows")
    ap.add_argument("--keep", action="store_true", help="keep the database and the log")
    args = ap.parse_args()

    binary = os.environ.get("RECSD_BIN", os.path.join(REPO, "build-rel", "recsd"))
    for name in ("RECSD_PG_DSN", "RECSD_REDIS_URL"):
        if not os.environ.get(name):
            die(f'{name} unset: eval "$(ops/devstack.sh env)" first')
    for tool in ("kcat", "psql"):
        if not shutil.which(tool):
            die(f"{tool} is not installed")
    if not os.access(binary, os.X_OK):
        die(f"no recsd binary at {binary} (RECSD_BIN)")
    spec = args.actors.split(",")
    instances = sum(int(a.split(":")[1]) if ":" in a else 1
                    for a in spec if a.startswith("event-ingestor"))
    if instances < 1:
        die("--actors must include event-ingestor")

    tag = uuid.uuid4().hex[:8]
    work = tempfile.mkdtemp(prefix="recsd-ingest-bench-")
    base = os.environ["RECSD_PG_DSN"]
    parts = urllib.parse.urlsplit(base)
    if not parts.scheme.startswith("postgres"):
        die("RECSD_PG_DSN must be a postgresql:// URI")
    dbname = f"recsd_bench_{tag}"
    dsn = urllib.parse.urlunsplit(parts._replace(path="/" + dbname))
    kafka = svc = poller = None
    db_made = False
    ok = False
    try:
        t0 = time.time()
        chunks = write_chunks(args.events, args.chunk, args.users, args.videos, work)
        print(f"generated {args.events:,} events in {len(chunks)} chunks "
              f"({time.time() - t0:.1f} s)", flush=True)

        kafka = Kafka(binary, tag, args.partitions)
        psql_once(base, f"CREATE DATABASE {dbname}")
        db_made = True
        out = subprocess.run([binary, "migrate"], env=dict(os.environ, RECSD_PG_DSN=dsn),
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            die(f"migrate: {out.stderr[-1000:]}")

        env = dict(os.environ, **kafka.env())
        env.update({"RECSD_PG_DSN": dsn, "RECSD_ACTORS": args.actors,
                    "RECSD_RUNTIME_DIR": os.path.join(work, "rt"),
                    "RECSD_HTTP_ADDR": "127.0.0.1", "RECSD_HTTP_PORT": str(free_port()),
                    "RECSD_LOG_LEVEL": "debug"})
        for item in args.env:
            name, _, value = item.partition("=")
            env[name] = value
        svc = Service(binary, env, work)
        svc.wait_assigned(instances)
        time.sleep(1)  # let the group settle (every member holds its share)
        print(f"recsd run: {args.actors}, {args.partitions} partitions per topic, "
              f"binary {binary}", flush=True)

        poller = Poller(dsn)
        stored = {"rows": 0}
        producer = Producer(kafka.brokers, kafka.topics, chunks, args.producers, args.window,
                            lambda: stored["rows"])
        pids = [a["pid"] for a in svc.ingestors()]
        cpu0 = {p: cpu_seconds(p) or 0.0 for p in pids}
        kcat0 = os.times()
        mock0 = cpu_seconds(kafka.proc.pid) or 0.0
        busy0 = machine_busy()
        start = time.time()
        producer.start()
        next_report, last_rows, last_t = start + 5, 0, start
        end = None
        while time.time() - start < args.timeout:
            rows = int(poller.query("SELECT coalesce(max(id), 0) FROM features.interactions"))
            stored["rows"] = rows
            now = time.time()
            if rows >= args.events:
                # max(id) counts ids taken, committed or not: confirm.
                rows = int(poller.query("SELECT count(*) FROM features.interactions"))
                stored["rows"] = rows
                if rows >= args.events:
                    end = time.time()
                    break
            if now >= next_report:
                print(f"  {now - start:5.1f} s: produced {producer.done_events:,}, stored "
                      f"{rows:,} ({(rows - last_rows) / (now - last_t):,.0f}/s)", flush=True)
                next_report, last_rows, last_t = now + 5, rows, now
            time.sleep(0.05)
        producer.join()
        kcat = os.times()
        busy = machine_busy() - busy0
        mock = (cpu_seconds(kafka.proc.pid) or 0.0) - mock0
        # Backends of the ingestors' connections (application_name "ingestor...").
        backends = poller.query("SELECT coalesce(string_agg(pid::text, ','), '') "
                                "FROM pg_stat_activity WHERE application_name LIKE '%ingestor%'")
        if end is None:
            final = int(poller.query("SELECT count(*) FROM features.interactions"))
            die(f"only {final:,} of {args.events:,} rows after {args.timeout:.0f} s "
                f"(log: {svc.log_path}; the mock drops what it cannot hold: lower --window?)")
        elapsed = end - start
        produced = (producer.finished_at or end) - start
        total = int(poller.query("SELECT count(*) FROM features.interactions"))
        print(f"produced {args.events:,} events in {produced:.1f} s "
              f"({args.events / produced:,.0f}/s, paced by --window {args.window:,})")
        print(f"figure: {args.events:,} events, first produce to last row committed "
              f"{elapsed:.2f} s = {args.events / elapsed:,.0f} events/s "
              f"({args.actors}, {args.partitions} partitions)")
        print(batch_figures(svc.lines()))
        cpu = sum((cpu_seconds(p) or 0.0) - cpu0[p] for p in pids)
        pg_cpu = sum(cpu_seconds(int(p)) or 0.0 for p in backends.split(",") if p)
        kcat_cpu = (kcat.children_user + kcat.children_system
                    - kcat0.children_user - kcat0.children_system)
        cores = os.cpu_count() or 1
        print(f"cpu seconds: ingestor(s) {cpu:.1f}, their PostgreSQL backends {pg_cpu:.1f}, "
              f"kcat {kcat_cpu:.1f}, mock Kafka {mock:.1f}; whole machine {busy:.1f} of "
              f"{cores * elapsed:.1f} ({cores} cores x {elapsed:.1f} s; the rest: PostgreSQL's "
              f"own processes, this script, and whatever else runs)")
        if total != args.events:
            die(f"{total:,} rows, expected {args.events:,}")
        ok = True
    finally:
        if poller:
            poller.close()
        if svc:
            rc = svc.stop()
            if rc not in (0, None):
                print(f"recsd run exited {rc} (log {svc.log_path})", file=sys.stderr)
        if kafka:
            kafka.close()
        if db_made and not args.keep:
            psql_once(base, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept: {work}" + (f", database {dbname}" if db_made else ""),
                  file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
