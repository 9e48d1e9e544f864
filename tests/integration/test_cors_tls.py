"""CORS and HTTPS at the gateway, with real requests.

CORS (RECSD_CORS_ORIGINS): a preflight from an allowed origin is 204 with
the route's methods and the API's request headers, answered before
authentication; from a foreign origin it is 403 without CORS headers; a
request from an allowed origin gets its origin echoed (never "*") with the
readable response headers, one from a foreign origin gets none.

HTTPS (RECSD_TLS_CERT_FILE/KEY_FILE): with a test certificate the gateway
speaks TLS, verified against that certificate; plain HTTP on the port gets
no answer; an oversized body is 413 and malformed JSON 400, never 5xx.
"""
import http.client
import os
import ssl
import subprocess
import tempfile

from harness import Service, check, require_env

require_env("RECSD_PG_DSN")
ALLOWED, FOREIGN = "https://app.example.test", "https://evil.example.test"


def call(port, method, path, headers=None, body=None, context=None):
    conn = (http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
            if context else http.client.HTTPConnection("127.0.0.1", port, timeout=10))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def cors():
    env = {"RECSD_CORS_ORIGINS": f"{ALLOWED}, http://localhost:3000",
           "RECSD_ACTORS": "ranker,http-gateway", "RECSD_AUTH": "required",
           "RECSD_JWT_HS256_SECRET": "cors-secret-0123456789-0123456789-0123"}
    with Service(env=env) as svc:
        pre = {"Origin": ALLOWED, "Access-Control-Request-Method": "GET",
               "Access-Control-Request-Headers": "authorization"}
        status, headers, _ = call(svc.port, "OPTIONS", "/api/v1/recs/1", pre)
        check(status == 204 and headers.get("Access-Control-Allow-Origin") == ALLOWED and
              "GET" in headers.get("Access-Control-Allow-Methods", "") and
              "Authorization" in headers.get("Access-Control-Allow-Headers", ""),
              f"preflight from an allowed origin: 204 ({status} {headers})")
        status, headers, _ = call(svc.port, "OPTIONS", "/api/v1/recs/config",
                                  dict(pre, **{"Access-Control-Request-Method": "PUT"}))
        check(status == 204 and "PUT" in headers.get("Access-Control-Allow-Methods", ""),
              "the route's own methods")
        status, headers, _ = call(svc.port, "OPTIONS", "/api/v1/recs/1", dict(pre, Origin=FOREIGN))
        check(status == 403 and "Access-Control-Allow-Origin" not in headers,
              f"preflight from a foreign origin: 403 without CORS headers ({status})")
        status, headers, _ = call(svc.port, "GET", "/health", {"Origin": ALLOWED})
        check(headers.get("Access-Control-Allow-Origin") == ALLOWED and
              "X-Request-Id" in headers.get("Access-Control-Expose-Headers", "") and
              headers.get("Vary") == "Origin", "an allowed origin is echoed, never *")
        status, headers, _ = call(svc.port, "GET", "/api/v1/recs/1", {"Origin": ALLOWED})
        check(status == 401 and headers.get("Access-Control-Allow-Origin") == ALLOWED,
              "the 401 is readable by the allowed page too")
        status, headers, _ = call(svc.port, "GET", "/health", {"Origin": FOREIGN})
        check("Access-Control-Allow-Origin" not in headers, "a foreign origin gets none")


def tls():
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        env = {"RECSD_TLS_CERT_FILE": cert, "RECSD_TLS_KEY_FILE": key,
               "RECSD_ACTORS": "ranker,http-gateway"}
        svc = Service(env=env)
        # The harness probes over plain HTTP: start without waiting, then
        # wait over HTTPS.
        svc.start(wait_ready=False)
        try:
            context = ssl.create_default_context(cafile=cert)

            def up():
                try:
                    return call(svc.port, "GET", "/health", context=context)[0] == 200
                except OSError:
                    return False
            svc.wait_for(up, 20, "the gateway over HTTPS")
            status, _, body = call(svc.port, "GET", "/api/v1/recs/1?limit=2", context=context)
            check(status == 200 and b"items" in body, "recommendations over verified HTTPS")
            try:
                status, _, _ = call(svc.port, "GET", "/health")
                plain = status
            except (OSError, http.client.HTTPException) as exc:
                plain = type(exc).__name__
            check(plain != 200, f"plain HTTP is not answered ({plain})")
            status, _, body = call(svc.port, "POST", "/api/v1/recs/experiments",
                                   {"Content-Type": "application/json"}, b"{" * 20000,
                                   context=context)
            check(status == 413, f"an oversized body is 413 ({status})")
            status, _, _ = call(svc.port, "POST", "/api/v1/recs/train",
                                {"Content-Type": "application/json"}, b"{\"model_type\":",
                                context=context)
            check(status == 400, f"malformed JSON is 400 ({status})")
        finally:
            svc.close()


def main():
    cors()
    tls()
    print("ok")


if __name__ == "__main__":
    main()
