/*  log.h: JSON-lines logging on stderr.

    One line per event: {"ts","level","actor","pid","msg"[,"request_id"]}.
    The process identity (actor name, minimum level) is set once by
    log_init() at start-up, before any thread is created, and is read-only
    afterwards; that is the only process-wide state in lib/ and it is
    write-once by design (every line needs it, and threading a logger
    through every call would add noise without safety).
    Writes are single write(2) calls of whole lines, so lines from several
    threads or processes sharing stderr do not interleave.
*/
#ifndef RECSD_LOG_H
#define RECSD_LOG_H

#include <stdarg.h>

typedef enum { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR } log_level_t;

//  Sets the actor name (copied) and the minimum level. Call once, early.
void log_init(const char *actor, log_level_t min_level);

//  Parses "debug", "info", "warn", "error". Returns 0, or -1 if unknown.
int log_level_parse(const char *text, log_level_t *level);

//  Logs a formatted message. request_id may be NULL. Cannot fail visibly:
//  a line that cannot be written is dropped (stderr is the last resort).
void log_write(log_level_t level, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_write(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_write(LOG_LEVEL_ERROR, NULL, __VA_ARGS__)

#endif
