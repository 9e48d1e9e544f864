/*  test_log.c: the JSON-lines logger (log.c): the documented field set,
    the run-time level, the file sink and its fallback to stderr.

    Criterion runs every test in its own worker process, so a test may
    redirect stderr and change the process-wide log state freely.
*/
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leak_check.h"
#include "log.h"
#include "tmp_dir.h"

static char s_dir[256];
static char s_err_path[300]; //  stderr is redirected here

static void s_setup(void)
{
    cr_assert_eq(tmp_dir_make(s_dir, sizeof s_dir, "recsd-log"), 0);
    snprintf(s_err_path, sizeof s_err_path, "%s/stderr", s_dir);
    int fd = open(s_err_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
}

static void s_teardown(void)
{
    log_close_file();
    tmp_dir_remove(s_dir);
    leak_check_fini();
}

TestSuite(log, .init = s_setup, .fini = s_teardown);

//  Parses every line of a file into a JSON array (caller decrefs), asserting
//  that each line is one JSON object.
static json_t *s_lines(const char *path)
{
    json_t *lines = json_array();
    FILE *f = fopen(path, "r");
    if (!f)
        return lines;
    char buf[4096];
    while (fgets(buf, sizeof buf, f)) {
        size_t len = strlen(buf);
        cr_assert(len > 0 && buf[len - 1] == '\n', "unterminated line: %s", buf);
        json_error_t error;
        json_t *line = json_loads(buf, 0, &error);
        cr_assert(json_is_object(line), "not a JSON object: %s (%s)", buf, error.text);
        json_array_append_new(lines, line);
    }
    fclose(f);
    return lines;
}

static const char *s_str(json_t *line, const char *key)
{
    return json_string_value(json_object_get(line, key));
}

Test(log, lines_have_the_documented_fields)
{
    log_init("ranker.2", LOG_LEVEL_INFO);
    log_info("hello %d \"quoted\" caf\xc3\xa9", 42);
    log_write(LOG_LEVEL_WARN, "req-123", "with a request id");
    log_write(LOG_LEVEL_ERROR, NULL, "bad utf-8 \xff here");
    json_t *lines = s_lines(s_err_path);
    cr_assert_eq(json_array_size(lines), 3);
    const char *fields[] = {"ts", "level", "actor", "pid", "msg"};
    for (size_t i = 0; i < 3; i++) {
        json_t *line = json_array_get(lines, i);
        for (size_t k = 0; k < 5; k++)
            cr_assert_not_null(json_object_get(line, fields[k]), "line %zu lacks %s", i, fields[k]);
        cr_assert_eq(json_object_size(line), i == 1 ? 6 : 5, "unexpected fields in line %zu", i);
        cr_assert_str_eq(s_str(line, "actor"), "ranker.2");
        cr_assert_eq(json_integer_value(json_object_get(line, "pid")), getpid());
        const char *ts = s_str(line, "ts");
        //  2024-05-01T12:00:00.123Z
        cr_assert(ts && strlen(ts) == 24 && ts[10] == 'T' && ts[19] == '.' && ts[23] == 'Z', "%s",
                  ts);
    }
    json_t *first = json_array_get(lines, 0);
    cr_assert_str_eq(s_str(first, "level"), "info");
    cr_assert_str_eq(s_str(first, "msg"), "hello 42 \"quoted\" caf\xc3\xa9");
    json_t *second = json_array_get(lines, 1);
    cr_assert_str_eq(s_str(second, "level"), "warn");
    cr_assert_str_eq(s_str(second, "request_id"), "req-123");
    json_t *third = json_array_get(lines, 2);
    cr_assert_str_eq(s_str(third, "level"), "error");
    cr_assert_str_eq(s_str(third, "msg"), "<log message was not valid UTF-8>");
    json_decref(lines);
}

Test(log, level_names_and_parsing)
{
    const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        log_level_t level;
        cr_assert_eq(log_level_parse(names[i], &level), 0);
        cr_assert_eq((int)level, i);
        cr_assert_str_eq(log_level_name(level), names[i]);
    }
    log_level_t level = LOG_LEVEL_WARN;
    cr_assert_eq(log_level_parse("DEBUG", &level), -1);
    cr_assert_eq(log_level_parse("", &level), -1);
    cr_assert_eq(log_level_parse(NULL, &level), -1);
    cr_assert_eq(level, LOG_LEVEL_WARN, "a failed parse changed the level");
    cr_assert_str_eq(log_level_name((log_level_t)7), "unknown");
}

static void *s_set_debug(void *arg)
{
    (void)arg;
    log_set_level(LOG_LEVEL_DEBUG);
    return NULL;
}

Test(log, level_changes_at_run_time_from_any_thread)
{
    log_init("gateway", LOG_LEVEL_INFO);
    log_debug("hidden 1");
    cr_assert_not(log_enabled(LOG_LEVEL_DEBUG));
    cr_assert(log_enabled(LOG_LEVEL_INFO));
    pthread_t thread;
    cr_assert_eq(pthread_create(&thread, NULL, s_set_debug, NULL), 0);
    cr_assert_eq(pthread_join(thread, NULL), 0);
    cr_assert_eq(log_get_level(), LOG_LEVEL_DEBUG);
    log_debug("shown 1");
    log_set_level(LOG_LEVEL_ERROR);
    log_info("hidden 2");
    log_warn("hidden 3");
    log_error("shown 2");
    log_set_level((log_level_t)9); //  ignored
    cr_assert_eq(log_get_level(), LOG_LEVEL_ERROR);
    log_write((log_level_t)9, NULL, "out of range level: dropped");
    json_t *lines = s_lines(s_err_path);
    cr_assert_eq(json_array_size(lines), 2);
    cr_assert_str_eq(s_str(json_array_get(lines, 0), "msg"), "shown 1");
    cr_assert_str_eq(s_str(json_array_get(lines, 0), "level"), "debug");
    cr_assert_str_eq(s_str(json_array_get(lines, 1), "msg"), "shown 2");
    json_decref(lines);
}

Test(log, file_sink_takes_the_lines_instead_of_stderr)
{
    log_init("supervisor", LOG_LEVEL_INFO);
    char path[320], err[256] = "";
    snprintf(path, sizeof path, "%s/recsd.log", s_dir);
    cr_assert_eq(log_open_file(path, 4096, 2, err, sizeof err), 0, "%s", err);
    for (int i = 0; i < 100; i++)
        log_info("line %d", i);
    cr_assert_eq(log_file_write_failures(), 0);
    json_t *errs = s_lines(s_err_path);
    cr_assert_eq(json_array_size(errs), 0, "lines went to stderr too");
    json_decref(errs);
    //  Rotated at 4 KiB, two rotated files kept: the last lines are there.
    char rotated[330];
    snprintf(rotated, sizeof rotated, "%s.1", path);
    json_t *cur = s_lines(path), *old = s_lines(rotated);
    cr_assert_gt(json_array_size(old), 0, "no rotation");
    json_t *last = json_array_get(cur, json_array_size(cur) - 1);
    cr_assert_str_eq(s_str(last, "msg"), "line 99");
    json_decref(cur);
    json_decref(old);
    log_close_file();
    log_info("back on stderr");
    errs = s_lines(s_err_path);
    cr_assert_eq(json_array_size(errs), 1);
    json_decref(errs);

    char bad[330];
    snprintf(bad, sizeof bad, "%s/missing/recsd.log", s_dir);
    cr_assert_eq(log_open_file(bad, 4096, 2, err, sizeof err), -1);
    cr_assert(strstr(err, "missing/recsd.log"), "%s", err);
}

Test(log, failing_file_falls_back_to_stderr_and_says_so_once)
{
    log_init("ranker", LOG_LEVEL_INFO);
    char link[320], err[256] = "";
    snprintf(link, sizeof link, "%s/full.log", s_dir);
    cr_assert_eq(symlink("/dev/full", link), 0);
    cr_assert_eq(log_open_file(link, 4096, 1, err, sizeof err), 0, "%s", err);
    log_info("first");
    log_info("second");
    log_write(LOG_LEVEL_WARN, "r-1", "third");
    cr_assert_eq(log_file_write_failures(), 3);
    json_t *lines = s_lines(s_err_path);
    cr_assert_eq(json_array_size(lines), 4, "expected one note and the three lines");
    json_t *note = json_array_get(lines, 0);
    cr_assert_str_eq(s_str(note, "level"), "error");
    cr_assert(strstr(s_str(note, "msg"), "cannot write log file") &&
                  strstr(s_str(note, "msg"), "No space left"),
              "%s", s_str(note, "msg"));
    cr_assert_str_eq(s_str(json_array_get(lines, 1), "msg"), "first");
    cr_assert_str_eq(s_str(json_array_get(lines, 3), "msg"), "third");
    cr_assert_str_eq(s_str(json_array_get(lines, 3), "request_id"), "r-1");
    json_decref(lines);
}
