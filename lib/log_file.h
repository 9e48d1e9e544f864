/*  log_file.h: an append-only log file shared by several processes, with
    size-based rotation and a retention count.

    Every recsd process of one deployment (the supervisor and each actor)
    may append to the same file. The rules that keep that safe:
    - The file is opened O_APPEND and each line is one write(2) call, so
      lines from different processes and threads never interleave.
    - Before each write the open file's size is checked with fstat(2)
      (cheap: no path lookup). Once it has reached max_bytes, the writer
      takes an flock(2) on "<path>.lock", then re-checks under the lock
      that <path> still names the file it has open and that it is still
      over the limit; only then does it shift <path>.(keep-1) -> <path>.keep
      ... <path> -> <path>.1 (rename(2) replaces, so the oldest beyond
      `keep` is dropped) and open a fresh <path>. A writer that finds
      <path> naming another file (someone else rotated it) just reopens.
    - Every 100 lines or second, whichever comes first, a writer also
      checks that <path> still names its file, so that a file moved or
      removed by hand is noticed even below the limit.
    A line written while another process rotates lands in the file that
    just became <path>.1: it is never lost (only retention drops files).

    Threads: log_file_write may be called from any number of threads (a
    mutex serialises them). Fork: an instance must not be used on both
    sides of a fork (the flock belongs to the shared open file
    description); a child process creates its own.
*/
#ifndef RECSD_LOG_FILE_H
#define RECSD_LOG_FILE_H

#include <stddef.h>
#include <stdint.h>

typedef struct log_file_t log_file_t;

#define LOG_FILE_KEEP_MAX 1000 //  rotated files kept, at most

//  Opens (creating it, mode 0640) path for appending. max_bytes > 0 is the
//  size at which the file is rotated; keep (1..LOG_FILE_KEEP_MAX) is how
//  many rotated files are kept. Returns NULL with a reason in err if the
//  file or its lock file cannot be opened. The path is copied.
log_file_t *log_file_new(const char *path, uint64_t max_bytes, int keep, char *err, size_t errlen);

//  Closes the files; idempotent, sets *self_p to NULL.
void log_file_destroy(log_file_t **self_p);

//  Appends len bytes (one or more whole lines) with one write(2), rotating
//  first if the file is due. Returns 0, or -1 with errno set if the bytes
//  were not all written (the caller then has the line to put elsewhere).
//  A rotation or reopen that fails does not fail the write while the old
//  file can still be written.
int log_file_write(log_file_t *self, const char *data, size_t len);

//  Number of writes that failed since the file was opened.
uint64_t log_file_failures(log_file_t *self);

//  The path being written (borrowed).
const char *log_file_path(const log_file_t *self);

#endif
