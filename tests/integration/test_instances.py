"""Child specs with a count: RECSD_ACTORS=ranker:2 runs two rankers
(ranker.1, ranker.2), the gateway spreads over both, one killed with -9
leaves the other serving, and each is restarted on its own."""
import os
import signal
import subprocess
import time

from harness import BIN, Load, Service, check, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")

actors = "publisher,trainer,ranker:2,event-ingestor,http-gateway"
with Service(actors=actors) as svc:
    names = [a["name"] for a in svc.status()["actors"]]
    check(names == ["publisher", "trainer", "ranker.1", "ranker.2", "event-ingestor",
                    "http-gateway"], f"two ranker instances are supervised ({names})")
    check(svc.wait_for(lambda: svc.get("/health/ready")[0] == 200, 5, "ready"),
          "ready with both instances up")

    load = Load(svc.port, threads=4).start()
    time.sleep(1)
    handled = {n: svc.actor(n)["handled"] for n in ("ranker.1", "ranker.2")}
    check(all(v > 0 for v in handled.values()), f"both rankers serve requests ({handled})")
    first = svc.actor("ranker.1")
    os.kill(first["pid"], signal.SIGKILL)
    back = svc.wait_for(lambda: (r := svc.actor("ranker.1"))["state"] == "running"
                        and r["pid"] != first["pid"] and r, 3, "ranker.1 back")
    check(back["restarts"] == 1 and svc.actor("ranker.2")["restarts"] == 0,
          "only the killed instance restarted")
    time.sleep(1)
    load.finish()
    print(f"ok={load.ok} bad={len(load.bad)} sources={load.sources}")
    check(not load.bad and load.ok > 100, "no failed request while one ranker died")

    out = svc.ctl("restart", "ranker", check_rc=False)
    check(out.returncode == 1 and "instance" in out.stderr, "restart by kind is refused")
    before = svc.actor("ranker.2")
    check(svc.ctl("restart", "ranker.2").returncode == 0, "restart by instance name")
    svc.wait_for(lambda: (r := svc.actor("ranker.2"))["pid"] != before["pid"]
                 and r["state"] == "running", 5, "ranker.2 restarted")

out = subprocess.run([BIN, "run"], capture_output=True, text=True, timeout=10,
                     env=dict(os.environ, RECSD_ACTORS="http-gateway:2"))
check(out.returncode == 78 and "runs once per pod" in out.stderr,
      "two gateways in one pod are refused")
out = subprocess.run([BIN, "run"], capture_output=True, text=True, timeout=10,
                     env=dict(os.environ, RECSD_ACTORS="ranker:9"))
check(out.returncode == 78 and "RECSD_ACTORS" in out.stderr, "a count over 8 is refused")
