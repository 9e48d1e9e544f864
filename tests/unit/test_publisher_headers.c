/*  test_publisher_headers.c: outbox headers JSON -> Kafka headers
    (actors/publisher/publisher_headers.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "actors/publisher/publisher_headers.h"
#include "leak_check.h"

TestSuite(publisher_headers, .fini = leak_check_fini);

//  Asserts that header name (its idx-th occurrence) has value (NULL: null).
static void s_expect(rd_kafka_headers_t *hdrs, const char *name, size_t idx, const char *value)
{
    const void *got = NULL;
    size_t len = 0;
    cr_assert_eq(rd_kafka_header_get(hdrs, idx, name, &got, &len), RD_KAFKA_RESP_ERR_NO_ERROR,
                 "header %s #%zu missing", name, idx);
    if (!value) {
        cr_assert_null(got, "header %s should be null", name);
        return;
    }
    cr_assert_eq(len, strlen(value), "header %s length", name);
    cr_assert(memcmp(got, value, len) == 0, "header %s = %.*s", name, (int)len, (const char *)got);
}

Test(publisher_headers, object_members_plus_outbox_id)
{
    char err[256];
    rd_kafka_headers_t *hdrs = publisher_headers_build(
        "{\"traceparent\": \"00-ab-cd-01\", \"empty\": \"\", \"n\": 5, \"obj\": {\"a\": [1, true]},"
        " \"none\": null, \"outbox-id\": \"spoofed\", \"utf8\": \"caf\\u00e9\"}",
        42, err, sizeof err);
    cr_assert(hdrs, "%s", err);
    cr_assert_eq(rd_kafka_header_cnt(hdrs), 7);
    s_expect(hdrs, "traceparent", 0, "00-ab-cd-01");
    s_expect(hdrs, "empty", 0, "");
    s_expect(hdrs, "n", 0, "5");
    s_expect(hdrs, "obj", 0, "{\"a\":[1,true]}");
    s_expect(hdrs, "none", 0, NULL);
    s_expect(hdrs, "utf8", 0, "caf\xc3\xa9");
    //  Ours replaces the row's: exactly one outbox-id.
    s_expect(hdrs, "outbox-id", 0, "42");
    const void *v;
    size_t len;
    cr_assert_eq(rd_kafka_header_get(hdrs, 1, "outbox-id", &v, &len), RD_KAFKA_RESP_ERR__NOENT);
    rd_kafka_headers_destroy(hdrs);
}

Test(publisher_headers, empty_or_missing_gives_only_outbox_id)
{
    char err[256];
    const char *inputs[] = {"{}", "", NULL};
    for (size_t i = 0; i < 3; i++) {
        rd_kafka_headers_t *hdrs =
            publisher_headers_build(inputs[i], 9223372036854775807LL, err, sizeof err);
        cr_assert(hdrs, "%s", err);
        cr_assert_eq(rd_kafka_header_cnt(hdrs), 1);
        s_expect(hdrs, "outbox-id", 0, "9223372036854775807");
        rd_kafka_headers_destroy(hdrs);
    }
}

Test(publisher_headers, rejects_what_is_not_an_object)
{
    const char *inputs[] = {"[1,2]", "\"text\"", "42", "{\"a\": ", "not json", "null"};
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        char err[256] = "";
        cr_assert_null(publisher_headers_build(inputs[i], 1, err, sizeof err), "%s accepted",
                       inputs[i]);
        cr_assert(err[0], "no reason given for %s", inputs[i]);
    }
}
