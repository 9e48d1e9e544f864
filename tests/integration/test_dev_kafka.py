#!/usr/bin/env python3
"""test_dev_kafka.py: `recsd dev-kafka` against a real Kafka client (kcat).

Starts $RECSD_BIN dev-kafka, reads the bootstrap line, checks with kcat that
every recsd topic exists with the expected partitions, round-trips one
message, then stops it with SIGTERM and expects exit status 0 within 5 s.
Also checks that bad arguments fail with status 1 and a message.
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


def read_line(proc, timeout):
    """Reads one stdout line of proc within timeout seconds, or fails."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            fail(f"no bootstrap line within {timeout} s (got {buf!r})")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                fail(f"dev-kafka closed stdout, exit status {proc.poll()}, got {buf!r}")
            buf += chunk
    return buf.decode().strip()


def kcat(*args, stdin=None, timeout=20):
    res = subprocess.run(["kcat", *args], input=stdin, capture_output=True, timeout=timeout)
    if res.returncode != 0:
        fail(f"kcat {' '.join(args)} exited {res.returncode}: {res.stderr.decode()}")
    return res.stdout.decode()


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

    print("PASS: dev-kafka topics, round trip and SIGTERM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
