"""Freshness, end to end: after a VideoWatched event for a user, the next
recommendation for that user no longer contains that video. Kafka (a private
mock cluster) -> event-ingestor -> PostgreSQL -> ranker notice -> gateway.

Prints the event-to-fresh-recommendation latency over several users
(from the start of the produce to the first answer without the video),
with its p50 and p95."""
import json
import sys
import time
import uuid

from harness import Service, check
from test_ingest import Database, Kafka, psql, service_env, wait_assigned

USERS = int(sys.argv[1]) if len(sys.argv) > 1 else 20

tag = uuid.uuid4().hex[:8]
kafka = Kafka(f"fresh_{tag}")
db = Database(f"fresh_{tag}")
try:
    # A crowd makes a, b, c the most popular videos, in that order.
    psql(db.dsn, "INSERT INTO features.interactions "
         "(event_id, user_id, video_id, kind, weight, occurred_at) "
         "SELECT 'crowd:' || v || ':' || g, 'crowd' || g, v, 'watch', 1, now() "
         "FROM (VALUES ('fresh-a', 30), ('fresh-b', 20), ('fresh-c', 10)) AS p(v, n), "
         "LATERAL generate_series(1, p.n) g")
    env = service_env(kafka, db.dsn, {"RECSD_SEEN_COMPLETION": "0.9",
                                      "RECSD_INGEST_BATCH_MS": "20"})
    with Service(env=env) as svc:
        wait_assigned(svc)

        def items(user):
            status, _, body = svc.get(f"/api/v1/recs/{user}?limit=3")
            doc = json.loads(body)
            return status, doc["source"], [i["video_id"] for i in doc["items"]]

        svc.wait_for(lambda: items("anyone")[2] == ["fresh-a", "fresh-b", "fresh-c"], 10,
                     "the crowd's popularity list")
        latencies = []
        for n in range(USERS):
            user = f"viewer-{tag}-{n}"
            status, source, before = items(user)
            check(source == "model" and "fresh-a" in before, f"{user} is offered fresh-a")
            event = {"user_id": user, "video_id": "fresh-a", "watched_duration": 600,
                     "total_duration": 600,
                     "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "device": "tv"}
            started = time.time()
            kafka.produce("watched", [user + "\t" + json.dumps(event)])
            fresh = svc.wait_for(lambda u=user: (r := items(u))[2] and "fresh-a" not in r[2]
                                 and r, 5, f"{user}'s list without fresh-a")
            latencies.append(time.time() - started)
            check(fresh[0] == 200 and fresh[2][:2] == ["fresh-b", "fresh-c"],
                  f"{user} now gets {fresh[2]}")
        latencies.sort()
        p50 = latencies[len(latencies) // 2]
        p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
        print(f"event-to-fresh-recommendation over {USERS} users: p50 {p50 * 1000:.0f} ms, "
              f"p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms "
              "(includes starting kcat for each produce)", flush=True)
        rows = int(psql(db.dsn, "SELECT count(*) FROM features.interactions "
                        "WHERE video_id = 'fresh-a' AND user_id LIKE 'viewer-%'").strip())
        check(rows == USERS, f"each event stored once ({rows})")
finally:
    kafka.close()
    db.close()
