/*  test_artifact_store.c: artifact storage (artifact_store.c) on a real
    directory and on a real S3-compatible server.

    The s3 suite needs a server: eval "$(ops/s3rver.sh env)" sets
    RECSD_TEST_S3_URL, RECSD_S3_ENDPOINT, AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY and AWS_REGION. Without them the suite FAILS: a
    skipped S3 test would let a broken S3 path pass CI unnoticed.
*/
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "artifact.h"
#include "artifact_store.h"
#include "leak_check.h"
#include "tmp_dir.h"

static char s_dir[64];

static void s_setup(void)
{
    cr_assert_eq(tmp_dir_make(s_dir, sizeof s_dir, "recsd-store"), 0, "tmp dir: %s",
                 strerror(errno));
}

static void s_teardown(void)
{
    tmp_dir_remove(s_dir);
    leak_check_fini();
}

TestSuite(store_file, .init = s_setup, .fini = s_teardown, .timeout = 60);
TestSuite(store_s3, .init = s_setup, .fini = s_teardown, .timeout = 60);

//  A path in this test's temp dir. The buffer is reused by the next call:
//  a path kept across calls is copied into a path_t.
typedef char path_t[160];

static const char *s_path(const char *name)
{
    static path_t path;
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    return path;
}

//  Writes a small real artifact whose content depends on seed.
static void s_make_artifact(const char *path, float seed, char checksum[65])
{
    float factors[16];
    for (int i = 0; i < 16; i++)
        factors[i] = seed + (float)i;
    const char *ids[] = {"u1", "u2"};
    artifact_writer_t *w = artifact_writer_new("collaborative");
    cr_assert_eq(artifact_writer_add(w, "user_factors", ARTIFACT_F32, 4, 4, factors), 0);
    cr_assert_eq(artifact_writer_add_strings(w, "user_ids", ids, 2), 0);
    char err[256];
    cr_assert_eq(artifact_writer_write(w, path, checksum, err, sizeof err), 0, "%s", err);
    artifact_writer_destroy(&w);
}

//  Opens path as an artifact and checks its checksum.
static void s_expect_artifact(const char *path, const char *checksum)
{
    char err[256];
    artifact_t *a = artifact_open(path, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    cr_assert_str_eq(artifact_checksum(a), checksum);
    artifact_destroy(&a);
}

static const char *const s_bad_keys[] = {
    "",       "/abs",      "a//b",   "a/",       "..",        "a/../b",   "../x",
    ".tmp/x", "a/.hidden", "sp ace", "tab\tkey", "new\nline", "pct%2e",   "q?x=1",
    "hash#x", "back\\sl",  "ü",      "a:b",      "star*",     "quote\"s", NULL};

//  Every operation refuses every bad key, and no file or object appears.
static void s_expect_bad_keys_refused(artifact_store_t *store, const char *local)
{
    char err[256];
    for (size_t i = 0; s_bad_keys[i]; i++) {
        const char *key = s_bad_keys[i];
        cr_assert_eq(artifact_store_key_valid(key), 0, "\"%s\"", key);
        cr_assert_eq(artifact_store_put(store, local, key, err, sizeof err), -1, "\"%s\"", key);
        cr_assert(strstr(err, "bad artifact key"), "%s", err);
        cr_assert_eq(artifact_store_get(store, key, s_path("got"), err, sizeof err), -1);
        cr_assert_eq(artifact_store_exists(store, key), -1, "\"%s\"", key);
        cr_assert_null(artifact_store_url(store, key));
        cr_assert_eq(artifact_store_delete(store, key, err, sizeof err), -1);
    }
    char long_key[600];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    cr_assert_eq(artifact_store_key_valid(long_key), 0);
    long_key[512] = '\0';
    cr_assert_eq(artifact_store_key_valid(long_key), 1, "512 chars are fine");
    cr_assert_eq(artifact_store_key_valid(NULL), 0);
}

//  The operations every backend must get right, on keys under store.
static void s_exercise_store(artifact_store_t *store, const char *url_prefix)
{
    char sum1[65], sum2[65], err[512];
    path_t local1, local2, got;
    snprintf(local1, sizeof local1, "%s", s_path("model1.art"));
    snprintf(local2, sizeof local2, "%s", s_path("model2.art"));
    snprintf(got, sizeof got, "%s", s_path("got.art"));
    s_make_artifact(local1, 1.0f, sum1);
    const char *key = "collaborative/17/v3.art";

    cr_assert_eq(artifact_store_exists(store, key), 0);
    cr_assert_eq(artifact_store_put(store, local1, key, err, sizeof err), 0, "%s", err);
    cr_assert_eq(artifact_store_exists(store, key), 1);
    cr_assert_eq(artifact_store_exists(store, "collaborative/17"), 0, "a prefix is no key");

    char *url = artifact_store_url(store, key);
    char want[512];
    snprintf(want, sizeof want, "%s/%s", url_prefix, key);
    cr_assert_str_eq(url, want);
    free(url);

    //  get replaces whatever was at the local path, atomically.
    FILE *f = fopen(got, "w");
    fputs("stale", f);
    fclose(f);
    cr_assert_eq(artifact_store_get(store, key, got, err, sizeof err), 0, "%s", err);
    s_expect_artifact(got, sum1);

    //  Immutable: the same bytes again is fine, other bytes are refused.
    cr_assert_eq(artifact_store_put(store, local1, key, err, sizeof err), 0, "retry: %s", err);
    s_make_artifact(local2, 2.0f, sum2);
    cr_assert_eq(artifact_store_put(store, local2, key, err, sizeof err), -1);
    cr_assert(strstr(err, "exists with different content"), "%s", err);
    cr_assert(strstr(err, "immutable"), "%s", err);
    cr_assert_eq(artifact_store_get(store, key, got, err, sizeof err), 0, "%s", err);
    s_expect_artifact(got, sum1);

    //  A missing key: get fails and leaves the local file alone.
    cr_assert_eq(artifact_store_get(store, "collaborative/17/v4.art", got, err, sizeof err), -1);
    s_expect_artifact(got, sum1);

    //  Delete, for failed runs; deleting twice is fine.
    cr_assert_eq(artifact_store_put(store, local2, "failed/run.art", err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(artifact_store_exists(store, "failed/run.art"), 1);
    cr_assert_eq(artifact_store_delete(store, "failed/run.art", err, sizeof err), 0, "%s", err);
    cr_assert_eq(artifact_store_exists(store, "failed/run.art"), 0);
    cr_assert_eq(artifact_store_delete(store, "failed/run.art", err, sizeof err), 0, "%s", err);
    cr_assert_eq(artifact_store_exists(store, key), 1, "other keys untouched");

    //  A put of a missing local file fails and creates nothing.
    cr_assert_eq(artifact_store_put(store, s_path("nope.art"), "x.art", err, sizeof err), -1);
    cr_assert(strstr(err, "nope.art"), "%s", err);
    cr_assert_eq(artifact_store_exists(store, "x.art"), 0);

    s_expect_bad_keys_refused(store, local1);

    //  Keys at the root of the store work too.
    cr_assert_eq(artifact_store_put(store, local2, "top.art", err, sizeof err), 0, "%s", err);
    cr_assert_eq(artifact_store_get(store, "top.art", got, err, sizeof err), 0, "%s", err);
    s_expect_artifact(got, sum2);
}

//  --- file:// -------------------------------------------------------------------

Test(store_file, put_get_exists_url_delete)
{
    char url[128], err[256];
    snprintf(url, sizeof url, "file://%s/store/", s_dir); //  made on demand; '/' trimmed
    artifact_store_t *store = artifact_store_new(url, NULL, err, sizeof err);
    cr_assert_not_null(store, "%s", err);
    char prefix[128];
    snprintf(prefix, sizeof prefix, "file://%s/store", s_dir);
    s_exercise_store(store, prefix);
    artifact_store_destroy(&store);
    cr_assert_null(store);
    artifact_store_destroy(&store);

    //  Committed files are where the URL says; no temporary file is left.
    struct stat st;
    cr_assert_eq(stat(s_path("store/collaborative/17/v3.art"), &st), 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s/store/.tmp)\"", s_dir);
    cr_assert_eq(system(cmd), 0, "leftovers in %s/store/.tmp", s_dir);
    snprintf(cmd, sizeof cmd, "test -z \"$(find %s -name '*.tmp.*')\"", s_dir);
    cr_assert_eq(system(cmd), 0, "leftover get temporaries in %s", s_dir);
}

Test(store_file, a_relative_url_is_resolved_once)
{
    char err[256];
    cr_assert_eq(chdir(s_dir), 0);
    artifact_store_t *store = artifact_store_new("file://var/artifacts", NULL, err, sizeof err);
    cr_assert_not_null(store, "%s", err);
    cr_assert_eq(chdir("/"), 0); //  later calls do not depend on the cwd
    char sum[65];
    path_t local;
    snprintf(local, sizeof local, "%s", s_path("m.art"));
    s_make_artifact(local, 3.0f, sum);
    cr_assert_eq(artifact_store_put(store, local, "m.art", err, sizeof err), 0, "%s", err);
    char *url = artifact_store_url(store, "m.art");
    char want[160];
    snprintf(want, sizeof want, "file://%s/var/artifacts/m.art", s_dir);
    cr_assert_str_eq(url, want);
    free(url);
    s_expect_artifact(s_path("var/artifacts/m.art"), sum);
    artifact_store_destroy(&store);
}

Test(store_file, bad_urls_are_refused)
{
    char err[256];
    const char *bad[] = {"", "file://", "http://x/y", "s3:/bucket", "/just/a/path", NULL};
    for (size_t i = 0; bad[i]; i++) {
        artifact_store_t *store = artifact_store_new(bad[i], NULL, err, sizeof err);
        cr_assert_null(store, "\"%s\" accepted", bad[i]);
        cr_assert_neq(err[0], '\0');
    }
    cr_assert_null(artifact_store_new(NULL, NULL, err, sizeof err));
    //  A file where the directory should be.
    FILE *f = fopen(s_path("plain"), "w");
    fclose(f);
    char url[sizeof "file://" + 512];
    snprintf(url, sizeof url, "file://%s", s_path("plain"));
    cr_assert_null(artifact_store_new(url, NULL, err, sizeof err));
    cr_assert(strstr(err, "not a directory"), "%s", err);
}

//  --- s3:// ---------------------------------------------------------------------

static const char *s_env(const char *name)
{
    const char *value = getenv(name);
    if (!value || !*value)
        cr_assert_fail("%s is not set: the S3 tests need an S3 server; start one with "
                       "`ops/s3rver.sh start` and run `eval \"$(ops/s3rver.sh env)\"`",
                       name);
    return value;
}

//  The S3 settings of the environment and a URL with a prefix of its own
//  (keys are immutable, so every run writes under a new prefix).
static void s_s3(artifact_store_s3_t *s3, char *url, size_t urllen)
{
    const char *base = s_env("RECSD_TEST_S3_URL");
    s_env("RECSD_S3_ENDPOINT");
    s_env("AWS_ACCESS_KEY_ID");
    s_env("AWS_SECRET_ACCESS_KEY");
    artifact_store_s3_from_env(s3);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(url, urllen, "%s/run-%ld-%ld-%d", base, (long)ts.tv_sec, ts.tv_nsec, (int)getpid());
}

static artifact_store_t *s_s3_store(char *url, size_t urllen)
{
    artifact_store_s3_t s3;
    char err[256];
    s_s3(&s3, url, urllen);
    artifact_store_t *store = artifact_store_new(url, &s3, err, sizeof err);
    cr_assert_not_null(store, "%s", err);
    return store;
}

static size_t s_collect(char *data, size_t size, size_t n, void *arg)
{
    char *buf = arg;
    size_t len = strlen(buf), add = size * n;
    if (len + add >= 8192)
        add = 8191 - len;
    memcpy(buf + len, data, add);
    buf[len + add] = '\0';
    return size * n;
}

//  The bucket of RECSD_TEST_S3_URL.
static const char *s_bucket(void)
{
    static char bucket[64];
    const char *url = s_env("RECSD_TEST_S3_URL");
    cr_assert(strncmp(url, "s3://", 5) == 0, "RECSD_TEST_S3_URL: %s", url);
    snprintf(bucket, sizeof bucket, "%.*s", (int)strcspn(url + 5, "/"), url + 5);
    return bucket;
}

//  A signed request made here, without the code under test: to look at the
//  bucket (listing) or to damage an object behind the store's back.
//  path_query follows the bucket ("?prefix=..." or "/key"). Returns the
//  HTTP status; the body goes to out (8 KiB).
static long s_raw(const char *method, const char *path_query, const char *body,
                  const char *meta_sha256, char *out)
{
    char url[1024], sigv4[128], line[256], payload[65];
    unsigned char sum[32];
    unsigned n = 0;
    snprintf(url, sizeof url, "%s/%s%s", s_env("RECSD_S3_ENDPOINT"), s_bucket(), path_query);
    const char *region = getenv("AWS_REGION") ? getenv("AWS_REGION") : "us-east-1";
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", region);
    EVP_Digest(body ? body : "", body ? strlen(body) : 0, sum, &n, EVP_sha256(), NULL);
    for (size_t i = 0; i < 32; i++)
        sprintf(payload + 2 * i, "%02x", sum[i]);
    struct curl_slist *headers = NULL;
    snprintf(line, sizeof line, "x-amz-content-sha256: %s", payload);
    headers = curl_slist_append(headers, line);
    if (meta_sha256) {
        snprintf(line, sizeof line, "x-amz-meta-sha256: %s", meta_sha256);
        headers = curl_slist_append(headers, line);
    }
    CURL *c = curl_easy_init();
    out[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4);
    curl_easy_setopt(c, CURLOPT_USERNAME, s_env("AWS_ACCESS_KEY_ID"));
    curl_easy_setopt(c, CURLOPT_PASSWORD, s_env("AWS_SECRET_ACCESS_KEY"));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    cr_assert_eq(rc, CURLE_OK, "%s %s: %s", method, url, curl_easy_strerror(rc));
    return status;
}

//  The object key prefix of a store URL "s3://<bucket>/<prefix>".
static const char *s_prefix_of(const char *url)
{
    return url + 5 + strlen(s_bucket()) + 1;
}

Test(store_s3, put_get_exists_url_delete)
{
    char url[256], listing[8192], query[512];
    artifact_store_t *store = s_s3_store(url, sizeof url);
    s_exercise_store(store, url);

    //  The real object is there, and no temporary object is left.
    snprintf(query, sizeof query, "?prefix=%s/", s_prefix_of(url));
    cr_assert_eq(s_raw("GET", query, NULL, NULL, listing), 200, "%s", listing);
    cr_assert(strstr(listing, "/collaborative/17/v3.art</Key>"), "%s", listing);
    cr_assert(strstr(listing, "/top.art</Key>"), "%s", listing);
    cr_assert_null(strstr(listing, "/.tmp/"), "a temporary object is left: %s", listing);
    cr_assert_null(strstr(listing, "failed/run.art"), "a deleted object is left: %s", listing);

    //  Keys are immutable, so every run has its own prefix: leave it empty.
    char err[256];
    cr_assert_eq(artifact_store_delete(store, "collaborative/17/v3.art", err, sizeof err), 0, "%s",
                 err);
    cr_assert_eq(artifact_store_delete(store, "top.art", err, sizeof err), 0, "%s", err);
    cr_assert_eq(s_raw("GET", query, NULL, NULL, listing), 200, "%s", listing);
    cr_assert_null(strstr(listing, "<Key>"), "%s", listing);
    artifact_store_destroy(&store);
}

Test(store_s3, a_damaged_object_is_refused_on_get)
{
    char url[256], err[512], out[8192], path[512], sum[65];
    artifact_store_t *store = s_s3_store(url, sizeof url);
    path_t local;
    snprintf(local, sizeof local, "%s", s_path("m.art"));
    s_make_artifact(local, 5.0f, sum);
    cr_assert_eq(artifact_store_put(store, local, "m.art", err, sizeof err), 0, "%s", err);

    //  Another writer replaces the bytes but keeps our metadata.
    char meta[65];
    {
        FILE *f = fopen(local, "rb");
        unsigned char buf[1 << 16], digest[32];
        unsigned n = 0;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, f)) > 0)
            EVP_DigestUpdate(md, buf, got);
        EVP_DigestFinal_ex(md, digest, &n);
        EVP_MD_CTX_free(md);
        fclose(f);
        for (size_t i = 0; i < 32; i++)
            sprintf(meta + 2 * i, "%02x", digest[i]);
    }
    snprintf(path, sizeof path, "/%s/m.art", s_prefix_of(url));
    cr_assert_eq(s_raw("PUT", path, "not the artifact", meta, out), 200, "%s", out);
    path_t got;
    snprintf(got, sizeof got, "%s", s_path("got.art"));
    cr_assert_eq(artifact_store_get(store, "m.art", got, err, sizeof err), -1);
    cr_assert(strstr(err, "x-amz-meta-sha256 says"), "%s", err);
    struct stat st;
    cr_assert_eq(stat(got, &st), -1, "nothing under the local name");

    //  An object put by someone else, without our checksum, is not ours to
    //  overwrite either.
    snprintf(path, sizeof path, "/%s/foreign.art", s_prefix_of(url));
    cr_assert_eq(s_raw("PUT", path, "foreign", NULL, out), 200, "%s", out);
    cr_assert_eq(artifact_store_put(store, local, "foreign.art", err, sizeof err), -1);
    cr_assert(strstr(err, "sha256 unknown"), "%s", err);
    cr_assert_eq(artifact_store_delete(store, "m.art", err, sizeof err), 0, "%s", err);
    cr_assert_eq(artifact_store_delete(store, "foreign.art", err, sizeof err), 0, "%s", err);
    artifact_store_destroy(&store);
}

Test(store_s3, http_errors_carry_status_and_code_never_the_secret)
{
    char url[256], err[512], sum[65];
    artifact_store_s3_t s3;
    s_s3(&s3, url, sizeof url);
    path_t local;
    snprintf(local, sizeof local, "%s", s_path("m.art"));
    s_make_artifact(local, 6.0f, sum);

    //  s3rver checks the access key but not a V4 signature, so the wrong
    //  credentials are a wrong key pair here (AWS would also answer 403).
    const char *secret = "Wr0ngSecretKeyValue";
    s3.access_key = "NOSUCHKEY";
    s3.secret_key = secret;
    artifact_store_t *store = artifact_store_new(url, &s3, err, sizeof err);
    cr_assert_not_null(store, "%s", err);
    cr_assert_eq(artifact_store_put(store, local, "m.art", err, sizeof err), -1);
    cr_assert(strstr(err, "HTTP 403"), "%s", err);
    cr_assert_null(strstr(err, secret), "the secret leaked: %s", err);
    cr_assert_eq(artifact_store_get(store, "m.art", s_path("got"), err, sizeof err), -1);
    cr_assert(strstr(err, "HTTP 403 InvalidAccessKeyId"), "%s", err);
    cr_assert(strstr(err, "s3 GET s3://"), "%s", err);
    cr_assert_null(strstr(err, secret), "the secret leaked: %s", err);
    cr_assert_eq(artifact_store_exists(store, "m.art"), -1);
    artifact_store_destroy(&store);

    store = s_s3_store(url, sizeof url);
    cr_assert_eq(artifact_store_get(store, "missing.art", s_path("got"), err, sizeof err), -1);
    cr_assert(strstr(err, "HTTP 404 NoSuchKey"), "%s", err);
    artifact_store_destroy(&store);
}

Test(store_s3, unreachable_or_silent_servers_fail_within_the_timeouts)
{
    char url[256], err[512], endpoint[64];
    artifact_store_s3_t s3;
    s_s3(&s3, url, sizeof url);

    //  A port nobody listens on: a connect error at once.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", ntohs(addr.sin_port));
    s3.endpoint = endpoint;
    artifact_store_t *store = artifact_store_new(url, &s3, err, sizeof err);
    cr_assert_not_null(store, "%s", err);
    cr_assert_eq(artifact_store_get(store, "m.art", s_path("got"), err, sizeof err), -1);
    cr_assert(strstr(err, "connect"), "%s", err);
    artifact_store_destroy(&store);

    //  A server that accepts (the kernel does, from the backlog) and never
    //  answers: the total timeout ends the request.
    cr_assert_eq(listen(fd, 8), 0);
    s3.timeout_s = 1;
    store = artifact_store_new(url, &s3, err, sizeof err);
    cr_assert_not_null(store, "%s", err);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cr_assert_eq(artifact_store_exists(store, "m.art"), -1);
    cr_assert_eq(artifact_store_get(store, "m.art", s_path("got"), err, sizeof err), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert(strstr(err, "Timeout"), "%s", err);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert(took > 1.5 && took < 10, "two 1 s requests took %.1f s", took);
    artifact_store_destroy(&store);
    close(fd);
}

Test(store_s3, bad_settings_are_refused)
{
    char url[256], err[256];
    artifact_store_s3_t s3;
    s_s3(&s3, url, sizeof url);
    struct {
        const char *url;
        const char *want;
    } cases[] = {
        {"s3://", "bad bucket"},           {"s3://ab", "bad bucket"},
        {"s3://Upper/x", "bad bucket"},    {"s3://recsd/../x", "bad prefix"},
        {"s3://recsd/a//b", "bad prefix"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_null(artifact_store_new(cases[i].url, &s3, err, sizeof err), "%s", cases[i].url);
        cr_assert(strstr(err, cases[i].want), "%s: %s", cases[i].url, err);
    }
    cr_assert_null(artifact_store_new(url, NULL, err, sizeof err));
    cr_assert(strstr(err, "access key"), "%s", err);
    artifact_store_s3_t no_secret = s3;
    no_secret.secret_key = "";
    cr_assert_null(artifact_store_new(url, &no_secret, err, sizeof err));
    artifact_store_s3_t bad_endpoint = s3;
    bad_endpoint.endpoint = "ftp://127.0.0.1:1";
    cr_assert_null(artifact_store_new(url, &bad_endpoint, err, sizeof err));
    cr_assert(strstr(err, "endpoint"), "%s", err);
    bad_endpoint.endpoint = "http://127.0.0.1:1/path";
    cr_assert_null(artifact_store_new(url, &bad_endpoint, err, sizeof err));

    //  The URL of a key, with and without a prefix.
    artifact_store_t *store = artifact_store_new("s3://recsd", &s3, err, sizeof err);
    cr_assert_not_null(store, "%s", err);
    char *key_url = artifact_store_url(store, "a/b.art");
    cr_assert_str_eq(key_url, "s3://recsd/a/b.art");
    free(key_url);
    artifact_store_destroy(&store);
    store = artifact_store_new("s3://recsd/models/", &s3, err, sizeof err);
    cr_assert_not_null(store, "%s", err);
    key_url = artifact_store_url(store, "a/b.art");
    cr_assert_str_eq(key_url, "s3://recsd/models/a/b.art");
    free(key_url);
    artifact_store_destroy(&store);
}
