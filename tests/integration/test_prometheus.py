#!/usr/bin/env python3
"""test_prometheus.py: the alerting rules of ops/prometheus/ against a real
Prometheus scraping a real recsd.

1. promtool checks the rule files and runs their unit tests
   (ops/prometheus/tests/*.yml: every alert firing and not firing).
2. A private `recsd run` (all five actors, its own database and mock Kafka,
   tracing on: OTEL_EXPORTER_OTLP_ENDPOINT points at a real OTLP/HTTP
   receiver in this process, otlp_receiver.py, because
   recsd_trace_spans_total, which RecsdTraceSpansLost reads, exists only
   with tracing on) and a Prometheus (temp dir, free loopback port, 1 s
   scrape and rule evaluation) that scrapes it as job "recsd" with the rule
   files loaded.
3. Prometheus sees the target up and the actors' series; every raw metric
   name the rules read exists in what recsd exports (so a renamed metric
   breaks this test, not the pager); every rule is loaded and evaluates
   without error; the recording rules compute from live data (answers,
   error ratio 0, per-pod p95, span rate with a loss ratio of 0).
4. The ranker is frozen (SIGSTOP): the gateway answers from its fallback,
   the supervisor kills and restarts the ranker after its heartbeat timeout,
   and Prometheus computes an error ratio above 1% and a ranker restart, and
   holds RecsdRecommendationErrorRateHigh pending.
5. The collector answers 503: the traced actors count failed exports,
   Prometheus computes a span loss ratio above 1% and holds
   RecsdTraceSpansLost pending (for: 15m), severity warning.

Needs Debian's `prometheus` package (prometheus and promtool): without it
the test fails and says so. Needs RECSD_BIN, RECSD_PG_DSN, RECSD_REDIS_URL
(ops/test.sh, or eval "$(ops/devstack.sh env)"), kcat and psql.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Service, check, fail, free_port, require_env  # noqa: E402
from otlp_receiver import OtlpReceiver  # noqa: E402
from test_ingest import Database, Kafka, make_events, service_env, wait_assigned  # noqa: E402

SOURCE = os.environ.get("RECSD_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
PROM_DIR = os.path.abspath(os.path.join(SOURCE, "ops", "prometheus"))
RULE_FILES = [os.path.join(PROM_DIR, "rules", f) for f in ("recording.yml", "alerts.yml")]
RECS = "/api/v1/recs/1?limit=5"


def tool(name):
    path = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin")
    if not path:
        fail(f"{name} is not installed: this test needs Debian's `prometheus` package "
             "(apt-get install prometheus; ops/install-deps.sh lists it)")
    return path


def run(cmd, what):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    check(out.returncode == 0, f"{what}" + ("" if out.returncode == 0 else
                                            f": rc {out.returncode}\n{out.stdout}{out.stderr}"))
    return out.stdout


def rule_metric_names():
    """Every recsd metric name the rule files mention, in expressions and in
    the runbook notes alike (recording-rule names contain ':' and are not
    matched; `up` comes from Prometheus)."""
    names = set()
    for path in RULE_FILES:
        with open(path) as f:
            for line in f:
                if not line.lstrip().startswith("#"):
                    names.update(re.findall(r"(?<![\w:])(recsd_[a-z0-9_]+)(?![\w:])", line))
    return names


def missing_names(wanted, found):
    """Names of wanted not in found; a histogram counts by its _bucket series."""
    return {n for n in wanted if n not in found and n + "_bucket" not in found}


class Prometheus:
    """A real Prometheus in a temp dir on a free loopback port."""

    def __init__(self, binary, promtool, target_port):
        self.dir = tempfile.mkdtemp(prefix="recsd-it-prom-", dir="/tmp")
        self.port = free_port()
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            f.write(json.dumps({  # JSON is YAML: no PyYAML needed here
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                           "scrape_timeout": "1s"},
                "rule_files": RULE_FILES,
                "scrape_configs": [{
                    "job_name": "recsd",
                    "static_configs": [{
                        "targets": [f"127.0.0.1:{target_port}"],
                        # What the Kubernetes relabelling adds (prometheus.example.yml).
                        "labels": {"namespace": "it", "pod": "recsd-it-0"}}]}]}, indent=1))
        run([promtool, "check", "config", self.config], "promtool check config (the test's own)")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.config}",
             f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail(f"prometheus exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready",
                                            timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        fail(f"prometheus not ready after 30 s:\n{self.logs()[-3000:]}")

    def logs(self):
        with open(os.path.join(self.dir, "prometheus.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.loads(resp.read())
        if body.get("status") != "success":
            fail(f"prometheus {path} {params}: {body}")
        return body["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]

    def wait(self, predicate, timeout, what):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.5)
        fail(f"timed out after {timeout}s waiting for {what}")

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def value(result):
    return float(result[0]["value"][1]) if result else None


def get_source(svc):
    status, _, body = svc.get(RECS, timeout=10)
    if status != 200:
        fail(f"GET {RECS}: {status} {body[:200]}")
    return json.loads(body)["source"]


def main():
    require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")
    promtool, prometheus = tool("promtool"), tool("prometheus")

    # 1. Static checks and unit tests of the rules.
    run([promtool, "check", "rules", *RULE_FILES], "promtool check rules")
    tests = sorted(os.path.join(PROM_DIR, "tests", f)
                   for f in os.listdir(os.path.join(PROM_DIR, "tests")) if f.endswith(".yml"))
    check(bool(tests), f"rule unit tests exist ({len(tests)} files)")
    run([promtool, "test", "rules", *tests], "promtool test rules (each alert firing and not)")
    wanted = rule_metric_names()
    check(len(wanted) >= 8, f"the rules read {len(wanted)} recsd metrics: {sorted(wanted)}")
    # Not an allow-list: the recsd below runs with tracing on, so this
    # series must be scraped like every other one.
    check("recsd_trace_spans_total" in wanted,
          "the rules read recsd_trace_spans_total (exported only with tracing on)")

    # 2. A real recsd and a real Prometheus scraping it.
    tag = uuid.uuid4().hex[:8]
    kafka, db = Kafka(tag, prefix="prom", catalogue=True), Database(f"prom_{tag}")
    prom = None
    rx = OtlpReceiver().start()
    try:
        # Tracing on (default sampler: every request), exporting to the
        # receiver every 100 ms.
        env = service_env(kafka, db.dsn, {"RECSD_RANKER_DEADLINE_MS": "500",
                                          "RECSD_HEARTBEAT_TIMEOUT_MS": "3000",
                                          "OTEL_EXPORTER_OTLP_ENDPOINT": rx.endpoint,
                                          "OTEL_BSP_SCHEDULE_DELAY": "100"})
        with Service(env=env) as svc:
            wait_assigned(svc)
            # The gateway prints a route's series from its first request on:
            # one before the first scrape, so that the later ones are an
            # increase Prometheus can see (a series born at 20 has rate 0).
            check(get_source(svc) == "model", "a first answer, computed by the ranker")
            prom = Prometheus(prometheus, promtool, svc.port)

            # 3. Scraped, and every metric the rules read is exported.
            prom.wait(lambda: value(prom.query('up{job="recsd"}')) == 1, 30,
                      "Prometheus to scrape recsd (up == 1)")
            check(True, "Prometheus scrapes recsd: up{job=\"recsd\"} == 1")
            actors = prom.wait(lambda: len(r := prom.query('recsd_actor_up{job="recsd"} == 1'))
                               == 5 and r, 30, "five actors up in Prometheus")
            check(sorted(a["metric"]["actor"] for a in actors) ==
                  ["event-ingestor", "http-gateway", "publisher", "ranker", "trainer"],
                  "recsd_actor_up is 1 for the five actors, as Prometheus stores it")

            # The consumer lag gauge appears once a partition had a message.
            lines, _ = make_events(4, tag, users=2)
            kafka.produce("watched", lines["watched"])
            sources = [get_source(svc) for _ in range(20)]
            check(set(sources) == {"model"}, "20 baseline answers computed by the ranker")

            last = {}

            def exported():
                found = {r["metric"]["__name__"] for r in prom.query(
                    'group by (__name__) ({__name__=~"recsd_.+", job="recsd"})')}
                last["missing"] = missing_names(wanted, found)
                return not last["missing"] and found
            deadline = time.time() + 60
            while not (found := exported()) and time.time() < deadline:
                time.sleep(0.5)
            if not found:
                fail(f"metrics the rules name but recsd does not export: {sorted(last['missing'])}")
            check(True, f"every metric the rules read is scraped ({len(found)} recsd series "
                        "names in Prometheus)")

            # Every rule loaded from the files and evaluated without error.
            def rules_ok():
                groups = prom.api("rules")["groups"]
                by_name = {g["name"]: g for g in groups}
                if set(by_name) != {"recsd.recording", "recsd.alerts"}:
                    return None
                rules = [r for g in groups for r in g["rules"]]
                if all(r.get("health") == "ok" and r.get("lastEvaluation", "").startswith("2")
                       for r in rules):
                    return by_name
                return None
            groups = prom.wait(rules_ok, 30, "both rule groups loaded and evaluated ok")
            alert_names = sorted(r["name"] for r in groups["recsd.alerts"]["rules"])
            check(len(groups["recsd.recording"]["rules"]) >= 10 and "RecsdConsumerLagGrowing"
                  in alert_names and "RecsdRecommendationErrorRateHigh" in alert_names,
                  f"/api/v1/rules: {len(groups['recsd.recording']['rules'])} recording rules and "
                  f"alerts {alert_names}, every one health ok")

            # Recording rules compute from live data.
            answers = prom.wait(lambda: (v := value(prom.query(
                'namespace_job:recsd_recs_answers:rate5m{job="recsd"}'))) and v > 0 and v, 30,
                "the answer rate to be recorded")
            ratio = value(prom.query('namespace_job:recsd_recs_error_ratio:rate5m{job="recsd"}'))
            check(ratio == 0.0, f"answer rate {answers:.3f}/s, error ratio {ratio} (no fallback)")
            p95 = prom.wait(lambda: value(prom.query(
                'namespace_pod:recsd_http_request_duration_seconds:p95_2m{pod="recsd-it-0"} > 0')),
                30, "the per-pod p95 the HPA reads (a number, not NaN)")
            check(0 < p95 <= 2.5, f"per-pod p95 for the HPA recorded: {p95 * 1000:.1f} ms")
            # Tracing: every traced actor's three counters (at least the
            # gateway's and the ranker's, which trace every request), spans
            # exported (no more than the receiver got), nothing lost.
            def span_counters():
                keys = {(r["metric"]["actor"], r["metric"]["result"])
                        for r in prom.query('recsd_trace_spans_total{job="recsd"}')}
                actors = {a for a, _ in keys}
                whole = keys == {(a, r) for a in actors for r in ("exported", "dropped", "failed")}
                return whole and {"http-gateway", "ranker"} <= actors and sorted(actors)
            actors = prom.wait(span_counters, 30, "the span counters of gateway and ranker")
            check(True, f"recsd_trace_spans_total scraped (exported, dropped, failed) for {actors}")
            span_rate = prom.wait(lambda: (v := value(prom.query(
                'namespace_job:recsd_trace_spans:rate10m{job="recsd"}'))) and v > 0 and v, 30,
                "the span rate to be recorded")
            exported = value(prom.query('sum(recsd_trace_spans_total{job="recsd",result="exported"})'))
            received = len(rx.spans())
            loss = value(prom.query('namespace_job:recsd_trace_spans_loss_ratio:rate10m{job="recsd"}'))
            check(0 < exported <= received and loss == 0.0,
                  f"span rate {span_rate:.3f}/s, {exported:.0f} exported ({received} received by "
                  f"the collector), loss ratio {loss}")
            firing = [a["labels"]["alertname"] for a in prom.api("alerts")["alerts"]]
            check("RecsdRecommendationErrorRateHigh" not in firing and
                  "RecsdTraceSpansLost" not in firing and
                  "RecsdTargetDown" not in firing, f"healthy service, alerts active: {firing}")

            # 4. Freeze the ranker: fallback answers, then a kill and restart.
            ranker = svc.actor("ranker")
            os.kill(ranker["pid"], signal.SIGSTOP)
            print(f"SIGSTOP ranker pid {ranker['pid']}", flush=True)
            sources = [get_source(svc) for _ in range(4)]
            check(sources.count("fallback") == 4, f"frozen ranker: fallback answers {sources}")
            svc.wait_for(lambda: svc.actor("ranker")["restarts"] >= 1
                         and svc.actor("ranker")["state"] == "running", 30,
                         "the supervisor to restart the frozen ranker")
            ratio = prom.wait(lambda: (v := value(prom.query(
                'namespace_job:recsd_recs_error_ratio:rate5m{job="recsd"}'))) and v > 0.01 and v,
                30, "an error ratio above 1%")
            check(ratio > 0.01, f"error ratio recorded: {ratio:.3f} (4 fallbacks after 21 model answers)")
            pending = prom.wait(lambda: [a for a in prom.api("alerts")["alerts"]
                                         if a["labels"]["alertname"] ==
                                         "RecsdRecommendationErrorRateHigh"], 30,
                                "RecsdRecommendationErrorRateHigh to become active")
            check(pending[0]["state"] == "pending" and pending[0]["labels"]["severity"] ==
                  "critical", f"RecsdRecommendationErrorRateHigh {pending[0]['state']} "
                  "(for: 5m), severity critical")
            restarts = prom.wait(lambda: value(prom.query(
                'namespace_job_actor:recsd_actor_restarts:increase15m{actor="ranker"} > 0')),
                30, "the ranker restart in the recorded restarts")
            check(restarts > 0, f"ranker restarts recorded by Prometheus: {restarts:.2f}")

            # 5. The collector fails every export: spans lost.
            rx.status = 503
            codes = [svc.get(RECS, timeout=10)[0] for _ in range(20)]
            check(codes == [200] * 20, "20 answers while the collector answers 503")
            loss = prom.wait(lambda: (v := value(prom.query(
                'namespace_job:recsd_trace_spans_loss_ratio:rate10m{job="recsd"}'))) and v > 0.01
                and v, 30, "a span loss ratio above 1%")
            failed = value(prom.query('sum(recsd_trace_spans_total{job="recsd",result="failed"})'))
            check(failed > 0, f"span loss ratio recorded: {loss:.3f} ({failed:.0f} spans failed)")
            pending = prom.wait(lambda: [a for a in prom.api("alerts")["alerts"]
                                         if a["labels"]["alertname"] == "RecsdTraceSpansLost"],
                                30, "RecsdTraceSpansLost to become active")
            check(pending[0]["state"] == "pending" and pending[0]["labels"]["severity"] ==
                  "warning", f"RecsdTraceSpansLost {pending[0]['state']} (for: 15m), "
                  "severity warning")
    finally:
        if prom:
            prom.close()
        rx.stop()
        kafka.close()
        db.close()
    print("PASS: Prometheus scrapes recsd and evaluates the rules", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
