/*  errbuf.h: writing a reason into a caller's error buffer, the one
    convention every recsd function that can fail follows
    (`char *err, size_t errlen`).
*/
#ifndef RECSD_ERRBUF_H
#define RECSD_ERRBUF_H

#include <stddef.h>

//  printf into err (truncated to errlen); nothing when err is NULL or
//  errlen 0, so callers may pass no buffer.
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
