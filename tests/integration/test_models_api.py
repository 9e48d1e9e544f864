"""The training and model API through a real recsd, over real HTTP:
POST /api/v1/recs/train, GET /api/v1/recs/models[/{id}], POST
/api/v1/recs/models/{id}/activate; every 400 case, 404, 405, 409;
recommendations served as before; PostgreSQL stopped -> 503 with only a
request id, and back to normal once it returns.

Runs on a throw-away PostgreSQL cluster of its own (harness.Postgres), with
only the ranker and the gateway: no trainer claims the queued models, so
their state is ours to check, and stopping PostgreSQL disturbs no other
test. A trainer finishing a model is simulated with SQL."""
import http.client
import json
import re
import subprocess
import uuid

from harness import Postgres, Service, check, fail

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class Client:
    """One keep-alive HTTP connection, reopened if the server closed it."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None, headers=None, chunked=False):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        hdrs = dict(headers or {})
        if body is not None and not chunked:
            hdrs.setdefault("Content-Type", "application/json")
        data = body.encode() if isinstance(body, str) else body
        if chunked:
            hdrs["Content-Type"] = "application/json"
            self.conn.request(method, path, body=iter([data[i:i + 1000]
                                                       for i in range(0, len(data), 1000)]),
                              headers=hdrs, encode_chunked=True)
        else:
            self.conn.request(method, path, body=data, headers=hdrs)
        resp = self.conn.getresponse()
        raw = resp.read()
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            fail(f"{method} {path}: not JSON: {raw[:300]!r}")
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, doc

    def close(self):
        if self.conn:
            self.conn.close()


def problem(status, headers, doc, want, param=None, rid=True):
    """Checks a problem+json answer (from the model API: with the request
    id; rid=False for the gateway's own 404/405); returns its detail."""
    ok = (status == want and headers.get("content-type") == "application/problem+json"
          and doc.get("status") == want)
    if rid:
        ok = ok and doc.get("request_id") and doc["request_id"] == headers.get("x-request-id")
    if param is not None:
        ok = ok and doc.get("invalid-params", [{}])[0].get("name") == param
    if not ok:
        fail(f"expected a {want} problem (param {param}), got {status} {headers} {doc}")
    return doc.get("detail", "")


pg = Postgres()
try:
    env = {"RECSD_PG_DSN": pg.dsn}
    with Service(env=env, actors="ranker,http-gateway") as svc:
        c = Client(svc.port)

        # -- POST /train ------------------------------------------------------
        status, headers, doc = c.request("POST", "/api/v1/recs/train", json.dumps(
            {"model_type": "all", "start_date": "2024-01-01T00:00:00Z",
             "end_date": "2024-06-01T00:00:00+02:00"}))
        check(status == 202, f"POST /train all is 202 ({status} {doc})")
        check(doc["status"] == "queued" and UUID.match(doc["training_id"]),
              "answer has the training id and status queued")
        check(len(doc["model_ids"]) == 4 and all(UUID.match(i) for i in doc["model_ids"]),
              "one model per concrete type")
        check(doc["model_id"] == doc["model_ids"][0], "model_id is the first of model_ids")
        check([m["model_type"] for m in doc["models"]] ==
              ["collaborative", "content", "hybrid", "popularity"], "types in queue order")
        location = headers.get("location")
        check(location == "/api/v1/recs/models/" + doc["model_id"],
              f"Location names the model ({location})")
        training_id, model_ids = doc["training_id"], doc["model_ids"]

        status, _, one = c.request("GET", location)
        check(status == 200 and one["model_id"] == model_ids[0] and one["status"] == "queued",
              "GET Location: the queued model")
        check(one["training"]["requested_by"] == "anonymous@127.0.0.1",
              "requested_by records the anonymous caller and address")
        check(one["training"]["start_date"] == "2024-01-01T00:00:00.000Z"
              and one["training"]["end_date"] == "2024-05-31T22:00:00.000Z",
              "dates stored as given, shown in UTC")
        for key in ("progress", "params", "metrics", "artifact_path", "artifact_checksum",
                    "error", "version", "created_at", "started_at", "finished_at", "active"):
            if key not in one:
                fail(f"GET /models/{{id}} lacks {key}: {one}")
        check(True, "GET /models/{id} has every documented member")

        status, headers, doc = c.request("POST", "/api/v1/recs/train",
                                         '{"model_type": "popularity"}')
        check(status == 202 and len(doc["model_ids"]) == 1, "one concrete type queues one model")
        popularity_v2 = doc["model_id"]

        # -- every 400 of /train, nothing queued by them ----------------------
        bad = [
            ('{"model_type": "deep"}', "model_type", "unknown type"),
            ('{"start_date": "2024-01-01T00:00:00Z"}', "model_type", "missing type"),
            ('{"model_type": "all", "start_date": "2024-05-02T00:00:00Z",'
             ' "end_date": "2024-05-01T00:00:00Z"}', "end_date", "end before start"),
            ('{"model_type": "all", "start_date": "yesterday"}', "start_date", "malformed date"),
            ('{"model_type": "all", "end_date": "2024-05-01T00:00:00"}', "end_date",
             "date without a zone"),
            ('{"model_type": "all"', "body", "malformed JSON"),
            ('["all"]', "body", "not an object"),
            ('{"model_type": "all", "limit": 3}', "body", "unknown member"),
        ]
        for body, param, what in bad:
            status, headers, doc = c.request("POST", "/api/v1/recs/train", body)
            problem(status, headers, doc, 400, param)
            check(True, f"400 for {what} ({doc.get('detail')})")
        big = json.dumps({"model_type": "all", "pad": "x" * 17000})
        status, headers, doc = c.request("POST", "/api/v1/recs/train", big)
        detail = problem(status, headers, doc, 413, "body")
        check("16384" in detail,
              f"413 for a body over 16 KiB, refused by Content-Length ({detail})")
        status, headers, doc = c.request("POST", "/api/v1/recs/train", big, chunked=True)
        problem(status, headers, doc, 413, "body")
        check(True, "413 for a chunked body over 16 KiB")
        status, headers, doc = c.request("POST", "/api/v1/recs/train",
                                         '{"model_type": "content"}', chunked=True)
        check(status == 202, f"a small chunked body is read whole ({status} {doc})")
        content_v2 = doc["model_id"]
        count = int(subprocess.run(
            ["psql", pg.dsn, "-Atc", "SELECT count(*) FROM training.models"],
            capture_output=True, text=True, check=True).stdout)
        check(count == 6, f"the refused requests queued nothing ({count} models)")

        # -- GET /models --------------------------------------------------------
        status, _, doc = c.request("GET", "/api/v1/recs/models")
        ids = [m["model_id"] for m in doc["models"]]
        check(status == 200 and len(ids) == 6 and ids[0] == content_v2,
              "GET /models lists every model, newest first")
        entry = doc["models"][-1]
        check(entry["model_id"] == model_ids[0] and entry["version"] == 1
              and entry["active"] is False and entry["status"] == "queued",
              "each entry has id, version, status, active")
        check(doc["active"] == {}, "no active model yet")
        status, _, doc = c.request("GET", "/api/v1/recs/models?model_type=popularity&limit=1")
        check(status == 200 and [m["model_id"] for m in doc["models"]] == [popularity_v2]
              and doc["models"][0]["version"] == 2, "filter by type, limit, versions per type")
        for query, param in (("limit=0", "limit"), ("limit=x", "limit"),
                             ("model_type=deep", "model_type")):
            status, headers, doc = c.request("GET", "/api/v1/recs/models?" + query)
            problem(status, headers, doc, 400, param)
        check(True, "bad list parameters are 400")

        # -- 404 / 400 / 405 ----------------------------------------------------
        status, headers, doc = c.request("GET", "/api/v1/recs/models/" + str(uuid.uuid4()))
        problem(status, headers, doc, 404)
        check(True, "unknown model id is 404")
        status, headers, doc = c.request("GET", "/api/v1/recs/models/not-a-uuid")
        problem(status, headers, doc, 400, "id")
        check(True, "a model id that is not a uuid is 400")
        status, headers, doc = c.request("POST", f"/api/v1/recs/models/{uuid.uuid4()}/activate")
        problem(status, headers, doc, 404)
        check(True, "activating an unknown model is 404")
        status, headers, doc = c.request("GET", "/api/v1/recs/train")
        problem(status, headers, doc, 405, rid=False)
        check(headers.get("allow") == "POST", "GET /train is 405, Allow: POST")
        status, headers, doc = c.request("POST", "/api/v1/recs/models", "{}")
        problem(status, headers, doc, 405, rid=False)
        check(headers.get("allow") == "GET, HEAD", "POST /models is 405, Allow: GET, HEAD")
        status, headers, doc = c.request("GET", "/api/v1/recs/experiments/")
        problem(status, headers, doc, 404, rid=False)
        check(True, "/experiments/ (a trailing slash) is no route and no user (404)")

        # -- activation -----------------------------------------------------------
        status, headers, doc = c.request("POST", f"/api/v1/recs/models/{model_ids[0]}/activate")
        detail = problem(status, headers, doc, 409)
        check("queued" in detail, f"a queued model cannot be activated: 409 ({detail})")
        # What the trainer does, in SQL: two collaborative versions succeed.
        pg.sql("INSERT INTO training.runs (training_id, trigger, requested_by, model_type)"
               " VALUES ('00000000-0000-4000-8000-000000000001', 'manual', 'it', 'collaborative')")
        pg.sql("INSERT INTO training.model_types VALUES ('collaborative', 2)"
               " ON CONFLICT (model_type) DO UPDATE SET last_version = 2")
        pg.sql("INSERT INTO training.models (model_id, training_id, model_type, version, status,"
               " started_at, finished_at, artifact_path, artifact_checksum)"
               " VALUES ('00000000-0000-4000-8000-0000000000a2',"
               " '00000000-0000-4000-8000-000000000001', 'collaborative', 2, 'succeeded',"
               " now(), now(), 'file:///tmp/it-collab-2.bin', 'ff')")
        pg.sql(f"UPDATE training.models SET status = 'succeeded', started_at = now(),"
               f" finished_at = now(), artifact_path = 'file:///tmp/it-collab-1.bin'"
               f" WHERE model_id = '{model_ids[0]}'")
        pg.sql(f"UPDATE training.models SET status = 'failed', started_at = now(),"
               f" finished_at = now(), error = 'diverged' WHERE model_id = '{model_ids[1]}'")
        v1, v2 = model_ids[0], "00000000-0000-4000-8000-0000000000a2"

        status, _, doc = c.request("POST", f"/api/v1/recs/models/{v1}/activate")
        check(status == 200 and doc["status"] == "active" and doc["changed"] is True
              and doc["previous_model_id"] is None and doc["reason"] == "manual"
              and doc["activated_by"] == "anonymous@127.0.0.1",
              f"activate a succeeded model: 200 ({doc})")
        status, _, doc = c.request("POST", f"/api/v1/recs/models/{v2}/activate")
        check(status == 200 and doc["previous_model_id"] == v1, "promote v2, v1 retired")
        status, _, doc = c.request("POST", f"/api/v1/recs/models/{v1}/activate", "")
        check(status == 200 and doc["reason"] == "rollback" and doc["previous_model_id"] == v2,
              "rollback to v1 by activate")
        status, _, doc = c.request("GET", "/api/v1/recs/models?model_type=collaborative")
        states = {m["model_id"]: (m["status"], m["active"]) for m in doc["models"]}
        check(states == {v1: ("active", True), v2: ("retired", False)}
              and doc["active"] == {"collaborative": v1}, f"one active per type ({states})")
        status, _, one = c.request("GET", f"/api/v1/recs/models/{v1}")
        check([a["reason"] for a in one["activations"]] == ["rollback", "manual"]
              and one["activations"][0]["activated_by"] == "anonymous@127.0.0.1",
              "the model's activation history, newest first")
        status, headers, doc = c.request("POST", f"/api/v1/recs/models/{model_ids[1]}/activate")
        problem(status, headers, doc, 409)
        check(True, "a failed model cannot be activated: 409")
        status, _, one = c.request("GET", f"/api/v1/recs/models/{model_ids[1]}")
        check(one["status"] == "failed" and one["error"] == "diverged", "failed model shows error")

        # -- recommendations are served as before ---------------------------------
        status, _, doc = c.request("GET", "/api/v1/recs/42?limit=3")
        check(status == 200 and doc["user_id"] == "42", "recommendations still served")

        # -- PostgreSQL down: 503 with only a request id --------------------------
        pg.stop()
        for method, path, body in (("POST", "/api/v1/recs/train", '{"model_type": "all"}'),
                                   ("GET", "/api/v1/recs/models", None),
                                   ("GET", f"/api/v1/recs/models/{v1}", None),
                                   ("POST", f"/api/v1/recs/models/{v2}/activate", None)):
            status, headers, doc = c.request(method, path, body,
                                             headers={"X-Request-Id": "it-pg-down-1"})
            detail = problem(status, headers, doc, 503)
            text = json.dumps(doc)
            if any(w in text for w in ("SELECT", "training.", "connect", "5432", str(pg.port))):
                fail(f"the 503 leaks the cause: {text}")
        check(True, "PostgreSQL down: every model route is 503 with a generic detail")
        check(any(line.get("request_id") == "it-pg-down-1" and line.get("level") == "error"
                  and "model registry" in line.get("msg", "") for line in svc.log_lines()),
              "the cause is logged under the request id")
        status, _, doc = c.request("GET", "/api/v1/recs/42?limit=3")
        check(status == 200 and len(doc["items"]) <= 3, "recommendations served with PG down")
        check(all(a["state"] == "running" for a in svc.status()["actors"]), "nothing restarted")

        pg.start()

        def back():
            s, _, d = c.request("POST", "/api/v1/recs/train", '{"model_type": "hybrid"}')
            return s == 202 and d

        doc = svc.wait_for(back, 10, "the model API to recover after PostgreSQL restarted")
        check(UUID.match(doc["model_id"]), "PostgreSQL back: POST /train is 202 again")
        c.close()
finally:
    pg.close()
print("PASS: models API")
