"""harness.py: start a real `recsd run` for an integration test and talk to it.

Every test gets its own runtime directory and HTTP port, and shares the
PostgreSQL and Redis of the test stack (RECSD_PG_DSN, RECSD_REDIS_URL, set by
ops/test.sh). Nothing here is mocked: processes, sockets and servers are real.
"""
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("RECSD_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "recsd")


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_line(proc, timeout):
    """One line from proc's stdout within timeout seconds, decoded and
    stripped; None on timeout or end of output. Reads byte by byte so that
    nothing after the line is consumed (dev-kafka --control answers later)."""
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.time() + timeout
    while not buf.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.time()))
        chunk = os.read(fd, 1) if ready else b""
        if not chunk:
            return None
        buf += chunk
    return buf.decode().strip()


def run_cases(cases, default, title):
    """Runs the named cases (argv, or default), each with a fresh tag."""
    import uuid  # noqa: PLC0415 - only the case-based scripts need it
    require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")
    names = sys.argv[1:] or default
    for name in names:
        if name not in cases:
            fail(f"unknown case {name}; known: {', '.join(cases)}")
        tag = f"{name}_{uuid.uuid4().hex[:8]}"
        print(f"--- {name} ({tag})", flush=True)
        started = time.time()
        cases[name](tag)
        print(f"--- {name} passed in {time.time() - started:.1f} s", flush=True)
    print(f"PASS: {title}", flush=True)
    return 0


def require_env(*names):
    for name in names:
        if not os.environ.get(name):
            fail(f"{name} is not set: run the tests through ops/test.sh, which starts the stack")


class Service:
    """One supervisor and its actors, started with `recsd run`."""

    def __init__(self, env=None, prefix=None, actors=None):
        self.runtime_dir = tempfile.mkdtemp(prefix="recsd-it-", dir="/tmp")
        self.port = free_port()
        self.log_path = os.path.join(self.runtime_dir, "recsd.log")
        self.env = dict(os.environ)
        self.env.update({
            "RECSD_RUNTIME_DIR": os.path.join(self.runtime_dir, "rt"),
            "RECSD_HTTP_ADDR": "127.0.0.1",
            "RECSD_HTTP_PORT": str(self.port),
            "RECSD_LOG_LEVEL": "info",
            "RECSD_POPULAR_REFRESH_MS": "1000",
            # Tests send thousands of requests for one user a minute (load
            # under kill -9 and swaps); test_auth.py tests the limit itself.
            "RECSD_RATE_LIMIT": "0",
            "RECSD_READINESS_INTERVAL_MS": "200",
            # Scheduled training at start would load the CPU under other
            # tests sharing the stack; tests of training turn it on.
            "RECSD_TRAIN_INTERVAL_S": "0",
        })
        if actors:
            self.env["RECSD_ACTORS"] = actors
        self.env.update(env or {})
        self.prefix = prefix or []
        self.proc = None

    def start(self, wait_ready=True):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.prefix + [BIN, "run"], env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if wait_ready:
            try:
                self.wait_running()
            except SystemExit:
                # __exit__ does not run when __enter__ fails: never leak a
                # supervisor (its actors follow it through PR_SET_PDEATHSIG).
                self.close()
                raise
        return self

    def ctl(self, *args, check_rc=True):
        out = subprocess.run([BIN, "ctl", *args], env=self.env, capture_output=True,
                             text=True, timeout=10)
        if check_rc and out.returncode != 0:
            fail(f"recsd ctl {' '.join(args)}: rc {out.returncode}: {out.stderr}")
        return out

    def status(self):
        return json.loads(self.ctl("status", "--json").stdout)

    def actor(self, name):
        for row in self.status()["actors"]:
            if row["name"] == name:
                return row
        fail(f"no actor {name} in status")

    def wait_running(self, timeout=20):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                fail(f"recsd run exited with {self.proc.returncode}; log:\n{self.logs()[-4000:]}")
            out = self.ctl("status", "--json", check_rc=False)
            if out.returncode == 0:
                last = json.loads(out.stdout)
                if all(a["state"] == "running" for a in last["actors"]):
                    if "http-gateway" not in self.env.get("RECSD_ACTORS", "http-gateway"):
                        return last
                    try:
                        if self.get("/health")[0] == 200:
                            return last
                    except OSError:
                        pass
            time.sleep(0.1)
        fail(f"actors not all running after {timeout}s: {last}\nlog:\n{self.logs()[-4000:]}")

    def wait_for(self, predicate, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        fail(f"timed out after {timeout}s waiting for {what}")

    def get(self, path, headers=None, timeout=5):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def api(self, method, path, body=None, timeout=10, headers=None):
        """One JSON request: (status, the parsed body, or the raw bytes when
        it is not JSON). body (any JSON value) is sent as application/json;
        headers (a dict) are sent too."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            sent = dict(headers or {})
            if body is not None:
                sent["Content-Type"] = "application/json"
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers=sent)
            resp = conn.getresponse()
            data = resp.read()
            try:
                return resp.status, json.loads(data)
            except ValueError:
                return resp.status, data
        finally:
            conn.close()

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_lines(self):
        lines = []
        for line in self.logs().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
        return lines

    def endpoint(self, name):
        return "ipc://" + os.path.join(self.env["RECSD_RUNTIME_DIR"], name)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                fail(f"recsd run did not stop within {timeout}s")
        return self.proc.returncode

    def close(self):
        rc = self.stop()
        self.log.close()
        # Under the ASan/UBSan build a report from any actor lands in this
        # log (actors share the supervisor's stderr); it fails the test even
        # when the service otherwise behaved.
        text = self.logs()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in text:
                at = text.index(marker)
                print(text[max(0, at - 2000):at + 6000])
                fail(f"sanitizer report in the service log: {marker}")
        if os.environ.get("RECSD_KEEP_LOGS"):
            print("logs kept in", self.log_path)
        else:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
        return rc

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if exc[0] is not None:
            print(self.logs()[-6000:])
        self.close()


class Load:
    """Clients that send GET requests without pause on keep-alive connections
    and record every outcome, for tests that break things under traffic."""

    def __init__(self, port, path="/api/v1/recs/1?limit=5", threads=4):
        # path: a string, or a function returning each request's path.
        self.port, self.path, self.threads = port, path, threads
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.bad = []          # (status or exception text, body)
        self.refused = 0       # connect() refused: only allowed once shutdown began
        self.sources = {}
        self.workers = []

    def _run(self):
        conn = None
        while not self.stop_flag.is_set():
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                try:
                    conn.connect()
                except ConnectionRefusedError:
                    with self.lock:
                        self.refused += 1
                    conn = None
                    time.sleep(0.01)
                    continue
            try:
                conn.request("GET", self.path() if callable(self.path) else self.path)
                resp = conn.getresponse()
                body = resp.read()
                close = resp.getheader("Connection", "").lower() == "close"
                with self.lock:
                    if resp.status == 200:
                        self.ok += 1
                        try:
                            src = json.loads(body).get("source")
                            self.sources[src] = self.sources.get(src, 0) + 1
                        except ValueError:
                            self.bad.append((resp.status, body[:200]))
                    else:
                        self.bad.append((resp.status, body[:200]))
                if close:
                    conn.close()
                    conn = None
            except Exception as exc:  # noqa: BLE001 - every failure is recorded
                with self.lock:
                    self.bad.append((repr(exc), b""))
                conn.close()
                conn = None
        if conn:
            conn.close()

    def start(self):
        for _ in range(self.threads):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.workers.append(t)
        return self

    def finish(self):
        self.stop_flag.set()
        for t in self.workers:
            t.join(10)
        return self


MOVIELENS = os.path.join(os.environ.get("RECSD_SOURCE_DIR")
                         or os.path.join(os.path.dirname(__file__), "..", ".."),
                         "data", "ml-latest-small")


def psql(dsn, sql):
    """Runs sql with psql; its output (tab-separated, unaligned)."""
    out = subprocess.run(["psql", dsn, "-XAtq", "-F", "\t", "-c", sql], capture_output=True,
                         text=True, timeout=60)
    if out.returncode != 0:
        fail(f"psql {sql[:80]}: {out.stderr}")
    return out.stdout


class MovieLensDatabase:
    """A fresh, migrated database with MovieLens latest-small imported, on
    the test stack's server (RECSD_PG_DSN): the shared database keeps
    other tests' rows, and a test's models and 100k ratings must not change
    another test's answers. prefix names it (recsd_<prefix>_<random>)."""

    def __init__(self, prefix):
        import urllib.parse  # noqa: PLC0415 - only database tests need it
        import uuid  # noqa: PLC0415
        base = os.environ["RECSD_PG_DSN"]
        parts = urllib.parse.urlsplit(base)
        if not parts.scheme.startswith("postgres"):
            fail(f"RECSD_PG_DSN must be a postgresql:// URI here, got {base}")
        self.admin = base
        self.name = f"recsd_{prefix}_{uuid.uuid4().hex[:10]}"
        self.dsn = urllib.parse.urlunsplit(parts._replace(path="/" + self.name))
        psql(self.admin, f"CREATE DATABASE {self.name}")
        env = dict(os.environ, RECSD_PG_DSN=self.dsn)
        for args in (["migrate"], ["import", "movielens", MOVIELENS]):
            out = subprocess.run([BIN, *args], env=env, capture_output=True, text=True,
                                 timeout=300)
            if out.returncode != 0:
                self.close()
                fail(f"recsd {' '.join(args)}: {out.stderr[-2000:]}")

    def close(self):
        psql(self.admin, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


class Redis:
    """A throw-away redis-server on a free loopback port, for tests that
    take Redis away from a running service."""

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}"
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return
            except OSError:
                time.sleep(0.05)
        fail("redis-server did not start")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Postgres:
    """A throw-away PostgreSQL cluster (initdb) on a free loopback port, run
    as the postgres user when we are root, for tests that stop it under a
    running service. Has role and database `recsd`, migrations applied."""

    PG_BIN = "/usr/lib/postgresql/15/bin"

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="recsd-it-pg-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.as_pg = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_pg = ["runuser", "-u", "postgres", "--"]
        self._run([f"{self.PG_BIN}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                   "--locale=C", "-E", "UTF8"])
        self.start()
        psql = ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-qc"]
        subprocess.run(psql + ["CREATE ROLE recsd LOGIN SUPERUSER"], check=True)
        subprocess.run(psql + ["CREATE DATABASE recsd OWNER recsd"], check=True)
        self.dsn = f"postgresql://recsd@127.0.0.1:{self.port}/recsd"
        out = subprocess.run([BIN, "migrate"], env=dict(os.environ, RECSD_PG_DSN=self.dsn),
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            fail(f"migrate on the throw-away cluster failed: {out.stderr[-2000:]}")

    def _run(self, cmd):
        out = subprocess.run(self.as_pg + cmd, capture_output=True, text=True, timeout=60,
                             cwd="/")
        if out.returncode != 0:
            fail(f"{' '.join(cmd)} failed: {out.stdout}{out.stderr}")

    def start(self):
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} "
                f"-c unix_socket_directories={self.dir} -c fsync=off")
        self._run([f"{self.PG_BIN}/pg_ctl", "-D", self.data, "-l",
                   os.path.join(self.dir, "log"), "-o", opts, "-w", "start"])

    def stop(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._run([f"{self.PG_BIN}/pg_ctl", "-D", self.data, "-m", "immediate", "-w",
                       "stop"])

    def sql(self, statement):
        subprocess.run(["psql", self.dsn, "-qc", statement], check=True)

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
