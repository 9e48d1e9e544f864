"""The gateway's HTTP surface on the real service: health, readiness,
metrics, recommendations from the ranker (popularity from PostgreSQL),
errors as problem+json, and the request id across actors."""
import json
import os
import subprocess
import uuid

from harness import Service, check, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")

# Known popularity: three videos with 3, 2 and 1 interactions, under a
# prefix no other test uses, so the order is ours to check.
tag = uuid.uuid4().hex[:8]
rows = [(f"u{i}", f"itvid-{tag}-{v}") for v, n in (("a", 30), ("b", 20), ("c", 10))
        for i in range(n)]
values = ",".join(
    f"('it:{tag}:{n}','{u}','{v}','watch',1.0,now())" for n, (u, v) in enumerate(rows))
sql = ("INSERT INTO features.interactions (event_id,user_id,video_id,kind,weight,occurred_at) "
       f"VALUES {values}")
subprocess.run(["psql", os.environ["RECSD_PG_DSN"], "-qc", sql], check=True)

try:
    with Service(env={"RECSD_LOG_LEVEL": "debug"}) as svc:
        status, headers, body = svc.get("/health")
        check(status == 200 and json.loads(body)["status"] == "ok", "GET /health is 200")

        status, headers, body = svc.wait_for(
            lambda: (r := svc.get("/health/ready"))[0] == 200 and r, 5, "readiness 200")
        ready = json.loads(body)
        check(ready["ready"] is True, "ready is true")
        for name in ("postgres", "redis", "actors"):
            check(ready["checks"][name]["ok"] is True, f"readiness check {name} passes")

        def recs_top3():
            s, h, b = svc.get("/api/v1/recs/42?limit=3", {"X-Request-Id": "it-req-0001"})
            doc = json.loads(b)
            ids = [i["video_id"] for i in doc["items"]]
            return (s, h, doc) if ids == [f"itvid-{tag}-{x}" for x in "abc"] else None

        status, headers, doc = svc.wait_for(recs_top3, 5, "popularity list with our videos")
        check(status == 200, "recs is 200")
        check(doc["source"] == "model" and doc["user_id"] == "42", "answered by the ranker")
        check(headers.get("X-Request-Id") == "it-req-0001", "client request id echoed")
        check([i["score"] for i in doc["items"]] == [30, 20, 10], "scores are counts")
        ranker_saw = [l for l in svc.log_lines()
                      if l.get("actor") == "ranker" and l.get("request_id") == "it-req-0001"]
        check(ranker_saw, "the request id travelled to the ranker's log")

        status, headers, body = svc.get("/api/v1/recs/42")
        check(status == 200 and len(json.loads(body)["items"]) <= 10, "default limit 10")
        rid = headers.get("X-Request-Id", "")
        check(len(rid) == 32, f"a request id is generated when none is sent ({rid})")

        for path, param in (("/api/v1/recs/42?limit=0", "limit"),
                            ("/api/v1/recs/42?limit=101", "limit"),
                            ("/api/v1/recs/42?limit=ten", "limit"),
                            ("/api/v1/recs/" + "x" * 65, "userId")):
            status, headers, body = svc.get(path)
            doc = json.loads(body)
            check(status == 400 and headers.get("Content-Type") == "application/problem+json"
                  and doc["status"] == 400 and param in doc["detail"],
                  f"{path[:40]} is a 400 problem naming {param}")

        status, headers, body = svc.get("/no/such/route")
        check(status == 404 and headers.get("Content-Type") == "application/problem+json",
              "unknown route is a 404 problem+json")

        # The ranker's own series come with its heartbeats (every 500 ms).
        status, headers, body = svc.wait_for(
            lambda: b"recsd_ranker_answered_total" in (r := svc.get("/metrics"))[2] and r, 5,
            "the ranker's metrics on /metrics")
        text = body.decode()
        types = [l.split()[2] for l in text.splitlines() if l.startswith("# TYPE ")]
        check(len(types) == len(set(types)), "every metric family is declared once")
        check(status == 200 and headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
              "metrics in Prometheus text format 0.0.4")
        for needle in ('recsd_http_requests_total{route="/api/v1/recs/{userId}",status="200"}',
                       'recsd_http_requests_total{route="/api/v1/recs/{userId}",status="400"} 4',
                       'recsd_http_request_duration_seconds_bucket{route="/health",status="200",le="+Inf"}',
                       'recsd_actor_up{actor="ranker"} 1',
                       'recsd_actor_restarts_total{actor="trainer"} 0',
                       '# TYPE recsd_ranker_answered_total counter',
                       'recsd_ranker_answered_total{actor="ranker"} '):
            check(needle in text, f"metrics have {needle}")
finally:
    subprocess.run(["psql", os.environ["RECSD_PG_DSN"], "-qc",
                    f"DELETE FROM features.interactions WHERE event_id LIKE 'it:{tag}:%'"],
                   check=True)
