"""The ranker never recommends what a user has already watched (to
RECSD_SEEN_COMPLETION) or rated: histories are loaded from PostgreSQL at
start, and other users still get the full list."""
import json
import os
import subprocess
import uuid

from harness import Service, check, require_env

require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")

tag = uuid.uuid4().hex[:8]
v = {x: f"seen-{tag}-{x}" for x in "abc"}
rows = [(f"crowd{i}", v[x], "watch", 1.0) for x, n in (("a", 30), ("b", 20), ("c", 10))
        for i in range(n)]
viewer = f"viewer-{tag}"
rows += [(viewer, v["a"], "watch", 0.95), (viewer, v["b"], "watch", 0.10)]
values = ",".join(f"('sf:{tag}:{n}','{u}','{vid}','{k}',{w},now())"
                  for n, (u, vid, k, w) in enumerate(rows))
dsn = os.environ["RECSD_PG_DSN"]
subprocess.run(["psql", dsn, "-qc", "INSERT INTO features.interactions "
                f"(event_id,user_id,video_id,kind,weight,occurred_at) VALUES {values}"],
               check=True)
try:
    with Service(env={"RECSD_SEEN_COMPLETION": "0.9"}) as svc:
        def top(user):
            # The popularity list, filtered: without a type the viewer's
            # history would be answered by co-occurrence, which leaves out
            # the videos they liked even partly.
            status, _, body = svc.get(f"/api/v1/recs/{user}?limit=3&type=popularity")
            doc = json.loads(body)
            return status, doc["source"], [i["video_id"] for i in doc["items"]]

        status, source, items = svc.wait_for(
            lambda: (r := top("someone-else"))[2][:1] == [v["a"]] and r, 5, "the popular list")
        check(items == [v["a"], v["b"], v["c"]], "another user gets the full list")
        status, source, items = top(viewer)
        check(source == "model" and v["a"] not in items,
              "a video watched to 95% is not recommended again")
        check(items[:2] == [v["b"], v["c"]], "one watched to 10% still is (below 0.9)")
        logs = [l["msg"] for l in svc.log_lines() if l.get("actor") == "ranker"
                and l.get("msg", "").startswith("seen videos loaded")]
        check(logs, f"the ranker logged the load ({logs[:1]})")
finally:
    subprocess.run(["psql", dsn, "-qc",
                    f"DELETE FROM features.interactions WHERE event_id LIKE 'sf:{tag}:%'"],
                   check=True)
