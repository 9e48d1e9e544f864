"""A/B experiments and the runtime serving configuration, end to end on
MovieLens latest-small (gateway, ranker, trainer, ingestor, mock Kafka).

Experiments: invalid definitions are 400 (weights not summing to 100, an
unknown model type, an unknown model); a running experiment splits users
between its variants by the weights, each user always gets the same
variant (also from the cache, keyed by variant), and the answer names the
experiment and the variant; an unknown experiment_id is 404; VideoWatched
events of recommended videos become conversions of the right variant in
GET /experiments/{id}; exposures are counted per variant in /metrics; a
stopped experiment serves its control to everyone.

Configuration: GET /config is the environment's defaults (version 0); a PUT
changes the next answers of the running processes (default type, default
limit); an invalid PUT is 400 and changes nothing; every change is a
version; a rollback restores the earlier answers; the configuration
survives a restart of the whole service.
"""
import http.client
import json
import os
import re
import subprocess
import time
import uuid

from harness import MovieLensDatabase, Service, check, fail, psql, require_env
from test_ingest import Kafka, service_env, wait_assigned

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")
USERS = [str(u) for u in range(1, 201)]


def call(svc, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=15)
    try:
        hdrs = dict(headers or {})
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=None if body is None else
                     (body if isinstance(body, str) else json.dumps(body)), headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = data
        return resp.status, doc, dict(resp.getheaders())
    finally:
        conn.close()


def train(svc, model_type):
    status, doc, _ = call(svc, "POST", "/api/v1/recs/train", {"model_type": model_type})
    check(status == 202, f"{model_type} training queued ({status} {doc})")
    model_id = doc["model_id"]
    svc.wait_for(lambda: call(svc, "GET", f"/api/v1/recs/models/{model_id}")[1]
                 .get("status") == "active", 400, f"the {model_type} model to be active")
    return model_id


def recs(svc, user, extra=""):
    status, doc, _ = call(svc, "GET", f"/api/v1/recs/{user}?limit=10{extra}")
    if status != 200:
        fail(f"recs for {user}: {status} {doc}")
    return doc


def experiments(svc, kafka, db, tag, collab_id):
    # Invalid definitions: 400 naming what is wrong, nothing stored.
    base = {"name": f"exp-{tag}", "description": "popularity vs collaborative",
            "variants": [{"name": "control", "weight": 50, "model_type": "popularity",
                          "is_control": True},
                         {"name": "als", "weight": 50, "model_type": "collaborative"}]}
    bad = [
        ({**base, "variants": [dict(base["variants"][0], weight=49), base["variants"][1]]},
         "weight"),
        ({**base, "variants": [base["variants"][0], dict(base["variants"][1],
                                                        model_type="telepathy")]}, "model_type"),
        ({**base, "variants": [base["variants"][0], dict(base["variants"][1],
                                                        model_id=str(uuid.uuid4()))]},
         "model_id"),
    ]
    for body, word in bad:
        status, doc, _ = call(svc, "POST", "/api/v1/recs/experiments", body)
        check(status == 400 and word in json.dumps(doc),
              f"invalid definition refused, naming {word}: {status} {doc.get('detail')}")
    status, doc, _ = call(svc, "POST", "/api/v1/recs/experiments", "{not json")
    check(status == 400, f"malformed JSON is 400 ({status})")

    status, doc, hdrs = call(svc, "POST", "/api/v1/recs/experiments",
                             {**base, "variants": [base["variants"][0],
                                                   dict(base["variants"][1],
                                                        model_id=collab_id)]})
    check(status == 201 and doc["status"] == "draft", f"created as a draft ({status} {doc})")
    exp_id = doc["experiment_id"] if "experiment_id" in doc else doc["id"]
    check(hdrs.get("Location", "").endswith(exp_id), "Location names it")
    status, doc, _ = call(svc, "POST", "/api/v1/recs/experiments", base)
    check(status == 409, f"a second experiment with the same name is 409 ({status})")
    # A draft applies to nobody; naming it is 404.
    status, _, _ = call(svc, "GET", f"/api/v1/recs/1?experiment_id={exp_id}")
    check(status == 404, f"a draft experiment_id is 404 ({status})")
    status, doc, _ = call(svc, "PATCH", f"/api/v1/recs/experiments/{exp_id}",
                          {"status": "running"})
    check(status == 200 and doc["status"] == "running", f"started ({status})")
    status, doc, _ = call(svc, "GET", "/api/v1/recs/experiments")
    listed = [e for e in doc["experiments"] if e.get("name") == f"exp-{tag}"]
    check(len(listed) == 1 and [v["weight"] for v in listed[0]["variants"]] == [50, 50],
          f"listed with its weights: {listed}")

    # Assignment: every user a variant, stable, about half each; the
    # variant's model serves (the control popularity, the other ALS).
    def assigned_all():
        docs = {u: recs(svc, u) for u in USERS}
        return docs if all(d.get("experiment_id") == exp_id for d in docs.values()) else None
    first = svc.wait_for(assigned_all, 10, "every answer under the experiment")
    counts = {}
    for u, d in first.items():
        counts[d["variant"]] = counts.get(d["variant"], 0) + 1
        want = "popularity" if d["variant"] == "control" else "collaborative"
        if d["type"] != want:
            fail(f"user {u} in {d['variant']} served {d['type']} ({d['model_id']})")
    print(f"split over {len(USERS)} users: {counts}")
    check(set(counts) == {"control", "als"} and all(60 <= c <= 140 for c in counts.values()),
          f"both variants get about half: {counts}")
    # Lists are cached once the gateway's registry view (refreshed every
    # second) confirms the models: repeat until the answers come from it.
    def cached():
        again = {u: recs(svc, u) for u in USERS[:50]}
        if any(again[u]["variant"] != first[u]["variant"] for u in again):
            fail("a user changed variant")
        return sum(1 for d in again.values() if d["source"] == "cache") >= 45
    svc.wait_for(cached, 10, "repeated answers from the cache, each user in their variant")
    status, _, _ = call(svc, "GET", f"/api/v1/recs/1?experiment_id={uuid.uuid4()}")
    check(status == 404, f"an unknown experiment_id is 404 ({status})")

    # Conversions: a VideoWatched of a recommended video, for 10 users of
    # each variant, is attributed to that variant.
    by_variant = {"control": [], "als": []}
    for u in USERS:
        v = first[u]["variant"]
        if len(by_variant[v]) < 10:
            by_variant[v].append(u)
    # Watched just after the lists were served (timestamps have seconds).
    time.sleep(1.5)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))
    lines = []
    for v, users in by_variant.items():
        for u in users:
            video = first[u]["items"][0]["video_id"]
            event = {"user_id": u, "video_id": video, "watched_duration": 300,
                     "total_duration": 600, "timestamp": now, "device": "tv"}
            lines.append(u + "\t" + json.dumps(event))
    kafka.produce("watched", lines)

    # A conversion is an exposure (a served list) with a watched video: each
    # of the 20 users was served their list several times (the cache
    # rounds above), so count converted users per variant, and compare the
    # results endpoint with the exposures table.
    def converted():
        rows = psql(db.dsn, "SELECT variant, string_agg(DISTINCT user_id, ',') "
                    f"FROM experiments.outcomes WHERE experiment_id = '{exp_id}' "
                    "GROUP BY variant").split("\n")
        got = {r.split("\t")[0]: sorted(r.split("\t")[1].split(",")) for r in rows if r}
        return got if got == {v: sorted(us) for v, us in by_variant.items()} else None
    svc.wait_for(converted, 30, "the watches attributed to their users' variants")
    status, doc, _ = call(svc, "GET", f"/api/v1/recs/experiments/{exp_id}")
    results = {v["name"]: v for v in doc["results"]["variants"]}
    for v, users in by_variant.items():
        want = int(psql(db.dsn, "SELECT count(*) FROM experiments.exposures e WHERE "
                        f"experiment_id = '{exp_id}' AND variant = '{v}' AND EXISTS (SELECT 1 "
                        "FROM experiments.outcomes o WHERE o.exposure_id = e.exposure_id)"))
        check(results[v]["conversions"] == want and want >= len(users),
              f"{v}: {results[v]['conversions']} conversions, as the tables say ({want})")
    for name, r in results.items():
        print(f"{name}: users {r['users']} exposures {r['exposures']} conversions "
              f"{r['conversions']} rate {r['conversion_rate']} "
              f"completion {r['mean_watch_completion']}")
        check(r["exposures"] >= 10 and r["users"] >= 10 and
              abs(r["mean_watch_completion"] - 0.5) < 1e-6, f"{name}'s numbers")
    check(results["als"]["vs_control"] is not None and
          results["als"]["vs_control"]["p_value"] is not None, "a p-value against control")
    _, _, body = svc.get("/metrics")
    m = re.findall(r'recsd_experiment_exposures_total\{experiment="exp-%s",variant="(\w+)"\} '
                   r'(\d+)' % tag, body.decode())
    check(sorted(v for v, _ in m) == ["als", "control"] and all(int(n) > 0 for _, n in m),
          f"exposures per variant in /metrics: {m}")

    # Stopped: everyone gets the control.
    status, doc, _ = call(svc, "PATCH", f"/api/v1/recs/experiments/{exp_id}",
                          {"status": "stopped"})
    check(status == 200 and doc["status"] == "stopped", "stopped")
    svc.wait_for(lambda: all(recs(svc, u, f"&experiment_id={exp_id}")["variant"] == "control"
                             for u in USERS[:40]), 10, "the control for everyone")
    status, _, _ = call(svc, "PATCH", f"/api/v1/recs/experiments/{exp_id}",
                        {"status": "running"})
    check(status == 409, f"a stopped experiment cannot restart ({status})")


def configuration(svc):
    status, doc, hdrs = call(svc, "GET", "/api/v1/recs/config")
    check(status == 200 and doc["default_type"] == "hybrid", f"defaults ({status})")
    version0 = int(hdrs.get("X-Config-Version", "-1"))
    cfg = dict(doc, default_type="popularity", limits={"default": 5, "max": 50},
               cache={"ttl_s": 120, "l1_ttl_ms": 1000})
    status, stored, _ = call(svc, "PUT", "/api/v1/recs/config", cfg,
                             {"X-Change-Note": "popularity by default"})
    check(status == 200 and stored["version"] > version0 and
          stored["note"] == "popularity by default", f"stored as a version ({status})")
    v1 = stored["version"]

    def answers(default_type, n):
        d = recs_nolimit(svc, "7")
        return d["type"] == default_type and len(d["items"]) == n
    svc.wait_for(lambda: answers("popularity", 5), 5, "answers with the new defaults")

    # The new cache lifetime: lists written from now on expire within 120 s.
    def short_ttl():
        recs_nolimit(svc, "7")
        out = subprocess.run(["redis-cli", "-u", os.environ["RECSD_REDIS_URL"], "TTL",
                              "recsd:recs:7"], capture_output=True, text=True).stdout.strip()
        return out.lstrip("-").isdigit() and 0 < int(out) <= 120
    svc.wait_for(short_ttl, 10, "user 7's cached lists to carry the configured 120 s TTL")
    for body, word in [(dict(cfg, default_type="telepathy"), "default_type"),
                       (dict(cfg, event_weights=dict(cfg["event_weights"], watch=-1)),
                        "event_weights.watch"),
                       (dict(cfg, extra=1), "extra")]:
        status, doc, _ = call(svc, "PUT", "/api/v1/recs/config", body)
        check(status == 400 and word in doc.get("detail", ""),
              f"invalid configuration refused naming {word}: {doc.get('detail')}")
    status, doc, hdrs = call(svc, "GET", "/api/v1/recs/config")
    check(int(hdrs["X-Config-Version"]) == v1 and doc["default_type"] == "popularity",
          "nothing changed by the refused ones")
    status, stored, _ = call(svc, "PUT", "/api/v1/recs/config",
                             dict(cfg, default_type="collaborative",
                                  limits={"default": 8, "max": 50}))
    check(status == 200, "a second version")
    svc.wait_for(lambda: answers("collaborative", 8), 5, "answers from the second version")
    status, back, _ = call(svc, "POST", "/api/v1/recs/config/rollback", {"version": v1})
    check(status == 200 and back["rolled_back_from"] == v1, f"rolled back ({status} {back})")
    svc.wait_for(lambda: answers("popularity", 5), 5, "the first version's answers again")
    status, doc, _ = call(svc, "GET", "/api/v1/recs/config/versions")
    check(status == 200 and len(doc["versions"]) >= 3, "three versions listed")
    status, doc, _ = call(svc, "POST", "/api/v1/recs/config/rollback", {"version": 99999})
    check(status == 404, f"rollback to an unknown version is 404 ({status})")
    return back["version"]


def recs_nolimit(svc, user):
    status, doc, _ = call(svc, "GET", f"/api/v1/recs/{user}")
    if status != 200:
        fail(f"recs for {user}: {status} {doc}")
    return doc


def main():
    tag = uuid.uuid4().hex[:8]
    kafka, db = Kafka(f"exp_{tag}"), MovieLensDatabase("exp")
    store = f"/tmp/recsd-it-exp-{tag}"
    env = service_env(kafka, db.dsn, {
        "RECSD_ACTORS": "trainer,ranker,event-ingestor,http-gateway",
        "RECSD_ARTIFACT_URL": "file://" + store, "RECSD_ALS_FACTORS": "16",
        "RECSD_ALS_ITERATIONS": "3", "RECSD_TRAIN_THREADS": "2",
        "RECSD_RANKER_DEADLINE_MS": "2000", "RECSD_INGEST_BATCH_MS": "20"})
    try:
        with Service(env=env) as svc:
            wait_assigned(svc)
            train(svc, "popularity")
            collab = train(svc, "collaborative")
            experiments(svc, kafka, db, tag, collab)
            last = configuration(svc)
        # The configuration lives in PostgreSQL: a restarted service has it.
        with Service(env=env) as svc:
            status, doc, hdrs = call(svc, "GET", "/api/v1/recs/config")
            check(int(hdrs["X-Config-Version"]) == last and doc["default_type"] == "popularity",
                  "the configuration survives a restart")
            d = svc.wait_for(lambda: (r := recs_nolimit(svc, "7"))["type"] == "popularity" and r,
                             20, "answers with the stored configuration after the restart")
            check(len(d["items"]) == 5, "its default limit too")
    finally:
        kafka.close()
        db.close()
        psql(db.admin, "SELECT 1")
        import shutil  # noqa: PLC0415
        shutil.rmtree(store, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
