"""kill -9 the ranker while clients send requests without pause for 10 s:
zero failed or non-200 responses, and the ranker is back (new pid, restarts
+1 in `recsd ctl status --json`) within 3 s."""
import os
import signal
import time

from harness import Load, Service, check, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")

with Service() as svc:
    before = svc.actor("ranker")
    load = Load(svc.port, threads=4).start()
    time.sleep(2)
    os.kill(before["pid"], signal.SIGKILL)
    killed_at = time.time()

    def back():
        row = svc.actor("ranker")
        return row if row["pid"] not in (0, before["pid"]) and row["state"] == "running" else None

    after = svc.wait_for(back, 3, "the ranker to be running again")
    print(f"ranker back after {time.time() - killed_at:.2f}s as pid {after['pid']}")
    time.sleep(max(0, 10 - (time.time() - killed_at) - 2))
    load.finish()
    print(f"responses ok={load.ok} bad={len(load.bad)} sources={load.sources}")
    check(load.ok > 100, f"load ran ({load.ok} responses)")
    check(not load.bad, f"no failed or non-200 response (first: {load.bad[:3]})")
    check(load.refused == 0, "no refused connection")
    check(after["restarts"] == before["restarts"] + 1, "restarts went up by one")
