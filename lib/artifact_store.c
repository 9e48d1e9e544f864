/*  artifact_store.c: file:// and s3:// artifact storage (see artifact_store.h
    for the URL forms, the key rules and the commit protocol).
*/
#include "artifact_store.h"

#include "hex.h"
#include "log.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_KEY_MAX 512
#define S_CONNECT_TIMEOUT_S 5L
#define S_DEFAULT_TIMEOUT_S 60L
#define S_SINGLE_PUT_MAX ((curl_off_t)5 << 30) //  S3's limit for PUT and CopyObject
#define S_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef enum { S_FILE, S_S3 } s_kind_t;

struct artifact_store_t {
    s_kind_t kind;
    char *root; //  file: absolute directory, no trailing '/'
    //  s3:
    char *bucket;
    char *prefix;   //  "" or "a/b"
    char *base_url; //  everything before "/<object key>"
    char *sigv4;    //  "aws:amz:<region>:s3"
    char *access_key, *secret_key, *token_header;
    long timeout_s;
    CURL *curl;
};

__attribute__((format(printf, 3, 4))) static int s_fail(char *err, size_t errlen, const char *fmt,
                                                        ...)
{
    if (!err || errlen == 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

__attribute__((format(printf, 1, 2))) static char *s_printf(const char *fmt, ...)
{
    char *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : out;
}

int artifact_store_key_valid(const char *key)
{
    if (!key)
        return 0;
    size_t len = strnlen(key, S_KEY_MAX + 1);
    if (len == 0 || len > S_KEY_MAX)
        return 0;
    bool component_start = true;
    for (size_t i = 0; i < len; i++) {
        char c = key[i];
        if (c == '/') {
            if (component_start) //  leading '/' or "//"
                return 0;
            component_start = true;
            continue;
        }
        if (component_start && c == '.') //  "..", hidden names, our ".tmp"
            return 0;
        component_start = false;
        if (!isalnum((unsigned char)c) && c != '.' && c != '_' && c != '-')
            return 0;
    }
    return !component_start; //  no trailing '/'
}

//  --- local files ---------------------------------------------------------------

static int s_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

//  Copies all of in (from its start) to out. Returns 0, or -1 with errno.
static int s_copy_fd(int in, int out)
{
    char buf[1 << 16];
    off_t at = 0;
    for (;;) {
        ssize_t n = pread(in, buf, sizeof buf, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (s_write_all(out, buf, (size_t)n))
            return -1;
        at += n;
    }
}

//  1 if the files open on a and b have the same bytes, 0 if not, -1 on error.
static int s_same_content(int a, int b)
{
    struct stat sa, sb;
    if (fstat(a, &sa) || fstat(b, &sb))
        return -1;
    if (sa.st_size != sb.st_size)
        return 0;
    static const size_t chunk = 1 << 16;
    char *x = malloc(2 * chunk);
    if (!x)
        return -1;
    int rc = 1;
    for (off_t at = 0; at < sa.st_size && rc == 1;) {
        ssize_t n = pread(a, x, chunk, at);
        if (n <= 0 || pread(b, x + chunk, (size_t)n, at) != n)
            rc = -1;
        else if (memcmp(x, x + chunk, (size_t)n) != 0)
            rc = 0;
        at += n > 0 ? n : 0;
    }
    free(x);
    return rc;
}

//  SHA-256 (hex) and size of the file open on fd. Returns 0 or -1.
static int s_sha256_fd(int fd, char hex[65], off_t *size)
{
    char buf[1 << 16];
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    off_t at = 0;
    int rc = -1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
        goto done;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto done;
        if (n == 0)
            break;
        if (!EVP_DigestUpdate(md, buf, (size_t)n))
            goto done;
        at += n;
    }
    if (EVP_DigestFinal_ex(md, sum, &len) && len == 32) {
        hex_encode(sum, 32, hex);
        *size = at;
        rc = 0;
    }
done:
    EVP_MD_CTX_free(md);
    return rc;
}

//  fsyncs the directory holding path, so that a rename into it is durable.
static int s_fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == path ? strdup("/")
                : slash       ? strndup(path, (size_t)(slash - path))
                              : strdup(".");
    if (!dir)
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

//  mkdir -p of the directory part of path (everything before the last '/').
static int s_mkdirs_for(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int rc = 0;
    for (char *p = copy + 1; *p && rc == 0; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0755) && errno != EEXIST)
            rc = -1;
        *p = '/';
    }
    free(copy);
    return rc;
}

//  Opens a new "<path>.tmp.XXXXXX" next to path (same file system, so it
//  can be renamed onto path). Returns the fd and the name in *tmp_out.
static int s_tmp_next_to(const char *path, char **tmp_out)
{
    char *tmp = s_printf("%s.tmp.XXXXXX", path);
    if (!tmp)
        return -1;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0 || fchmod(fd, 0644)) { //  artifacts are not secret; operators may read
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return -1;
    }
    *tmp_out = tmp;
    return fd;
}

//  Gives tmp the name dest unless dest exists. Returns 0, or -1 with errno
//  (EEXIST when dest exists). tmp is gone after success.
static int s_rename_noreplace(const char *tmp, const char *dest)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dest, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -1;
    //  File systems without RENAME_NOREPLACE: link() never replaces either.
    if (link(tmp, dest))
        return -1;
    unlink(tmp);
    return 0;
}

//  --- file:// ------------------------------------------------------------------

static int s_file_put(artifact_store_t *self, const char *local_path, const char *key, char *err,
                      size_t errlen)
{
    char *dest = s_printf("%s/%s", self->root, key);
    char *tmp = s_printf("%s/.tmp/put-XXXXXX", self->root);
    int src = -1, out = -1, existing = -1, rc = -1;
    bool tmp_made = false;
    if (!dest || !tmp) {
        s_fail(err, errlen, "out of memory");
        goto done;
    }
    if ((src = open(local_path, O_RDONLY | O_CLOEXEC)) < 0) {
        s_fail(err, errlen, "%s: %s", local_path, strerror(errno));
        goto done;
    }
    if (s_mkdirs_for(tmp) || s_mkdirs_for(dest) || (out = mkostemp(tmp, O_CLOEXEC)) < 0) {
        s_fail(err, errlen, "file://%s: %s", dest, strerror(errno));
        goto done;
    }
    tmp_made = true;
    if (fchmod(out, 0644) || s_copy_fd(src, out) || fsync(out)) {
        s_fail(err, errlen, "file://%s: writing %s: %s", dest, tmp, strerror(errno));
        goto done;
    }
    if (s_rename_noreplace(tmp, dest) == 0) {
        tmp_made = false;
        if (s_fsync_parent(dest)) {
            s_fail(err, errlen, "file://%s: fsync of its directory: %s", dest, strerror(errno));
            goto done;
        }
        rc = 0;
        goto done;
    }
    if (errno != EEXIST) {
        s_fail(err, errlen, "file://%s: commit: %s", dest, strerror(errno));
        goto done;
    }
    //  The key is taken: fine if it already holds these very bytes (a retry).
    int same =
        (existing = open(dest, O_RDONLY | O_CLOEXEC)) < 0 ? -1 : s_same_content(src, existing);
    if (same == 1)
        rc = 0;
    else if (same == 0)
        s_fail(err, errlen, "file://%s exists with different content; keys are immutable", dest);
    else
        s_fail(err, errlen, "file://%s exists and cannot be compared: %s", dest, strerror(errno));
done:
    if (src >= 0)
        close(src);
    if (out >= 0)
        close(out);
    if (existing >= 0)
        close(existing);
    if (tmp_made)
        unlink(tmp);
    free(dest);
    free(tmp);
    return rc;
}

static int s_file_get(artifact_store_t *self, const char *key, const char *local_path, char *err,
                      size_t errlen)
{
    char *src_path = s_printf("%s/%s", self->root, key);
    char *tmp = NULL;
    int src = -1, out = -1, rc = -1;
    if (!src_path) {
        s_fail(err, errlen, "out of memory");
        goto done;
    }
    if ((src = open(src_path, O_RDONLY | O_CLOEXEC)) < 0) {
        s_fail(err, errlen, "file://%s: %s", src_path,
               errno == ENOENT ? "no such key" : strerror(errno));
        goto done;
    }
    if ((out = s_tmp_next_to(local_path, &tmp)) < 0) {
        s_fail(err, errlen, "%s: cannot create a temporary file: %s", local_path, strerror(errno));
        goto done;
    }
    if (s_copy_fd(src, out) || fsync(out) || rename(tmp, local_path) ||
        s_fsync_parent(local_path)) {
        s_fail(err, errlen, "file://%s to %s: %s", src_path, local_path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (src >= 0)
        close(src);
    if (out >= 0)
        close(out);
    if (tmp && rc != 0)
        unlink(tmp);
    free(tmp);
    free(src_path);
    return rc;
}

static int s_file_exists(artifact_store_t *self, const char *key)
{
    struct stat st;
    char *path = s_printf("%s/%s", self->root, key);
    if (!path)
        return -1;
    int rc = stat(path, &st) == 0                  ? S_ISREG(st.st_mode) != 0
             : errno == ENOENT || errno == ENOTDIR ? 0
                                                   : -1;
    free(path);
    return rc;
}

static int s_file_delete(artifact_store_t *self, const char *key, char *err, size_t errlen)
{
    char *path = s_printf("%s/%s", self->root, key);
    if (!path)
        return s_fail(err, errlen, "out of memory");
    int rc = 0;
    if (unlink(path) == 0)
        s_fsync_parent(path); //  best effort: a resurrected deleted file is harmless
    else if (errno != ENOENT)
        rc = s_fail(err, errlen, "file://%s: %s", path, strerror(errno));
    free(path);
    return rc;
}

//  --- s3:// --------------------------------------------------------------------

typedef struct {
    const char *method;         //  GET PUT HEAD DELETE
    char *object;               //  object key in the bucket, ours
    struct curl_slist *headers; //  ours
    FILE *upload;               //  PUT body, or NULL for an empty one
    curl_off_t upload_size;
    int out_fd;         //  GET: body goes here when the status is 200
    EVP_MD_CTX *out_md; //  ... and is hashed
    bool out_failed;
    long status;
    char body[2048]; //  start of any other body: S3's <Error> document
    size_t body_len;
    char meta_sha256[65]; //  x-amz-meta-sha256 of the response
} s_req_t;

static size_t s_on_header(char *data, size_t size, size_t n, void *arg)
{
    s_req_t *req = arg;
    size_t len = size * n;
    static const char name[] = "x-amz-meta-sha256:";
    if (len > sizeof name && strncasecmp(data, name, sizeof name - 1) == 0) {
        const char *v = data + sizeof name - 1;
        const char *end = data + len;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        while (end > v && isspace((unsigned char)end[-1]))
            end--;
        if (end - v == 64)
            snprintf(req->meta_sha256, sizeof req->meta_sha256, "%.*s", 64, v);
    }
    return len;
}

static size_t s_on_body(char *data, size_t size, size_t n, void *arg)
{
    s_req_t *req = arg;
    size_t len = size * n;
    if (req->out_fd >= 0 && req->status == 200) {
        if (s_write_all(req->out_fd, data, len) || !EVP_DigestUpdate(req->out_md, data, len)) {
            req->out_failed = true;
            return 0; //  aborts the transfer
        }
        return len;
    }
    size_t room = sizeof req->body - 1 - req->body_len;
    size_t take = len < room ? len : room;
    memcpy(req->body + req->body_len, data, take);
    req->body_len += take;
    req->body[req->body_len] = '\0';
    return len;
}

//  Learns the status before the body arrives, so s_on_body knows where the
//  body goes (the status line is the first header line).
static size_t s_on_header_status(char *data, size_t size, size_t n, void *arg)
{
    s_req_t *req = arg;
    //  "HTTP/1.1 200 OK": the status follows the first space.
    const char *space =
        size * n > 12 && strncmp(data, "HTTP/", 5) == 0 ? memchr(data, ' ', 12) : NULL;
    if (space)
        req->status = strtol(space + 1, NULL, 10);
    return s_on_header(data, size, n, arg);
}

//  "s3://bucket/object", how messages name an object.
static void s_s3_name(const artifact_store_t *self, const char *object, char *out, size_t len)
{
    snprintf(out, len, "s3://%s/%s", self->bucket, object);
}

//  Extracts <tag>...</tag> from an S3 error document into out ("" if none).
static void s_xml_tag(const char *body, const char *tag, char *out, size_t len)
{
    char open[32], close[32];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *start = strstr(body, open);
    const char *end = start ? strstr(start, close) : NULL;
    out[0] = '\0';
    if (start && end) {
        start += strlen(open);
        snprintf(out, len, "%.*s", (int)(end - start), start);
    }
}

//  Error text for an unexpected answer: "s3 PUT s3://b/k: HTTP 403 Code: Message".
static int s_http_fail(const artifact_store_t *self, const s_req_t *req, char *err, size_t errlen)
{
    char name[700], code[64], message[256];
    s_s3_name(self, req->object, name, sizeof name);
    s_xml_tag(req->body, "Code", code, sizeof code);
    s_xml_tag(req->body, "Message", message, sizeof message);
    return s_fail(err, errlen, "s3 %s %s: HTTP %ld%s%s%s%s", req->method, name, req->status,
                  code[0] ? " " : "", code, message[0] ? ": " : "", message);
}

static size_t s_on_read(char *buf, size_t size, size_t n, void *arg)
{
    s_req_t *req = arg;
    if (!req->upload)
        return 0;
    size_t got = fread(buf, 1, size * n, req->upload);
    return got == 0 && ferror(req->upload) ? CURL_READFUNC_ABORT : got;
}

//  Adds a header to req; returns 0 or -1 (out of memory).
__attribute__((format(printf, 2, 3))) static int s_header(s_req_t *req, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line)
        return -1;
    struct curl_slist *more = curl_slist_append(req->headers, line);
    if (!more)
        return -1;
    req->headers = more;
    return 0;
}

//  Starts a request on object with the headers every request carries.
//  payload_sha256 is the hex hash of the body curl will send (S3 checks it).
static int s_req_init(artifact_store_t *self, s_req_t *req, const char *method, char *object,
                      const char *payload_sha256)
{
    memset(req, 0, sizeof *req);
    req->method = method;
    req->object = object;
    req->out_fd = -1;
    if (!object)
        return -1;
    //  curl signs every header it is given and, when this one is present,
    //  uses its value as the payload hash: a streamed upload is signed right.
    if (s_header(req, "x-amz-content-sha256: %s", payload_sha256) ||
        (self->token_header && s_header(req, "%s", self->token_header)))
        return -1;
    return 0;
}

static void s_req_free(s_req_t *req)
{
    curl_slist_free_all(req->headers);
    req->headers = NULL;
    free(req->object);
    req->object = NULL;
}

//  Performs req. Returns 0 when an HTTP answer came (any status, in
//  req->status), or -1 with a transport error in err.
static int s_perform(artifact_store_t *self, s_req_t *req, char *err, size_t errlen)
{
    char *url = s_printf("%s/%s", self->base_url, req->object);
    if (!url)
        return s_fail(err, errlen, "out of memory");
    CURL *c = self->curl;
    curl_easy_reset(c);
    CURLcode rc = CURLE_OK;
    bool head = strcmp(req->method, "HEAD") == 0, put = strcmp(req->method, "PUT") == 0;
    //  Any failing setopt (out of memory, an option this libcurl lacks) is
    //  reported like a failed transfer; the rest are skipped.
#define S_SET(opt, value)                                                                          \
    if (rc == CURLE_OK)                                                                            \
    rc = curl_easy_setopt(c, opt, value)
    S_SET(CURLOPT_URL, url);
    S_SET(CURLOPT_PROTOCOLS_STR, "http,https");
    S_SET(CURLOPT_NOSIGNAL, 1L);
    S_SET(CURLOPT_CONNECTTIMEOUT, S_CONNECT_TIMEOUT_S);
    S_SET(CURLOPT_TIMEOUT, self->timeout_s);
    S_SET(CURLOPT_AWS_SIGV4, self->sigv4);
    S_SET(CURLOPT_USERNAME, self->access_key);
    S_SET(CURLOPT_PASSWORD, self->secret_key);
    S_SET(CURLOPT_HTTPHEADER, req->headers);
    S_SET(CURLOPT_HEADERFUNCTION, s_on_header_status);
    S_SET(CURLOPT_HEADERDATA, req);
    S_SET(CURLOPT_WRITEFUNCTION, s_on_body);
    S_SET(CURLOPT_WRITEDATA, req);
    if (head)
        S_SET(CURLOPT_NOBODY, 1L);
    if (strcmp(req->method, "DELETE") == 0)
        S_SET(CURLOPT_CUSTOMREQUEST, "DELETE");
    if (put) {
        S_SET(CURLOPT_UPLOAD, 1L);
        S_SET(CURLOPT_READFUNCTION, s_on_read);
        S_SET(CURLOPT_READDATA, req);
        S_SET(CURLOPT_INFILESIZE_LARGE, req->upload_size);
    }
#undef S_SET
    if (rc == CURLE_OK)
        rc = curl_easy_perform(c);
    free(url);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &req->status);
        return 0;
    }
    char name[700];
    s_s3_name(self, req->object, name, sizeof name);
    return s_fail(err, errlen, "s3 %s %s: %s%s", req->method, name, curl_easy_strerror(rc),
                  req->out_failed ? " (writing the local file failed)" : "");
}

static char *s_object(const artifact_store_t *self, const char *key)
{
    return self->prefix[0] ? s_printf("%s/%s", self->prefix, key) : strdup(key);
}

//  HEAD of key: 1 found (its x-amz-meta-sha256 in meta, "" if none), 0 not
//  found, -1 error.
static int s_s3_head(artifact_store_t *self, const char *key, char meta[65], char *err,
                     size_t errlen)
{
    s_req_t req;
    int rc = -1;
    if (s_req_init(self, &req, "HEAD", s_object(self, key), S_EMPTY_SHA256)) {
        s_fail(err, errlen, "out of memory");
        goto done;
    }
    if (s_perform(self, &req, err, errlen))
        goto done;
    if (req.status == 200) {
        if (meta)
            strcpy(meta, req.meta_sha256);
        rc = 1;
    } else if (req.status == 404)
        rc = 0;
    else
        s_http_fail(self, &req, err, errlen);
done:
    s_req_free(&req);
    return rc;
}

static int s_s3_delete_object(artifact_store_t *self, char *object, char *err, size_t errlen)
{
    s_req_t req;
    int rc = -1;
    if (s_req_init(self, &req, "DELETE", object, S_EMPTY_SHA256)) {
        s_fail(err, errlen, "out of memory");
        goto done;
    }
    if (s_perform(self, &req, err, errlen))
        goto done;
    if (req.status == 200 || req.status == 204 || req.status == 404)
        rc = 0;
    else
        s_http_fail(self, &req, err, errlen);
done:
    s_req_free(&req);
    return rc;
}

//  PUT of local (open as f, with sha256 and size) to the object tmp.
static int s_s3_upload(artifact_store_t *self, FILE *f, off_t size, const char *sha256,
                       const char *tmp, char *err, size_t errlen)
{
    s_req_t req;
    int rc = -1;
    if (s_req_init(self, &req, "PUT", strdup(tmp), sha256) ||
        s_header(&req, "x-amz-meta-sha256: %s", sha256) ||
        s_header(&req, "Content-Type: application/octet-stream")) {
        s_fail(err, errlen, "out of memory");
        goto done;
    }
    req.upload = f;
    req.upload_size = size;
    if (s_perform(self, &req, err, errlen))
        goto done;
    if (req.status == 200)
        rc = 0;
    else
        s_http_fail(self, &req, err, errlen);
done:
    s_req_free(&req);
    return rc;
}

//  Server-side copy of the object tmp to the object of key.
static int s_s3_copy(artifact_store_t *self, const char *tmp, const char *key, char *err,
                     size_t errlen)
{
    s_req_t req;
    int rc = -1;
    if (s_req_init(self, &req, "PUT", s_object(self, key), S_EMPTY_SHA256) ||
        s_header(&req, "x-amz-copy-source: /%s/%s", self->bucket, tmp) ||
        s_header(&req, "x-amz-metadata-directive: COPY")) {
        s_fail(err, errlen, "out of memory");
        goto done;
    }
    if (s_perform(self, &req, err, errlen))
        goto done;
    //  CopyObject may answer 200 and report a failure in the body.
    if (req.status == 200 && !strstr(req.body, "<Error>"))
        rc = 0;
    else
        s_http_fail(self, &req, err, errlen);
done:
    s_req_free(&req);
    return rc;
}

static int s_s3_put(artifact_store_t *self, const char *local_path, const char *key, char *err,
                    size_t errlen)
{
    char sha[65], meta[65], name[700];
    char *tmp = NULL;
    off_t size = 0;
    int rc = -1;
    FILE *f = fopen(local_path, "rbe");
    if (!f)
        return s_fail(err, errlen, "%s: %s", local_path, strerror(errno));
    if (s_sha256_fd(fileno(f), sha, &size)) {
        s_fail(err, errlen, "%s: %s", local_path, strerror(errno));
        goto done;
    }
    if (size > S_SINGLE_PUT_MAX) {
        s_fail(err, errlen, "%s: %lld bytes, more than a single S3 PUT takes (5 GiB)", local_path,
               (long long)size);
        goto done;
    }
    int found = s_s3_head(self, key, meta, err, errlen);
    if (found < 0)
        goto done;
    if (found) {
        char *object = s_object(self, key);
        s_s3_name(self, object ? object : key, name, sizeof name);
        free(object);
        if (strcmp(meta, sha) == 0)
            rc = 0; //  the same bytes again: a retried put
        else
            s_fail(err, errlen,
                   "%s exists with different content (sha256 %s, ours %s); keys are "
                   "immutable",
                   name, meta[0] ? meta : "unknown", sha);
        goto done;
    }
    unsigned char rnd[8];
    char rnd_hex[17];
    if (getrandom(rnd, sizeof rnd, 0) != sizeof rnd) {
        s_fail(err, errlen, "getrandom: %s", strerror(errno));
        goto done;
    }
    hex_encode(rnd, sizeof rnd, rnd_hex);
    tmp = self->prefix[0] ? s_printf("%s/.tmp/%s", self->prefix, rnd_hex)
                          : s_printf(".tmp/%s", rnd_hex);
    if (!tmp) {
        s_fail(err, errlen, "out of memory");
        goto done;
    }
    if (s_s3_upload(self, f, size, sha, tmp, err, errlen))
        goto done;
    if (s_s3_copy(self, tmp, key, err, errlen)) {
        char ignored[256]; //  the copy's error is the one to report
        s_s3_delete_object(self, strdup(tmp), ignored, sizeof ignored);
        goto done;
    }
    rc = 0;
    char why[512];
    if (s_s3_delete_object(self, strdup(tmp), why, sizeof why))
        //  The key is committed; a leftover under .tmp/ is the lifecycle rule's.
        log_warn("artifact store: temporary object left behind: %s", why);
done:
    fclose(f);
    free(tmp);
    return rc;
}

static int s_s3_get(artifact_store_t *self, const char *key, const char *local_path, char *err,
                    size_t errlen)
{
    s_req_t req;
    char *tmp = NULL;
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned sum_len = 0;
    char sha[65], name[700];
    int rc = -1;
    if (s_req_init(self, &req, "GET", s_object(self, key), S_EMPTY_SHA256) ||
        !(req.out_md = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(req.out_md, EVP_sha256(), NULL)) {
        s_fail(err, errlen, "out of memory");
        goto done;
    }
    if ((req.out_fd = s_tmp_next_to(local_path, &tmp)) < 0) {
        s_fail(err, errlen, "%s: cannot create a temporary file: %s", local_path, strerror(errno));
        goto done;
    }
    if (s_perform(self, &req, err, errlen))
        goto done;
    if (req.status != 200) {
        s_http_fail(self, &req, err, errlen);
        goto done;
    }
    s_s3_name(self, req.object, name, sizeof name);
    if (!EVP_DigestFinal_ex(req.out_md, sum, &sum_len)) {
        s_fail(err, errlen, "%s: SHA-256 failed", name);
        goto done;
    }
    hex_encode(sum, 32, sha);
    if (req.meta_sha256[0] && strcmp(req.meta_sha256, sha) != 0) {
        s_fail(err, errlen, "%s: content sha256 %s, x-amz-meta-sha256 says %s", name, sha,
               req.meta_sha256);
        goto done;
    }
    if (fsync(req.out_fd) || rename(tmp, local_path) || s_fsync_parent(local_path)) {
        s_fail(err, errlen, "%s to %s: %s", name, local_path, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (req.out_fd >= 0)
        close(req.out_fd);
    if (tmp && rc != 0)
        unlink(tmp);
    free(tmp);
    EVP_MD_CTX_free(req.out_md);
    s_req_free(&req);
    return rc;
}

//  --- construction -----------------------------------------------------------

void artifact_store_s3_from_env(artifact_store_s3_t *s3)
{
    memset(s3, 0, sizeof *s3);
    s3->endpoint = getenv("RECSD_S3_ENDPOINT");
    s3->region = getenv("AWS_REGION");
    if (!s3->region || !*s3->region)
        s3->region = getenv("AWS_DEFAULT_REGION");
    s3->access_key = getenv("AWS_ACCESS_KEY_ID");
    s3->secret_key = getenv("AWS_SECRET_ACCESS_KEY");
    s3->session_token = getenv("AWS_SESSION_TOKEN");
    const char *timeout = getenv("RECSD_S3_TIMEOUT_S");
    s3->timeout_s = timeout ? strtol(timeout, NULL, 10) : 0;
}

static int s_new_file(artifact_store_t *self, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (!*path)
        return s_fail(err, errlen, "file:// URL without a directory");
    if (path[0] == '/') {
        self->root = strdup(path);
    } else {
        char *cwd = getcwd(NULL, 0);
        self->root = cwd ? s_printf("%s/%s", cwd, path) : NULL;
        free(cwd);
    }
    if (!self->root)
        return s_fail(err, errlen, "out of memory");
    size_t len = strlen(self->root);
    while (len > 1 && self->root[len - 1] == '/')
        self->root[--len] = '\0';
    char *probe = s_printf("%s/", self->root);
    int made = probe ? s_mkdirs_for(probe) : -1;
    free(probe);
    if (made || stat(self->root, &st))
        return s_fail(err, errlen, "file://%s: %s", self->root, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return s_fail(err, errlen, "file://%s: not a directory", self->root);
    return 0;
}

static bool s_valid_bucket(const char *b, size_t len)
{
    if (len < 3 || len > 63)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!islower((unsigned char)b[i]) && !isdigit((unsigned char)b[i]) && b[i] != '.' &&
            b[i] != '-')
            return false;
    return true;
}

static int s_new_s3(artifact_store_t *self, const char *rest, const artifact_store_s3_t *s3,
                    char *err, size_t errlen)
{
    if (!s3 || !s3->access_key || !*s3->access_key || !s3->secret_key || !*s3->secret_key)
        return s_fail(err, errlen, "s3:// needs an access key and a secret key");
    const char *slash = strchr(rest, '/');
    size_t blen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!s_valid_bucket(rest, blen))
        return s_fail(err, errlen, "s3:// URL: bad bucket name \"%.*s\"", (int)blen, rest);
    self->bucket = strndup(rest, blen);
    self->prefix = strdup(slash ? slash + 1 : "");
    if (!self->bucket || !self->prefix)
        return s_fail(err, errlen, "out of memory");
    size_t plen = strlen(self->prefix);
    while (plen && self->prefix[plen - 1] == '/')
        self->prefix[--plen] = '\0';
    if (plen && !artifact_store_key_valid(self->prefix))
        return s_fail(err, errlen, "s3:// URL: bad prefix \"%s\"", self->prefix);

    const char *region = s3->region && *s3->region ? s3->region : "us-east-1";
    for (const char *p = region; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '-')
            return s_fail(err, errlen, "bad S3 region \"%s\"", region);
    const char *ep = s3->endpoint;
    if (ep && *ep) {
        size_t elen = strlen(ep);
        while (elen && ep[elen - 1] == '/')
            elen--;
        const char *host = strncmp(ep, "http://", 7) == 0    ? ep + 7
                           : strncmp(ep, "https://", 8) == 0 ? ep + 8
                                                             : NULL;
        if (!host || host >= ep + elen || memchr(host, '/', (size_t)(ep + elen - host)))
            return s_fail(err, errlen, "S3 endpoint must be http(s)://host[:port], got \"%s\"", ep);
        //  Path-style: what MinIO and s3rver expect on a bare host:port.
        self->base_url = s_printf("%.*s/%s", (int)elen, ep, self->bucket);
    } else if (strchr(self->bucket, '.')) {
        //  A dotted bucket breaks the *.s3 TLS wildcard: path-style.
        self->base_url = s_printf("https://s3.%s.amazonaws.com/%s", region, self->bucket);
    } else {
        self->base_url = s_printf("https://%s.s3.%s.amazonaws.com", self->bucket, region);
    }
    self->sigv4 = s_printf("aws:amz:%s:s3", region);
    self->access_key = strdup(s3->access_key);
    self->secret_key = strdup(s3->secret_key);
    if (s3->session_token && *s3->session_token)
        self->token_header = s_printf("x-amz-security-token: %s", s3->session_token);
    self->timeout_s = s3->timeout_s > 0 ? s3->timeout_s : S_DEFAULT_TIMEOUT_S;
    if (!self->base_url || !self->sigv4 || !self->access_key || !self->secret_key ||
        (s3->session_token && *s3->session_token && !self->token_header))
        return s_fail(err, errlen, "out of memory");
    //  Reference-counted, and thread-safe since curl 7.84.
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return s_fail(err, errlen, "curl_global_init failed");
    if (!(self->curl = curl_easy_init())) {
        curl_global_cleanup();
        return s_fail(err, errlen, "curl_easy_init failed");
    }
    return 0;
}

artifact_store_t *artifact_store_new(const char *url, const artifact_store_s3_t *s3, char *err,
                                     size_t errlen)
{
    artifact_store_t *self = calloc(1, sizeof *self);
    if (!self) {
        s_fail(err, errlen, "out of memory");
        return NULL;
    }
    int rc;
    if (url && strncmp(url, "file://", 7) == 0) {
        self->kind = S_FILE;
        rc = s_new_file(self, url + 7, err, errlen);
    } else if (url && strncmp(url, "s3://", 5) == 0) {
        self->kind = S_S3;
        rc = s_new_s3(self, url + 5, s3, err, errlen);
    } else {
        rc = s_fail(err, errlen, "artifact store URL must start with file:// or s3://");
    }
    if (rc)
        artifact_store_destroy(&self);
    return self;
}

void artifact_store_destroy(artifact_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    artifact_store_t *self = *self_p;
    if (self->curl) {
        curl_easy_cleanup(self->curl);
        curl_global_cleanup();
    }
    free(self->root);
    free(self->bucket);
    free(self->prefix);
    free(self->base_url);
    free(self->sigv4);
    free(self->access_key);
    if (self->secret_key) {
        explicit_bzero(self->secret_key, strlen(self->secret_key));
        free(self->secret_key);
    }
    if (self->token_header) {
        explicit_bzero(self->token_header, strlen(self->token_header));
        free(self->token_header);
    }
    free(self);
    *self_p = NULL;
}

//  --- operations ------------------------------------------------------------------

int artifact_store_put(artifact_store_t *self, const char *local_path, const char *key, char *err,
                       size_t errlen)
{
    if (!artifact_store_key_valid(key))
        return s_fail(err, errlen, "bad artifact key \"%.64s\"", key ? key : "(null)");
    return self->kind == S_FILE ? s_file_put(self, local_path, key, err, errlen)
                                : s_s3_put(self, local_path, key, err, errlen);
}

int artifact_store_get(artifact_store_t *self, const char *key, const char *local_path, char *err,
                       size_t errlen)
{
    if (!artifact_store_key_valid(key))
        return s_fail(err, errlen, "bad artifact key \"%.64s\"", key ? key : "(null)");
    return self->kind == S_FILE ? s_file_get(self, key, local_path, err, errlen)
                                : s_s3_get(self, key, local_path, err, errlen);
}

int artifact_store_exists(artifact_store_t *self, const char *key)
{
    char why[512];
    if (!artifact_store_key_valid(key))
        return -1;
    if (self->kind == S_FILE)
        return s_file_exists(self, key);
    int rc = s_s3_head(self, key, NULL, why, sizeof why);
    if (rc < 0) //  the signature has no room for the reason: log it
        log_warn("artifact store: %s", why);
    return rc;
}

char *artifact_store_url(const artifact_store_t *self, const char *key)
{
    if (!artifact_store_key_valid(key))
        return NULL;
    if (self->kind == S_FILE)
        return s_printf("file://%s/%s", self->root, key);
    return self->prefix[0] ? s_printf("s3://%s/%s/%s", self->bucket, self->prefix, key)
                           : s_printf("s3://%s/%s", self->bucket, key);
}

int artifact_store_delete(artifact_store_t *self, const char *key, char *err, size_t errlen)
{
    if (!artifact_store_key_valid(key))
        return s_fail(err, errlen, "bad artifact key \"%.64s\"", key ? key : "(null)");
    return self->kind == S_FILE ? s_file_delete(self, key, err, errlen)
                                : s_s3_delete_object(self, s_object(self, key), err, errlen);
}
