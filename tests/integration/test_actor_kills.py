"""kill -9 the trainer, the event-ingestor and the publisher in turn while
clients send requests: the API is unaffected and each actor comes back."""
import os
import signal
import time

from harness import Load, Service, check, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")

with Service() as svc:
    load = Load(svc.port, threads=3).start()
    for name in ("trainer", "event-ingestor", "publisher"):
        before = svc.actor(name)
        os.kill(before["pid"], signal.SIGKILL)

        def back(name=name, before=before):
            row = svc.actor(name)
            ok = row["pid"] not in (0, before["pid"]) and row["state"] == "running"
            return row if ok else None

        after = svc.wait_for(back, 3, f"{name} to be running again")
        check(after["restarts"] == before["restarts"] + 1, f"{name} restarted once")
        time.sleep(1)
    load.finish()
    print(f"responses ok={load.ok} bad={len(load.bad)} sources={load.sources}")
    check(load.ok > 50, f"load ran ({load.ok} responses)")
    check(not load.bad, f"API unaffected: no failed or non-200 response ({load.bad[:3]})")
    check(svc.actor("ranker")["restarts"] == 0, "the ranker was not disturbed")
