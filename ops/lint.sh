#!/usr/bin/env bash
# lint.sh: the CI lint job, runnable locally: clang-format (check only, use
# `clang-format -i FILE` to fix) and cppcheck. Exit status 1 on any finding.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for tool in clang-format cppcheck; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "lint.sh: $tool not found; run ops/install-deps.sh" >&2
        exit 1
    }
done

status=0
mapfile -t files < <(find lib proto supervisor actors tests fuzz -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | sort)
echo "==> clang-format (${#files[@]} files)"
if ((${#files[@]})); then
    clang-format --dry-run -Werror "${files[@]}" || status=1
fi

echo "==> cppcheck"
cppcheck --error-exitcode=1 --enable=warning,performance,portability --inline-suppr \
    --quiet -I lib -I . lib proto supervisor actors || status=1

if ((status)); then
    echo "lint.sh: FAILED" >&2
else
    echo "lint.sh: clean"
fi
exit "$status"
