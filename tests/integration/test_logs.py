"""Logs: JSON lines with the documented field set, written to RECSD_LOG_FILE
by the supervisor and every actor, rotated by size with a retention count;
`recsd ctl log-level` changes the level of one actor (or all) at run time,
and the level survives a restart and a kill -9 of that actor."""
import json
import os
import re
import signal
import subprocess
import time
import uuid

from harness import BIN, Service, check, fail, psql, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")

MAX = 8192
KEEP = 2
FIELDS = {"ts", "level", "actor", "pid", "msg"}
OPTIONAL = {"request_id"}
LEVELS = {"debug", "info", "warn", "error"}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# The ranker's model loader logs every PostgreSQL notification on this
# channel at debug: a way to make the ranker write debug lines on demand.
CHANNEL = "recsd_experiments_changed"
TAG = uuid.uuid4().hex[:8]


class LogFiles:
    """Reads the log file and its rotated copies, remembering every line
    seen (rotation drops the oldest files) and checking each one."""

    def __init__(self, path):
        self.path = path
        self.seen = {}          # raw line -> parsed, over every snapshot
        self.order = []         # parsed lines in first-seen order
        self.max_rotated = 0

    def names(self):
        return [self.path] + [f"{self.path}.{n}" for n in range(1, KEEP + 5)]

    def poll(self):
        for n, name in enumerate(self.names()):
            if not os.path.exists(name):
                continue
            if n > 0:
                self.max_rotated = max(self.max_rotated, n)
            with open(name, "rb") as f:
                data = f.read()
            if data and not data.endswith(b"\n"):
                # The writer appends whole lines with one write(2): a
                # partial line would be a torn write.
                fail(f"{name} ends in a partial line: {data[-200:]!r}")
            for raw in data.splitlines():
                if raw in self.seen:
                    continue
                try:
                    line = json.loads(raw)
                except ValueError:
                    fail(f"not JSON in {name}: {raw[:300]!r}")
                self.check_fields(line, raw)
                self.seen[raw] = line
                self.order.append(line)
        return self.order

    def current(self):
        """The lines in the files as they are now (after poll's checks)."""
        self.poll()
        lines = []
        for name in self.names():
            if os.path.exists(name):
                with open(name, "rb") as f:
                    lines += [self.seen[raw] for raw in f.read().splitlines() if raw in self.seen]
        return lines

    @staticmethod
    def check_fields(line, raw):
        keys = set(line)
        if not FIELDS <= keys or keys - FIELDS - OPTIONAL:
            fail(f"fields {sorted(keys)} are not the documented set: {raw[:300]!r}")
        if (not TS.match(line["ts"]) or line["level"] not in LEVELS
                or not isinstance(line["actor"], str) or not isinstance(line["pid"], int)
                or not isinstance(line["msg"], str)):
            fail(f"a field has the wrong form: {raw[:300]!r}")

    def wait(self, predicate, timeout, what, tick=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if tick:
                tick()
            found = [l for l in self.poll() if predicate(l)]
            if found:
                return found
            time.sleep(0.1)
        fail(f"timed out after {timeout}s waiting for {what}")


def notify(payload):
    psql(os.environ["RECSD_PG_DSN"], f"NOTIFY {CHANNEL}, '{payload}'")


def ranker_debug(payload, pid=None):
    return lambda l: (l["level"] == "debug" and l["actor"] == "ranker"
                      and payload in l["msg"] and (pid is None or l["pid"] == pid))


svc = Service(actors="ranker,http-gateway", env={
    # The gateway reloads its popularity copy this often and logs each
    # reload at debug: the lines that must NOT appear while only the ranker
    # is at debug.
    "RECSD_POPULAR_REFRESH_MS": "200",
    "RECSD_LOG_FILE_MAX_BYTES": str(MAX),
    "RECSD_LOG_FILE_KEEP": str(KEEP),
})
log_path = os.path.join(svc.runtime_dir, "service.log")
svc.env["RECSD_LOG_FILE"] = log_path
logs = LogFiles(log_path)

with svc:
    lines = logs.wait(lambda l: l["actor"] == "http-gateway" and l["msg"] == "ready", 10,
                      "the gateway's ready line in the file")
    actors = {l["actor"] for l in logs.poll()}
    check({"supervisor", "ranker", "http-gateway"} <= actors,
          f"the supervisor and both actors write to the file ({sorted(actors)})")
    stray = [l for l in svc.logs().splitlines() if l.startswith('{"ts"')]
    check(not stray, f"with RECSD_LOG_FILE nothing is logged on stderr ({stray[:2]})")
    check(not any(l["level"] == "debug" for l in logs.poll()), "no debug line at level info")
    out = svc.ctl("log-level")
    rows = dict(line.split() for line in out.stdout.splitlines()[1:])
    check(rows == {"supervisor": "info", "ranker": "info", "http-gateway": "info"},
          f"ctl log-level lists every level ({rows})")

    # One actor to debug: its debug lines appear, nobody else's.
    out = svc.ctl("log-level", "debug", "ranker")
    check(out.stdout.strip() == "log level debug: ranker (1 actor process)",
          f"ctl log-level debug ranker answers ({out.stdout.strip()})")
    ranker_pid = svc.actor("ranker")["pid"]
    n = [0]

    def poke(prefix):
        n[0] += 1
        notify(f"{prefix}-{TAG}-{n[0]}")

    logs.wait(ranker_debug(f"on-{TAG}", ranker_pid), 10, "a debug line from the ranker",
              tick=lambda: poke("on"))
    check(True, "the ranker logs at debug after ctl log-level debug ranker")
    time.sleep(1.5)  # seven gateway reloads: each would log at debug
    others = [l for l in logs.poll() if l["level"] == "debug" and l["actor"] != "ranker"]
    check(not others, f"no debug line from any other process ({others[:2]})")
    rows = dict(line.split() for line in svc.ctl("log-level").stdout.splitlines()[1:])
    check(rows == {"supervisor": "info", "ranker": "debug", "http-gateway": "info"},
          f"ctl log-level shows the ranker at debug ({rows})")
    check(svc.status()["actors"][0]["log_level"] == "debug", "status --json has log_level")

    # A burst of debug lines rotates the file several times; the lines kept
    # are whole and in order, with no gap.
    burst = 300
    psql(os.environ["RECSD_PG_DSN"],
         "; ".join(f"NOTIFY {CHANNEL}, 'burst-{TAG}-{i}'" for i in range(burst)))
    logs.wait(ranker_debug(f"burst-{TAG}-{burst - 1}"), 10, "the end of the burst")
    seqs = sorted(int(l["msg"].rsplit("-", 1)[1]) for l in logs.current()
                  if f"burst-{TAG}-" in l["msg"])
    check(seqs and seqs == list(range(seqs[0], burst)),
          f"the burst lines still kept form one unbroken run ({len(seqs)} from {seqs[:1]})")
    check(os.path.exists(log_path + ".1"), "the file was rotated to .1")
    for n_ in range(1, KEEP + 1):
        size = os.path.getsize(f"{log_path}.{n_}")
        check(MAX <= size < MAX + 4096, f"{log_path}.{n_} was rotated at the size ({size} bytes)")

    # The level survives a graceful restart: the new process starts at it.
    svc.ctl("restart", "ranker")
    new = svc.wait_for(lambda: (r := svc.actor("ranker"))["state"] == "running"
                       and r["pid"] != ranker_pid and r, 10, "the restarted ranker")
    logs.wait(ranker_debug(f"restart-{TAG}", new["pid"]), 10,
              "a debug line from the restarted ranker", tick=lambda: poke("restart"))
    check(True, "the restarted ranker logs at debug")
    told = [l for l in logs.poll() if l["pid"] == new["pid"] and "log level set" in l["msg"]]
    first_debug = next(l for l in logs.poll() if l["pid"] == new["pid"] and l["level"] == "debug")
    check(not told, f"it started at debug (RECSD_LOG_LEVEL), not told later ({told[:1]}); "
          f"first debug line: {first_debug['msg'][:60]}")

    # ... and a kill -9.
    os.kill(new["pid"], signal.SIGKILL)
    newer = svc.wait_for(lambda: (r := svc.actor("ranker"))["state"] == "running"
                         and r["pid"] not in (new["pid"], ranker_pid) and r, 15,
                         "the ranker back after kill -9")
    logs.wait(ranker_debug(f"kill-{TAG}", newer["pid"]), 10,
              "a debug line from the ranker restarted after kill -9",
              tick=lambda: poke("kill"))
    check(True, "the level survives a kill -9 of the ranker")

    # Back to info: its debug lines stop.
    out = svc.ctl("log-level", "info", "ranker")
    check(out.returncode == 0, "ctl log-level info ranker")
    logs.wait(lambda l: l["pid"] == newer["pid"] and l["msg"].startswith("log level set to info"),
              5, "the ranker's note that its level changed")
    for _ in range(5):
        poke("off")
        time.sleep(0.2)
    time.sleep(1.0)
    late = [l for l in logs.poll() if f"off-{TAG}" in l["msg"]]
    check(not late, f"no ranker debug line after ctl log-level info ranker ({late[:1]})")

    # Everything to debug (no ACTOR): now the gateway's reloads show, which
    # is what made the check above meaningful.
    out = svc.ctl("log-level", "debug")
    check(out.stdout.strip() == "log level debug: supervisor and 2 actor processes",
          f"ctl log-level debug sets every process ({out.stdout.strip()})")
    logs.wait(lambda l: l["actor"] == "http-gateway" and l["level"] == "debug", 5,
              "a debug line from the gateway")
    check(True, "the gateway logs at debug after ctl log-level debug")
    svc.ctl("log-level", "warn", "supervisor")
    rows = dict(line.split() for line in svc.ctl("log-level").stdout.splitlines()[1:])
    check(rows == {"supervisor": "warn", "ranker": "debug", "http-gateway": "debug"},
          f"supervisor alone to warn ({rows})")
    svc.ctl("log-level", "info", "all")

    # Bad requests: a clear message and a non-zero exit.
    out = svc.ctl("log-level", "loud", check_rc=False)
    check(out.returncode == 2 and "unknown log level \"loud\"" in out.stderr,
          f"an invalid level is refused ({out.returncode}: {out.stderr.strip()})")
    out = svc.ctl("log-level", "debug", "chef", check_rc=False)
    check(out.returncode == 2 and "unknown actor" in out.stderr,
          f"an unknown actor is refused ({out.stderr.strip()})")
    out = svc.ctl("log-level", "debug", "trainer", check_rc=False)
    check(out.returncode == 1 and "no such actor" in out.stderr,
          f"an actor this pod does not run is refused ({out.stderr.strip()})")
    out = svc.ctl("log-level", "debug", "ranker", "now", check_rc=False)
    check(out.returncode == 2 and "usage" in out.stderr, "extra arguments print usage")

    logs.poll()
    check(logs.max_rotated == KEEP,
          f"never more than {KEEP} rotated files (saw up to .{logs.max_rotated})")
    rc = svc.stop()
    check(rc == 0, f"clean stop ({rc})")
    logs.poll()
    check(any(l["actor"] == "supervisor" and l["msg"].startswith("supervisor stopped")
              for l in logs.poll()), "the supervisor's last line is in the file")
print(f"{len(logs.order)} lines checked")

# The file cannot be opened: the supervisor refuses to start, saying why.
out = subprocess.run([BIN, "run"], capture_output=True, text=True, timeout=10,
                     env=dict(os.environ, RECSD_RUNTIME_DIR=f"/tmp/recsd-logs-{TAG}",
                              RECSD_LOG_FILE=f"/tmp/recsd-no-such-dir-{TAG}/recsd.log"))
check(out.returncode == 78 and "RECSD_LOG_FILE" in out.stderr and "No such file" in out.stderr,
      f"an unopenable RECSD_LOG_FILE stops `recsd run` ({out.returncode}: {out.stderr.strip()})")
check(not os.path.exists(f"/tmp/recsd-logs-{TAG}"), "nothing was started")
print("PASS: logs")
