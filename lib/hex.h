/*  hex.h: lowercase hexadecimal text of bytes, the form every digest,
    key hash and trace id takes in recsd (checksums, API key hashes, W3C
    trace context, OTLP JSON ids). */
#ifndef RECSD_HEX_H
#define RECSD_HEX_H

#include <stddef.h>
#include <stdint.h>

//  Writes the 2 * n hex digits of bytes[0..n) and a NUL to out, which
//  holds at least 2 * n + 1 bytes. Returns out.
char *hex_encode(const uint8_t *bytes, size_t n, char *out);

#endif
