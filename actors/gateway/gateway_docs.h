/*  gateway_docs.h: the API's documentation, served by the gateway itself
    (no CDN): the OpenAPI document at /openapi.json, Swagger UI at /docs
    and ReDoc at /redoc, with their assets, all read from one directory
    that ops/docs-assets.sh fills (RECSD_DOCS_DIR):

        <dir>/openapi.json
        <dir>/docs/index.html, <dir>/docs/<asset>
        <dir>/redoc/index.html, <dir>/redoc/<asset>

    An asset name is one path segment of [A-Za-z0-9._-] with an extension,
    not starting with '.', so nothing outside the directory can be named. Read per request:
    documentation traffic is small, and a refreshed directory is served at
    once.
*/
#ifndef RECSD_GATEWAY_DOCS_H
#define RECSD_GATEWAY_DOCS_H

#include <stddef.h>

#define GATEWAY_DOCS_FILE_MAX (8 * 1024 * 1024) //  larger files are not served

//  Reads the file url names under dir into *body (malloc'd, the caller
//  frees it; *len its length) and its media type into *content_type (a
//  static string). Returns 200, 404 (dir "", no such name, not a file),
//  or 500 (unreadable, too large, out of memory).
int gateway_docs_read(const char *dir, const char *url, char **body, size_t *len,
                      const char **content_type);

#endif
