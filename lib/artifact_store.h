/*  artifact_store.h: where model artifacts live, addressed by URL.

        file:///abs/dir      the embedded default: a directory (created if
                             missing). file://rel/dir is taken relative to
                             the current directory when the store is made.
        s3://bucket[/prefix] S3 or an S3-compatible server (MinIO, s3rver),
                             through libcurl's own AWS SigV4 signing.

    Keys name one artifact each ("models/42/v3.art"): 1..512 chars of
    [A-Za-z0-9._-] and '/', no empty component, no component starting with
    '.' (so no "..", and no clash with the store's own ".tmp/" area), no
    leading or trailing '/'. The narrow character set needs no URI
    encoding, so the path curl signs is the path S3 verifies.

    Keys are immutable: put() writes to a temporary name under "<root>/.tmp/"
    and commits it, and refuses to replace a key that holds other content
    (the same content again is success, so a retried put is harmless).
      file: copy into .tmp/, fsync, rename without replacing (RENAME_NOREPLACE,
            or link() where the file system lacks it), fsync of the directory.
      s3:   PUT the temporary key (x-amz-content-sha256 = the file's real
            SHA-256, which S3 checks, and stored as x-amz-meta-sha256), then a
            server-side CopyObject to the real key, then DELETE the temporary
            key. An existing key is compared by its x-amz-meta-sha256. The
            check and the copy are two requests: two writers racing on one
            key are not excluded by S3 itself (one trainer owns a run, so they
            do not arise); a crash can leave a key under <prefix>/.tmp/, for a
            bucket lifecycle rule to expire, never a half object under a key.
    get() fetches into "<local_path>.tmp.XXXXXX" and renames it onto
    local_path, so the ranker only ever mmaps a complete file; over S3 the
    SHA-256 is checked against x-amz-meta-sha256 when the object has one.

    S3 requests: path-style "<endpoint>/<bucket>/<key>" when an endpoint is
    given, else virtual-hosted https://<bucket>.s3.<region>.amazonaws.com.
    Connect timeout 5 s, total timeout per request configurable (60 s).
    Errors carry the method, the s3:// URL, the HTTP status and S3's error
    code and message; never a credential.

    A store is not thread-safe (it keeps one curl handle so connections are
    reused): use one per thread.
*/
#ifndef RECSD_ARTIFACT_STORE_H
#define RECSD_ARTIFACT_STORE_H

#include <stddef.h>

//  S3 settings; the strings are copied by artifact_store_new.
typedef struct {
    const char *endpoint;      //  "http://127.0.0.1:4569"; NULL or "" = AWS
    const char *region;        //  NULL or "" = "us-east-1"
    const char *access_key;    //  required
    const char *secret_key;    //  required
    const char *session_token; //  temporary credentials; NULL = none
    long timeout_s;            //  whole request; <= 0 = 60
} artifact_store_s3_t;

typedef struct artifact_store_t artifact_store_t;

//  Fills *s3 from the environment: RECSD_S3_ENDPOINT, AWS_REGION (else
//  AWS_DEFAULT_REGION), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
//  AWS_SESSION_TOKEN, RECSD_S3_TIMEOUT_S. Unset ones are NULL / 0. The
//  pointers are borrowed from the environment. Cannot fail.
void artifact_store_s3_from_env(artifact_store_s3_t *s3);

//  Opens the store at url. s3 is needed for s3:// and ignored for file://.
//  Returns the store, or NULL with the reason in err. No request is made.
artifact_store_t *artifact_store_new(const char *url, const artifact_store_s3_t *s3, char *err,
                                     size_t errlen);

//  Idempotent; sets *self_p = NULL.
void artifact_store_destroy(artifact_store_t **self_p);

//  1 if the key is a valid key (see above), else 0. Pure.
int artifact_store_key_valid(const char *key);

//  Stores the file at local_path under key (see "immutable" above).
//  Returns 0 (also when the key already holds the same content), or -1 with
//  the reason in err (bad key, key holds other content, I/O, HTTP).
int artifact_store_put(artifact_store_t *self, const char *local_path, const char *key, char *err,
                       size_t errlen);

//  Fetches key into local_path atomically (an existing file there is
//  replaced). Returns 0, or -1 with the reason in err (no such key, I/O,
//  HTTP, checksum); local_path is then untouched.
int artifact_store_get(artifact_store_t *self, const char *key, const char *local_path, char *err,
                       size_t errlen);

//  1 if key exists, 0 if not, -1 on error (bad key, I/O, HTTP: S3 answers
//  403 rather than 404 to a caller without s3:ListBucket).
int artifact_store_exists(artifact_store_t *self, const char *key);

//  Full URL of key: "file:///dir/key" or "s3://bucket/prefix/key". The
//  caller frees it. NULL for an invalid key or out of memory.
char *artifact_store_url(const artifact_store_t *self, const char *key);

//  Removes key (cleanup of a failed run). A missing key is success.
//  Returns 0, or -1 with the reason in err.
int artifact_store_delete(artifact_store_t *self, const char *key, char *err, size_t errlen);

#endif
