"""PostgreSQL and Redis taken away under a running service, for real: the
service stays up, /health/ready is 503 and names the dependency that is
down, recommendations keep coming (the ranker's last popularity list), and
readiness recovers when the dependency is back."""
import json
import subprocess
import time

from harness import Postgres, Redis, Service, check, free_port

pg = Postgres()
redis = Redis()
try:
    pg.sql("INSERT INTO features.interactions (event_id,user_id,video_id,kind,weight,occurred_at)"
           " SELECT 'dd:' || g, 'u' || g, 'v' || (g % 3), 'watch', 1, now()"
           " FROM generate_series(1, 30) g")
    env = {"RECSD_PG_DSN": pg.dsn, "RECSD_REDIS_URL": redis.url}
    with Service(env=env) as svc:
        def ready_checks():
            status, _, body = svc.get("/health/ready")
            return status, json.loads(body)

        svc.wait_for(lambda: ready_checks()[0] == 200, 5, "ready with both dependencies")
        status, _, body = svc.get("/api/v1/recs/7?limit=3")
        doc = json.loads(body)
        check(status == 200 and doc["source"] == "model" and len(doc["items"]) == 3,
              "the ranker serves the popularity list")

        pg.stop()
        stopped = time.time()
        status, doc = svc.wait_for(
            lambda: (r := ready_checks())[0] == 503 and not r[1]["checks"]["postgres"]["ok"]
            and r, 5, "readiness to report postgres down")
        print(f"postgres reported down after {time.time() - stopped:.2f}s: "
              f"{doc['checks']['postgres']['detail']}")
        check(doc["checks"]["redis"]["ok"], "redis is still reported up")
        time.sleep(1.5)  # past a popularity refresh attempt with PostgreSQL gone
        answers = []
        for _ in range(20):
            status, _, body = svc.get("/api/v1/recs/7?limit=3")
            answers.append((status, len(json.loads(body)["items"])))
        check(answers == [(200, 3)] * 20, "recommendations keep coming with PostgreSQL down")
        check(svc.get("/health")[0] == 200, "liveness is unaffected")
        check(all(a["state"] == "running" for a in svc.status()["actors"]),
              "no actor crashed or restarted")

        redis.stop()
        status, doc = svc.wait_for(
            lambda: (r := ready_checks())[0] == 503 and not r[1]["checks"]["redis"]["ok"]
            and r, 5, "readiness to report redis down")
        check(not doc["checks"]["postgres"]["ok"], "both dependencies named as down")

        pg.start()
        svc.wait_for(lambda: ready_checks()[1]["checks"]["postgres"]["ok"], 10,
                     "postgres reported up again")

        # A table locked for longer than the heartbeat timeout: queries made
        # inside the actors' loops time out instead of stalling them, so no
        # actor is killed for missed heartbeats.
        locker = subprocess.Popen(
            ["psql", pg.dsn, "-qc", "BEGIN; LOCK TABLE features.interactions; "
             "SELECT pg_sleep(7); COMMIT;"], stdout=subprocess.DEVNULL)
        time.sleep(6.5)
        statuses = {svc.get("/api/v1/recs/7?limit=3")[0] for _ in range(10)}
        locker.wait(15)
        check(statuses == {200}, "recommendations answered while the table was locked")
        check(True, "readiness recovers when PostgreSQL is back")
        check(sum(a["restarts"] for a in svc.status()["actors"]) == 0,
              "the whole episode cost no restart")
finally:
    redis.stop()
    pg.close()

# A ranker that starts while PostgreSQL is unreachable has no list: the
# gateway answers from its fallback rather than with an empty "model" list.
with Service(env={"RECSD_PG_DSN": f"postgresql://recsd@127.0.0.1:{free_port()}/recsd",
                  "RECSD_ACTORS": "ranker,http-gateway"}) as svc:
    status, _, body = svc.get("/api/v1/recs/7?limit=3")
    check(status == 200 and json.loads(body)["source"] == "fallback",
          "no database since start: the answer is marked fallback, not an empty model list")
