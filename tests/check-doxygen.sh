#!/bin/sh
# check-doxygen.sh DOXYGEN DOXYFILE HEADER - the API reference has no holes:
# doxygen runs over the public header with the project's Doxyfile (made
# from docs/Doxyfile.in) and warnings as errors, so a public name without a
# doc comment, a @param naming no parameter or a broken command fails.
# Then every function the header declares with GOCC_API (one a line,
# "GOCC_API ..." or "GOCC_NODISCARD GOCC_API ..." at the line's start) must be in the generated reference:
# the check cannot pass by documenting nothing. And every one of them that
# returns something (not void) says what in a @return: the codes a call
# can answer are its contract.
# DOXYGEN empty: doxygen is not installed; exit 77 (meson: SKIP).
doxygen=$1 doxyfile=$2 header=$3
if [ -z "$doxygen" ]; then
    echo "doxygen not found: skipped (Debian/Ubuntu: apt-get install doxygen)"
    exit 77
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/gocc-doxygen.XXXXXX") || exit 1
trap 'rm -rf "$out"' EXIT

# FAIL_ON_WARNINGS (doxygen >= 1.9) reports every warning, then fails;
# YES stops at the first.
case $("$doxygen" --version) in
    1.[0-8].*) strict=YES ;;
    *) strict=FAIL_ON_WARNINGS ;;
esac
{
    cat "$doxyfile"
    echo "OUTPUT_DIRECTORY = $out"
    echo "GENERATE_HTML = NO"
    echo "GENERATE_XML = YES"
    echo "WARN_AS_ERROR = $strict"
} | "$doxygen" - || { echo "FAIL: doxygen warnings (above) in $header"; exit 1; }

declared=$(grep -c -E '^(GOCC_NODISCARD )?GOCC_API' "$header")
documented=$(grep -c '<memberdef kind="function"' "$out/xml/gocc_8h.xml" 2>/dev/null)
echo "doxygen: no warnings; $documented functions in the reference, $declared declared GOCC_API"
if [ "${documented:-0}" -ne "$declared" ] || [ "$declared" -eq 0 ]; then
    echo "FAIL: the reference does not have every GOCC_API function"
    exit 1
fi

# @return on every function that returns a value. The XML says it: a
# <simplesect kind="return"> in the member's description. (The first
# <type> of a member is its return type; its parameters' follow.)
missing=$(awk '
    /<memberdef kind="function"/ { inf = 1; type = ""; name = ""; ret = 0; next }
    inf && /<type>/ && type == "" { t = $0; gsub(/<[^>]*>/, "", t); gsub(/^ +| +$/, "", t); type = t }
    inf && /<name>/ && name == "" { n = $0; gsub(/<[^>]*>/, "", n); gsub(/^ +| +$/, "", n); name = n }
    inf && /<simplesect kind="return">/ { ret = 1 }
    inf && /<\/memberdef>/ {
        if (type != "void" && type != "" && !ret) print name
        inf = 0
    }' "$out/xml/gocc_8h.xml")
if [ -n "$missing" ]; then
    echo "FAIL: no @return on:" $missing
    exit 1
fi
echo "doxygen: every function that returns a value has a @return"
