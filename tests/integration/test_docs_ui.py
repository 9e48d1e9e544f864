"""/docs (Swagger UI) and /redoc (ReDoc) in headless Chromium.

For each page: the HTML refers to its scripts, styles and icons by relative
(same-origin) URLs only, each of which the server answers with the right
Content-Type; Chromium (Debian's `chromium`, headless) renders the page, and
the rendered DOM lists every path of api/openapi.json (Swagger UI) or every
operation's summary (ReDoc); Chromium's network log shows that everything the
page itself requested came from the same origin (the browser's own update and
account pings are not the page's and are ignored) and that it fetched
openapi.json.

While the gateway answers a page with 404 (not served yet), that is printed
as SKIP, and the same checks run against the files ops/docs-assets.sh
assembles (the pinned swagger-ui-dist and redoc, api/docs/), served from a
loopback server laid out as the gateway is to serve them (/docs,
/docs/<file>, /redoc, /redoc/<file>, /openapi.json), so the pages are known
to work before the gateway serves them.
"""
import html.parser
import http.client
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import urllib.parse

from harness import BIN, Service, check, fail, free_port, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")

SOURCE = os.environ.get("RECSD_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
BUILD_DIR = os.path.dirname(os.path.abspath(BIN))
with open(os.path.join(SOURCE, "api", "openapi.json"), encoding="utf-8") as f:
    DOC = json.load(f)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
                 ".png": "image/png", ".json": "application/json"}


class Refs(html.parser.HTMLParser):
    """Every URL an HTML page refers to (src, href), and inline scripts."""

    def __init__(self):
        super().__init__()
        self.urls, self.inline_scripts = [], 0
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in ("src", "href"):
            if a.get(name):
                self.urls.append((tag, a[name]))
        self._in_script = tag == "script" and not a.get("src")

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag):
        self._in_script = False


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read()
    finally:
        conn.close()


def net_requests(netlog_path):
    """(initiator, url) of every request in a Chromium NetLog file."""
    with open(netlog_path, encoding="utf-8") as f:
        text = f.read()
    try:
        log = json.loads(text)
    except ValueError:  # cut short: close the events array
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [(e["params"].get("initiator", ""), e["params"]["url"]) for e in log["events"]
            if e.get("type") == start and "url" in e.get("params", {})]


def render(url, workdir):
    """The DOM of url after Chromium ran its scripts, and its requests."""
    profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir)
    netlog = os.path.join(profile, "netlog.json")
    # Flags as the machine's notes say: no background traffic, no sandbox
    # (root), a fresh profile. Virtual time lets the page's timers run
    # without waiting for them in real time.
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
           f"--log-net-log={netlog}", "--virtual-time-budget=30000", "--dump-dom", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if out.returncode != 0 or not out.stdout.strip():
        fail(f"chromium on {url}: rc {out.returncode}: {out.stderr[-2000:]}")
    return out.stdout, net_requests(netlog)


def check_page(port, page, workdir, where):
    origin = f"http://127.0.0.1:{port}"
    status, ctype, raw = get(port, page)
    check(status == 200 and ctype.startswith("text/html"),
          f"{where} {page}: 200 text/html ({status} {ctype})")
    refs = Refs()
    refs.feed(raw.decode("utf-8"))
    check(refs.inline_scripts == 0, f"{where} {page}: no inline script")
    check(len(refs.urls) >= 2, f"{where} {page}: refers to its assets ({len(refs.urls)})")
    for tag, ref in refs.urls:
        parts = urllib.parse.urlsplit(ref)
        if parts.scheme or parts.netloc or ref.startswith("/"):
            fail(f"{where} {page}: <{tag}> refers to {ref}: only relative URLs may be used")
        path = urllib.parse.urljoin(origin + page, ref)[len(origin):]
        status, ctype, body = get(port, path)
        want = CONTENT_TYPES.get(os.path.splitext(path)[1], "")
        check(status == 200 and ctype.startswith(want) and body,
              f"{where} {page}: {ref} -> {path}: 200 {want} ({status} {ctype}, "
              f"{len(body)} bytes)")

    dom, requests = render(origin + page, workdir)
    if page == "/docs":
        check("Failed to load API definition" not in dom, f"{where} /docs: the document loaded")
        shown = set(re.findall(r'data-path="([^"]*)"', dom))
        missing = [p for p in DOC["paths"] if p not in shown]
        check(not missing and "/api/v1/recs/{userId}" in shown,
              f"{where} /docs lists every path ({len(shown)} shown; missing {missing})")
    text = re.sub(r"<[^>]+>", " ", dom)
    summaries = [op["summary"] for item in DOC["paths"].values() for m, op in item.items()
                 if m in ("get", "put", "post", "patch", "delete")]
    missing = [s for s in summaries if s not in text]
    check(not missing and "/api/v1/recs/{userId}" in dom,
          f"{where} {page} shows every operation summary ({len(summaries)}; missing {missing})")
    own = [url for initiator, url in requests if initiator == origin]
    foreign = [url for url in own if not url.startswith(origin + "/")
               and not url.startswith(("data:", "blob:"))]
    check(not foreign, f"{where} {page}: the page requested nothing from another origin "
                       f"({len(own)} requests; foreign: {foreign[:5]})")
    check(origin + "/openapi.json" in own, f"{where} {page}: fetched {origin}/openapi.json")


class Assets(http.server.ThreadingHTTPServer):
    """ops/docs-assets.sh's output, laid out as the gateway serves it."""

    def __init__(self, root):
        self.root = root
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = urllib.parse.urlsplit(self.path).path
                name = {"/docs": "docs/index.html", "/redoc": "redoc/index.html",
                        "/openapi.json": "openapi.json"}.get(path)
                m = re.fullmatch(r"/(docs|redoc)/([A-Za-z0-9][A-Za-z0-9._-]*)", path)
                if not name and m:
                    name = f"{m.group(1)}/{m.group(2)}"
                file = os.path.join(outer.root, name) if name else None
                if not file or not os.path.isfile(file):
                    self.send_error(404)
                    return
                with open(file, "rb") as f:
                    data = f.read()
                ctype = CONTENT_TYPES.get(os.path.splitext(file)[1], "application/octet-stream")
                self.send_response(200)
                self.send_header("Content-Type", ctype + ("; charset=utf-8"
                                                          if ctype.startswith("text") else ""))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)


def main():
    if not CHROMIUM:
        fail("chromium is not installed (Debian package chromium; ops/install-deps.sh)")
    workdir = tempfile.mkdtemp(prefix="recsd-it-docs-", dir="/tmp")
    pending = []
    try:
        with Service(actors="http-gateway") as svc:
            for page in ("/docs", "/redoc"):
                status = get(svc.port, page)[0]
                if status == 404:
                    print(f"SKIP: the gateway does not serve {page} yet (404)", flush=True)
                    pending.append(page)
                else:
                    check_page(svc.port, page, workdir, "gateway")
        if pending:
            out = os.path.join(BUILD_DIR, "docs-assets")
            rc = subprocess.run(["bash", os.path.join(SOURCE, "ops", "docs-assets.sh"), out],
                                timeout=600).returncode
            check(rc == 0, f"ops/docs-assets.sh {out}")
            server = Assets(out)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                for page in pending:
                    check_page(server.server_address[1], page, workdir, "docs-assets")
            finally:
                server.shutdown()
                server.server_close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    served = [p for p in ("/docs", "/redoc") if p not in pending]
    print(f"PASS: /docs and /redoc render with same-origin assets (from the gateway: "
          f"{served or 'none yet'}; from ops/docs-assets.sh only: {pending or 'none'})")


if __name__ == "__main__":
    main()
