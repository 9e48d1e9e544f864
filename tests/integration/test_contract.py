"""Consumer-driven contract tests (Pact) between the streaming platform's API
gateway (consumer "streaming-api-gateway") and recsd (provider), see
tests/contract/:

1. the pinned Pact toolchain is installed (tests/contract/contract.sh
   install: `npm ci` into RECSD_CONTRACT_NODE_DIR, by default
   <build dir>/contract-node; a no-op when the lock file is unchanged);
2. the consumer tests run against Pact's mock server and write the pact into
   a scratch dir; it must equal the committed tests/contract/pacts/ file
   (metadata aside): a changed expectation reaches the provider only through
   a committed, reviewed pact;
3. a real recsd (trainer, ranker, gateway) on a fresh MovieLens database,
   with authentication required (HS256, issuer and audience), is verified
   against the committed pact by tests/contract/verify.js: provider states
   are reached through recsd's API (a hybrid model is trained through POST
   /train), tokens minted by `recsd token` replace the consumer's example.

The test fails if any interaction fails verification, a provider state
cannot be reached, or the committed pact is stale.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from harness import BIN, MovieLensDatabase, Service, check, fail, require_env

SOURCE = os.environ.get("RECSD_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
CONTRACT = os.path.join(SOURCE, "tests", "contract")
PACT = "streaming-api-gateway-recsd.json"
NODE_DIR = os.environ.get("RECSD_CONTRACT_NODE_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(BIN)), "contract-node")

SECRET = "contract-secret-0123456789-0123456789-0123456789"
ISS, AUD = "https://id.streaming.example", "recsd-api"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(cmd, env, timeout, what):
    started = time.time()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    took = time.time() - started
    if out.returncode != 0:
        print(out.stdout[-8000:])
        print(out.stderr[-8000:])
        fail(f"{what}: rc {out.returncode} after {took:.1f} s")
    return out, took


def without_metadata(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    doc.pop("metadata", None)
    return doc


def verify(env, quiet=False):
    """Runs tests/contract/verify.js; (the completed process, seconds)."""
    started = time.time()
    out = subprocess.run(["node", os.path.join(CONTRACT, "verify.js")], env=env,
                         capture_output=True, text=True, timeout=240, cwd=CONTRACT)
    took = time.time() - started
    if not quiet or out.returncode not in (0, 1):
        print(out.stdout[-12000:])
        print(out.stderr[-6000:], file=sys.stderr)
    return out, took


def main():
    require_env("RECSD_PG_DSN", "RECSD_REDIS_URL")
    for tool in ("node", "npm"):
        if not shutil.which(tool):
            fail(f"{tool} is not installed (ops/install-deps.sh installs nodejs and npm)")
    env = dict(os.environ, RECSD_CONTRACT_NODE_DIR=NODE_DIR)
    contract_sh = ["bash", os.path.join(CONTRACT, "contract.sh")]

    out, took = run(contract_sh + ["install"], env, 600, "contract.sh install")
    how = "npm ci ran" if "npm ci into" in out.stderr else "already installed"
    check(True, f"Pact toolchain ready in {NODE_DIR} ({how}, {took:.1f} s)")

    scratch = tempfile.mkdtemp(prefix="recsd-it-pact-", dir="/tmp")
    try:
        out, took = run(contract_sh + ["consumer"], dict(env, PACT_DIR=scratch), 120,
                        "consumer tests")
        check("# fail 0" in out.stdout, f"consumer tests pass against the mock server ({took:.1f} s)")
        generated = os.path.join(scratch, PACT)
        committed = os.path.join(CONTRACT, "pacts", PACT)
        if not os.path.exists(committed):
            fail(f"no committed pact {committed}: run tests/contract/contract.sh consumer")
        if without_metadata(generated) != without_metadata(committed):
            subprocess.run(["diff", "-u", committed, generated])
            fail("tests/contract/pacts/ is stale: the consumer tests expect something else; "
                 "run tests/contract/contract.sh consumer and commit the pact")
        check(True, "the committed pact is what the consumer tests generate")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    db = MovieLensDatabase("contract")
    artifacts = tempfile.mkdtemp(prefix="recsd-it-art-", dir="/tmp")
    try:
        svc_env = {
            "RECSD_PG_DSN": db.dsn, "RECSD_ARTIFACT_URL": "file://" + artifacts,
            "RECSD_AUTH": "required", "RECSD_JWT_HS256_SECRET": SECRET,
            "RECSD_JWT_ISSUER": ISS, "RECSD_JWT_AUDIENCE": AUD,
            # The contract is about shapes, not model quality: a small
            # hybrid trains in a few seconds (the first of its type passes
            # the quality gate whatever its score).
            "RECSD_TRAIN_THREADS": "2", "RECSD_TRAIN_POLL_MS": "200",
            "RECSD_ALS_FACTORS": "16", "RECSD_ALS_ITERATIONS": "5",
            "RECSD_EASE_MAX_ITEMS": "500",
        }
        with Service(env=svc_env, actors="trainer,ranker,http-gateway") as svc:
            def token(sub, roles):
                out = subprocess.run([BIN, "token", "--sub", sub, "--roles", roles, "--ttl", "3600"],
                                     env=svc.env, capture_output=True, text=True, timeout=10)
                if out.returncode != 0:
                    fail(f"recsd token: {out.stderr}")
                return out.stdout.strip()

            verify_env = dict(
                env, NODE_PATH=os.path.join(NODE_DIR, "node_modules"),
                RECSD_CONTRACT_PROVIDER_URL=f"http://127.0.0.1:{svc.port}",
                RECSD_CONTRACT_SERVICE_TOKEN=token("streaming-api-gateway", "service"),
                RECSD_CONTRACT_TRAINER_TOKEN=token("ml-engineer", "trainer"),
                PACT_FILES=os.path.join(CONTRACT, "pacts", PACT))
            committed = verify_env["PACT_FILES"]
            with open(committed, encoding="utf-8") as f:
                descriptions = [i["description"] for i in json.load(f)["interactions"]]
            out, took = verify(verify_env)
            if out.returncode != 0:
                print(svc.logs()[-4000:])
                fail(f"provider verification failed (rc {out.returncode}, {took:.1f} s)")
            text = ANSI.sub("", out.stdout)
            missing = [d for d in descriptions if f"\n  {d} (" not in text]
            if missing or "FAILED" in text or "verification passed" not in text:
                fail(f"the verifier did not report every interaction as OK (missing {missing})")
            check(True, f"recsd honours all {len(descriptions)} interactions of the pact "
                  f"({took:.1f} s)")

            # The verification can fail: the same run on a pact whose
            # consumer expects a member recsd does not send, and a status it
            # does not answer, must fail on exactly those two interactions.
            mutant = os.path.join(svc.runtime_dir, "mutant-pact.json")
            with open(committed, encoding="utf-8") as f:
                doc = json.load(f)
            bad = {"a request for 3 recommendations for user 1",
                   "a request for recommendations without credentials"}
            for inter in doc["interactions"]:
                if inter["description"] == "a request for 3 recommendations for user 1":
                    for item in inter["response"]["body"]["content"]["items"]:
                        item["title"] = "Toy Story"
                elif inter["description"] == "a request for recommendations without credentials":
                    inter["response"]["status"] = 403
            with open(mutant, "w", encoding="utf-8") as f:
                json.dump(doc, f)
            out, took = verify(dict(verify_env, PACT_FILES=mutant), quiet=True)
            text = ANSI.sub("", out.stdout + out.stderr)
            failures = text[text.rfind("Failures:"):]
            check(out.returncode == 1 and "There were 2 pact failures" in failures
                  and all(d in failures for d in bad) and "missing the following keys: title"
                  in failures and "expected 403 but was 401" in failures,
                  f"a pact recsd does not honour fails verification ({took:.1f} s)")
            check(all(a["restarts"] == 0 for a in svc.status()["actors"]),
                  "no actor restarted during the verification")
    finally:
        db.close()
        shutil.rmtree(artifacts, ignore_errors=True)
    print("PASS: contract tests")


if __name__ == "__main__":
    main()
