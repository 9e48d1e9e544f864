#!/usr/bin/env bash
# devstack.sh: the development and test stack: a throw-away PostgreSQL
# cluster, a Redis without persistence and a librdkafka mock Kafka cluster
# (`recsd dev-kafka`), all on loopback, all state under one directory.
#
#   ops/devstack.sh up               start what is not running (idempotent)
#   ops/devstack.sh down [--purge]   stop all three; --purge deletes the state
#   ops/devstack.sh env              print `export VAR=...` lines for recsd:
#                                    eval "$(ops/devstack.sh env)"
#   ops/devstack.sh status           one line per service; exit 0 if all up
#
# Environment:
#   RECSD_DEV_DIR         state directory (default <repo>/var/dev)
#   RECSD_DEV_PG_PORT     PostgreSQL port (default 25432)
#   RECSD_DEV_REDIS_PORT  Redis port (default 26379)
#   RECSD_BIN             the recsd binary (default <repo>/build/recsd)
#   RECSD_PG_BINDIR       PostgreSQL server binaries (default: newest
#                         /usr/lib/postgresql/*/bin, else initdb on PATH)
#
# PostgreSQL refuses to run as root: when invoked as root the cluster belongs
# to the `postgres` user. Services are stopped by the pids recorded here,
# never by name.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEV_DIR=${RECSD_DEV_DIR:-$REPO/var/dev}
[[ "$DEV_DIR" == /* ]] || DEV_DIR="$PWD/$DEV_DIR"
DEV_DIR=${DEV_DIR%/}
# Below the ephemeral port range (32768-60999), so no outgoing connection
# holds them by chance.
PG_PORT=${RECSD_DEV_PG_PORT:-25432}
REDIS_PORT=${RECSD_DEV_REDIS_PORT:-26379}
BIN=${RECSD_BIN:-$REPO/build/recsd}

# As root the cluster belongs to `postgres`, which may not be able to reach
# a state dir inside a private (0700) checkout or temp dir; its files then
# live in a postgres-owned sibling under /tmp named after the state dir.
PG_HOME=$DEV_DIR
if (($(id -u) == 0)) && [[ ! -f "$DEV_DIR/pg/PG_VERSION" ]]; then
    PG_HOME=/tmp/recsd-pg-$(printf '%s' "$DEV_DIR" | sha256sum | cut -c1-16)
fi
PG_DATA=$PG_HOME/pg
PG_LOG=$PG_HOME/pg.log
PG_SOCK_DIR=$PG_HOME/run
REDIS_DIR=$DEV_DIR/redis
REDIS_PID=$DEV_DIR/redis.pid
REDIS_LOG=$DEV_DIR/redis.log
REDIS_PORT_FILE=$DEV_DIR/redis.port
KAFKA_PID=$DEV_DIR/kafka.pid
KAFKA_OUT=$DEV_DIR/kafka.out
KAFKA_LOG=$DEV_DIR/kafka.log
ENV_FILE=$DEV_DIR/env
ARTIFACTS=$DEV_DIR/artifacts
MARKER=$DEV_DIR/.recsd-devstack

log() { printf 'devstack: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

usage() {
    echo "usage: ops/devstack.sh up | down [--purge] | env | status" >&2
    exit 2
}

check_port_number() {
    [[ "$2" =~ ^[0-9]+$ ]] && (("$2" >= 1 && "$2" <= 65535)) ||
        die "$1 must be a port number 1..65535, got \"$2\""
}

# --- processes ---------------------------------------------------------------

# True if pid is a live (not zombie) process. Our parent may be slow to reap
# (a container's PID 1), so kill -0 alone would take a zombie for alive.
running() {
    local stat
    [[ "$1" =~ ^[0-9]+$ ]] || return 1
    stat=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ "$stat" != Z* ]]
}

# True if pid is a live (not zombie) process whose command line contains
# what; guards against a stale pid file naming a recycled pid.
alive() {
    local pid=$1 what=$2 cmd
    running "$pid" || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmd" == *"$what"* ]]
}

read_pid() { [[ -r "$1" ]] && head -n1 "$1" 2>/dev/null | tr -dc '0-9' || true; }

pg_pid() { read_pid "$PG_DATA/postmaster.pid"; }
pg_up() { alive "$(pg_pid)" postgres; }
redis_up() { alive "$(read_pid "$REDIS_PID")" redis-server; }
kafka_up() { alive "$(read_pid "$KAFKA_PID")" dev-kafka; }

# The port the running postmaster listens on (line 4 of postmaster.pid).
pg_running_port() { sed -n 4p "$PG_DATA/postmaster.pid" 2>/dev/null | tr -dc '0-9'; }

# Sends SIGTERM to pid, waits up to timeout seconds, then SIGKILL.
stop_pid() {
    local pid=$1 what=$2 name=$3 timeout=${4:-10} i
    alive "$pid" "$what" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        alive "$pid" "$what" || return 0
        sleep 0.1
    done
    log "$name (pid $pid) ignored SIGTERM for ${timeout} s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

# --- PostgreSQL as its owner -------------------------------------------------

AS_PG=()
pg_setup_user() {
    if [[ "$(id -u)" == 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user (install postgresql)"
        command -v runuser >/dev/null 2>&1 || die "runuser not found (util-linux)"
        AS_PG=(runuser -u postgres --)
    fi
}

# Runs a command as the cluster owner, from / so that an unreadable
# current directory (e.g. /root) does not trouble initdb or pg_ctl.
as_pg() { (cd / && "${AS_PG[@]}" "$@"); }

pg_find_bindir() {
    if [[ -n "${RECSD_PG_BINDIR:-}" ]]; then
        PG_BINDIR=$RECSD_PG_BINDIR
    else
        PG_BINDIR=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
        if [[ -z "$PG_BINDIR" || ! -x "$PG_BINDIR/initdb" ]]; then
            PG_BINDIR=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
        fi
    fi
    [[ -x "$PG_BINDIR/initdb" && -x "$PG_BINDIR/pg_ctl" && -x "$PG_BINDIR/psql" ]] ||
        die "PostgreSQL server binaries not found (looked in '$PG_BINDIR'); run ops/install-deps.sh or set RECSD_PG_BINDIR"
}

# --- ports -------------------------------------------------------------------

# True if something listens on the TCP port (any address); sets HOLDER to a
# description of the listener when ss can tell.
port_taken() {
    local port=$1 lines
    HOLDER=""
    if command -v ss >/dev/null 2>&1; then
        lines=$(ss -ltnH "sport = :$port" 2>/dev/null || true)
        [[ -n "$lines" ]] || return 1
        HOLDER=$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'users:(.*)' | head -n1 || true)
        return 0
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

require_port_free() {
    local var=$1 port=$2
    if port_taken "$port"; then
        die "port $port ($var) is already in use${HOLDER:+ by $HOLDER}; stop that process or set $var to a free port"
    fi
}

# --- starting ----------------------------------------------------------------

STARTED=()

show_log() {
    local file=$1
    if [[ -s "$file" ]]; then
        log "last lines of $file:"
        tail -n 20 "$file" | sed 's/^/    /' >&2
    fi
}

start_pg() {
    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        rm -rf "$PG_DATA"
        mkdir -p "$PG_DATA"
        chmod 700 "$PG_DATA"
        if ((${#AS_PG[@]})); then
            [[ "$PG_HOME" == "$DEV_DIR" ]] || chown postgres:postgres "$PG_HOME"
            chown postgres:postgres "$PG_DATA"
            as_pg test -w "$PG_DATA" ||
                die "the postgres user cannot reach $PG_DATA (is a parent directory not world-searchable?); set RECSD_DEV_DIR elsewhere"
        fi
        log "postgresql: initdb in $PG_DATA"
        if ! as_pg "$PG_BINDIR/initdb" -D "$PG_DATA" --username=postgres --auth=trust \
            --encoding=UTF8 --locale=C >"$DEV_DIR/initdb.log" 2>&1; then
            show_log "$DEV_DIR/initdb.log"
            die "postgresql: initdb failed"
        fi
        echo "include_if_exists = 'recsd-dev.conf'" >>"$PG_DATA/postgresql.conf"
    fi

    # Written at every start so a changed port takes effect. The unix socket
    # is a convenience; sun_path is limited to 107 bytes, so a deep state dir
    # goes without one (everything here uses TCP on loopback).
    local sockdir=$PG_SOCK_DIR
    if ((${#PG_SOCK_DIR} + 16 > 107)); then
        log "postgresql: state dir too deep for a unix socket, TCP only"
        sockdir=""
    else
        mkdir -p "$PG_SOCK_DIR"
        ((${#AS_PG[@]} == 0)) || chown postgres:postgres "$PG_SOCK_DIR"
    fi
    cat >"$PG_DATA/recsd-dev.conf" <<EOF
# written by ops/devstack.sh at each start; throw-away development cluster
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '${sockdir//\'/\'\'}'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    : >>"$PG_LOG"
    ((${#AS_PG[@]} == 0)) || chown postgres:postgres "$PG_DATA/recsd-dev.conf" "$PG_LOG"

    log "postgresql: starting on 127.0.0.1:$PG_PORT"
    if ! as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 30 start >/dev/null 2>"$DEV_DIR/pg_ctl.err" 9>&-; then
        show_log "$DEV_DIR/pg_ctl.err"
        show_log "$PG_LOG"
        STARTED+=(pg) # pg_ctl may have left a postmaster behind
        die "postgresql: failed to start"
    fi
    STARTED+=(pg)

    local psql=("$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tA)
    if [[ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'recsd'" 2>&1)" != 1 ]]; then
        "${psql[@]}" -c "CREATE ROLE recsd LOGIN SUPERUSER" >/dev/null ||
            die "postgresql: cannot create role recsd"
    fi
    if [[ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'recsd'" 2>&1)" != 1 ]]; then
        "${psql[@]}" -c "CREATE DATABASE recsd OWNER recsd" >/dev/null ||
            die "postgresql: cannot create database recsd"
    fi
}

start_redis() {
    mkdir -p "$REDIS_DIR"
    rm -f "$REDIS_PID"
    log "redis: starting on 127.0.0.1:$REDIS_PORT"
    if ! redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
        --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" --dir "$REDIS_DIR" \
        >"$DEV_DIR/redis-start.log" 2>&1 9>&-; then
        show_log "$DEV_DIR/redis-start.log"
        show_log "$REDIS_LOG"
        die "redis: redis-server failed to start"
    fi
    local i
    for ((i = 0; i < 100; i++)); do
        if [[ -s "$REDIS_PID" ]]; then STARTED+=(redis) && break; fi
        sleep 0.1
    done
    for ((i = 0; i < 100; i++)); do
        if [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]] && redis_up; then
            echo "$REDIS_PORT" >"$REDIS_PORT_FILE"
            return 0
        fi
        sleep 0.1
    done
    show_log "$REDIS_LOG"
    die "redis: not answering PING on 127.0.0.1:$REDIS_PORT after 10 s"
}

start_kafka() {
    rm -f "$KAFKA_OUT" "$KAFKA_PID"
    log "kafka: starting $BIN dev-kafka"
    nohup "$BIN" dev-kafka </dev/null >"$KAFKA_OUT" 2>>"$KAFKA_LOG" 9>&- &
    local pid=$! i
    echo "$pid" >"$KAFKA_PID"
    STARTED+=(kafka)
    for ((i = 0; i < 100; i++)); do
        # A complete line: the binary prints it in one go and flushes.
        if [[ -s "$KAFKA_OUT" && "$(tail -c1 "$KAFKA_OUT" | od -An -c | tr -d ' ')" == '\n' ]]; then
            return 0
        fi
        if ! running "$pid"; then
            show_log "$KAFKA_LOG"
            die "kafka: dev-kafka exited before printing its bootstrap servers"
        fi
        sleep 0.1
    done
    show_log "$KAFKA_LOG"
    die "kafka: no bootstrap servers from dev-kafka after 10 s"
}

# Stops what this invocation started, when `up` fails half way.
up_cleanup() {
    local rc=$?
    ((rc != 0)) || return 0
    ((${#STARTED[@]})) || exit "$rc"
    log "cleaning up after the failed start: ${STARTED[*]}"
    local i
    for ((i = ${#STARTED[@]} - 1; i >= 0; i--)); do
        case ${STARTED[$i]} in
        pg) stop_pg ;;
        redis) stop_redis ;;
        kafka) stop_kafka ;;
        esac
    done
    exit "$rc"
}

# --- stopping ----------------------------------------------------------------

stop_pg() {
    pg_up || return 0
    log "postgresql: stopping (pid $(pg_pid))"
    if ! as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1; then
        log "postgresql: pg_ctl stop failed, signalling the postmaster"
        stop_pid "$(pg_pid)" postgres postgresql 10
    fi
}

stop_redis() {
    redis_up && log "redis: stopping (pid $(read_pid "$REDIS_PID"))"
    stop_pid "$(read_pid "$REDIS_PID")" redis-server redis 10
    rm -f "$REDIS_PID"
}

stop_kafka() {
    kafka_up && log "kafka: stopping (pid $(read_pid "$KAFKA_PID"))"
    stop_pid "$(read_pid "$KAFKA_PID")" dev-kafka kafka 10
    rm -f "$KAFKA_PID"
}

# --- env file ----------------------------------------------------------------

# Prints a value so that the shell reads it back unchanged.
shell_quote() {
    if [[ "$1" =~ ^[A-Za-z0-9_./:@,%+=-]*$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\\\'\'}"
    fi
}

write_env() {
    local pg_port redis_port bootstrap tmp
    pg_port=$(pg_running_port)
    redis_port=$(cat "$REDIS_PORT_FILE" 2>/dev/null || echo "$REDIS_PORT")
    bootstrap=$(head -n1 "$KAFKA_OUT")
    mkdir -p "$ARTIFACTS"
    tmp=$(mktemp "$DEV_DIR/env.XXXXXX")
    {
        echo "export RECSD_PG_DSN=$(shell_quote "postgresql://recsd@127.0.0.1:$pg_port/recsd")"
        echo "export RECSD_REDIS_URL=$(shell_quote "redis://127.0.0.1:$redis_port")"
        echo "export RECSD_KAFKA_BROKERS=$(shell_quote "$bootstrap")"
        echo "export RECSD_ARTIFACT_URL=$(shell_quote "file://$ARTIFACTS")"
    } >"$tmp"
    chmod 644 "$tmp"
    mv "$tmp" "$ENV_FILE"
}

# --- commands ----------------------------------------------------------------

# Refuses to use a directory that holds something other than our state, so
# a mistyped RECSD_DEV_DIR cannot have its contents deleted by --purge.
check_dev_dir() {
    if [[ -d "$DEV_DIR" && ! -e "$MARKER" && -n "$(ls -A "$DEV_DIR" 2>/dev/null)" ]]; then
        die "$DEV_DIR is not empty and was not made by devstack.sh; choose another RECSD_DEV_DIR"
    fi
}

# Serialises up and down on one state dir. The servers we start must not
# inherit fd 9 (they would hold the lock for their lifetime): each long-lived
# start below closes it with 9>&-.
lock_dev_dir() {
    exec 9>>"$DEV_DIR/.lock"
    flock -w 120 9 || die "another devstack.sh holds $DEV_DIR/.lock"
}

cmd_up() {
    check_port_number RECSD_DEV_PG_PORT "$PG_PORT"
    check_port_number RECSD_DEV_REDIS_PORT "$REDIS_PORT"
    [[ "$PG_PORT" != "$REDIS_PORT" ]] || die "RECSD_DEV_PG_PORT and RECSD_DEV_REDIS_PORT are both $PG_PORT"
    check_dev_dir
    mkdir -p "$DEV_DIR"
    touch "$MARKER"
    lock_dev_dir
    pg_setup_user
    pg_find_bindir
    command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 ||
        die "redis-server/redis-cli not found; run ops/install-deps.sh"

    local need_pg=1 need_redis=1 need_kafka=1
    if pg_up; then
        need_pg=0
        [[ "$(pg_running_port)" == "$PG_PORT" ]] ||
            log "postgresql: already running on port $(pg_running_port), not $PG_PORT; 'down' first to change it"
    fi
    if redis_up; then
        need_redis=0
        local rp
        rp=$(cat "$REDIS_PORT_FILE" 2>/dev/null || true)
        [[ "$rp" == "$REDIS_PORT" ]] ||
            log "redis: already running on port $rp, not $REDIS_PORT; 'down' first to change it"
    fi
    kafka_up && need_kafka=0
    if ((need_pg + need_redis + need_kafka == 0)); then
        write_env
        log "already up (state in $DEV_DIR)"
        return 0
    fi

    # Every check before anything starts, so a predictable failure leaves
    # nothing behind.
    if ((need_kafka)); then
        [[ -x "$BIN" ]] || die "recsd binary not found at $BIN (build it, or set RECSD_BIN)"
    fi
    ((need_pg == 0)) || require_port_free RECSD_DEV_PG_PORT "$PG_PORT"
    ((need_redis == 0)) || require_port_free RECSD_DEV_REDIS_PORT "$REDIS_PORT"

    trap up_cleanup EXIT
    trap 'exit 130' INT TERM
    ((need_pg == 0)) || start_pg
    ((need_redis == 0)) || start_redis
    ((need_kafka == 0)) || start_kafka
    write_env
    trap - EXIT INT TERM
    log "up: postgresql 127.0.0.1:$(pg_running_port), redis 127.0.0.1:$(cat "$REDIS_PORT_FILE"), kafka $(head -n1 "$KAFKA_OUT")"
    log "use: eval \"\$(ops/devstack.sh env)\""
}

cmd_down() {
    local purge=0
    case "${1:-}" in
    "") ;;
    --purge) purge=1 ;;
    *) usage ;;
    esac
    if [[ ! -d "$DEV_DIR" ]]; then
        log "nothing to stop ($DEV_DIR does not exist)"
        return 0
    fi
    check_dev_dir
    lock_dev_dir
    pg_setup_user
    # Reverse start order. pg_ctl is only needed if a postmaster runs.
    stop_kafka
    stop_redis
    if pg_up; then
        pg_find_bindir
        stop_pg
    fi
    rm -f "$ENV_FILE"
    if ((purge)); then
        [[ -e "$MARKER" ]] || die "refusing to purge $DEV_DIR: no devstack marker"
        rm -rf "$DEV_DIR"
        [[ "$PG_HOME" == "$DEV_DIR" ]] || rm -rf "$PG_HOME"
        log "down, $DEV_DIR purged"
    else
        log "down (data kept in $DEV_DIR; 'down --purge' deletes it)"
    fi
}

cmd_env() {
    if ! pg_up || ! redis_up || ! kafka_up || [[ ! -s "$ENV_FILE" ]]; then
        die "the dev stack in $DEV_DIR is not up; run: ops/devstack.sh up"
    fi
    cat "$ENV_FILE"
}

cmd_status() {
    local all=0
    if pg_up; then
        echo "postgresql: up (pid $(pg_pid), 127.0.0.1:$(pg_running_port))"
    else
        echo "postgresql: down"
        all=3
    fi
    if redis_up; then
        echo "redis: up (pid $(read_pid "$REDIS_PID"), 127.0.0.1:$(cat "$REDIS_PORT_FILE" 2>/dev/null))"
    else
        echo "redis: down"
        all=3
    fi
    if kafka_up; then
        echo "kafka: up (pid $(read_pid "$KAFKA_PID"), $(head -n1 "$KAFKA_OUT" 2>/dev/null))"
    else
        echo "kafka: down"
        all=3
    fi
    return "$all"
}

cmd=${1:-}
(($# >= 1)) && shift
case "$cmd" in
up) (($# == 0)) || usage ;;
down) (($# <= 1)) || usage ;;
env | status) (($# == 0)) || usage ;;
*) usage ;;
esac
"cmd_$cmd" "$@"
