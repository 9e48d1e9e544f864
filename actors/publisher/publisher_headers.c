/*  publisher_headers.c: outbox headers JSON -> Kafka headers (see
    publisher_headers.h). */
#include "publisher_headers.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Adds one member. Returns 0, or -1 with the reason in err.
static int s_add(rd_kafka_headers_t *hdrs, const char *name, json_t *value, char *err,
                 size_t errlen)
{
    rd_kafka_resp_err_t rc;
    if (json_is_null(value))
        rc = rd_kafka_header_add(hdrs, name, -1, NULL, 0);
    else if (json_is_string(value))
        rc = rd_kafka_header_add(hdrs, name, -1, json_string_value(value),
                                 (ssize_t)json_string_length(value));
    else {
        char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text) {
            snprintf(err, errlen, "header %s: cannot encode its value", name);
            return -1;
        }
        rc = rd_kafka_header_add(hdrs, name, -1, text, -1);
        free(text);
    }
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "header %s: %s", name, rd_kafka_err2str(rc));
        return -1;
    }
    return 0;
}

rd_kafka_headers_t *publisher_headers_build(const char *json, int64_t outbox_id, char *err,
                                            size_t errlen)
{
    json_t *doc = NULL;
    rd_kafka_headers_t *hdrs = NULL;
    if (json && *json) {
        json_error_t jerr;
        //  JSON_DECODE_ANY so that a scalar is reported as "not an object"
        //  rather than as a parse error.
        doc = json_loads(json, JSON_DECODE_ANY, &jerr);
        if (!doc) {
            snprintf(err, errlen, "headers are not valid JSON: %s", jerr.text);
            goto err;
        }
        if (!json_is_object(doc)) {
            snprintf(err, errlen, "headers must be a JSON object");
            goto err;
        }
    }
    hdrs = rd_kafka_headers_new(doc ? json_object_size(doc) + 1 : 1);
    if (!hdrs) {
        snprintf(err, errlen, "out of memory");
        goto err;
    }
    if (doc) {
        const char *name;
        json_t *value;
        json_object_foreach(doc, name, value)
        {
            if (strcmp(name, PUBLISHER_HEADER_OUTBOX_ID) == 0)
                continue;
            if (s_add(hdrs, name, value, err, errlen) != 0)
                goto err;
        }
    }
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, outbox_id);
    if (rd_kafka_header_add(hdrs, PUBLISHER_HEADER_OUTBOX_ID, -1, id, -1) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errlen, "cannot add the outbox-id header");
        goto err;
    }
    json_decref(doc);
    return hdrs;
err:
    if (hdrs)
        rd_kafka_headers_destroy(hdrs);
    json_decref(doc);
    return NULL;
}
