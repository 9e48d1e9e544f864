/*  log.c: JSON-lines logger (see log.h). */
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log_file.h"

//  Write-once process identity and sink, see log.h.
static struct {
    char actor[32];
    log_file_t *file; //  NULL: stderr
} s_log = {"recsd", NULL};

//  The run-time level (log_set_level), and whether the file is failing now
//  (so that a run of failures is reported once, and its end once).
static atomic_int s_min_level = LOG_LEVEL_INFO;
static atomic_bool s_file_failing = false;

static const char *s_level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *actor, log_level_t min_level)
{
    snprintf(s_log.actor, sizeof s_log.actor, "%s", actor ? actor : "recsd");
    log_set_level(min_level);
}

int log_level_parse(const char *text, log_level_t *level)
{
    for (int i = 0; text && i <= LOG_LEVEL_ERROR; i++) {
        if (strcmp(text, s_level_names[i]) == 0) {
            *level = (log_level_t)i;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(log_level_t level)
{
    return (int)level >= LOG_LEVEL_DEBUG && (int)level <= LOG_LEVEL_ERROR ? s_level_names[level]
                                                                          : "unknown";
}

void log_set_level(log_level_t level)
{
    if ((int)level < LOG_LEVEL_DEBUG || (int)level > LOG_LEVEL_ERROR)
        return; //  a programmer error; keep the current level
    atomic_store_explicit(&s_min_level, (int)level, memory_order_relaxed);
}

log_level_t log_get_level(void)
{
    return (log_level_t)atomic_load_explicit(&s_min_level, memory_order_relaxed);
}

bool log_enabled(log_level_t level)
{
    return (int)level >= atomic_load_explicit(&s_min_level, memory_order_relaxed);
}

int log_open_file(const char *path, uint64_t max_bytes, int keep, char *err, size_t errlen)
{
    log_file_t *file = log_file_new(path, max_bytes, keep, err, errlen);
    if (!file)
        return -1;
    log_file_destroy(&s_log.file);
    s_log.file = file;
    atomic_store(&s_file_failing, false);
    return 0;
}

void log_close_file(void)
{
    log_file_destroy(&s_log.file);
}

uint64_t log_file_write_failures(void)
{
    return s_log.file ? log_file_failures(s_log.file) : 0;
}

//  Formats one line, newline included, into a new buffer (caller frees).
//  Returns NULL only if even the fallback line cannot be built.
static char *s_format(log_level_t level, const char *request_id, const char *msg, size_t *len)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", (long)(tv.tv_usec / 1000));

    //  jansson does the escaping: messages may carry bytes from the network.
    json_t *line = json_pack("{s:s, s:s, s:s, s:i, s:s}", "ts", ts, "level", s_level_names[level],
                             "actor", s_log.actor, "pid", (int)getpid(), "msg", msg);
    if (!line)
        line = json_pack("{s:s, s:s, s:s, s:i, s:s}", "ts", ts, "level", s_level_names[level],
                         "actor", s_log.actor, "pid", (int)getpid(), "msg",
                         "<log message was not valid UTF-8>");
    if (!line)
        return NULL;
    if (request_id && *request_id)
        json_object_set_new(line, "request_id", json_string(request_id));
    char *text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(line);
    if (!text)
        return NULL;
    *len = strlen(text);
    text[(*len)++] = '\n'; //  overwrite the NUL: one write(2) per line
    return text;
}

static void s_stderr(const char *text, size_t len)
{
    ssize_t rc = write(STDERR_FILENO, text, len);
    (void)rc; //  nowhere left to report a failed write to stderr
}

//  A note about the sink itself, written straight to `file` (or stderr).
static void s_note(log_level_t level, log_file_t *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void s_note(log_level_t level, log_file_t *file, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len;
    char *text = s_format(level, NULL, msg, &len);
    if (!text)
        return;
    if (!file || log_file_write(file, text, len) != 0)
        s_stderr(text, len);
    free(text);
}

void log_write(log_level_t level, const char *request_id, const char *fmt, ...)
{
    if ((int)level < LOG_LEVEL_DEBUG || (int)level > LOG_LEVEL_ERROR || !log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    size_t len;
    char *text = s_format(level, request_id, msg, &len);
    if (!text)
        return;
    log_file_t *file = s_log.file;
    if (!file) {
        s_stderr(text, len);
    } else if (log_file_write(file, text, len) == 0) {
        if (atomic_load(&s_file_failing) && atomic_exchange(&s_file_failing, false))
            s_note(LOG_LEVEL_WARN, file,
                   "log file %s is writable again; %llu lines went to stderr so far",
                   log_file_path(file), (unsigned long long)log_file_failures(file));
    } else {
        //  Never lose the line: it goes to stderr, and the first failure of
        //  a run says why, so that stderr alone explains the gap in the file.
        int saved = errno;
        if (!atomic_exchange(&s_file_failing, true))
            s_note(LOG_LEVEL_ERROR, NULL,
                   "cannot write log file %s: %s; lines go to stderr until it can be written "
                   "again",
                   log_file_path(file), strerror(saved));
        s_stderr(text, len);
    }
    free(text);
}
