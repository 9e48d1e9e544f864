/*  artifact.c: writing and mmapping model artifacts (see artifact.h for the
    format and the ownership rules).
*/
#include "artifact.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hex.h"

//  The ranker reads the integers and floats in place, so the bytes on disk
//  must already be in host order.
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "recsd artifacts are little-endian and read in place; this host is big-endian"
#endif

#define S_MAGIC "RECSDART"
#define S_HEADER_SIZE 128
#define S_ENTRY_SIZE 64
#define S_SUM_AT 56 //  offset of the sha256 field, skipped by the checksum
#define S_SUM_LEN 32
#define S_CHUNK ((size_t)8 << 20) //  per write(2): bounded, and large
#define S_STRINGS_NAME_MAX (ARTIFACT_NAME_MAX - 4)

typedef struct {
    char magic[8];
    uint32_t version;
    uint32_t section_count;
    uint64_t file_size;
    char model_type[32];
    uint8_t sha256[32];
    uint8_t reserved[40];
} s_header_t;

typedef struct {
    char name[24];
    uint32_t dtype;
    uint32_t reserved;
    int64_t rows;
    int64_t cols;
    uint64_t offset;
    uint64_t length;
} s_entry_t;

static_assert(sizeof(s_header_t) == S_HEADER_SIZE, "header layout");
static_assert(offsetof(s_header_t, sha256) == S_SUM_AT, "checksum offset");
static_assert(sizeof(s_entry_t) == S_ENTRY_SIZE, "section entry layout");

typedef struct {
    char name[ARTIFACT_NAME_MAX + 1];
    artifact_dtype_t dtype;
    int64_t rows, cols;
    uint64_t length;
    uint64_t offset;         //  set by the layout pass of the write
    const void *data;        //  borrowed raw bytes, or
    const char *const *strs; //  borrowed strings written back to back
    int64_t *owned;          //  offsets of a strings pair, ours to free
} s_section_t;

struct artifact_writer_t {
    char model_type[ARTIFACT_MODEL_TYPE_MAX + 1];
    s_section_t *sections;
    size_t count, cap;
};

struct artifact_t {
    const uint8_t *base;
    size_t size;
    const s_header_t *header;
    const s_entry_t *table;
    char checksum[65];
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

static size_t s_elem_size(uint32_t dtype)
{
    switch (dtype) {
    case ARTIFACT_F32:
    case ARTIFACT_I32:
        return 4;
    case ARTIFACT_I64:
        return 8;
    case ARTIFACT_BYTES:
        return 1;
    default:
        return 0;
    }
}

//  Byte length of rows x cols of dtype into *length. Returns 0, or -1 for a
//  bad dtype, a negative dimension or a size that does not fit an int64.
static int s_length(uint32_t dtype, int64_t rows, int64_t cols, uint64_t *length)
{
    size_t elem = s_elem_size(dtype);
    int64_t n, bytes;
    if (!elem || rows < 0 || cols < 0 || __builtin_mul_overflow(rows, cols, &n) ||
        __builtin_mul_overflow(n, (int64_t)elem, &bytes))
        return -1;
    *length = (uint64_t)bytes;
    return 0;
}

static uint64_t s_align(uint64_t x)
{
    return (x + ARTIFACT_ALIGN - 1) & ~(uint64_t)(ARTIFACT_ALIGN - 1);
}

//  1..max chars, each printable and not a space (names end up in logs and
//  in error messages, where blanks and control bytes only confuse).
static bool s_valid_name(const char *name, size_t max)
{
    if (!name)
        return false;
    size_t len = strnlen(name, max + 1);
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (name[i] <= 0x20 || name[i] >= 0x7f)
            return false;
    return true;
}

//  --- writer ------------------------------------------------------------------

artifact_writer_t *artifact_writer_new(const char *model_type)
{
    if (!s_valid_name(model_type, ARTIFACT_MODEL_TYPE_MAX))
        return NULL;
    artifact_writer_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    strcpy(self->model_type, model_type);
    return self;
}

void artifact_writer_destroy(artifact_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    artifact_writer_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free(self->sections[i].owned);
    free(self->sections);
    free(self);
    *self_p = NULL;
}

static bool s_has_section(const artifact_writer_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->sections[i].name, name) == 0)
            return true;
    return false;
}

//  Appends a zeroed section slot named name. Returns it, or NULL.
static s_section_t *s_push(artifact_writer_t *self, const char *name)
{
    if (self->count >= ARTIFACT_MAX_SECTIONS)
        return NULL;
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 8;
        s_section_t *grown = realloc(self->sections, cap * sizeof *grown);
        if (!grown)
            return NULL;
        self->sections = grown;
        self->cap = cap;
    }
    s_section_t *s = &self->sections[self->count++];
    memset(s, 0, sizeof *s);
    strcpy(s->name, name);
    return s;
}

int artifact_writer_add(artifact_writer_t *self, const char *name, artifact_dtype_t dtype,
                        int64_t rows, int64_t cols, const void *data)
{
    uint64_t length;
    if (!self || !s_valid_name(name, ARTIFACT_NAME_MAX) || s_has_section(self, name) ||
        s_length(dtype, rows, cols, &length) || (length && !data))
        return -1;
    s_section_t *s = s_push(self, name);
    if (!s)
        return -1;
    s->dtype = dtype;
    s->rows = rows;
    s->cols = cols;
    s->length = length;
    s->data = data;
    return 0;
}

int artifact_writer_add_strings(artifact_writer_t *self, const char *name, const char *const *strs,
                                int64_t n)
{
    char idx_name[ARTIFACT_NAME_MAX + 1];
    if (!self || !s_valid_name(name, S_STRINGS_NAME_MAX) || n < 0 || (n && !strs) ||
        n >= INT64_MAX / 8 - 1)
        return -1;
    snprintf(idx_name, sizeof idx_name, "%s.idx", name);
    if (s_has_section(self, name) || s_has_section(self, idx_name) ||
        self->count + 2 > ARTIFACT_MAX_SECTIONS)
        return -1;
    int64_t *offsets = malloc((size_t)(n + 1) * sizeof *offsets);
    if (!offsets)
        return -1;
    offsets[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!strs[i] ||
            __builtin_add_overflow(offsets[i], (int64_t)strlen(strs[i]) + 1, &offsets[i + 1])) {
            free(offsets);
            return -1;
        }
    }
    //  Both slots exist before either is filled, so a failure adds neither.
    if (self->cap < self->count + 2) {
        s_section_t *grown = realloc(self->sections, (self->count + 2) * sizeof *grown);
        if (!grown) {
            free(offsets);
            return -1;
        }
        self->sections = grown;
        self->cap = self->count + 2;
    }
    s_section_t *blob = s_push(self, name);
    blob->dtype = ARTIFACT_BYTES;
    blob->rows = offsets[n];
    blob->cols = 1;
    blob->length = (uint64_t)offsets[n];
    blob->strs = n ? strs : NULL;
    s_section_t *idx = s_push(self, idx_name);
    idx->dtype = ARTIFACT_I64;
    idx->rows = n + 1;
    idx->cols = 1;
    idx->length = (uint64_t)(n + 1) * sizeof *offsets;
    idx->data = offsets;
    idx->owned = offsets;
    return 0;
}

//  Output that hashes every byte it writes, in file order. Small pieces
//  (strings, padding) are gathered in buf; large ones go straight through.
typedef struct {
    int fd;
    EVP_MD_CTX *md;
    uint8_t buf[1 << 16];
    size_t used;
    uint64_t pos; //  bytes handed to s_out_put so far
} s_out_t;

static int s_write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
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

static int s_out_flush(s_out_t *out)
{
    if (out->used && s_write_all(out->fd, out->buf, out->used))
        return -1;
    out->used = 0;
    return 0;
}

//  Writes len bytes; hash = false for the checksum field itself.
static int s_out_put(s_out_t *out, const void *data, size_t len, bool hash)
{
    const uint8_t *p = data;
    out->pos += len;
    if (len < sizeof out->buf / 4) {
        if (out->used + len > sizeof out->buf && s_out_flush(out))
            return -1;
        if (hash && !EVP_DigestUpdate(out->md, p, len))
            return -1;
        memcpy(out->buf + out->used, p, len);
        out->used += len;
        return 0;
    }
    if (s_out_flush(out))
        return -1;
    for (size_t done = 0; done < len; done += S_CHUNK) {
        size_t n = len - done < S_CHUNK ? len - done : S_CHUNK;
        if ((hash && !EVP_DigestUpdate(out->md, p + done, n)) || s_write_all(out->fd, p + done, n))
            return -1;
    }
    return 0;
}

static int s_out_zeros(s_out_t *out, uint64_t n)
{
    static const uint8_t zeros[ARTIFACT_ALIGN];
    assert(n < ARTIFACT_ALIGN);
    return s_out_put(out, zeros, (size_t)n, true);
}

static int s_out_section(s_out_t *out, const s_section_t *s)
{
    if (s->offset > out->pos && s_out_zeros(out, s->offset - out->pos))
        return -1;
    if (!s->strs)
        return s->length ? s_out_put(out, s->data, s->length, true) : 0;
    //  add_strings pushes the .idx slot right after the blob slot.
    const s_section_t *idx = s + 1;
    const int64_t *offsets = idx->data;
    for (int64_t i = 0; i + 1 < idx->rows; i++)
        if (s_out_put(out, s->strs[i], (size_t)(offsets[i + 1] - offsets[i]), true))
            return -1;
    return 0;
}

//  Fills in the offsets of every section; returns the file size, or 0 if it
//  would not fit in an int64.
static uint64_t s_layout(artifact_writer_t *self)
{
    uint64_t pos = s_align(S_HEADER_SIZE + (uint64_t)self->count * S_ENTRY_SIZE);
    uint64_t end = pos;
    for (size_t i = 0; i < self->count; i++) {
        s_section_t *s = &self->sections[i];
        s->offset = s_align(end);
        if (__builtin_add_overflow(s->offset, s->length, &end) || end > INT64_MAX)
            return 0;
    }
    return self->count ? end : S_HEADER_SIZE;
}

static void s_fill_head(const artifact_writer_t *self, uint64_t file_size, uint8_t *head)
{
    s_header_t *h = (s_header_t *)head;
    memcpy(h->magic, S_MAGIC, 8);
    h->version = ARTIFACT_FORMAT_VERSION;
    h->section_count = (uint32_t)self->count;
    h->file_size = file_size;
    strcpy(h->model_type, self->model_type);
    s_entry_t *table = (s_entry_t *)(head + S_HEADER_SIZE);
    for (size_t i = 0; i < self->count; i++) {
        const s_section_t *s = &self->sections[i];
        strcpy(table[i].name, s->name);
        table[i].dtype = s->dtype;
        table[i].rows = s->rows;
        table[i].cols = s->cols;
        table[i].offset = s->offset;
        table[i].length = s->length;
    }
}

//  fsyncs the directory holding path, so that the rename is durable too.
static int s_fsync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == path)
        strcpy(dir, "/");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else
        return -1;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int artifact_writer_write(artifact_writer_t *self, const char *path, char checksum_hex[65],
                          char *err, size_t errlen)
{
    char tmp[4096];
    uint8_t sum[EVP_MAX_MD_SIZE];
    unsigned sum_len = 0;
    uint8_t *head = NULL;
    s_out_t *out = NULL;
    int fd = -1;
    if (!self || !path || !*path)
        return s_fail(err, errlen, "artifact write: no writer or path");
    uint64_t file_size = s_layout(self);
    if (!file_size)
        return s_fail(err, errlen, "artifact write: sections too large");
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return s_fail(err, errlen, "artifact write: path too long");
    size_t head_len = (size_t)s_align(S_HEADER_SIZE + self->count * S_ENTRY_SIZE);
    head = calloc(1, head_len);
    out = calloc(1, sizeof *out);
    if (!head || !out || !(out->md = EVP_MD_CTX_new()) ||
        !EVP_DigestInit_ex(out->md, EVP_sha256(), NULL)) {
        s_fail(err, errlen, "artifact write: out of memory");
        goto err;
    }
    s_fill_head(self, file_size, head);

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        s_fail(err, errlen, "artifact write: cannot create %s: %s", tmp, strerror(errno));
        goto err;
    }
    out->fd = fd;
    errno = 0; //  so that a failure without one (a short write, OpenSSL) says "I/O error"
    //  The checksum field goes out as zeros, unhashed, and is patched last.
    if (s_out_put(out, head, S_SUM_AT, true) || s_out_put(out, head + S_SUM_AT, S_SUM_LEN, false) ||
        s_out_put(out, head + S_SUM_AT + S_SUM_LEN, head_len - S_SUM_AT - S_SUM_LEN, true))
        goto io_err;
    for (size_t i = 0; i < self->count; i++)
        if (s_out_section(out, &self->sections[i]))
            goto io_err;
    if (s_out_flush(out) || !EVP_DigestFinal_ex(out->md, sum, &sum_len) ||
        pwrite(fd, sum, S_SUM_LEN, S_SUM_AT) != S_SUM_LEN || fsync(fd))
        goto io_err;
    if (close(fd)) {
        fd = -1;
        goto io_err;
    }
    fd = -1;
    if (rename(tmp, path)) {
        s_fail(err, errlen, "artifact write: rename %s to %s: %s", tmp, path, strerror(errno));
        goto err;
    }
    int rc = 0;
    if (s_fsync_dir(path))
        //  The file is complete under its name (so it stays); only the
        //  durability of the rename across a power cut is in doubt.
        rc = s_fail(err, errlen, "artifact write: fsync of the directory of %s: %s", path,
                    strerror(errno));
    else if (checksum_hex)
        hex_encode(sum, S_SUM_LEN, checksum_hex);
    EVP_MD_CTX_free(out->md);
    free(out);
    free(head);
    return rc;

io_err:
    s_fail(err, errlen, "artifact write: %s: %s", tmp, errno ? strerror(errno) : "I/O error");
err:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    if (out)
        EVP_MD_CTX_free(out->md);
    free(out);
    free(head);
    return -1;
}

//  --- reader ------------------------------------------------------------------

//  SHA-256 of base[0..size) without the checksum field. Returns 0 or -1.
static int s_digest(const uint8_t *base, size_t size, uint8_t sum[32])
{
    unsigned len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(md, base, S_SUM_AT) &&
             EVP_DigestUpdate(md, base + S_SUM_AT + S_SUM_LEN, size - S_SUM_AT - S_SUM_LEN) &&
             EVP_DigestFinal_ex(md, sum, &len);
    EVP_MD_CTX_free(md);
    return ok && len == S_SUM_LEN ? 0 : -1;
}

//  Checks the header and the checksum of the mapping.
static int s_check_header(const artifact_t *self, char *err, size_t errlen)
{
    const s_header_t *h = self->header;
    if (self->size < 8 || memcmp(self->base, S_MAGIC, 8) != 0)
        return s_fail(err, errlen, "not a recsd artifact (bad magic)");
    if (self->size < S_HEADER_SIZE)
        return s_fail(err, errlen, "truncated: %zu bytes, shorter than the header", self->size);
    if (h->version != ARTIFACT_FORMAT_VERSION)
        return s_fail(err, errlen, "unsupported artifact format version %u (this build reads %d)",
                      h->version, ARTIFACT_FORMAT_VERSION);
    if (h->file_size != self->size)
        return s_fail(err, errlen, "%s: header says %llu bytes, the file has %zu",
                      h->file_size > self->size ? "truncated" : "trailing bytes",
                      (unsigned long long)h->file_size, self->size);
    uint8_t sum[32];
    char want[65], got[65];
    if (s_digest(self->base, self->size, sum))
        return s_fail(err, errlen, "cannot compute SHA-256 (OpenSSL)");
    if (memcmp(sum, h->sha256, S_SUM_LEN) != 0) {
        hex_encode(h->sha256, S_SUM_LEN, want);
        hex_encode(sum, S_SUM_LEN, got);
        return s_fail(err, errlen, "checksum mismatch: header says %s, content is %s", want, got);
    }
    //  A valid checksum only proves the writer's intent; the rest is still
    //  checked, so a buggy writer cannot send the ranker out of bounds.
    if (!memchr(h->model_type, '\0', sizeof h->model_type) ||
        !s_valid_name(h->model_type, ARTIFACT_MODEL_TYPE_MAX))
        return s_fail(err, errlen, "bad model type in the header");
    if (h->section_count > ARTIFACT_MAX_SECTIONS ||
        S_HEADER_SIZE + (uint64_t)h->section_count * S_ENTRY_SIZE > self->size)
        return s_fail(err, errlen, "bad section count %u", h->section_count);
    return 0;
}

static int s_cmp_entry(const void *a, const void *b)
{
    const s_entry_t *x = *(const s_entry_t *const *)a, *y = *(const s_entry_t *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

//  Checks every section entry: name, dtype, length, bounds, alignment,
//  uniqueness and overlap.
static int s_check_table(const artifact_t *self, char *err, size_t errlen)
{
    uint32_t count = self->header->section_count;
    uint64_t data_start = S_HEADER_SIZE + (uint64_t)count * S_ENTRY_SIZE;
    const s_entry_t **sorted = malloc((count ? count : 1) * sizeof(const s_entry_t *));
    if (!sorted)
        return s_fail(err, errlen, "out of memory");
    size_t nonempty = 0;
    for (uint32_t i = 0; i < count; i++) {
        const s_entry_t *e = &self->table[i];
        uint64_t length, end;
        if (!memchr(e->name, '\0', sizeof e->name) || !s_valid_name(e->name, ARTIFACT_NAME_MAX)) {
            s_fail(err, errlen, "section %u: bad name", i);
            goto err;
        }
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(self->table[j].name, e->name) == 0) {
                s_fail(err, errlen, "section \"%s\" appears twice", e->name);
                goto err;
            }
        if (s_length(e->dtype, e->rows, e->cols, &length) || length != e->length) {
            s_fail(err, errlen, "section \"%s\": dtype %u, %lld x %lld does not make %llu bytes",
                   e->name, e->dtype, (long long)e->rows, (long long)e->cols,
                   (unsigned long long)e->length);
            goto err;
        }
        if (e->offset % ARTIFACT_ALIGN || e->offset < data_start ||
            __builtin_add_overflow(e->offset, e->length, &end) || end > self->size) {
            s_fail(err, errlen,
                   "section \"%s\": offset %llu + %llu bytes is misaligned or out of "
                   "bounds",
                   e->name, (unsigned long long)e->offset, (unsigned long long)e->length);
            goto err;
        }
        if (e->length)
            sorted[nonempty++] = e;
    }
    qsort(sorted, nonempty, sizeof(const s_entry_t *), s_cmp_entry);
    for (size_t i = 1; i < nonempty; i++)
        if (sorted[i - 1]->offset + sorted[i - 1]->length > sorted[i]->offset) {
            s_fail(err, errlen, "sections \"%s\" and \"%s\" overlap", sorted[i - 1]->name,
                   sorted[i]->name);
            goto err;
        }
    free(sorted);
    return 0;
err:
    free(sorted);
    return -1;
}

artifact_t *artifact_open(const char *path, char *err, size_t errlen)
{
    struct stat st;
    artifact_t *self = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        s_fail(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st)) {
        s_fail(err, errlen, "%s: %s", path, strerror(errno));
        goto err;
    }
    if (!S_ISREG(st.st_mode) || st.st_size == 0) {
        s_fail(err, errlen, "%s: %s", path,
               S_ISREG(st.st_mode) ? "empty file" : "not a regular file");
        goto err;
    }
    if (!(self = calloc(1, sizeof *self))) {
        s_fail(err, errlen, "%s: out of memory", path);
        goto err;
    }
    self->size = (size_t)st.st_size;
    void *map = mmap(NULL, self->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        s_fail(err, errlen, "%s: mmap: %s", path, strerror(errno));
        goto err;
    }
    close(fd); //  the mapping keeps the file
    fd = -1;
    self->base = map;
    self->header = map;
    self->table = (const s_entry_t *)(self->base + S_HEADER_SIZE);
    char why[320];
    if (s_check_header(self, why, sizeof why) || s_check_table(self, why, sizeof why)) {
        s_fail(err, errlen, "%s: %s", path, why);
        goto err;
    }
    hex_encode(self->header->sha256, S_SUM_LEN, self->checksum);
    return self;
err:
    if (fd >= 0)
        close(fd);
    artifact_destroy(&self);
    return NULL;
}

void artifact_destroy(artifact_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    artifact_t *self = *self_p;
    if (self->base)
        munmap((void *)self->base, self->size);
    free(self);
    *self_p = NULL;
}

const char *artifact_model_type(const artifact_t *self)
{
    return self->header->model_type;
}

const char *artifact_checksum(const artifact_t *self)
{
    return self->checksum;
}

uint64_t artifact_size(const artifact_t *self)
{
    return self->size;
}

const void *artifact_section(const artifact_t *self, const char *name, artifact_dtype_t dtype,
                             int64_t *rows, int64_t *cols)
{
    for (uint32_t i = 0; i < self->header->section_count; i++) {
        const s_entry_t *e = &self->table[i];
        if (strcmp(e->name, name) != 0)
            continue;
        if (e->dtype != (uint32_t)dtype)
            return NULL;
        if (rows)
            *rows = e->rows;
        if (cols)
            *cols = e->cols;
        return self->base + e->offset;
    }
    return NULL;
}

int artifact_strings(const artifact_t *self, const char *name, artifact_strings_t *out, char *err,
                     size_t errlen)
{
    char idx_name[ARTIFACT_NAME_MAX + 8];
    int64_t blob_rows, blob_cols, idx_rows, idx_cols;
    if (!s_valid_name(name, S_STRINGS_NAME_MAX))
        return s_fail(err, errlen, "bad strings name");
    snprintf(idx_name, sizeof idx_name, "%s.idx", name);
    const char *blob = artifact_section(self, name, ARTIFACT_BYTES, &blob_rows, &blob_cols);
    const int64_t *off = artifact_section(self, idx_name, ARTIFACT_I64, &idx_rows, &idx_cols);
    if (!blob || !off)
        return s_fail(err, errlen, "strings \"%s\": no BYTES section or no I64 \"%s\"", name,
                      idx_name);
    if (blob_cols != 1 || idx_cols != 1 || idx_rows < 1 || off[0] != 0 ||
        off[idx_rows - 1] != blob_rows)
        return s_fail(err, errlen, "strings \"%s\": bad shape", name);
    for (int64_t i = 0; i + 1 < idx_rows; i++) {
        //  Every string ends at its NUL, and has no other: lengths are exact.
        if (off[i + 1] <= off[i] || off[i + 1] > blob_rows ||
            memchr(blob + off[i], '\0', (size_t)(off[i + 1] - off[i])) != blob + off[i + 1] - 1)
            return s_fail(err, errlen, "strings \"%s\": string %lld is malformed", name,
                          (long long)i);
    }
    out->blob = blob;
    out->offsets = off;
    out->count = idx_rows - 1;
    return 0;
}
