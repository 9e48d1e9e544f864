"""kill -9 one of two rankers while clients ask for lists a trained model
computes (a random user and a random excluded id per request: never a
cache hit, so every request reaches a ranker): no request fails, the
gateway retries the request the dead ranker held on the other one, answers
keep coming from the model, and the killed ranker is back serving the same
model.

On MovieLens latest-small with a small collaborative model.
"""
import http.client
import json
import os
import random
import signal
import threading
import time
import uuid

from harness import Load, MovieLensDatabase, Service, check, psql, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")


def main():
    db = MovieLensDatabase("rkill")
    store = f"/tmp/recsd-it-rkill-{uuid.uuid4().hex[:8]}"
    env = {"RECSD_PG_DSN": db.dsn, "RECSD_ACTORS": "trainer,ranker:2,http-gateway",
           "RECSD_ARTIFACT_URL": "file://" + store, "RECSD_ALS_FACTORS": "16",
           "RECSD_ALS_ITERATIONS": "3", "RECSD_TRAIN_THREADS": "2"}
    try:
        with Service(env=env) as svc:
            conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=10)
            conn.request("POST", "/api/v1/recs/train", body=json.dumps(
                {"model_type": "collaborative"}), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            model_id = json.loads(resp.read())["model_id"]
            conn.close()
            check(resp.status == 202, "collaborative training queued")
            users = psql(db.dsn, "SELECT DISTINCT user_id FROM features.interactions").split()

            def served(path):
                _, _, body = svc.get(path)
                return json.loads(body).get("model_id") == model_id
            # Both rankers serve the model: enough distinct misses hit each.
            svc.wait_for(lambda: all(served(f"/api/v1/recs/{u}?type=collaborative&exclude=w{i}")
                                     for i, u in enumerate(users[:20])), 400,
                         "both rankers to serve the model")
            rng = random.Random(7)
            lock = threading.Lock()

            def path():
                with lock:
                    user, x = rng.choice(users), rng.randrange(10 ** 9)
                return f"/api/v1/recs/{user}?type=collaborative&limit=10&exclude=x{x}"
            before = svc.actor("ranker.1")
            load = Load(svc.port, path=path, threads=4).start()
            time.sleep(2)
            os.kill(before["pid"], signal.SIGKILL)
            killed = time.time()
            back = svc.wait_for(lambda: (r := svc.actor("ranker.1"))["pid"] not in
                                (0, before["pid"]) and r["state"] == "running" and r, 10,
                                "ranker.1 running again")
            print(f"ranker.1 back after {time.time() - killed:.2f}s as pid {back['pid']}")
            time.sleep(3)
            load.finish()
            print(f"responses ok={load.ok} bad={len(load.bad)} sources={load.sources}")
            check(load.ok > 200, f"load ran ({load.ok} responses)")
            check(not load.bad, f"no failed or non-200 response (first: {load.bad[:3]})")
            fallback = load.sources.get("fallback", 0)
            check(fallback <= load.ok // 100,
                  f"the gateway retried on the live ranker: {fallback} fallback answers")
            check(back["restarts"] == before["restarts"] + 1, "restarts went up by one")
            # The restarted ranker loads the active model again and serves it.
            svc.wait_for(lambda: all(served(f"/api/v1/recs/{u}?type=collaborative&exclude=z{i}")
                                     for i, u in enumerate(users[:20])), 60,
                         "both rankers to serve the model again")
    finally:
        db.close()
        psql(os.environ["RECSD_PG_DSN"], "SELECT 1")
        os.system(f"rm -rf {store}")


if __name__ == "__main__":
    main()
