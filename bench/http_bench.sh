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
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
dur=${1:-10}; conns=${2:-64}; threads=${3:-2}
bench_need wrk nginx curl
bench_need_pg
bench_workdir recsd-bench

port=$(bench_free_port)
bench_start_recsd "$bin" "$port"
bench_wait_health "$port" 100
# Wait until the ranker (not the fallback) answers.
bench_wait_model "http://127.0.0.1:$port/api/v1/recs/1" 100
curl -fs "http://127.0.0.1:$port/api/v1/recs/1" >"$work/recs.json"
bytes=$(wc -c <"$work/recs.json")
bench_nginx_static "$work/recs.json"

run() { # name url: the line on stderr; leaves req/s in wrk_rps
  bench_wrk -t"$threads" -c"$conns" -d"${dur}s" --latency "$2"
  printf '%-28s %12s %10s %10s  %s\n' "$1" "$wrk_rps" "$wrk_p50" "$wrk_p99" "$wrk_errs" >&2
}
echo "wrk -t$threads -c$conns -d${dur}s; recs answer is $bytes bytes; $(nproc) cores" >&2
printf '%-28s %12s %10s %10s\n' "target" "req/s" "p50" "p99" >&2
run "recsd GET /health" "http://127.0.0.1:$port/health"; h=$wrk_rps
run "recsd GET /api/v1/recs/1" "http://127.0.0.1:$port/api/v1/recs/1"; r=$wrk_rps
run "nginx same bytes (static)" "http://127.0.0.1:$nginx_port/recs.json"; n=$wrk_rps
python3 -c "print('ratio recs/nginx: %.2f   health/nginx: %.2f' % ($r/$n, $h/$n))" >&2
grep -c '"source":"model"' "$work/recs.json" >/dev/null || echo "warning: recs answer came from the fallback" >&2
