"""otlp_receiver.py: a small OpenTelemetry collector for integration tests.

It accepts OTLP/HTTP JSON (POST /v1/traces, Content-Type application/json)
on a free loopback port and keeps every span it gets, flattened:

    from otlp_receiver import OtlpReceiver

    with OtlpReceiver() as rx:                       # started on a free port
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": rx.endpoint,
               "OTEL_BSP_SCHEDULE_DELAY": "100"}
        ...                                          # run recsd with env
        spans = rx.wait_for_spans(lambda s: s["name"] == "GET /health", timeout=10)
        trace = rx.traces()[spans[0]["traceId"]]     # every span of that trace

A span is a dict:
    traceId, spanId, parentSpanId ("" for a root), name, kind (int, OTLP
    SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer),
    start, end (int ns), attributes ({key: python value; intValue as int}),
    status ({} or {"code": 2, "message": ...}), resource ({key: value}, the
    resource attributes: service.name, service.instance.id, process.pid,
    recsd.actor, ...), scope (the instrumentation scope's name).

Options: OtlpReceiver(status=200, delay=0.0): answer every POST with that
HTTP status after sleeping delay seconds (a failing or stalled collector).
Both may be changed on the instance while it runs. Requests are kept too
(rx.requests(): list of (path, headers dict with lower-case names, body
bytes)), for tests of headers.

Everything is standard library; one thread serves (ThreadingHTTPServer),
stop() shuts it down and joins it. Nothing is written to disk.
"""
import http.server
import json
import socket
import threading
import time

__all__ = ["OtlpReceiver", "SPAN_KIND"]

SPAN_KIND = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}


def _value(v):
    """The python value of an OTLP AnyValue."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])  # int64 is a JSON string in OTLP JSON
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return _attrs(v["kvlistValue"].get("values", []))
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def _attrs(items):
    return {a["key"]: _value(a.get("value", {})) for a in items or []}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # noqa: D401 - quiet: tests print their own
        pass

    def do_POST(self):  # noqa: N802 - http.server's naming
        rx = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        if rx.delay:
            time.sleep(rx.delay)
        status = rx.status
        rx._record(self.path, headers, body, accept=(status // 100 == 2))
        answer = b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class OtlpReceiver:
    """A collector on 127.0.0.1:<free port>; see the module docstring."""

    def __init__(self, status=200, delay=0.0):
        self.status = status
        self.delay = delay
        self._lock = threading.Condition()
        self._spans = []
        self._requests = []
        self._errors = []
        self._server = None
        self._thread = None
        self.port = None

    # -- life cycle --------------------------------------------------------

    def start(self):
        """Binds a free loopback port and serves in a thread. Returns self."""
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.receiver = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops serving and closes the port; idempotent."""
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def endpoint(self):
        """The base URL for OTEL_EXPORTER_OTLP_ENDPOINT ("/v1/traces" is appended)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self):
        """The full URL, for OTEL_EXPORTER_OTLP_TRACES_ENDPOINT."""
        return self.endpoint + "/v1/traces"

    @staticmethod
    def closed_endpoint():
        """A loopback URL nobody listens on (for exports that must fail)."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return f"http://127.0.0.1:{s.getsockname()[1]}"

    # -- what arrived ------------------------------------------------------

    def _record(self, path, headers, body, accept):
        spans = []
        error = None
        if path == "/v1/traces" and accept:
            try:
                doc = json.loads(body)
                for rs in doc.get("resourceSpans", []):
                    resource = _attrs(rs.get("resource", {}).get("attributes"))
                    for ss in rs.get("scopeSpans", []):
                        scope = ss.get("scope", {}).get("name", "")
                        for s in ss.get("spans", []):
                            spans.append({
                                "traceId": s.get("traceId", ""),
                                "spanId": s.get("spanId", ""),
                                "parentSpanId": s.get("parentSpanId", ""),
                                "name": s.get("name", ""),
                                "kind": s.get("kind", 0),
                                "start": int(s.get("startTimeUnixNano", 0)),
                                "end": int(s.get("endTimeUnixNano", 0)),
                                "attributes": _attrs(s.get("attributes")),
                                "status": s.get("status", {}),
                                "resource": resource,
                                "scope": scope,
                            })
            except (ValueError, AttributeError, TypeError) as exc:
                error = f"{path}: not OTLP JSON: {exc}"
        with self._lock:
            self._requests.append((path, headers, body))
            self._spans.extend(spans)
            if error:
                self._errors.append(error)
            self._lock.notify_all()

    def spans(self):
        """Every span received so far (a copy)."""
        with self._lock:
            return list(self._spans)

    def requests(self):
        """Every POST so far: (path, headers, body)."""
        with self._lock:
            return list(self._requests)

    def errors(self):
        """Bodies that were not OTLP JSON (should stay empty)."""
        with self._lock:
            return list(self._errors)

    def clear(self):
        with self._lock:
            self._spans.clear()
            self._requests.clear()
            self._errors.clear()

    def wait_for_spans(self, predicate=None, count=1, timeout=10.0):
        """Waits until at least count spans match predicate (all spans when
        None); returns the matching ones, or [] after timeout seconds."""
        deadline = time.time() + timeout
        with self._lock:
            while True:
                found = [s for s in self._spans if predicate is None or predicate(s)]
                if len(found) >= count:
                    return found
                left = deadline - time.time()
                if left <= 0:
                    return []
                self._lock.wait(left)

    def traces(self):
        """The spans grouped by trace id: {traceId: [span, ...]} (start order)."""
        groups = {}
        for s in self.spans():
            groups.setdefault(s["traceId"], []).append(s)
        for spans in groups.values():
            spans.sort(key=lambda s: s["start"])
        return groups

    def trace(self, trace_id):
        """The spans of one trace, in start order ([] if none)."""
        return self.traces().get(trace_id, [])

    @staticmethod
    def children(spans, parent):
        """The spans in spans whose parent is the span parent."""
        return [s for s in spans if s["parentSpanId"] == parent["spanId"]]
