"""OpenTelemetry tracing end to end, against a real OTLP/HTTP JSON receiver
(otlp_receiver.py) on loopback:

linked     one GET /api/v1/recs/{user} with a given traceparent is one trace
           (that trace id): the gateway's SERVER span (parent: the given
           span id) with its cache lookups and its ranker CLIENT span as
           children, the ranker's SERVER span under that CLIENT span, and
           the ranker's steps (candidates, scoring, filtering; a fallback
           when the asked type has no model) under it; the answer's
           traceparent carries the same trace id. Models: one small
           collaborative model trained from MovieLens latest-small.
malformed  a malformed traceparent is ignored: a new trace, a root span.
off        OTEL_TRACES_SAMPLER=always_off: answers as usual, no span
           arrives, the caller's traceparent is passed back unchanged.
invalid    an invalid OTEL_TRACES_SAMPLER is a start-up error (exit 78)
           naming the variable, for each traced actor and for `recsd run`
           (which refuses it before forking anything).
drops      a queue of one span and a collector that stalls: the drop
           counter grows and shows in /metrics.
"""
import json
import re
import subprocess
import tempfile
import time
import uuid

from harness import (BIN, MovieLensDatabase, Service, check, fail, require_env, run_cases)
from otlp_receiver import SPAN_KIND, OtlpReceiver

SERVER, CLIENT, INTERNAL = SPAN_KIND["server"], SPAN_KIND["client"], SPAN_KIND["internal"]


def trace_env(rx, extra=None):
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": rx.endpoint,
           "OTEL_BSP_SCHEDULE_DELAY": "50",
           "OTEL_SERVICE_NAME": "recsd-it"}
    env.update(extra or {})
    return env


def new_traceparent():
    return f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"


def get_json(svc, path, headers=None):
    status, hdrs, body = svc.get(path, headers=headers)
    try:
        return status, {k.lower(): v for k, v in hdrs.items()}, json.loads(body)
    except ValueError:
        return status, {k.lower(): v for k, v in hdrs.items()}, body


def train_collaborative(svc):
    status, doc = svc.api("POST", "/api/v1/recs/train", {"model_type": "collaborative"})
    check(status == 202, f"collaborative training queued ({status} {doc})")
    model_id = doc["model_id"]
    deadline = time.time() + 240
    while time.time() < deadline:
        status, doc = svc.api("GET", f"/api/v1/recs/models/{model_id}")
        if status == 200 and doc["status"] == "failed":
            fail(f"training {model_id} failed: {doc.get('error')}")
        if status == 200 and doc["status"] in ("succeeded", "active"):
            if doc["status"] != "active":
                status, out = svc.api("POST", f"/api/v1/recs/models/{model_id}/activate", {})
                check(status == 200, f"activate {model_id} ({status} {out})")
            return model_id
        time.sleep(0.5)
    fail(f"model {model_id} not trained in time")


def wait_ranker(svc, tag):
    """Until the ranker answers (not the gateway's fallback): it binds once
    its lists are loaded."""
    svc.wait_for(lambda: get_json(svc, f"/api/v1/recs/{tag}-warm")[2].get("source") == "model",
                 20, "the ranker to answer")


def one(spans, what, pred):
    found = [s for s in spans if pred(s)]
    if len(found) != 1:
        fail(f"expected exactly one {what}, found {len(found)}: "
             f"{[(s['name'], s['kind'], s['resource'].get('recsd.actor')) for s in spans]}")
    return found[0]


def case_linked(tag):
    db = MovieLensDatabase("trace")
    store = tempfile.mkdtemp(prefix="recsd-it-store-", dir="/tmp")
    try:
        with OtlpReceiver() as rx, Service(env=trace_env(rx, {
                "RECSD_PG_DSN": db.dsn,
                "RECSD_ACTORS": "trainer,ranker,http-gateway",
                "RECSD_ARTIFACT_URL": "file://" + store,
                "RECSD_ALS_FACTORS": "16", "RECSD_ALS_ITERATIONS": "3",
                "RECSD_TRAIN_THREADS": "2", "RECSD_RANKER_DEADLINE_MS": "2000"})) as svc:
            model_id = train_collaborative(svc)
            # Warm up on another user until the model serves and a list of it
            # is cached: the gateway then knows the served model, so a miss
            # looks into the cache before asking the ranker.
            svc.wait_for(lambda: get_json(svc, "/api/v1/recs/2?type=collaborative")[2]
                         .get("model_id") == model_id, 60, "the model to serve user 2")
            svc.wait_for(lambda: get_json(svc, "/api/v1/recs/2?type=collaborative")[2]
                         .get("source") == "cache", 10, "user 2's list to be cached")

            given = new_traceparent()
            trace_id, parent_id = given.split("-")[1], given.split("-")[2]
            status, headers, doc = get_json(svc, "/api/v1/recs/1?type=collaborative&limit=9",
                                            {"traceparent": given})
            check(status == 200 and doc["source"] == "model" and doc["model_id"] == model_id,
                  f"user 1 answered by the model ({status} {str(doc)[:200]})")
            back = headers.get("traceparent", "")
            check(re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", back)
                  and back.split("-")[1] == trace_id,
                  f"the answer's traceparent carries the trace id ({back})")

            spans = rx.wait_for_spans(lambda s: s["traceId"] == trace_id, count=8, timeout=15)
            time.sleep(0.3)  # anything late of the same trace
            spans = rx.trace(trace_id)
            check(len(spans) >= 8, f"{len(spans)} spans in the trace: "
                  f"{sorted(s['name'] for s in spans)}")
            gw = one(spans, "gateway SERVER span",
                     lambda s: s["kind"] == SERVER and s["name"] == "GET /api/v1/recs/{userId}")
            check(gw["parentSpanId"] == parent_id, "the gateway span's parent is the given span")
            check(back.split("-")[2] == gw["spanId"],
                  "the answer's traceparent names the gateway span")
            a = gw["attributes"]
            check(a.get("http.request.method") == "GET"
                  and a.get("http.route") == "/api/v1/recs/{userId}"
                  and a.get("http.response.status_code") == 200
                  and a.get("url.path", "").startswith("/api/v1/recs/1")
                  and a.get("recsd.user_id") == "1" and a.get("recsd.cache.level") == "none"
                  and a.get("recsd.source") == "model" and a.get("recsd.model_id") == model_id,
                  f"the gateway span's attributes ({a})")
            check(gw["resource"].get("service.name") == "recsd-it"
                  and gw["resource"].get("recsd.actor") == "http-gateway"
                  and gw["resource"].get("service.instance.id", "").startswith("http-gateway@")
                  and isinstance(gw["resource"].get("process.pid"), int)
                  and gw["scope"] == "recsd", f"resource and scope ({gw['resource']})")

            kids = rx.children(spans, gw)
            lru = one(kids, "cache.lru child", lambda s: s["name"] == "cache.lru")
            redis = one(kids, "cache.redis child", lambda s: s["name"] == "cache.redis")
            check(lru["attributes"].get("recsd.cache.result") == "miss"
                  and redis["kind"] == CLIENT
                  and redis["attributes"].get("recsd.cache.result") == "miss",
                  "the cache lookups: LRU and Redis, both misses")
            call = one(kids, "ranker CLIENT child",
                       lambda s: s["kind"] == CLIENT and s["name"] == "recsd.Ranker/Recommend")
            check(call["attributes"].get("recsd.ranker.outcome") == "ok", "the ranker call is ok")

            rk = one(spans, "ranker SERVER span",
                     lambda s: s["kind"] == SERVER and s["name"] == "recsd.Ranker/Recommend")
            check(rk["parentSpanId"] == call["spanId"],
                  "the ranker's SERVER span is a child of the gateway's CLIENT span")
            check(rk["resource"].get("recsd.actor") == "ranker"
                  and rk["resource"].get("process.pid") != gw["resource"].get("process.pid"),
                  "the ranker span comes from the ranker process")
            check(rk["attributes"].get("recsd.model_id") == model_id
                  and rk["attributes"].get("recsd.items") == 9, f"ranker attributes {rk['attributes']}")
            steps = {s["name"]: s for s in rx.children(spans, rk)}
            check({"ranker.candidates", "ranker.scoring", "ranker.filtering"} <= set(steps),
                  f"the ranker's steps under its span: {sorted(steps)}")
            sc = steps["ranker.scoring"]["attributes"]
            check(sc.get("recsd.model_id") == model_id and sc.get("recsd.model.type") ==
                  "collaborative" and sc.get("recsd.scoring.method") in ("blas", "faiss")
                  and sc.get("recsd.items.scored", 0) > 100, f"scoring attributes {sc}")
            ft = steps["ranker.filtering"]["attributes"]
            check(ft.get("recsd.items.returned") == 9 and ft.get("recsd.filter.seen", -1) >= 0,
                  f"filtering attributes {ft}")
            cand = steps["ranker.candidates"]["attributes"]
            check(cand.get("recsd.history.events", 0) > 0, f"candidates attributes {cand}")
            outside = [s["name"] for s in spans
                       if not gw["start"] <= s["start"] <= s["end"] <= gw["end"]]
            check(not outside, f"every span lies within the request's ({outside})")

            # A type without a model: the ranker's fallback is a span.
            given = new_traceparent()
            trace_id = given.split("-")[1]
            status, _, doc = get_json(svc, "/api/v1/recs/1?type=hybrid&limit=8",
                                      {"traceparent": given})
            check(status == 200, "type=hybrid answered")
            fb = rx.wait_for_spans(lambda s: s["traceId"] == trace_id
                                   and s["name"] == "ranker.fallback", timeout=10)
            check(any(s["attributes"].get("recsd.fallback.step") == "hybrid"
                      and s["attributes"].get("recsd.fallback.reason") == "not_loaded" for s in fb),
                  f"a fallback span: hybrid not loaded ({[s['attributes'] for s in fb]})")
            check(not rx.errors(), "every export was OTLP JSON")
    finally:
        db.close()
        subprocess.run(["rm", "-rf", store], check=False)


def case_malformed(tag):
    with OtlpReceiver() as rx, Service(env=trace_env(rx, {"RECSD_ACTORS": "ranker,http-gateway"})) \
            as svc:
        wait_ranker(svc, tag)
        bad = "00-" + "z" * 32 + "-" + "1" * 16 + "-01"
        status, headers, _ = get_json(svc, f"/api/v1/recs/{tag}", {"traceparent": bad})
        check(status == 200, "a malformed traceparent is no error")
        back = headers.get("traceparent", "")
        check(re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", back) is not None,
              f"the answer starts a new trace ({back})")
        trace_id = back.split("-")[1]
        spans = rx.wait_for_spans(lambda s: s["traceId"] == trace_id and s["kind"] == SERVER
                                  and s["resource"].get("recsd.actor") == "http-gateway",
                                  timeout=10)
        check(len(spans) == 1 and spans[0]["parentSpanId"] == "",
              "the gateway span is a root of the new trace")
        rk = rx.wait_for_spans(lambda s: s["traceId"] == trace_id
                               and s["name"] == "recsd.Ranker/Recommend" and s["kind"] == SERVER,
                               timeout=10)
        check(len(rk) == 1, "the ranker joins the new trace")
        # Every answer carries a traceparent, /health too.
        status, headers, _ = get_json(svc, "/health")
        check(status == 200 and headers.get("traceparent", "").startswith("00-"),
              "GET /health carries a traceparent too")


def case_off(tag):
    with OtlpReceiver() as rx, Service(env=trace_env(rx, {
            "RECSD_ACTORS": "ranker,http-gateway", "OTEL_TRACES_SAMPLER": "always_off"})) as svc:
        wait_ranker(svc, tag)
        given = new_traceparent()
        for _ in range(5):
            status, headers, doc = get_json(svc, f"/api/v1/recs/{tag}", {"traceparent": given})
            check(status == 200 and isinstance(doc, dict) and "items" in doc,
                  "the answer is as usual")
        check(headers.get("traceparent") == given,
              "the caller's traceparent is passed back unchanged")
        status, headers, _ = get_json(svc, f"/api/v1/recs/{tag}")
        check(status == 200 and "traceparent" not in headers, "no traceparent without one given")
        time.sleep(1.0)
        check(rx.spans() == [] and rx.requests() == [], "no span arrives")
        _, _, body = svc.get("/metrics")
        check(b"recsd_trace_spans_total" not in body, "no tracing series with tracing off")


def case_invalid(tag):
    env = dict(Service().env, OTEL_TRACES_SAMPLER="sometimes",
               OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    for actor in ("ranker", "http-gateway"):
        out = subprocess.run([BIN, "actor", actor], env=env, capture_output=True, text=True,
                             timeout=20)
        check(out.returncode == 78 and "OTEL_TRACES_SAMPLER" in out.stderr
              and "sometimes" in out.stderr,
              f"{actor}: exit 78 naming OTEL_TRACES_SAMPLER (rc {out.returncode}: "
              f"{out.stderr.strip()[-300:]})")
    # recsd run: refused before anything is forked, exit 78, naming it.
    svc = Service(env={"OTEL_TRACES_SAMPLER": "sometimes", "RECSD_ACTORS": "ranker,http-gateway"})
    svc.start(wait_ready=False)
    try:
        try:
            rc = svc.proc.wait(15)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 78 and "OTEL_TRACES_SAMPLER=sometimes" in svc.logs(),
              f"recsd run refuses OTEL_TRACES_SAMPLER=sometimes with exit 78 (rc {rc}: "
              f"{svc.logs()[-300:]})")
    finally:
        svc.close()


def case_drops(tag):
    rx = OtlpReceiver(delay=3.0).start()
    try:
        with Service(env=trace_env(rx, {"RECSD_ACTORS": "ranker,http-gateway",
                                        "OTEL_BSP_MAX_QUEUE_SIZE": "1",
                                        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1",
                                        "OTEL_BSP_SCHEDULE_DELAY": "0",
                                        "OTEL_BSP_EXPORT_TIMEOUT": "100"})) as svc:
            started = time.time()
            codes = [svc.get(f"/api/v1/recs/{tag}")[0] for _ in range(30)]
            check(codes == [200] * 30 and time.time() - started < 10,
                  f"30 answers while the collector stalls, in {time.time() - started:.1f} s")
            pattern = re.compile(r'^recsd_trace_spans_total\{actor="http-gateway",'
                                 r'result="dropped"\} (\d+)$', re.M)

            def dropped():
                m = pattern.search(svc.get("/metrics")[2].decode())
                return int(m.group(1)) if m and int(m.group(1)) > 0 else 0
            n = svc.wait_for(dropped, 10, "the gateway's drop counter in /metrics")
            check(n >= 20, f"{n} spans dropped with a queue of one and a stalled collector")
            text = svc.get("/metrics")[2].decode()
            check(text.count("# TYPE recsd_trace_spans_total counter") == 1
                  and re.search(r'recsd_trace_spans_total\{actor="ranker",result="dropped"\} \d+',
                                text),
                  "one family, the ranker's series next to the gateway's")
            rx.delay = 0
    finally:
        rx.stop()


CASES = {"linked": case_linked, "malformed": case_malformed, "off": case_off,
         "invalid": case_invalid, "drops": case_drops}

if __name__ == "__main__":
    require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")
    raise SystemExit(run_cases(CASES, list(CASES), "tracing across gateway and ranker"))
