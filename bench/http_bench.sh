#!/usr/bin/env bash
# http_bench.sh: wrk at 64 connections against GET /health and
# GET /api/v1/recs/{id} (popularity path), and against nginx serving a JSON
# file of the same size as the recs answer, on this machine. Prints req/s,
# p50 and p99 for each and the recsd/nginx ratio.
#
# Needs the dev stack (eval "$(ops/devstack.sh env)") with migrations
# applied; import MovieLens first for a realistic list:
#   build/recsd migrate && build/recsd import movielens data/ml-latest-small
# Usage: bench/http_bench.sh [duration_s=10] [connections=64] [threads=2]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RECSD_BIN:-$here/build/recsd}
dur=${1:-10}; conns=${2:-64}; threads=${3:-2}
for tool in wrk nginx curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is not installed (ops/install-deps.sh)" >&2; exit 1; }
done
[ -n "${RECSD_PG_DSN:-}" ] || { echo "bench: RECSD_PG_DSN unset: eval \"\$(ops/devstack.sh env)\" first" >&2; exit 1; }

work=$(mktemp -d /tmp/recsd-bench.XXXXXX)
chmod 755 "$work" # nginx workers run as another user
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
nport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sup_pid=""; nginx_started=""
cleanup() {
  [ -n "$sup_pid" ] && kill -TERM "$sup_pid" 2>/dev/null && wait "$sup_pid" 2>/dev/null || true
  [ -n "$nginx_started" ] && nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -s stop 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

RECSD_RUNTIME_DIR=$work/rt RECSD_HTTP_ADDR=127.0.0.1 RECSD_HTTP_PORT=$port RECSD_LOG_LEVEL=warn RECSD_RATE_LIMIT=0 \
  "$bin" run 2>"$work/recsd.log" &
sup_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
# Wait until the ranker (not the fallback) answers.
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/api/v1/recs/1" | grep -q '"source":"model"' && break; sleep 0.1
done
curl -fs "http://127.0.0.1:$port/api/v1/recs/1" >"$work/recs.json"
bytes=$(wc -c <"$work/recs.json")

mkdir -p "$work/nginx/www" "$work/nginx/logs"
cp "$work/recs.json" "$work/nginx/www/recs.json"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 100000;
  server { listen 127.0.0.1:$nport; root $work/nginx/www; }
}
NGINX
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf"
nginx_started=1

run() { # name url -> "rps p50 p99"
  local out
  out=$(wrk -t"$threads" -c"$conns" -d"${dur}s" --latency "$2")
  local rps p50 p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
  printf '%-28s %12s %10s %10s  %s\n' "$1" "$rps" "$p50" "$p99" "$errs" >&2
  echo "$rps"
}
echo "wrk -t$threads -c$conns -d${dur}s; recs answer is $bytes bytes; $(nproc) cores" >&2
printf '%-28s %12s %10s %10s\n' "target" "req/s" "p50" "p99" >&2
h=$(run "recsd GET /health" "http://127.0.0.1:$port/health")
r=$(run "recsd GET /api/v1/recs/1" "http://127.0.0.1:$port/api/v1/recs/1")
n=$(run "nginx same bytes (static)" "http://127.0.0.1:$nport/recs.json")
python3 -c "print('ratio recs/nginx: %.2f   health/nginx: %.2f' % ($r/$n, $h/$n))" >&2
grep -c '"source":"model"' "$work/recs.json" >/dev/null || echo "warning: recs answer came from the fallback" >&2
