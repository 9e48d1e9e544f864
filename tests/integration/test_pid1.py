"""The supervisor as PID 1 (unshare --pid --fork --mount-proc): an orphaned
grandchild is reaped, and SIGTERM under load drains and exits 0 within the
grace period with no failed in-flight request."""
import os
import re
import signal
import subprocess
import time

from harness import Load, Service, check, fail, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    # comm may hold spaces and parentheses: split after the last ')'
    rest = text[text.rindex(")") + 2:].split()
    return rest[0], int(rest[1])  # state, ppid


def children_of(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                state, ppid = proc_stat(int(entry))
            except (OSError, ValueError):
                continue
            if ppid == pid:
                out.append((int(entry), state))
    return out


grace_ms = 10000
env = {"RECSD_SHUTDOWN_GRACE_MS": str(grace_ms), "RECSD_DRAIN_DELAY_MS": "300"}
svc = Service(env=env, prefix=["unshare", "--pid", "--fork", "--mount-proc"])
svc.start()
try:
    kids = [pid for pid, _ in children_of(svc.proc.pid)]
    check(len(kids) == 1, f"unshare has one child, the supervisor ({kids})")
    sup = kids[0]
    with open(f"/proc/{sup}/status") as f:
        nspid = re.search(r"^NSpid:\s+(.*)$", f.read(), re.M).group(1).split()
    check(nspid[-1] == "1", f"the supervisor is PID 1 in its namespace (NSpid {nspid})")

    # An orphan: a shell inside the namespace starts a sleep and exits, so
    # the sleep is re-parented to the namespace's init, our supervisor.
    subprocess.run(["nsenter", "-t", str(sup), "-p", "-m", "--", "sh", "-c",
                    "sleep 1.234 >/dev/null 2>&1 &"], check=True, timeout=10)
    orphan = None
    for _ in range(50):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        if f.read() == b"sleep\x001.234\x00":
                            orphan = int(entry)
                except OSError:
                    pass
        if orphan:
            break
        time.sleep(0.05)
    check(orphan is not None, "the orphan runs")
    check(proc_stat(orphan)[1] == sup, "the orphan was re-parented to the supervisor")
    deadline = time.time() + 5
    while os.path.exists(f"/proc/{orphan}") and time.time() < deadline:
        time.sleep(0.05)
    check(not os.path.exists(f"/proc/{orphan}"), "the orphan was reaped (no zombie left)")
    zombies = [pid for pid, state in children_of(sup) if state == "Z"]
    check(not zombies, f"no zombie children of PID 1 ({zombies})")

    # SIGTERM under load.
    load = Load(svc.port, threads=4).start()
    time.sleep(1.5)
    ok_before = load.ok
    sent = time.time()
    os.kill(sup, signal.SIGTERM)
    try:
        rc = svc.proc.wait(grace_ms / 1000 + 5)
    except subprocess.TimeoutExpired:
        fail("did not exit within the grace period")
    elapsed = time.time() - sent
    load.finish()
    print(f"exit {rc} after {elapsed:.2f}s; ok={load.ok} (before SIGTERM {ok_before}) "
          f"bad={len(load.bad)} refused after stop={load.refused}")
    check(rc == 0, "exit status 0")
    check(elapsed < grace_ms / 1000, "exited within the grace period")
    check(load.ok > ok_before, "requests kept being served while draining")
    check(not load.bad, f"no failed in-flight request ({load.bad[:3]})")
    logs = svc.log_lines()
    stops = [l["msg"].split()[1] for l in logs if l.get("actor") == "supervisor"
             and l.get("msg", "").startswith("stopping ")]
    check(stops == ["http-gateway", "event-ingestor", "ranker", "trainer", "publisher"],
          f"actors stopped in reverse start order ({stops})")
finally:
    if svc.proc.poll() is None:
        svc.proc.kill()
    svc.close()
