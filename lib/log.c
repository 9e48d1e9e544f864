/*  log.c: JSON-lines logger (see log.h). */
#include "log.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

//  Write-once process identity, see log.h.
static struct {
    char actor[32];
    log_level_t min_level;
} s_log = {"recsd", LOG_LEVEL_INFO};

static const char *s_level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *actor, log_level_t min_level)
{
    snprintf(s_log.actor, sizeof s_log.actor, "%s", actor ? actor : "recsd");
    s_log.min_level = min_level;
}

int log_level_parse(const char *text, log_level_t *level)
{
    for (int i = 0; i <= LOG_LEVEL_ERROR; i++) {
        if (strcmp(text, s_level_names[i]) == 0) {
            *level = (log_level_t)i;
            return 0;
        }
    }
    return -1;
}

void log_write(log_level_t level, const char *request_id, const char *fmt, ...)
{
    if (level < s_log.min_level)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

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
        line = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", s_level_names[level], "msg",
                         "<log message was not valid UTF-8>");
    if (!line)
        return;
    if (request_id && *request_id)
        json_object_set_new(line, "request_id", json_string(request_id));
    char *text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(line);
    if (!text)
        return;
    size_t len = strlen(text);
    text[len] = '\n'; //  overwrite the NUL: one write(2) per line
    ssize_t rc = write(STDERR_FILENO, text, len + 1);
    (void)rc; //  nowhere left to report a failed write to stderr
    free(text);
}
