"""recsd ctl against a live supervisor: the status table and JSON, a graceful
restart under load, errors; a hung actor (SIGSTOP, so it misses heartbeats)
is killed and restarted; RECSD_ACTORS chooses what a pod runs."""
import os
import signal
import subprocess
import time

from harness import BIN, Load, Service, check, free_port, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")

env = {"RECSD_HEARTBEAT_INTERVAL_MS": "100", "RECSD_HEARTBEAT_TIMEOUT_MS": "1000"}
with Service(env=env) as svc:
    starts = [l["msg"].split()[2] for l in svc.log_lines()
              if l.get("msg", "").startswith("started actor ")]
    check(starts == ["publisher", "trainer", "ranker", "event-ingestor", "http-gateway"],
          f"actors start in order ({starts})")
    table = svc.ctl("status").stdout
    lines = table.splitlines()
    check(lines[1].split()[:3] == ["ACTOR", "PID", "STATE"], "status prints a table header")
    for name in ("publisher", "trainer", "ranker", "event-ingestor", "http-gateway"):
        row = [l for l in lines if l.startswith(name + " ")]
        check(row and "running" in row[0], f"{name} is listed as running")
    status = svc.status()
    row = status["actors"][2]
    for key in ("name", "pid", "state", "restarts", "uptime_ms", "heartbeat_age_ms",
                "rss_bytes", "handled", "queue_depth"):
        check(key in row, f"JSON status has {key}")
    check(row["rss_bytes"] > 1 << 20, "RSS is measured")
    check(0 <= row["heartbeat_age_ms"] < 1000, "heartbeat age is fresh")

    # Graceful restart of the ranker under load: no failed request.
    load = Load(svc.port, threads=3).start()
    time.sleep(0.5)
    before = svc.actor("ranker")
    out = svc.ctl("restart", "ranker")
    check(out.stdout.strip() == "restarting", "ctl restart answers")
    after = svc.wait_for(lambda: (r := svc.actor("ranker"))["state"] == "running"
                         and r["pid"] != before["pid"] and r, 5, "the restarted ranker")
    check(after["restarts"] == before["restarts"] + 1, "restart counted")
    time.sleep(0.5)
    load.finish()
    check(not load.bad and load.ok > 20, f"no failed request during the restart ({load.ok} ok)")
    check(svc.actor("ranker")["state"] == "running", "graceful restart does not fail the actor")

    out = svc.ctl("restart", "dishwasher", check_rc=False)
    check(out.returncode == 2 and "unknown actor" in out.stderr, "ctl restart of an unknown actor")
    out = svc.ctl("frobnicate", check_rc=False)
    check(out.returncode == 2 and "usage" in out.stderr, "ctl with a bad command prints usage")

    # A hung actor: stopped, so it misses heartbeats; it is killed and replaced.
    hung = svc.actor("trainer")
    os.kill(hung["pid"], signal.SIGSTOP)
    stopped_at = time.time()
    back = svc.wait_for(lambda: (r := svc.actor("trainer"))["state"] == "running"
                        and r["pid"] != hung["pid"] and r, 5, "the hung trainer replaced")
    print(f"hung trainer replaced after {time.time() - stopped_at:.2f}s")
    check(back["restarts"] == hung["restarts"] + 1, "hung actor restarted once")
    check(not os.path.exists(f"/proc/{hung['pid']}"), "the hung process was killed and reaped")
    check(any("missed heartbeats" in l.get("msg", "") for l in svc.log_lines()),
          "the kill is logged with its reason")

# No supervisor: a clear error and exit 1.
out = subprocess.run([BIN, "ctl", "status"], capture_output=True, text=True, timeout=10,
                     env=dict(os.environ, RECSD_RUNTIME_DIR="/tmp/recsd-nobody-here"))
check(out.returncode == 1 and "no answer from the supervisor" in out.stderr,
      "ctl without a supervisor fails clearly")

# The admin socket on loopback TCP as well (RECSD_ADMIN_TCP).
admin_port = free_port()
with Service(env={"RECSD_ADMIN_TCP": f"tcp://127.0.0.1:{admin_port}"},
             actors="publisher") as svc:
    # A client that only knows the TCP endpoint (another runtime dir).
    env = dict(os.environ, RECSD_ADMIN_TCP=f"tcp://127.0.0.1:{admin_port}",
               RECSD_RUNTIME_DIR="/tmp/recsd-elsewhere")
    out = subprocess.run([BIN, "ctl", "status", "--json"], env=env, capture_output=True,
                         text=True, timeout=10)
    check(out.returncode == 0 and '"publisher"' in out.stdout, "ctl status over loopback TCP")
    mode = os.stat(svc.env["RECSD_RUNTIME_DIR"]).st_mode & 0o777
    check(mode == 0o700, f"the runtime dir is private (mode {oct(mode)})")

# A worker pod runs only what it is told to.
with Service(actors="trainer,publisher") as worker:
    names = [a["name"] for a in worker.status()["actors"]]
    check(names == ["publisher", "trainer"], f"RECSD_ACTORS=trainer,publisher runs those ({names})")
