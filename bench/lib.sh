# shellcheck shell=bash
# lib.sh: the set-up that bench/recs_bench.sh, http_bench.sh and
# trace_bench.sh share. Source it right after `set -euo pipefail`:
#   . "$(dirname "$0")/lib.sh"
#
# Sourcing it sets
#   here   the repository root
#   bin    the recsd binary: $RECSD_BIN, else $here/build/recsd
# and installs the cleanup: on exit, error, Ctrl-C (INT), TERM or HUP it
# stops the wrk, recsd and nginx it started, drops the temp database and
# removes the work dir, whichever of them exist by then. The script must
# not set its own EXIT/INT/TERM/HUP traps.
#
# Checks (each prints "bench: ..." on stderr and exits 1 on failure):
#   bench_need TOOL...       every TOOL is on PATH
#   bench_need_pg            RECSD_PG_DSN is set; sets bench_admin_dsn to it
#   bench_need_synth         sets synth ($RECSD_SYNTH, else synth_catalogue
#                            next to $bin), which must be executable
# Set-up:
#   bench_workdir PREFIX     sets work: a new /tmp/PREFIX.XXXXXX, mode 755
#   bench_free_port          prints a free TCP port on 127.0.0.1
#   bench_create_db NAME     (re)creates database NAME on bench_admin_dsn's
#                            server and exports RECSD_PG_DSN for it; sets
#                            bench_db (dropped by the cleanup)
#   bench_drop_db            drops bench_db, if any
# recsd (one at a time):
#   bench_start_recsd BIN PORT [VAR=VALUE...]
#                            `BIN run` in the background on 127.0.0.1:PORT,
#                            log level warn, no rate limit, runtime dir
#                            $work/rt-PORT, stderr to $work/recsd-PORT.log,
#                            plus the VAR=VALUEs
#   bench_wait_health PORT TRIES   polls /health every 0.1 s until it answers
#   bench_wait_model URL TRIES     polls URL every 0.1 s until the answer has
#                            "source":"model" (the ranker, not the fallback)
#   Neither wait fails: the caller checks the answer it then gets.
#   bench_stop_recsd         TERM, then waits for it
# nginx (one at a time; files under $work/nginx):
#   bench_nginx_static FILE  nginx (2 workers) serving FILE as
#                            http://127.0.0.1:$nginx_port/<its name>
#   bench_nginx_start W C B  nginx: W workers, C connections, B inside http { },
#                            config written to $work/nginx/nginx.conf
# wrk:
#   bench_wrk WRK-ARG...     runs wrk and sets wrk_out (its stdout), wrk_rps,
#                            wrk_p50, wrk_p99, wrk_p999 and wrk_errs (the
#                            Non-2xx / socket error lines, joined by spaces)
#   wrk's --latency prints 50/75/90/99% only: wrk_p999 comes from a line
#   "p99.9 <latency>" that the script's Lua done() hook writes, e.g.
#     io.write(string.format("p99.9 %.2fms\n", latency:percentile(99.9) / 1000))
#   and is empty without one.

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${RECSD_BIN:-$here/build/recsd}
work=""
bench_admin_dsn=""
bench_db=""
bench_sup_pid=""
bench_wrk_pid=""
bench_nginx_started=""

bench_need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || {
            echo "bench: $tool is not installed (ops/install-deps.sh)" >&2
            exit 1
        }
    done
}

bench_need_pg() {
    [ -n "${RECSD_PG_DSN:-}" ] || {
        echo "bench: RECSD_PG_DSN unset: eval \"\$(ops/devstack.sh env)\" first" >&2
        exit 1
    }
    bench_admin_dsn=$RECSD_PG_DSN
}

bench_need_synth() {
    synth=${RECSD_SYNTH:-$(dirname "$bin")/synth_catalogue}
    [ -x "$synth" ] || {
        echo "bench: $synth not built" >&2
        exit 1
    }
}

bench_workdir() {
    work=$(mktemp -d "/tmp/$1.XXXXXX")
    chmod 755 "$work" # nginx workers run as another user
}

bench_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

bench_create_db() {
    #  Named before it exists: an interrupted CREATE is dropped too.
    bench_db=$1
    #  (No NOTICE that it did not exist in the middle of the table.)
    PGOPTIONS='-c client_min_messages=warning' psql "$bench_admin_dsn" -q \
        -c "DROP DATABASE IF EXISTS $bench_db WITH (FORCE)" -c "CREATE DATABASE $bench_db" >/dev/null
    export RECSD_PG_DSN=${bench_admin_dsn%/*}/$bench_db
}

bench_drop_db() {
    if [ -n "$bench_db" ]; then
        psql "$bench_admin_dsn" -qc "DROP DATABASE IF EXISTS $bench_db WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    bench_db=""
}

bench_start_recsd() {
    local run_bin=$1 port=$2
    shift 2
    env RECSD_RUNTIME_DIR="$work/rt-$port" RECSD_HTTP_ADDR=127.0.0.1 RECSD_HTTP_PORT="$port" \
        RECSD_LOG_LEVEL=warn RECSD_RATE_LIMIT=0 "$@" "$run_bin" run 2>"$work/recsd-$port.log" &
    bench_sup_pid=$!
}

bench_wait_health() {
    local i
    for ((i = 0; i < $2; i++)); do
        curl -fs "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 0
}

bench_wait_model() {
    #  The whole answer before grep: `curl | grep -q` can fail under
    #  pipefail when grep exits before curl has written everything.
    local i body
    for ((i = 0; i < $2; i++)); do
        body=$(curl -fs "$1" 2>/dev/null) || body=""
        grep -q '"source":"model"' <<<"$body" && return 0
        sleep 0.1
    done
    return 0
}

bench_stop_recsd() {
    if [ -n "$bench_sup_pid" ]; then
        kill -TERM "$bench_sup_pid" 2>/dev/null || true
        wait "$bench_sup_pid" 2>/dev/null || true
    fi
    bench_sup_pid=""
}

bench_nginx_start() { # WORKERS CONNECTIONS HTTP-BLOCK-BODY
    local i
    mkdir -p "$work/nginx/logs"
    cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes $1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections $2; }
http {
  access_log off;
  keepalive_requests 100000;
$3
}
NGINX
    #  Flagged first: a start interrupted half-way is still stopped.
    bench_nginx_started=1
    nginx -p "$work/nginx" -c "$work/nginx/nginx.conf"
    #  The master writes its pid after the launcher returns, and the stop
    #  needs it.
    for ((i = 0; i < 50; i++)); do
        [ -s "$work/nginx/nginx.pid" ] && return 0
        sleep 0.1
    done
    return 0
}

bench_nginx_stop() {
    local i pid
    [ -n "$bench_nginx_started" ] || return 0
    bench_nginx_started=""
    pid=$(cat "$work/nginx/nginx.pid" 2>/dev/null) || return 0
    nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -s stop 2>/dev/null || true
    #  -s stop only signals the master: wait for it (and so its workers) to go.
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 0
}

bench_nginx_static() {
    local name
    name=$(basename "$1")
    mkdir -p "$work/nginx/www"
    cp "$1" "$work/nginx/www/$name"
    nginx_port=$(bench_free_port)
    bench_nginx_start 2 1024 "  default_type application/json;
  server { listen 127.0.0.1:$nginx_port; root $work/nginx/www; }"
}

# shellcheck disable=SC2034 # the wrk_* figures are for the caller
bench_wrk() {
    #  In the background and waited for, so that a signal to this script
    #  is acted on at once rather than when wrk is done.
    wrk "$@" >"$work/wrk.out" &
    bench_wrk_pid=$!
    wait "$bench_wrk_pid"
    bench_wrk_pid=""
    wrk_out=$(<"$work/wrk.out")
    wrk_rps=$(awk '/Requests\/sec/ {print $2}' <<<"$wrk_out")
    wrk_p50=$(awk '$1=="50%" {print $2}' <<<"$wrk_out")
    wrk_p99=$(awk '$1=="99%" {print $2}' <<<"$wrk_out")
    wrk_p999=$(awk '/^p99.9/ {print $2}' <<<"$wrk_out")
    wrk_errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$wrk_out" | tr '\n' ' ')
}

bench_cleanup() {
    #  Runs to the end: no second Ctrl-C cutting it short, no set -e.
    trap '' INT TERM HUP
    set +e
    if [ -n "$bench_wrk_pid" ]; then
        kill -TERM "$bench_wrk_pid" 2>/dev/null
        wait "$bench_wrk_pid" 2>/dev/null
    fi
    bench_stop_recsd
    bench_drop_db
    [ -n "$work" ] && bench_nginx_stop
    [ -n "$work" ] && rm -rf "$work"
}
trap bench_cleanup EXIT
#  Without them, bash waiting on a foreground child ignores a SIGINT that
#  the child did not die of, and the run goes on; with them every signal
#  ends the script through the EXIT trap.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
