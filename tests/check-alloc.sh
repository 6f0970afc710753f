#!/bin/sh
# check-alloc.sh NM LIBGOCC_A - every allocation of libgocc goes through the
# wrappers of src/alloc.c (gocc__malloc/calloc/realloc/free), which route it
# to the hooks of gocc_runtime_set_allocator: no object of the static
# library but alloc.c's may call the C library's allocator directly.
set -eu
nm=$1
lib=$2
bad=$("$nm" -u -A "$lib" |
    grep -E '[[:space:]]U (malloc|calloc|realloc|reallocarray|free|strdup|strndup|aligned_alloc|posix_memalign|memalign|valloc|asprintf|vasprintf)$' |
    grep -v 'alloc\.c\.o:' || true)
if [ -n "$bad" ]; then
    echo "direct calls to the C library's allocator (use gocc__malloc & co.):"
    echo "$bad"
    exit 1
fi
echo "ok: only alloc.c calls the C library's allocator"
