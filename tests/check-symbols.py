#!/usr/bin/env python3
"""check-symbols.py - libgocc exports exactly its public API, and nothing of
it runs when the library is loaded.

    check-symbols.py NM HEADER LIBSO [READELF LIBA]

1. Every symbol the shared library LIBSO defines in its dynamic table
   (`nm -D --defined-only`) is gocc_-prefixed: a library that lives in
   someone else's process must not take their names. The linker's own
   _init/_fini/_edata/_end/__bss_start are allowed.
2. The exported gocc_ names are exactly the functions HEADER declares with
   GOCC_API: none missing (declared but not built, or hidden by mistake) and
   none extra (an internal gocc__ helper or a stale name leaking out).
3. With READELF and the static library LIBA: none of libgocc's objects has
   a constructor or destructor section (.init_array, .ctors, .preinit_array,
   .fini_array, .dtors), so loading the library runs no code of ours: no
   threads, signal handlers or allocations before the first call. (Only for
   unsanitized builds: the sanitizers add a constructor to every object.)

Prints what it checked; exit 0 when all hold, 1 otherwise.
"""
import re
import subprocess
import sys

LINKER_SYMBOLS = {"_init", "_fini", "_edata", "_end", "__bss_start"}
CTOR_SECTIONS = (".init_array", ".ctors", ".preinit_array", ".fini_array", ".dtors")


def header_api(path):
    """The function names declared with GOCC_API in the header."""
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)  # comments
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^\s*#.*$", " ", text, flags=re.M)  # the GOCC_API #defines
    names = []
    # Each use: GOCC_API <return type> <name>(  -- the first identifier
    # followed by '(' is the function's name (return types here are plain).
    for decl in re.split(r"\bGOCC_API\b", text)[1:]:
        m = re.match(r"[^;(]*?\b(\w+)\s*\(", decl)
        if not m:
            sys.exit("check-symbols: cannot parse a GOCC_API declaration: "
                     + decl.strip()[:80])
        names.append(m.group(1))
    return names


def exported(nm, lib):
    out = subprocess.run([nm, "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    syms = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            syms[parts[2].split("@")[0]] = parts[1]
    return syms


def ctor_sections(readelf, archive):
    """(object, section) for every constructor/destructor section."""
    out = subprocess.run([readelf, "-S", "-W", archive], check=True,
                         capture_output=True, text=True).stdout
    found, obj = [], archive
    for line in out.splitlines():
        m = re.match(r"File: .*\((.*)\)", line)
        if m:
            obj = m.group(1)
            continue
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)", line)
        if m and m.group(1).startswith(CTOR_SECTIONS):
            found.append((obj, m.group(1)))
    return found


def main(argv):
    if len(argv) not in (4, 6):
        sys.exit(__doc__)
    nm, header, lib = argv[1:4]
    failures = []

    api = header_api(header)
    dup = sorted({n for n in api if api.count(n) > 1})
    if dup:
        failures.append("declared twice with GOCC_API: " + ", ".join(dup))
    api = set(api)
    not_gocc = sorted(n for n in api if not n.startswith("gocc_"))
    if not_gocc:
        failures.append("GOCC_API names without the gocc_ prefix: " + ", ".join(not_gocc))

    syms = exported(nm, lib)
    foreign = sorted(s for s in syms if not s.startswith("gocc_") and s not in LINKER_SYMBOLS)
    if foreign:
        failures.append("exported without the gocc_ prefix: " + ", ".join(foreign))
    gocc = {s: t for s, t in syms.items() if s.startswith("gocc_")}
    missing = sorted(api - gocc.keys())
    if missing:
        failures.append("declared GOCC_API but not exported: " + ", ".join(missing))
    extra = sorted(gocc.keys() - api)
    if extra:
        failures.append("exported but not declared GOCC_API in gocc.h: " + ", ".join(extra))
    not_text = sorted(s for s in api & gocc.keys() if gocc[s] not in "TtWi")
    if not_text:
        failures.append("exported API names that are not functions: " + ", ".join(not_text))
    print(f"{len(syms)} symbols exported, {len(gocc)} gocc_; "
          f"{len(api)} functions declared GOCC_API in {header}")

    if len(argv) == 6:
        readelf, archive = argv[4:6]
        ctors = ctor_sections(readelf, archive)
        for obj, sec in ctors:
            failures.append(f"{obj} has a {sec} section: code would run at load time")
        if not ctors:
            print(f"no constructor/destructor sections in the objects of {archive}")

    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
