"""The ranker serves the active trained model, end to end through the gateway.

On MovieLens latest-small in a database of its own: a hybrid model trained
through the API (POST /api/v1/recs/train) becomes active and
GET /api/v1/recs/{user} answers from it (source "model", its model id,
nothing the user has rated); a second version trained and activated takes
over; a rollback (POST /api/v1/recs/models/{id}/activate) under a steady
stream of requests switches the answers within seconds with no failed
request and no answer from the old model once the new one answered; an
artifact corrupted in the store and in the cache before its activation is
refused (logged once, counted in /metrics) and the previous model keeps
serving.
"""
import http.client
import json
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.parse
import uuid

from harness import MovieLensDatabase, Service, check, fail, psql, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")

TRAIN_TIMEOUT = 400  # seconds per model: the ASan build trains several times slower
USER = "1"


def recs(svc, user=USER):
    status, doc = svc.api("GET", f"/api/v1/recs/{user}?limit=10")
    if status != 200:
        fail(f"GET recs for {user}: {status} {doc}")
    return doc


def train(svc):
    status, doc = svc.api("POST", "/api/v1/recs/train", {"model_type": "hybrid"})
    check(status == 202, f"training queued ({status} {doc})")
    return doc["model_id"]


def wait_trained(svc, model_id):
    """Waits until the model is trained; returns its status document."""
    deadline = time.time() + TRAIN_TIMEOUT
    while time.time() < deadline:
        status, doc = svc.api("GET", f"/api/v1/recs/models/{model_id}")
        if status == 200 and doc["status"] in ("succeeded", "active", "retired"):
            print(f"model {model_id}: {doc['status']}, metrics {json.dumps(doc.get('metrics'))[:300]}")
            return doc
        if status == 200 and doc["status"] == "failed":
            fail(f"training {model_id} failed: {doc.get('error')}")
        time.sleep(1)
    fail(f"model {model_id} not trained after {TRAIN_TIMEOUT} s")


def activate(svc, model_id):
    status, doc = svc.api("POST", f"/api/v1/recs/models/{model_id}/activate", {})
    if status != 200:
        fail(f"activate {model_id}: {status} {doc}")


def served_by(svc, model_id, timeout=10):
    return svc.wait_for(lambda: (d := recs(svc))["model_id"] == model_id and d, timeout,
                        f"answers from model {model_id}")


def replace_with_garbage(path):
    """Replaces path by a new file of garbage of the same size. A new inode,
    as every writer of artifacts does (artifact.h: never changed in place):
    a ranker may have the old one mapped."""
    size = os.path.getsize(path)
    tmp = path + ".garbage"
    with open(tmp, "wb") as f:
        f.write(b"RECSDART" + os.urandom(max(0, size - 8)))
    os.replace(tmp, path)


class Hammer:
    """Requests for one user without pause, recording (time, model_id) of
    every answer and every failure."""

    def __init__(self, port, threads=2):
        self.port = port
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.answers, self.bad = [], []
        self.workers = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        while not self.stop_flag.is_set():
            try:
                conn.request("GET", f"/api/v1/recs/{USER}?limit=10")
                resp = conn.getresponse()
                body = resp.read()
                with self.lock:
                    if resp.status != 200:
                        self.bad.append((resp.status, body[:200]))
                    else:
                        doc = json.loads(body)
                        self.answers.append((time.time(), doc["source"], doc["model_id"]))
            except Exception as exc:  # noqa: BLE001 - every failure is recorded
                with self.lock:
                    self.bad.append((repr(exc), b""))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.close()

    def start(self):
        for t in self.workers:
            t.start()
        return self

    def finish(self):
        self.stop_flag.set()
        for t in self.workers:
            t.join(10)
        return self


def ranker_lines(svc, needle):
    return [l for l in svc.log_lines() if l.get("actor", "").startswith("ranker")
            and needle in l.get("msg", "")]


def main():
    db = MovieLensDatabase("rm")
    store = tempfile.mkdtemp(prefix="recsd-it-store-", dir="/tmp")
    env = {
        "RECSD_PG_DSN": db.dsn,
        "RECSD_ACTORS": "trainer,ranker,http-gateway",
        "RECSD_ARTIFACT_URL": "file://" + store,
        # Small, fast training: this tests serving, not model quality.
        "RECSD_ALS_FACTORS": "16",
        "RECSD_ALS_ITERATIONS": "3",
        "RECSD_EASE_MAX_ITEMS": "500",
        "RECSD_TRAIN_THREADS": "2",
    }
    try:
        with Service(env=env) as svc:
            cache = os.path.join(svc.env["RECSD_RUNTIME_DIR"], "artifacts")
            rated = set(psql(db.dsn, f"SELECT video_id FROM features.interactions "
                                     f"WHERE user_id = '{USER}'").split())
            check(len(rated) > 100, f"user {USER} has a history ({len(rated)} videos)")
            before = recs(svc)
            # No model: the chain's model-free steps (co-occurrence once the
            # histories are loaded, the user's genre, the global list).
            check(before["model_id"] in ("popularity", "cooccurrence")
                  or before["model_id"].startswith("segment:"),
                  f"no model yet: a model-free step ({before['model_id']})")

            # 1. The first trained model serves.
            a = train(svc)
            doc = wait_trained(svc, a)
            check(doc["status"] == "active", "the first hybrid model is active")
            started = time.time()
            got = served_by(svc, a)
            print(f"answers from {a} {time.time() - started:.1f} s after activation")
            check(got["source"] == "model" and len(got["items"]) == 10,
                  "GET recs answers from the model, a full list")
            check(not rated & {i["video_id"] for i in got["items"]},
                  "nothing the user has rated is recommended")
            check(got["items"] != before["items"], "the list is the model's, not the popular one")
            other = recs(svc, "2")
            check(other["model_id"] == a and other["items"] != got["items"],
                  "another user gets another list from the same model")
            cold = recs(svc, f"nobody-{uuid.uuid4().hex[:6]}")
            check(cold["source"] == "model" and len(cold["items"]) == 10,
                  f"a user with no history still gets a list (from {cold['model_id']})")

            # 2. A second version takes over.
            b = train(svc)
            doc = wait_trained(svc, b)
            if doc["status"] != "active":
                print(f"the gate kept {b} back ({doc.get('gate')}); activating by hand")
                activate(svc, b)
            served_by(svc, b)
            check(True, "the second version serves once active")

            # 3. Rollback to the first under load: a prompt switch, no failure.
            hammer = Hammer(svc.port).start()
            time.sleep(1.0)
            switched_at = time.time()
            activate(svc, a)
            svc.wait_for(lambda: hammer.answers and hammer.answers[-1][2] == a, 10,
                         "the rollback to reach the answers")
            delay = next(t for t, _, m in hammer.answers if t >= switched_at and m == a) - switched_at
            time.sleep(1.0)
            hammer.finish()
            # The gateway answers from its own copy when the ranker misses
            # the (50 ms) deadline: on a loaded machine under ASan a few
            # may, which is degradation, not failure.
            # A cache hit is the model's list too (kept under that model's id).
            fallbacks = sum(1 for _, s, _ in hammer.answers if s not in ("model", "cache"))
            models = [m for _, s, m in hammer.answers if s in ("model", "cache")]
            first_a = models.index(a)
            print(f"{len(hammer.answers)} answers during the switch ({fallbacks} from the "
                  f"gateway's fallback), new model after {delay:.2f} s, failures {hammer.bad[:3]}")
            check(len(models) > 20, "requests flowed during the switch")
            check(not hammer.bad, "no failed request during the switch")
            check(fallbacks <= len(hammer.answers) // 20, "(nearly) every answer came from a model")
            check(set(models[:first_a]) == {b} and set(models[first_a:]) == {a},
                  "the old model until the swap, only the new one after it")
            check(delay < 5, f"the switch reached the answers within seconds ({delay:.2f} s)")

            # 4. A corrupt artifact is refused; the serving model stays.
            status, doc_b = svc.api("GET", f"/api/v1/recs/models/{b}")
            path = urllib.parse.urlsplit(doc_b["artifact_path"]).path
            check(os.path.isfile(path), f"B's artifact is in the store ({path})")
            replace_with_garbage(path)
            cached = os.path.join(cache, doc_b["artifact_checksum"] + ".rca")
            if os.path.exists(cached):
                replace_with_garbage(cached)
            activate(svc, b)
            svc.wait_for(lambda: ranker_lines(svc, f"model {b}") and
                         [l for l in ranker_lines(svc, f"model {b}") if "refused" in l["msg"]],
                         15, "the ranker to refuse the corrupt artifact")
            for _ in range(20):
                got = recs(svc)
                if got["model_id"] != a:
                    fail(f"answered from {got['model_id']} after the corrupt activation")
                time.sleep(0.1)
            check(True, "the previous model keeps serving after the refusal")
            refused = [l for l in ranker_lines(svc, f"model {b}") if "refused" in l["msg"]]
            check(len(refused) == 1 and refused[0]["level"] == "error",
                  f"the refusal is logged once, at error ({refused[0]['msg'][:160]})")

            def refused_metric():
                status, _, body = svc.get("/metrics")
                m = re.search(r'recsd_ranker_model_loads_total\{actor="ranker",'
                              r'outcome="refused"\} (\d+)', body.decode())
                return m and int(m.group(1)) >= 1 and body.decode()
            text = svc.wait_for(refused_metric, 10, "the refusal in /metrics")
            check(f'recsd_ranker_model_info{{actor="ranker",type="hybrid",model_id="{a}"}} 1'
                  in text, "/metrics names the model served")
            check('recsd_ranker_served_total{actor="ranker",source="model",type="hybrid"}'
                  in text and "recsd_ranker_scoring_seconds_bucket" in text,
                  "/metrics counts answers by type and times scoring")
            # No retry loop: the safety-net poll does not try the same model again.
            time.sleep(2)
            check(len([l for l in ranker_lines(svc, f"model {b}") if "refused" in l["msg"]]) == 1,
                  "the corrupt model is not retried")
    finally:
        db.close()
        shutil.rmtree(store, ignore_errors=True)
    print("PASS: the ranker serves, swaps and refuses trained models")


main()
