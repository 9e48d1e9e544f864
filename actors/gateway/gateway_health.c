/*  gateway_health.c: readiness decisions and their JSON (see gateway_health.h). */
#include "gateway_health.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

void gateway_check_set(gateway_check_t *check, bool ok, const char *detail)
{
    check->ok = ok;
    snprintf(check->detail, sizeof check->detail, "%s", detail ? detail : "");
}

bool gateway_health_status_fresh(int64_t status_age_ms, int interval_ms)
{
    return status_age_ms >= 0 && status_age_ms <= 3 * (int64_t)interval_ms;
}

//  True if row is actor `name` or one of its instances ("ranker.2").
static bool s_is_instance(const char *row, const char *name)
{
    size_t len = strlen(name);
    return strncmp(row, name, len) == 0 && (row[len] == '\0' || row[len] == '.');
}

static bool s_state_down(const char *state)
{
    return strcmp(state, "failed") == 0 || strcmp(state, "stopping") == 0 ||
           strcmp(state, "stopped") == 0;
}

void gateway_health_actors(const char (*required)[32], int count, const proto_status_rep_t *status,
                           int64_t status_age_ms, int interval_ms, gateway_check_t *check)
{
    if (!status) {
        gateway_check_set(check, false, "supervisor not answering (no actor status yet)");
        return;
    }
    if (!gateway_health_status_fresh(status_age_ms, interval_ms)) {
        char detail[128];
        snprintf(detail, sizeof detail, "supervisor not answering (last status %lld ms ago)",
                 (long long)status_age_ms);
        gateway_check_set(check, false, detail);
        return;
    }
    //  Name every problem, not only the first: an operator reading the
    //  probe output should not have to fix them one at a time.
    char detail[sizeof check->detail] = "";
    size_t used = 0;
    int bad = 0;
    //  Every instance of a required actor must be up (or briefly restarting).
    for (int i = 0; i < count; i++) {
        int seen = 0;
        for (uint32_t r = 0; r <= (status->actors ? status->count : 0); r++) {
            const proto_actor_status_t *row = r < status->count ? &status->actors[r] : NULL;
            char problem[96];
            if (row && !s_is_instance(row->name, required[i]))
                continue;
            if (row)
                seen++;
            if (!row && !seen)
                snprintf(problem, sizeof problem, "%.32s is not supervised", required[i]);
            else if (row && s_state_down(row->state))
                snprintf(problem, sizeof problem, "%.32s is %.16s", row->name, row->state);
            else
                continue;
            bad++;
            int n =
                snprintf(detail + used, sizeof detail - used, "%s%s", used ? "; " : "", problem);
            if (n > 0 && (size_t)n < sizeof detail - used)
                used += (size_t)n;
        }
    }
    if (bad) {
        gateway_check_set(check, false, detail);
        return;
    }
    snprintf(detail, sizeof detail, "all %d required actors up", count);
    gateway_check_set(check, true, detail);
}

static json_t *s_check(const gateway_check_t *check)
{
    json_t *detail = json_string(check->detail);
    if (!detail)
        detail = json_string("<invalid text>");
    return json_pack("{s:b, s:o}", "ok", check->ok, "detail", detail);
}

char *gateway_health_render(const gateway_health_input_t *in, int *http_status)
{
    char *text = NULL;
    gateway_check_t draining;
    if (in->stopping)
        gateway_check_set(&draining, false, "stopping: not taking new connections");
    else if (in->draining)
        gateway_check_set(&draining, false, "draining: the supervisor asked to shed traffic");
    else
        gateway_check_set(&draining, true, "not draining");
    bool ready = in->postgres.ok && in->redis.ok && in->actors.ok && draining.ok;

    json_t *actors = s_check(&in->actors);
    json_t *map = json_object();
    json_t *doc = NULL;
    if (!actors || !map)
        goto done;
    if (in->status && in->status->actors)
        for (uint32_t i = 0; i < in->status->count; i++) {
            json_t *state = json_string(in->status->actors[i].state);
            if (!state || json_object_set_new(map, in->status->actors[i].name, state))
                goto done;
        }
    if (json_object_set(actors, "actors", map))
        goto done;
    doc = json_pack("{s:b, s:{s:o, s:o, s:O, s:o}}", "ready", ready, "checks", "postgres",
                    s_check(&in->postgres), "redis", s_check(&in->redis), "actors", actors,
                    "draining", s_check(&draining));
    if (!doc)
        goto done;
    text = json_dumps(doc, JSON_COMPACT);
    *http_status = ready ? 200 : 503;
done:
    json_decref(doc);
    json_decref(actors);
    json_decref(map);
    return text;
}
