/*  test_api_keys.c: the API key configuration format, lookup and the hash
    helper (lib/api_keys.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_keys.h"
#include "auth.h"
#include "leak_check.h"

TestSuite(api_keys, .fini = leak_check_fini);

//  A published SHA-256 test vector, so the hashing is checked against
//  something this code did not compute.
#define FOX "The quick brown fox jumps over the lazy dog"
#define FOX_SHA256 "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592"
#define FIPS "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
#define FIPS_SHA256 "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
//  SHA-256 of the empty string: never presented (empty keys are refused).
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static api_keys_t *s_new(const char *spec)
{
    char err[256] = "";
    api_keys_t *keys = api_keys_new(spec, err, sizeof err);
    cr_assert_not_null(keys, "api_keys_new: %s", err);
    return keys;
}

static void s_expect_error(const char *spec, const char *fragment)
{
    char err[256] = "";
    api_keys_t *keys = api_keys_new(spec, err, sizeof err);
    cr_assert_null(keys, "accepted: %s", spec);
    cr_assert_not_null(strstr(err, fragment), "error '%s' lacks '%s'", err, fragment);
}

Test(api_keys, parses_and_looks_up)
{
    api_keys_t *keys = s_new("  ranker-sync@sha256:" FOX_SHA256 "=service+admin ; "
                             "sha256:" EMPTY_SHA256 "=trainer;");
    cr_assert_eq(api_keys_count(keys), 2u);

    unsigned roles = 99;
    char subject[API_KEYS_SUBJECT_MAX];
    cr_assert_eq(api_keys_lookup(keys, FOX, &roles, subject, sizeof subject), 0);
    cr_assert_eq(roles, AUTH_ROLE_SERVICE | AUTH_ROLE_ADMIN);
    cr_assert_str_eq(subject, "apikey:ranker-sync");

    //  Near misses of a valid key.
    const char *wrong[] = {FOX ".", "the quick brown fox jumps over the lazy dog", "The quick",
                           FOX_SHA256};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        roles = 99;
        strcpy(subject, "x");
        cr_assert_eq(api_keys_lookup(keys, wrong[i], &roles, subject, sizeof subject), -1);
        cr_assert_eq(roles, 0u);
        cr_assert_str_eq(subject, "");
    }
    //  The empty key hashes to the second entry, but is never looked up.
    cr_assert_eq(api_keys_lookup(keys, "", &roles, subject, sizeof subject), -1);
    cr_assert_eq(api_keys_lookup(keys, NULL, &roles, subject, sizeof subject), -1);
    char *long_key = malloc(API_KEYS_KEY_MAX + 2);
    memset(long_key, 'k', API_KEYS_KEY_MAX + 1);
    long_key[API_KEYS_KEY_MAX + 1] = '\0';
    cr_assert_eq(api_keys_lookup(keys, long_key, &roles, subject, sizeof subject), -1);
    free(long_key);
    //  subject may be NULL.
    cr_assert_eq(api_keys_lookup(keys, FOX, &roles, NULL, 0), 0);
    api_keys_destroy(&keys);
    cr_assert_null(keys);
    api_keys_destroy(&keys);
}

Test(api_keys, unnamed_key_subject_and_hex_case)
{
    char upper[] = FOX_SHA256;
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    char spec[256];
    snprintf(spec, sizeof spec, "sha256:%s=user", upper);
    api_keys_t *keys = s_new(spec);
    unsigned roles = 0;
    char subject[API_KEYS_SUBJECT_MAX];
    cr_assert_eq(api_keys_lookup(keys, FOX, &roles, subject, sizeof subject), 0);
    cr_assert_eq(roles, AUTH_ROLE_USER);
    cr_assert_str_eq(subject, "apikey:d7a8fbb307d7");
    api_keys_destroy(&keys);
}

Test(api_keys, empty_spec_is_an_empty_set)
{
    const char *specs[] = {NULL, "", " ; ;\n"};
    for (size_t i = 0; i < 3; i++) {
        api_keys_t *keys = s_new(specs[i]);
        cr_assert_eq(api_keys_count(keys), 0u);
        unsigned roles = 1;
        cr_assert_eq(api_keys_lookup(keys, FOX, &roles, NULL, 0), -1);
        api_keys_destroy(&keys);
    }
}

Test(api_keys, format_errors)
{
    s_expect_error("sha256:abc=admin", "64 hex digits");
    s_expect_error("md5:" FOX_SHA256 "=admin", "expected sha256:");
    s_expect_error(FOX_SHA256 "=admin", "expected sha256:");
    s_expect_error("sha256:" FOX_SHA256, "64 hex digits");
    s_expect_error("sha256:" FOX_SHA256 "admin", "expected '='");
    s_expect_error("sha256:" FOX_SHA256 "0=admin", "expected '='");
    s_expect_error("sha256:" FOX_SHA256 "=", "no roles");
    s_expect_error("sha256:" FOX_SHA256 "=superuser", "unknown role");
    s_expect_error("sha256:" FOX_SHA256 "=Admin", "unknown role");
    s_expect_error("sha256:" FOX_SHA256 "=admin+", "empty role name");
    s_expect_error("sha256:" FOX_SHA256 "=admin++trainer", "empty role name");
    s_expect_error("sha256:" FOX_SHA256 "=admin,trainer", "unknown role");
    s_expect_error("sha256:g7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592=admin",
                   "64 hex digits");
    s_expect_error("bad name@sha256:" FOX_SHA256 "=admin", "name may hold only");
    s_expect_error("@sha256:" FOX_SHA256 "=admin", "name must be 1 to 32");
    s_expect_error("a123456789012345678901234567890123@sha256:" FOX_SHA256 "=admin",
                   "name must be 1 to 32");
    //  The position is that of the entry, counting empty ones.
    s_expect_error("sha256:" FOX_SHA256 "=admin;;sha256:" FOX_SHA256 "=user", "entry 3: same hash");
    s_expect_error("sha256:" EMPTY_SHA256 "=admin;oops", "API key entry 2:");

    //  At most API_KEYS_MAX entries.
    size_t size = (API_KEYS_MAX + 1) * 90;
    char *spec = calloc(1, size);
    size_t used = 0, last = 0;
    for (int i = 0; i <= API_KEYS_MAX; i++) {
        last = used;
        used += (size_t)snprintf(spec + used, size - used, "sha256:%064x=user;", i);
    }
    s_expect_error(spec, "more than 64 entries");
    //  Exactly API_KEYS_MAX is fine.
    spec[last] = '\0';
    api_keys_t *keys = s_new(spec);
    cr_assert_eq(api_keys_count(keys), (size_t)API_KEYS_MAX);
    api_keys_destroy(&keys);
    free(spec);
}

Test(api_keys, hash_line_round_trip)
{
    char key[API_KEYS_GENERATED_LEN + 1];
    cr_assert_eq(api_keys_generate(key, sizeof key), 0);
    char line[API_KEYS_LINE_MAX];
    char err[256] = "";
    cr_assert_eq(
        api_keys_hash_line(key, "admin+service", "batch-job", line, sizeof line, err, sizeof err),
        0, "%s", err);
    cr_assert_eq(strncmp(line, "batch-job@sha256:", 17), 0, "%s", line);
    cr_assert_str_eq(line + 17 + 64, "=service+admin"); //  canonical order

    api_keys_t *keys = s_new(line);
    unsigned roles = 0;
    char subject[API_KEYS_SUBJECT_MAX];
    cr_assert_eq(api_keys_lookup(keys, key, &roles, subject, sizeof subject), 0);
    cr_assert_eq(roles, AUTH_ROLE_SERVICE | AUTH_ROLE_ADMIN);
    cr_assert_str_eq(subject, "apikey:batch-job");
    api_keys_destroy(&keys);

    //  A published vector (FIPS 180-2), without a name.
    cr_assert_eq(api_keys_hash_line(FIPS, "trainer", NULL, line, sizeof line, err, sizeof err), 0,
                 "%s", err);
    cr_assert_str_eq(line, "sha256:" FIPS_SHA256 "=trainer");

    //  The largest line fits API_KEYS_LINE_MAX.
    cr_assert_eq(api_keys_hash_line(key, "trainer+admin+service+user",
                                    "n2345678901234567890123456789012", line, sizeof line, err,
                                    sizeof err),
                 0, "%s", err);
    keys = s_new(line);
    cr_assert_eq(api_keys_lookup(keys, key, &roles, subject, sizeof subject), 0);
    cr_assert_eq(roles, AUTH_ROLE_ALL);
    api_keys_destroy(&keys);
}

Test(api_keys, hash_line_errors)
{
    char line[API_KEYS_LINE_MAX];
    char err[256];
    const char *good = "0123456789abcdef0123456789abcdef";
    cr_assert_eq(api_keys_hash_line("short", "admin", NULL, line, sizeof line, err, sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, "32 to 256"));
    cr_assert_eq(api_keys_hash_line("0123456789abcdef 0123456789abcdef", "admin", NULL, line,
                                    sizeof line, err, sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, "visible ASCII"));
    cr_assert_eq(api_keys_hash_line(good, "root", NULL, line, sizeof line, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "unknown role"));
    cr_assert_eq(api_keys_hash_line(good, "admin", "no spaces", line, sizeof line, err, sizeof err),
                 -1);
    cr_assert_not_null(strstr(err, "name may hold only"));
    cr_assert_eq(api_keys_hash_line(good, "admin", NULL, line, 20, err, sizeof err), -1);
    cr_assert_str_eq(line, "");
    cr_assert_eq(api_keys_hash_line(good, "admin", NULL, line, sizeof line, err, sizeof err), 0);
}

Test(api_keys, generated_keys)
{
    char a[API_KEYS_GENERATED_LEN + 1], b[API_KEYS_GENERATED_LEN + 1];
    cr_assert_eq(api_keys_generate(a, sizeof a), 0);
    cr_assert_eq(api_keys_generate(b, sizeof b), 0);
    cr_assert_eq(strlen(a), (size_t)API_KEYS_GENERATED_LEN);
    cr_assert_str_neq(a, b);
    cr_assert_eq(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                 strlen(a));
    cr_assert_eq(api_keys_generate(a, API_KEYS_GENERATED_LEN), -1);
}
