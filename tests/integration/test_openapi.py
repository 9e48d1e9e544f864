"""api/openapi.json against the real gateway.

1. ops/openapi-check.sh passes on the document (structure, the service's
   rules, redocly lint), and fails on three broken copies of it (a protected
   operation without its 429, an example that breaks its schema, a dangling
   $ref): the check can fail.
2. Every route template of the gateway's route table
   (actors/gateway/gateway_route.c) is a path of the document.
3. A recsd (trainer, ranker, http-gateway on a MovieLens database of its
   own) answers real requests, and each answer is checked against the
   document: the status must be documented for the operation, the
   Content-Type must be one of its media types, required headers
   (X-Request-Id, Location, WWW-Authenticate, Retry-After) must be there, and
   the body must validate against the schema, in a strict reading: an object
   schema that lists properties and says nothing about others is taken as
   closed, so a member the server sends but the document does not list
   fails. Formats uuid and date-time are checked.

Endpoints that a gateway may not serve yet (/openapi.json, /docs, /redoc,
experiments, serving configuration) are checked only once it answers them
with something other than 404 (or than the recommendations route answering
for a user called "config"); until then they are listed as skipped. When the
gateway requires credentials (issue 7) and the test has none, protected
operations are checked for their 401 only, also listed.

Speed: one popularity model is trained (about a second; a few under ASan).
"""
import copy
import datetime
import http.client
import json
import os
import re
import subprocess
import sys
import time
import uuid

import jsonschema

from harness import BIN, MovieLensDatabase, Service, check, fail, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")

SOURCE = os.environ.get("RECSD_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
DOC_PATH = os.path.join(SOURCE, "api", "openapi.json")
CHECK_SCRIPT = os.path.join(SOURCE, "ops", "openapi-check.sh")
BUILD_DIR = os.path.dirname(os.path.abspath(BIN))

# Credentials for protected operations, once the gateway requires them:
# configure the service with an admin credential in SERVICE_ENV and send it
# here (e.g. {"X-API-Key": key}). Without them a protected operation that
# answers 401 is checked for that 401 only.
SERVICE_ENV = {}
AUTH_HEADERS = {}

with open(DOC_PATH, encoding="utf-8") as f:
    DOC = json.load(f)


# ---- the document as a contract ----------------------------------------------

def closed(node):
    """A copy of node in which every object schema that lists properties and
    says nothing about others refuses them."""
    if isinstance(node, list):
        return [closed(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: closed(v) for k, v in node.items()}
    if "properties" in out and isinstance(out["properties"], dict) and \
            "additionalProperties" not in out and "unevaluatedProperties" not in out:
        out["additionalProperties"] = False
    return out


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                     r"[0-9a-fA-F]{12}$")
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time")
def _date_time(value):
    if not isinstance(value, str):
        return True
    if not RFC3339.match(value):
        return False
    text = re.sub(r"[Zz]$", "+00:00", value.replace("t", "T"))
    text = re.sub(r"\.(\d{1,6})\d*", lambda m: "." + m.group(1).ljust(6, "0"), text)
    try:
        datetime.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


@FORMATS.checks("uuid")
def _uuid(value):
    return not isinstance(value, str) or bool(UUID_RE.match(value))


class Contract:
    def __init__(self, doc):
        self.doc = doc
        self.components = closed(doc["components"])
        self.checked = {}   # (METHOD, template) -> set of statuses seen
        self.skipped = {}   # (METHOD, template) -> reason

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            at = self.doc
            for part in node["$ref"][2:].split("/"):
                at = at[part]
            node = at
        return node

    def validate(self, schema, value, what):
        root = {"allOf": [closed(schema)], "components": self.components}
        validator = jsonschema.Draft202012Validator(root, format_checker=FORMATS)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            lines = [f"  at /{'/'.join(str(p) for p in e.absolute_path)}: {e.message[:240]}"
                     for e in errors[:8]]
            fail(f"{what}: does not match the document:\n" + "\n".join(lines) +
                 f"\n  body: {json.dumps(value)[:1500]}")

    def operation(self, method, template):
        item = self.doc["paths"].get(template)
        if not item or method.lower() not in item:
            fail(f"{method} {template} is not in the document")
        return item[method.lower()]

    def check(self, method, template, resp, what=None):
        """Checks a response (status, headers dict, raw body) of the
        operation against the document; returns the parsed JSON body (or
        the text)."""
        status, headers, raw = resp
        what = what or f"{method} {template} -> {status}"
        op = self.operation(method, template)
        responses = op["responses"]
        spec = responses.get(str(status)) or responses.get(f"{status // 100}XX") \
            or responses.get("default")
        if spec is None:
            fail(f"{what}: status {status} is not documented for {method} {template} "
                 f"(documented: {sorted(responses)}); body {raw[:300]!r}")
        spec = self.resolve(spec)
        lower = {k.lower(): v for k, v in headers.items()}
        for name, hspec in spec.get("headers", {}).items():
            hspec = self.resolve(hspec)
            value = lower.get(name.lower())
            if value is None:
                if hspec.get("required"):
                    fail(f"{what}: required header {name} missing (headers {headers})")
                continue
            schema = hspec.get("schema", {})
            if schema.get("type") == "integer":
                if not re.fullmatch(r"\d+", value):
                    fail(f"{what}: header {name}: {value!r} is not an integer")
                value = int(value)
            self.validate(schema, value, f"{what}: header {name}")
        content = spec.get("content", {})
        ctype = lower.get("content-type", "")
        media = ctype.split(";")[0].strip().lower()
        body = raw.decode("utf-8", "replace")
        if content:
            if media not in content:
                fail(f"{what}: Content-Type {ctype!r}, documented {sorted(content)}")
            if media.endswith("json"):
                try:
                    body = json.loads(raw)
                except ValueError:
                    fail(f"{what}: {media} body is not JSON: {raw[:300]!r}")
            self.validate(content[media].get("schema", {}), body, f"{what}: body")
        elif raw:
            fail(f"{what}: the document says no body, got {raw[:200]!r}")
        self.checked.setdefault((method.upper(), template), set()).add(status)
        print(f"ok: {what} matches the document", flush=True)
        return body

    def skip(self, method, template, reason):
        self.skipped[(method.upper(), template)] = reason

    def operations(self):
        for template, item in self.doc["paths"].items():
            for method in ("get", "put", "post", "delete", "patch"):
                if method in item:
                    yield method.upper(), template, item[method]


C = Contract(DOC)


# ---- HTTP ------------------------------------------------------------------

def call(svc, method, path, body=None, headers=None, raw_body=None, auth=True):
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=15)
    try:
        h = dict(AUTH_HEADERS) if auth else {}
        h.update(headers or {})
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def recs_route_answered(resp):
    """True if the answer came from the recommendations route taking the
    path for a user id (the route under test is not served yet)."""
    status, _, raw = resp
    try:
        doc = json.loads(raw)
    except ValueError:
        return False
    if not isinstance(doc, dict):
        return False
    if status == 200 and "user_id" in doc and "items" in doc:
        return True
    params = [p.get("name") for p in doc.get("invalid-params", []) if isinstance(p, dict)]
    return (status == 400 and "userId" in params) or \
        (status == 405 and "/api/v1/recs/{userId}" in str(doc.get("detail", "")))


class NoCredentials(Exception):
    pass


def expect(svc, method, template, path, statuses, body=None, headers=None, raw_body=None,
           what=None):
    """Calls, checks against the document, and requires one of statuses.
    A 401 on a protected operation without credentials is checked and
    raises NoCredentials."""
    resp = call(svc, method, path, body=body, headers=headers, raw_body=raw_body)
    what = what or f"{method} {path[:80]} -> {resp[0]}"
    parsed = C.check(method, template, resp, what)
    if resp[0] == 401 and 401 not in statuses:
        if AUTH_HEADERS:
            fail(f"{what}: 401 with the test's credentials: {parsed}")
        raise NoCredentials(f"{method} {template}")
    if resp[0] not in statuses:
        fail(f"{what}: expected {statuses}, got {resp[0]}: {str(parsed)[:400]}")
    return resp[0], resp[1], parsed


# ---- 1 and 2: the document itself ----------------------------------------------

def run_check(doc_path=None):
    env = dict(os.environ)
    if doc_path:
        env["OPENAPI_DOC"] = doc_path
    out = subprocess.run(["bash", CHECK_SCRIPT, BUILD_DIR], env=env, capture_output=True,
                         text=True, timeout=600)
    text = "\n".join(line for line in (out.stdout + out.stderr).splitlines()
                     if not re.search("[║╔╚]", line))
    return out.returncode, text


def check_document(tmpdir):
    rc, text = run_check()
    print(text[-3000:])
    check(rc == 0, "ops/openapi-check.sh: api/openapi.json is valid")

    def broken(name, mutate):
        doc = copy.deepcopy(DOC)
        mutate(doc)
        path = os.path.join(tmpdir, f"openapi-{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
        return path

    def no_429(doc):
        del doc["paths"]["/api/v1/recs/models"]["get"]["responses"]["429"]

    def bad_example(doc):
        ex = doc["paths"]["/api/v1/recs/{userId}"]["get"]["responses"]["200"]["content"]
        ex["application/json"]["example"]["source"] = "guesswork"

    def dangling_ref(doc):
        doc["components"]["schemas"]["Recommendations"]["properties"]["items"]["items"] = {
            "$ref": "#/components/schemas/NoSuchItem"}

    for name, mutate, expected in (("no-429", no_429, "no 429"),
                                   ("bad-example", bad_example, "no-invalid-media-type-examples"),
                                   ("dangling-ref", dangling_ref, "NoSuchItem")):
        rc, text = run_check(broken(name, mutate))
        check(rc != 0 and expected in text,
              f"ops/openapi-check.sh refuses a document with {name} (rc {rc})")

    with open(os.path.join(SOURCE, "actors", "gateway", "gateway_route.c"),
              encoding="utf-8") as f:
        route_c = f.read()
    table = re.search(r"s_templates\[[^]]*\]\s*=\s*\{(.*?)\};", route_c, re.S)
    if not table:
        fail("no s_templates route table in gateway_route.c: update this test")
    templates = [t for t in re.findall(r'"([^"]*)"', table.group(1)) if t.startswith("/")]
    check(len(templates) >= 8, f"{len(templates)} route templates in gateway_route.c")
    missing = [t for t in templates if t not in DOC["paths"]]
    check(not missing, f"every route template is documented (missing: {missing})")


# ---- 3: live answers -------------------------------------------------------------

def live_today(svc):
    """The endpoints the gateway serves today."""
    expect(svc, "GET", "/health", "/health", {200})
    svc.wait_for(lambda: call(svc, "GET", "/health/ready")[0] == 200, 20, "readiness")
    expect(svc, "GET", "/health/ready", "/health/ready", {200})
    status, _, text = expect(svc, "GET", "/metrics", "/metrics", {200})
    check("recsd_http_requests_total" in text, "/metrics is Prometheus text")

    try:
        live_recs(svc)
    except NoCredentials as exc:
        print(f"NOTICE: {exc}: 401 without credentials; set AUTH_HEADERS", flush=True)
        C.skip("GET", "/api/v1/recs/{userId}", "401 only: no credentials")
    try:
        live_models(svc)
    except NoCredentials as exc:
        print(f"NOTICE: {exc}: 401 without credentials; set AUTH_HEADERS", flush=True)
        for op in (("POST", "/api/v1/recs/train"), ("GET", "/api/v1/recs/models"),
                   ("GET", "/api/v1/recs/models/{id}"),
                   ("POST", "/api/v1/recs/models/{id}/activate")):
            if op not in C.checked:
                C.skip(*op, "401 only or not reached: no credentials")

    # An unknown path: a problem document too (no operation to hold it to).
    status, headers, raw = call(svc, "GET", "/no/such/path")
    check(status == 404 and headers.get("Content-Type") == "application/problem+json",
          f"unknown path: 404 problem+json ({status} {headers.get('Content-Type')})")
    C.validate({"$ref": "#/components/schemas/Problem"}, json.loads(raw), "unknown path 404")
    check("X-Request-Id" in headers, "unknown path: X-Request-Id")


def live_recs(svc):
    T = "/api/v1/recs/{userId}"
    _, headers, doc = expect(svc, "GET", T, "/api/v1/recs/1?limit=5", {200},
                             headers={"X-Request-Id": "openapi-test-1"})
    check(headers.get("X-Request-Id") == "openapi-test-1" and
          doc["request_id"] == "openapi-test-1", "the client's X-Request-Id is kept")
    _, _, doc = expect(svc, "GET", T, "/api/v1/recs/1?limit=3&explain=true", {200})
    check(all("reason" in i for i in doc["items"]), "explain=true: every item has a reason")
    expect(svc, "GET", T, "/api/v1/recs/never-seen-user?limit=2&type=content", {200})
    for query, param in (("limit=0", "limit"), ("limit=101", "limit"), ("type=fancy", "type"),
                         ("exclude=a,,b", "exclude"), ("explain=yes", "explain")):
        _, _, doc = expect(svc, "GET", T, f"/api/v1/recs/1?{query}", {400})
        check(doc["invalid-params"][0]["name"] == param, f"?{query}: 400 names {param}")


def live_models(svc):
    expect(svc, "GET", "/api/v1/recs/models", "/api/v1/recs/models", {200})
    for query in ("limit=0", "model_type=bogus"):
        expect(svc, "GET", "/api/v1/recs/models", f"/api/v1/recs/models?{query}", {400})
    expect(svc, "GET", "/api/v1/recs/models/{id}", "/api/v1/recs/models/not-a-uuid", {400})
    expect(svc, "GET", "/api/v1/recs/models/{id}", f"/api/v1/recs/models/{uuid.uuid4()}",
           {404})
    expect(svc, "POST", "/api/v1/recs/models/{id}/activate",
           f"/api/v1/recs/models/{uuid.uuid4()}/activate", {404}, body={})
    for body, raw in (({"model_type": "bogus"}, None), ({"model_type": "all", "x": 1}, None),
                      (None, b"{not json"), ({"model_type": "all", "start_date": "yesterday"},
                                             None)):
        expect(svc, "POST", "/api/v1/recs/train", "/api/v1/recs/train", {400}, body=body,
               raw_body=raw)

    _, headers, queued = expect(svc, "POST", "/api/v1/recs/train", "/api/v1/recs/train", {202},
                                body={"model_type": "popularity"})
    model_id = queued["model_id"]
    check(headers.get("Location") == f"/api/v1/recs/models/{model_id}",
          "202 Location names the model")
    deadline = time.time() + 120
    while True:
        _, _, model = expect(svc, "GET", "/api/v1/recs/models/{id}",
                             f"/api/v1/recs/models/{model_id}", {200},
                             what=f"GET the queued model ({time.time():.0f})")
        if model["status"] in ("succeeded", "active"):
            break
        if model["status"] == "failed":
            fail(f"popularity training failed: {model['error']}")
        if time.time() > deadline:
            fail(f"popularity model not trained in 120 s: {model['status']}")
        time.sleep(0.5)
    expect(svc, "POST", "/api/v1/recs/models/{id}/activate",
           f"/api/v1/recs/models/{model_id}/activate", {200}, body={})
    _, _, listed = expect(svc, "GET", "/api/v1/recs/models", "/api/v1/recs/models", {200})
    check(listed["active"].get("popularity") == model_id, "the model is listed as active")
    _, _, doc = svc.wait_for(
        lambda: (r := expect(svc, "GET", "/api/v1/recs/{userId}",
                             "/api/v1/recs/1?type=popularity&limit=3", {200}))[2]["model_id"]
        == model_id and r, 30, "the popularity model serving")
    check(doc["model_version"] == queued["models"][0]["version"], "model_version is the model's")


def live_docs(svc):
    resp = call(svc, "GET", "/openapi.json")
    if resp[0] == 404:
        C.skip("GET", "/openapi.json", "not served yet (404)")
    else:
        served = C.check("GET", "/openapi.json", resp)
        check(resp[0] == 200 and served == DOC, "/openapi.json is api/openapi.json")
    for template in ("/docs", "/redoc"):
        resp = call(svc, "GET", template)
        if resp[0] == 404:
            C.skip("GET", template, "not served yet (404); see test_docs_ui.py")
            continue
        html = C.check("GET", template, resp)
        check(resp[0] == 200 and "<html" in html.lower(), f"{template} is an HTML page")


def live_experiments(svc):
    T, TI = "/api/v1/recs/experiments", "/api/v1/recs/experiments/{id}"
    resp = call(svc, "GET", T)
    if resp[0] == 404:
        for method, template in (("GET", T), ("POST", T), ("GET", TI), ("PATCH", TI)):
            C.skip(method, template, "not served yet (404)")
        return
    try:
        expect(svc, "GET", T, T, {200})
        expect(svc, "GET", T, T + "?status=running,stopped", {200})
        expect(svc, "GET", T, T + "?status=bogus", {400})
        name = f"openapi-{uuid.uuid4().hex[:8]}"
        variants = [{"name": "control", "weight": 50, "model_type": "popularity",
                     "is_control": True},
                    {"name": "treatment", "weight": 50, "model_type": "hybrid",
                     "params": {"content_floor": 0.2}}]
        expect(svc, "POST", T, T, {400}, body={"name": name, "variants": [
            dict(variants[0], weight=60), dict(variants[1], weight=60)]})
        expect(svc, "POST", T, T, {400}, body={"name": name, "variants": variants, "x": 1})
        _, headers, created = expect(svc, "POST", T, T, {201},
                                     body={"name": name, "variants": variants})
        exp_id = created["experiment_id"]
        check(headers.get("Location", "").endswith(f"/api/v1/recs/experiments/{exp_id}"),
              "201 Location names the experiment")
        expect(svc, "POST", T, T, {409}, body={"name": name, "variants": variants})
        expect(svc, "GET", TI, f"{T}/{exp_id}", {200})
        expect(svc, "GET", TI, f"{T}/{uuid.uuid4()}", {404})
        expect(svc, "GET", TI, f"{T}/not-a-uuid", {400})
        expect(svc, "PATCH", TI, f"{T}/{exp_id}", {400}, body={"status": "paused"})
        expect(svc, "PATCH", TI, f"{T}/{uuid.uuid4()}", {404}, body={"status": "running"})
        expect(svc, "PATCH", TI, f"{T}/{exp_id}", {200}, body={"status": "running"})
        _, _, doc = expect(svc, "GET", "/api/v1/recs/{userId}",
                           f"/api/v1/recs/1?limit=3&experiment_id={exp_id}", {200})
        check(doc.get("experiment_id") == exp_id and doc.get("variant") in
              ("control", "treatment"), f"a list under the experiment names it ({doc.get('variant')})")
        expect(svc, "GET", "/api/v1/recs/{userId}",
               f"/api/v1/recs/1?experiment_id={uuid.uuid4()}", {404})
        expect(svc, "GET", TI, f"{T}/{exp_id}", {200})
        expect(svc, "PATCH", TI, f"{T}/{exp_id}", {200}, body={"status": "stopped"})
        expect(svc, "PATCH", TI, f"{T}/{exp_id}", {409}, body={"status": "running"})
    except NoCredentials as exc:
        print(f"NOTICE: {exc}: 401 without credentials; set AUTH_HEADERS", flush=True)
        for method, template in (("GET", T), ("POST", T), ("GET", TI), ("PATCH", TI)):
            if (method, template) not in C.checked:
                C.skip(method, template, "not reached: no credentials")


def live_config(svc):
    T = "/api/v1/recs/config"
    ops = (("GET", T), ("PUT", T), ("GET", T + "/versions"), ("POST", T + "/rollback"))
    resp = call(svc, "GET", T)
    if resp[0] == 404 or recs_route_answered(resp):
        why = "not served yet (404)" if resp[0] == 404 else \
            "not served yet: the recommendations route answered for a user called \"config\""
        for method, template in ops:
            C.skip(method, template, why)
        return
    try:
        _, headers, current = expect(svc, "GET", T, T, {200})
        expect(svc, "GET", T + "/versions", T + "/versions", {200})
        expect(svc, "GET", T + "/versions", T + "/versions?limit=0", {400})
        expect(svc, "PUT", T, T, {400}, body=dict(current, default_type="bogus"))
        expect(svc, "PUT", T, T, {400}, body=dict(current, extra=1))
        _, _, stored = expect(svc, "PUT", T, T, {200}, body=current)
        first = stored["version"]
        changed = dict(current, seen_completion=0.5)
        expect(svc, "PUT", T, T, {200}, body=changed)
        _, _, back = expect(svc, "POST", T + "/rollback", T + "/rollback", {200},
                            body={"version": first})
        check(back["rolled_back_from"] == first and back["document"] == current,
              "rollback restores the earlier document")
        expect(svc, "POST", T + "/rollback", T + "/rollback", {404}, body={"version": 999999})
        expect(svc, "POST", T + "/rollback", T + "/rollback", {400}, body={"version": "one"})
        _, _, versions = expect(svc, "GET", T + "/versions", T + "/versions?limit=2", {200})
        check(len(versions["versions"]) == 2, "?limit=2 gives two versions")
    except NoCredentials as exc:
        print(f"NOTICE: {exc}: 401 without credentials; set AUTH_HEADERS", flush=True)
        for method, template in ops:
            if (method, template) not in C.checked:
                C.skip(method, template, "not reached: no credentials")


def report():
    print("\n--- operations of api/openapi.json against the live gateway", flush=True)
    unchecked = []
    for method, template, _ in C.operations():
        key = (method, template)
        if key in C.checked:
            note = f" ({C.skipped[key]})" if key in C.skipped else ""
            print(f"  checked  {method:6} {template:40} statuses "
                  f"{','.join(str(s) for s in sorted(C.checked[key]))}{note}")
        elif key in C.skipped:
            print(f"  SKIPPED  {method:6} {template:40} {C.skipped[key]}")
        else:
            unchecked.append(f"{method} {template}")
    print(flush=True)
    check(not unchecked, f"every operation was checked or skipped with a reason "
                         f"(neither: {unchecked})")
    return sum(1 for k in C.skipped if k not in C.checked)


def main():
    import tempfile  # noqa: PLC0415
    tmpdir = tempfile.mkdtemp(prefix="recsd-it-openapi-", dir="/tmp")
    check_document(tmpdir)

    db = MovieLensDatabase("oa")
    store = os.path.join(tmpdir, "artifacts")
    env = {"RECSD_PG_DSN": db.dsn,
           "RECSD_ACTORS": "trainer,ranker,http-gateway",
           "RECSD_ARTIFACT_URL": "file://" + store,
           "RECSD_TRAIN_THREADS": "2",
           "RECSD_RANKER_DEADLINE_MS": "2000"}
    env.update(SERVICE_ENV)
    try:
        with Service(env=env) as svc:
            live_today(svc)
            live_docs(svc)
            live_experiments(svc)
            live_config(svc)
            skipped = report()
    finally:
        db.close()
        subprocess.run(["rm", "-rf", tmpdir], check=False)
    print(f"PASS: api/openapi.json matches the gateway ({len(C.checked)} operations checked, "
          f"{skipped} skipped)")


if __name__ == "__main__":
    sys.exit(main())
