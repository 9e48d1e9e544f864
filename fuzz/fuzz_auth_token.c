/*  fuzz_auth_token.c: libFuzzer target for request authentication
    (auth_authenticate_at, and through it auth_jwt_verify and
    api_keys_lookup).

    The first byte picks what the rest of the input is:
      0  the bearer token ("Bearer " + input as the Authorization header);
      1  the X-API-Key header;
      2  the claims JSON of a token the harness signs with the configured
         HS256 secret, so the claim checks are reached past the signature;
      3  the header JSON of such a token (fixed valid claims).
    Whatever the input, the result must be one of the three codes; a
    refusal must leave the principal empty and give a reason that is safe
    inside a quoted WWW-Authenticate parameter; an acceptance must give a
    bounded subject without control characters, known role bits and an
    unexpired expiry. Anything else aborts, which libFuzzer reports as a
    crash. ASan/LSan catch overreads and leaks.

    The verifier is built once (HS256 secret, a generated RSA key in a PEM
    file, two API keys) and kept in a static: libFuzzer calls the target
    millions of times in one process, and the configuration is immutable.
*/
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_SECRET "fuzz-secret-0123456789abcdef-0123456789abcdef"
#define S_NOW 1700000000L
#define S_VALID_CLAIMS "{\"sub\":\"alice\",\"aud\":\"recsd\",\"exp\":1700000600}"

static auth_t *s_auth;

static void s_fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_auth_token: %s: %s\n", what, detail);
    abort();
}

static auth_t *s_setup(void)
{
    char path[] = "/tmp/fuzz-auth-XXXXXX";
    int fd = mkstemp(path);
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f || !rsa || PEM_write_PUBKEY(f, rsa) != 1 || fclose(f) != 0)
        s_fail("setup", "cannot write the RSA public key");
    EVP_PKEY_free(rsa);

    char err[256] = "";
    auth_jwt_t *jwt = auth_jwt_new(
        &(auth_jwt_config_t){
            .hs256_secret = S_SECRET, .public_key_file = path, .audience = "recsd", .leeway_s = -1},
        err, sizeof err);
    unlink(path);
    if (!jwt)
        s_fail("auth_jwt_new", err);
    api_keys_t *keys = api_keys_new(
        "sync@sha256:d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592=service;"
        "sha256:248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1=trainer+admin",
        err, sizeof err);
    if (!keys)
        s_fail("api_keys_new", err);
    auth_t *auth = auth_new(&jwt, &keys, err, sizeof err);
    if (!auth)
        s_fail("auth_new", err);
    return auth;
}

//  base64url of data, no padding, into a malloc'd string.
static char *s_b64url(const uint8_t *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        s_fail("malloc", "base64");
    int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    out[n] = '\0';
    for (char *p = out; *p; p++)
        *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    return out;
}

//  "Bearer <b64url(header)>.<b64url(claims)>.<HS256 signature>".
static char *s_signed_bearer(const uint8_t *header, size_t header_len, const uint8_t *claims,
                             size_t claims_len)
{
    char *h = s_b64url(header, header_len);
    char *c = s_b64url(claims, claims_len);
    size_t input_len = strlen(h) + 1 + strlen(c);
    char *out = malloc(7 + input_len + 1 + 64 + 1);
    if (!out)
        s_fail("malloc", "token");
    int n = sprintf(out, "Bearer %s.%s", h, c);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), S_SECRET, (int)strlen(S_SECRET), (unsigned char *)out + 7, input_len,
              mac, &mac_len))
        s_fail("HMAC", "failed");
    char *sig = s_b64url(mac, mac_len);
    sprintf(out + n, ".%s", sig);
    free(sig);
    free(h);
    free(c);
    return out;
}

static void s_check(auth_result_t rc, const auth_principal_t *p, const char *err)
{
    if (rc == AUTH_OK) {
        size_t n = strnlen(p->subject, sizeof p->subject);
        if (n == 0 || n > AUTH_SUBJECT_MAX)
            s_fail("accepted", "subject empty or unterminated");
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p->subject[i] < 0x20 || p->subject[i] == 0x7f)
                s_fail("accepted", "control character in subject");
        if (p->roles & ~AUTH_ROLE_ALL)
            s_fail("accepted", "unknown role bits");
        if (p->via == AUTH_VIA_JWT &&
            (!(p->roles & AUTH_ROLE_USER) || p->expires_at <= S_NOW - AUTH_JWT_LEEWAY_DEFAULT))
            s_fail("accepted", "JWT principal without user role or already expired");
        if (p->via != AUTH_VIA_JWT && p->via != AUTH_VIA_API_KEY)
            s_fail("accepted", "no method");
        return;
    }
    if (rc != AUTH_MISSING && rc != AUTH_INVALID)
        s_fail("result", "unknown code");
    if (p->via != AUTH_VIA_NONE || p->roles != 0 || p->subject[0] != '\0')
        s_fail("refused", "principal not empty");
    if (err[0] == '\0')
        s_fail("refused", "no reason");
    if (strpbrk(err, "\"\\\r\n"))
        s_fail("refused", "reason unsafe in a header");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_auth)
        s_auth = s_setup();
    if (size == 0)
        return 0;
    int mode = data[0] & 3;
    data++;
    size--;

    char *text = malloc(size + 8);
    if (!text)
        return 0;
    memcpy(text, "Bearer ", 7);
    memcpy(text + 7, data, size);
    text[7 + size] = '\0';

    char *authorization = NULL;
    const char *api_key = NULL;
    switch (mode) {
    case 0:
        authorization = strdup(text);
        break;
    case 1:
        api_key = text + 7;
        break;
    case 2: {
        static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
        authorization = s_signed_bearer((const uint8_t *)header, sizeof header - 1, data, size);
        break;
    }
    default:
        authorization =
            s_signed_bearer(data, size, (const uint8_t *)S_VALID_CLAIMS, sizeof S_VALID_CLAIMS - 1);
        break;
    }

    auth_principal_t principal;
    char err[256] = "";
    auth_result_t rc =
        auth_authenticate_at(s_auth, authorization, api_key, S_NOW, &principal, err, sizeof err);
    s_check(rc, &principal, err);

    free(authorization);
    free(text);
    return 0;
}
