/*  tmp_dir.c: scratch directories for unit tests (see the header). */
#include "tmp_dir.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

int tmp_dir_make(char *buf, size_t len, const char *prefix)
{
    int n = snprintf(buf, len, "/tmp/%s-XXXXXX", prefix);
    if (n < 0 || (size_t)n >= len) {
        if (len)
            buf[0] = '\0';
        errno = ENAMETOOLONG;
        return -1;
    }
    if (!mkdtemp(buf)) {
        buf[0] = '\0';
        return -1;
    }
    return 0;
}

static int s_remove(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw; //  nftw callback signature
    if (remove(path) != 0)
        perror(path);
    return 0; //  carry on: remove as much as we can
}

void tmp_dir_remove(char *path)
{
    if (!path[0])
        return;
    if (nftw(path, s_remove, 8, FTW_DEPTH | FTW_PHYS) != 0)
        perror(path);
    path[0] = '\0';
}
