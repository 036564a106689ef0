#!/usr/bin/env python3
"""lint-layers.py - check that every #include in src/ and include/ follows
the module order of DESIGN.md section 1 (run by `make lint`).

    Dependencies point one way: cli -> leader | follower | runtime ->
    server | cluster -> broker -> store | providers -> http | core. core
    and http depend on nothing of ours. `make lint` fails on an include
    that points the other way or into another module's private header.

Rules, for a file under src/<module>/ (or include/agent_iam.h):
  * its own module's headers: allowed;
  * include/agent_iam.h, the public C API: allowed everywhere (it includes
    nothing of ours itself);
  * another module's header: only of a lower rank (same-rank siblings,
    e.g. leader and follower, do not include each other), and only its
    public header src/<m>/<m>.h; every other .h in src/<m>/ is private.
Each include is resolved as the compiler does (the file's directory, then
-Iinclude, then -Isrc), "..." and <...> alike, so "core.h" inside src/core
is src/core/core.h and <server/tls.h> is caught too.

Output: one line per violation, FILE:LINE: includes HEADER: why; exit 1
if any. ALLOWLIST below holds today's known exceptions; an entry that
matches nothing is itself an error, so the list only shrinks.

Usage: lint-layers.py              check this repository (with ALLOWLIST)
       lint-layers.py ROOT [--allow FILE:HEADER]...
                                   check a tree ROOT (tests/lint/), with only
                                   the exceptions given
"""
import os
import re
import sys

# DESIGN.md section 1, read bottom up: a module may include modules of a
# lower rank. Rank 0 is include/agent_iam.h, the public API.
RANK = {
    "include": 0,
    "core": 1, "http": 1,
    "store": 2, "providers": 2,
    "broker": 3,
    "server": 4, "cluster": 4,
    "leader": 5, "follower": 5, "runtime": 5,
    "cli": 6,
}
ORDER = ("cli -> leader | follower | runtime -> server | cluster -> broker"
         " -> store | providers -> http | core")

# (file, header as written): known exceptions, each with the issue-13 item
# that removes it. Keep it as short as is true.
ALLOWLIST = []

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')


def module_of(rel):
    """The module of a path relative to the root, or None if not ours."""
    parts = rel.split("/")
    if rel == "include/agent_iam.h":
        return "include"
    if parts[0] == "src" and len(parts) >= 3:
        return parts[1]
    return None


def resolve(root, rel, name, quoted):
    """Where the compiler finds the header: the path relative to root, or
    None when it is not one of ours (a system header)."""
    dirs = [os.path.dirname(rel)] if quoted else []
    for d in dirs + ["include", "src"]:
        cand = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(os.path.join(root, cand)):
            return cand
    return None


def why_not(src_mod, tgt_rel):
    """None when a file of src_mod may include tgt_rel, else the reason."""
    tgt_mod = module_of(tgt_rel)
    if tgt_mod == src_mod or tgt_mod == "include":
        return None
    if src_mod == "include":
        return "include/agent_iam.h is the public API and includes nothing of src/"
    if tgt_mod is None:
        return "a header outside src/<module>/ and include/"
    if tgt_mod not in RANK:
        return f"module {tgt_mod} is not in lint-layers.py's RANK table"
    if RANK[tgt_mod] > RANK[src_mod]:
        return f"{src_mod} may not depend on {tgt_mod}, a higher layer (DESIGN §1: {ORDER})"
    if RANK[tgt_mod] == RANK[src_mod]:
        return f"{src_mod} and {tgt_mod} are siblings of one rank and do not include each other (DESIGN §1: {ORDER})"
    if os.path.basename(tgt_rel) != tgt_mod + ".h":
        return f"private to {tgt_mod}: only src/{tgt_mod}/{tgt_mod}.h is public to other modules"
    return None


def sources(root):
    out = []
    if os.path.isfile(os.path.join(root, "include/agent_iam.h")):
        out.append("include/agent_iam.h")
    for d, _, files in os.walk(os.path.join(root, "src")):
        for f in files:
            if f.endswith((".c", ".h")):
                out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)


def check(root, allow):
    """Print the violations not allowed and the allow entries unused;
    return how many lines were printed."""
    used = set()
    errors = 0
    for rel in sources(root):
        mod = module_of(rel)
        if mod not in RANK:
            what = f"module {mod}" if mod else "a file outside src/<module>/"
            print(f"{rel}:1: {what} is not in lint-layers.py's RANK table (DESIGN §1)")
            errors += 1
            continue
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                name = m.group(2)
                tgt = resolve(root, rel, name, m.group(1) == '"')
                if tgt is None:
                    if m.group(1) == '"':
                        print(f"{rel}:{n}: includes {name}: no such header in the file's directory, include/ or src/")
                        errors += 1
                    continue
                why = why_not(mod, tgt)
                if why is None:
                    continue
                if (rel, name) in allow:
                    used.add((rel, name))
                    continue
                print(f"{rel}:{n}: includes {name}: {why}")
                errors += 1
    for entry, where in allow.items():
        if entry not in used:
            print(f"{where}: allowlist entry {entry[0]} includes {entry[1]} matches nothing: remove it")
            errors += 1
    return errors


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    if len(argv) == 1:
        root = os.path.dirname(here)
        me = os.path.relpath(os.path.abspath(__file__), root)
        with open(os.path.abspath(__file__), encoding="utf-8") as f:
            text = f.read().splitlines()
        allow = {}
        for entry in ALLOWLIST:
            line = next((i for i, t in enumerate(text, 1)
                         if f'("{entry[0]}", "{entry[1]}")' in t), 1)
            allow[entry] = f"{me}:{line}"
    else:
        root, allow, args = argv[1], {}, argv[2:]
        while args:
            if args[0] != "--allow" or len(args) < 2 or ":" not in args[1]:
                print(__doc__.split("Usage:")[1].strip(), file=sys.stderr)
                return 2
            f, h = args[1].split(":", 1)
            allow[(f, h)] = f"--allow {args[1]}"
            args = args[2:]
    return 1 if check(root, allow) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
