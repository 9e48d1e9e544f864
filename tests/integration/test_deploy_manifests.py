#!/usr/bin/env python3
"""test_deploy_manifests.py: the deployment artifacts are valid and agree
with the code.

- ops/k8s/validate.sh passes: the kustomize base and every overlay render
  (and equal `kubectl kustomize` where kubectl exists), every object is valid
  against the Kubernetes schemas (npm kubernetes-models), and recsd's rules
  hold (non-root read-only pods, probes, grace period above the drain,
  actors per deployment, HPA metric = a Prometheus recording rule).
- Every container environment of the rendered manifests and every recsd
  service of docker-compose.yml is accepted by the recsd binary's
  configuration check (no exit 78), and names only variables recsd reads.
- docker-compose.yml parses, has the services of a development stack, and
  passes `docker-compose config` when docker-compose is installed.
- The Dockerfile: two stages on debian:bookworm-slim, non-root user, recsd
  as the exec-form entrypoint (PID 1), and its runtime stage installs the
  package of every shared library the recsd binary links (readelf NEEDED
  -> dpkg -S), so a new library dependency cannot ship a broken image.

Needs RECSD_BIN (ctest sets it), node and npm (validate.sh installs its npm
packages under var/), python3-yaml, readelf (binutils) and dpkg.
No PostgreSQL or Redis: nothing here connects anywhere.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BIN, check, fail  # noqa: E402

try:
    import yaml
except ImportError:
    fail("python3-yaml is not installed (apt-get install python3-yaml; ops/install-deps.sh "
         "lists it)")

SOURCE = os.path.abspath(os.environ.get("RECSD_SOURCE_DIR")
                         or os.path.join(os.path.dirname(__file__), "..", ".."))
CONFIG_C = open(os.path.join(SOURCE, "lib", "config.c")).read()
# Libraries of every debian:bookworm-slim (the C runtime apt and coreutils
# depend on): the Dockerfile need not install them.
BASE_IMAGE_LIBS = {"libc6", "libgcc-s1"}
# Named ahead of the code that will read it (ops/k8s/validate.mjs has the same list).
PROVISIONAL = {"RECSD_JWT_HS256_SECRET"}


def config_check(env, what):
    """recsd's configuration check on env (the variables of one container):
    `recsd ctl status` parses the whole configuration first and exits 78 on
    any invalid value; with no supervisor behind the socket it then fails
    with 1, which is the expected outcome here."""
    unknown = sorted(k for k in env if k.startswith("RECSD_") and k not in PROVISIONAL
                     and f'"{k}"' not in CONFIG_C)
    if unknown:
        fail(f"{what}: variables recsd does not read: {unknown}")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("RECSD_", "AWS_"))}
    clean.update({k: str(v) for k, v in env.items()})
    out = subprocess.run([BIN, "ctl", "status"], env=clean, capture_output=True, text=True,
                         timeout=20)
    if out.returncode == 78 or "invalid configuration" in out.stderr:
        fail(f"{what}: recsd rejects the configuration: {out.stderr.strip()}")
    return out.returncode


def test_k8s():
    dump = tempfile.mkdtemp(prefix="recsd-it-k8s-")
    try:
        out = subprocess.run(["bash", os.path.join(SOURCE, "ops", "k8s", "validate.sh"),
                              "--dump-env", dump], capture_output=True, text=True, timeout=600)
        print(out.stdout, end="")
        check(out.returncode == 0, "ops/k8s/validate.sh: base and overlays render and validate"
              + ("" if out.returncode == 0 else f"\n{out.stderr}"))
        dumps = sorted(glob.glob(os.path.join(dump, "*.json")))
        check(len(dumps) >= 3, f"container environments of {len(dumps)} renderings")
        containers = 0
        for path in dumps:
            with open(path) as f:
                for name, env in json.load(f).items():
                    env = {k: v for k, v in env.items() if not k.startswith("__")}
                    config_check(env, f"{os.path.basename(path)} {name}")
                    containers += 1
        check(containers >= 9, f"recsd accepts the configuration of all {containers} rendered "
                               "containers (no exit 78)")
    finally:
        shutil.rmtree(dump, ignore_errors=True)


def test_compose():
    path = os.path.join(SOURCE, "docker-compose.yml")
    with open(path) as f:
        compose = yaml.safe_load(f)
    services = compose.get("services", {})
    check({"postgres", "redis", "kafka", "minio", "migrate", "api", "worker"} <= set(services),
          f"docker-compose.yml parses, services: {', '.join(sorted(services))}")
    for name, svc in services.items():
        for dep in (svc.get("depends_on") or {}):
            if dep not in services:
                fail(f"compose service {name} depends on unknown service {dep}")
    recsd = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("recsd")}
    for name, svc in recsd.items():
        if svc.get("build", {}).get("dockerfile") != "Dockerfile":
            fail(f"compose service {name} does not build the repository's Dockerfile")
        config_check(svc.get("environment", {}), f"compose service {name}")
    actors = {n: set(a.split(":")[0] for a in s["environment"].get("RECSD_ACTORS", "").split(","))
              for n, s in recsd.items() if n in ("api", "worker")}
    check(actors["api"] >= {"http-gateway", "ranker", "event-ingestor", "publisher"}
          and actors["worker"] >= {"trainer", "publisher"}
          and services["migrate"].get("command") == ["migrate"],
          f"recsd services {sorted(recsd)} configured and accepted by recsd; api and worker "
          "actors, migrate job")
    if shutil.which("docker-compose"):
        out = subprocess.run(["docker-compose", "-f", path, "config", "-q"], capture_output=True,
                             text=True, timeout=60, cwd=SOURCE)
        check(out.returncode == 0, "docker-compose config accepts docker-compose.yml"
              + ("" if out.returncode == 0 else f": {out.stderr}"))
    else:
        print("note: docker-compose not installed; checked as YAML only", flush=True)


def dockerfile_stages(text):
    """[(base, name, [(instruction, args)])] of a Dockerfile."""
    text = re.sub(r"\\\n", " ", text)
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            stages.append((m.group(1), m.group(2), []))
        elif stages:
            stages[-1][2].append((instr, rest.strip()))
        elif instr != "ARG":
            fail(f"Dockerfile: {instr} before the first FROM")
    return stages


def test_dockerfile():
    with open(os.path.join(SOURCE, "Dockerfile")) as f:
        text = f.read()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", text, re.M))
    stages = dockerfile_stages(text)
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), "?"), b) for b, _, _ in stages]
    check(len(stages) == 2 and all(b == "debian:bookworm-slim" for b in bases),
          f"Dockerfile: two stages on {bases}")
    final = {}
    for instr, rest in stages[-1][2]:
        final.setdefault(instr, []).append(rest)
    user = final.get("USER", ["root"])[-1].split(":")[0]
    check(user not in ("root", "0"), f"runtime stage runs as user {user}")
    check(json.loads(final["ENTRYPOINT"][-1]) == ["/usr/local/bin/recsd"]
          and json.loads(final["CMD"][-1]) == ["run"],
          "exec-form ENTRYPOINT recsd with CMD run: recsd is PID 1")
    check(any("8080" in e for e in final.get("EXPOSE", [])), "EXPOSE 8080")
    copied = " ".join(final.get("COPY", []))
    check("--from=build" in copied and "migrations" in copied,
          "runtime stage copies the binary from the build stage and the migrations")

    # The packages of the runtime stage cover every library recsd links.
    runs = " ".join(final.get("RUN", []))
    installed = set(re.findall(r"\b(lib[\w.+-]+|ca-certificates)\b", runs))
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                        subprocess.run(["readelf", "-d", BIN], capture_output=True, text=True,
                                       check=True).stdout)
    check(len(needed) >= 8, f"recsd links {len(needed)} shared libraries directly")
    # The sanitizer build (ops/test.sh runs the suite with it too) links the
    # ASan/UBSan runtimes, which a release image never carries.
    needed = [lib for lib in needed if not re.match(r"lib(asan|ubsan|lsan|tsan)\.so", lib)]
    missing = []
    for lib in needed:
        path = subprocess.run(["sh", "-c", f"ldconfig -p | awk '$1 == \"{lib}\" "
                               "{print $NF; exit}'"], capture_output=True, text=True).stdout.strip()
        owner = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True,
                               text=True)
        if owner.returncode != 0:  # usrmerge: dpkg knows /lib, the cache says /usr/lib
            owner = subprocess.run(["dpkg", "-S", os.path.realpath(path).replace("/usr/lib/",
                                                                                 "/lib/", 1)],
                                   capture_output=True, text=True)
        pkg = owner.stdout.split(":")[0].strip()
        if pkg not in installed and pkg not in BASE_IMAGE_LIBS:
            missing.append(f"{lib} ({pkg or 'no package'})")
    check(not missing, "the runtime stage installs the package of every library recsd links"
          + (f"; missing: {missing}" if missing else ""))

    with open(os.path.join(SOURCE, ".dockerignore")) as f:
        ignored = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    check({".git", "build", "build-*", "var"} <= ignored,
          ".dockerignore keeps .git, build trees and var/ out of the context")


def main():
    if not os.access(BIN, os.X_OK):
        fail(f"RECSD_BIN {BIN} is not an executable recsd")
    test_dockerfile()
    test_compose()
    test_k8s()
    print("PASS: deployment manifests", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
