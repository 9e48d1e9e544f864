"""A model pinned by a running experiment's variant is served to the
requests that name it, and the trainer records the event weights of the
serving configuration a model was trained with.

On MovieLens latest-small in a database of its own: collaborative models
trained through POST /api/v1/recs/train, the second after a new serving
configuration version changed the event weights (each model's
metrics.params.event_weights says which weights and which version trained
it); the first is the active one, a third the previous one. An experiment is inserted with psql,
running, with a variant that pins the second model, and announced with
NOTIFY recsd_experiments_changed. RECS_REQ messages go to the ranker over
ZeroMQ (the gateway's experiment wiring is tested on its own): with
model_id set to the pinned model the ranker answers from it within
seconds, without it from the active one; an unknown model id is served by
the active model and counted as a pinned miss in /metrics; once the
experiment is stopped the pinned model is dropped.
"""
import json
import shutil
import tempfile
import time
import uuid

from harness import MovieLensDatabase, Service, check, fail, psql, require_env
from test_ranker_config import DEFAULT_DOC, Ranker, ids, metric, put_config, wait_answer

import zmq

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")

TRAIN_TIMEOUT = 400  # seconds per model: the ASan build trains several times slower


def train(svc):
    status, doc = svc.api("POST", "/api/v1/recs/train", {"model_type": "collaborative"})
    check(status == 202, f"training queued ({status} {doc})")
    model_id = doc["model_id"] if "model_id" in doc else doc["models"][0]["model_id"]
    deadline = time.time() + TRAIN_TIMEOUT
    while time.time() < deadline:
        status, doc = svc.api("GET", f"/api/v1/recs/models/{model_id}")
        if status == 200 and doc["status"] in ("succeeded", "active", "retired"):
            return doc
        if status == 200 and doc["status"] == "failed":
            fail(f"training {model_id} failed: {doc.get('error')}")
        time.sleep(1)
    fail(f"model {model_id} not trained after {TRAIN_TIMEOUT} s")


def activate(svc, model_id):
    status, body = svc.api("POST", f"/api/v1/recs/models/{model_id}/activate", {})
    check(status == 200, f"model {model_id} activated ({status} {body.get('reason')})")


def event_weights(doc):
    return ((doc.get("metrics") or {}).get("params") or {}).get("event_weights")


def main():
    db = MovieLensDatabase("rp")
    store = tempfile.mkdtemp(prefix="recsd-it-store-", dir="/tmp")
    env = {
        "RECSD_PG_DSN": db.dsn,
        "RECSD_ACTORS": "trainer,ranker,http-gateway",
        "RECSD_ARTIFACT_URL": "file://" + store,
        "RECSD_ALS_FACTORS": "16",
        "RECSD_ALS_ITERATIONS": "3",
        "RECSD_TRAIN_THREADS": "2",
    }
    ctx = zmq.Context()
    ranker = None
    try:
        with Service(env=env) as svc:
            ranker = Ranker(ctx, svc)
            a = train(svc)
            check(a["status"] == "active", "the first collaborative model is active")
            wa = event_weights(a)
            check(wa and wa["config_version"] == 0 and wa["rating"] == 1.0,
                  f"model a: the environment's weights, version 0 ({wa})")

            # A new configuration changes the weights the next run uses.
            doc = json.loads(json.dumps(DEFAULT_DOC))
            doc["event_weights"]["rating"] = 2.0
            v1 = put_config(db.dsn, doc)
            b = train(svc)
            wb = event_weights(b)
            check(wb and wb["config_version"] == v1 and wb["rating"] == 2.0,
                  f"model b: trained with version {v1}'s weights ({wb})")
            # The ranker keeps a type's active and previous versions, and
            # serves a pinned id it holds there too: a third version, active
            # then pushed to previous by a's return, takes b's place, so
            # that only pinning can bring b back.
            c = train(svc)
            if c["status"] != "active":
                activate(svc, c["model_id"])
            wait_answer(ranker, lambda r: r["model_id"] == c["model_id"], 15,
                        "answers from c (installed before a returns)", type="collaborative")
            activate(svc, a["model_id"])
            a_id, b_id = a["model_id"], b["model_id"]
            wait_answer(ranker, lambda r: r["model_id"] == a_id, 15, f"answers from {a_id}",
                        type="collaborative")
            wait_answer(ranker, lambda r: r["model_id"] == c["model_id"], 15,
                        "c held as the previous version", type="collaborative",
                        model_id=c["model_id"])

            # Not pinned yet: a request naming b gets a, counted.
            got = ranker.ask(type="collaborative", model_id=b_id)
            check(got and got["model_id"] == a_id, "b not pinned yet: the active model serves")

            # A running experiment pins b.
            psql(db.dsn, "WITH e AS (INSERT INTO experiments.experiments (name, status)"
                         " VALUES ('pin-test', 'running') RETURNING experiment_id)"
                         " INSERT INTO experiments.variants (experiment_id, name, weight,"
                         " model_type, model_id, is_control, position)"
                         " SELECT experiment_id, 'control', 50, NULL, NULL::uuid, true, 0 FROM e"
                         " UNION ALL SELECT experiment_id, 'pinned', 50, 'collaborative',"
                         f" '{b_id}'::uuid, false, 1 FROM e")
            psql(db.dsn, "NOTIFY recsd_experiments_changed")
            started = time.time()
            pinned = wait_answer(ranker, lambda r: r["model_id"] == b_id, 10,
                                 f"answers from the pinned {b_id}", type="collaborative",
                                 model_id=b_id)
            check(pinned["type"] == "collaborative" and pinned["model_version"] == b["version"]
                  and len(pinned["items"]) == 20,
                  f"the pinned model serves {time.time() - started:.1f} s after the NOTIFY "
                  f"(v{pinned['model_version']})")
            plain = ranker.ask(type="collaborative")
            check(plain["model_id"] == a_id, "a request without model_id: the active model")
            check(ids(plain) != ids(pinned), "the two versions give different lists")
            rated = set(psql(db.dsn, "SELECT video_id FROM features.interactions"
                                     " WHERE user_id = '1'").split())
            check(not rated & set(ids(pinned)), "the pinned model's list skips seen videos too")

            unknown = ranker.ask(type="collaborative", model_id=str(uuid.uuid4()))
            check(unknown["model_id"] == a_id, "an unknown model id: the active model serves")
            svc.wait_for(lambda: metric(svc, "recsd_ranker_pinned_models") == 1, 10,
                         "one pinned model in /metrics")
            svc.wait_for(lambda: (metric(svc, "recsd_ranker_pinned_misses_total") or 0) >= 2
                         and (metric(svc, "recsd_ranker_pinned_served_total") or 0) >= 1, 10,
                         "pinned served and misses in /metrics")
            check(True, "/metrics counts pinned models, answers and misses")

            # Stopped: b is dropped.
            psql(db.dsn, "UPDATE experiments.experiments SET status = 'stopped'")
            psql(db.dsn, "NOTIFY recsd_experiments_changed")
            wait_answer(ranker, lambda r: r["model_id"] == a_id, 10,
                        "the active model once the experiment stopped", type="collaborative",
                        model_id=b_id)
            svc.wait_for(lambda: metric(svc, "recsd_ranker_pinned_models") == 0, 10,
                         "no pinned model in /metrics")
            check(True, "a stopped experiment's model is dropped")
            print("PASS: pinned models served by id; event weights recorded per model")
    finally:
        if ranker:
            ranker.close()
        ctx.term()
        db.close()
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
