/*  test_trace.c: lib/trace.c without a collector: W3C traceparent parsing
    and formatting, ids, samplers (ratio on many ids, parent-based rules),
    attributes, NULL-safety, the OTEL_* variables and the metrics text.
    Spans that end go to an exporter pointed at a closed loopback port with
    a long schedule: nothing is sent while a test runs. Criterion runs each
    test in its own process, so setenv in one does not leak into another. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"
#include "trace_exporter.h"

static const char *s_vars[] = {"OTEL_SDK_DISABLED",           "OTEL_TRACES_EXPORTER",
                               "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                               "OTEL_EXPORTER_OTLP_HEADERS",  "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                               "OTEL_EXPORTER_OTLP_TIMEOUT",  "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                               "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                               "OTEL_SERVICE_NAME",           "OTEL_RESOURCE_ATTRIBUTES",
                               "OTEL_TRACES_SAMPLER",         "OTEL_TRACES_SAMPLER_ARG",
                               "OTEL_BSP_MAX_QUEUE_SIZE",     "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
                               "OTEL_BSP_SCHEDULE_DELAY",     "OTEL_BSP_EXPORT_TIMEOUT"};

static void s_clean_env(void)
{
    for (size_t i = 0; i < sizeof s_vars / sizeof *s_vars; i++)
        unsetenv(s_vars[i]);
}

//  Tracing on, towards nobody: a closed port, exported never (long
//  schedule, a batch as large as the queue), dropped at destroy (no
//  flush time).
static tracer_t *s_tracer_on(const char *sampler, const char *arg)
{
    s_clean_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9", 1);
    setenv("OTEL_BSP_SCHEDULE_DELAY", "3600000", 1);
    setenv("OTEL_BSP_EXPORT_TIMEOUT", "0", 1);
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100000", 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100000", 1);
    if (sampler)
        setenv("OTEL_TRACES_SAMPLER", sampler, 1);
    if (arg)
        setenv("OTEL_TRACES_SAMPLER_ARG", arg, 1);
    char err[256] = "";
    tracer_t *t = tracer_new("test", err, sizeof err);
    cr_assert_not_null(t, "tracer_new: %s", err);
    cr_assert(tracer_enabled(t));
    return t;
}

static trace_ctx_t s_ctx(uint64_t low, bool sampled)
{
    trace_ctx_t c = {.trace_id = {1}, .span_id = {0, 0, 0, 0, 0, 0, 0, 7}, .flags = sampled};
    for (int i = 15; i >= 8; i--, low >>= 8)
        c.trace_id[i] = (uint8_t)low;
    return c;
}

// ---- traceparent ------------------------------------------------------------

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

Test(trace, parse_and_format_round_trip)
{
    trace_ctx_t c;
    cr_assert_eq(trace_ctx_parse(TP, &c), 0);
    cr_assert_eq(c.trace_id[0], 0x4b);
    cr_assert_eq(c.trace_id[15], 0x36);
    cr_assert_eq(c.span_id[0], 0x00);
    cr_assert_eq(c.span_id[7], 0xb7);
    cr_assert(trace_ctx_sampled(&c));
    char out[TRACE_TRACEPARENT_LEN + 1];
    trace_ctx_format(&c, out);
    cr_assert_str_eq(out, TP);
    cr_assert_eq(strlen(out), TRACE_TRACEPARENT_LEN);

    cr_assert_eq(trace_ctx_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &c), 0);
    cr_assert_not(trace_ctx_sampled(&c));
    //  Other flag bits are kept and passed on.
    cr_assert_eq(trace_ctx_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", &c), 0);
    cr_assert(trace_ctx_sampled(&c));
    trace_ctx_format(&c, out);
    cr_assert_str_eq(out + 53, "03");
}

Test(trace, parse_rejects_malformed)
{
    static const char *bad[] = {
        "",
        "00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",   //  short
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", //  v00 + extra
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", //  v00 too long
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  //  uppercase
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  //  zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  //  zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  //  forbidden version
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  //  not hex
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  //  separator
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",  //  separator
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",  //  separator
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",  //  shifted dash
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", //  blank
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",  //  flags
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", //  v01: extra not after '-'
        "00-abc-def-01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        trace_ctx_t c = {.flags = 0x5a};
        cr_assert_eq(trace_ctx_parse(bad[i], &c), -1, "accepted \"%s\"", bad[i]);
        cr_assert_eq(c.flags, 0x5a, "ctx changed by a rejected \"%s\"", bad[i]);
    }
}

Test(trace, parse_accepts_later_versions_by_their_first_fields)
{
    trace_ctx_t c;
    cr_assert_eq(trace_ctx_parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c), 0);
    cr_assert_eq(
        trace_ctx_parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever", &c),
        0);
    cr_assert(trace_ctx_sampled(&c));
    char out[TRACE_TRACEPARENT_LEN + 1];
    trace_ctx_format(&c, out); //  passed on as version 00
    cr_assert_str_eq(out, TP);
}

Test(trace, null_safety)
{
    trace_ctx_t c;
    cr_assert_eq(trace_ctx_parse(NULL, &c), -1);
    cr_assert_eq(trace_ctx_parse(TP, NULL), -1);
    cr_assert_not(trace_ctx_sampled(NULL));
    cr_assert_null(tracer_start(NULL, "x", TRACE_KIND_SERVER, NULL));
    cr_assert_null(trace_span_child(NULL, "x", TRACE_KIND_INTERNAL));
    trace_span_set_str(NULL, "k", "v");
    trace_span_set_int(NULL, "k", 1);
    trace_span_set_double(NULL, "k", 1.0);
    trace_span_set_bool(NULL, "k", true);
    trace_span_set_error(NULL, "boom");
    cr_assert_eq(trace_span_ctx(NULL, &c), -1);
    trace_span_t *none = NULL;
    trace_span_end(&none);
    trace_span_end(NULL);
    char out[TRACE_TRACEPARENT_LEN + 1] = "x";
    trace_traceparent(NULL, NULL, out);
    cr_assert_str_eq(out, "");
    cr_assert_eq(trace_ctx_parse(TP, &c), 0);
    trace_traceparent(NULL, &c, out); //  an untraced request passes its caller's on
    cr_assert_str_eq(out, TP);
    cr_assert_not(tracer_enabled(NULL));
    tracer_stats_t st = {.dropped = 9};
    tracer_stats(NULL, &st);
    cr_assert_eq(st.dropped, 0);
    char buf[64];
    size_t len = 0;
    cr_assert_eq(tracer_metrics(NULL, "x", buf, sizeof buf, &len), 0);
    cr_assert_eq(len, 0);
    tracer_destroy(NULL);
    tracer_t *t = NULL;
    tracer_destroy(&t);
}

// ---- off --------------------------------------------------------------------

Test(trace, off_by_default_and_when_disabled)
{
    s_clean_env();
    char err[256];
    tracer_t *t = tracer_new("test", err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    cr_assert_not(tracer_enabled(t));
    cr_assert_null(tracer_start(t, "x", TRACE_KIND_SERVER, NULL));
    char buf[64];
    size_t len = 0;
    cr_assert_eq(tracer_metrics(t, "x", buf, sizeof buf, &len), 0);
    cr_assert_eq(len, 0, "nothing is written when tracing is off");
    tracer_destroy(&t);
    cr_assert_null(t);

    const char *offs[][2] = {{"OTEL_SDK_DISABLED", "TRUE"},
                             {"OTEL_TRACES_EXPORTER", "none"},
                             {"OTEL_TRACES_SAMPLER", "always_off"}};
    for (size_t i = 0; i < 3; i++) {
        s_clean_env();
        setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9", 1);
        setenv(offs[i][0], offs[i][1], 1);
        t = tracer_new("test", err, sizeof err);
        cr_assert_not_null(t, "%s", err);
        cr_assert_not(tracer_enabled(t), "%s=%s leaves tracing on", offs[i][0], offs[i][1]);
        cr_assert_null(tracer_start(t, "x", TRACE_KIND_SERVER, NULL));
        tracer_destroy(&t);
    }
}

// ---- env validation -----------------------------------------------------------

Test(trace, invalid_variables_are_errors)
{
    static const char *bad[][3] = {
        //  variable, value, what the error must name
        {"OTEL_TRACES_SAMPLER", "sometimes", "OTEL_TRACES_SAMPLER"},
        {"OTEL_TRACES_SAMPLER_ARG", "1.5", "OTEL_TRACES_SAMPLER_ARG"},
        {"OTEL_TRACES_SAMPLER_ARG", "half", "OTEL_TRACES_SAMPLER_ARG"},
        {"OTEL_TRACES_SAMPLER_ARG", "-0.1", "OTEL_TRACES_SAMPLER_ARG"},
        {"OTEL_BSP_MAX_QUEUE_SIZE", "0", "OTEL_BSP_MAX_QUEUE_SIZE"},
        {"OTEL_BSP_MAX_QUEUE_SIZE", "many", "OTEL_BSP_MAX_QUEUE_SIZE"},
        {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "-3", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"},
        {"OTEL_BSP_SCHEDULE_DELAY", "5s", "OTEL_BSP_SCHEDULE_DELAY"},
        {"OTEL_BSP_EXPORT_TIMEOUT", "-1", "OTEL_BSP_EXPORT_TIMEOUT"},
        {"OTEL_EXPORTER_OTLP_TIMEOUT", "0", "OTEL_EXPORTER_OTLP_TIMEOUT"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector:4318", "OTEL_EXPORTER_OTLP_ENDPOINT"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318",
         "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
        {"OTEL_SDK_DISABLED", "maybe", "OTEL_SDK_DISABLED"},
        {"OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER"},
        {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL"},
        {"OTEL_EXPORTER_OTLP_HEADERS", "novalue", "OTEL_EXPORTER_OTLP_HEADERS"},
        {"OTEL_EXPORTER_OTLP_HEADERS", "k=%zz", "OTEL_EXPORTER_OTLP_HEADERS"},
        {"OTEL_RESOURCE_ATTRIBUTES", "=v", "OTEL_RESOURCE_ATTRIBUTES"},
    };
    for (int with_endpoint = 0; with_endpoint < 2; with_endpoint++)
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            s_clean_env();
            if (with_endpoint)
                setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9", 1);
            if (strstr(bad[i][0], "SAMPLER_ARG"))
                setenv("OTEL_TRACES_SAMPLER", "traceidratio", 1);
            setenv(bad[i][0], bad[i][1], 1);
            char err[512] = "";
            tracer_t *t = tracer_new("test", err, sizeof err);
            cr_assert_null(t, "%s=%s accepted (endpoint %d)", bad[i][0], bad[i][1], with_endpoint);
            cr_assert(strstr(err, bad[i][2]) != NULL, "error \"%s\" does not name %s", err,
                      bad[i][2]);
            char check[512] = "";
            cr_assert_eq(tracer_check_env(check, sizeof check), -1, "check_env accepted %s=%s",
                         bad[i][0], bad[i][1]);
            cr_assert_str_eq(check, err, "check_env and tracer_new disagree");
        }
    //  The batch may not exceed the queue when both are given.
    s_clean_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9", 1);
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "10", 1);
    setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "20", 1);
    char err[512] = "";
    cr_assert_null(tracer_new("test", err, sizeof err));
    cr_assert(strstr(err, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"), "%s", err);
}

Test(trace, valid_variables_are_accepted)
{
    s_clean_env();
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9/", 1);
    setenv("OTEL_EXPORTER_OTLP_HEADERS", "a=1, b = two%2Cthree ,", 1);
    setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "A=override", 1);
    setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,team=recs", 1);
    setenv("OTEL_SERVICE_NAME", "recsd-test", 1);
    setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
    setenv("OTEL_TRACES_SAMPLER_ARG", "0.5", 1);
    setenv("OTEL_BSP_MAX_QUEUE_SIZE", "8", 1); //  the default batch (512) shrinks to it
    setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", 1);
    setenv("OTEL_SDK_DISABLED", "false", 1);
    setenv("OTEL_TRACES_EXPORTER", "otlp", 1);
    setenv("OTEL_BSP_EXPORT_TIMEOUT", "0", 1);
    char err[512] = "";
    cr_assert_eq(tracer_check_env(err, sizeof err), 0, "%s", err);
    tracer_t *t = tracer_new("test", err, sizeof err);
    cr_assert_not_null(t, "%s", err);
    cr_assert(tracer_enabled(t));
    tracer_destroy(&t);
}

// ---- ids and sampling -----------------------------------------------------------

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

Test(trace, ids_are_fresh_and_children_share_the_trace)
{
    tracer_t *t = s_tracer_on("always_on", NULL);
    enum { N = 5000 };
    static uint64_t ids[N];
    for (int i = 0; i < N; i++) {
        trace_span_t *root = tracer_start(t, "root", TRACE_KIND_SERVER, NULL);
        cr_assert_not_null(root);
        trace_ctx_t c;
        cr_assert_eq(trace_span_ctx(root, &c), 0);
        cr_assert(trace_ctx_sampled(&c));
        uint64_t v = 0;
        for (int b = 0; b < 8; b++)
            v = v << 8 | c.trace_id[8 + b];
        ids[i] = v;
        if (i == 0) {
            trace_span_t *child = trace_span_child(root, "child", TRACE_KIND_CLIENT);
            trace_ctx_t cc;
            cr_assert_eq(trace_span_ctx(child, &cc), 0);
            cr_assert_eq(memcmp(cc.trace_id, c.trace_id, 16), 0);
            cr_assert_neq(memcmp(cc.span_id, c.span_id, 8), 0);
            cr_assert_eq(memcmp(child->parent_span_id, c.span_id, 8), 0);
            cr_assert(child->has_parent);
            cr_assert_not(root->has_parent);
            char tp[TRACE_TRACEPARENT_LEN + 1];
            trace_traceparent(child, NULL, tp);
            trace_ctx_t back;
            cr_assert_eq(trace_ctx_parse(tp, &back), 0);
            cr_assert_eq(memcmp(back.span_id, cc.span_id, 8), 0);
            trace_span_end(&child);
            cr_assert_null(child);
        }
        trace_span_end(&root);
        cr_assert_null(root);
    }
    qsort(ids, N, sizeof *ids, s_cmp_u64);
    for (int i = 1; i < N; i++)
        cr_assert_neq(ids[i], ids[i - 1], "duplicate trace id");
    tracer_stats_t st;
    tracer_stats(t, &st);
    cr_assert_eq(st.queued, N + 1);
    tracer_destroy(&t);
}

Test(trace, ratio_sampler_on_many_roots)
{
    const double ratios[] = {0.0, 0.1, 0.5, 1.0};
    for (size_t r = 0; r < 4; r++) {
        char arg[16];
        snprintf(arg, sizeof arg, "%g", ratios[r]);
        tracer_t *t = s_tracer_on(r % 2 ? "traceidratio" : "parentbased_traceidratio", arg);
        int sampled = 0, n = 20000;
        for (int i = 0; i < n; i++) {
            trace_span_t *s = tracer_start(t, "r", TRACE_KIND_SERVER, NULL);
            sampled += s != NULL;
            trace_span_end(&s);
        }
        double got = (double)sampled / n;
        cr_assert(got >= ratios[r] - 0.02 && got <= ratios[r] + 0.02, "ratio %g sampled %g",
                  ratios[r], got);
        if (ratios[r] == 0.0)
            cr_assert_eq(sampled, 0);
        if (ratios[r] == 1.0)
            cr_assert_eq(sampled, n);
        tracer_destroy(&t);
    }
}

Test(trace, ratio_decides_on_the_low_eight_bytes)
{
    tracer_t *t = s_tracer_on("traceidratio", "0.25");
    //  0.25 * 2^64 = 0x4000000000000000: below is in, at or above is out,
    //  whatever the parent's flag (not parent-based).
    trace_ctx_t in = s_ctx(0x3fffffffffffffffull, false), out = s_ctx(0x4000000000000000ull, true);
    trace_span_t *a = tracer_start(t, "a", TRACE_KIND_SERVER, &in);
    trace_span_t *b = tracer_start(t, "b", TRACE_KIND_SERVER, &out);
    cr_assert_not_null(a);
    cr_assert_null(b);
    //  The same trace id is decided the same way every time (consistent
    //  across services using the same ratio).
    for (int i = 0; i < 100; i++) {
        trace_span_t *again = tracer_start(t, "a", TRACE_KIND_SERVER, &in);
        cr_assert_not_null(again);
        trace_span_end(&again);
    }
    cr_assert_eq(memcmp(a->ctx.trace_id, in.trace_id, 16), 0);
    cr_assert_eq(memcmp(a->parent_span_id, in.span_id, 8), 0);
    trace_span_end(&a);
    tracer_destroy(&t);
}

Test(trace, parent_based_follows_the_parent)
{
    const char *samplers[] = {"parentbased_always_on", "parentbased_always_off",
                              "parentbased_traceidratio"};
    for (int i = 0; i < 3; i++) {
        tracer_t *t = s_tracer_on(samplers[i], i == 2 ? "0" : NULL);
        //  A sampled parent: in (even at ratio 0), same trace, parent id kept.
        trace_ctx_t yes = s_ctx(0xffffffffffffffffull, true), no = s_ctx(1, false);
        trace_span_t *s = tracer_start(t, "s", TRACE_KIND_SERVER, &yes);
        cr_assert_not_null(s, "%s: sampled parent not followed", samplers[i]);
        cr_assert_eq(memcmp(s->ctx.trace_id, yes.trace_id, 16), 0);
        cr_assert_eq(memcmp(s->parent_span_id, yes.span_id, 8), 0);
        trace_span_end(&s);
        //  An unsampled parent: out; the caller's context still goes on.
        trace_span_t *n = tracer_start(t, "n", TRACE_KIND_SERVER, &no);
        cr_assert_null(n, "%s: unsampled parent not followed", samplers[i]);
        char tp[TRACE_TRACEPARENT_LEN + 1];
        trace_traceparent(n, &no, tp);
        trace_ctx_t back;
        cr_assert_eq(trace_ctx_parse(tp, &back), 0);
        cr_assert_eq(memcmp(back.trace_id, no.trace_id, 16), 0);
        cr_assert_not(trace_ctx_sampled(&back));
        //  A root: on for always_on, off for always_off and ratio 0.
        trace_span_t *root = tracer_start(t, "r", TRACE_KIND_SERVER, NULL);
        cr_assert_eq(root != NULL, i == 0, "%s: root decision", samplers[i]);
        trace_span_end(&root);
        tracer_destroy(&t);
    }
    //  always_on ignores the parent's flag.
    tracer_t *t = s_tracer_on("always_on", NULL);
    trace_ctx_t no = s_ctx(5, false);
    trace_span_t *s = tracer_start(t, "s", TRACE_KIND_SERVER, &no);
    cr_assert_not_null(s);
    trace_span_end(&s);
    tracer_destroy(&t);
}

// ---- attributes and status ------------------------------------------------------

Test(trace, attributes_status_and_limits)
{
    tracer_t *t = s_tracer_on(NULL, NULL);
    trace_span_t *s = tracer_start(
        t, "a-name-that-is-far-too-long-to-keep-whole-because-the-limit-is-sixty-three",
        TRACE_KIND_CLIENT, NULL);
    cr_assert_not_null(s);
    cr_assert_eq(strlen(s->name), TRACE_NAME_MAX);
    cr_assert_eq(s->kind, TRACE_KIND_CLIENT);
    trace_span_set_str(s, "s", "v");
    trace_span_set_int(s, "i", -42);
    trace_span_set_double(s, "d", 0.5);
    trace_span_set_bool(s, "b", true);
    trace_span_set_str(s, "s", "replaced"); //  same key: replaced, not added
    cr_assert_eq(s->n_attrs, 4);
    cr_assert_str_eq(s->attrs[0].v.s, "replaced");
    cr_assert_eq(s->attrs[1].type, TRACE_ATTR_INT);
    cr_assert_eq(s->attrs[1].v.i, -42);
    cr_assert_eq(s->attrs[2].v.d, 0.5);
    cr_assert(s->attrs[3].v.b);
    //  A long UTF-8 value is cut on a character boundary.
    char text[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(text, "\xc3\xa9"); //  é
    trace_span_set_str(s, "utf8", text);
    const char *cut = s->attrs[4].v.s;
    cr_assert(strlen(cut) <= TRACE_STR_MAX && strlen(cut) % 2 == 0, "cut inside a character");
    trace_span_set_str(s, "null", NULL);
    cr_assert_str_eq(s->attrs[5].v.s, "");
    trace_span_set_double(s, "nan", NAN);
    cr_assert_eq(s->attrs[6].type, TRACE_ATTR_STR);
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        trace_span_set_int(s, key, i);
    }
    cr_assert_eq(s->n_attrs, TRACE_ATTRS_MAX);
    cr_assert_eq(s->dropped_attrs, 7 + 20 - TRACE_ATTRS_MAX);
    cr_assert_not(s->error);
    trace_span_set_error(s, "ranker timed out");
    cr_assert(s->error);
    cr_assert_str_eq(s->status_message, "ranker timed out");
    trace_span_set_str(s, NULL, "no key"); //  ignored
    trace_span_end(&s);
    //  An out-of-range kind becomes INTERNAL.
    s = tracer_start(t, "k", (trace_kind_t)42, NULL);
    cr_assert_eq(s->kind, TRACE_KIND_INTERNAL);
    trace_span_end(&s);
    tracer_destroy(&t);
}

// ---- metrics ------------------------------------------------------------------

Test(trace, metrics_text)
{
    tracer_t *t = s_tracer_on(NULL, NULL);
    char buf[1024] = "prefix\n";
    size_t len = strlen(buf);
    cr_assert_eq(tracer_metrics(t, "ranker.2", buf, sizeof buf, &len), 0);
    cr_assert_eq(len, strlen(buf));
    cr_assert(strncmp(buf, "prefix\n# HELP recsd_trace_spans_total ", 38) == 0, "%s", buf);
    cr_assert(strstr(buf, "# TYPE recsd_trace_spans_total counter\n"));
    cr_assert(strstr(buf, "recsd_trace_spans_total{actor=\"ranker.2\",result=\"exported\"} 0\n"));
    cr_assert(strstr(buf, "recsd_trace_spans_total{actor=\"ranker.2\",result=\"dropped\"} 0\n"));
    cr_assert(strstr(buf, "recsd_trace_spans_total{actor=\"ranker.2\",result=\"failed\"} 0\n"));
    //  Too small: -1, and nothing past *len.
    char small[40] = "abc";
    size_t small_len = 3;
    cr_assert_eq(tracer_metrics(t, "x", small, sizeof small, &small_len), -1);
    cr_assert_eq(small_len, 3);
    cr_assert_str_eq(small, "abc");
    tracer_destroy(&t);
}
