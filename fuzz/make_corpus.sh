#!/bin/sh
# make_corpus.sh: writes seed inputs for fuzz_proto_decode into fuzz/corpus/:
# one valid message of every type, made by the real encoder (so the seeds
# follow the format), plus a few hand-written near misses.
# Usage: fuzz/make_corpus.sh   (needs cc and libmsgpack-dev)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
out="$here/corpus"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"

cat >"$tmp/gen.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include "proto/proto.h"

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    for (int type = 1; type <= PROTO_TYPE_MAX; type++) {
        proto_msg_t *msg = proto_msg_new((proto_type_t)type, "seed-0123456789");
        if (!msg)
            return 1;
        if (type % 2)
            snprintf(msg->header.traceparent, sizeof msg->header.traceparent, "%s",
                     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        msg->header.deadline_ms = 1700000000000ull;
        switch (type) {
        case PROTO_HEARTBEAT:
            snprintf(msg->body.heartbeat.name, sizeof msg->body.heartbeat.name, "ranker");
            msg->body.heartbeat.pid = 42;
            snprintf(msg->body.heartbeat.state, sizeof msg->body.heartbeat.state, "ready");
            msg->body.heartbeat.handled = 300;
            break;
        case PROTO_STATUS_REP:
            msg->body.status.uptime_ms = 1000;
            msg->body.status.count = 2;
            msg->body.status.actors = calloc(2, sizeof(proto_actor_status_t));
            if (!msg->body.status.actors)
                return 1;
            for (int i = 0; i < 2; i++) {
                proto_actor_status_t *row = &msg->body.status.actors[i];
                snprintf(row->name, sizeof row->name, "actor%d", i);
                snprintf(row->state, sizeof row->state, i ? "backoff" : "running");
                row->pid = i ? 0 : 77;
                row->uptime_ms = row->heartbeat_age_ms = i ? -1 : 5;
            }
            break;
        case PROTO_RESTART_REQ:
            snprintf(msg->body.restart.actor, sizeof msg->body.restart.actor, "trainer");
            break;
        case PROTO_RESULT:
            msg->body.result.code = -1;
            snprintf(msg->body.result.message, sizeof msg->body.result.message, "not found");
            break;
        case PROTO_RECS_REQ:
            snprintf(msg->body.recs_req.user_id, sizeof msg->body.recs_req.user_id, "u1");
            msg->body.recs_req.limit = 10;
            break;
        case PROTO_RECS_REP:
            snprintf(msg->body.recs_rep.user_id, sizeof msg->body.recs_rep.user_id, "u1");
            snprintf(msg->body.recs_rep.source, sizeof msg->body.recs_rep.source, "model");
            msg->body.recs_rep.count = 2;
            msg->body.recs_rep.items = calloc(2, sizeof(proto_rec_item_t));
            if (!msg->body.recs_rep.items)
                return 1;
            snprintf(msg->body.recs_rep.items[0].video_id, PROTO_ID_MAX + 1, "v1");
            msg->body.recs_rep.items[0].score = 0.75;
            snprintf(msg->body.recs_rep.items[1].video_id, PROTO_ID_MAX + 1, "v2");
            msg->body.recs_rep.items[1].score = -0.5;
            break;
        case PROTO_INTERACTION:
            snprintf(msg->body.interaction.user_id, sizeof msg->body.interaction.user_id, "u1");
            snprintf(msg->body.interaction.video_id, sizeof msg->body.interaction.video_id, "v1");
            snprintf(msg->body.interaction.kind, sizeof msg->body.interaction.kind, "watch");
            msg->body.interaction.weight = 0.8;
            msg->body.interaction.occurred_ms = 1700000000000ull;
            break;
        case PROTO_LOG_LEVEL:
            snprintf(msg->body.log_level.level, sizeof msg->body.log_level.level, "debug");
            snprintf(msg->body.log_level.actor, sizeof msg->body.log_level.actor, "ranker");
            break;
        default:
            break;
        }
        char err[256], path[4096], *data;
        size_t size;
        if (proto_encode(msg, &data, &size, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", proto_type_name(type), err);
            return 1;
        }
        snprintf(path, sizeof path, "%s/%s.bin", argv[1], proto_type_name(type));
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
            return 1;
        free(data);
        proto_msg_destroy(&msg);
    }
    return 0;
}
C
# shellcheck disable=SC2046
cc -std=c17 -D_GNU_SOURCE -I"$root" -o "$tmp/gen" "$tmp/gen.c" "$root/proto/proto.c" \
    $(pkg-config --cflags --libs msgpack) -lm
"$tmp/gen" "$out"

# Near misses: wrong version, a container claiming 4G elements, deep nesting.
printf '\226\002\002\240\240\000\200' >"$out/bad_version.bin"
printf '\226\001\005\240\240\000\203\250draining\302\251uptime_ms\000\246actors\335\377\377\377\377' \
    >"$out/huge_count.bin"
printf '\221\221\221\221\221\221\221\221\221\221\221\221\221\221\221\221\221\221\300' >"$out/deep.bin"
ls "$out"
