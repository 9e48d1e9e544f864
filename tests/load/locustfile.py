"""Locust load test for recsd's HTTP API (Locust 2.12, Debian python3-locust).

What one simulated client does, with weights 90/5/5:
  - GET /api/v1/recs/{userId}: the user id drawn from a Zipf-like
    distribution over RECSD_LOAD_USERS (a few heavy users, a long tail), with
    the parameters real clients send: limit=10 mostly, sometimes another
    limit, a type, explain=true, or an exclude list of videos "already on
    screen" (taken from earlier answers, as a client would);
  - GET /api/v1/recs/models/{id}: training status of a model whose id was
    learned from the model listing;
  - GET /api/v1/recs/models?limit=20: the model listing.

A request is a success only if it is 200 with a JSON body holding the
documented fields (recommendations: user_id equal to the one asked for,
items with video_id and score, at most `limit` of them, none excluded, and
source model|cache|fallback); 401, 403, 429 and 5xx are failures.

Credentials come from the environment (see tests/load/README.md): with
RECSD_LOAD_HS256_SECRET each recommendation request carries a token minted
for its own user (sub = user id, roles ["user"]), as an end-user app would;
otherwise RECSD_LOAD_API_KEY (X-API-Key) or RECSD_LOAD_TOKEN (Bearer), which
must carry a service or admin role since they read any user's list. The
model routes need a service, admin or trainer role: the API key, else the
token, else a service token minted with the secret.

Run it: locust -f tests/load/locustfile.py --host http://HOST:PORT
"""
import base64
import bisect
import hashlib
import hmac
import itertools
import json
import logging
import os
import random
import threading
import time
import uuid

from locust import HttpUser, between, events, task


def _env(name, default=None):
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_float(name, default):
    text = _env(name)
    try:
        return float(text) if text is not None else default
    except ValueError as exc:
        raise SystemExit(f"{name} must be a number, got {text!r}") from exc


def _user_range(text):
    """'A..B' (or 'A-B') inclusive, or 'N' meaning 1..N."""
    for sep in ("..", "-"):
        if sep in text:
            lo, hi = text.split(sep, 1)
            break
    else:
        lo, hi = "1", text
    try:
        lo, hi = int(lo), int(hi)
    except ValueError as exc:
        raise SystemExit(f"RECSD_LOAD_USERS must be A..B or N, got {text!r}") from exc
    if lo < 0 or hi < lo:
        raise SystemExit(f"RECSD_LOAD_USERS: empty or negative range {text!r}")
    return lo, hi


USERS_LO, USERS_HI = _user_range(_env("RECSD_LOAD_USERS", "1..610"))
ZIPF_S = _env_float("RECSD_LOAD_ZIPF_S", 1.0)
WAIT_MIN = _env_float("RECSD_LOAD_WAIT_MIN", 0.1)
WAIT_MAX = _env_float("RECSD_LOAD_WAIT_MAX", 0.5)
API_KEY = _env("RECSD_LOAD_API_KEY")
TOKEN = _env("RECSD_LOAD_TOKEN")
SECRET = _env("RECSD_LOAD_HS256_SECRET")
ISSUER = _env("RECSD_LOAD_ISSUER")
AUDIENCE = _env("RECSD_LOAD_AUDIENCE")
ROLES_CLAIM = _env("RECSD_LOAD_ROLES_CLAIM", "roles")
TOKEN_TTL_S = int(_env_float("RECSD_LOAD_TOKEN_TTL_S", 900))
# Unauthenticated is allowed only when asked for: a deployment with
# authentication on would otherwise answer 401 to every request.
ANONYMOUS = _env("RECSD_LOAD_ANONYMOUS", "0") in ("1", "true", "yes")

RECS = "/api/v1/recs/"
MODELS = "/api/v1/recs/models"
SOURCES = ("model", "cache", "fallback")

# Zipf over ranks 1..N (weight 1/rank^s); ranks map to user ids through a
# fixed shuffle, so the heavy users are spread over the range rather than
# being the lowest ids (which a seeded run also makes repeatable).
_ids = list(range(USERS_LO, USERS_HI + 1))
random.Random(20240601).shuffle(_ids)
_cum = list(itertools.accumulate(1.0 / (rank ** ZIPF_S) for rank in range(1, len(_ids) + 1)))


def zipf_user():
    return str(_ids[bisect.bisect_left(_cum, random.random() * _cum[-1])])


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(sub, roles):
    """An HS256 JWT for sub with roles, valid TOKEN_TTL_S."""
    now = int(time.time())
    claims = {"sub": sub, "iat": now, "nbf": now - 5, "exp": now + TOKEN_TTL_S,
              ROLES_CLAIM: list(roles)}
    if ISSUER:
        claims["iss"] = ISSUER
    if AUDIENCE:
        claims["aud"] = AUDIENCE
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}", now + TOKEN_TTL_S


class _Tokens:
    """Minted tokens per (sub, roles), renewed a minute before they expire."""

    def __init__(self):
        self.cache = {}
        self.lock = threading.Lock()

    def get(self, sub, roles):
        key = (sub, tuple(roles))
        with self.lock:
            tok = self.cache.get(key)
            if tok is None or tok[1] - 60 < time.time():
                tok = self.cache[key] = mint(sub, roles)
            return tok[0]


_tokens = _Tokens()


def recs_headers(user_id):
    if SECRET:
        return {"Authorization": "Bearer " + _tokens.get(user_id, ["user"])}
    return service_headers()


def service_headers():
    if API_KEY:
        return {"X-API-Key": API_KEY}
    if TOKEN:
        return {"Authorization": "Bearer " + TOKEN}
    if SECRET:
        return {"Authorization": "Bearer " + _tokens.get("recsd-load", ["service"])}
    return {}


@events.init.add_listener
def _check_credentials(environment, **_kwargs):
    if not (API_KEY or TOKEN or SECRET or ANONYMOUS):
        raise SystemExit("recsd load test: set RECSD_LOAD_HS256_SECRET, RECSD_LOAD_API_KEY or "
                         "RECSD_LOAD_TOKEN (or RECSD_LOAD_ANONYMOUS=1 for a deployment "
                         "without authentication); see tests/load/README.md")
    # Worth knowing against a deployment with a per-principal rate limit:
    # the heaviest user's share of the recommendation requests.
    logging.getLogger("recsd-load").info(
        "users %d..%d, Zipf s=%.2f: the heaviest user gets %.1f%% of recommendation requests; "
        "recs credentials: %s", USERS_LO, USERS_HI, ZIPF_S, 100.0 / _cum[-1],
        "per-user HS256 tokens" if SECRET else "X-API-Key" if API_KEY else
        "bearer token" if TOKEN else "none")


# Model ids learned from the listing, shared by every simulated client of
# this process (Locust users are greenlets in one process).
_model_ids = []


def _json(resp):
    try:
        return resp.json()
    except ValueError:
        return None


def _status_ok(resp):
    """Fails resp unless 200; True when it is. The message holds the status
    and the problem's title and detail, not the URL, so Locust groups the
    failures by cause rather than by user."""
    if resp.status_code == 200:
        return True
    doc = _json(resp) if resp.text else None
    if isinstance(doc, dict) and ("detail" in doc or "title" in doc):
        why = f"{doc.get('title', '')}: {doc.get('detail', '')}"
    else:
        why = resp.text[:120] if resp.text else "no answer"  # status 0: refused, reset, timeout
    resp.failure(f"HTTP {resp.status_code}: {why}")
    return False


class RecsdClient(HttpUser):
    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self):
        # Videos this client has been shown lately: its exclude lists.
        self.on_screen = []

    def _headers(self, base):
        headers = dict(base)
        headers["X-Request-Id"] = "load-" + uuid.uuid4().hex[:16]
        return headers

    @task(90)
    def recommendations(self):
        user = zipf_user()
        params = {}
        r = random.random()
        limit = 10 if r < 0.85 else random.choice((5, 20, 50))
        if limit != 10 or random.random() < 0.5:
            params["limit"] = str(limit)  # half the clients rely on the default 10
        r = random.random()
        if r < 0.10:
            params["type"] = "collaborative"
        elif r < 0.15:
            params["type"] = "content"
        elif r < 0.20:
            params["type"] = "popularity"
        if random.random() < 0.10:
            params["explain"] = "true"
        exclude = []
        if self.on_screen and random.random() < 0.15:
            exclude = random.sample(self.on_screen, min(len(self.on_screen),
                                                        random.randint(1, 20)))
            params["exclude"] = ",".join(exclude)
        with self.client.get(RECS + user, params=params, headers=self._headers(
                recs_headers(user)), name=RECS + "{userId}", catch_response=True) as resp:
            if not _status_ok(resp):
                return
            doc = _json(resp)
            why = self._check_recs(doc, user, limit, exclude, params.get("explain"))
            if why:
                resp.failure(why)
                return
            resp.success()
            shown = [item["video_id"] for item in doc["items"]]
            self.on_screen = (shown + self.on_screen)[:40]

    @staticmethod
    def _check_recs(doc, user, limit, exclude, explain):
        if not isinstance(doc, dict):
            return "body is not a JSON object"
        for field in ("user_id", "items", "source"):
            if field not in doc:
                return f"no {field} in the answer"
        if doc["user_id"] != user:
            return f"user_id {doc['user_id']!r} for user {user}"
        if doc["source"] not in SOURCES:
            return f"source {doc['source']!r}"
        items = doc["items"]
        if not isinstance(items, list) or len(items) > limit:
            return f"items is not a list of at most {limit}"
        excluded = set(exclude)
        for item in items:
            if not isinstance(item, dict) or "video_id" not in item or "score" not in item:
                return f"malformed item {item!r:.80}"
            if item["video_id"] in excluded:
                return f"excluded video {item['video_id']} returned"
            if explain and "reason" not in item:
                return "explain=true without reason"
        return None

    @task(5)
    def training_status(self):
        if not _model_ids:
            self.model_listing()
            if not _model_ids:
                return  # no model trained yet: nothing to follow
        model_id = random.choice(_model_ids)
        with self.client.get(f"{MODELS}/{model_id}", headers=self._headers(service_headers()),
                             name=MODELS + "/{id}", catch_response=True) as resp:
            if not _status_ok(resp):
                return
            doc = _json(resp)
            if not isinstance(doc, dict) or doc.get("model_id") != model_id or \
                    "status" not in doc or "progress" not in doc:
                resp.failure("model document without model_id, status or progress")
            else:
                resp.success()

    @task(5)
    def model_listing(self):
        with self.client.get(MODELS, params={"limit": "20"},
                             headers=self._headers(service_headers()),
                             name=MODELS + "?limit=20", catch_response=True) as resp:
            if not _status_ok(resp):
                return
            doc = _json(resp)
            models = doc.get("models") if isinstance(doc, dict) else None
            if not isinstance(models, list) or len(models) > 20 or "active" not in doc or \
                    any(not isinstance(m, dict) or "model_id" not in m for m in models):
                resp.failure("listing without models (at most 20, each with model_id) or active")
                return
            resp.success()
            _model_ids[:] = [m["model_id"] for m in models]
