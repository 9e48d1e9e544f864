/*  test_log_file.c: the shared, rotated log file (log_file.c).

    Real files in a scratch directory; the concurrency test forks real
    processes that append and rotate the same file at once, then checks
    that every line is in exactly one file, whole.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "leak_check.h"
#include "log_file.h"
#include "tmp_dir.h"

static char s_dir[256];
static char s_path[300];

static void s_setup(void)
{
    cr_assert_eq(tmp_dir_make(s_dir, sizeof s_dir, "recsd-logfile"), 0);
    snprintf(s_path, sizeof s_path, "%s/recsd.log", s_dir);
}

static void s_teardown(void)
{
    tmp_dir_remove(s_dir);
    leak_check_fini();
}

TestSuite(log_file, .init = s_setup, .fini = s_teardown);

//  "<path>" for n == 0, else "<path>.n".
static const char *s_name(int n)
{
    static char name[320];
    if (n == 0)
        snprintf(name, sizeof name, "%s", s_path);
    else
        snprintf(name, sizeof name, "%s.%d", s_path, n);
    return name;
}

static long s_size(int n)
{
    struct stat st;
    return stat(s_name(n), &st) == 0 ? (long)st.st_size : -1;
}

//  Writes a line of exactly `len` bytes (newline included) tagged p, seq.
static void s_line(log_file_t *file, int p, int seq, size_t len)
{
    char line[512];
    int n = snprintf(line, sizeof line, "{\"p\":%d,\"seq\":%d,\"pad\":\"", p, seq);
    cr_assert(n > 0 && (size_t)n + 3 <= len && len < sizeof line);
    memset(line + n, 'x', len - (size_t)n - 3);
    memcpy(line + len - 3, "\"}\n", 3);
    cr_assert_eq(log_file_write(file, line, len), 0, "write: %s", strerror(errno));
}

//  Reads every line of file n into seen[p][seq] (counting), checking each
//  line is whole. Returns the number of lines.
static int s_collect(int n, int seen[2][5000], int nproc, int per_proc)
{
    FILE *f = fopen(s_name(n), "r");
    if (!f)
        return -1;
    char line[1024];
    int count = 0;
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        cr_assert(len > 0 && line[len - 1] == '\n', "unterminated line in %s: %s", s_name(n), line);
        int p, seq, end = 0;
        cr_assert_eq(sscanf(line, "{\"p\":%d,\"seq\":%d,\"pad\":\"%*[x]\"}%n", &p, &seq, &end), 2,
                     "mangled line in %s: %s", s_name(n), line);
        cr_assert_eq((size_t)end, len - 1, "mangled line in %s: %s", s_name(n), line);
        cr_assert(p >= 0 && p < nproc && seq >= 0 && seq < per_proc);
        seen[p][seq]++;
        count++;
    }
    fclose(f);
    return count;
}

Test(log_file, bad_arguments_and_unopenable_path)
{
    char err[256] = "";
    cr_assert_null(log_file_new(s_path, 0, 1, err, sizeof err));
    cr_assert_null(log_file_new(s_path, 100, 0, err, sizeof err));
    cr_assert_null(log_file_new(s_path, 100, LOG_FILE_KEEP_MAX + 1, err, sizeof err));
    char missing[400];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.log", s_dir);
    cr_assert_null(log_file_new(missing, 100, 1, err, sizeof err));
    cr_assert(strstr(err, "cannot open log file") && strstr(err, "No such file"), "%s", err);
}

Test(log_file, rotates_at_the_size)
{
    char err[256] = "";
    log_file_t *file = log_file_new(s_path, 1000, 3, err, sizeof err);
    cr_assert_not_null(file, "%s", err);
    cr_assert_str_eq(log_file_path(file), s_path);
    for (int i = 0; i < 10; i++)
        s_line(file, 0, i, 100);
    cr_assert_eq(s_size(0), 1000, "ten lines: exactly at the limit, not rotated yet");
    cr_assert_eq(s_size(1), -1);
    s_line(file, 0, 10, 100); //  the file is due: rotated before this line
    cr_assert_eq(s_size(0), 100);
    cr_assert_eq(s_size(1), 1000);
    //  A line larger than the limit on its own still gets written.
    s_line(file, 0, 11, 300);
    cr_assert_eq(s_size(0), 400);
    cr_assert_eq(log_file_failures(file), 0);
    log_file_destroy(&file);
    log_file_destroy(&file); //  idempotent
    cr_assert_null(file);
}

Test(log_file, keeps_only_keep_rotated_files)
{
    //  Leftover from a run with a larger keep: dropped at the next rotation.
    FILE *old = fopen(s_name(5), "w");
    cr_assert_not_null(old);
    fclose(old);
    char err[256] = "";
    log_file_t *file = log_file_new(s_path, 200, 2, err, sizeof err);
    cr_assert_not_null(file, "%s", err);
    for (int i = 0; i < 50; i++) //  two lines per file: 24 rotations
        s_line(file, 0, i, 100);
    log_file_destroy(&file);
    cr_assert_eq(s_size(0), 200);
    cr_assert_eq(s_size(1), 200);
    cr_assert_eq(s_size(2), 200);
    cr_assert_eq(s_size(3), -1, "more rotated files than keep");
    cr_assert_eq(s_size(5), -1, "leftover beyond keep not removed");
    //  The newest lines are in path, older ones in .1, the oldest in .2.
    static int seen[2][5000];
    memset(seen, 0, sizeof seen);
    cr_assert_eq(s_collect(0, seen, 1, 50), 2);
    cr_assert(seen[0][48] && seen[0][49]);
    cr_assert_eq(s_collect(1, seen, 1, 50), 2);
    cr_assert(seen[0][46] && seen[0][47]);
    cr_assert_eq(s_collect(2, seen, 1, 50), 2);
    cr_assert(seen[0][44] && seen[0][45]);
}

Test(log_file, follows_a_rotation_by_another_writer)
{
    char err[256] = "";
    log_file_t *a = log_file_new(s_path, 500, 5, err, sizeof err);
    log_file_t *b = log_file_new(s_path, 500, 5, err, sizeof err);
    cr_assert(a && b, "%s", err);
    for (int i = 0; i < 5; i++)
        s_line(a, 0, i, 100); //  at the limit
    s_line(b, 1, 0, 100);     //  b rotates, then writes to the fresh file
    cr_assert_eq(s_size(1), 500);
    cr_assert_eq(s_size(0), 100);
    //  a's file is now path.1 (over the limit): a must reopen path, not
    //  rotate again (which would push b's fresh file to .1).
    s_line(a, 0, 5, 100);
    cr_assert_eq(s_size(0), 200, "a did not follow the rotation");
    cr_assert_eq(s_size(1), 500);
    cr_assert_eq(s_size(2), -1, "a rotated a file that was not over the limit");
    log_file_destroy(&a);
    log_file_destroy(&b);
}

Test(log_file, follows_a_file_moved_below_the_limit)
{
    char err[256] = "";
    log_file_t *file = log_file_new(s_path, 1 << 20, 1, err, sizeof err);
    cr_assert_not_null(file, "%s", err);
    s_line(file, 0, 0, 50);
    char moved[320];
    snprintf(moved, sizeof moved, "%s.moved", s_path);
    cr_assert_eq(rename(s_path, moved), 0);
    for (int i = 1; i < 150; i++)
        s_line(file, 0, i, 50);
    //  Noticed within 100 lines: the rest went to a new file at the path.
    cr_assert_geq(s_size(0), 49 * 50, "the moved file was not noticed (%ld bytes)", s_size(0));
    struct stat st;
    cr_assert_eq(stat(moved, &st), 0);
    cr_assert_eq(st.st_size + s_size(0), 150 * 50, "a line was lost");
    log_file_destroy(&file);
}

//  Two processes append and rotate the same file at once: no line is lost,
//  none is duplicated, none is cut or mixed with another.
Test(log_file, two_processes_lose_and_mix_no_line)
{
    enum { NPROC = 2, LINES = 3000, LEN = 120, MAX = 8192 };
    pid_t pids[NPROC];
    for (int p = 0; p < NPROC; p++) {
        pids[p] = fork();
        cr_assert_geq(pids[p], 0);
        if (pids[p] == 0) {
            //  Each process opens its own: never share one across fork.
            char err[256];
            log_file_t *file = log_file_new(s_path, MAX, LOG_FILE_KEEP_MAX, err, sizeof err);
            if (!file)
                _exit(3);
            char line[LEN + 1];
            for (int i = 0; i < LINES; i++) {
                int n = snprintf(line, sizeof line, "{\"p\":%d,\"seq\":%d,\"pad\":\"", p, i);
                memset(line + n, 'x', LEN - (size_t)n - 3);
                memcpy(line + LEN - 3, "\"}\n", 3);
                if (log_file_write(file, line, LEN) != 0)
                    _exit(4);
            }
            log_file_destroy(&file);
            _exit(0);
        }
    }
    for (int p = 0; p < NPROC; p++) {
        int status;
        cr_assert_eq(waitpid(pids[p], &status, 0), pids[p]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "writer %d failed: %d", p, status);
    }
    static int seen[2][5000];
    memset(seen, 0, sizeof seen);
    int total = 0, files = 0;
    for (int n = 0; n <= LOG_FILE_KEEP_MAX; n++) {
        long size = s_size(n);
        if (size < 0)
            break;
        //  Each writer can add at most one line after the file reached the
        //  limit (the one it had already checked the size for).
        cr_assert_lt(size, MAX + NPROC * LEN, "%s is %ld bytes", s_name(n), size);
        total += s_collect(n, seen, NPROC, LINES);
        files++;
    }
    cr_assert_gt(files, 20, "expected many rotations, got %d files", files);
    cr_assert_eq(s_size(files + 1), -1, "a gap in the rotated files");
    for (int p = 0; p < NPROC; p++)
        for (int i = 0; i < LINES; i++)
            cr_assert_eq(seen[p][i], 1, "line %d of writer %d seen %d times", i, p, seen[p][i]);
    cr_assert_eq(total, NPROC * LINES);
}

Test(log_file, failed_writes_are_reported_and_counted)
{
    //  /dev/full takes the open and refuses every write with ENOSPC.
    char link[320];
    snprintf(link, sizeof link, "%s/full.log", s_dir);
    cr_assert_eq(symlink("/dev/full", link), 0);
    char err[256] = "";
    log_file_t *file = log_file_new(link, 4096, 1, err, sizeof err);
    cr_assert_not_null(file, "%s", err);
    errno = 0;
    cr_assert_eq(log_file_write(file, "{\"a\":1}\n", 8), -1);
    cr_assert_eq(errno, ENOSPC);
    cr_assert_eq(log_file_write(file, "{\"a\":2}\n", 8), -1);
    cr_assert_eq(log_file_failures(file), 2);
    log_file_destroy(&file);
}
