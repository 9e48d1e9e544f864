#!/usr/bin/env bash
# docs-assets.sh: assemble what the gateway serves for /docs (Swagger UI),
# /redoc (ReDoc) and /openapi.json into one directory, from pinned versions
# of the npm packages swagger-ui-dist and redoc, so that no page ever loads
# anything from a CDN.
#
#   ops/docs-assets.sh OUT_DIR          e.g. ops/docs-assets.sh build/docs-assets
#
# Produces (URL path -> file):
#   /docs                          OUT/docs/index.html            (api/docs/swagger)
#   /docs/swagger-initializer.js   OUT/docs/swagger-initializer.js (api/docs/swagger)
#   /docs/index.css                OUT/docs/index.css             (api/docs/swagger)
#   /docs/swagger-ui.css           OUT/docs/swagger-ui.css        (swagger-ui-dist)
#   /docs/swagger-ui-bundle.js     OUT/docs/swagger-ui-bundle.js  (swagger-ui-dist)
#   /docs/favicon-32x32.png        OUT/docs/favicon-32x32.png     (swagger-ui-dist)
#   /docs/favicon-16x16.png        OUT/docs/favicon-16x16.png     (swagger-ui-dist)
#   /redoc                         OUT/redoc/index.html           (api/docs/redoc)
#   /redoc/redoc-init.js           OUT/redoc/redoc-init.js        (api/docs/redoc)
#   /redoc/index.css               OUT/redoc/index.css            (api/docs/redoc)
#   /redoc/redoc.standalone.js     OUT/redoc/redoc.standalone.js  (redoc)
#   /openapi.json                  OUT/openapi.json               (api/openapi.json)
# plus the packages' licence files (OUT/docs/LICENSE, OUT/docs/NOTICE,
# OUT/redoc/LICENSE; not served) and OUT/MANIFEST (versions, integrity,
# SHA-256 of every file).
#
# The tarballs come from the npm registry with `npm pack` into
# OUT/../.docs-assets-cache
# and must match the sha512 integrity pinned below, so a later run (or
# another machine) serves exactly the same bytes. Idempotent: a tarball
# already there is not fetched again, and a file whose content is unchanged
# is not rewritten (its mtime stays). Prints what it installed.
set -euo pipefail

SWAGGER_UI_VERSION=5.35.0
SWAGGER_UI_INTEGRITY=sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==
REDOC_VERSION=2.5.4
REDOC_INTEGRITY=sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ==

log() { printf 'docs-assets: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

(($# == 1)) || die "usage: $0 OUT_DIR"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"
mkdir -p "$1"
out="$(cd "$1" && pwd)"
# Beside OUT, not in it: OUT holds only what may be served.
packs="$(dirname "$out")/.docs-assets-cache"
command -v npm >/dev/null 2>&1 || die "npm is not installed (ops/install-deps.sh installs it)"
command -v node >/dev/null 2>&1 || die "node is not installed"

# The npm integrity string (sha512-<base64>) of a file.
integrity() {
    node -e '
        const h = require("crypto").createHash("sha512");
        h.update(require("fs").readFileSync(process.argv[1]));
        process.stdout.write("sha512-" + h.digest("base64"));' "$1"
}

# fetch NAME VERSION INTEGRITY: the verified tarball's path on stdout.
fetch() {
    local name="$1" version="$2" want="$3"
    local tgz="$packs/$name-$version.tgz"
    if [[ -f "$tgz" && "$(integrity "$tgz")" == "$want" ]]; then
        printf '%s\n' "$tgz"
        return
    fi
    mkdir -p "$packs"
    rm -f "$tgz"
    log "fetching $name@$version from the npm registry"
    # npm pack checks the registry's own integrity as well; run it in the
    # cache dir so that no project's package.json or .npmrc is involved.
    (cd "$packs" && npm pack --silent "$name@$version" >/dev/null) ||
        die "npm pack $name@$version failed"
    [[ -f "$tgz" ]] || die "npm pack did not write $tgz"
    local got
    got="$(integrity "$tgz")"
    if [[ "$got" != "$want" ]]; then
        rm -f "$tgz"
        die "$name@$version: integrity $got, pinned $want"
    fi
    printf '%s\n' "$tgz"
}

# put FILE DEST: copy unless DEST already has the same bytes.
changed=0
put() {
    mkdir -p "$(dirname "$2")"
    if ! cmp -s "$1" "$2"; then
        install -m 0644 "$1" "$2.tmp.$$"
        mv -f "$2.tmp.$$" "$2"
        changed=$((changed + 1))
    fi
}

swagger_tgz="$(fetch swagger-ui-dist "$SWAGGER_UI_VERSION" "$SWAGGER_UI_INTEGRITY")"
redoc_tgz="$(fetch redoc "$REDOC_VERSION" "$REDOC_INTEGRITY")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/swagger" "$work/redoc"
tar -xzf "$swagger_tgz" -C "$work/swagger" --no-same-owner
tar -xzf "$redoc_tgz" -C "$work/redoc" --no-same-owner

# The files each page loads, and nothing else of the packages: no source
# maps, no ES-module builds, no stock index.html pointing at the petstore.
for f in swagger-ui.css swagger-ui-bundle.js favicon-32x32.png favicon-16x16.png LICENSE NOTICE; do
    [[ -f "$work/swagger/package/$f" ]] || die "swagger-ui-dist@$SWAGGER_UI_VERSION has no $f"
    put "$work/swagger/package/$f" "$out/docs/$f"
done
for f in bundles/redoc.standalone.js LICENSE; do
    [[ -f "$work/redoc/package/$f" ]] || die "redoc@$REDOC_VERSION has no $f"
    put "$work/redoc/package/$f" "$out/redoc/$(basename "$f")"
done
for f in index.html swagger-initializer.js index.css; do
    put "$src/api/docs/swagger/$f" "$out/docs/$f"
done
for f in index.html redoc-init.js index.css; do
    put "$src/api/docs/redoc/$f" "$out/redoc/$f"
done
put "$src/api/openapi.json" "$out/openapi.json"

# The manifest: what is installed, with each file's size and SHA-256.
{
    printf 'swagger-ui-dist %s %s\n' "$SWAGGER_UI_VERSION" "$SWAGGER_UI_INTEGRITY"
    printf 'redoc %s %s\n' "$REDOC_VERSION" "$REDOC_INTEGRITY"
    (cd "$out" && find docs redoc openapi.json -type f | LC_ALL=C sort | while read -r f; do
        printf '%s %s %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" "$(stat -c %s "$f")" "$f"
    done)
} >"$work/MANIFEST"
put "$work/MANIFEST" "$out/MANIFEST"

log "installed swagger-ui-dist@$SWAGGER_UI_VERSION and redoc@$REDOC_VERSION into $out ($changed files changed)"
sed -n '3,$p' "$out/MANIFEST" | while read -r _ size f; do
    printf '  %-32s %9s bytes\n' "$f" "$size"
done
