# shellcheck shell=bash
# run-group.sh: sourced by ops/test.sh and ops/coverage.sh (not run).
#
# run CMD...: runs a command as its own process group and waits for it. A
# signal to the calling script then interrupts the wait at once (bash
# defers traps while a foreground child runs), and the caller's trap can
# stop the whole group (ctest and the test processes under it) by its id,
# CHILD (0 when no step is running; the caller sets CHILD=0 before it
# installs its traps).
run() {
    set -m
    "$@" </dev/null &
    CHILD=$!
    set +m
    local rc=0
    wait "$CHILD" || rc=$?
    CHILD=0
    return "$rc"
}
