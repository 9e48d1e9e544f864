#!/usr/bin/env python3
"""test_catalog_ingest.py: the catalogue's topic (VideoUpserted) end to end.

Like test_ingest.py (whose Kafka, Database and helpers it reuses): a private
mock cluster with this run's topics, the catalogue's included, a fresh
migrated database and a real `recsd run`; VideoUpserted messages are
produced with kcat and checked in features.videos.

Cases:
  upsert   videos land with every column; replaying them, and an older
           update arriving late (on another partition), change nothing; a
           newer update replaces the row. Interactions produced twice next
           to them: /metrics counts new rows and replays per topic apart,
           and catalogue changes as applied / stale.
  retire   a newer "retired" retires a video; a late "active" from before
           it does not bring it back; a newer "active" does.
  dead     each kind of invalid VideoUpserted lands in public.outbox for
           the dead-letter topic with its reason and source, the publisher
           puts it on that topic, and valid changes behind it still land.

usage: test_catalog_ingest.py [case ...]   (default: all)
Needs RECSD_BIN, RECSD_PG_DSN and RECSD_REDIS_URL (ops/test.sh), kcat, psql.
"""
import calendar
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Service, check, fail, run_cases  # noqa: E402
from test_ingest import (Database, Kafka, count_rows, handled, iso, make_events,  # noqa: E402
                         produce_all, psql, service_env, wait_assigned)

BASE_TS = 1704067200  # 2024-01-01T00:00:00Z


def video(i, tag, version=0, status="active", title=None, published=True):
    """A VideoUpserted for video i at updated_at BASE_TS + version."""
    doc = {"video_id": f"{tag}-v{i}",
           "title": title or f"Film n\u00b0{i} \u2014 \"{tag}\"",
           "genres": ["Drama", "Sci-Fi"] if i % 2 else ["Comedy"],
           "tags": [f"tag {i}", "caf\u00e9"] if i % 3 else [],
           "duration": 60 + i,
           "status": status,
           "updated_at": iso(BASE_TS + version)}
    if published:
        doc["published_at"] = iso(BASE_TS - 86400 - i)
    elif i % 2:
        doc["published_at"] = None  # null and absent both mean "unknown"
    return doc


def keyed(doc):
    """kcat -K line: keyed by video, as a catalogue would (one partition per video)."""
    return doc["video_id"] + "\t" + json.dumps(doc, ensure_ascii=False)


def expected_row(doc):
    published = doc.get("published_at")
    return (doc["title"], "{" + ",".join(f'"{g}"' if " " in g else g for g in doc["genres"]) + "}",
            "{" + ",".join(f'"{t}"' if " " in t else t for t in doc["tags"]) + "}",
            str(doc["duration"]),
            str(calendar.timegm(time.strptime(published, "%Y-%m-%dT%H:%M:%SZ")))
            if published else "",
            "t" if doc["status"] == "retired" else "f", doc["updated_at"])


def stored_videos(dsn):
    """{video_id: (title, genres, tags, duration, published epoch, retired, updated_at)}."""
    out = {}
    sql = ("SELECT video_id, title, genres::text, tags::text, duration_s,"
           " extract(epoch FROM published_at)::bigint, retired,"
           " to_char(catalog_updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
           " FROM features.videos")
    for line in psql(dsn, sql).splitlines():
        vid, *cols = line.split("\t")
        out[vid] = tuple(cols)
    return out


def metric(text, name, **labels):
    """The value of the sample name{...labels...} in Prometheus text, or None."""
    for line in text.splitlines():
        m = re.match(r"^(\w+)\{([^}]*)\} (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


def case_upsert(tag):
    kafka, db = Kafka(tag, prefix="cat", catalogue=True), Database(tag)
    try:
        n = 50
        docs = [video(i, tag, version=10, published=i % 5 != 0) for i in range(n)]
        lines, _ = make_events(400, tag, users=20)
        per_topic = {k: len(v) for k, v in lines.items()}
        with Service(env=service_env(kafka, db.dsn)) as svc:  # all actors: /metrics
            wait_assigned(svc)
            kafka.produce("videos", [keyed(d) for d in docs])
            produce_all(kafka, lines)
            svc.wait_for(lambda: count_rows(db.dsn, "features.videos") >= n, 30, f"{n} videos")
            svc.wait_for(lambda: count_rows(db.dsn) >= 400, 30, "the interactions")
            rows = stored_videos(db.dsn)
            want = {d["video_id"]: expected_row(d) for d in docs}
            bad = {k: (rows.get(k), v) for k, v in want.items() if rows.get(k) != v}
            check(len(rows) == n and not bad,
                  f"{n} VideoUpserted became {n} rows with every column (wrong e.g. "
                  f"{list(bad.items())[:2]})")

            # Replay everything; an older v0 arrives late on another partition
            # (no key); v1 gets a newer version.
            older = video(0, tag, version=5, title="an older title")
            newer = video(1, tag, version=11, status="active", title="a newer title")
            newer["tags"] = []
            kafka.produce("videos", [keyed(d) for d in docs])
            kafka.produce("videos", [json.dumps(older)], keyed=False)
            kafka.produce("videos", [keyed(newer)])
            produce_all(kafka, lines)  # the interactions again: duplicates
            total = 2 * n + 2 + 2 * 400
            svc.wait_for(lambda: handled(svc) >= total, 60, "the replays consumed")
            time.sleep(1.0)  # past a batch interval: anything would be written now
            rows = stored_videos(db.dsn)
            want[newer["video_id"]] = expected_row(newer)
            bad = {k: (rows.get(k), v) for k, v in want.items() if rows.get(k) != v}
            check(not bad, "replays and the late older update changed nothing; the newer "
                  f"update replaced its row (wrong: {list(bad.items())[:2]})")
            check(count_rows(db.dsn) == 400, "the interactions again added no row")
            check(count_rows(db.dsn, "public.outbox") == 0, "no dead letters")

            def metrics_settled():
                status, _, body = svc.get("/metrics")
                text = body.decode() if status == 200 else ""
                applied = metric(text, "recsd_ingest_catalog_upserts_total",
                                 topic=kafka.topics["videos"], result="applied")
                return applied == n + 1 and text
            text = svc.wait_for(metrics_settled, 15, "the catalogue counters on /metrics")
            t = kafka.topics
            check(metric(text, "recsd_ingest_catalog_upserts_total", topic=t["videos"],
                         result="stale") == n + 1,
                  f"{n + 1} catalogue changes counted stale (the replays and the older one)")
            check(metric(text, "recsd_ingest_consumed_total", topic=t["videos"]) == total - 800
                  and metric(text, "recsd_ingest_rejected_total", topic=t["videos"]) == 0,
                  "the catalogue topic's messages counted as consumed, none rejected")
            for kind, count in per_topic.items():
                stored = metric(text, "recsd_ingest_stored_total", topic=t[kind])
                dups = metric(text, "recsd_ingest_duplicates_total", topic=t[kind])
                check(stored == count and dups == count,
                      f"{kind}: {count} new rows and {count} replays counted apart "
                      f"(stored {stored}, duplicates {dups})")
            check(metric(text, "recsd_ingest_stored_total", topic=t["videos"]) is None,
                  "catalogue changes are not counted as interaction rows")
    finally:
        kafka.close()
        db.close()


def case_retire(tag):
    kafka, db = Kafka(tag, prefix="cat", catalogue=True), Database(tag)
    try:
        vid = f"{tag}-v7"

        def retired():
            out = psql(db.dsn, f"SELECT retired, title FROM features.videos"
                               f" WHERE video_id = '{vid}'").strip()
            return out.split("\t") if out else None

        with Service(env=service_env(kafka, db.dsn),
                     actors="publisher,event-ingestor") as svc:
            wait_assigned(svc)
            kafka.produce("videos", [keyed(video(7, tag, version=100, title="v100"))])
            svc.wait_for(lambda: retired() == ["f", "v100"], 30, "the active video")
            kafka.produce("videos", [keyed(video(7, tag, version=200, status="retired",
                                                 title="v200"))])
            svc.wait_for(lambda: retired() == ["t", "v200"], 30, "the retirement")
            check(True, "a newer \"retired\" retired the video")
            # An "active" from before the retirement, arriving late.
            kafka.produce("videos", [keyed(video(7, tag, version=150, title="v150"))])
            svc.wait_for(lambda: handled(svc) >= 3, 30, "the late update consumed")
            time.sleep(1.0)
            check(retired() == ["t", "v200"], "a late \"active\" did not bring it back")
            kafka.produce("videos", [keyed(video(7, tag, version=300, title="v300"))])
            svc.wait_for(lambda: retired() == ["f", "v300"], 30, "the reactivation")
            check(True, "a newer \"active\" brought it back")
            check(count_rows(db.dsn, "features.videos") == 1, "still one row for the video")
    finally:
        kafka.close()
        db.close()


def invalid_videos(tag):
    good = video(1, tag)

    def but(**changes):
        doc = dict(good)
        for k, v in changes.items():
            if v is None:
                doc.pop(k, None)
            else:
                doc[k] = v
        return json.dumps(doc, ensure_ascii=False)

    far = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
    return [
        # (payload, field the reason must start with)
        (but(title=None), "title"),
        (but(title=""), "title"),
        (but(title="a\nb"), "title"),
        (but(title="x" * 257), "title"),
        (but(video_id="v 1"), "video_id"),
        (but(genres="Drama"), "genres"),
        (but(genres=["Drama", "Drama"]), "genres"),
        (but(tags=[f"t{i}" for i in range(33)]), "tags"),
        (but(tags=[3]), "tags"),
        (but(duration=0), "duration"),
        (but(duration="60"), "duration"),
        (but(status="deleted"), "status"),
        (but(updated_at=far), "updated_at"),
        (but(updated_at="yesterday"), "updated_at"),
        (but(published_at="2024-01-01"), "published_at"),
        ('{"video_id":"v1","video_id":"v2"}', "payload"),
        ("not json {", "payload"),
    ]


def case_dead(tag):
    kafka, db = Kafka(tag, prefix="cat", catalogue=True), Database(tag)
    try:
        invalid = invalid_videos(tag)
        valid = [video(i, tag, version=1) for i in range(20)]
        with Service(env=service_env(kafka, db.dsn),
                     actors="publisher,event-ingestor") as svc:
            wait_assigned(svc)
            kafka.produce("videos", [p for p, _ in invalid], keyed=False)
            kafka.produce("videos", [keyed(d) for d in valid])  # behind the invalid ones
            svc.wait_for(lambda: count_rows(db.dsn, "features.videos") >= len(valid), 30,
                         "the valid changes")
            svc.wait_for(lambda: count_rows(db.dsn, "public.outbox") >= len(invalid), 30,
                         "the dead letters")
            check(count_rows(db.dsn, "features.videos") == len(valid),
                  "valid changes behind invalid ones were stored, the invalid ones not")
            out = psql(db.dsn, "SELECT topic, payload::text FROM public.outbox ORDER BY id")
            dead, topics = {}, set()
            for line in out.splitlines():
                topic, payload = line.split("\t", 1)
                topics.add(topic)
                doc = json.loads(payload)
                dead[doc["original"]] = doc
            check(topics == {kafka.topics["dead"]}, "outbox rows are for the dead-letter topic")
            check(len(dead) == len(invalid), f"{len(invalid)} dead letters, one per invalid change")
            for payload, field in invalid:
                doc = dead.get(payload)
                if not doc:
                    fail(f"no dead letter for {payload[:80]}")
                src = doc["source"]
                ok = (doc["reason"].startswith(field + ":")
                      and src["topic"] == kafka.topics["videos"]
                      and isinstance(src["partition"], int) and 0 <= src["partition"] < 4
                      and isinstance(src["offset"], int) and src["offset"] >= 0)
                check(ok, f"{payload[:50]}...: reason {doc['reason']!r}, source {src}")
            got = svc.wait_for(lambda: (m := kafka.consume("dead")) and len(m) >= len(invalid)
                               and m, 30, "the dead-letter topic")
            reasons = sorted(json.loads(m)["reason"].split(":")[0] for m in got)
            check(len(got) == len(invalid) and reasons == sorted(f for _, f in invalid),
                  "every invalid change is on the dead-letter topic with its reason")
    finally:
        kafka.close()
        db.close()


CASES = {"upsert": case_upsert, "retire": case_retire, "dead": case_dead}


def main():
    return run_cases(CASES, list(CASES), "catalogue ingestion")


if __name__ == "__main__":
    sys.exit(main())
