/*  api_keys.c: hashed API keys with roles (see api_keys.h for the format). */
#include "api_keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "hex.h"
#include "auth.h"

#define S_HASH_LEN 32
#define S_HASH_PREFIX "sha256:"
#define S_SUBJECT_PREFIX "apikey:"

typedef struct {
    unsigned char hash[S_HASH_LEN];
    unsigned roles;
    char subject[API_KEYS_SUBJECT_MAX];
} s_entry_t;

struct api_keys_t {
    s_entry_t entries[API_KEYS_MAX];
    size_t count;
};

static bool s_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int s_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool s_name_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

//  Parses "role+role..." of n bytes into *roles. Returns NULL, or the
//  reason (every role must be known, none empty).
static const char *s_parse_roles(const char *p, size_t n, unsigned *roles)
{
    *roles = 0;
    if (n == 0)
        return "no roles";
    const char *end = p + n;
    while (p <= end) {
        const char *plus = memchr(p, '+', (size_t)(end - p));
        size_t len = plus ? (size_t)(plus - p) : (size_t)(end - p);
        unsigned role = auth_role_from_name(p, len);
        if (role == 0)
            return len == 0 ? "empty role name" : "unknown role (user, service, admin, trainer)";
        *roles |= role;
        if (!plus)
            break;
        p = plus + 1;
    }
    return NULL;
}

//  Parses one trimmed, non-empty entry of n bytes. Returns NULL, or the
//  reason.
static const char *s_parse_entry(const char *p, size_t n, s_entry_t *entry)
{
    const char *end = p + n;
    const char *name = NULL;
    size_t name_len = 0;
    const char *at = memchr(p, '@', n);
    if (at) {
        name = p;
        name_len = (size_t)(at - p);
        if (name_len == 0 || name_len > API_KEYS_NAME_MAX)
            return "name must be 1 to 32 characters";
        for (size_t i = 0; i < name_len; i++)
            if (!s_name_char(name[i]))
                return "name may hold only letters, digits, '-', '_' and '.'";
        p = at + 1;
    }
    size_t prefix = strlen(S_HASH_PREFIX);
    if ((size_t)(end - p) < prefix || memcmp(p, S_HASH_PREFIX, prefix) != 0)
        return "expected sha256:<64 hex digits>=<roles>";
    p += prefix;
    if (end - p < 2 * S_HASH_LEN + 1)
        return "expected 64 hex digits after sha256:";
    for (size_t i = 0; i < S_HASH_LEN; i++) {
        int hi = s_hex_value(p[2 * i]), lo = s_hex_value(p[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return "expected 64 hex digits after sha256:";
        entry->hash[i] = (unsigned char)(hi << 4 | lo);
    }
    p += (ptrdiff_t)2 * S_HASH_LEN;
    if (*p != '=')
        return "expected '=' and roles after the 64 hex digits";
    p++;
    const char *why = s_parse_roles(p, (size_t)(end - p), &entry->roles);
    if (why)
        return why;
    if (name)
        snprintf(entry->subject, sizeof entry->subject, "%s%.*s", S_SUBJECT_PREFIX, (int)name_len,
                 name);
    else {
        char hex[2 * S_HASH_LEN + 1];
        hex_encode(entry->hash, S_HASH_LEN, hex);
        snprintf(entry->subject, sizeof entry->subject, "%s%.12s", S_SUBJECT_PREFIX, hex);
    }
    return NULL;
}

api_keys_t *api_keys_new(const char *spec, char *err, size_t errlen)
{
    api_keys_t *self = calloc(1, sizeof *self);
    if (!self) {
        errbuf_set(err, errlen, "out of memory");
        return NULL;
    }
    const char *p = spec ? spec : "";
    int position = 0;
    while (*p) {
        size_t n = strcspn(p, ";");
        const char *next = p[n] ? p + n + 1 : p + n;
        position++;
        while (n > 0 && s_space(*p))
            p++, n--;
        while (n > 0 && s_space(p[n - 1]))
            n--;
        if (n > 0) {
            if (self->count == API_KEYS_MAX) {
                errbuf_set(err, errlen, "API keys: more than %d entries", API_KEYS_MAX);
                goto err;
            }
            s_entry_t *entry = &self->entries[self->count];
            const char *why = s_parse_entry(p, n, entry);
            if (why) {
                errbuf_set(err, errlen, "API key entry %d: %s", position, why);
                goto err;
            }
            for (size_t i = 0; i < self->count; i++)
                if (memcmp(self->entries[i].hash, entry->hash, S_HASH_LEN) == 0) {
                    errbuf_set(err, errlen, "API key entry %d: same hash as entry before it",
                               position);
                    goto err;
                }
            self->count++;
        }
        p = next;
    }
    return self;
err:
    api_keys_destroy(&self);
    return NULL;
}

void api_keys_destroy(api_keys_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

size_t api_keys_count(const api_keys_t *self)
{
    return self ? self->count : 0;
}

static int s_sha256(const char *key, size_t len, unsigned char *digest)
{
    unsigned int n = 0;
    if (EVP_Digest(key, len, digest, &n, EVP_sha256(), NULL) != 1 || n != S_HASH_LEN)
        return -1;
    return 0;
}

int api_keys_lookup(const api_keys_t *self, const char *key, unsigned *roles, char *subject,
                    size_t subject_len)
{
    *roles = 0;
    if (subject && subject_len)
        subject[0] = '\0';
    if (!self || !key)
        return -1;
    size_t len = strnlen(key, API_KEYS_KEY_MAX + 1);
    unsigned char digest[S_HASH_LEN];
    if (len == 0 || len > API_KEYS_KEY_MAX || s_sha256(key, len, digest) != 0)
        return -1;

    //  Every entry is compared and the match is selected with masks, not
    //  branches, so the work done is the same whichever entry matched.
    size_t found = 0, index = 0;
    for (size_t i = 0; i < self->count; i++) {
        size_t equal = (size_t)(CRYPTO_memcmp(digest, self->entries[i].hash, S_HASH_LEN) == 0);
        size_t mask = (size_t)0 - equal;
        index = (index & ~mask) | (i & mask);
        found |= equal;
    }
    OPENSSL_cleanse(digest, sizeof digest);
    if (!found)
        return -1;
    *roles = self->entries[index].roles;
    if (subject && subject_len)
        snprintf(subject, subject_len, "%s", self->entries[index].subject);
    return 0;
}

int api_keys_hash_line(const char *key, const char *roles, const char *name, char *buf,
                       size_t buflen, char *err, size_t errlen)
{
    if (buf && buflen)
        buf[0] = '\0';
    if (!key || !roles || !buf) {
        errbuf_set(err, errlen, "key, roles and buffer are required");
        return -1;
    }
    size_t len = strnlen(key, API_KEYS_KEY_MAX + 1);
    if (len < API_KEYS_KEY_MIN || len > API_KEYS_KEY_MAX) {
        errbuf_set(err, errlen, "an API key must be %d to %d characters (use a generated one)",
                   API_KEYS_KEY_MIN, API_KEYS_KEY_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if (key[i] <= ' ' || key[i] > '~') {
            errbuf_set(err, errlen, "an API key may hold only visible ASCII characters");
            return -1;
        }
    //  Reuse the entry parser on the line itself, so that whatever this
    //  writes is exactly what api_keys_new accepts.
    unsigned mask = 0;
    const char *why = s_parse_roles(roles, strlen(roles), &mask);
    if (why) {
        errbuf_set(err, errlen, "roles: %s", why);
        return -1;
    }
    char canonical[64];
    unsigned char digest[S_HASH_LEN];
    char hex[2 * S_HASH_LEN + 1];
    if (auth_roles_format(mask, canonical, sizeof canonical) != 0 ||
        s_sha256(key, len, digest) != 0) {
        errbuf_set(err, errlen, "cannot hash the key");
        return -1;
    }
    hex_encode(digest, S_HASH_LEN, hex);
    bool named = name && *name;
    int n = snprintf(buf, buflen, "%s%s%s%s=%s", named ? name : "", named ? "@" : "", S_HASH_PREFIX,
                     hex, canonical);
    if (n < 0 || (size_t)n >= buflen) {
        buf[0] = '\0';
        errbuf_set(err, errlen, "buffer too small");
        return -1;
    }
    s_entry_t check;
    why = s_parse_entry(buf, (size_t)n, &check);
    if (why) {
        buf[0] = '\0';
        errbuf_set(err, errlen, "%s", why);
        return -1;
    }
    return 0;
}

int api_keys_generate(char *buf, size_t buflen)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (!buf || buflen < API_KEYS_GENERATED_LEN + 1)
        return -1;
    unsigned char bytes[33] = {0}; //  32 random bytes, padded to a multiple of 3
    if (RAND_bytes(bytes, 32) != 1)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < sizeof bytes; i += 3) {
        uint32_t v = (uint32_t)bytes[i] << 16 | (uint32_t)bytes[i + 1] << 8 | bytes[i + 2];
        for (int k = 3; k >= 0 && o < API_KEYS_GENERATED_LEN; k--, o++)
            buf[o] = alphabet[(v >> (6 * k)) & 0x3f];
    }
    buf[o] = '\0';
    OPENSSL_cleanse(bytes, sizeof bytes);
    return 0;
}
