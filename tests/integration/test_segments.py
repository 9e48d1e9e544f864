"""Segment popularity and segment-level cache keys, end to end on MovieLens
latest-small.

1. No personal model: a user with a history is served co-occurrence
   (what users who liked the same videos liked next); a user whose liked
   video nobody else watched, the most popular videos of the genre they
   lean to ("segment:<genre>"), none of which they have seen; both steps
   counted in /metrics; a user without history gets the global list.
2. With a popularity model: a user without history is served a list that
   is the same for every such user, so the gateway stores it once under
   the segment key recsd:recs-segment:all with a reference "@all" in the
   user's own hash; another new user is answered from it, re-stamped with
   their own user id.
"""
import json
import re
import subprocess
import uuid

from harness import MovieLensDatabase, Redis, Service, check, fail, psql, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")
LONER = None


def get(svc, path):
    status, _, body = svc.get(path)
    if status != 200:
        fail(f"GET {path}: {status} {body[:200]!r}")
    return json.loads(body)


def redis_cli(redis, *args):
    out = subprocess.run(["redis-cli", "-u", redis.url, "--no-raw", *args], capture_output=True,
                         text=True, timeout=10)
    return out.stdout


def main():
    tag = uuid.uuid4().hex[:8]
    db, redis = MovieLensDatabase("segments"), Redis()
    global LONER
    LONER = f"loner-{tag}"
    psql(db.dsn, f"INSERT INTO features.videos (video_id, title, genres) VALUES "
         f"('lonely-{tag}', 'Lonely', '{{Western}}');"
         "INSERT INTO features.interactions (event_id, user_id, video_id, kind, weight, "
         f"occurred_at) VALUES ('lonely-{tag}', '{LONER}', 'lonely-{tag}', 'watch', 1, now())")
    store = f"/tmp/recsd-it-segments-{tag}"
    try:
        env = {"RECSD_PG_DSN": db.dsn, "RECSD_REDIS_URL": redis.url,
               "RECSD_ARTIFACT_URL": "file://" + store,
               "RECSD_ACTORS": "trainer,ranker,http-gateway",
               "RECSD_RANKER_DEADLINE_MS": "2000"}
        with Service(env=env) as svc:
            # 1. No model is trained yet. A user with a history: what users
            # who liked the same videos liked next (co-occurrence).
            doc = svc.wait_for(
                lambda: (d := get(svc, "/api/v1/recs/1?limit=10"))["model_id"] == "cooccurrence"
                and d, 30, "a co-occurrence list for user 1")
            ids = [item["video_id"] for item in doc["items"]]
            print(f"user 1: co-occurrence: {ids}")
            history = set(psql(db.dsn, "SELECT video_id FROM features.interactions "
                               "WHERE user_id = '1'").split())
            check(len(ids) == 10 and not history & set(ids), "ten items, none seen by user 1")
            # A user whose one liked video nobody else watched: co-occurrence
            # has nothing, so the most popular videos of its genre.
            doc = svc.wait_for(
                lambda: (d := get(svc, f"/api/v1/recs/{LONER}?limit=10"))["model_id"].startswith(
                    "segment:") and d, 30, f"a segment list for {LONER}")
            genre = doc["model_id"][len("segment:"):]
            ids = [item["video_id"] for item in doc["items"]]
            print(f"{LONER}: segment {genre}: {ids}")
            check(genre == "Western" and len(ids) == 10 and doc["type"] == "popularity",
                  f"ten Western items: {doc}")
            rows = psql(db.dsn, "SELECT video_id FROM features.videos WHERE video_id IN ("
                        + ",".join(f"'{i}'" for i in ids) + f") AND '{genre}' = ANY(genres)")
            check(len(rows.split()) == 10, f"every item is a {genre} video: {rows.split()}")
            check(f"lonely-{tag}" not in ids, "not the video the user watched")
            new = get(svc, f"/api/v1/recs/nobody-{tag}?limit=10")
            check(new["model_id"] == "popularity" and len(new["items"]) == 10,
                  f"a user without history: the global list ({new['model_id']})")
            def segment_answers():
                _, _, metrics = svc.get("/metrics")
                text = metrics.decode()
                counts = [re.search(r'recsd_ranker_served_total\{actor="ranker",source="model",'
                                    rf'type="{t}"\}} (\d+)', text)
                          for t in ("segment_popularity", "cooccurrence")]
                return all(m and int(m.group(1)) >= 1 for m in counts)
            # The ranker's series travel with its heartbeats: a moment late.
            svc.wait_for(segment_answers, 10, "segment and co-occurrence answers in /metrics")

            # 2. Segment-level cache keys, with a popularity model served.
            conn_body = json.dumps({"model_type": "popularity"})
            import http.client  # noqa: PLC0415
            conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=10)
            conn.request("POST", "/api/v1/recs/train", body=conn_body,
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            queued = json.loads(resp.read())
            conn.close()
            check(resp.status == 202, f"popularity training queued ({resp.status})")
            url_a = f"/api/v1/recs/new-a-{tag}?type=popularity&limit=5"
            first = svc.wait_for(
                lambda: (d := get(svc, url_a))["model_id"] == queued["model_id"] and d, 120,
                "the popularity model to serve")
            check(first["source"] in ("model", "cache"), f"served: {first['source']}")
            # Lists are cached once the gateway's registry view (refreshed
            # every second) confirms the model: soon after the first answer.
            svc.wait_for(lambda: get(svc, url_a)["source"] == "cache", 10,
                         "a cached answer for new-a")
            # Redis writes are behind the request (batched for up to 2 ms).
            ref = svc.wait_for(lambda: (v := redis_cli(redis, "HVALS", f"recsd:recs:new-a-{tag}"))
                               .count("@all") >= 1 and v, 5, "the user's hash in Redis")
            check(ref.count("@all") >= 1 and "items" not in ref,
                  f"the user's hash holds a reference, not a copy: {ref[:200]}")
            seg = svc.wait_for(lambda: "items" in (v := redis_cli(redis, "HVALS",
                                                               "recsd:recs-segment:all")) and v,
                               5, "the segment's hash in Redis")
            check("items" in seg, "the segment's hash holds the list")
            ttl = int(redis_cli(redis, "TTL", "recsd:recs-segment:all").split()[-1])
            check(0 < ttl <= 300, f"segment TTL {ttl} s (RECSD_CACHE_SEGMENT_TTL_S 300)")
            url_b = f"/api/v1/recs/new-b-{tag}?type=popularity&limit=5"
            b1 = get(svc, url_b)
            b2 = get(svc, url_b)
            check(b2["source"] == "cache" and b2["user_id"] == f"new-b-{tag}",
                  f"new-b's cached answer is stamped with new-b ({b2['user_id']})")
            check([i["video_id"] for i in b1["items"]] == [i["video_id"] for i in first["items"]],
                  "every new user gets the same list")
    finally:
        redis.stop()
        db.close()
        subprocess.run(["rm", "-rf", store], check=False)
    print("ok")


if __name__ == "__main__":
    main()
