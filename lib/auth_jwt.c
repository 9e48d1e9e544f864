/*  auth_jwt.c: bearer JWT verification on top of libjwt (see auth_jwt.h).

    libjwt 1.10 decodes a token and checks its signature with the key it
    is given, choosing the method from the token's own alg header. That is
    exactly what an attacker controls, so a token is first decoded without
    a key (libjwt then checks nothing), its alg header is held against what
    this verifier allows, and only then is it decoded again with the one
    key (or the few keys) that alg may use. Claims are checked here.

    Public keys are kept as SubjectPublicKeyInfo PEM text because that is
    the form libjwt takes; JWKS keys are converted to it once, at start.
*/
#include "auth_jwt.h"

#include <jansson.h>
#include <jwt.h>
#include <math.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "auth.h"

#define S_KEYS_MAX 64
#define S_KID_MAX 128
#define S_KEY_FILE_MAX ((size_t)1024 * 1024)
#define S_CLAIM_NAME_MAX 128
#define S_RSA_MIN_BITS 2048
#define S_HS256_MIN_SECRET 32 //  RFC 7518 3.2: at least the hash size
#define S_P256_COORD 32
#define S_WHERE_MAX 512 //  "<path>: key <index>" in error messages

typedef struct {
    jwt_alg_t alg; //  JWT_ALG_RS256 or JWT_ALG_ES256
    char *kid;     //  NULL: the key has none and matches any kid
    char *pem;     //  SPKI PEM, NUL-terminated
    int pem_len;
} s_key_t;

struct auth_jwt_t {
    unsigned char *secret; //  HS256 secret, NULL = HS256 off
    size_t secret_len;
    s_key_t keys[S_KEYS_MAX];
    size_t key_count;
    char *issuer;   //  NULL = not checked
    char *audience; //  NULL = not checked
    char *roles_claim;
    int leeway_s;
};

static bool s_set(const char *s)
{
    return s && *s;
}

//  Reads a whole file of at most max bytes into a NUL-terminated buffer the
//  caller frees. Returns NULL with the reason in err.
static char *s_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        errbuf_set(err, errlen, "cannot open %s", path);
        return NULL;
    }
    char *buf = malloc(max + 1);
    if (!buf) {
        errbuf_set(err, errlen, "out of memory reading %s", path);
        goto err;
    }
    size_t n = fread(buf, 1, max + 1, f);
    if (ferror(f)) {
        errbuf_set(err, errlen, "cannot read %s", path);
        goto err;
    }
    if (n > max) {
        errbuf_set(err, errlen, "%s is larger than %zu bytes", path, max);
        goto err;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
err:
    free(buf);
    fclose(f);
    return NULL;
}

//  Decodes base64url (RFC 4648 5; trailing '=' tolerated) into a buffer the
//  caller frees. Returns NULL if the text is not base64url or is empty.
static unsigned char *s_b64url_decode(const char *in, size_t *outlen)
{
    size_t len = strlen(in);
    while (len > 0 && in[len - 1] == '=')
        len--;
    if (len == 0 || len % 4 == 1)
        return NULL;
    unsigned char *out = malloc(len / 4 * 3 + 3);
    if (!out)
        return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    *outlen = o;
    return out;
}

//  Checks the key is one this verifier supports, picks its algorithm and
//  stores it as PEM with kid (copied; may be NULL). Does not take pkey.
//  Returns 0, or -1 with the reason (prefixed by `where`) in err.
static int s_add_pkey(auth_jwt_t *self, EVP_PKEY *pkey, const char *kid, const char *where,
                      char *err, size_t errlen)
{
    jwt_alg_t alg;
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        if (EVP_PKEY_get_bits(pkey) < S_RSA_MIN_BITS) {
            errbuf_set(err, errlen, "%s: RSA key shorter than %d bits", where, S_RSA_MIN_BITS);
            return -1;
        }
        alg = JWT_ALG_RS256;
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64] = "";
        if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                            NULL) ||
            OBJ_sn2nid(group) != NID_X9_62_prime256v1) {
            errbuf_set(err, errlen, "%s: EC key is not on P-256", where);
            return -1;
        }
        alg = JWT_ALG_ES256;
    } else {
        errbuf_set(err, errlen, "%s: not an RSA or EC public key", where);
        return -1;
    }
    if (self->key_count == S_KEYS_MAX) {
        errbuf_set(err, errlen, "%s: more than %d keys", where, S_KEYS_MAX);
        return -1;
    }

    s_key_t *key = &self->keys[self->key_count];
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    if (!bio || PEM_write_bio_PUBKEY(bio, pkey) != 1) {
        errbuf_set(err, errlen, "%s: cannot encode the key as PEM", where);
        goto err;
    }
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || (size_t)n > S_KEY_FILE_MAX)
        goto err;
    key->pem = malloc((size_t)n + 1);
    key->kid = kid ? strdup(kid) : NULL;
    if (!key->pem || (kid && !key->kid)) {
        errbuf_set(err, errlen, "out of memory");
        goto err;
    }
    memcpy(key->pem, data, (size_t)n);
    key->pem[n] = '\0';
    key->pem_len = (int)n;
    key->alg = alg;
    self->key_count++;
    BIO_free(bio);
    return 0;
err:
    free(key->pem);
    free(key->kid);
    memset(key, 0, sizeof *key);
    BIO_free(bio);
    return -1;
}

//  Loads the one public key (or certificate's key) of a PEM file.
static int s_load_pem(auth_jwt_t *self, const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = s_read_file(path, S_KEY_FILE_MAX, &len, err, errlen);
    if (!text)
        return -1;
    int rc = -1;
    EVP_PKEY *pkey = NULL;
    BIO *bio = BIO_new_mem_buf(text, (int)len);
    if (bio)
        pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (bio && !pkey) {
        //  Not a bare public key: perhaps the issuer's certificate.
        BIO_free(bio);
        bio = BIO_new_mem_buf(text, (int)len);
        X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        if (cert) {
            pkey = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }
    if (!pkey)
        errbuf_set(err, errlen, "%s: no PEM public key or certificate", path);
    else
        rc = s_add_pkey(self, pkey, NULL, path, err, errlen);
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    free(text);
    ERR_clear_error();
    return rc;
}

//  Builds a public key of type `type` from params and checks it (for EC,
//  that the point is on the curve). Returns the key or NULL.
static EVP_PKEY *s_pkey_from_params(const char *type, OSSL_PARAM *params)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_CTX_free(ctx);
        return NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (!ctx || EVP_PKEY_public_check(ctx) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

//  A JWK member that must be a base64url string; NULL if absent or bad.
static unsigned char *s_jwk_bytes(json_t *jwk, const char *name, size_t *len)
{
    const char *text = json_string_value(json_object_get(jwk, name));
    return text ? s_b64url_decode(text, len) : NULL;
}

static EVP_PKEY *s_jwk_rsa(json_t *jwk)
{
    size_t n_len = 0, e_len = 0;
    unsigned char *n = s_jwk_bytes(jwk, "n", &n_len);
    unsigned char *e = s_jwk_bytes(jwk, "e", &e_len);
    BIGNUM *bn_n = n ? BN_bin2bn(n, (int)n_len, NULL) : NULL;
    BIGNUM *bn_e = e ? BN_bin2bn(e, (int)e_len, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY *pkey = NULL;
    if (bn_n && bn_e && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) &&
        (params = OSSL_PARAM_BLD_to_param(bld)) != NULL)
        pkey = s_pkey_from_params("RSA", params);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    free(n);
    free(e);
    return pkey;
}

static EVP_PKEY *s_jwk_ec_p256(json_t *jwk)
{
    size_t x_len = 0, y_len = 0;
    unsigned char *x = s_jwk_bytes(jwk, "x", &x_len);
    unsigned char *y = s_jwk_bytes(jwk, "y", &y_len);
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    //  RFC 7518 6.2.1.2: each coordinate is exactly the field size.
    if (!x || !y || x_len != S_P256_COORD || y_len != S_P256_COORD)
        goto done;
    unsigned char point[1 + 2 * S_P256_COORD];
    point[0] = 0x04; //  uncompressed
    memcpy(point + 1, x, S_P256_COORD);
    memcpy(point + 1 + S_P256_COORD, y, S_P256_COORD);
    bld = OSSL_PARAM_BLD_new();
    if (bld &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, SN_X9_62_prime256v1, 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point) &&
        (params = OSSL_PARAM_BLD_to_param(bld)) != NULL)
        pkey = s_pkey_from_params("EC", params);
done:
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return pkey;
}

//  Loads the usable keys of a JWKS file; at least one must be usable.
static int s_load_jwks(auth_jwt_t *self, const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = s_read_file(path, S_KEY_FILE_MAX, &len, err, errlen);
    if (!text)
        return -1;
    int rc = -1;
    size_t before = self->key_count;
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *keys = json_object_get(root, "keys");
    if (!json_is_array(keys)) {
        errbuf_set(err, errlen, "%s: not a JWKS document (an object with a \"keys\" array)", path);
        goto done;
    }
    size_t i;
    json_t *jwk;
    json_array_foreach(keys, i, jwk)
    {
        char where[S_WHERE_MAX];
        snprintf(where, sizeof where, "%s: key %zu", path, i);
        if (!json_is_object(jwk)) {
            errbuf_set(err, errlen, "%s is not an object", where);
            goto done;
        }
        const char *kty = json_string_value(json_object_get(jwk, "kty"));
        const char *use = json_string_value(json_object_get(jwk, "use"));
        const char *alg = json_string_value(json_object_get(jwk, "alg"));
        json_t *kid_js = json_object_get(jwk, "kid");
        const char *kid = json_string_value(kid_js);
        if (!kty) {
            errbuf_set(err, errlen, "%s has no kty", where);
            goto done;
        }
        if (kid_js && (!kid || strlen(kid) > S_KID_MAX)) {
            errbuf_set(err, errlen, "%s: kid is not a string of at most %d bytes", where,
                       S_KID_MAX);
            goto done;
        }
        //  Encryption keys and other algorithms share key sets with
        //  signing keys: skip what this verifier does not use.
        if (use && strcmp(use, "sig") != 0)
            continue;
        EVP_PKEY *pkey = NULL;
        if (strcmp(kty, "RSA") == 0) {
            if (alg && strcmp(alg, "RS256") != 0)
                continue;
            pkey = s_jwk_rsa(jwk);
        } else if (strcmp(kty, "EC") == 0) {
            const char *crv = json_string_value(json_object_get(jwk, "crv"));
            if (!crv || strcmp(crv, "P-256") != 0 || (alg && strcmp(alg, "ES256") != 0))
                continue;
            pkey = s_jwk_ec_p256(jwk);
        } else
            continue;
        if (!pkey) {
            errbuf_set(err, errlen, "%s: invalid %s public key", where, kty);
            goto done;
        }
        int added = s_add_pkey(self, pkey, kid, where, err, errlen);
        EVP_PKEY_free(pkey);
        if (added != 0)
            goto done;
    }
    if (self->key_count == before) {
        errbuf_set(err, errlen, "%s: no RS256 or ES256 signing key", path);
        goto done;
    }
    rc = 0;
done:
    json_decref(root);
    free(text);
    ERR_clear_error();
    return rc;
}

auth_jwt_t *auth_jwt_new(const auth_jwt_config_t *config, char *err, size_t errlen)
{
    if (!config) {
        errbuf_set(err, errlen, "no JWT configuration");
        return NULL;
    }
    if (!s_set(config->hs256_secret) && !s_set(config->public_key_file) &&
        !s_set(config->jwks_file)) {
        errbuf_set(err, errlen, "JWT: neither an HS256 secret nor a public key file is set");
        return NULL;
    }
    if (config->leeway_s > AUTH_JWT_LEEWAY_MAX) {
        errbuf_set(err, errlen, "JWT leeway must be at most %d seconds", AUTH_JWT_LEEWAY_MAX);
        return NULL;
    }
    const char *roles_claim = s_set(config->roles_claim) ? config->roles_claim : "roles";
    if (strlen(roles_claim) > S_CLAIM_NAME_MAX) {
        errbuf_set(err, errlen, "JWT roles claim name longer than %d bytes", S_CLAIM_NAME_MAX);
        return NULL;
    }

    auth_jwt_t *self = calloc(1, sizeof *self);
    if (!self)
        goto oom;
    self->leeway_s = config->leeway_s < 0 ? AUTH_JWT_LEEWAY_DEFAULT : config->leeway_s;
    if (s_set(config->hs256_secret)) {
        self->secret_len = strlen(config->hs256_secret);
        if (self->secret_len < S_HS256_MIN_SECRET) {
            errbuf_set(err, errlen, "JWT HS256 secret shorter than %d bytes", S_HS256_MIN_SECRET);
            goto err;
        }
        self->secret = malloc(self->secret_len);
        if (!self->secret)
            goto oom;
        memcpy(self->secret, config->hs256_secret, self->secret_len);
    }
    if ((s_set(config->issuer) && !(self->issuer = strdup(config->issuer))) ||
        (s_set(config->audience) && !(self->audience = strdup(config->audience))) ||
        !(self->roles_claim = strdup(roles_claim)))
        goto oom;
    if (s_set(config->public_key_file) &&
        s_load_pem(self, config->public_key_file, err, errlen) != 0)
        goto err;
    if (s_set(config->jwks_file) && s_load_jwks(self, config->jwks_file, err, errlen) != 0)
        goto err;
    return self;
oom:
    errbuf_set(err, errlen, "out of memory");
err:
    auth_jwt_destroy(&self);
    return NULL;
}

void auth_jwt_destroy(auth_jwt_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    auth_jwt_t *self = *self_p;
    if (self->secret) {
        OPENSSL_cleanse(self->secret, self->secret_len);
        free(self->secret);
    }
    for (size_t i = 0; i < self->key_count; i++) {
        free(self->keys[i].kid);
        free(self->keys[i].pem);
    }
    free(self->issuer);
    free(self->audience);
    free(self->roles_claim);
    free(self);
    *self_p = NULL;
}

size_t auth_jwt_key_count(const auth_jwt_t *self)
{
    return self ? self->key_count : 0;
}

//  The compact JWS shape: three non-empty base64url parts. Checked before
//  libjwt sees the token, so that an unsigned token ("x.y.") and stray
//  characters are refused up front whatever libjwt would make of them.
static bool s_compact_shape(const char *token)
{
    int dots = 0;
    size_t part = 0;
    for (const char *p = token; *p; p++) {
        char c = *p;
        if (c == '.') {
            if (part == 0)
                return false;
            dots++;
            part = 0;
        } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_')
            part++;
        else
            return false;
    }
    return dots == 2 && part > 0;
}

//  The one algorithm name accepted for each alg we support (exact case:
//  libjwt's own lookup ignores case, RFC 7515 does not).
static jwt_alg_t s_alg_from_header(const char *name)
{
    if (!name)
        return JWT_ALG_INVAL;
    if (strcmp(name, "HS256") == 0)
        return JWT_ALG_HS256;
    if (strcmp(name, "RS256") == 0)
        return JWT_ALG_RS256;
    if (strcmp(name, "ES256") == 0)
        return JWT_ALG_ES256;
    return JWT_ALG_INVAL;
}

static bool s_alg_enabled(const auth_jwt_t *self, jwt_alg_t alg)
{
    if (alg == JWT_ALG_HS256)
        return self->secret != NULL;
    for (size_t i = 0; i < self->key_count; i++)
        if (self->keys[i].alg == alg)
            return true;
    return false;
}

//  A NumericDate claim. Returns 0 if absent, 1 with *out set, -1 if it is
//  not a number. Fractions are rounded towards refusal: down for exp, up
//  for nbf and iat.
static int s_numeric_date(json_t *claims, const char *name, bool round_up, int64_t *out)
{
    json_t *v = json_object_get(claims, name);
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d) || fabs(d) > 9.0e15) //  well inside int64 and exact doubles
            return -1;
        *out = (int64_t)(round_up ? ceil(d) : floor(d));
        return 1;
    }
    return -1;
}

static bool s_audience_ok(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return true;
    }
    return false;
}

//  The roles claim: top-level name first, then (if the name has dots) a
//  path through nested objects. Borrowed, NULL if absent.
static json_t *s_find_claim(json_t *claims, const char *name)
{
    json_t *v = json_object_get(claims, name);
    if (v || !strchr(name, '.'))
        return v;
    v = claims;
    const char *p = name;
    while (v) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        v = json_is_object(v) ? json_object_getn(v, p, n) : NULL;
        if (!dot)
            break;
        p = dot + 1;
    }
    return v;
}

static unsigned s_roles(json_t *value)
{
    unsigned roles = 0;
    if (json_is_array(value)) {
        size_t i;
        json_t *v;
        json_array_foreach(value, i, v)
        {
            if (json_is_string(v))
                roles |= auth_role_from_name(json_string_value(v), json_string_length(v));
        }
    } else if (json_is_string(value)) {
        const char *p = json_string_value(value);
        while (*p) {
            size_t n = strcspn(p, " ");
            roles |= auth_role_from_name(p, n);
            p += n;
            p += strspn(p, " ");
        }
    }
    return roles;
}

static bool s_subject_ok(json_t *sub)
{
    if (!json_is_string(sub))
        return false;
    size_t n = json_string_length(sub);
    const unsigned char *s = (const unsigned char *)json_string_value(sub);
    if (n == 0 || n > AUTH_JWT_SUBJECT_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

//  Checks the claims of a verified token. Returns NULL with *out filled
//  in, or the reason.
static const char *s_check_claims(const auth_jwt_t *self, json_t *claims, int64_t now,
                                  auth_jwt_claims_t *out)
{
    int64_t exp = 0, nbf = 0, iat = 0;
    int has;
    if (s_numeric_date(claims, "exp", false, &exp) != 1)
        return "missing or invalid exp claim";
    if (now - self->leeway_s >= exp)
        return "token expired";
    if ((has = s_numeric_date(claims, "nbf", true, &nbf)) < 0)
        return "invalid nbf claim";
    if (has && now + self->leeway_s < nbf)
        return "token not yet valid";
    if ((has = s_numeric_date(claims, "iat", true, &iat)) < 0)
        return "invalid iat claim";
    if (has && iat > now + self->leeway_s)
        return "token issued in the future";
    if (self->issuer) {
        const char *iss = json_string_value(json_object_get(claims, "iss"));
        if (!iss || strcmp(iss, self->issuer) != 0)
            return "issuer mismatch";
    }
    if (self->audience && !s_audience_ok(json_object_get(claims, "aud"), self->audience))
        return "audience mismatch";
    json_t *sub = json_object_get(claims, "sub");
    if (!s_subject_ok(sub))
        return "missing or invalid sub claim";
    memcpy(out->subject, json_string_value(sub), json_string_length(sub) + 1);
    out->roles = s_roles(s_find_claim(claims, self->roles_claim));
    out->expires_at = exp;
    return NULL;
}

int auth_jwt_verify(const auth_jwt_t *self, const char *token, int64_t now,
                    auth_jwt_claims_t *claims, char *err, size_t errlen)
{
    const char *reason = NULL;
    jwt_t *peek = NULL, *jwt = NULL;
    char *text = NULL;
    json_t *root = NULL;
    memset(claims, 0, sizeof *claims);

    if (!token || !*token) {
        reason = "missing token";
        goto done;
    }
    if (strnlen(token, AUTH_JWT_TOKEN_MAX + 1) > AUTH_JWT_TOKEN_MAX) {
        reason = "token too large";
        goto done;
    }
    if (!s_compact_shape(token) || jwt_decode(&peek, token, NULL, 0) != 0 || !peek) {
        reason = "malformed token";
        goto done;
    }
    //  Only the header is trusted here, and only to choose the key.
    char *crit = jwt_get_headers_json(peek, "crit");
    if (crit) {
        free(crit);
        reason = "unsupported critical header";
        goto done;
    }
    jwt_alg_t alg = s_alg_from_header(jwt_get_header(peek, "alg"));
    if (alg == JWT_ALG_INVAL || !s_alg_enabled(self, alg)) {
        reason = "algorithm not allowed";
        goto done;
    }
    const char *kid = jwt_get_header(peek, "kid");
    char *kid_any = kid ? NULL : jwt_get_headers_json(peek, "kid");
    if (kid_any) { //  a kid that is not a string
        free(kid_any);
        reason = "malformed token";
        goto done;
    }

    if (alg == JWT_ALG_HS256) {
        if (jwt_decode(&jwt, token, self->secret, (int)self->secret_len) != 0)
            jwt = NULL;
    } else {
        bool candidate = false;
        for (size_t i = 0; i < self->key_count && !jwt; i++) {
            const s_key_t *key = &self->keys[i];
            if (key->alg != alg || (kid && key->kid && strcmp(kid, key->kid) != 0))
                continue;
            candidate = true;
            if (jwt_decode(&jwt, token, (const unsigned char *)key->pem, key->pem_len) != 0)
                jwt = NULL; //  libjwt leaves it NULL on failure; be sure
        }
        if (!candidate) {
            reason = "unknown key id";
            goto done;
        }
    }
    if (!jwt) {
        reason = "signature verification failed";
        goto done;
    }
    //  libjwt chose the method from the same header; make sure it agrees.
    if (jwt_get_alg(jwt) != alg) {
        reason = "algorithm not allowed";
        goto done;
    }

    text = jwt_get_grants_json(jwt, NULL);
    root = text ? json_loads(text, 0, NULL) : NULL;
    if (!json_is_object(root)) {
        reason = "malformed token";
        goto done;
    }
    reason = s_check_claims(self, root, now, claims);

done:
    json_decref(root);
    free(text);
    if (jwt)
        jwt_free(jwt);
    if (peek)
        jwt_free(peek);
    if (reason) {
        //  Failed verifications leave OpenSSL errors queued on this thread,
        //  where a later TLS call on the same thread would find them.
        ERR_clear_error();
        memset(claims, 0, sizeof *claims);
        errbuf_set(err, errlen, "%s", reason);
        return -1;
    }
    return 0;
}
