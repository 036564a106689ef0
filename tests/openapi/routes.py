"""routes.py - the servers' route tables, read from the C source, and the
routes of docs/openapi.yaml, as sets of (METHOD, path) per role, a path
parameter written {} (compared by position).

A table is a `srv_route NAME[] = { {"METHOD", "/path", prefix, ...}, ... };`
array (a prefix route takes one more segment: "/v1/admin/apikeys/" is
/v1/admin/apikeys/{}); a role is a directory whose build_routes() ADDs
tables (src/leader/leader.c, src/follower/follower.c)."""
import glob
import os
import re

TABLE = re.compile(r'srv_route\s+(\w+)\s*\[\]\s*=\s*\{(.*?)\n\};', re.S)
ENTRY = re.compile(r'\{\s*"([A-Z]+)"\s*,\s*"([^"]+)"\s*,\s*(true|false)\s*,')
BUILD = re.compile(r'build_routes\s*\(\s*void\s*\)\s*\{(.*?)\n\}', re.S)
ADD = re.compile(r'\bADD\s*\(\s*(\w+)\s*,')
METHODS = ("get", "put", "post", "delete", "patch", "head", "options",
           "trace")


def c_routes(src):
    """{role: {(METHOD, path)}} from the C files under src; raises
    ValueError when a role adds a table that is not found."""
    tables, roles = {}, {}
    for f in sorted(glob.glob(os.path.join(src, "**", "*.c"),
                              recursive=True)):
        with open(f, encoding="utf-8") as fh:
            text = fh.read()
        for m in TABLE.finditer(text):
            tables[m.group(1)] = {
                (meth, path + "{}" if prefix == "true" else path)
                for meth, path, prefix in ENTRY.findall(m.group(2))}
        b = BUILD.search(text)
        if b:
            roles[os.path.basename(os.path.dirname(f))] = ADD.findall(
                b.group(1))
    out = {}
    for role, names in roles.items():
        out[role] = set()
        for n in names:
            if n not in tables:
                raise ValueError("%s adds the table %s, not found" %
                                 (role, n))
            out[role] |= tables[n]
    return out


def norm(path):
    return re.sub(r"\{[^}/]*\}", "{}", path)


def doc_routes(doc):
    """{role: {(METHOD, path)}} from the document's x-served-by."""
    out = {}
    for path, item in doc["paths"].items():
        for m, op in item.items():
            if m in METHODS:
                for role in op.get("x-served-by", []):
                    out.setdefault(role, set()).add((m.upper(), norm(path)))
    return out


def differences(server, doc):
    """Lines naming every route in one and not the other, per role."""
    lines = []
    for role in sorted(set(server) | set(doc)):
        s, d = server.get(role, set()), doc.get(role, set())
        for m, p in sorted(s - d):
            lines.append("in the %s's route table, not in the document: "
                         "%s %s" % (role, m, p))
        for m, p in sorted(d - s):
            lines.append("in the document (x-served-by %s), not in its "
                         "route table: %s %s" % (role, m, p))
    return lines
