/*  auth_jwt.h: verifies bearer JWTs (RFC 7519) for the gateway.

    libjwt does the token decoding and the signature check; this class
    decides which key and algorithm a token may use, and checks the
    claims, which libjwt 1.10 leaves to its caller.

    Keys and algorithms. Exactly these are accepted, each only with its own
    kind of key:
      HS256  with the shared secret (config.hs256_secret, at least 32 bytes,
             RFC 7518 3.2);
      RS256  with an RSA public key of at least 2048 bits;
      ES256  with an EC P-256 public key.
    Public keys come from a PEM file (one SubjectPublicKeyInfo key or an
    X.509 certificate) and/or a JWKS file (RFC 7517: {"keys": [...]}, RSA
    keys with n/e and EC P-256 keys with x/y; keys whose "use" is not "sig",
    whose "alg" is not RS256/ES256, or whose kty/crv is something else are
    skipped; a malformed RSA/EC key is an error). A token's alg header picks
    the kind of key before anything is verified, so "none" (or any other
    alg) is refused, and an HS256 token is only ever checked against the
    shared secret, never against public key bytes (algorithm confusion).
    A token with a kid is checked against the keys with that kid (and keys
    without one, such as the PEM key); an unknown kid is refused. A token
    without a kid is tried against every key of its algorithm.

    Claims, with config.leeway_s of clock skew allowed each way:
      exp  required, a number; refused once now >= exp + leeway;
      nbf  optional; refused while now + leeway < nbf;
      iat  optional; refused if iat > now + leeway (issued in the future);
      iss  if config.issuer is set: must be that string;
      aud  if config.audience is set: a string equal to it, or an array
           containing it;
      sub  required, a string of 1..AUTH_JWT_SUBJECT_MAX bytes without
           control characters;
      roles claim (config.roles_claim, default "roles"): a JSON array of
           strings or one space-separated string; names that are not
           recsd roles are ignored (auth.h lists the roles). The name is
           first looked up as a top-level claim; if there is none and the
           name contains dots, it is followed as a path of nested objects
           ("realm_access.roles" for Keycloak).

    Limitations (libjwt 1.10): a "typ" header other than "JWT" (such as
    RFC 9068's "at+jwt") is refused; a "crit" header is refused.

    Errors are short constant texts suitable for the error_description of
    a `WWW-Authenticate: Bearer error="invalid_token"` header; they never
    contain any part of the token.

    Thread safety: the verifier is immutable after auth_jwt_new(); any
    number of threads may call auth_jwt_verify() on one verifier at once
    (each call uses libjwt objects of its own).
*/
#ifndef RECSD_AUTH_JWT_H
#define RECSD_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>

//  Longest sub accepted, in bytes without the NUL.
#define AUTH_JWT_SUBJECT_MAX 128
//  Longest token accepted, in bytes. Keeps a hostile header from costing
//  more than a bounded amount of decoding.
#define AUTH_JWT_TOKEN_MAX 8192
#define AUTH_JWT_LEEWAY_DEFAULT 30
#define AUTH_JWT_LEEWAY_MAX 300

typedef struct {
    const char *hs256_secret;    //  NULL or "" = no HS256
    const char *public_key_file; //  NULL or "" = none; a PEM public key or certificate
    const char *jwks_file;       //  NULL or "" = none; an RFC 7517 key set
    const char *issuer;          //  NULL or "" = iss not checked
    const char *audience;        //  NULL or "" = aud not checked
    int leeway_s;                //  < 0 = AUTH_JWT_LEEWAY_DEFAULT; at most AUTH_JWT_LEEWAY_MAX
    const char *roles_claim;     //  NULL or "" = "roles"
} auth_jwt_config_t;

typedef struct {
    char subject[AUTH_JWT_SUBJECT_MAX + 1]; //  sub
    unsigned roles;                         //  AUTH_ROLE_* bits (auth.h) of the roles claim
    int64_t expires_at;                     //  exp, Unix seconds
} auth_jwt_claims_t;

typedef struct auth_jwt_t auth_jwt_t;

//  Builds a verifier: copies the strings, reads and converts the key files.
//  At least one of hs256_secret, public_key_file, jwks_file must be set.
//  Returns the verifier (caller owns it), or NULL with the reason in err
//  (which names the file or the JWKS key index at fault).
auth_jwt_t *auth_jwt_new(const auth_jwt_config_t *config, char *err, size_t errlen);

//  Idempotent, sets *self_p to NULL.
void auth_jwt_destroy(auth_jwt_t **self_p);

//  Verifies token (the bare compact JWS, without "Bearer ") at time now
//  (Unix seconds). Returns 0 with *claims filled in, or -1 with a short
//  reason in err (may be NULL) and *claims zeroed.
int auth_jwt_verify(const auth_jwt_t *self, const char *token, int64_t now,
                    auth_jwt_claims_t *claims, char *err, size_t errlen);

//  Number of public keys loaded (PEM and JWKS together).
size_t auth_jwt_key_count(const auth_jwt_t *self);

#endif
