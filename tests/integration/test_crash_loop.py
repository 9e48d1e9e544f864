"""An actor that crashes on start every time is marked failed after the
restart-intensity limit; the supervisor keeps running, /health/ready says
503, and the API still answers (from the gateway's fallback).

The crash is real: the ranker's ipc socket path is replaced by a directory,
so every new ranker fails to bind and exits 1."""
import os
import signal
import time

from harness import Service, check, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")

env = {"RECSD_RESTART_MAX": "3", "RECSD_RESTART_WINDOW_MS": "30000",
       "RECSD_BACKOFF_MIN_MS": "100", "RECSD_FAILED_RETRY_MS": "600000"}
with Service(env=env) as svc:
    svc.wait_for(lambda: svc.get("/health/ready")[0] == 200, 5, "readiness 200")
    check(True, "ready while every actor runs")
    ranker = svc.actor("ranker")
    path = os.path.join(svc.env["RECSD_RUNTIME_DIR"], "ranker")
    os.unlink(path)
    os.mkdir(path)
    os.kill(ranker["pid"], signal.SIGKILL)
    started = time.time()
    row = svc.wait_for(lambda: (r := svc.actor("ranker"))["state"] == "failed" and r, 15,
                       "the ranker to be marked failed")
    print(f"failed after {time.time() - started:.1f}s with {row['restarts']} restarts")
    check(row["restarts"] == 4, "failed on the restart that exceeded max 3")
    check(svc.proc.poll() is None, "the supervisor keeps running")
    time.sleep(1.5)
    check(svc.actor("ranker")["state"] == "failed", "no hot restart loop after failing")
    check(svc.actor("ranker")["restarts"] == 4, "no further restarts while failed")
    status, _, body = svc.wait_for(
        lambda: (r := svc.get("/health/ready"))[0] == 503 and r, 3, "readiness 503")
    check(b"ranker" in body, "readiness names the failed actor")
    status, _, body = svc.get("/api/v1/recs/1")
    check(status == 200 and b'"fallback"' in body, "the API still answers, from the fallback")
    failed_logs = [l for l in svc.log_lines() if l.get("level") == "error"
                   and "ranker failed" in l.get("msg", "")]
    check(len(failed_logs) == 1, "the failure is reported once in the log")
    os.rmdir(path)
