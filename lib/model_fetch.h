/*  model_fetch.h: a registry model's artifact, from the store to a local
    file that can be mmapped.

    The registry records each artifact as its full store URL (file:// or
    s3://). The trainer (to evaluate the active model) and the ranker (to
    serve it) need a local file: this maps the URL back to the store's key,
    downloads it into a cache directory under a name derived from the
    checksum (an immutable key has one content, so a cached copy is reused
    and never stale) and returns the local path. Files in the cache that
    are not in use may be deleted at any time.
*/
#ifndef RECSD_MODEL_FETCH_H
#define RECSD_MODEL_FETCH_H

#include <stddef.h>

#include "artifact_store.h"
#include "config.h"

//  A store for cfg->artifact_url with the S3 settings of cfg. Returns a
//  store the caller owns, or NULL with the reason in err.
artifact_store_t *model_fetch_store(const config_t *cfg, char *err, size_t errlen);

//  The local cache directory (cfg->artifact_cache_dir, else
//  <runtime_dir>/artifacts), created (0700) if missing. Returns 0, or -1.
int model_fetch_cache_dir(const config_t *cfg, char *dir, size_t dirlen, char *err, size_t errlen);

//  The key of url in store, or -1 if url is not inside the store (written
//  by a service configured with another RECSD_ARTIFACT_URL).
int model_fetch_key(const artifact_store_t *store, const char *url, char *key, size_t keylen);

//  Makes the artifact at url available as a local file and writes its
//  path into local. checksum (hex, may be NULL) names the cached copy;
//  without it the file is always downloaded again. The content is not
//  verified here: model_bundle_open does that (and compares checksums).
//  Returns 0, or -1 with the reason in err.
int model_fetch(artifact_store_t *store, const char *url, const char *checksum,
                const char *cache_dir, char *local, size_t locallen, char *err, size_t errlen);

#endif
