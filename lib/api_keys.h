/*  api_keys.h: service-to-service API keys (the X-API-Key header), kept in
    the configuration only as SHA-256 hashes, each with its roles.

    Configuration string (one line, e.g. an environment variable):

        spec  = [ entry *( ";" entry ) ]
        entry = [ name "@" ] "sha256:" 64HEXDIG "=" role *( "+" role )
        name  = 1*32 ( ALPHA / DIGIT / "-" / "_" / "." )
        role  = "user" / "service" / "admin" / "trainer"     (auth.h)

    for example

        ranker-sync@sha256:9f86d0...0f00a08=service;sha256:2c26b4...e7ae=trainer+admin

    The hash is the SHA-256 of the key's bytes exactly as sent in the
    header, in hex (either case). Whitespace around an entry and empty
    entries (a trailing ';') are ignored. An unknown role name, a repeated
    hash, a name that is too long, or more than API_KEYS_MAX entries is an
    error: unlike roles in a token, this text is ours, and a typo in it
    should stop the service, not quietly withhold a role. The name only
    labels the key in the principal's subject ("apikey:<name>"; without a
    name "apikey:<first 12 hex digits of the hash>").

    Keys must be long random strings: the hash is unsalted, which is safe
    only because the key itself is unguessable. api_keys_generate() makes
    one; api_keys_hash_line() turns a key into its entry (what
    `recsd hash-api-key` prints) and refuses keys shorter than
    API_KEYS_KEY_MIN.

    Lookup hashes the presented key and compares the digest with every
    entry using CRYPTO_memcmp, without stopping at a match, so the time it
    takes does not depend on which entry (if any) matched.

    Thread safety: the set is immutable after api_keys_new(); any number of
    threads may call api_keys_lookup() at once.
*/
#ifndef RECSD_API_KEYS_H
#define RECSD_API_KEYS_H

#include <stddef.h>

#define API_KEYS_MAX 64
#define API_KEYS_NAME_MAX 32
#define API_KEYS_KEY_MIN 32  //  bytes, for api_keys_hash_line
#define API_KEYS_KEY_MAX 256 //  bytes; a longer header value is refused unhashed
//  Longest subject: "apikey:" + name, NUL included.
#define API_KEYS_SUBJECT_MAX (7 + API_KEYS_NAME_MAX + 1)
//  Longest entry api_keys_hash_line() writes, NUL included.
#define API_KEYS_LINE_MAX (API_KEYS_NAME_MAX + 1 + 7 + 64 + 1 + 32 + 1)
//  Length of a key from api_keys_generate(), NUL excluded.
#define API_KEYS_GENERATED_LEN 43

typedef struct api_keys_t api_keys_t;

//  Parses a configuration string (NULL or "" gives an empty set). Returns
//  the set (caller owns it), or NULL with the reason in err, naming the
//  entry by its 1-based position but never repeating its text.
api_keys_t *api_keys_new(const char *spec, char *err, size_t errlen);

//  Idempotent, sets *self_p to NULL.
void api_keys_destroy(api_keys_t **self_p);

//  Number of configured keys.
size_t api_keys_count(const api_keys_t *self);

//  Looks up a presented key (the raw header value). Returns 0 with *roles
//  (AUTH_ROLE_* bits) and subject (NUL-terminated, truncated to
//  subject_len; API_KEYS_SUBJECT_MAX always fits) set, or -1 if no entry
//  matches, the key is empty or longer than API_KEYS_KEY_MAX (then *roles
//  is 0 and subject "").
int api_keys_lookup(const api_keys_t *self, const char *key, unsigned *roles, char *subject,
                    size_t subject_len);

//  Writes the configuration entry for key with roles ("service+admin",
//  the same syntax as in an entry) and an optional name (NULL or "" for
//  none) into buf (API_KEYS_LINE_MAX always fits): "[name@]sha256:<hex>=
//  <roles>", roles in canonical order. Returns 0, or -1 with the reason in
//  err if the key is shorter than API_KEYS_KEY_MIN, longer than
//  API_KEYS_KEY_MAX or holds characters other than visible ASCII, or a role
//  or the name is invalid, or buf is too small.
int api_keys_hash_line(const char *key, const char *roles, const char *name, char *buf,
                       size_t buflen, char *err, size_t errlen);

//  Writes a new random key: 32 bytes from the OpenSSL CSPRNG in base64url,
//  API_KEYS_GENERATED_LEN characters. Returns 0, or -1 if buflen is too
//  small or the generator fails.
int api_keys_generate(char *buf, size_t buflen);

#endif
