#!/usr/bin/env bash
# validate.sh: render the kustomize base and every overlay of ops/k8s and
# validate each object against the Kubernetes schemas (npm packages
# kubernetes-models and @kubernetes-models/validate) and recsd's rules for
# its pods (validate.mjs: non-root read-only pods, probes, grace period vs
# drain, actors per deployment, selectors, HPA metric vs the Prometheus
# recording rule, RECSD_* names lib/config.c reads).
#
#   ops/k8s/validate.sh [--dump-env DIR]
#
# Rendering needs no kubectl: validate.mjs renders the subset of kustomize
# ops/k8s uses. When `kubectl` (with kustomize) is installed, its rendering
# of each directory must be identical too. --dump-env writes, per target,
# the environment each container gets (for tests that check the values
# with the recsd binary).
#
# Environment: RECSD_K8S_NPM_DIR, where the npm packages are installed
# (default <repo>/var/k8s-validate, ignored by git like all of var/).
# Needs node and npm (Debian's nodejs and npm). Exit status 0 if all pass.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
NPM_DIR=${RECSD_K8S_NPM_DIR:-$REPO/var/k8s-validate}
# Pinned: the 4.x line runs on Debian 12's node 18 (5.x wants node >= 22).
PACKAGES=(kubernetes-models@4.5.1 @kubernetes-models/validate@4.0.0 js-yaml@4.1.0)
DUMP_DIR=
case "${1:-}" in
"") ;;
--dump-env) DUMP_DIR=${2:?--dump-env needs a directory} ;;
*)
    echo "usage: ops/k8s/validate.sh [--dump-env DIR]" >&2
    exit 2
    ;;
esac

die() {
    echo "validate.sh: $*" >&2
    exit 1
}
command -v node >/dev/null || die "node is missing (apt-get install nodejs npm)"

stamp="$NPM_DIR/.installed-$(printf '%s ' "${PACKAGES[@]}" | md5sum | cut -c1-12)"
if [[ ! -f "$stamp" ]]; then
    command -v npm >/dev/null || die "npm is missing (apt-get install npm)"
    mkdir -p "$NPM_DIR"
    npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error "${PACKAGES[@]}" \
        >"$NPM_DIR/npm.log" 2>&1 || die "npm install failed: $(tail -5 "$NPM_DIR/npm.log")"
    touch "$stamp"
fi

KUBECTL=()
if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
    KUBECTL=(kubectl kustomize)
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

failed=0
targets=("$HERE/base")
for d in "$HERE"/overlays/*/; do targets+=("${d%/}"); done
for dir in "${targets[@]}"; do
    name=${dir#"$HERE"/}
    extra=()
    if ((${#KUBECTL[@]})); then
        ref="$TMP/${name//\//_}.yaml"
        if ! "${KUBECTL[@]}" "$dir" >"$ref" 2>"$ref.err"; then
            echo "FAIL $name: kubectl kustomize: $(cat "$ref.err")"
            failed=1
            continue
        fi
        extra+=(--reference "$ref")
    fi
    if [[ -n "$DUMP_DIR" ]]; then
        mkdir -p "$DUMP_DIR"
        extra+=(--dump-env "$DUMP_DIR/${name//\//_}.json")
    fi
    node "$HERE/validate.mjs" --modules "$NPM_DIR/node_modules" --repo "$REPO" --dir "$dir" \
        "${extra[@]}" || failed=1
done
if ((${#KUBECTL[@]} == 0)); then
    echo "note: kubectl not installed; rendered by validate.mjs alone (not compared with kustomize)"
fi
exit "$failed"
