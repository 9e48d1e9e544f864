/*  tmp_dir.h: scratch directories for unit tests (fixture files, hand-made
    migrations), made under /tmp and removed with everything in them.

    The caller owns the buffer holding the path; these are plain functions
    on it so that a test can keep the path in a static char array and pass
    it wherever a char * is wanted.
*/
#ifndef RECSD_TMP_DIR_H
#define RECSD_TMP_DIR_H

#include <stddef.h>

//  Makes a new private directory /tmp/<prefix>-XXXXXX and writes its path
//  into buf. Returns 0, or -1 with errno set (buf is then empty).
int tmp_dir_make(char *buf, size_t len, const char *prefix);

//  Removes path and everything below it, without following symlinks, and
//  empties path (path[0] = '\0'), so a second call does nothing. Does
//  nothing for an empty path. Entries it cannot remove are reported on
//  stderr: it is called from .fini, where an assertion is only logged.
void tmp_dir_remove(char *path);

#endif
