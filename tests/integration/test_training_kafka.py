"""Training with the s3:// artifact store, its events on Kafka, and kill -9
of the trainer mid-run, through a real recsd (trainer, publisher, ranker,
gateway) on a throw-away PostgreSQL cluster of its own (harness.Postgres),
a private Kafka (`recsd dev-kafka`, read back with kcat) and the s3rver
that ops/test.sh starts (RECSD_S3_ENDPOINT, AWS_ACCESS_KEY_ID, ...).

1. Events and S3: an "all" run with RECSD_ARTIFACT_URL=s3://recsd/<unique
   prefix>: every artifact_path is under that prefix and the object in
   s3rver is the artifact (magic, size, SHA-256 = artifact_checksum); per
   model exactly one ModelTrainingStarted on
   recommendation-service.model-training-started and one
   ModelTrainingCompleted on ...-completed, keyed by the model id, with
   exactly the documented members and status "success", matching the
   registry.
2. S3 round trip: a second service (fresh runtime dir, so an empty
   artifact cache) trains popularity again: the trainer fetched the active
   version from S3 to compare (metrics.active = v1's score), and the ranker
   fetched the hybrid from S3 and serves it.
3. kill -9 of the trainer mid-run (collaborative, RECSD_ALS_ITERATIONS=1000
   so it cannot finish first) once GET /models/{id} shows it running with
   progress: the supervisor restarts the trainer; the model becomes failed
   with error "trainer died mid-run", never active, no artifact; exactly
   one ModelTrainingCompleted "failed" in the outbox and on Kafka; GET
   /api/v1/recs/{user} answered 200 throughout (clients without pause).

Hyper-parameters are small (ALS 16 factors, 3 iterations; EASE on 500
items; 2 threads): nothing here asserts quality (test_training.py does).
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

from harness import Load, Postgres, Service, check, fail, require_env
from test_publisher import DevKafka, consume
from test_training import TYPES, Client, import_movielens, train, wait_done

TOPIC_STARTED = "recommendation-service.model-training-started"
TOPIC_COMPLETED = "recommendation-service.model-training-completed"
STARTED_KEYS = {"model_id", "model_type", "training_id", "start_time", "parameters"}
COMPLETED_KEYS = {"model_id", "training_id", "status", "metrics", "artifact_path",
                  "completion_time"}
SMALL = {"RECSD_ALS_ITERATIONS": "3", "RECSD_ALS_FACTORS": "16", "RECSD_EASE_MAX_ITEMS": "500",
         "RECSD_TRAIN_THREADS": "2", "RECSD_TRAIN_POLL_MS": "200"}


def psql(pg, sql):
    out = subprocess.run(["psql", pg.dsn, "-qAtc", sql], capture_output=True, text=True,
                         timeout=30)
    if out.returncode != 0:
        fail(f"psql {sql}: {out.stderr}")
    return out.stdout.strip()


def rfc3339_ms(text):
    return (isinstance(text, str) and len(text) == 24 and text.endswith("Z")
            and time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S") is not None and text[19] == ".")


def s3_object(url):
    """The bytes of s3://bucket/key from the s3rver endpoint, None if 404.
    s3rver (3.7.1) serves objects without a signature; the trainer's own
    signed PUT and GET are what the round trip tests."""
    if not url.startswith("s3://"):
        fail(f"not an s3:// URL: {url}")
    http_url = os.environ["RECSD_S3_ENDPOINT"].rstrip("/") + "/" + url[len("s3://"):]
    try:
        with urllib.request.urlopen(http_url, timeout=10) as resp:
            return resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        fail(f"GET {http_url}: {exc}")


def artifact_ok(data, checksum):
    """Magic, size field and SHA-256 over every byte but the header's digest
    (artifact.h) equal to the registry's checksum."""
    return (data is not None and data[:8] == b"RECSDART"
            and int.from_bytes(data[16:24], "little") == len(data)
            and hashlib.sha256(data[:56] + data[88:]).hexdigest() == checksum == data[56:88].hex())


def events(kafka, topic, training_id=None, model_id=None):
    """(key, payload, headers) of every message on topic, optionally only
    those of one training or model."""
    out = []
    for key, value, headers in consume(kafka.bootstrap, topic):
        doc = json.loads(value)
        if training_id and doc.get("training_id") != training_id:
            continue
        if model_id and doc.get("model_id") != model_id:
            continue
        out.append((key, doc, dict(headers)))
    return out


def wait_published(pg, svc, topic, count, where="true"):
    def done():
        return int(psql(pg, f"SELECT count(*) FROM public.outbox WHERE topic = '{topic}'"
                            f" AND published_at IS NOT NULL AND {where}")) >= count
    svc.wait_for(done, 30, f"{count} published outbox rows on {topic}")


def part_events_s3(pg, kafka, c, svc, prefix):
    doc = train(c, "all")
    training_id = doc["training_id"]
    ids = dict(zip(TYPES, doc["model_ids"]))
    final, _ = wait_done(c, doc["model_ids"], 180, svc)
    check(all(final[ids[t]]["status"] == "active" for t in TYPES),
          f"every type trained and active with the s3:// store "
          f"({[final[ids[t]]['status'] for t in TYPES]})")

    for t in TYPES:
        m = final[ids[t]]
        want = f"{prefix}/models/{t}/v1-{ids[t]}.rca"
        check(m["artifact_path"] == want, f"{t}: artifact_path {m['artifact_path']}")
        check(artifact_ok(s3_object(m["artifact_path"]), m["artifact_checksum"]),
              f"{t}: the object in s3rver is the artifact (SHA-256 = artifact_checksum)")

    wait_published(pg, svc, TOPIC_STARTED, 4, f"payload->>'training_id' = '{training_id}'")
    wait_published(pg, svc, TOPIC_COMPLETED, 4, f"payload->>'training_id' = '{training_id}'")
    started = events(kafka, TOPIC_STARTED, training_id)
    completed = events(kafka, TOPIC_COMPLETED, training_id)
    check(sorted(d["model_id"] for _, d, _ in started) == sorted(ids.values()),
          f"exactly one ModelTrainingStarted per model ({len(started)} messages)")
    check(sorted(d["model_id"] for _, d, _ in completed) == sorted(ids.values()),
          f"exactly one ModelTrainingCompleted per model ({len(completed)} messages)")
    for key, d, headers in started:
        m = final[d["model_id"]]
        check(set(d) == STARTED_KEYS, f"started {m['model_type']}: members {sorted(d)}")
        check(key == d["model_id"] and headers.get("event-type") == "ModelTrainingStarted"
              and d["model_type"] == m["model_type"] and d["training_id"] == training_id
              and rfc3339_ms(d["start_time"]) and isinstance(d["parameters"], dict),
              f"started {m['model_type']}: key, event-type header, values ({d['start_time']})")
    for key, d, headers in completed:
        m = final[d["model_id"]]
        check(set(d) == COMPLETED_KEYS, f"completed {m['model_type']}: members {sorted(d)}")
        check(key == d["model_id"] and headers.get("event-type") == "ModelTrainingCompleted"
              and d["status"] == "success" and d["training_id"] == training_id
              and d["artifact_path"] == m["artifact_path"]
              and d["metrics"]["model"]["ndcg_at_10"] == m["metrics"]["model"]["ndcg_at_10"]
              and rfc3339_ms(d["completion_time"]),
              f"completed {m['model_type']}: status success, metrics and artifact as registered")
    collab = [d for _, d, _ in started if d["model_id"] == ids["collaborative"]][0]
    check(collab["parameters"].get("factors") == 16 and collab["parameters"].get("iterations") == 3,
          f"ModelTrainingStarted carries the parameters ({collab['parameters']})")
    return final, ids


def part_round_trip(c, svc, final, ids):
    v1 = final[ids["popularity"]]
    doc = train(c, "popularity")
    v2 = doc["model_id"]
    m2 = wait_done(c, [v2], 60, svc)[0][v2]
    check(m2["status"] == "active" and m2["metrics"].get("active") is not None
          and "active_error" not in m2["metrics"],
          f"popularity v2 compared with the active v1 fetched from S3 into an empty cache "
          f"({m2['gate']['reason']})")
    check(abs(m2["metrics"]["active"]["ndcg_at_10"] - v1["metrics"]["model"]["ndcg_at_10"]) < 1e-9,
          "the fetched v1 scores as it did when trained")
    check(artifact_ok(s3_object(m2["artifact_path"]), m2["artifact_checksum"])
          and m2["artifact_path"] != v1["artifact_path"], "v2 has an object of its own in s3rver")

    def served():
        s, _, d = c.request("GET", "/api/v1/recs/1?limit=10")
        return s == 200 and d.get("source") == "model" and d.get("model_id") == ids["hybrid"]
    svc.wait_for(served, 20, "the ranker to serve the hybrid fetched from S3")
    check(True, "the new ranker fetched the hybrid from S3 and serves it")


def part_kill(pg, kafka, c, svc, active_collab):
    before = svc.actor("trainer")
    load = Load(svc.port, path="/api/v1/recs/1?limit=5", threads=2).start()
    doc = train(c, "collaborative")
    model_id = doc["model_id"]

    def training():
        m = c.model(model_id)
        p = m["progress"] or {}
        return m if m["status"] == "running" and p.get("phase") == "train" \
            and (p.get("iteration") or 0) >= 1 else None
    m = svc.wait_for(training, 60, "the collaborative run to show training progress")
    check(True, f"running: phase {m['progress']['phase']}, iteration {m['progress']['iteration']},"
                f" {m['progress']['percent']} %")
    os.kill(before["pid"], signal.SIGKILL)
    killed = time.time()

    def back():
        row = svc.actor("trainer")
        return row if row["pid"] not in (0, before["pid"]) and row["state"] == "running" else None
    after = svc.wait_for(back, 15, "the supervisor to restart the trainer")
    check(after["restarts"] == before["restarts"] + 1,
          f"trainer restarted as pid {after['pid']} in {time.time() - killed:.1f} s")

    def failed():
        m = c.model(model_id)
        return m if m["status"] != "running" else None
    m = svc.wait_for(failed, 30, "the killed run to be recovered")
    check(m["status"] == "failed" and m["error"] == "trainer died mid-run",
          f"the killed run is failed: {m['status']}, {m['error']!r}")
    check(m["active"] is False and m["artifact_path"] is None and m["activations"] == [],
          "never active, no artifact recorded")
    check(s3_object(f"{svc.env['RECSD_ARTIFACT_URL']}/models/collaborative/"
                    f"v{m['version']}-{model_id}.rca") is None,
          "no object under the version's key in s3rver")
    status, _, listing = c.request("GET", "/api/v1/recs/models")
    check(listing["active"].get("collaborative") == active_collab,
          "the previous collaborative model is still active")

    rows = psql(pg, f"SELECT payload::text FROM public.outbox WHERE topic = '{TOPIC_COMPLETED}'"
                    f" AND key = '{model_id}'").splitlines()
    payloads = [json.loads(r) for r in rows]
    check(len(payloads) == 1 and payloads[0]["status"] == "failed"
          and payloads[0]["metrics"] is None and payloads[0]["artifact_path"] is None
          and set(payloads[0]) == COMPLETED_KEYS,
          f"one ModelTrainingCompleted failed in the outbox ({payloads})")
    wait_published(pg, svc, TOPIC_COMPLETED, 1, f"key = '{model_id}'")
    done = events(kafka, TOPIC_COMPLETED, model_id=model_id)
    check(len(done) == 1 and done[0][1]["status"] == "failed",
          f"and exactly one on Kafka ({[d for _, d, _ in done]})")
    check(len(events(kafka, TOPIC_STARTED, model_id=model_id)) == 1,
          "exactly one ModelTrainingStarted for it")

    time.sleep(1)  # some traffic after the recovery too
    load.finish()
    print(f"responses ok={load.ok} bad={len(load.bad)} sources={load.sources}", flush=True)
    check(load.ok > 50, f"clients ran throughout ({load.ok} responses)")
    check(not load.bad and load.refused == 0,
          f"GET /api/v1/recs/1 answered 200 throughout (first failures: {load.bad[:3]})")
    check(any("run(s) whose trainer died marked failed" in line.get("msg", "")
              for line in svc.log_lines()), "the recovery is logged")


def main():
    require_env("RECSD_REDIS_URL")
    missing = [n for n in ("RECSD_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
               if not os.environ.get(n)]
    if missing:
        fail(f"{', '.join(missing)} not set: run through ops/test.sh, which starts s3rver "
             f"(or: ops/s3rver.sh start && eval \"$(ops/s3rver.sh env)\")")
    if shutil.which("kcat") is None:
        fail("kcat is not installed")
    prefix = f"s3://recsd/it-training-{uuid.uuid4().hex[:12]}"
    pg = Postgres()
    kafka = DevKafka()
    try:
        import_movielens(pg)
        env = dict(SMALL, RECSD_PG_DSN=pg.dsn, RECSD_KAFKA_BROKERS=kafka.bootstrap,
                   RECSD_ARTIFACT_URL=prefix)
        actors = "trainer,publisher,ranker,http-gateway"
        print("--- events and S3", flush=True)
        with Service(env=env, actors=actors) as svc:
            c = Client(svc.port)
            final, ids = part_events_s3(pg, kafka, c, svc, prefix)
            c.close()
        # A second service: a new runtime dir, so nothing is in its cache.
        print("--- S3 round trip, then kill -9", flush=True)
        with Service(env=dict(env, RECSD_ALS_ITERATIONS="1000"), actors=actors) as svc:
            c = Client(svc.port)
            part_round_trip(c, svc, final, ids)
            part_kill(pg, kafka, c, svc, ids["collaborative"])
            c.close()
    finally:
        kafka.stop()
        pg.close()
    print("PASS: training events, S3 artifacts, kill -9 mid-run", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
