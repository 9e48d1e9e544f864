/*  prom_merge.c: regroup Prometheus text fragments by family (see .h). */
#include "prom_merge.h"

#include <czmq.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    char *help;        //  the whole "# HELP ..." line, or NULL
    char *type;        //  the metric type word ("counter", "histogram", ...), or NULL
    zlistx_t *samples; //  of char * lines
} s_family_t;

static void s_family_destroy(void **item)
{
    s_family_t *family = (s_family_t *)*item;
    if (!family)
        return;
    free(family->name);
    free(family->help);
    free(family->type);
    zlistx_destroy(&family->samples);
    free(family);
    *item = NULL;
}

typedef struct {
    zhashx_t *by_name; //  name -> s_family_t (borrowed from order)
    zlistx_t *order;   //  s_family_t, owned, first-appearance order
    bool failed;
} s_merge_t;

static s_family_t *s_family(s_merge_t *m, const char *name, size_t len)
{
    char key[256];
    if (len == 0 || len >= sizeof key)
        return NULL;
    memcpy(key, name, len);
    key[len] = '\0';
    s_family_t *family = (s_family_t *)zhashx_lookup(m->by_name, key);
    if (family)
        return family;
    family = calloc(1, sizeof *family);
    if (!family || !(family->name = strdup(key)) || !(family->samples = zlistx_new())) {
        void *item = family;
        s_family_destroy(&item);
        m->failed = true;
        return NULL;
    }
    zlistx_set_destructor(family->samples, (zlistx_destructor_fn *)zstr_free);
    zlistx_add_end(m->order, family);
    zhashx_insert(m->by_name, key, family);
    return family;
}

static size_t s_name_len(const char *p)
{
    size_t n = 0;
    while (p[n] && (p[n] == '_' || p[n] == ':' || (p[n] >= 'a' && p[n] <= 'z') ||
                    (p[n] >= 'A' && p[n] <= 'Z') || (n > 0 && p[n] >= '0' && p[n] <= '9')))
        n++;
    return n;
}

//  After a sample's name: optional {labels} (quoted values, backslash
//  escapes), a space, and a value strtod accepts (incl. +Inf, NaN).
static bool s_sample_value_ok(const char *p)
{
    if (*p == '{') {
        bool quoted = false;
        for (p++; *p && (quoted || *p != '}'); p++) {
            if (quoted && *p == '\\' && p[1])
                p++;
            else if (*p == '"')
                quoted = !quoted;
        }
        if (*p != '}')
            return false;
        p++;
    }
    if (*p != ' ')
        return false;
    char *end = NULL;
    strtod(p + 1, &end);
    return end != p + 1 && (*end == '\0' || *end == ' ');
}

//  The family a sample belongs to: its own name, or for histogram and
//  summary series the stem before _bucket / _sum / _count.
static s_family_t *s_sample_family(s_merge_t *m, const char *name, size_t len)
{
    static const char *suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        size_t sl = strlen(suffixes[i]);
        if (len > sl && memcmp(name + len - sl, suffixes[i], sl) == 0) {
            char stem[256];
            if (len - sl >= sizeof stem)
                break;
            memcpy(stem, name, len - sl);
            stem[len - sl] = '\0';
            s_family_t *family = (s_family_t *)zhashx_lookup(m->by_name, stem);
            if (family && family->type &&
                (strcmp(family->type, "histogram") == 0 || strcmp(family->type, "summary") == 0))
                return family;
        }
    }
    return s_family(m, name, len);
}

static void s_line(s_merge_t *m, const char *line, size_t len)
{
    char copy[4096];
    if (len == 0 || len >= sizeof copy)
        return;
    memcpy(copy, line, len);
    copy[len] = '\0';
    if (strncmp(copy, "# HELP ", 7) == 0 || strncmp(copy, "# TYPE ", 7) == 0) {
        const char *name = copy + 7;
        size_t nlen = s_name_len(name);
        s_family_t *family = s_family(m, name, nlen);
        if (!family)
            return;
        if (copy[2] == 'H' && !family->help)
            family->help = strdup(copy);
        else if (copy[2] == 'T' && !family->type && name[nlen] == ' ')
            family->type = strdup(name + nlen + 1);
        return;
    }
    if (copy[0] == '#')
        return; //  other comments carry nothing we keep
    size_t nlen = s_name_len(copy);
    if (nlen == 0 || !s_sample_value_ok(copy + nlen))
        return;
    s_family_t *family = s_sample_family(m, copy, nlen);
    char *sample = family ? strdup(copy) : NULL;
    if (!sample || !zlistx_add_end(family->samples, sample)) {
        free(sample);
        m->failed = true;
    }
}

char *prom_merge(const char *const *fragments, size_t n)
{
    s_merge_t m = {zhashx_new(), zlistx_new(), false};
    char *buf = NULL;
    size_t size = 0;
    FILE *out = NULL;
    if (!m.by_name || !m.order)
        goto done;
    zlistx_set_destructor(m.order, s_family_destroy);
    for (size_t i = 0; i < n; i++) {
        const char *p = fragments[i];
        while (p && *p) {
            const char *end = strchr(p, '\n');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            s_line(&m, p, len);
            p = end ? end + 1 : NULL;
        }
    }
    if (m.failed || !(out = open_memstream(&buf, &size)))
        goto done;
    for (s_family_t *f = (s_family_t *)zlistx_first(m.order); f;
         f = (s_family_t *)zlistx_next(m.order)) {
        if (zlistx_size(f->samples) == 0)
            continue; //  HELP/TYPE without samples: nothing to expose
        if (f->help)
            fprintf(out, "%s\n", f->help);
        if (f->type)
            fprintf(out, "# TYPE %s %s\n", f->name, f->type);
        for (char *line = (char *)zlistx_first(f->samples); line;
             line = (char *)zlistx_next(f->samples))
            fprintf(out, "%s\n", line);
    }
done:
    if (out && fclose(out) != 0) {
        free(buf);
        buf = NULL;
    }
    zhashx_destroy(&m.by_name);
    zlistx_destroy(&m.order);
    return buf; //  NULL if anything failed
}
