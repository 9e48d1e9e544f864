"""Tracing across the asynchronous paths (Kafka, the training queue), with a
real OTLP/HTTP JSON receiver (otlp_receiver.py), a private Kafka mock
cluster read and written with kcat, and MovieLens latest-small in a fresh
database. test_tracing.py covers the request path itself.

consume   a VideoWatched produced with a `traceparent` Kafka header: the
          event-ingestor's CONSUMER span "kafka.consume" is its child (same
          trace, parent = the producer's span), with the topic, partition,
          offset and event attributes; the ranker's fold-in of the
          interaction notice ("ranker.interaction") is a child of that span.
training  POST /api/v1/recs/train with a traceparent: the trainer's
          "training.job" (CONSUMER) continues the request's trace under the
          gateway's SERVER span, with one child span per phase (load, split,
          train, evaluate, write, upload); the publisher's PRODUCER spans for
          ModelTrainingStarted and ModelTrainingCompleted are in the same
          trace, and each Kafka message's traceparent header names its
          producer span.
refreshed GET /api/v1/recs/{user} with a traceparent: the
          RecommendationsRefreshed event is produced under a PRODUCER span
          of the request's trace, whose context is the message's header.
"""
import json
import subprocess
import time
import uuid

from harness import MovieLensDatabase, Service, check, fail
from otlp_receiver import SPAN_KIND, OtlpReceiver
from test_ingest import Kafka

CONSUMER, PRODUCER, SERVER = SPAN_KIND["consumer"], SPAN_KIND["producer"], SPAN_KIND["server"]
TOPIC_STARTED = "recommendation-service.model-training-started"
TOPIC_COMPLETED = "recommendation-service.model-training-completed"
TOPIC_REFRESHED = "recommendation-service.recommendations-refreshed"


def new_traceparent():
    return f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"


def parts(traceparent):
    _, trace_id, span_id, _ = traceparent.split("-")
    return trace_id, span_id


def kafka_messages(brokers, topic):
    """Every message of topic as (key, value, {header: value})."""
    out = subprocess.run(["kcat", "-b", brokers, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
                          "-f", "%k\t%s\t%h\n"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        fail(f"kcat -C {topic}: {out.stderr[-500:]}")
    msgs = []
    for line in out.stdout.splitlines():
        if not line:
            continue
        key, value, hdrs = line.split("\t", 2)
        msgs.append((key, value, dict(h.split("=", 1) for h in hdrs.split(",") if "=" in h)))
    return msgs


def wait_messages(brokers, topic, pred, timeout=20):
    """The messages of topic matching pred, polled until there is one (or
    timeout seconds passed: then [])."""
    deadline = time.time() + timeout
    while True:
        msgs = [m for m in kafka_messages(brokers, topic) if pred(m)]
        if msgs or time.time() > deadline:
            return msgs
        time.sleep(0.5)


def one(spans, what, pred):
    found = [s for s in spans if pred(s)]
    if len(found) != 1:
        fail(f"expected exactly one {what}, found {len(found)} among "
             f"{sorted((s['name'], s['resource'].get('service.instance.id', '')) for s in spans)}")
    return found[0]


def check_consume(svc, rx, kafka):
    given = new_traceparent()
    trace_id, parent_id = parts(given)
    event = {"user_id": "1", "video_id": "2571", "watched_duration": 600, "total_duration": 600,
             "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device": "tv"}
    out = subprocess.run(["kcat", "-b", kafka.brokers, "-P", "-t", kafka.topics["watched"], "-K",
                          "\t", "-H", f"traceparent={given}"],
                         input=f"1\t{json.dumps(event)}\n", capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        fail(f"kcat -P: {out.stderr[-500:]}")
    spans = rx.wait_for_spans(lambda s: s["traceId"] == trace_id, count=2, timeout=20)
    spans = rx.trace(trace_id)
    consume = one(spans, "kafka.consume span", lambda s: s["name"] == "kafka.consume")
    a = consume["attributes"]
    check(consume["kind"] == CONSUMER and consume["parentSpanId"] == parent_id,
          "kafka.consume is a CONSUMER span, child of the producer's span")
    check(a.get("messaging.system") == "kafka"
          and a.get("messaging.destination.name") == kafka.topics["watched"]
          and isinstance(a.get("messaging.destination.partition.id"), int)
          and isinstance(a.get("messaging.kafka.offset"), int)
          and a.get("recsd.event.valid") is True and a.get("recsd.user_id") == "1"
          and a.get("recsd.video_id") == "2571",
          f"consume attributes: {a}")
    check(consume["resource"].get("service.instance.id", "").startswith("event-ingestor"),
          f"from the event-ingestor ({consume['resource']})")
    fold = one(spans, "ranker.interaction span", lambda s: s["name"] == "ranker.interaction")
    check(fold["parentSpanId"] == consume["spanId"],
          "the ranker's fold-in is a child of the consume span (through the notice)")
    check(fold["resource"].get("service.instance.id", "").startswith("ranker"),
          f"the fold-in is the ranker's ({fold['resource']})")
    print(f"consume: {len(spans)} spans in trace {trace_id}: "
          f"{sorted(s['name'] for s in spans)}", flush=True)


def check_training(svc, rx, kafka):
    given = new_traceparent()
    trace_id, parent_id = parts(given)
    status, doc = svc.api("POST", "/api/v1/recs/train", {"model_type": "popularity"},
                          headers={"traceparent": given})
    check(status == 202, f"training queued ({status} {doc})")
    model_id = doc["model_id"]
    job = rx.wait_for_spans(lambda s: s["traceId"] == trace_id and s["name"] == "training.job",
                            timeout=120)
    check(job, "a training.job span in the request's trace")
    # Both events are produced after the job ends; wait for them.
    rx.wait_for_spans(lambda s: s["traceId"] == trace_id and s["name"] == "kafka.produce",
                      count=2, timeout=30)
    spans = rx.trace(trace_id)
    gw = one(spans, "gateway SERVER span", lambda s: s["kind"] == SERVER)
    check(gw["parentSpanId"] == parent_id, "the gateway's span is the given span's child")
    job = one(spans, "training.job span", lambda s: s["name"] == "training.job")
    check(job["kind"] == CONSUMER and job["parentSpanId"] == gw["spanId"],
          "training.job continues the request's trace under the gateway's span")
    a = job["attributes"]
    check(a.get("recsd.model_id") == model_id and a.get("recsd.model_type") == "popularity"
          and a.get("recsd.trigger") == "manual" and "recsd.gate_passed" in a,
          f"training.job attributes: {a}")
    check(job["resource"].get("service.instance.id", "").startswith("trainer"),
          f"training.job is the trainer's ({job['resource']})")
    phases = {s["name"] for s in rx.children(spans, job)}
    want = {"training.load", "training.split", "training.train", "training.evaluate",
            "training.write", "training.upload"}
    check(want <= phases, f"one span per phase under the job: {sorted(phases)}")
    for s in rx.children(spans, job):
        check(job["start"] <= s["start"] <= s["end"] <= job["end"],
              f"{s['name']} lies within the job")
    produced = [s for s in spans if s["name"] == "kafka.produce"]
    by_topic = {s["attributes"].get("messaging.destination.name"): s for s in produced}
    check({TOPIC_STARTED, TOPIC_COMPLETED} <= set(by_topic),
          f"producer spans for both training events: {sorted(by_topic)}")
    for topic in (TOPIC_STARTED, TOPIC_COMPLETED):
        span = by_topic[topic]
        check(span["kind"] == PRODUCER and span["parentSpanId"] == gw["spanId"],
              f"{topic}: a PRODUCER span under the request's span (the run's context)")
        # The span ends when the message is handed to librdkafka; its
        # delivery to the broker may come a moment later.
        msgs = wait_messages(kafka.brokers, topic, lambda m, key=model_id: m[0] == key)
        check(len(msgs) == 1, f"{topic}: one message for {model_id} ({len(msgs)})")
        header = msgs[0][2].get("traceparent", "")
        check(header.split("-")[1:3] == [trace_id, span["spanId"]],
              f"{topic}: the message's traceparent names its producer span ({header})")
    print(f"training: {len(spans)} spans in trace {trace_id}: {sorted(phases)}", flush=True)


def check_refreshed(svc, rx, kafka):
    given = new_traceparent()
    trace_id, _ = parts(given)
    user = "7"
    status, doc = svc.api("GET", f"/api/v1/recs/{user}?limit=5&type=popularity",
                          headers={"traceparent": given})
    check(status == 200 and doc["source"] != "cache", f"a fresh list for {user} ({status} {doc})")
    spans = rx.wait_for_spans(lambda s: s["traceId"] == trace_id and s["name"] == "kafka.produce",
                              timeout=20)
    check(spans, "a producer span for RecommendationsRefreshed in the request's trace")
    span = spans[0]
    check(span["attributes"].get("messaging.destination.name") == TOPIC_REFRESHED,
          f"to {TOPIC_REFRESHED}: {span['attributes']}")
    parent = [s for s in rx.trace(trace_id) if s["spanId"] == span["parentSpanId"]]
    check(parent and parent[0]["resource"].get("service.instance.id", "").startswith("ranker"),
          "its parent is a span of the ranker that computed the list")
    msgs = wait_messages(kafka.brokers, TOPIC_REFRESHED,
                         lambda m: m[2].get("traceparent", "").split("-")[1:2] == [trace_id])
    check(msgs and msgs[0][2]["traceparent"].split("-")[2] == span["spanId"],
          "the message's traceparent names its producer span")


def main():
    tag = uuid.uuid4().hex[:8]
    kafka = Kafka(tag, prefix="trace")
    db = MovieLensDatabase("tracepipe")
    try:
        with OtlpReceiver() as rx:
            env = dict(kafka.env(), RECSD_PG_DSN=db.dsn, RECSD_TRAIN_INTERVAL_S="0",
                       RECSD_TRAIN_POLL_MS="200", RECSD_INGEST_BATCH_MS="20",
                       OTEL_EXPORTER_OTLP_ENDPOINT=rx.endpoint, OTEL_BSP_SCHEDULE_DELAY="50",
                       OTEL_SERVICE_NAME="recsd-it")
            with Service(env=env) as svc:
                svc.wait_for(lambda: any(line.get("msg", "").startswith("assigned ")
                                         for line in svc.log_lines()), 30,
                             "the ingestor to get partitions")
                check_training(svc, rx, kafka)
                check_consume(svc, rx, kafka)
                check_refreshed(svc, rx, kafka)
                check(not rx.errors(), f"every export was OTLP JSON: {rx.errors()}")
    finally:
        kafka.close()
        db.close()
    print("PASS", flush=True)


main()
