#!/usr/bin/env bash
# demo.sh: the README's first command. Installs what is missing, builds,
# starts the dev stack (PostgreSQL, Redis, the Kafka mock cluster, file://
# artifacts), applies migrations, imports MovieLens latest-small, and runs
# the service in the foreground on :8080 until Ctrl-C, then stops the stack.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
ops/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
export RECSD_BIN=$here/build/recsd
ops/devstack.sh up
trap 'ops/devstack.sh down' EXIT
eval "$(ops/devstack.sh env)"
build/recsd migrate
build/recsd import movielens data/ml-latest-small
# API documentation at /docs and /redoc (npm packages); optional.
if ops/docs-assets.sh build/docs-assets >/dev/null; then
    export RECSD_DOCS_DIR=$here/build/docs-assets
else
    echo "demo: API documentation assets not fetched; /docs will be 404" >&2
fi
cat <<MSG

recsd is starting on http://localhost:${RECSD_HTTP_PORT:-8080} (Ctrl-C stops it and the dev stack).
In another shell:
  curl localhost:${RECSD_HTTP_PORT:-8080}/api/v1/recs/1
  curl localhost:${RECSD_HTTP_PORT:-8080}/health/ready
  open http://localhost:${RECSD_HTTP_PORT:-8080}/docs (Swagger UI) or /redoc
  build/recsd ctl status
MSG
build/recsd run
