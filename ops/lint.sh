#!/usr/bin/env bash
# lint.sh: the CI lint job, runnable locally: clang-format (check only, use
# `clang-format -i FILE` to fix), cppcheck and clang-tidy (checks in
# .clang-tidy; it needs a compile database, so this configures build-lint/,
# which needs the -dev packages of ops/install-deps.sh). Exit status 1 on any
# finding.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for tool in clang-format cppcheck clang-tidy cmake; do
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

echo "==> clang-tidy"
#  Configuring is enough: no source is generated, so the compile database is
#  complete without building. Debug keeps asserts visible to the analyzer.
mkdir -p build-lint
if cmake -S . -B build-lint -DCMAKE_BUILD_TYPE=Debug -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
    >build-lint/cmake.log 2>&1; then
    mapfile -t tidy_files < <(find lib proto supervisor actors -type f -name '*.c' | sort)
    #  A file missing from the database would be skipped silently.
    for f in "${tidy_files[@]}"; do
        grep -qF "\"$PWD/$f\"" build-lint/compile_commands.json || {
            echo "lint.sh: $f is not in the compile database (CMakeLists.txt globs)" >&2
            status=1
        }
    done
    #  Drop the per-file command lines and "N warnings generated." (counts of
    #  suppressed library-header warnings). Findings fail clang-tidy itself
    #  (WarningsAsErrors: '*').
    quiet_filter() {
        grep -Ev $'^(\e\\[[0-9;]*m)*[0-9]+ warnings? generated\\.$|^[^ ]*clang-tidy[^ ]* --use-color ' ||
            true
    }
    runner=$(command -v run-clang-tidy-14 || command -v run-clang-tidy || true)
    tidy_bin=$(command -v clang-tidy-14 || command -v clang-tidy)
    if [[ -n "$runner" ]]; then
        #  run-clang-tidy takes regexes on absolute paths: escape and anchor.
        patterns=()
        for f in "${tidy_files[@]}"; do
            patterns+=("^$(printf '%s' "$PWD/$f" | sed 's/[][\.*^$()+?{}|]/\\&/g')\$")
        done
        if ! "$runner" -clang-tidy-binary "$tidy_bin" -p build-lint -j "$(nproc)" -quiet \
            "${patterns[@]}" 2>&1 | quiet_filter; then
            status=1
        fi
    elif ! printf '%s\0' "${tidy_files[@]}" |
        xargs -0 -n 1 -P "$(nproc)" "$tidy_bin" -p build-lint --quiet 2>&1 | quiet_filter; then
        status=1
    fi
    if [[ -t 1 ]]; then printf '\e[0m'; fi # the colour reset went with a dropped line
else
    echo "lint.sh: cmake could not configure build-lint (see build-lint/cmake.log);" \
        "run ops/install-deps.sh" >&2
    status=1
fi

if ((status)); then
    echo "lint.sh: FAILED" >&2
else
    echo "lint.sh: clean"
fi
exit "$status"
