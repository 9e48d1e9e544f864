/*  test_artifact.c: the model artifact format (artifact.c): real files
    written, mmapped and validated; every kind of damage refused.
*/
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "artifact.h"
#include "leak_check.h"
#include "tmp_dir.h"

static char s_dir[64];

static void s_setup(void)
{
    cr_assert_eq(tmp_dir_make(s_dir, sizeof s_dir, "recsd-artifact"), 0, "tmp dir: %s",
                 strerror(errno));
}

static void s_teardown(void)
{
    tmp_dir_remove(s_dir);
    leak_check_fini();
}

TestSuite(artifact, .init = s_setup, .fini = s_teardown, .timeout = 60);

static char *s_path(const char *name)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    return path;
}

static const float s_f32[3][4] = {{1, 2, 3, 4}, {-1.5f, 0.25f, 1e30f, -0.0f}, {9, 8, 7, 6}};
static const int32_t s_i32[5] = {0, -1, 2147483647, -2147483647 - 1, 42};
static const int64_t s_i64[2][2] = {{INT64_MAX, INT64_MIN}, {0, 123456789012345}};
static const char s_meta[] = "{\"factors\":4,\"seed\":7}";
static const char *const s_ids[] = {"v1", "", "video-with-a-longer-id", "ü"};

//  Writes the standard test artifact to path; returns its checksum.
static void s_write_sample(const char *path, char checksum[65])
{
    artifact_writer_t *w = artifact_writer_new("collaborative");
    cr_assert_not_null(w);
    cr_assert_eq(artifact_writer_add(w, "item_factors", ARTIFACT_F32, 3, 4, s_f32), 0);
    cr_assert_eq(artifact_writer_add(w, "counts", ARTIFACT_I32, 5, 1, s_i32), 0);
    cr_assert_eq(artifact_writer_add(w, "big", ARTIFACT_I64, 2, 2, s_i64), 0);
    cr_assert_eq(artifact_writer_add(w, "meta", ARTIFACT_BYTES, sizeof s_meta - 1, 1, s_meta), 0);
    cr_assert_eq(artifact_writer_add(w, "empty", ARTIFACT_F32, 0, 8, NULL), 0);
    cr_assert_eq(artifact_writer_add_strings(w, "video_ids", s_ids, 4), 0);
    char err[256];
    cr_assert_eq(artifact_writer_write(w, path, checksum, err, sizeof err), 0, "%s", err);
    artifact_writer_destroy(&w);
    cr_assert_null(w);
}

static void s_read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    *data = malloc(*len ? *len : 1);
    cr_assert_eq(fread(*data, 1, *len, f), *len);
    fclose(f);
}

static void s_write_file(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

//  Opens path expecting a refusal whose reason contains want.
static void s_expect_refused(const char *path, const char *want)
{
    char err[512] = "";
    artifact_t *a = artifact_open(path, err, sizeof err);
    if (a)
        artifact_destroy(&a);
    cr_assert_null(a, "%s was accepted", path);
    cr_assert(strstr(err, want), "reason \"%s\" lacks \"%s\"", err, want);
}

//  Recomputes the checksum of a file edited by a test, to reach the
//  structural checks behind it (a buggy writer with a valid checksum).
static void s_reseal(uint8_t *data, size_t len)
{
    unsigned n = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    cr_assert(md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) && EVP_DigestUpdate(md, data, 56) &&
              EVP_DigestUpdate(md, data + 88, len - 88) && EVP_DigestFinal_ex(md, data + 56, &n) &&
              n == 32);
    EVP_MD_CTX_free(md);
}

Test(artifact, round_trip_of_every_dtype)
{
    char sum[65], err[256];
    const char *path = s_path("model.art");
    s_write_sample(path, sum);
    cr_assert_eq(strlen(sum), 64);

    artifact_t *a = artifact_open(path, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    cr_assert_str_eq(artifact_model_type(a), "collaborative");
    cr_assert_str_eq(artifact_checksum(a), sum);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(artifact_size(a), (uint64_t)st.st_size);

    int64_t rows = -1, cols = -1;
    const float *f = artifact_section(a, "item_factors", ARTIFACT_F32, &rows, &cols);
    cr_assert_not_null(f);
    cr_assert_eq(rows, 3);
    cr_assert_eq(cols, 4);
    //  NOLINTNEXTLINE(bugprone-suspicious-memory-comparison): bit-exact is the point (-0.0f)
    cr_assert_eq(memcmp(f, s_f32, sizeof s_f32), 0);
    const int32_t *i32 = artifact_section(a, "counts", ARTIFACT_I32, &rows, &cols);
    cr_assert(i32 && rows == 5 && cols == 1 && memcmp(i32, s_i32, sizeof s_i32) == 0);
    const int64_t *i64 = artifact_section(a, "big", ARTIFACT_I64, &rows, &cols);
    cr_assert(i64 && rows == 2 && cols == 2 && memcmp(i64, s_i64, sizeof s_i64) == 0);
    const char *meta = artifact_section(a, "meta", ARTIFACT_BYTES, &rows, NULL);
    cr_assert(meta && rows == (int64_t)strlen(s_meta) && memcmp(meta, s_meta, strlen(s_meta)) == 0);
    cr_assert_not_null(artifact_section(a, "empty", ARTIFACT_F32, &rows, &cols));
    cr_assert(rows == 0 && cols == 8);

    cr_assert_null(artifact_section(a, "item_factors", ARTIFACT_I32, NULL, NULL), "wrong dtype");
    cr_assert_null(artifact_section(a, "nope", ARTIFACT_F32, NULL, NULL));

    artifact_strings_t ids;
    cr_assert_eq(artifact_strings(a, "video_ids", &ids, err, sizeof err), 0, "%s", err);
    cr_assert_eq(ids.count, 4);
    for (int64_t i = 0; i < 4; i++) {
        cr_assert_str_eq(artifact_strings_at(&ids, i), s_ids[i]);
        cr_assert_eq(ids.offsets[i + 1] - ids.offsets[i] - 1, (int64_t)strlen(s_ids[i]));
    }
    cr_assert_eq(artifact_strings(a, "meta", &ids, err, sizeof err), -1, "no meta.idx");
    artifact_destroy(&a);
    cr_assert_null(a);
    artifact_destroy(&a);
}

Test(artifact, every_section_is_64_byte_aligned)
{
    //  Odd sizes, so that every section needs padding after it.
    static uint8_t bytes[64 * 40];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(i * 7 + 1);
    artifact_writer_t *w = artifact_writer_new("content");
    char name[24], err[256];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "s%d", i);
        artifact_dtype_t dtype = i % 4 == 0   ? ARTIFACT_BYTES
                                 : i % 4 == 1 ? ARTIFACT_F32
                                 : i % 4 == 2 ? ARTIFACT_I32
                                              : ARTIFACT_I64;
        cr_assert_eq(artifact_writer_add(w, name, dtype, i + 1, 1, bytes), 0);
    }
    const char *path = s_path("aligned.art");
    cr_assert_eq(artifact_writer_write(w, path, NULL, err, sizeof err), 0, "%s", err);
    artifact_writer_destroy(&w);

    artifact_t *a = artifact_open(path, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    uint8_t *file;
    size_t len;
    s_read_file(path, &file, &len);
    const uint8_t *base = NULL;
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "s%d", i);
        artifact_dtype_t dtype = i % 4 == 0   ? ARTIFACT_BYTES
                                 : i % 4 == 1 ? ARTIFACT_F32
                                 : i % 4 == 2 ? ARTIFACT_I32
                                              : ARTIFACT_I64;
        const uint8_t *p = artifact_section(a, name, dtype, NULL, NULL);
        cr_assert_not_null(p, "%s", name);
        cr_assert_eq((uintptr_t)p % 64, 0, "%s at %p", name, (const void *)p);
        if (i == 0) //  the mapping starts on a page: s0 sits right after the table
            base = p - (128 + 40 * 64);
        cr_assert_eq((size_t)(p - base) % 64, 0, "file offset of %s", name);
        size_t n = (size_t)(i + 1) * (dtype == ARTIFACT_BYTES ? 1 : dtype == ARTIFACT_I64 ? 8 : 4);
        cr_assert_eq(memcmp(p, bytes, n), 0, "%s content", name);
        //  The gap up to the next aligned offset is zero-filled.
        for (size_t k = (size_t)(p - base) + n; k % 64 && k < len; k++)
            cr_assert_eq(file[k], 0, "padding after %s", name);
    }
    free(file);
    artifact_destroy(&a);
}

Test(artifact, a_flipped_byte_anywhere_is_refused)
{
    char sum[65];
    const char *path = s_path("model.art");
    s_write_sample(path, sum);
    uint8_t *data;
    size_t len;
    s_read_file(path, &data, &len);
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    //  Every byte: header, checksum field, table, padding and data.
    for (size_t i = 0; i < len; i++) {
        uint8_t flipped = data[i] ^ (uint8_t)(1u << (i % 8));
        cr_assert_eq(pwrite(fd, &flipped, 1, (off_t)i), 1);
        char err[512] = "";
        artifact_t *a = artifact_open(path, err, sizeof err);
        cr_assert_null(a, "byte %zu of %zu flipped, still accepted", i, len);
        cr_assert_neq(err[0], '\0');
        cr_assert_eq(pwrite(fd, &data[i], 1, (off_t)i), 1);
    }
    close(fd);
    char err[256];
    artifact_t *a = artifact_open(path, err, sizeof err);
    cr_assert_not_null(a, "restored file: %s", err);
    artifact_destroy(&a);

    //  The reason for damage in the data is the checksum.
    data[len - 3] ^= 0x40;
    s_write_file(path, data, len);
    s_expect_refused(path, "checksum mismatch");
    free(data);
}

Test(artifact, truncated_or_extended_files_are_refused)
{
    char sum[65];
    const char *path = s_path("model.art");
    s_write_sample(path, sum);
    uint8_t *data;
    size_t len;
    s_read_file(path, &data, &len);
    const char *cut = s_path("cut.art");
    s_write_file(cut, data, 0);
    s_expect_refused(cut, "empty file");
    s_write_file(cut, data, 5);
    s_expect_refused(cut, "bad magic");
    size_t lengths[] = {100, 128, 200, len / 2, len - 1};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        s_write_file(cut, data, lengths[i]);
        s_expect_refused(cut, "truncated");
    }
    uint8_t *longer = calloc(1, len + 64);
    memcpy(longer, data, len);
    s_write_file(cut, longer, len + 64);
    s_expect_refused(cut, "trailing bytes");
    free(longer);
    free(data);
}

Test(artifact, bad_magic_or_version_is_refused)
{
    char sum[65];
    const char *path = s_path("model.art");
    s_write_sample(path, sum);
    uint8_t *data;
    size_t len;
    s_read_file(path, &data, &len);
    const char *bad = s_path("bad.art");

    data[3] = 'X';
    s_reseal(data, len); //  a valid checksum does not make it ours
    s_write_file(bad, data, len);
    s_expect_refused(bad, "bad magic");
    data[3] = 'S';

    uint32_t version = 2;
    memcpy(data + 8, &version, 4);
    s_reseal(data, len);
    s_write_file(bad, data, len);
    s_expect_refused(bad, "unsupported artifact format version 2");

    s_expect_refused(s_path("missing.art"), "No such file");
    s_expect_refused(s_dir, "not a regular file");
    free(data);
}

//  Overwrites width bytes of field in section table entry `entry` (the
//  table sits at 128; entry i at 128 + 64 i: name[24], dtype u32 at +24,
//  rows at +32, cols at +40, offset at +48, length at +56), reseals the
//  checksum and expects the refusal want.
static void s_expect_table_refused(size_t entry, size_t field, const void *value, size_t width,
                                   const char *want)
{
    char sum[65];
    const char *path = s_path("model.art");
    s_write_sample(path, sum);
    uint8_t *data;
    size_t len;
    s_read_file(path, &data, &len);
    memcpy(data + 128 + 64 * entry + field, value, width);
    s_reseal(data, len);
    s_write_file(path, data, len);
    s_expect_refused(path, want);
    free(data);
}

static void s_expect_u64_refused(size_t entry, size_t field, uint64_t value, const char *want)
{
    s_expect_table_refused(entry, field, &value, sizeof value, want);
}

Test(artifact, a_bad_section_table_is_refused_despite_a_valid_checksum)
{
    //  Sections of the sample: 0 item_factors (F32 3x4 at the first
    //  aligned offset), 1 counts (I32 5x1, 64 bytes later), 2 big, 3 meta,
    //  4 empty, 5 video_ids, 6 video_ids.idx; the table ends at 576.
    uint64_t first_offset = 128 + 7 * 64;
    s_expect_u64_refused(0, 48, first_offset + 4, "misaligned or out of bounds");
    s_expect_u64_refused(0, 48, 64, "misaligned or out of bounds"); //  inside the table
    s_expect_u64_refused(0, 48, (uint64_t)1 << 40, "misaligned or out of bounds");
    s_expect_u64_refused(0, 56, 1u << 20, "does not make");
    s_expect_u64_refused(0, 32, 1u << 20, "does not make");
    s_expect_u64_refused(0, 32, (uint64_t)-3, "does not make");
    s_expect_u64_refused(0, 40, (uint64_t)1 << 62, "does not make"); //  rows x cols overflows
    uint32_t dtype = 9;
    s_expect_table_refused(0, 24, &dtype, sizeof dtype, "dtype 9");
    s_expect_u64_refused(1, 48, first_offset, "overlap");
    char name[24];
    memset(name, 'a', sizeof name);
    s_expect_table_refused(1, 0, name, sizeof name, "bad name"); //  no NUL
    s_expect_table_refused(1, 0, "", 1, "bad name");
    s_expect_table_refused(1, 0, "item_factors", 13, "appears twice");
    uint32_t count = 5000;
    char sum[65];
    s_write_sample(s_path("model.art"), sum);
    uint8_t *data;
    size_t len;
    s_read_file(s_path("model.art"), &data, &len);
    memcpy(data + 12, &count, 4);
    s_reseal(data, len);
    s_write_file(s_path("model.art"), data, len);
    s_expect_refused(s_path("model.art"), "bad section count 5000");
    free(data);
}

Test(artifact, the_writer_rejects_bad_input)
{
    static const float one = 1;
    cr_assert_null(artifact_writer_new(""));
    cr_assert_null(artifact_writer_new(NULL));
    cr_assert_null(artifact_writer_new("has space"));
    cr_assert_null(artifact_writer_new("a-model-type-of-thirty-two-chars"));
    artifact_writer_t *w = artifact_writer_new("a-model-type-of-thirty-one-char");
    cr_assert_not_null(w);
    cr_assert_eq(artifact_writer_add(w, "", ARTIFACT_F32, 1, 1, &one), -1);
    cr_assert_eq(artifact_writer_add(w, "a-name-of-24-characters!", ARTIFACT_F32, 1, 1, &one), -1);
    cr_assert_eq(artifact_writer_add(w, "a-name-of-23-characters", ARTIFACT_F32, 1, 1, &one), 0);
    cr_assert_eq(artifact_writer_add(w, "a-name-of-23-characters", ARTIFACT_F32, 1, 1, &one), -1,
                 "duplicate");
    cr_assert_eq(artifact_writer_add(w, "x", (artifact_dtype_t)0, 1, 1, &one), -1);
    cr_assert_eq(artifact_writer_add(w, "x", (artifact_dtype_t)5, 1, 1, &one), -1);
    cr_assert_eq(artifact_writer_add(w, "x", ARTIFACT_F32, -1, 1, &one), -1);
    cr_assert_eq(artifact_writer_add(w, "x", ARTIFACT_F32, INT64_MAX / 2, 3, &one), -1);
    cr_assert_eq(artifact_writer_add(w, "x", ARTIFACT_F32, 1, 1, NULL), -1, "data needed");
    const char *strs[] = {"a", NULL};
    cr_assert_eq(artifact_writer_add_strings(w, "ids", strs, 2), -1, "NULL string");
    cr_assert_eq(artifact_writer_add_strings(w, "twenty-chars-strings", strs, 1), -1);
    cr_assert_eq(artifact_writer_add_strings(w, "nineteen-chars-strs", strs, 1), 0);
    cr_assert_eq(artifact_writer_add(w, "ids.idx", ARTIFACT_I64, 1, 1, &one), 0);
    cr_assert_eq(artifact_writer_add_strings(w, "ids", strs, 1), -1, "ids.idx is taken");
    cr_assert_eq(artifact_writer_add(w, "ids", ARTIFACT_BYTES, 0, 1, NULL), 0,
                 "and the failed pair added neither");
    artifact_writer_destroy(&w);
}

Test(artifact, write_replaces_the_file_and_reports_errors)
{
    char sum1[65], sum2[65], err[256];
    const char *path = s_path("model.art");
    s_write_sample(path, sum1);
    artifact_writer_t *w = artifact_writer_new("popularity");
    const int32_t ids[2] = {5, 6};
    cr_assert_eq(artifact_writer_add(w, "top", ARTIFACT_I32, 2, 1, ids), 0);
    cr_assert_eq(artifact_writer_write(w, path, sum2, err, sizeof err), 0, "%s", err);
    cr_assert_str_neq(sum1, sum2);
    artifact_t *a = artifact_open(path, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    cr_assert_str_eq(artifact_model_type(a), "popularity");
    cr_assert_str_eq(artifact_checksum(a), sum2);
    artifact_destroy(&a);

    cr_assert_eq(artifact_writer_write(w, s_path("no/such/dir/model.art"), NULL, err, sizeof err),
                 -1);
    cr_assert(strstr(err, "no/such/dir/model.art.tmp."), "%s", err);
    cr_assert(strstr(err, "No such file"), "%s", err);
    artifact_writer_destroy(&w);
    //  Nothing but the one artifact is left in the directory.
    char cmd[160];
    snprintf(cmd, sizeof cmd, "test \"$(ls -A %s)\" = model.art", s_dir);
    cr_assert_eq(system(cmd), 0, "stray files in %s", s_dir);
}

//  A writer that dies mid-write (here: SIGSEGV on a section whose memory is
//  unreadable, after the first sections went out) leaves its .tmp.<pid>
//  file, never a file under the real name.
Test(artifact, a_crash_mid_write_leaves_no_file_under_the_real_name)
{
    const char *path = s_path("crash.art");
    size_t big = 4u << 20;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct rlimit none = {0, 0};
        setrlimit(RLIMIT_CORE, &none);
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        float *first = calloc(big / sizeof(float), sizeof(float));
        void *poison = mmap(NULL, big, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        artifact_writer_t *w = artifact_writer_new("collaborative");
        if (!first || poison == MAP_FAILED || !w ||
            artifact_writer_add(w, "first", ARTIFACT_F32, (int64_t)(big / 4), 1, first) ||
            artifact_writer_add(w, "poison", ARTIFACT_F32, (int64_t)(big / 4), 1, poison))
            _exit(3);
        char err[256];
        artifact_writer_write(w, path, NULL, err, sizeof err);
        _exit(0); //  not reached: the write faults on the poisoned section
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(!(WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3)),
              "the child did not crash (status %d)", status);
    struct stat st;
    cr_assert_eq(stat(path, &st), -1, "a file exists under the real name");
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)pid);
    cr_assert_eq(stat(tmp, &st), 0, "the temporary file %s is missing", tmp);
    cr_assert_gt(st.st_size, (off_t)big, "the first section was written before the crash");
    s_expect_refused(tmp, "truncated");
}

//  A strings pair that passes the open (valid checksum and table) but whose
//  offsets are wrong is refused by artifact_strings, not read past.
Test(artifact, malformed_strings_are_refused)
{
    char sum[65], err[256];
    const char *path = s_path("model.art");
    s_write_sample(path, sum);
    artifact_t *a = artifact_open(path, err, sizeof err);
    cr_assert_not_null(a, "%s", err);
    const uint8_t *first = artifact_section(a, "item_factors", ARTIFACT_F32, NULL, NULL);
    const uint8_t *idx = artifact_section(a, "video_ids.idx", ARTIFACT_I64, NULL, NULL);
    size_t at = 128 + 7 * 64 + (size_t)(idx - first); //  item_factors is first after the table
    artifact_destroy(&a);

    uint8_t *data;
    size_t len;
    s_read_file(path, &data, &len);
    struct {
        size_t slot;
        int64_t value;
        const char *want;
    } cases[] = {
        {1, 2, "string 0 is malformed"},  //  "v1" loses its NUL
        {2, 3, "string 1 is malformed"},  //  an empty string needs its NUL
        {2, 10, "string 1 is malformed"}, //  NUL inside
        {4, 29, "bad shape"},             //  does not end at the blob's end
        {0, 1, "bad shape"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t saved;
        memcpy(&saved, data + at + 8 * cases[i].slot, 8);
        memcpy(data + at + 8 * cases[i].slot, &cases[i].value, 8);
        s_reseal(data, len);
        s_write_file(path, data, len);
        memcpy(data + at + 8 * cases[i].slot, &saved, 8);
        a = artifact_open(path, err, sizeof err);
        cr_assert_not_null(a, "%s", err);
        artifact_strings_t ids;
        cr_assert_eq(artifact_strings(a, "video_ids", &ids, err, sizeof err), -1, "case %zu", i);
        cr_assert(strstr(err, cases[i].want), "case %zu: %s", i, err);
        artifact_destroy(&a);
    }
    free(data);
}
