"""Malformed msgpack sent to an actor's socket (the ranker) and to the
supervisor's control socket is rejected and logged; both keep serving."""
import time

import msgpack
import zmq

from harness import Service, check, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")

garbage = [
    b"",
    b"\xc1",                                        # never-used msgpack byte
    b"\x96\x01\x08",                                # array of 6, truncated
    msgpack.packb([1, 8, "r", "", 0]),              # 5 elements
    msgpack.packb([2, 8, "r", "", 0, {"user_id": "1", "limit": 3}]),   # bad version
    msgpack.packb([1, 99, "r", "", 0, {}]),         # unknown type
    msgpack.packb([1, 8, "r", "", 0, {"user_id": "1", "limit": 0}]),   # bad limit
    msgpack.packb([1, 8, "r\x01", "", 0, {"user_id": "1", "limit": 3}]),  # bad id
    msgpack.packb([1, 8, "r", "", 0, {"user_id": "1", "limit": 3}]) + b"x",  # trailing
    msgpack.packb([1, 8, "r", "", 0, {"user_id": 7, "limit": 3}]),     # wrong type
    bytes(range(256)) * 64,
]

with Service() as svc:
    ctx = zmq.Context()
    ranker_pid = svc.actor("ranker")["pid"]
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(svc.endpoint("ranker"))
    for frame in garbage:
        sock.send(frame)
    sock.send_multipart([b"two", b"frames"])
    rid = "it-valid-after-garbage"
    deadline = int(time.time() * 1000) + 5000
    sock.send(msgpack.packb([1, 8, rid, "", deadline, {"user_id": "1", "limit": 3}]))
    check(sock.poll(5000), "the ranker answers a valid request after the garbage")
    reply = msgpack.unpackb(sock.recv(), raw=False)
    check(reply[0] == 1 and reply[1] == 9 and reply[2] == rid,
          f"reply is a recs reply to our request id ({reply[:3]})")
    check(svc.actor("ranker")["pid"] == ranker_pid, "the ranker did not crash")
    rejected = [l for l in svc.log_lines() if l.get("actor") == "ranker"
                and "rejected" in l.get("msg", "")]
    check(len(rejected) >= len(garbage), f"each bad message was logged ({len(rejected)})")

    ctl = ctx.socket(zmq.DEALER)
    ctl.setsockopt(zmq.LINGER, 0)
    ctl.setsockopt(zmq.IDENTITY, b"intruder")
    ctl.connect(svc.endpoint("control"))
    for frame in garbage:
        ctl.send(frame)
    time.sleep(0.5)
    check(svc.proc.poll() is None, "the supervisor is still running")
    status = svc.status()
    check(all(a["state"] == "running" for a in status["actors"]), "every actor still runs")
    sup_rejected = [l for l in svc.log_lines() if l.get("actor") == "supervisor"
                    and "rejected" in l.get("msg", "")]
    check(len(sup_rejected) >= len(garbage) - 1, f"supervisor logged the junk ({len(sup_rejected)})")
    status_code, _, _ = svc.get("/api/v1/recs/1")
    check(status_code == 200, "the API still answers")
    sock.close()
    ctl.close()
    ctx.term()
