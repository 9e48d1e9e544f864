"""The gateway's recommendation cache, end to end on MovieLens latest-small:
a repeated request is a cache hit (same list, source "cache", this
request's id) counted per level in /metrics, and kept in Redis as a hash
per user; a VideoWatched for the user (Kafka -> ingestor -> notice + Redis
DEL) makes the next answer fresh and without that video; Redis killed
mid-run: answers go on (200, from the model), readiness reports Redis.

Speed: one small collaborative model (16 factors, 3 iterations).
"""
import http.client
import json
import re
import subprocess
import time
import uuid

from harness import MovieLensDatabase, Redis, Service, check, require_env
from test_ingest import Kafka, service_env, wait_assigned

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")


def get(svc, path):
    status, _, body = svc.get(path)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def metric(svc, pattern):
    _, _, body = svc.get("/metrics")
    m = re.search(pattern, body.decode(), re.M)
    return int(float(m.group(1))) if m else 0


def main():
    tag = uuid.uuid4().hex[:8]
    kafka, db, redis = Kafka(f"cache_{tag}"), MovieLensDatabase("cache"), Redis()
    store = f"/tmp/recsd-it-cache-{tag}"
    try:
        env = service_env(kafka, db.dsn, {
            "RECSD_ACTORS": "trainer,ranker,event-ingestor,http-gateway",
            "RECSD_REDIS_URL": redis.url,
            "RECSD_ARTIFACT_URL": "file://" + store,
            "RECSD_ALS_FACTORS": "16", "RECSD_ALS_ITERATIONS": "3",
            "RECSD_TRAIN_THREADS": "2", "RECSD_RANKER_DEADLINE_MS": "2000",
            "RECSD_INGEST_BATCH_MS": "20"})
        with Service(env=env) as svc:
            wait_assigned(svc)
            conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=10)
            conn.request("POST", "/api/v1/recs/train", body=json.dumps(
                {"model_type": "collaborative"}), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            status, body = resp.status, resp.read()
            conn.close()
            check(status == 202, f"collaborative training queued ({status})")
            model_id = json.loads(body)["model_id"]
            url = "/api/v1/recs/1?type=collaborative&limit=10"
            first = svc.wait_for(lambda: (r := get(svc, url))[1].get("model_id") == model_id
                                 and r[1].get("source") == "model" and r[1], 240,
                                 "the collaborative model to serve user 1")
            check(len(first["items"]) == 10, "a list of 10 from the model")

            # A repeat is a hit: same list, marked cache, this request's id
            # (within a second: the gateway learns the active model from the
            # registry once a second, and only lists of the active model hit).
            second = svc.wait_for(lambda: (r := get(svc, url))[1].get("source") == "cache"
                                  and r[1], 5, "a repeated request to hit the cache")
            status = 200
            check(status == 200 and second["source"] == "cache"
                  and second["items"] == first["items"] and second["model_id"] == model_id
                  and second["request_id"] != first["request_id"],
                  f"the repeat comes from the cache ({second.get('source')})")
            check(metric(svc, r'^recsd_gateway_cache_requests_total\{level="l1",result="hit"\} '
                              r'(\d+)') >= 1, "/metrics counts the in-process hit")
            # Redis writes are behind the request (batched for up to 2 ms).
            def stored():
                out = subprocess.run(["redis-cli", "-p", str(redis.port), "HLEN", "recsd:recs:1"],
                                     capture_output=True, text=True).stdout.strip()
                return out if out.isdigit() and int(out) >= 1 else None
            hlen = svc.wait_for(stored, 5, "user 1's lists in Redis")
            check(hlen.isdigit() and int(hlen) >= 1, f"Redis holds user 1's lists ({hlen} fields)")

            # A new VideoWatched of the top video: the next answer is fresh
            # and no longer has it (the ingestor deletes the Redis hash and
            # its notice evicts the gateway's copy).
            top = first["items"][0]["video_id"]
            event = {"user_id": "1", "video_id": top, "watched_duration": 600,
                     "total_duration": 600,
                     "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "device": "tv"}
            kafka.produce("watched", ["1\t" + json.dumps(event)])
            fresh = svc.wait_for(lambda: (r := get(svc, url))[1].get("items") and top not in
                                 [i["video_id"] for i in r[1]["items"]] and r[1], 10,
                                 "user 1's list without the video just watched")
            check(fresh["source"] == "model", "the fresh list was computed, not cached")

            # Redis killed: answers go on from the model and the in-process
            # level; readiness says Redis is down.
            redis.stop()
            bad = []
            for n in range(40):
                status, doc = get(svc, f"/api/v1/recs/{1 + n % 20}?type=collaborative")
                if status != 200 or doc.get("source") not in ("model", "cache"):
                    bad.append((status, doc if status != 200 else doc.get("source")))
            check(not bad, f"40 answers with Redis gone, none failed ({bad[:3]})")

            def redis_down():
                status, _, body = svc.get("/health/ready")
                return status == 503 and "redis" in body.decode() and body
            svc.wait_for(redis_down, 10, "readiness to report Redis down")
            check(True, "readiness reports Redis down")
    finally:
        redis.stop()
        kafka.close()
        db.close()
        subprocess.run(["rm", "-rf", store])
    print("PASS: cache hits, invalidation by events, Redis down")


if __name__ == "__main__":
    main()
