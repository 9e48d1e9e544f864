#!/usr/bin/env python3
"""test_publisher_events.py: the publisher's in-memory event queue, for real.

`recsd run` with RECSD_ACTORS=publisher against `recsd dev-kafka --control`
(librdkafka's mock cluster; PostgreSQL is deliberately unreachable: events
do not depend on it). This script plays the ranker's part with python3-zmq
and python3-msgpack: a PUSH socket to ipc://<runtime_dir>/publisher-events,
messages encoded as proto/proto_event.h documents them.

1. 200 RecommendationsRefreshed events and 3 malformed messages: every
   event reaches recommendation-service.recommendations-refreshed once with
   its key, headers and the payload bytes as sent; the publisher's metrics
   (read from the admin socket's status reply) count 203 received, 3
   invalid, 200 produced; status handled counts them.
2. Every broker down. (a) 100,000 events flooded with NOBLOCK sends, as
   fast as Python goes: no send waits, every message is accounted for
   (received by the publisher or refused at once by ZeroMQ). (b) 100,000
   more, a refused send retried after 0.5 ms so all reach the publisher:
   it drops (and counts) all but what its queue and in-flight bound hold,
   its queue gauge and status queue depth stay bounded, it answers status
   and is never restarted.
3. Brokers up again: the 20,000 held events are each produced or failed
   (counted), the queue empties, new events are produced again; SIGTERM
   exits 0 and the totals are logged.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

try:
    import msgpack
    import zmq
except ImportError as e:  # Debian: apt-get install python3-zmq python3-msgpack
    print(f"FAIL: {e}: install python3-zmq and python3-msgpack")
    sys.exit(1)

from harness import BIN, Service, check, fail, free_port, read_line

TOPIC = "recommendation-service.recommendations-refreshed"
HEADERS = {"content-type": "application/json", "event-type": "RecommendationsRefreshed"}
QUEUE_MAX = 10000     # PUBLISHER_EVENTS_QUEUE_MAX
INFLIGHT_MAX = 10000  # PUBLISHER_EVENTS_INFLIGHT_MAX


class DevKafka:
    """`recsd dev-kafka --control`: faults injected through stdin."""

    def __init__(self):
        self.proc = subprocess.Popen([BIN, "dev-kafka", "--control"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = read_line(self.proc, 10) or ""
        if not line.startswith("127.0.0.1:"):
            self.stop()
            fail(f"dev-kafka gave no bootstrap line (got {line!r})")
        self.bootstrap = line

    def command(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        got = read_line(self.proc, 10)
        if got != "ok":
            fail(f"dev-kafka control {line!r}: {got!r}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            f.close()


def event(user, ids, model="als-1", ts="2026-11-29T02:50:38.123Z"):
    payload = json.dumps({"user_id": user, "recommendation_ids": ids, "model_id": model,
                          "timestamp": ts}, separators=(",", ":"))
    return payload, msgpack.packb([1, TOPIC, user, payload, HEADERS])


def consume(bootstrap):
    """Every message on TOPIC as (key, headers text, value)."""
    out = subprocess.run(["kcat", "-b", bootstrap, "-C", "-t", TOPIC, "-o", "beginning", "-e",
                          "-q", "-f", "%k\t%h\t%s\n"], capture_output=True, timeout=60)
    if out.returncode != 0:
        fail(f"kcat -C {TOPIC}: {out.stderr.decode()}")
    return [tuple(line.split("\t", 2)) for line in out.stdout.decode().splitlines() if line]


class Admin:
    """PROTO_STATUS_REQ on the supervisor's admin socket: the status rows
    with each actor's metrics text (recsd ctl status does not print it)."""

    def __init__(self, ctx, svc):
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(svc.endpoint("admin"))
        self.n = 0

    def publisher_metrics(self):
        self.n += 1
        rid = f"it-{self.n}"
        self.sock.send(msgpack.packb([1, 4, rid, "", 0, {}]))
        deadline = time.time() + 5
        while time.time() < deadline:
            if self.sock.poll(int((deadline - time.time()) * 1000) + 1):
                reply = msgpack.unpackb(self.sock.recv())
                if reply[1] == 5 and reply[2] == rid:
                    break
        else:
            fail("no status reply from the admin socket within 5 s")
        for row in reply[5]["actors"]:
            if row["name"] == "publisher":
                figures = {}
                for line in (row.get("metrics") or "").splitlines():
                    if line.startswith("recsd_publisher_"):
                        name, value = line.split("{")[0], line.rsplit(" ", 1)[1]
                        figures[name] = int(value)
                return figures
        fail(f"no publisher row in {reply}")

    def close(self):
        self.sock.close()


def wait_metric(svc, admin, name, want, timeout):
    return svc.wait_for(lambda: admin.publisher_metrics().get(name, -1) >= want, timeout,
                        f"{name} >= {want}")


def part_exact(svc, kafka, ctx, push, admin):
    sent = {}
    for i in range(200):
        user = f"user-{i}"
        payload, frame = event(user, [f"v{i}", f"v{i + 1}", "caf\u00e9"],
                               model=None if i == 7 else "als-1")
        push.send(frame)
        sent[user] = payload
    push.send(b"not msgpack at all")
    push.send(msgpack.packb([1, TOPIC, "k", "[1,2]", {}]))  # payload not an object
    push.send_multipart([b"two", b"frames"])
    wait_metric(svc, admin, "recsd_publisher_events_produced_total", 200, 20)
    m = admin.publisher_metrics()
    check(m["recsd_publisher_events_received_total"] == 203, f"203 received ({m})")
    check(m["recsd_publisher_events_invalid_total"] == 3, "3 malformed rejected")
    check(m["recsd_publisher_events_produced_total"] == 200, "200 produced")
    check(m["recsd_publisher_events_dropped_total"] == 0 and
          m["recsd_publisher_events_failed_total"] == 0, "none dropped or failed")
    check(m["recsd_publisher_events_queued"] == 0, "queue empty")
    got = consume(kafka.bootstrap)
    check(len(got) == 200, f"200 messages on {TOPIC} ({len(got)})")
    by_key = {}
    for key, headers, value in got:
        by_key.setdefault(key, []).append((headers, value))
    check(set(by_key) == set(sent) and all(len(v) == 1 for v in by_key.values()),
          "each event exactly once, keyed by user_id")
    for user, payload in sent.items():
        headers, value = by_key[user][0]
        if value != payload:
            fail(f"{user}: value {value!r}, sent {payload!r}")
        if sorted(headers.split(",")) != sorted(f"{k}={v}" for k, v in HEADERS.items()):
            fail(f"{user}: headers {headers!r}")
    check(True, "values are the payloads as sent, headers as sent")
    doc = json.loads(by_key["user-7"][0][1])
    check(sorted(doc) == ["model_id", "recommendation_ids", "timestamp", "user_id"]
          and doc["model_id"] is None, "the documented RecommendationsRefreshed fields")
    row = svc.actor("publisher")
    check(row["handled"] == 200 and row["queue_depth"] == 0,
          f"status counts produced events as handled ({row})")
    lines = [line for line in svc.log_lines() if "malformed events rejected" in line.get("msg", "")]
    check(1 <= len(lines) <= 2, f"malformed events logged, not once each ({len(lines)})")


def flood(push, frame, total, retry):
    """Sends total frames with NOBLOCK. retry: a refused send is tried again
    after 0.5 ms (so every frame reaches the publisher), else given up
    (what a real sender does: drop). Returns (seconds, refusals, slowest)."""
    refused, slowest, start = 0, 0.0, time.time()
    for _ in range(total):
        while True:
            t = time.perf_counter()
            try:
                push.send(frame, zmq.NOBLOCK)
                ok = True
            except zmq.Again:
                refused, ok = refused + 1, False
            slowest = max(slowest, time.perf_counter() - t)
            if ok or not retry:
                break
            time.sleep(0.0005)
    return time.time() - start, refused, slowest


def part_flood(svc, kafka, ctx, push, admin):
    before = admin.publisher_metrics()
    kafka.command("broker-down all")
    _, frame = event("flood", [f"v{i}" for i in range(10)])
    total = 100000

    # (a) As fast as Python can send: ZeroMQ refuses what does not fit at
    # once, the sender never waits; every message is accounted for.
    took, refused, slowest = flood(push, frame, total, retry=False)
    print(f"flood, no retry: {total} sends in {took:.2f}s, {refused} refused at once,"
          f" slowest send {slowest * 1000:.2f} ms")
    check(took < 30, f"the flood never blocked the sender ({took:.1f}s)")
    want = before["recsd_publisher_events_received_total"] + total - refused
    wait_metric(svc, admin, "recsd_publisher_events_received_total", want, 30)
    m = admin.publisher_metrics()
    received = m["recsd_publisher_events_received_total"] - \
        before["recsd_publisher_events_received_total"]
    check(received + refused == total,
          f"every message accounted for: {received} received + {refused} refused")

    # (b) Every message delivered to the publisher (the sender retries a
    # refusal): with Kafka down, what exceeds its queue and the in-flight
    # bound is dropped by the publisher and counted; it keeps draining.
    before = m
    took, refused, _ = flood(push, frame, total, retry=True)
    print(f"flood, retried: {total} messages in {took:.2f}s ({refused} refusals retried)")
    want = before["recsd_publisher_events_received_total"] + total
    wait_metric(svc, admin, "recsd_publisher_events_received_total", want, 60)
    m = admin.publisher_metrics()
    row = svc.actor("publisher")
    dropped = m["recsd_publisher_events_dropped_total"] - \
        before["recsd_publisher_events_dropped_total"]
    check(dropped >= total - QUEUE_MAX - INFLIGHT_MAX,
          f"the publisher dropped and counted what did not fit ({dropped} of {total})")
    check(m["recsd_publisher_events_queued"] <= QUEUE_MAX + INFLIGHT_MAX and
          row["queue_depth"] <= QUEUE_MAX + INFLIGHT_MAX,
          f"queue bounded (gauge {m['recsd_publisher_events_queued']},"
          f" status {row['queue_depth']})")
    check(row["state"] == "running" and row["restarts"] == 0,
          f"publisher up, answering status, no restart ({row})")
    check(any("events dropped" in line.get("msg", "") for line in svc.log_lines()),
          "drops logged")
    print(f"flood: publisher dropped {dropped}, queued {m['recsd_publisher_events_queued']},"
          f" failed {m['recsd_publisher_events_failed_total']}")
    return m


def part_recover(svc, kafka, ctx, push, admin, flood_metrics):
    kafka.command("broker-up all")
    produced = flood_metrics["recsd_publisher_events_produced_total"]
    # What the publisher held through the outage is delivered or fails (it
    # never waits longer than the message timeout); until its queue has
    # room new events would be dropped, as they should.
    svc.wait_for(lambda: admin.publisher_metrics()["recsd_publisher_events_queued"] == 0, 60,
                 "the publisher's queue drained after the outage")
    m = admin.publisher_metrics()
    print(f"after the outage: produced {m['recsd_publisher_events_produced_total'] - produced},"
          f" failed {m['recsd_publisher_events_failed_total']} of the 20000 held")
    check(m["recsd_publisher_events_produced_total"] + m["recsd_publisher_events_failed_total"]
          == produced + QUEUE_MAX + INFLIGHT_MAX, "each held event produced or failed, once")
    produced = m["recsd_publisher_events_produced_total"]
    for i in range(5):
        payload, frame = event(f"after-{i}", ["v1"])
        push.send(frame)
    deadline = time.time() + 60
    while time.time() < deadline:
        keys = {k for k, _, _ in consume(kafka.bootstrap)}
        if all(f"after-{i}" in keys for i in range(5)):
            break
        time.sleep(1)
    else:
        fail("events after the outage did not reach Kafka within 60 s")
    check(True, "events flow again once the brokers are back")
    m = admin.publisher_metrics()
    check(m["recsd_publisher_events_produced_total"] >= produced + 5, "produced counts them")
    check(svc.actor("publisher")["restarts"] == 0, "no restart over the outage")


def main():
    if shutil.which("kcat") is None:
        fail("kcat is not installed")
    kafka = DevKafka()
    ctx = zmq.Context()
    try:
        env = {"RECSD_KAFKA_BROKERS": kafka.bootstrap,
               # Events do not need PostgreSQL; the outbox relay just waits.
               "RECSD_PG_DSN": f"postgresql://nobody@127.0.0.1:{free_port()}/none"
                               "?connect_timeout=1"}
        with Service(env=env, actors="publisher") as svc:
            push = ctx.socket(zmq.PUSH)
            push.setsockopt(zmq.LINGER, 0)
            push.setsockopt(zmq.SNDHWM, 100)
            push.setsockopt(zmq.IMMEDIATE, 1)
            push.connect(svc.endpoint("publisher-events"))
            admin = Admin(ctx, svc)
            try:
                time.sleep(0.2)  # the connect completes
                part_exact(svc, kafka, ctx, push, admin)
                m = part_flood(svc, kafka, ctx, push, admin)
                part_recover(svc, kafka, ctx, push, admin, m)
            finally:
                push.close()
                admin.close()
            check(svc.stop() == 0, "recsd run stops with status 0")
            check(any("publisher stopped" in line.get("msg", "") and "events produced" in
                      line.get("msg", "") for line in svc.log_lines()),
                  "the publisher logged its event totals on stop")
    finally:
        ctx.term()
        kafka.stop()
    print("PASS: publisher events: produced as sent, bounded and counted under a flood")
    return 0


if __name__ == "__main__":
    sys.exit(main())
