/*  log.h: JSON-lines logging, on stderr or into a rotated file.

    One line per event, one JSON object per line, ASCII only (non-ASCII is
    \u-escaped). The field set is stable (documented in README "Logs"):
        ts          UTC time, "2024-05-01T12:00:00.123Z" (milliseconds)
        level       "debug", "info", "warn" or "error"
        actor       the process: "supervisor", an actor instance name
                    ("ranker", "ranker.2"), or a command ("ctl", "migrate")
        pid         the process id
        msg         the message
        request_id  only on lines about one request
    New fields may be added; none is renamed or removed.

    Process-wide state. lib/ has no global mutable state except this, by
    design (every line needs it, and threading a logger through every call
    would add noise without safety):
    - identity (the actor name) and the file sink are write-once: set by
      log_init() and log_open_file() at start-up, before any thread is
      created, and read-only afterwards;
    - the minimum level is an atomic, changed at run time by log_set_level()
      (the supervisor's `recsd ctl log-level`) from any thread; log_write
      reads it with a relaxed load, so a change reaches other threads
      promptly but not at an exact line.
    Writes are single write(2) calls of whole lines, so lines from several
    threads or processes sharing stderr or the file do not interleave.
*/
#ifndef RECSD_LOG_H
#define RECSD_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR } log_level_t;

//  Sets the actor name (copied) and the minimum level. Call once, early.
void log_init(const char *actor, log_level_t min_level);

//  Parses "debug", "info", "warn", "error". Returns 0, or -1 if unknown.
int log_level_parse(const char *text, log_level_t *level);

//  "debug", "info", "warn" or "error"; "unknown" if out of range. Static.
const char *log_level_name(log_level_t level);

//  Changes the minimum level at run time. Safe from any thread.
void log_set_level(log_level_t level);

//  The current minimum level.
log_level_t log_get_level(void);

//  True if a line of this level would be written now; for callers that
//  would otherwise build costly debug output for nothing.
bool log_enabled(log_level_t level);

//  Sends every line to the file at path from now on instead of stderr,
//  rotating it at max_bytes and keeping `keep` rotated files (see
//  log_file.h). Call once, after log_init and before any thread is
//  created. Lines the file cannot take go to stderr; the first such
//  failure (of each run of failures) is reported on stderr too. Returns 0,
//  or -1 with a reason in err (lines keep going to stderr).
int log_open_file(const char *path, uint64_t max_bytes, int keep, char *err, size_t errlen);

//  Closes the file; lines go to stderr again. Only when no other thread
//  logs (tests, exit paths).
void log_close_file(void);

//  Lines that could not be written to the file (and went to stderr).
uint64_t log_file_write_failures(void);

//  Logs a formatted message. request_id may be NULL. Cannot fail visibly:
//  a line that cannot be written to the file goes to stderr, and one that
//  cannot be written to stderr is dropped (stderr is the last resort).
void log_write(log_level_t level, const char *request_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_write(LOG_LEVEL_DEBUG, NULL, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, NULL, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, NULL, __VA_ARGS__)
#define log_error(...) log_write(LOG_LEVEL_ERROR, NULL, __VA_ARGS__)

#endif
