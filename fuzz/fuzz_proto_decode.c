/*  fuzz_proto_decode.c: libFuzzer target for proto_decode.

    Any input must decode to NULL or to a message that validates; a message
    that decodes must encode again, decode to the same type, and re-encode
    to the very same bytes (encode is deterministic, so a difference means
    decode and encode disagree about a field). Anything else aborts, which
    libFuzzer reports as a crash. ASan/LSan catch overreads and leaks.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_fail(const char *what, const char *err)
{
    fprintf(stderr, "fuzz_proto_decode: %s: %s\n", what, err);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    proto_msg_t *msg = proto_decode(data, size, err, sizeof err);
    if (!msg) {
        if (err[0] == '\0')
            s_fail("decode failed without a reason", "");
        return 0;
    }
    if (proto_validate(msg, err, sizeof err) != 0)
        s_fail("decoded message does not validate", err);

    char *first = NULL, *second = NULL;
    size_t first_size = 0, second_size = 0;
    if (proto_encode(msg, &first, &first_size, err, sizeof err) != 0)
        s_fail("decoded message does not encode", err);
    proto_msg_t *again = proto_decode(first, first_size, err, sizeof err);
    if (!again)
        s_fail("re-encoded message does not decode", err);
    if (again->header.type != msg->header.type)
        s_fail("type changed in a round trip", proto_type_name(again->header.type));
    if (proto_encode(again, &second, &second_size, err, sizeof err) != 0)
        s_fail("second encode failed", err);
    if (second_size != first_size || memcmp(first, second, first_size) != 0)
        s_fail("round trip changed the encoding", proto_type_name(msg->header.type));

    free(first);
    free(second);
    proto_msg_destroy(&again);
    proto_msg_destroy(&msg);
    return 0;
}
