"""test_import_events.py: `recsd import events FILE` end to end.

A fresh database (CREATE DATABASE on the RECSD_PG_DSN server), `recsd
migrate` on it, then a generated JSON-lines file with valid events of the
three types and every kind of invalid line is imported twice: the first run
stores every valid event once and dead-letters every invalid line (with its
line number and reason, the original bytes in base64); the second stores
nothing new. Counts are checked with psql; the database is dropped at the
end. Python standard library only.
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import urllib.parse

BIN = os.environ.get("RECSD_BIN")
ADMIN_DSN = os.environ.get("RECSD_PG_DSN")


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg, flush=True)


def dsn_for(dsn, dbname):
    """The same server and user as dsn, another database."""
    if dsn.startswith(("postgresql://", "postgres://")):
        parts = urllib.parse.urlsplit(dsn)
        return urllib.parse.urlunsplit(parts._replace(path="/" + dbname))
    return dsn + " dbname=" + dbname


def psql(dsn, sql):
    out = subprocess.run(["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        fail(f"psql {sql!r}: {out.stderr.strip()}")
    return out.stdout.rstrip("\n")


def recsd(env, *args, stdin=None):
    out = subprocess.run([BIN, *args], env=env, capture_output=True, timeout=240, input=stdin)
    # A sanitizer build reports on stderr; any report fails the test.
    if b"Sanitizer" in out.stderr or b"runtime error:" in out.stderr:
        fail(f"sanitizer report from recsd {' '.join(args)}: {out.stderr[-2000:]!r}")
    return out


def summary(stdout):
    """The counts of the import's summary line."""
    text = stdout.decode()
    m = re.search(r"(\d+) lines, (\d+) stored, (\d+) duplicates, (\d+) dead-lettered, "
                  r"(\d+) blank, (\d+) events/s", text)
    if not m:
        fail(f"no summary in {text!r}")
    keys = ["lines", "stored", "duplicates", "dead", "blank", "rate"]
    return dict(zip(keys, map(int, m.groups())))


def ts(i):
    return f"2024-05-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}.{i % 1000:03d}Z"


def valid_line(i):
    kind = i % 3
    base = {"user_id": f"user-{i % 997}", "video_id": f"video-{i % 503}", "timestamp": ts(i)}
    if kind == 0:
        base.update(type="video_watched", watched_duration=i % 3600, total_duration=3600,
                    device="android tv")
    elif kind == 1:
        base.update(type="video_rated", rating=0.5 + (i % 10) * 0.5)
    else:
        base.update(type="watchlist_updated", action="added" if i % 2 else "removed")
    return json.dumps(base).encode()


# A line longer than EVENT_MAX_PAYLOAD: dead-lettered with its first 64 KiB.
HUGE = (b'{"type":"video_rated","user_id":"u","video_id":"v","rating":4,"pad":"' + b"x" * 70000 +
        b'","timestamp":"2024-05-01T12:00:00Z"}')

# Invalid lines and the reason each must get (a prefix).
INVALID = [
    (b'{"user_id":"u","video_id":"v","rating":4,"timestamp":"2024-05-01T12:00:00Z"}',
     "type: missing"),
    (b'{"type":"video_liked","user_id":"u","video_id":"v"}', "type: must be"),
    (b'{"type":7,"user_id":"u"}', "type: must be a string"),
    (b'{"type":"video_rated", "user_id":"u"', "payload: invalid JSON"),
    (b'not json at all', "payload: invalid JSON"),
    (b'[1,2,3]', "payload: must be a JSON object"),
    (b'\xff\xfe{"type":"video_rated"}\x80', "payload: invalid JSON"),
    (b'{"type":"video_watched","user_id":"u","video_id":"v","watched_duration":-1,'
     b'"total_duration":10,"timestamp":"2024-05-01T12:00:00Z","device":"tv"}',
     "watched_duration: must be >= 0"),
    (b'{"type":"video_watched","user_id":"u","video_id":"v","watched_duration":"12",'
     b'"total_duration":10,"timestamp":"2024-05-01T12:00:00Z","device":"tv"}',
     "watched_duration: must be an integer"),
    (b'{"type":"video_watched","user_id":"u","video_id":"v","watched_duration":1,'
     b'"total_duration":0,"timestamp":"2024-05-01T12:00:00Z","device":"tv"}',
     "total_duration: must be > 0"),
    (b'{"type":"video_rated","user_id":"u","video_id":"v","rating":9,'
     b'"timestamp":"2024-05-01T12:00:00Z"}', "rating: must be within"),
    (b'{"type":"video_rated","user_id":"u","video_id":"v","rating":4,'
     b'"timestamp":"2999-05-01T12:00:00Z"}', "timestamp: more than"),
    (b'{"type":"video_rated","user_id":"u","video_id":"v","rating":4,'
     b'"timestamp":"2023-02-29T12:00:00Z"}', "timestamp: not an RFC 3339"),
    (b'{"type":"watchlist_updated","user_id":"u","video_id":"v","action":"toggled",'
     b'"timestamp":"2024-05-01T12:00:00Z"}', "action: must be"),
    (b'{"type":"video_rated","user_id":"u u","video_id":"v","rating":4,'
     b'"timestamp":"2024-05-01T12:00:00Z"}', "user_id: byte 1"),
    (b'{"type":"video_rated","user_id":"u","user_id":"w","video_id":"v","rating":4,'
     b'"timestamp":"2024-05-01T12:00:00Z"}', "payload: invalid JSON"),
    (HUGE, f"payload: {len(HUGE)} bytes, more than 65536 allowed"),
    (b'   ', "payload: invalid JSON"),
]

N_VALID = 100_020  # past 100k lines, so a progress line is logged


def main():
    if not BIN or not ADMIN_DSN:
        fail("RECSD_BIN and RECSD_PG_DSN must be set (run through ops/test.sh)")
    db = f"recsd_it_events_{random.getrandbits(48):012x}"
    dsn = dsn_for(ADMIN_DSN, db)
    env = dict(os.environ, RECSD_PG_DSN=dsn, RECSD_INGEST_BATCH_MAX="5000",
               RECSD_LOG_LEVEL="info")
    psql(ADMIN_DSN, f"CREATE DATABASE {db}")
    tmp = tempfile.mkdtemp(prefix="recsd-it-events-", dir="/tmp")
    try:
        out = recsd(env, "migrate")
        check(out.returncode == 0, f"migrate on a fresh database ({out.stderr[-300:]!r})")

        # The file: valid lines with the invalid ones spread among them, a
        # blank line, a CRLF line and an exact duplicate of a valid line.
        lines = [valid_line(i) for i in range(N_VALID)]
        lines.insert(5, b"")
        lines[7] = lines[7] + b"\r"
        lines.append(lines[100])  # the same event again
        for k, (raw, reason) in enumerate(INVALID):
            lines.insert(10 + k * 3001, raw)
        where = {}  # 1-based line number -> (bytes, expected reason prefix)
        for raw, reason in INVALID:
            where[lines.index(raw) + 1] = (raw, reason)
        path = os.path.join(tmp, "events.jsonl")
        with open(path, "wb") as f:
            f.write(b"\n".join(lines) + b"\n")
        n_lines = len(lines)

        # First run.
        out = recsd(env, "import", "events", path)
        check(out.returncode == 0, f"first import exits 0 ({out.stderr[-500:]!r})")
        s = summary(out.stdout)
        print("first run: " + out.stdout.decode().strip(), flush=True)
        check(s["lines"] == n_lines, f"{n_lines} lines read ({s['lines']})")
        check(s["stored"] == N_VALID, f"{N_VALID} events stored ({s['stored']})")
        check(s["duplicates"] == 1, f"the repeated line is a duplicate ({s['duplicates']})")
        check(s["dead"] == len(INVALID), f"{len(INVALID)} dead-lettered ({s['dead']})")
        check(s["blank"] == 1, "the blank line skipped")
        check(b"100000 lines" in out.stderr, "a progress line at 100k lines")
        rows = int(psql(dsn, "SELECT count(*) FROM features.interactions"))
        check(rows == N_VALID, f"{N_VALID} interaction rows ({rows})")
        users = int(psql(dsn, "SELECT count(*) FROM features.users"))
        check(users == 997, f"997 users ({users})")
        kinds = psql(dsn, "SELECT string_agg(kind || '=' || n, ',' ORDER BY kind) FROM "
                          "(SELECT kind, count(*) n FROM features.interactions GROUP BY kind) k")
        check(kinds == "rating=33340,watch=33340,watchlist_add=16670,watchlist_remove=16670",
              f"rows per kind ({kinds})")

        # One row in detail: line for i = 3 is a watch.
        row = psql(dsn, "SELECT concat_ws(',', user_id, video_id, kind, watched_duration_s,"
                        " total_duration_s, device, weight,"
                        " to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'))"
                        " FROM features.interactions WHERE user_id = 'user-3' AND"
                        " video_id = 'video-3' AND kind = 'watch'")
        check(row == "user-3,video-3,watch,3,3600,android tv,0.00083333335,"
                     "2024-05-04 03:03:21.003000", f"a watch row's columns ({row})")

        # Dead letters: line number, reason, original bytes.
        dead = psql(dsn, "SELECT count(*) FROM public.outbox"
                         " WHERE topic = 'recommendation-service.dead-letter' AND key IS NULL"
                         " AND payload->'source'->>'topic' = ''"
                         " AND payload->'source'->'partition' = 'null'")
        check(int(dead) == len(INVALID), f"{len(INVALID)} outbox rows on the dead-letter topic")
        for lineno, (raw, reason) in sorted(where.items()):
            got = psql(dsn, "SELECT payload->>'reason' || '|' ||"
                            " encode(decode(payload->>'original_base64', 'base64'), 'hex') || '|' ||"
                            " coalesce(payload->>'original', '<null>')"
                            " FROM public.outbox WHERE (payload->'source'->>'offset')::bigint ="
                            f" {lineno}")
            got_reason, got_hex, got_text = got.split("|", 2)
            want_bytes = raw[:65536]
            if not got_reason.startswith(reason) or got_hex != want_bytes.hex():
                fail(f"line {lineno}: reason {got_reason!r} (want {reason!r}...), "
                     f"bytes {'ok' if got_hex == want_bytes.hex() else 'differ'}")
            try:
                text = want_bytes.decode("utf-8")
                ok = got_text == text
            except UnicodeDecodeError:
                ok = got_text == "<null>"
            if not ok:
                fail(f"line {lineno}: original text {got_text[:80]!r}")
        check(True, "each dead letter has its line number, reason and original bytes")

        # Second run: nothing new stored, the invalid lines reported again.
        out = recsd(env, "import", "events", path)
        check(out.returncode == 0, "second import exits 0")
        s = summary(out.stdout)
        print("second run: " + out.stdout.decode().strip(), flush=True)
        check(s["stored"] == 0, f"second run stores nothing ({s['stored']})")
        check(s["duplicates"] == N_VALID + 1, f"all valid lines are duplicates ({s['duplicates']})")
        check(s["dead"] == len(INVALID), "invalid lines dead-lettered again")
        rows = int(psql(dsn, "SELECT count(*) FROM features.interactions"))
        check(rows == N_VALID, f"still {N_VALID} rows ({rows})")

        # stdin, bad usage, a missing file, and movielens still dispatched.
        out = recsd(env, "import", "events", "-",
                    stdin=valid_line(N_VALID + 5) + b"\n" + valid_line(1) + b"\n")
        s = summary(out.stdout)
        check(out.returncode == 0 and s["stored"] == 1 and s["duplicates"] == 1,
              "import from stdin")
        out = recsd(env, "import", "events")
        check(out.returncode == 2 and b"usage: recsd import events FILE" in out.stderr,
              "bad usage exits 2")
        out = recsd(env, "import", "events", os.path.join(tmp, "missing.jsonl"))
        check(out.returncode == 1 and b"cannot open" in out.stderr, "a missing file exits 1")
        out = recsd(env, "import", "movielens")
        check(out.returncode == 2 and b"import movielens DIR" in out.stderr,
              "import movielens is still dispatched")

        # PostgreSQL unreachable: exit 1, a clear message.
        bad_env = dict(env, RECSD_PG_DSN=dsn_for(ADMIN_DSN, db + "_missing"))
        out = recsd(bad_env, "import", "events", path)
        check(out.returncode == 1, "a database that does not exist exits 1")
    finally:
        subprocess.run(["rm", "-rf", tmp], check=False)
        psql(ADMIN_DSN, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    print("PASS", flush=True)


if __name__ == "__main__":
    main()
