"""routes.py - the servers' route tables, read from the C source, and the
routes of docs/openapi.yaml, as sets of (METHOD, path) per role, a path
parameter written {} (compared by position); and the error codes of both
(each status and code srv_reply_error and srv_reply_ai send).

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


# ---- error codes -----------------------------------------------------------
REPLY = re.compile(r'srv_reply_error\s*\(\s*[^,]+,\s*(\d+)\s*,\s*"(\w+)"')
PACKED = re.compile(r'"code"\s*,\s*"(\w+)"')
NAMES = re.compile(r'err_code_name\s*\(\s*ai_code\s+\w+\s*\)\s*\{(.*?)\n\}',
                   re.S)
SERVER_DIRS = ("server", "leader", "follower", "core")


AI_REPLY = re.compile(r'void\s+srv_reply_ai\s*\(.*?'
                      r'switch\s*\(code\)\s*\{(.*?)\n\s*\}', re.S)


def _cases(body, value):
    """{AI_X: value} of a switch whose cases (falling through) end in
    value's regex (one group)."""
    out, pending = {}, []
    for tok in re.finditer(r'case\s+(AI_\w+)\s*:|' + value + r'|break\s*;',
                           body):
        if tok.group(1):
            pending.append(tok.group(1))
        elif tok.group(2):
            out.update((c, tok.group(2)) for c in pending)
            pending = []
        else:
            pending = []
    return out


def c_error_codes(src):
    """(every code the servers can send, {(status, code)} of the replies
    with a literal status and of srv_reply_ai's ai_code mapping); raises
    ValueError when that mapping is not found."""
    codes, pairs = set(), set()
    to_status, name = {}, {}
    for d in SERVER_DIRS:
        for f in sorted(glob.glob(os.path.join(src, d, "*.c"))):
            with open(f, encoding="utf-8") as fh:
                text = fh.read()
            for st, code in REPLY.findall(text):
                pairs.add((st, code))
            codes |= set(PACKED.findall(text))
            m = NAMES.search(text)
            if m:
                name = _cases(m.group(1), r'return\s+"(\w+)"\s*;')
            m = AI_REPLY.search(text)
            if m:
                to_status = _cases(m.group(1), r'status\s*=\s*(\d+)\s*;')
    if not name or not to_status:
        raise ValueError("err_code_name or srv_reply_ai's switch not found")
    for c, st in to_status.items():  # no name of its own: internal_error
        pairs.add((st, name.get(c, "internal_error")))
    codes |= set(name.values()) | {"internal_error"}
    return codes | {c for _, c in pairs}, pairs


def _schema_codes(doc, schema):
    """The codes an error schema allows (const or enum of code)."""
    out = set()
    stack = [schema]
    while stack:
        s = stack.pop()
        if isinstance(s, dict):
            if "$ref" in s and s["$ref"] != "#/components/schemas/Error":
                stack.append(doc.resolve({"$ref": s["$ref"]}))
            code = s.get("properties", {}).get("code", {})
            out |= set(code.get("enum", [])) | (
                {code["const"]} if "const" in code else set())
            stack.extend(s.get("allOf", []))
    return out


def doc_error_codes(doc):
    """(the Error schema's code enum, {status: codes its answers allow})."""
    by_status = {}
    for _, _, item in doc.paths:
        for m, op in item.items():
            if m in METHODS:
                for st, r in op["responses"].items():
                    media = doc.resolve(r).get("content", {}).get(
                        "application/json", {})
                    by_status.setdefault(st, set()).update(
                        _schema_codes(doc, media.get("schema", {})))
    for name, st in (("NotFound", "404"), ("MethodNotAllowed", "405")):
        media = doc.d["components"]["responses"][name]["content"]
        by_status.setdefault(st, set()).update(_schema_codes(
            doc, media["application/json"]["schema"]))
    enum = set(doc.d["components"]["schemas"]["Error"]["properties"]["code"]
               ["enum"])
    return enum, by_status
