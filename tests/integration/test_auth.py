"""API authentication and authorisation through real HTTP requests
(RECSD_AUTH=required, an HS256 secret with issuer and audience, and an API
key): probes, metrics and the documentation stay open; a request without
credentials, with an expired, wrong-audience, wrong-issuer, badly signed,
unsigned (alg none) or malformed token is 401 with a WWW-Authenticate
challenge; a user token reads only its own recommendations; a service key
reads anyone's; reading the configuration needs a service, admin or trainer
role and changing it the admin role (403 otherwise); `recsd token` mints
tokens the gateway accepts; a gateway told to require authentication
without any credential refuses to start.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import time
import uuid

from harness import BIN, Service, check, require_env

require_env("RECSD_PG_DSN")

SECRET = "it-secret-0123456789-0123456789-0123456789"
ISS, AUD = "https://id.example.test", "recsd-api"
KEY = "it-service-key-0123456789abcdefghijklmnopqrstuvwxyz"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(claims, secret=SECRET, alg="HS256"):
    header = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    if alg == "none":
        return f"{header}.{payload}."
    sig = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(sig)}"


def claims(sub, roles=("user",), **extra):
    now = int(time.time())
    base = {"sub": sub, "iss": ISS, "aud": AUD, "iat": now, "exp": now + 600,
            "roles": list(roles)}
    base.update(extra)
    return base


def call(svc, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=10)
    try:
        hdrs = dict(headers or {})
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, dict(resp.getheaders()), data
    finally:
        conn.close()


def bearer(tok):
    return {"Authorization": f"Bearer {tok}"}


def rate_limit(key_line):
    """500 requests per user per period across two gateways sharing Redis:
    the 501st gets 429 from either, with Retry-After and RateLimit-*."""
    env = {"RECSD_AUTH": "required", "RECSD_API_KEYS": key_line, "RECSD_RATE_LIMIT": "500",
           # An hour: GCRA refills continuously (one request per 7.2 s here),
           # so the count is exact however long 500 requests take.
           "RECSD_RATE_LIMIT_PERIOD_S": "3600", "RECSD_ACTORS": "ranker,http-gateway"}
    with Service(env=env) as a, Service(env=env) as b:
        key = {"X-API-Key": KEY}
        ok = {a.port: 0, b.port: 0}
        for svc, n in ((a, 300), (b, 200)):
            conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=10)
            for _ in range(n):
                conn.request("GET", "/api/v1/recs/3?limit=1", headers=key)
                resp = conn.getresponse()
                resp.read()
                ok[svc.port] += resp.status == 200
                limit_header = resp.getheader("RateLimit-Limit")
            conn.close()
        check(ok == {a.port: 300, b.port: 200} and limit_header == "500",
              f"500 requests allowed over two gateways ({ok}, RateLimit-Limit {limit_header})")
        for svc in (b, a):
            status, headers, body = call(svc, "GET", "/api/v1/recs/3?limit=1", key)
            check(status == 429 and int(headers.get("Retry-After", "0")) > 0 and
                  headers.get("RateLimit-Remaining") == "0",
                  f"the 501st is 429 on either gateway ({status}, Retry-After "
                  f"{headers.get('Retry-After')})")
        status, _, _ = call(a, "GET", "/health")
        check(status == 200, "probes are never limited")


def main():
    # A name of this run's own: the rate limit's state (keyed by the
    # principal, apikey:<name>) lives in the shared Redis for the period, and
    # the sanitizer run of the suite comes right after the normal one.
    name = "it" + uuid.uuid4().hex[:8]
    line = subprocess.run([BIN, "hash-api-key", "--roles", "service", "--name", name, KEY],
                          capture_output=True, text=True, check=True).stdout.strip()
    env = {"RECSD_AUTH": "required", "RECSD_JWT_HS256_SECRET": SECRET,
           "RECSD_JWT_ISSUER": ISS, "RECSD_JWT_AUDIENCE": AUD, "RECSD_API_KEYS": line,
           "RECSD_ACTORS": "ranker,http-gateway"}
    with Service(env=env) as svc:
        for path in ("/health", "/health/ready", "/metrics"):
            status, _, _ = call(svc, "GET", path)
            check(status in (200, 503) and status != 401, f"{path} needs no credentials")

        status, headers, body = call(svc, "GET", "/api/v1/recs/1")
        check(status == 401 and headers.get("WWW-Authenticate", "").startswith("Bearer"),
              f"no credentials: 401 with a Bearer challenge ({status} {headers})")
        check(json.loads(body)["status"] == 401, "as problem+json")
        status, headers, _ = call(svc, "GET", "/api/v1/recs/1",
                                  {"Authorization": "Basic dXNlcjpwYXNz"})
        check(status == 401, "another scheme is no credential")

        now = int(time.time())
        bad = {
            "expired": token(claims("1", exp=now - 3600, iat=now - 7200)),
            "not yet valid": token(claims("1", nbf=now + 3600)),
            "wrong audience": token(claims("1", aud="someone-else")),
            "wrong issuer": token(claims("1", iss="https://evil.example")),
            "wrong signature": token(claims("1"), secret="another-secret-0123456789-0123456789"),
            "alg none": token(claims("1"), alg="none"),
            "malformed": "not.a.token",
            "garbage": "x" * 9000,
        }
        for what, tok in bad.items():
            status, headers, _ = call(svc, "GET", "/api/v1/recs/1", bearer(tok))
            challenge = headers.get("WWW-Authenticate", "")
            check(status == 401 and 'error="invalid_token"' in challenge,
                  f"{what} token: 401 invalid_token ({status}, {challenge[:90]})")
            check(tok[:40] not in challenge, f"{what}: the challenge does not echo the token")

        user1 = bearer(token(claims("1")))
        status, _, body = call(svc, "GET", "/api/v1/recs/1?limit=3", user1)
        check(status == 200 and json.loads(body)["user_id"] == "1", "a user reads their own list")
        status, _, body = call(svc, "GET", "/api/v1/recs/2?limit=3", user1)
        check(status == 403, f"a user cannot read another user's list ({status})")
        status, _, _ = call(svc, "GET", "/api/v1/recs/2?limit=3", {"X-API-Key": KEY})
        check(status == 200, f"a service key reads any user's list ({status})")
        status, _, _ = call(svc, "GET", "/api/v1/recs/2?limit=3", {"X-API-Key": KEY + "x"})
        check(status == 401, "a wrong key is 401")

        status, _, _ = call(svc, "GET", "/api/v1/recs/config", user1)
        check(status == 403, f"a user cannot read the configuration ({status})")
        status, _, _ = call(svc, "GET", "/api/v1/recs/config", {"X-API-Key": KEY})
        check(status == 200, f"a service reads it ({status})")
        status, _, _ = call(svc, "PUT", "/api/v1/recs/config", {"X-API-Key": KEY}, "{}")
        check(status == 403, f"a service cannot change it ({status})")
        admin = bearer(token(claims("ops-admin", roles=("admin",))))
        status, _, body = call(svc, "PUT", "/api/v1/recs/config", admin, '{"default_type": 1}')
        check(status == 400, f"an admin may: the body is then validated (400: {body[:80]})")
        status, _, _ = call(svc, "POST", "/api/v1/recs/train", user1, '{"model_type":"all"}')
        check(status == 403, f"a user cannot train ({status})")
        status, _, _ = call(svc, "POST", "/api/v1/recs/experiments", user1, "{}")
        check(status == 403, f"a user cannot create experiments ({status})")

        minted = subprocess.run([BIN, "token", "--sub", "7", "--roles", "user"],
                                env=dict(svc.env), capture_output=True, text=True,
                                check=True).stdout.strip()
        status, _, _ = call(svc, "GET", "/api/v1/recs/7?limit=2", bearer(minted))
        check(status == 200, f"`recsd token` mints an accepted token ({status})")
        for ttl in ("12abc", "", "0"):
            bad = subprocess.run([BIN, "token", "--sub", "7", "--ttl", ttl], env=dict(svc.env),
                                 capture_output=True, text=True)
            check(bad.returncode == 2 and "usage" in bad.stderr,
                  f"`recsd token --ttl {ttl!r}` is a usage error ({bad.returncode})")

    rate_limit(line)

    # Required without a credential: the gateway does not start.
    env = dict(os.environ, RECSD_AUTH="required", RECSD_ACTORS="http-gateway")
    for k in ("RECSD_JWT_HS256_SECRET", "RECSD_API_KEYS", "RECSD_JWT_PUBLIC_KEY_FILE",
              "RECSD_JWT_JWKS_FILE"):
        env.pop(k, None)
    out = subprocess.run([BIN, "actor", "http-gateway"], env=env, capture_output=True,
                         text=True, timeout=20)
    check(out.returncode != 0 and "no credential is configured" in out.stderr,
          f"required without credentials: the gateway refuses to start ({out.returncode})")
    print("ok")


if __name__ == "__main__":
    main()
