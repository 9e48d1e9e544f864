/*  gateway_docs.c: the documentation files (see gateway_docs.h). */
#include "gateway_docs.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool s_safe_name(const char *name)
{
    //  An asset has an extension: LICENSE and NOTICE files next to them
    //  are for people, not browsers.
    if (!*name || name[0] == '.' || strlen(name) > 128 || !strchr(name, '.'))
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static const char *s_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"},
                 {".js", "text/javascript; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"},
                 {".json", "application/json"},
                 {".png", "image/png"},
                 {".svg", "image/svg+xml"},
                 {".map", "application/json"}};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof *types; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

int gateway_docs_read(const char *dir, const char *url, char **body, size_t *len,
                      const char **content_type)
{
    *body = NULL;
    *len = 0;
    if (!dir || !*dir || !url)
        return 404;
    char path[4096];
    int n;
    if (strcmp(url, "/openapi.json") == 0)
        n = snprintf(path, sizeof path, "%s/openapi.json", dir);
    else if (strcmp(url, "/docs") == 0 || strcmp(url, "/redoc") == 0)
        n = snprintf(path, sizeof path, "%s%s/index.html", dir, url);
    else if (strncmp(url, "/docs/", 6) == 0 && s_safe_name(url + 6))
        n = snprintf(path, sizeof path, "%s/docs/%s", dir, url + 6);
    else if (strncmp(url, "/redoc/", 7) == 0 && s_safe_name(url + 7))
        n = snprintf(path, sizeof path, "%s/redoc/%s", dir, url + 7);
    else
        return 404;
    if (n < 0 || (size_t)n >= sizeof path)
        return 404;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 404;
    if (st.st_size > (off_t)GATEWAY_DOCS_FILE_MAX)
        return 500;
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno == ENOENT ? 404 : 500;
    char *data = malloc((size_t)st.st_size + 1);
    size_t got = data ? fread(data, 1, (size_t)st.st_size, f) : 0;
    bool failed = !data || ferror(f) || got != (size_t)st.st_size;
    fclose(f);
    if (failed) {
        free(data);
        return 500;
    }
    *body = data;
    *len = got;
    *content_type = s_type(path);
    return 200;
}
