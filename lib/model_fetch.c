/*  model_fetch.c: registry URL -> store key -> local cached file. */
#include "model_fetch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

artifact_store_t *model_fetch_store(const config_t *cfg, char *err, size_t errlen)
{
    artifact_store_s3_t s3;
    artifact_store_s3_from_env(&s3);
    s3.endpoint = cfg->s3_endpoint;
    s3.region = cfg->s3_region;
    s3.access_key = cfg->s3_access_key;
    s3.secret_key = cfg->s3_secret_key;
    bool is_s3 = strncmp(cfg->artifact_url, "s3://", 5) == 0;
    return artifact_store_new(cfg->artifact_url, is_s3 ? &s3 : NULL, err, errlen);
}

int model_fetch_cache_dir(const config_t *cfg, char *dir, size_t dirlen, char *err, size_t errlen)
{
    int n = cfg->artifact_cache_dir[0] ? snprintf(dir, dirlen, "%s", cfg->artifact_cache_dir)
                                       : snprintf(dir, dirlen, "%s/artifacts", cfg->runtime_dir);
    if (n < 0 || (size_t)n >= dirlen) {
        snprintf(err, errlen, "artifact cache path too long");
        return -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

int model_fetch_key(const artifact_store_t *store, const char *url, char *key, size_t keylen)
{
    //  The store's URL of a one-letter key, minus that letter, is the
    //  prefix every key's URL starts with.
    char *probe = artifact_store_url(store, "x");
    if (!probe)
        return -1;
    size_t prefix = strlen(probe) - 1;
    int rc = -1;
    if (strncmp(url, probe, prefix) == 0 && strlen(url + prefix) < keylen &&
        artifact_store_key_valid(url + prefix)) {
        snprintf(key, keylen, "%s", url + prefix);
        rc = 0;
    }
    free(probe);
    return rc;
}

int model_fetch(artifact_store_t *store, const char *url, const char *checksum,
                const char *cache_dir, char *local, size_t locallen, char *err, size_t errlen)
{
    char key[1024];
    if (model_fetch_key(store, url, key, sizeof key) != 0) {
        snprintf(err, errlen, "artifact %s is not in the configured store", url);
        return -1;
    }
    bool named = checksum && strlen(checksum) == 64 && strspn(checksum, "0123456789abcdef") == 64;
    int n = named ? snprintf(local, locallen, "%s/%s.rca", cache_dir, checksum)
                  : snprintf(local, locallen, "%s/fetch-%d.rca", cache_dir, (int)getpid());
    if (n < 0 || (size_t)n >= locallen) {
        snprintf(err, errlen, "artifact cache path too long");
        return -1;
    }
    if (named && access(local, R_OK) == 0)
        return 0;
    return artifact_store_get(store, key, local, err, errlen);
}
