#!/usr/bin/env bash
# s3rver.sh: an S3-compatible server for development and tests, so that the
# s3:// artifact store runs against a real HTTP server with SigV4 checking:
# the `s3rver` npm package on loopback, its data and its npm install under
# the dev state directory, bucket `recsd` created at start.
#
#   ops/s3rver.sh start    install s3rver if needed and start it (idempotent)
#   ops/s3rver.sh stop     stop it (by the recorded pid); data is kept
#   ops/s3rver.sh env      print `export VAR=...` lines:
#                          eval "$(ops/s3rver.sh env)"
#   ops/s3rver.sh status   one line; exit 0 if up
#
# Environment:
#   RECSD_DEV_DIR          state directory (default <repo>/var/dev), shared
#                          with ops/devstack.sh
#   RECSD_DEV_S3_PORT      port (default 24569)
#   RECSD_S3RVER_VERSION   npm version to install (default 3.7.1)
#
# s3rver accepts the fixed credentials S3RVER / S3RVER. It checks that the
# access key exists but (3.7.1) does not verify SigV4 signatures: signing
# is libcurl's CURLOPT_AWS_SIGV4, checked once against botocore's signer.
# The server is stopped by the pid recorded here,
# never by name.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV_DIR=${RECSD_DEV_DIR:-$REPO/var/dev}
[[ "$DEV_DIR" == /* ]] || DEV_DIR="$PWD/$DEV_DIR"
DEV_DIR=${DEV_DIR%/}
PORT=${RECSD_DEV_S3_PORT:-24569}
VERSION=${RECSD_S3RVER_VERSION:-3.7.1}
BUCKET=recsd

NODE_DIR=$DEV_DIR/node
S3RVER_JS=$NODE_DIR/node_modules/s3rver/bin/s3rver.js
DATA_DIR=$DEV_DIR/s3rver
PID_FILE=$DEV_DIR/s3rver.pid
PORT_FILE=$DEV_DIR/s3rver.port
LOG=$DEV_DIR/s3rver.log
MARKER=$DEV_DIR/.recsd-devstack # the same marker as devstack.sh: one state dir

log() { printf 's3rver: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

usage() {
    echo "usage: ops/s3rver.sh start | stop | env | status" >&2
    exit 2
}

# True if pid is a live (not zombie) process running s3rver; guards against
# a stale pid file naming a recycled pid.
alive() {
    local pid=$1 stat cmd
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    stat=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
    [[ "$stat" != Z* ]] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmd" == *s3rver* ]]
}

read_pid() {
    if [[ -r "$PID_FILE" ]]; then
        head -n1 "$PID_FILE" 2>/dev/null | tr -dc '0-9' || true
    fi
}
up() { alive "$(read_pid)"; }
running_port() { cat "$PORT_FILE" 2>/dev/null || echo "$PORT"; }

port_taken() {
    if command -v ss >/dev/null 2>&1; then
        [[ -n "$(ss -ltnH "sport = :$1" 2>/dev/null || true)" ]]
        return
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# HTTP status of an anonymous GET of the bucket (000 if nothing answers).
probe() {
    curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/$BUCKET" 2>/dev/null || true
}

# Refuses a directory that holds something other than dev state.
check_dev_dir() {
    if [[ -d "$DEV_DIR" && ! -e "$MARKER" && -n "$(ls -A "$DEV_DIR" 2>/dev/null)" ]]; then
        die "$DEV_DIR is not empty and was not made by the dev scripts; choose another RECSD_DEV_DIR"
    fi
}

# Serialises start and stop on one state dir (the lock devstack.sh takes).
# s3rver must not inherit fd 9, or it would hold the lock while it runs.
lock_dev_dir() {
    exec 9>>"$DEV_DIR/.lock"
    flock -w 120 9 || die "another dev script holds $DEV_DIR/.lock"
}

install_s3rver() {
    [[ -f "$S3RVER_JS" ]] && return 0
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        die "node and npm are needed (apt-get install nodejs npm)"
    fi
    log "installing s3rver@$VERSION into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    if ! npm install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error \
        "s3rver@$VERSION" >"$DEV_DIR/npm.log" 2>&1 9>&-; then
        tail -n 20 "$DEV_DIR/npm.log" | sed 's/^/    /' >&2
        die "npm install s3rver@$VERSION failed (log: $DEV_DIR/npm.log)"
    fi
    [[ -f "$S3RVER_JS" ]] || die "npm install finished but $S3RVER_JS is missing"
}

cmd_start() {
    if ! [[ "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1 || PORT > 65535)); then
        die "RECSD_DEV_S3_PORT must be a port number 1..65535, got \"$PORT\""
    fi
    check_dev_dir
    mkdir -p "$DEV_DIR"
    touch "$MARKER"
    lock_dev_dir
    if up; then
        [[ "$(running_port)" == "$PORT" ]] ||
            log "already running on port $(running_port), not $PORT; 'stop' first to change it"
        log "already up (pid $(read_pid), 127.0.0.1:$(running_port))"
        return 0
    fi
    ! port_taken "$PORT" ||
        die "port $PORT is already in use; stop that process or set RECSD_DEV_S3_PORT"
    install_s3rver
    mkdir -p "$DATA_DIR"
    rm -f "$PID_FILE"
    log "starting on 127.0.0.1:$PORT (data in $DATA_DIR)"
    nohup node "$S3RVER_JS" --directory "$DATA_DIR" --address 127.0.0.1 --port "$PORT" \
        --configure-bucket "$BUCKET" </dev/null >>"$LOG" 2>&1 9>&- &
    local pid=$! i
    echo "$pid" >"$PID_FILE"
    echo "$PORT" >"$PORT_FILE"
    for ((i = 0; i < 100; i++)); do
        # The bucket answers 200 once s3rver listens and has configured it.
        if [[ "$(probe "$PORT")" == 200 ]]; then
            log "up (pid $pid, 127.0.0.1:$PORT, bucket $BUCKET)"
            log "use: eval \"\$(ops/s3rver.sh env)\""
            return 0
        fi
        if ! alive "$pid"; then
            tail -n 20 "$LOG" | sed 's/^/    /' >&2
            rm -f "$PID_FILE"
            die "s3rver exited during start (log: $LOG)"
        fi
        sleep 0.1
    done
    tail -n 20 "$LOG" | sed 's/^/    /' >&2
    kill -TERM "$pid" 2>/dev/null || true
    rm -f "$PID_FILE"
    die "s3rver did not serve bucket $BUCKET on 127.0.0.1:$PORT within 10 s"
}

cmd_stop() {
    if [[ ! -d "$DEV_DIR" ]]; then
        log "nothing to stop ($DEV_DIR does not exist)"
        return 0
    fi
    check_dev_dir
    lock_dev_dir
    local pid i
    pid=$(read_pid)
    if alive "$pid"; then
        log "stopping (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            log "pid $pid ignored SIGTERM for 10 s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    else
        log "not running"
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
}

cmd_env() {
    up || die "s3rver in $DEV_DIR is not up; run: ops/s3rver.sh start"
    echo "export RECSD_S3_ENDPOINT=http://127.0.0.1:$(running_port)"
    echo "export AWS_ACCESS_KEY_ID=S3RVER"
    echo "export AWS_SECRET_ACCESS_KEY=S3RVER"
    echo "export AWS_REGION=us-east-1"
    echo "export RECSD_TEST_S3_URL=s3://$BUCKET/test"
}

cmd_status() {
    if up; then
        echo "s3rver: up (pid $(read_pid), 127.0.0.1:$(running_port))"
    else
        echo "s3rver: down"
        return 3
    fi
}

cmd=${1:-}
(($# == 1)) || usage
case "$cmd" in
start | stop | env | status) "cmd_$cmd" ;;
*) usage ;;
esac
