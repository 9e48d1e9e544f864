#!/usr/bin/env python3
"""test_dev_kafka.py: `recsd dev-kafka` against a real Kafka client (kcat).

Starts $RECSD_BIN dev-kafka, reads the bootstrap line, checks with kcat that
every recsd topic exists with the expected partitions, round-trips one
message, then stops it with SIGTERM and expects exit status 0 within 5 s.
Also checks that bad arguments fail with status 1 and a message.

--control: every command line gets one answer line ("ok" or "error: ..."),
and the faults take effect on a real client: injected Produce errors fail
exactly that many produce requests, a topic error shows in kcat's metadata
until cleared, a broker that is down refuses kcat until it is up again.
EOF on stdin leaves the cluster running until SIGTERM (exit 0).
Skips (exit 0, prints SKIP) only when kcat is not installed.
"""
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid

TOPICS = [
    "analytics-service.video-watched",
    "profile-service.video-rated",
    "profile-service.watchlist-updated",
    "recommendation-service.model-training-started",
    "recommendation-service.model-training-completed",
    "recommendation-service.recommendations-refreshed",
    "catalog-service.video-upserted",
    "recommendation-service.dead-letter",
]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def read_line(proc, timeout, what="bootstrap line"):
    """Reads one stdout line of proc within timeout seconds, or fails. Reads
    byte by byte: nothing past the line is consumed."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            fail(f"no {what} within {timeout} s (got {buf!r})")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 1)
            if not chunk:
                fail(f"dev-kafka closed stdout, exit status {proc.poll()}, got {buf!r}")
            buf += chunk
    return buf.decode().strip()


def kcat(*args, stdin=None, timeout=20, expect_rc=0):
    res = subprocess.run(["kcat", *args], input=stdin, capture_output=True, timeout=timeout)
    if expect_rc is not None and res.returncode != expect_rc:
        fail(f"kcat {' '.join(args)} exited {res.returncode}, expected {expect_rc}: "
             f"{res.stderr.decode()}")
    return res.stdout.decode() if expect_rc == 0 else res


def command(proc, line, want="ok"):
    """Sends one control line; checks the one answer line starts with want."""
    proc.stdin.write((line + "\n").encode())
    proc.stdin.flush()
    got = read_line(proc, 10, f"answer to {line!r}")
    if not got.startswith(want):
        fail(f"control {line!r}: answered {got!r}, expected {want!r}...")
    return got


def check_control(binary):
    topics = ["ctl-a", "ctl-b"]
    proc = subprocess.Popen([binary, "dev-kafka", "--control", "--brokers", "2", "--topics",
                             ",".join(topics)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        bootstrap = read_line(proc, 10)
        if not bootstrap.startswith("127.0.0.1:"):
            fail(f"unexpected bootstrap line {bootstrap!r}")

        # Bad commands: one error line each, and the channel keeps working.
        for bad in ("", "bogus", "broker-down", "broker-down 3", "broker-up x", "rtt 1 -5",
                    "rtt 1 10 extra", "request-errors Nope 1 NOT_LEADER_FOR_PARTITION",
                    "request-errors Fetch 0 NOT_LEADER_FOR_PARTITION",
                    "request-errors Fetch 2 NOT_A_KAFKA_ERROR", "request-errors Fetch 2 _FATAL",
                    "topic-error bad/name UNKNOWN_TOPIC_OR_PART", "x" * 600):
            command(proc, bad, "error: ")
        command(proc, "rtt 2 10")
        command(proc, "rtt all 0")

        # Two Produce requests fail with a non-retriable error: kcat's
        # delivery fails, twice; the third produce goes through.
        command(proc, "request-errors Produce 2 TOPIC_AUTHORIZATION_FAILED")
        for _ in range(2):
            res = kcat("-b", bootstrap, "-P", "-t", "ctl-a", "-p", "0", stdin=b"refused\n",
                       expect_rc=None)
            if res.returncode == 0 or b"authorization" not in res.stderr.lower():
                fail(f"an injected Produce error did not fail kcat: rc {res.returncode}, "
                     f"{res.stderr.decode()[-300:]}")
        kcat("-b", bootstrap, "-P", "-t", "ctl-a", "-p", "0", stdin=b"accepted\n")
        got = kcat("-b", bootstrap, "-C", "-t", "ctl-a", "-p", "0", "-o", "beginning", "-e", "-q")
        if got.split() != ["accepted"]:
            fail(f"partition ctl-a[0] holds {got.split()}, expected only the accepted message")

        # A topic error is reported in metadata until cleared.
        command(proc, "topic-error ctl-b TOPIC_AUTHORIZATION_FAILED")
        meta = kcat("-b", bootstrap, "-L", "-t", "ctl-b")
        if "Topic authorization failed" not in meta:
            fail(f"topic error not in metadata:\n{meta}")
        command(proc, "topic-error ctl-b NO_ERROR")
        meta = kcat("-b", bootstrap, "-L", "-t", "ctl-b")
        if 'topic "ctl-b" with 4 partitions' not in meta or "failed" in meta:
            fail(f"topic error not cleared:\n{meta}")

        # Every broker down: no client gets metadata; up again: it does.
        command(proc, "broker-down all")
        res = kcat("-b", bootstrap, "-L", "-m", "2", expect_rc=None)
        if res.returncode == 0:
            fail("kcat got metadata with every broker down")
        command(proc, "broker-up all")
        meta = kcat("-b", bootstrap, "-L", "-m", "5")
        if 'topic "ctl-a" with 4 partitions' not in meta:
            fail(f"no metadata after broker-up:\n{meta}")

        # EOF on stdin ends the commands, not the cluster.
        proc.stdin.close()
        time.sleep(0.5)
        if proc.poll() is not None:
            fail(f"dev-kafka --control exited {proc.returncode} at EOF on stdin")
        kcat("-b", bootstrap, "-L", "-m", "5")
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            fail("dev-kafka --control did not exit within 5 s of SIGTERM")
        if rc != 0:
            fail(f"dev-kafka --control exited {rc} after SIGTERM, expected 0")
        extra = proc.stdout.read()
        if extra:
            fail(f"dev-kafka --control printed more than its answers: {extra!r}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        if not proc.stdin.closed:
            proc.stdin.close()


def check_bad_args(binary):
    for args in (["--brokers", "0"], ["--partitions", "x"], ["--topics", "a,,b"], ["--nope"]):
        res = subprocess.run([binary, "dev-kafka", *args], capture_output=True, timeout=10)
        if res.returncode != 1:
            fail(f"dev-kafka {args} exited {res.returncode}, expected 1")
        if b"recsd dev-kafka:" not in res.stderr:
            fail(f"dev-kafka {args} gave no clear message: {res.stderr!r}")
        if res.stdout:
            fail(f"dev-kafka {args} wrote to stdout: {res.stdout!r}")


def main():
    binary = os.environ.get("RECSD_BIN")
    if not binary or not os.access(binary, os.X_OK):
        fail(f"RECSD_BIN must point at the recsd binary (got {binary!r})")
    if shutil.which("kcat") is None:
        print("SKIP: kcat is not installed")
        return 0

    check_bad_args(binary)

    proc = subprocess.Popen([binary, "dev-kafka"], stdout=subprocess.PIPE)
    try:
        bootstrap = read_line(proc, 10)
        if not bootstrap.startswith("127.0.0.1:"):
            fail(f"unexpected bootstrap line {bootstrap!r}")

        meta = kcat("-b", bootstrap, "-L")
        for topic in TOPICS:
            if f'topic "{topic}" with 4 partitions' not in meta:
                fail(f"topic {topic} with 4 partitions missing from metadata:\n{meta}")

        # Round trip: a unique payload on a fixed partition, read back from
        # the beginning of that partition.
        payload = f"roundtrip-{uuid.uuid4()}"
        kcat("-b", bootstrap, "-P", "-t", "recommendation-service.dead-letter", "-p", "2", "-k", "k1",
             stdin=(payload + "\n").encode())
        got = kcat("-b", bootstrap, "-C", "-t", "recommendation-service.dead-letter", "-p", "2",
                   "-o", "beginning", "-e", "-q", "-f", "%k=%s\n")
        if f"k1={payload}" not in got.splitlines():
            fail(f"message not read back: expected k1={payload}, got {got!r}")

        if proc.poll() is not None:
            fail(f"dev-kafka exited early with {proc.returncode}")
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            fail("dev-kafka did not exit within 5 s of SIGTERM")
        if rc != 0:
            fail(f"dev-kafka exited {rc} after SIGTERM, expected 0")
        extra = proc.stdout.read()
        if extra:
            fail(f"dev-kafka printed more than the bootstrap line: {extra!r}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()

    check_control(binary)
    print("PASS: dev-kafka topics, round trip, SIGTERM and --control")
    return 0


if __name__ == "__main__":
    sys.exit(main())
