#!/bin/sh
# check-probes.sh READELF LIB - every USDT probe libgocc documents
# (docs/debugging.md) is in LIB's ELF notes, under provider "libgocc".
readelf=$1 lib=$2
notes=$("$readelf" -n "$lib") || exit 1
status=0
for p in task_start task_end park unpark chan_close ctx_cancel pool_shed io_wait io_ready; do
    if ! printf '%s\n' "$notes" | grep -A2 'stapsdt' | grep -q "Name: $p\$"; then
        echo "probe libgocc:$p missing from $lib"
        status=1
    fi
done
printf '%s\n' "$notes" | grep -q 'Provider: libgocc' || { echo "no libgocc provider"; status=1; }
[ $status -eq 0 ] && echo "all 9 probes present"
exit $status
