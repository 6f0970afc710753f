#!/usr/bin/env bash
# scripts/tour.sh - build libgocc (optimised, in build-tour) and run every
# example program, showing what each prints. Installs missing build tools
# with apt-get when run as root. Exit status 0 only when every example
# passed (each checks its own result; each gets 60 s).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/deps.sh
source scripts/deps.sh

gocc_need_deps

dir=build-tour
log="$dir.log"
echo "building libgocc and the examples (optimised, in $dir; log in $log) ..."
if ! { gocc_setup "$dir" -Dbuildtype=release -Dtests=false -Dbenchmarks=false -Dexamples=true &&
       ninja -C "$dir"; } >"$log" 2>&1; then
    cat "$log"
    echo "tour: the build failed"
    exit 1
fi

# In the order of examples/README.md: the quick start, then the lessons by
# source, L, A, B, C and D, then the debugging example.
groups=(quickstart L A B C D debug)
declare -A pattern=([quickstart]='quickstart*' [L]='l[0-9]*' [A]='a[0-9]*' [B]='b[0-9]*'
                    [C]='c[0-9]*' [D]='d[0-9]*' [debug]='debug*')
declare -A group_total group_passed
programs=()
program_group=()
for g in "${groups[@]}"; do
    mapfile -t found < <(find "$dir/examples" -maxdepth 1 -type f -perm -u+x -name "${pattern[$g]}" | sort)
    programs+=("${found[@]}")
    for _ in "${found[@]}"; do program_group+=("$g"); done
    group_total[$g]=${#found[@]}
    group_passed[$g]=0
done
total=${#programs[@]}
passed=0
failed=()
for i in "${!programs[@]}"; do
    exe=${programs[$i]}
    name=$(basename "$exe")
    echo
    echo "=== $name ==="
    set +e
    timeout 60 "$exe"
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        g=${program_group[$i]}
        group_passed[$g]=$((group_passed[$g] + 1))
    else
        [ "$rc" -eq 124 ] && echo "($name: timed out after 60 s)"
        echo "=== $name FAILED (exit status $rc)"
        failed+=("$name")
    fi
done

echo
if [ "${#failed[@]}" -gt 0 ]; then echo "failed: ${failed[*]}"; fi
by_group=""
for g in "${groups[@]}"; do
    [ "${group_total[$g]}" -gt 0 ] && by_group+="${by_group:+, }$g ${group_passed[$g]}/${group_total[$g]}"
done
echo "tour: $passed of $total examples passed ($by_group)"
[ "$total" -gt 0 ] && [ "$passed" -eq "$total" ]
